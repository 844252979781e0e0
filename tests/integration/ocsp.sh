#!/usr/bin/env bash
# OCSP: `pqmtls ocsp signers` makes one delegated signer per intermediate CA (EKU
# OCSPSigning, id-pkix-ocsp-nocheck, keyUsage digitalSignature, ML-DSA-65, recorded in the
# inventory with kind 'ocsp', links to the current one, renewal supersedes and removes the
# old key); `pqmtls ocsp serve` answers OpenSSL 3.5's `openssl ocsp` (which verifies every
# ML-DSA-65 signed answer against the root): good, revoked at once after `pki revoke` with
# its reason, unknown, unauthorized for CAs it does not serve, nonce echoed or absent, GET
# with the base64 request in the path and RFC 5019 caching, keep-alive and pipelining,
# malformedRequest for what is not a request, 404/405/413/415 for what is not OCSP,
# garbage and idle or slow clients survived, new signers taken up on SIGHUP, and a clear
# refusal to start without signers.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
require_tool python3

P=$T/pki
echo "ocsp-test-passphrase" > "$T/pass"
PF=(--passphrase-file "$T/pass")
pqm pki init "$P" --org Example --server-domain example.com "${PF[@]}" > /dev/null || fail "pki init"
for n in c1 c2 c3 c4; do
    pqm pki issue client --pki "$P" --name "$n" "${PF[@]}" > /dev/null || fail "issue $n"
done
pqm pki issue server --pki "$P" --name api.example.com "${PF[@]}" > /dev/null || fail "issue server"

# json_field JSON PYTHON-EXPRESSION-OVER-d
json_field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }
# The inventory rows of kind 'ocsp' as "name status serial key_path" lines.
signer_rows() {
    pqm pki list --pki "$P" --json | python3 -c '
import json, sys
for c in json.load(sys.stdin)["certificates"]:
    if c["kind"] == "ocsp":
        print(c["name"], c["status"], c["serial"], c["key_path"] or "-")'
}

# --- signers ------------------------------------------------------------------------
expect_rc 2 "ocsp signers without the PKI passphrase is a usage error" \
    env -u PQMTLS_PASSPHRASE "$PQMTLS_BIN" ocsp signers --pki "$P" < /dev/null
assert_contains "naming the option" "$OUT" "--passphrase-file"
expect_rc 2 "ocsp signers --days 0 is refused" pqm ocsp signers --pki "$P" "${PF[@]}" --days 0
expect_rc 2 "ocsp signers --days 400 is refused" pqm ocsp signers --pki "$P" "${PF[@]}" --days 400
expect_rc 2 "ocsp signers --within 3w is refused" pqm ocsp signers --pki "$P" "${PF[@]}" --within 3w
expect_rc 1 "a wrong PKI passphrase is refused" pqm ocsp signers --pki "$P" --passphrase-file /dev/null
[[ ! -e "$P/ocsp/server-int-ca-ocsp.crt.pem" ]] || fail "a refused run left signer files"
pass "and leaves no signer behind"
expect_ok "ocsp signers --help teaches" pqm ocsp signers --help
assert_contains "what the signers are" "$OUT" "id-pkix-ocsp-nocheck"

expect_ok "ocsp signers makes the signers" pqm ocsp signers --pki "$P" "${PF[@]}" --json
J1=$OUT
[[ $(json_field "$J1" 'sum(1 for s in d if s["created"])') == 2 ]] || fail "expected two new signers: $J1"
pass "one signer per intermediate CA"
SRV_SIGNER=$P/ocsp/server-int-ca-ocsp.crt.pem
CLI_SIGNER=$P/ocsp/client-int-ca-ocsp.crt.pem
CLI_KEY=$P/ocsp/client-int-ca-ocsp.key.pem
for f in "$SRV_SIGNER" "$CLI_SIGNER" "$CLI_KEY" "$P/ocsp/server-int-ca-ocsp.key.pem"; do
    [[ -L "$f" && -s "$f" ]] || fail "$f: expected a link to the current signer's file"
done
pass "DIR/ocsp/NAME.crt.pem and .key.pem link to the current signer"
[[ $(file_mode "$(readlink -f "$CLI_KEY")") == 600 ]] || fail "signer key mode $(file_mode "$(readlink -f "$CLI_KEY")")"
pass "the signer key is mode 0600"
grep -q "BEGIN PRIVATE KEY" "$CLI_KEY" || fail "the signer key should be unencrypted by default"
pass "and unencrypted, for a responder that starts unattended"
expect_ok "openssl: the client signer chains to the root for OCSP signing" \
    ossl verify -purpose ocsphelper -CAfile "$P/root-ca.crt.pem" -untrusted "$P/client-int-ca.crt.pem" "$CLI_SIGNER"
expect_ok "openssl: the server signer too" \
    ossl verify -purpose ocsphelper -CAfile "$P/root-ca.crt.pem" -untrusted "$P/server-int-ca.crt.pem" "$SRV_SIGNER"
expect_fail ossl verify -purpose ocsphelper -CAfile "$P/root-ca.crt.pem" -untrusted "$P/server-int-ca.crt.pem" "$CLI_SIGNER"
pass "a signer does not chain to the other intermediate"
run ossl x509 -in "$CLI_SIGNER" -noout -text
assert_contains "signer EKU is OCSP Signing" "$(ext_value "$CLI_SIGNER" "X509v3 Extended Key Usage")" "OCSP Signing"
assert_contains "signer has id-pkix-ocsp-nocheck" "$OUT" "OCSP No Check"
assert_contains "signer key usage is critical" "$(ext_block "$CLI_SIGNER" "X509v3 Key Usage")" "critical"
assert_contains "signer key usage is digitalSignature" "$(ext_value "$CLI_SIGNER" "X509v3 Key Usage")" "Digital Signature"
assert_contains "signer is not a CA" "$(ext_value "$CLI_SIGNER" "X509v3 Basic Constraints")" "CA:FALSE"
assert_contains "signer is signed with ML-DSA-65" "$OUT" "Signature Algorithm: ML-DSA-65"
assert_contains "signer key is ML-DSA-65" "$OUT" "Public Key Algorithm: ML-DSA-65"
assert_contains "signer issued by the client intermediate" "$(cert_issuer "$CLI_SIGNER")" "Client Intermediate CA"
nb=$(date -u -d "$(ossl x509 -in "$CLI_SIGNER" -noout -startdate | cut -d= -f2)" +%s)
na=$(date -u -d "$(ossl x509 -in "$CLI_SIGNER" -noout -enddate | cut -d= -f2)" +%s)
(( na - nb == 30 * 86400 + 60 )) || fail "signer validity $((na - nb)) s, expected 30 days (+60 s backdating)"
pass "signers live 30 days by default"

rows=$(signer_rows)
assert_contains "the inventory records the server signer" "$rows" "server-int-ca-ocsp valid"
assert_contains "and the client signer, kind ocsp" "$rows" "client-int-ca-ocsp valid"
OLD_CLI=$(cert_serial "$CLI_SIGNER")
expect_rc 1 "no certificate can be issued under a signer's name" \
    pqm pki issue client --pki "$P" --name client-int-ca-ocsp "${PF[@]}"
expect_ok "pki check agrees with the signer files" pqm pki check --pki "$P"

expect_ok "ocsp signers --within 10d keeps signers valid for 30 days" pqm ocsp signers --pki "$P" "${PF[@]}" --within 10d --json
[[ $(json_field "$OUT" 'sum(1 for s in d if s["created"])') == 0 ]] || fail "--within 10d made signers: $OUT"
pass "and makes none"
[[ $(cert_serial "$CLI_SIGNER") == "$OLD_CLI" ]] || fail "--within 10d replaced the signer"
pass "the links stay on the same signer"
expect_ok "ocsp signers --within 31d replaces them" pqm ocsp signers --pki "$P" "${PF[@]}" --within 31d --days 7 --json
[[ $(json_field "$OUT" 'sum(1 for s in d if s["created"])') == 2 ]] || fail "--within 31d made no signers: $OUT"
NEW_CLI=$(cert_serial "$CLI_SIGNER")
[[ "$NEW_CLI" != "$OLD_CLI" ]] || fail "the link still names the old signer"
pass "the links move to the new signer"
rows=$(signer_rows)
assert_contains "the old signer is superseded" "$rows" "client-int-ca-ocsp superseded $OLD_CLI -"
assert_contains "the new one valid" "$rows" "client-int-ca-ocsp valid $NEW_CLI"
ls "$P/ocsp/"*"$OLD_CLI"* > "$T/old-files"
grep -q 'key.pem' "$T/old-files" && fail "the superseded signer's key is still there: $(cat "$T/old-files")"
grep -q 'crt.pem' "$T/old-files" || fail "the superseded signer's certificate should stay"
pass "its key file is removed, its certificate kept"
expect_ok "pki check still agrees" pqm pki check --pki "$P"

P2=$T/pki2
pqm pki init "$P2" --org Other --no-passphrase > /dev/null || fail "pki init (second PKI)"
pqm pki issue client --pki "$P2" --name server-int-ca-ocsp > /dev/null || fail "issue server-int-ca-ocsp"
expect_rc 1 "ocsp signers refuses a name an issued certificate holds" pqm ocsp signers --pki "$P2"
assert_contains "and says which" "$OUT" "'server-int-ca-ocsp' belongs to another certificate"
[[ -z "$(ls -A "$P2/ocsp" 2>/dev/null)" ]] || fail "the refused run left files: $(ls -A "$P2/ocsp")"
pass "and writes nothing"

# --- serve: refusals before it starts -------------------------------------------------
expect_rc 1 "ocsp serve refuses a PKI without signers" pqm ocsp serve --pki "$P2" --listen 127.0.0.1:1
assert_contains "naming the command that makes them" "$OUT" "pqmtls ocsp signers --pki $P2"
expect_rc 2 "ocsp serve without --listen is a usage error" pqm ocsp serve --pki "$P"
expect_rc 2 "ocsp serve refuses --passphrase-file (it takes --key-passphrase-file, a longer name)" \
    pqm ocsp serve --pki "$P" --listen 127.0.0.1:1 --passphrase-file "$T/pass"
assert_contains "saying the option does not apply" "$OUT" "--passphrase-file does not apply here"
expect_rc 2 "ocsp serve --validity 10s is refused" pqm ocsp serve --pki "$P" --listen 127.0.0.1:1 --validity 10s
expect_rc 2 "ocsp serve --path without a slash is refused" pqm ocsp serve --pki "$P" --listen 127.0.0.1:1 --path ocsp
expect_rc 1 "ocsp serve refuses a directory that is not a PKI" pqm ocsp serve --pki "$T" --listen 127.0.0.1:1
assert_contains "naming the inventory" "$OUT" "pki.db"
expect_ok "ocsp serve --help teaches" pqm ocsp serve --help
assert_contains "what each answer means" "$OUT" "unknown  no certificate with that serial"

# --- serve -------------------------------------------------------------------------------
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
start_responder() {
    "$PQMTLS_BIN" ocsp serve --pki "$P" --listen "127.0.0.1:$PORT" --validity 2h --workers 2 \
        --idle-timeout 2s --request-timeout 2s "$@" > "$T/serve.log" 2>&1 &
    RESP_PID=$!
    track_pid "$RESP_PID"
    wait_port "$PORT" 10 "$RESP_PID" || fail "the responder did not start: $(cat "$T/serve.log")"
}
start_responder
pass "ocsp serve listens"
alive() { kill -0 "$RESP_PID" 2>/dev/null || fail "the responder died: $(cat "$T/serve.log")"; }

CI=$P/client-int-ca.crt.pem
SI=$P/server-int-ca.crt.pem
# ask ISSUER (-cert F | -serial N) [openssl ocsp options...]: openssl verifies the answer
# against the root alone (the signer's chain: the signer certificate in the answer, the
# intermediate given as the issuer).
# The answer's DER is kept in $T/last.der.
ask() {
    local issuer="$1"; shift
    rm -f "$T/last.der"
    run ossl ocsp -issuer "$issuer" "$@" -url "$URL" -CAfile "$P/root-ca.crt.pem" -resp_text -respout "$T/last.der"
}
# The certificate carried by the last answer, as PEM (read back from its DER: the
# certificate `openssl ocsp -url -resp_text` prints after verifying is not always the one
# received, seen with OpenSSL 3.5.7).
answer_cert() {
    ossl ocsp -respin "$T/last.der" -resp_text -noverify 2>/dev/null | awk '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/'
}

ask "$CI" -cert "$P/issued/c2.crt.pem"
[[ $RC -eq 0 ]] || fail "openssl ocsp failed: $OUT"
assert_contains "a valid client certificate is good" "$OUT" "c2.crt.pem: good"
assert_contains "openssl verified the ML-DSA-65 answer" "$OUT" "Response verify OK"
assert_contains "the answer says successful" "$OUT" "OCSP Response Status: successful"
assert_contains "the nonce is echoed" "$OUT" "OCSP Nonce"
assert_not_contains "openssl saw no nonce problem" "$OUT" "WARNING: no nonce"
head_text=${OUT%%Certificate:*}
assert_contains "the answer is signed with ML-DSA-65" "$head_text" "Signature Algorithm: ML-DSA-65"
assert_match "the responder is named by key hash" "$head_text" "Responder Id: [0-9A-F]{40}"
this=$(date -u -d "$(sed -n 's/^ *This Update: //p' <<< "$head_text" | head -1)" +%s)
next=$(date -u -d "$(sed -n 's/^ *Next Update: //p' <<< "$head_text" | head -1)" +%s)
(( next - this == 7200 + 60 )) || fail "nextUpdate - thisUpdate = $((next - this)), expected --validity 2h and the minute thisUpdate is set back"
(( this <= $(date +%s) - 55 )) || fail "thisUpdate $this is not set back a minute"
pass "nextUpdate is --validity from now, thisUpdate a minute back (clocks a little behind)"
answer_cert > "$T/in-answer.pem"
[[ "$(cert_fp "$T/in-answer.pem")" == "$(cert_fp "$CLI_SIGNER")" ]] || fail "the answer does not carry the client signer's certificate"
pass "the answer carries the client intermediate's current signer certificate"
expect_ok "openssl: the signer in the answer is an OCSP signer of the client intermediate" \
    ossl verify -purpose ocsphelper -CAfile "$P/root-ca.crt.pem" -untrusted "$CI" "$T/in-answer.pem"
run ossl x509 -in "$T/in-answer.pem" -noout -text
assert_contains "with EKU OCSPSigning" "$OUT" "OCSP Signing"
assert_contains "and id-pkix-ocsp-nocheck" "$OUT" "OCSP No Check"
assert_contains "signed with ML-DSA-65" "$OUT" "Signature Algorithm: ML-DSA-65"

ask "$CI" -cert "$P/issued/c2.crt.pem" -no_nonce
assert_contains "-no_nonce: good" "$OUT" "c2.crt.pem: good"
assert_not_contains "and no nonce in the answer" "$OUT" "OCSP Nonce"
ask "$SI" -cert "$P/issued/api.example.com.crt.pem"
assert_contains "a server certificate is good (server intermediate's signer)" "$OUT" "api.example.com.crt.pem: good"
ask "$CI" -cert "$P/issued/c1.crt.pem" -cert "$P/issued/c3.crt.pem"
assert_contains "two certificates in one request: the first" "$OUT" "c1.crt.pem: good"
assert_contains "and the second" "$OUT" "c3.crt.pem: good"
ask "$CI" -serial 0x1234567890ABCDEF
assert_contains "a serial the inventory does not know is unknown" "$OUT" "0x1234567890ABCDEF: unknown"
ask "$CI" -serial "0x$(cert_serial "$P/issued/api.example.com.crt.pem")"
assert_contains "a serial of the other intermediate, asked of this one, is unknown" "$OUT" ": unknown"

# Revocation shows at once: no CRL, no restart.
S1=$(cert_serial "$P/issued/c1.crt.pem")
pqm pki revoke --pki "$P" "$S1" --reason keyCompromise > /dev/null || fail "pki revoke c1"
ask "$CI" -cert "$P/issued/c1.crt.pem"
assert_contains "after pki revoke, c1 is revoked at once" "$OUT" "c1.crt.pem: revoked"
assert_contains "with its reason" "$OUT" "Reason: keyCompromise"
rev_at=$(pqm pki list --pki "$P" --json | python3 -c 'import json,sys; print([c["revoked_at"] for c in json.load(sys.stdin)["certificates"] if c["name"] == "c1"][0])')
said=$(date -u -d "$(sed -n 's/^ *Revocation Time: //p' <<< "$OUT" | head -1)" +%Y-%m-%dT%H:%M:%SZ)
[[ "$said" == "$rev_at" ]] || fail "revocation time $said, the inventory says $rev_at"
pass "and the revocation time the inventory recorded"
ask "$CI" -cert "$P/issued/c3.crt.pem"
assert_contains "c3 stays good" "$OUT" "c3.crt.pem: good"
S2=$(cert_serial "$P/issued/c2.crt.pem")
pqm pki revoke --pki "$P" "$S2" > /dev/null || fail "pki revoke c2"
ask "$CI" -cert "$P/issued/c2.crt.pem"
assert_contains "a revocation for no stated reason is revoked" "$OUT" "c2.crt.pem: revoked"
assert_not_contains "and states none ('unspecified' is left out, as in the CRLs)" "$OUT" "Reason:"

# Issuers it does not serve.
pqm pki issue client --pki "$P2" --name other > /dev/null || fail "issue in the second PKI"
ask "$P2/client-int-ca.crt.pem" -cert "$P2/issued/other.crt.pem"
assert_contains "another PKI's CA is unauthorized" "$OUT" "Responder Error: unauthorized"
ask "$P/root-ca.crt.pem" -cert "$SI"
assert_contains "the root CA (no signer of its own) is unauthorized" "$OUT" "Responder Error: unauthorized"

# --- HTTP ---------------------------------------------------------------------------------
ossl ocsp -issuer "$CI" -cert "$P/issued/c3.crt.pem" -no_nonce -reqout "$T/req.der" > /dev/null 2>&1 || true
[[ -s "$T/req.der" ]] || fail "openssl ocsp -reqout wrote no request"
enc=$(base64 -w0 "$T/req.der" | python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.stdin.read(), safe=""))')
run curl -s -D "$T/get.head" -o "$T/get.der" "$URL/$enc"
head=$(tr -d '\r' < "$T/get.head")
assert_contains "GET with the URL-encoded base64 request: 200" "$head" "HTTP/1.1 200"
assert_contains "Content-Type application/ocsp-response" "$head" "Content-Type: application/ocsp-response"
assert_match "a GET answer without a nonce may be cached until nextUpdate (RFC 5019)" "$head" "Cache-Control: max-age=(7199|7200), public"
assert_contains "with Expires" "$head" "Expires: "
expect_ok "openssl accepts the GET answer" ossl ocsp -respin "$T/get.der" -issuer "$CI" -cert "$P/issued/c3.crt.pem" -CAfile "$P/root-ca.crt.pem"
assert_contains "c3 good by GET" "$OUT" "c3.crt.pem: good"
raw=$(base64 -w0 "$T/req.der")
run curl -s -o "$T/get2.der" -w '%{http_code}' "$URL/$raw"
[[ "$OUT" == 200 ]] && ossl ocsp -respin "$T/get2.der" -issuer "$CI" -cert "$P/issued/c3.crt.pem" -CAfile "$P/root-ca.crt.pem" > /dev/null 2>&1 \
    || fail "GET with '/' and '+' left unencoded: $OUT"
pass "GET with the base64 not URL-encoded works too"

# Answers to requests without a nonce are kept, until the inventory changes: on one
# keep-alive connection (so one worker, whose cache it is), GET twice, revoke, GET again.
ossl ocsp -issuer "$CI" -cert "$P/issued/c4.crt.pem" -no_nonce -reqout "$T/req4.der" > /dev/null 2>&1 || true
S4=$(cert_serial "$P/issued/c4.crt.pem")
python3 - "$PORT" "$T/req4.der" "$T" "$PQMTLS_BIN" "$P" "$S4" <<'PY' || fail "the kept-answer exchange failed"
import base64, http.client, subprocess, sys, urllib.parse
port, req, out, pqm, pki, serial = sys.argv[1:7]
path = "/" + urllib.parse.quote(base64.b64encode(open(req, "rb").read()).decode(), safe="")
c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
def get(name):
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    assert r.status == 200, r.status
    open(out + "/" + name, "wb").write(body)
get("get4a.der")
get("get4b.der")
subprocess.run([pqm, "pki", "revoke", "--pki", pki, serial, "--reason", "affiliationChanged"],
               check=True, stdout=subprocess.DEVNULL)
get("get4c.der")
PY
cmp -s "$T/get4a.der" "$T/get4b.der" || fail "a second GET without a nonce was signed anew (no kept answer)"
pass "a request without a nonce is answered again from the kept answer"
run ossl ocsp -respin "$T/get4c.der" -issuer "$CI" -cert "$P/issued/c4.crt.pem" -CAfile "$P/root-ca.crt.pem"
assert_contains "and a revocation shows at once all the same, on the same connection" "$OUT" "c4.crt.pem: revoked"
assert_contains "with its reason" "$OUT" "Reason: affiliationChanged"

run curl -s -o "$T/post.der" -D "$T/post.head" -H 'Content-Type: application/ocsp-request' --data-binary "@$T/req.der" "$URL/"
assert_contains "POST answers 200" "$(cat "$T/post.head")" "200 OK"
assert_contains "and is not to be cached" "$(cat "$T/post.head")" "Cache-Control: no-store"
run curl -s -o "$T/bad.der" -w '%{http_code}' -H 'Content-Type: application/ocsp-request' --data-binary 'this is no OCSP request' "$URL/"
[[ "$OUT" == 200 ]] || fail "a malformed POST body: HTTP $OUT"
run ossl ocsp -respin "$T/bad.der" -resp_text
assert_contains "a malformed POST body gets malformedRequest" "$OUT" "malformedrequest (1)"
printf '\x30\x03\x02\x01' > "$T/truncated.der"
run curl -s -o "$T/bad2.der" -H 'Content-Type: application/ocsp-request' --data-binary "@$T/truncated.der" "$URL/"
run ossl ocsp -respin "$T/bad2.der" -resp_text
assert_contains "truncated DER gets malformedRequest" "$OUT" "malformedrequest (1)"
run curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "@$T/req.der" "$URL/"
[[ "$OUT" == 415 ]] || fail "a POST of another content type: HTTP $OUT"
pass "a POST of another content type gets 415"
head -c 20000 /dev/urandom > "$T/huge"
run curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/ocsp-request' --data-binary "@$T/huge" "$URL/"
[[ "$OUT" == 413 ]] || fail "a 20 KB body: HTTP $OUT"
pass "a body over 16 KB is refused with 413"
run curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/ocsp-request' -H 'Transfer-Encoding: chunked' --data-binary "@$T/huge" "$URL/"
[[ "$OUT" == 413 ]] || fail "a 20 KB chunked body: HTTP $OUT"
pass "and so is a chunked one"
run curl -s -o /dev/null -w '%{http_code}' "$URL/favicon.ico"
[[ "$OUT" == 404 ]] || fail "GET /favicon.ico: HTTP $OUT"
pass "a path that is not an OCSP request gets 404"
run curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/ocsp-request' --data-binary "@$T/req.der" "$URL/elsewhere"
[[ "$OUT" == 404 ]] || fail "POST /elsewhere: HTTP $OUT"
pass "a POST to another path gets 404"
run curl -s -D - -o /dev/null -X DELETE "$URL/"
assert_contains "another method gets 405" "$OUT" "405 Method Not Allowed"
assert_contains "naming the allowed ones" "$OUT" "Allow: GET, POST"
run curl -s "$URL/healthz"
[[ "$OUT" == ok ]] || fail "GET /healthz: '$OUT'"
pass "GET /healthz answers ok"

# Keep-alive, pipelining, garbage, idle and slow clients: raw sockets.
cat > "$T/raw.py" <<'PY'
import socket, sys, time
port, mode, req_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
body = open(req_path, "rb").read()
post = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)) + body

def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s

left = {}

def read_answer(s):
    """One HTTP answer: (status, headers, body), or None when the connection closed.
    Bytes of the next answer that came with this one are kept for it."""
    data = left.pop(s, b"")
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    fields = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
    n = int(fields.get("content-length", "0"))
    while len(rest) < n:
        chunk = s.recv(65536)
        if not chunk:
            return None
        rest += chunk
    left[s] = rest[n:]
    return int(lines[0].split()[1]), fields, rest[:n]

def closed_within(s, secs):
    s.settimeout(secs)
    try:
        return s.recv(1) == b""
    except (socket.timeout, TimeoutError):
        return False
    except ConnectionResetError:
        return True

if mode == "keepalive":
    s = connect()
    for i in range(3):
        s.sendall(post)
        st, f, b = read_answer(s)
        assert st == 200 and b[:4] != b"" and f["content-type"] == "application/ocsp-response", (st, f)
    print("3 answers on one connection")
elif mode == "garbage":
    import os
    for i in range(20):
        s = connect()
        try:
            s.sendall(os.urandom(4096))
            s.settimeout(5)
            while s.recv(65536):
                pass
        except (ConnectionResetError, BrokenPipeError, socket.timeout, TimeoutError):
            pass
        s.close()
    s = connect()
    s.sendall(b"\x00\xff GET /\r\n\r\n")
    r = read_answer(s)
    assert r is not None and r[0] == 400, r
    assert closed_within(s, 5), "a refused request should close the connection"
    print("garbage survived, 400 and close")
elif mode == "idle":
    s = connect()
    s.sendall(post)
    assert read_answer(s)[0] == 200
    t = time.time()
    assert closed_within(s, 6), "an idle connection should be closed"
    print("idle closed after %.1f s" % (time.time() - t))
elif mode == "slow":
    s = connect()
    s.sendall(post[:20])
    t = time.time()
    assert closed_within(s, 6), "a request that does not come whole should be closed"
    print("slow closed after %.1f s" % (time.time() - t))
elif mode == "expect":
    s = connect()
    s.sendall(post.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n", 1).split(b"\r\n\r\n")[0] + b"\r\n\r\n")
    s.settimeout(5)
    first = s.recv(100)
    assert first.startswith(b"HTTP/1.1 100 Continue"), first
    s.sendall(body)
    st, f, b = read_answer(s)
    assert st == 200, st
    print("100 Continue, then the answer")
elif mode == "http10":
    s = connect()
    s.sendall(post.replace(b"HTTP/1.1", b"HTTP/1.0"))
    st, f, b = read_answer(s)
    assert st == 200 and f.get("connection") == "close", f
    assert closed_within(s, 5)
    s = connect()
    s.sendall(post.replace(b"HTTP/1.1", b"HTTP/1.0").replace(b"Host: x", b"Connection: keep-alive") * 2)
    for i in range(2):
        st, f, b = read_answer(s)
        assert st == 200 and f.get("connection") == "keep-alive", f
    print("HTTP/1.0 answered and closed, or kept when it asks")
PY
pipeline_check() {
    python3 - "$PORT" "$T/req.der" <<'PY'
import socket, sys
port, body = int(sys.argv[1]), open(sys.argv[2], "rb").read()
post = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)) + body
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(post * 3)
data, answers = b"", 0
while answers < 3:
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, "closed after %d answers" % answers
        data += chunk
    head, data = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200"), head
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(data) < n:
        chunk = s.recv(65536)
        assert chunk
        data += chunk
    data = data[n:]
    answers += 1
print("3 pipelined requests, 3 answers in order")
PY
}
expect_ok "keep-alive: three requests on one connection" python3 "$T/raw.py" "$PORT" keepalive "$T/req.der"
expect_ok "pipelining: three requests sent at once are answered in turn" pipeline_check
expect_ok "Expect: 100-continue is honoured" python3 "$T/raw.py" "$PORT" expect "$T/req.der"
expect_ok "an HTTP/1.0 request is answered, then the connection closes (kept when it asks)" python3 "$T/raw.py" "$PORT" http10 "$T/req.der"
expect_ok "random bytes from 20 clients, then a bad request gets 400 and a close" python3 "$T/raw.py" "$PORT" garbage "$T/req.der"
alive
pass "the responder survived the garbage"
ask "$CI" -cert "$P/issued/c3.crt.pem"
assert_contains "and still answers a good request" "$OUT" "c3.crt.pem: good"
expect_ok "an idle connection is closed after --idle-timeout" python3 "$T/raw.py" "$PORT" idle "$T/req.der"
expect_ok "a request that never completes is closed after --request-timeout" python3 "$T/raw.py" "$PORT" slow "$T/req.der"

# --- new signers while it runs -------------------------------------------------------------
old_signer=$(cert_fp "$T/in-answer.pem")
pqm ocsp signers --pki "$P" "${PF[@]}" > /dev/null || fail "ocsp signers (renewal)"
kill -HUP "$RESP_PID"
sleep 0.5
ask "$CI" -cert "$P/issued/c3.crt.pem"
assert_contains "after a renewal and SIGHUP, answers still verify" "$OUT" "Response verify OK"
answer_cert > "$T/in-answer2.pem"
[[ "$(cert_fp "$T/in-answer2.pem")" == "$(cert_fp "$CLI_SIGNER")" && "$(cert_fp "$T/in-answer2.pem")" != "$old_signer" ]] \
    || fail "the answer is not signed by the new signer"
pass "and are signed by the new signer"
grep -q "signed by OCSP signer $(cert_serial "$CLI_SIGNER")" "$T/serve.log" || fail "the log does not name the new signer: $(cat "$T/serve.log")"
pass "the log names the signer in use"

kill -TERM "$RESP_PID"
for _ in $(seq 50); do kill -0 "$RESP_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$RESP_PID" 2>/dev/null && fail "the responder did not stop on SIGTERM"
wait "$RESP_PID" 2>/dev/null; rc=$?
[[ $rc -eq 0 ]] || fail "the responder exited $rc on SIGTERM"
pass "SIGTERM stops the responder cleanly"

# --- a signer key with its own passphrase, a path, the port taken ----------------------------
echo "signer-key-pass" > "$T/keypass"
pqm pki revoke --pki "$P2" "$(cert_serial "$P2/issued/server-int-ca-ocsp.crt.pem")" > /dev/null \
    || fail "revoke the certificate that held the signer's name"
expect_ok "ocsp signers --key-passphrase-file encrypts the signer keys" pqm ocsp signers --pki "$P2" --key-passphrase-file "$T/keypass"
grep -q "BEGIN ENCRYPTED PRIVATE KEY" "$P2/ocsp/client-int-ca-ocsp.key.pem" || fail "the signer key is not encrypted"
pass "and the key file says so"
P2PORT=$(free_port)
expect_rc 1 "serving it without the key passphrase is refused" pqm ocsp serve --pki "$P2" --listen "127.0.0.1:$P2PORT"
assert_contains "naming the key file" "$OUT" ".key.pem: the key is encrypted and no passphrase was given"
"$PQMTLS_BIN" ocsp serve --pki "$P2" --listen "127.0.0.1:$P2PORT" --key-passphrase-file "$T/keypass" --path /ocsp/ \
    --cache 0 > "$T/serve2.log" 2>&1 &
P2PID=$!
track_pid "$P2PID"
wait_port "$P2PORT" 10 "$P2PID" || fail "the second responder did not start: $(cat "$T/serve2.log")"
run ossl ocsp -issuer "$P2/client-int-ca.crt.pem" -cert "$P2/issued/other.crt.pem" -url "http://127.0.0.1:$P2PORT/ocsp" -CAfile "$P2/root-ca.crt.pem"
assert_contains "with the passphrase, and --path /ocsp, it answers" "$OUT" "other.crt.pem: good"
run curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/ocsp-request' --data-binary "@$T/req.der" "http://127.0.0.1:$P2PORT/"
[[ "$OUT" == 404 ]] || fail "POST / with --path /ocsp: HTTP $OUT"
pass "and nothing outside --path"
ossl ocsp -issuer "$P2/client-int-ca.crt.pem" -cert "$P2/issued/other.crt.pem" -no_nonce -reqout "$T/req-other.der" > /dev/null 2>&1 || true
for i in 1 2; do
    curl -s -o "$T/other$i.der" -H 'Content-Type: application/ocsp-request' --data-binary "@$T/req-other.der" "http://127.0.0.1:$P2PORT/ocsp" || fail "POST to the second responder"
done
cmp -s "$T/other1.der" "$T/other2.der" && fail "with --cache 0 an answer was given twice"
pass "with --cache 0 every answer is signed anew"
expect_rc 1 "a second responder on the same port is refused" pqm ocsp serve --pki "$P2" --listen "127.0.0.1:$P2PORT" --key-passphrase-file "$T/keypass"
assert_contains "saying the address is in use" "$OUT" "in use"

done_all
