#!/usr/bin/env bash
# gateway: `pqmtls gateway` end to end, with real peers: Debian's curl and OpenSSL 3.5's
# s_client as clients (on OpenSSL 3.5 through LD_LIBRARY_PATH), a recording HTTP/1.1
# upstream (lib/upstream.py, python3 standard library), certificates from `pqmtls pki`
# and, for what the PKI refuses to make, forged with OpenSSL 3.5 (expired, not yet
# valid, serverAuth only, no EKU, SPIFFE URI outside the trust domain), and CRLs made by
# `openssl ca -gencrl`.
#
# Run by hand from the repository root:
#   PQMTLS_BIN=build/pqmtls OPENSSL_BIN=/var/cache/pqmtls/openssl-3.5.7/bin/openssl \
#   OPENSSL_LIBDIR=/var/cache/pqmtls/openssl-3.5.7/lib bash tests/integration/gateway.sh
# (all default to those values when unset; CURL_BIN defaults to curl; PQMTLS_KEEP_TMP=1
#  keeps the temp dir on failure: gateway logs $T/<gw>.log, stderr $T/<gw>.err, the
#  upstream's record $T/upstream.jsonl)
#
# Asserts, each accept path with the refusal it pairs with:
#  1. curl with client1: 200 with the upstream's answer; the upstream got the identity
#     headers equal to what openssl says of client1's certificate (subject RFC 2253,
#     issuer, serial, SHA-256), Verify SUCCESS, X-Forwarded-For/-Proto, no Spiffe-Id; the
#     access log line says TLSv1.3, X25519MLKEM768, 200, and the same identity. A
#     certificate whose CN holds UTF-8, RFC 2253 specials and CR LF (and a short serial)
#     gets the same text as openssl, and no header is injected through it; serial 0 is
#     refused or sent as openssl prints it ("00"). The chain file as client certificate,
#     and a resumed session (s_client -sess_in: logged resumed), carry the same identity.
#  2. s_client with the SPIFFE workload certificate: the upstream's answer, with
#     X-Client-Cert-Spiffe-Id equal to the SPIFFE ID (client1's request had none).
#     After the handshake the gateway keeps the records itself (tls/record.h): a
#     KeyUpdate from s_client that asks for the gateway's own ('K') is followed by a
#     request that gets its 200, and s_client received the gateway's KeyUpdate.
#  3. Spoofed identity headers (any case, '_' for '-', repeated, X-Forwarded-Client-Cert,
#     Client-Cert, Client-Cert-Chain, X-SSL-Client-*, X-Forwarded-For/-Proto, in a chunked
#     trailer too) never reach the upstream; only the gateway's own values do, once each;
#     a SPIFFE URI SAN with CR LF (signed by the client CA) injects no header.
#  4. Refused handshakes, each with the client failing AND the access log's reason_code:
#     no certificate, another PKI's client certificate (unknown_ca), expired, not yet valid,
#     serverAuth only (wrong_eku), no EKU (wrong_eku), SPIFFE URI outside cluster.local
#     (name_constraints), the server's own certificate, TLS 1.2 (protocol); a certificate
#     forged the same way but correct is accepted (the forging is not what is refused).
#  5. --require-pq: s_client -groups X25519 refused (not_pq) while clients offering
#     X25519MLKEM768 are accepted; the default gateway accepts -groups X25519 (logged).
#  6. Ambiguous requests (CL+TE, two Content-Length, bad chunk size, obs-fold, bare LF,
#     bare CR, no Host, two Host): 400 with a JSON body, the connection closed, and
#     nothing reaches the upstream (not even the request smuggled inside).
#  7. Keep-alive (curl, two URLs, one TCP connection) and pipelining (three requests in
#     one write through s_client: three answers, in order).
#  8. Bodies: chunked (100 KB) and Content-Length (5 MB, with Expect: 100-continue seen
#     through) request bodies reach the upstream intact; a 5 MB response reaches curl intact.
#  9. Upstream down: 502 {"error":"bad_gateway"}; silent past --upstream-timeout 1: 504,
#     and the gateway serves the next request; an upstream restarted behind a pooled
#     connection is still reached (no 502). Limits, one worker: a client silent after
#     its handshake is closed after --header-timeout, a keep-alive connection after
#     --idle-timeout, and neither holds up another client meanwhile; with
#     --max-connections 2 held, a third client is not served until one of them goes.
# 10. Revocation: with the intermediate's and the root's CRLs client1 and client2 pass;
#     client1 revoked in a new CRL + SIGHUP: client1 refused (revoked), client2 accepted;
#     the root's CRL missing: crl_missing, accepted with --crl-soft-fail; an expired CRL:
#     crl_expired (accepted with --crl-soft-fail); a handshake timeout: timeout. Sessions:
#     client1's resumes before its revocation and not after; another listener's session
#     is not resumed (a full handshake instead); client2's does not resume once the root's
#     CRL has expired.
# 11. SIGHUP with a broken certificate file, or a certificate that does not match the key:
#     "reload refused", the old certificate still served; with a new valid certificate and
#     key: new connections see the new serial; with another client CA file: that CA's
#     client gets in, the old one's is refused (unknown_ca). The gateways reloaded by
#     SIGHUP run with --watch-interval 0, so that only SIGHUP can have reloaded them.
# 12. SIGTERM with a request in flight: the request completes (200) and the gateway exits 0.

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
CURL_BIN="${CURL_BIN:-curl}"
require_tool "$CURL_BIN" python3 ss timeout sha256sum
UPSTREAM_PY="$PQMTLS_SOURCE_DIR/tests/integration/lib/upstream.py"
# The interpreter itself, not a wrapper script (pyenv's shims cost ~70 ms a call).
PYTHON="$(python3 -c 'import sys; print(sys.executable)')"
[[ -f "$UPSTREAM_PY" ]] || fail "upstream helper not found at $UPSTREAM_PY"
SECONDS=0

run with_ossl35 "$CURL_BIN" --version
assert_match "curl runs on OpenSSL 3.5 with LD_LIBRARY_PATH" "$OUT" "OpenSSL/3\.5"

# ---------------------------------------------------------------- failures
# fail, as common.bash's, plus what became of the gateways: a gateway that died (or was
# killed from outside) explains most failures that follow it.
declare -A GW_NAME=()
fail() {
    local pid
    printf 'FAIL %s: %s\n' "$TEST_NAME" "$*" >&2
    for pid in "${!GW_NAME[@]}"; do
        kill -0 "$pid" 2>/dev/null && continue
        printf '..   %s: gateway %s (pid %s) is gone; its stderr ends with: %s\n' "$TEST_NAME" \
            "${GW_NAME[$pid]}" "$pid" "$(tail -n 3 "$T/${GW_NAME[$pid]}.err" 2>/dev/null | tr '\n' '|')" >&2
    done
    exit 1
}

finish() {
    info "runtime ${SECONDS}s"
    done_all
}

# ---------------------------------------------------------------- JSON helper
cat > "$T/h.py" <<'PYEOF'
import json, re, sys

IDENT = re.compile(r"^(x-client-cert.*|client-cert|client-cert-chain|x-forwarded-client-cert"
                   r"|x-ssl-client.*|x-forwarded-for|x-forwarded-proto)$")

def text(v):
    return v if isinstance(v, str) else json.dumps(v)

def objects(path, skip=0):
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return
    for n, line in enumerate(lines[skip:], skip + 1):
        try:
            yield json.loads(line)
        except ValueError:
            sys.exit("%s:%d: not a JSON line: %r" % (path, n, line[:300]))

def matches(o, conds):
    return all(k in o and text(o[k]) == v for k, v in conds)

cmd, args = sys.argv[1], sys.argv[2:]
if cmd in ("find", "findlast"):
    # find FILE SKIP KEY=VALUE...: the first (findlast: last) JSON line after SKIP lines
    # with all KEY=VALUE; exit 3 when there is none.
    conds = [a.split("=", 1) for a in args[2:]]
    found = [o for o in objects(args[0], int(args[1])) if matches(o, conds)]
    if not found:
        sys.exit(3)
    print(json.dumps(found[0] if cmd == "find" else found[-1]))
elif cmd == "count":
    # count FILE KEY PREFIX: lines whose KEY starts with PREFIX
    print(sum(1 for o in objects(args[0]) if text(o.get(args[1], "")).startswith(args[2])))
elif cmd == "get":
    # get KEY < JSON: the value (strings raw, the rest as JSON); empty when absent
    o = json.loads(sys.stdin.read())
    print(text(o[args[0]]) if args[0] in o else "")
elif cmd == "missing":
    # missing KEY... < JSON: the keys that are absent
    o = json.loads(sys.stdin.read())
    print(" ".join(k for k in args if k not in o))
elif cmd == "hdr":
    # hdr NAME < RECORD: every value of the header NAME (any case), one per line
    o = json.loads(sys.stdin.read())
    for k, v in o.get("headers", []):
        if k.lower() == args[0].lower():
            print(v)
elif cmd == "ident":
    # ident < RECORD: "name: value" of every header that could pass for an identity header
    o = json.loads(sys.stdin.read())
    for k, v in o.get("headers", []):
        if IDENT.match(k.lower().replace("_", "-")):
            print("%s: %s" % (k, v))
elif cmd == "responses":
    # responses FILE: the HTTP/1.1 responses in a raw byte stream, one line each:
    # "STATUS<TAB>path of the JSON body (or -)<TAB>error of the JSON body (or -)"
    data = open(args[0], "rb").read()
    i = 0
    while i < len(data):
        j = data.find(b"\r\n\r\n", i)
        if j < 0:
            print("TRUNCATED\t%r" % data[i:i + 80])
            break
        head = data[i:j].decode("latin-1").split("\r\n")
        i = j + 4
        parts = head[0].split(" ")
        status = parts[1] if len(parts) > 1 and parts[0].startswith("HTTP/") else "BAD"
        h = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            h[k.strip().lower()] = v.strip()
        if status.startswith("1"):
            print("%s\t-\t-" % status)
            continue
        body = b""
        if "chunked" in h.get("transfer-encoding", "").lower():
            while True:
                e = data.find(b"\r\n", i)
                size = int(data[i:e].split(b";")[0], 16)
                i = e + 2
                body += data[i:i + size]
                i += size + 2
                if size == 0:
                    break
        else:
            n = int(h.get("content-length", "0"))
            body, i = data[i:i + n], i + n
        path = err = "-"
        try:
            o = json.loads(body)
            path, err = o.get("path", "-"), o.get("error", "-")
        except ValueError:
            pass
        print("%s\t%s\t%s" % (status, path, err))
else:
    sys.exit("h.py: unknown command " + cmd)
PYEOF
py() { "$PYTHON" "$T/h.py" "$@"; }

# ---------------------------------------------------------------- certificates
P="$T/pki"
I="$P/issued"
expect_ok "pki init" pqm pki init "$P" --org Example --server-domain example.com \
    --spiffe-trust-domain cluster.local --no-passphrase
expect_ok "issue server api.example.com" \
    pqm pki issue server --pki "$P" --name api.example.com --ip 127.0.0.1 --no-key-passphrase
for n in client1 client2; do
    expect_ok "issue client $n" pqm pki issue client --pki "$P" --name "$n" --no-key-passphrase
done
SPIFFE_ID="spiffe://cluster.local/ns/production/sa/frontend-service"
expect_ok "issue client svc (SPIFFE)" pqm pki issue client --pki "$P" --name svc \
    --spiffe-id "$SPIFFE_ID" --no-key-passphrase
# The server's next certificate (for the reload), under another inventory name.
mkdir -p "$T/next"
expect_ok "issue server api2.example.com (also api.example.com)" pqm pki issue server --pki "$P" \
    --name api2.example.com --dns api.example.com --ip 127.0.0.1 --no-key-passphrase --out "$T/next/api"
SCHAIN="$P/server-ca-chain.pem"
CCHAIN="$P/client-ca-chain.pem"
for f in "$SCHAIN" "$CCHAIN" "$P/client-int-ca.crt.pem" "$P/client-int-ca.key.pem" \
    "$P/root-ca.crt.pem" "$P/root-ca.key.pem" "$I/client1.crt.pem" "$I/svc.key.pem"; do
    [[ -s "$f" ]] || fail "the PKI lacks $f"
done
# A second, separate PKI with the same names.
P2="$T/pki2"
expect_ok "pki init (a second, separate PKI)" pqm pki init "$P2" --org Example \
    --server-domain example.com --spiffe-trust-domain cluster.local --no-passphrase
expect_ok "issue client client1 (second PKI)" pqm pki issue client --pki "$P2" --name client1 --no-key-passphrase

# Certificates pqmtls refuses to make, signed by the client intermediate with OpenSSL.
F="$T/forged"
mkdir -p "$F"
cat > "$F/ext.cnf" <<'EOF'
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[serveronly]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[noeku]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[foreignspiffe]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = URI:spiffe://evil.example/ns/production/sa/frontend-service
[crlfspiffe]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
# OpenSSL's configuration syntax turns \r\n into CR LF: a header injection attempt.
subjectAltName = URI:spiffe://cluster.local/ns/a\r\nX-Client-Cert-Verify: INJECTED
EOF
# forge NAME SECTION SUBJECT [x509 options...]: $F/NAME.{crt,key}.pem, ML-DSA-65, signed by
# the client intermediate with the extensions of SECTION.
forge() {
    local n="$1" sec="$2" subj="$3"; shift 3
    run ossl req -new -newkey ml-dsa-65 -nodes -utf8 -keyout "$F/$n.key.pem" -subj "$subj" -out "$F/$n.csr"
    [[ $RC -eq 0 ]] || fail "forge $n: openssl req: $OUT"
    run ossl x509 -req -in "$F/$n.csr" -CA "$P/client-int-ca.crt.pem" -CAkey "$P/client-int-ca.key.pem" \
        -extfile "$F/ext.cnf" -extensions "$sec" -out "$F/$n.crt.pem" "$@"
    [[ $RC -eq 0 ]] || fail "forge $n: openssl x509 -req: $OUT"
}
forge good client "/O=Example/CN=forged-good" -days 30
forge expired client "/O=Example/CN=expired" -not_before 20200101000000Z -not_after 20210101000000Z
forge notyet client "/O=Example/CN=notyet" -not_before 20400101000000Z -not_after 20410101000000Z
forge srvonly serveronly "/O=Example/CN=srvonly" -days 30
forge noeku noeku "/O=Example/CN=noeku" -days 30
forge badspiffe foreignspiffe "/O=Example/CN=badspiffe" -days 30
# UTF-8, RFC 2253 specials and CR LF in the CN (a header injection attempt), serial 0A0B.
forge odd client $'/O=Example/CN=Zo\xc3\xab, \\+"<x>;\r\nX-Injected: yes' -days 30 -set_serial 0x0a0b
forge crlfspiffe crlfspiffe "/O=Example/CN=crlfspiffe" -days 30
forge serial0 client "/O=Example/CN=serial0" -days 30 -set_serial 0
run ossl x509 -in "$F/expired.crt.pem" -noout -enddate
assert_contains "forged 'expired' certificate ended in 2021" "$OUT" "2021 GMT"
run ossl x509 -in "$F/notyet.crt.pem" -noout -startdate
assert_contains "forged 'not yet valid' certificate starts in 2040" "$OUT" "2040 GMT"
run ossl x509 -in "$F/badspiffe.crt.pem" -noout -ext subjectAltName
assert_contains "forged 'badspiffe' certificate has a URI outside cluster.local" "$OUT" "spiffe://evil.example/"
run ossl x509 -in "$F/crlfspiffe.crt.pem" -noout -ext subjectAltName
assert_contains "forged 'crlfspiffe' certificate has CR LF in its SPIFFE URI" "$OUT" $'spiffe://cluster.local/ns/a\r\nX-Client-Cert-Verify: INJECTED'
[[ "$(cert_serial "$F/serial0.crt.pem")" == 00 ]] || fail "openssl prints serial 0 as '$(cert_serial "$F/serial0.crt.pem")', expected 00"
pass "forged 'serial0' certificate has serial 0 (openssl: 00)"

# CRLs, by `openssl ca -gencrl` with a minimal configuration per CA.
C="$T/crl"
source "$PQMTLS_SOURCE_DIR/tests/integration/lib/openssl_ca.bash"
ca_setup int "$P/client-int-ca.crt.pem" "$P/client-int-ca.key.pem"
ca_setup root "$P/root-ca.crt.pem" "$P/root-ca.key.pem"
gencrl int "$C/int.crl.pem"
gencrl root "$C/root.crl.pem"
gencrl int "$C/int-expired.crl.pem" -crl_lastupdate 20200101000000Z -crl_nextupdate 20200102000000Z
run ossl crl -in "$C/int-expired.crl.pem" -noout -nextupdate
assert_contains "the expired CRL's nextUpdate is in 2020" "$OUT" "2020 GMT"
run ossl ca -config "$C/int/ca.cnf" -revoke "$I/client1.crt.pem" -batch
[[ $RC -eq 0 ]] || fail "openssl ca -revoke client1: $OUT"
gencrl int "$C/int-revoked.crl.pem"
run ossl crl -in "$C/int-revoked.crl.pem" -noout -text
assert_contains "the new CRL lists client1's serial" "$OUT" "$(cert_serial "$I/client1.crt.pem")"
run ossl crl -in "$C/int.crl.pem" -noout -text
assert_not_contains "the first CRL does not list client1's serial" "$OUT" "$(cert_serial "$I/client1.crt.pem")"

# ---------------------------------------------------------------- processes
# wait_listen PORT PID: wait (15 s) until PORT has a listener, without connecting to it
# (a probe connection would be a refused handshake in the access log).
wait_listen() {
    local p="$1" pid="$2" i
    for ((i = 0; i < 300; i++)); do
        [[ -n "$(ss -ltnH "( sport = :$p )" 2>/dev/null)" ]] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

UP_PORT="$(free_port)"
REC="$T/upstream.jsonl"
start_upstream() {
    "$PYTHON" "$UPSTREAM_PY" "$UP_PORT" "$REC" >> "$T/upstream.out" 2>&1 &
    UP_PID=$!
    track_pid "$UP_PID"
    wait_listen "$UP_PORT" "$UP_PID" || fail "upstream.py did not listen on 127.0.0.1:$UP_PORT: $(tail -n 5 "$T/upstream.out")"
}
start_upstream
pass "upstream.py listens on 127.0.0.1:$UP_PORT"

# start_gw NAME OPTIONS...: a gateway on a free loopback port, access log $T/NAME.log,
# stderr $T/NAME.err; sets GW_PORT and GW_PID.
# AVOID_PORT: a port it must not take (a free one reserved for something else).
# The gateway binds with SO_REUSEPORT, so a listener of another process of the same user
# on the port would silently share its connections: every listener must be this one.
AVOID_PORT=""
start_gw() {
    local name="$1" l line; shift
    GW_PORT="$(free_port)"
    while [[ "$GW_PORT" == "$AVOID_PORT" ]]; do GW_PORT="$(free_port)"; done
    "$PQMTLS_BIN" gateway --listen "127.0.0.1:$GW_PORT" --access-log "$T/$name.log" "$@" \
        > "$T/$name.out" 2> "$T/$name.err" &
    GW_PID=$!
    track_pid "$GW_PID"
    GW_NAME[$GW_PID]="$name"
    wait_listen "$GW_PORT" "$GW_PID" \
        || fail "gateway $name did not listen on 127.0.0.1:$GW_PORT: $(tail -n 5 "$T/$name.err")"
    l="$(ss -ltnpH "( sport = :$GW_PORT )" 2>/dev/null || true)"
    if [[ "$l" == *pid=* ]]; then
        while IFS= read -r line; do
            [[ "$line" == *"pid=$GW_PID,"* ]] || fail "gateway $name: another process listens on port $GW_PORT too: $line"
        done <<<"$l"
    fi
}
# wait_exit PID SECONDS: wait for a child to exit (its status in RC), or fail.
wait_exit() {
    local i
    for ((i = 0; i < $2 * 20; i++)); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$1" 2>/dev/null && fail "process $1 did not exit within $2 s"
    set +e
    wait "$1"
    RC=$?
    set -e
}
SRV=(--client-ca "$CCHAIN")

# ---------------------------------------------------------------- clients
CODE="" EV=""
# gcurl PORT CERT KEY PATH [curl options...]: curl on OpenSSL 3.5 to https://api.example.com:PORT/PATH,
# trusting the server CA chain only; CERT "-" for none. Status in CODE, body in $T/body,
# stderr in $T/curl.err, exit in RC.
gcurl() {
    local port="$1" cert="$2" key="$3" path="$4"; shift 4
    local ca=()
    [[ "$cert" != - ]] && ca=(--cert "$cert" --key "$key")
    set +e
    CODE="$(with_ossl35 "$CURL_BIN" -sS --max-time 30 --cacert "$SCHAIN" "${ca[@]}" \
        --resolve "api.example.com:$port:127.0.0.1" -o "$T/body" -w '%{http_code}' "$@" \
        "https://api.example.com:$port$path" 2> "$T/curl.err")"
    RC=$?
    set -e
}
# resume PORT CERT KEY SESSION OUT: s_client offering SESSION (-sess_in) with $T/req,
# without -quiet, so that OUT says whether the session was reused ("Reused, TLSv1.3").
resume() {
    set +e
    timeout 20 env OPENSSL_CONF=/dev/null LD_LIBRARY_PATH="$OPENSSL_LIBDIR" "$OPENSSL_BIN" s_client \
        -connect "127.0.0.1:$1" -servername api.example.com -CAfile "$SCHAIN" -cert "$2" \
        -key "$3" -sess_in "$4" -ign_eof < "$T/req" > "$5" 2>&1
    set -e
}
# gcurl_200 TRIES PAUSE PORT CERT KEY PATH: gcurl until the answer is 200 (a reload or a
# freed connection slot taking effect), at most TRIES times PAUSE seconds apart.
gcurl_200() {
    local tries="$1" pause="$2" i; shift 2
    for ((i = 0; i < tries; i++)); do
        gcurl "$@"
        [[ "$CODE" == 200 ]] && return 0
        sleep "$pause"
    done
}
# sclient PORT CERT KEY INFILE OUTFILE [s_client options...]: the bytes of INFILE over mTLS
# (s_client -quiet -ign_eof: reads until the server closes), the server verified by name;
# the answer in OUTFILE, stderr in OUTFILE.err, exit in RC.
sclient() {
    local port="$1" cert="$2" key="$3" in="$4" out="$5"; shift 5
    local ca=()
    [[ "$cert" != - ]] && ca=(-cert "$cert" -key "$key")
    set +e
    timeout 20 env OPENSSL_CONF=/dev/null LD_LIBRARY_PATH="$OPENSSL_LIBDIR" "$OPENSSL_BIN" s_client \
        -connect "127.0.0.1:$port" -servername api.example.com -verify_hostname api.example.com \
        -CAfile "$SCHAIN" -verify_return_error "${ca[@]}" -quiet -ign_eof "$@" \
        < "$in" > "$out" 2> "$out.err"
    RC=$?
    set -e
}
# replace SRC DST: DST gets SRC's content at once (a reader sees the old or the new file)
replace() { cp "$1" "$2.tmp" && mv -f "$2.tmp" "$2"; }
# nlines FILE: its number of lines (0 when absent)
nlines() { if [[ -f "$1" ]]; then wc -l < "$1"; else echo 0; fi; }
# log_event LOG SKIP KEY=VALUE...: wait (5 s) for a JSON line after line SKIP of LOG with
# all KEY=VALUE; the line in EV, or fail.
log_event() {
    local log="$1" skip="$2" i rc; shift 2
    for ((i = 0; i < 100; i++)); do
        set +e
        EV="$(py find "$log" "$skip" "$@")"
        rc=$?
        set -e
        [[ $rc -eq 0 ]] && return 0
        [[ $rc -eq 3 ]] || fail "$log is not JSON lines: $EV"
        sleep 0.05
    done
    fail "no line with $* in $log after line $skip: $(tail -n +"$((skip + 1))" "$log" 2>/dev/null | head -c 2000)"
}
# refused_as DESC LOG SKIP CODE: the next handshake_refused line of LOG says reason_code CODE.
refused_as() {
    local desc="$1" log="$2" skip="$3" code="$4" got
    log_event "$log" "$skip" event=handshake_refused
    got="$(py get reason_code <<<"$EV")"
    [[ "$got" == "$code" ]] || fail "$desc: expected reason_code $code, got '$got': $EV"
    [[ -n "$(py get reason <<<"$EV")" ]] || fail "$desc: the refusal has no reason: $EV"
    pass "$desc: access log reason_code $code ($(py get reason <<<"$EV"))"
}
# record PATH: the upstream's (last) record of a request for PATH in REC_J, or fail.
REC_J=""
record() {
    set +e
    REC_J="$(py findlast "$REC" 0 path="$1")"
    local rc=$?
    set -e
    [[ $rc -eq 0 ]] || fail "the upstream recorded no request for $1: $(tail -n 3 "$REC" | head -c 2000)"
}
# one_hdr DESC NAME WANT: the record REC_J has the header NAME exactly once, equal to WANT.
one_hdr() {
    local got
    got="$(py hdr "$2" <<<"$REC_J")"
    [[ "$got" == "$3" ]] || fail "$1: expected exactly one '$2: $3' at the upstream, got: '$got' :: $(py ident <<<"$REC_J")"
    pass "$1"
}

# ================================================================ the main gateway
# Live copies of the files that the reload tests replace; --watch-interval 0: only SIGHUP
# reloads (the file watcher would reload them too, and hide a SIGHUP that does nothing).
mkdir -p "$T/live"
cp "$I/api.example.com.chain.pem" "$T/live/cert.pem"
cp "$I/api.example.com.key.pem" "$T/live/key.pem"
cp "$CCHAIN" "$T/live/client-ca.pem"
start_gw main --upstream "127.0.0.1:$UP_PORT" --cert "$T/live/cert.pem" --key "$T/live/key.pem" \
    --client-ca "$T/live/client-ca.pem" --workers 2 --watch-interval 0
GA="$GW_PORT" GA_PID="$GW_PID" LA="$T/main.log"
pass "gateway listens on 127.0.0.1:$GA (upstream 127.0.0.1:$UP_PORT)"

# ---------------------------------------------------------------- 1. client1 through curl
c1="$I/client1.crt.pem"
k1="$I/client1.key.pem"
skip="$(nlines "$LA")"
gcurl "$GA" "$c1" "$k1" /case1/client1
[[ $RC -eq 0 && "$CODE" == 200 ]] || fail "curl with client1: expected 200, got '$CODE' (exit $RC): $(cat "$T/curl.err") $(head -c 500 "$T/body")"
pass "client1: HTTP 200 through the gateway"
[[ "$(py get upstream < "$T/body")" == ok && "$(py get path < "$T/body")" == /case1/client1 ]] \
    || fail "client1: the body is not the upstream's answer for /case1/client1: $(head -c 500 "$T/body")"
pass "client1: the body is the upstream's answer"
record /case1/client1
[[ "$(py get method <<<"$REC_J")" == GET && "$(py get version <<<"$REC_J")" == HTTP/1.1 ]] \
    || fail "client1: the upstream did not get GET ... HTTP/1.1: $REC_J"
C1_SUBJECT="$(cert_subject "$c1")"
C1_ISSUER="$(cert_issuer "$c1")"
C1_SERIAL="$(cert_serial "$c1")"
C1_FP="$(cert_fp "$c1")"
[[ "$C1_SUBJECT" == *CN=client1* && "$C1_SERIAL" =~ ^[0-9A-F]+$ && "$C1_FP" =~ ^[0-9a-f]{64}$ ]] \
    || fail "openssl's view of client1 is not what was expected: '$C1_SUBJECT' '$C1_SERIAL' '$C1_FP'"
one_hdr "client1: X-Client-Cert-Subject is openssl's RFC 2253 subject ($C1_SUBJECT)" X-Client-Cert-Subject "$C1_SUBJECT"
one_hdr "client1: X-Client-Cert-Issuer is openssl's RFC 2253 issuer" X-Client-Cert-Issuer "$C1_ISSUER"
one_hdr "client1: X-Client-Cert-Serial is openssl's serial ($C1_SERIAL)" X-Client-Cert-Serial "$C1_SERIAL"
one_hdr "client1: X-Client-Cert-Fingerprint is the SHA-256 of the certificate" X-Client-Cert-Fingerprint "$C1_FP"
one_hdr "client1: X-Client-Cert-Verify: SUCCESS" X-Client-Cert-Verify SUCCESS
one_hdr "client1: X-Forwarded-For: 127.0.0.1" X-Forwarded-For 127.0.0.1
one_hdr "client1: X-Forwarded-Proto: https" X-Forwarded-Proto https
one_hdr "client1: no X-Client-Cert-Spiffe-Id (the certificate has no SPIFFE ID)" X-Client-Cert-Spiffe-Id ""
log_event "$LA" "$skip" event=request path=/case1/client1
miss="$(py missing subject issuer serial sha256 not_after spiffe_id tls_version group sigalg resumed \
    method path status bytes upstream_ms total_ms <<<"$EV")"
[[ -z "$miss" ]] || fail "client1: the access log line lacks: $miss :: $EV"
pass "client1: the access log line has every documented field"
for kv in tls_version=TLSv1.3 group=X25519MLKEM768 status=200 method=GET subject="$C1_SUBJECT" \
    issuer="$C1_ISSUER" serial="$C1_SERIAL" sha256="$C1_FP" spiffe_id= resumed=false; do
    got="$(py get "${kv%%=*}" <<<"$EV")"
    [[ "$got" == "${kv#*=}" ]] || fail "client1: access log ${kv%%=*}: expected '${kv#*=}', got '$got': $EV"
done
pass "client1: access log says TLSv1.3, X25519MLKEM768, status 200, and client1's identity"
# The client's chain file (leaf + intermediate) as its certificate: the same identity.
gcurl "$GA" "$I/client1.chain.pem" "$k1" /case1/chain
[[ "$CODE" == 200 ]] || fail "client1 with its chain file: expected 200, got '$CODE': $(cat "$T/curl.err")"
record /case1/chain
one_hdr "client1 presenting its chain file: the leaf's fingerprint is sent" X-Client-Cert-Fingerprint "$C1_FP"
# A resumed TLS session (tickets are on by default) carries the same identity.
printf 'GET /case1/ticket HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n' > "$T/req"
sclient "$GA" "$c1" "$k1" "$T/req" "$T/resp" -sess_out "$T/session.pem"
[[ $RC -eq 0 && -s "$T/session.pem" ]] || fail "s_client -sess_out: no session saved (exit $RC): $(tail -n 3 "$T/resp.err")"
printf 'GET /case1/resumed HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n' > "$T/req"
skip="$(nlines "$LA")"
sclient "$GA" "$c1" "$k1" "$T/req" "$T/resp" -sess_in "$T/session.pem"
run py responses "$T/resp"
[[ "$OUT" == $'200\t/case1/resumed\t-' ]] || fail "resumed session: expected 200, got '$OUT': $(tail -n 3 "$T/resp.err")"
log_event "$LA" "$skip" event=request path=/case1/resumed
[[ "$(py get resumed <<<"$EV")" == true ]] || fail "s_client -sess_in: the access log says the session was not resumed: $EV"
pass "a resumed session (s_client -sess_in): 200, access log resumed true"
record /case1/resumed
one_hdr "resumed session: X-Client-Cert-Subject is still client1's" X-Client-Cert-Subject "$C1_SUBJECT"
one_hdr "resumed session: X-Client-Cert-Fingerprint is still client1's" X-Client-Cert-Fingerprint "$C1_FP"

# A CN with UTF-8, RFC 2253 specials and CR LF, and a serial with a leading zero.
gcurl "$GA" "$F/odd.crt.pem" "$F/odd.key.pem" /case1/odd
[[ "$CODE" == 200 ]] || fail "the odd-subject certificate: expected 200, got '$CODE': $(cat "$T/curl.err")"
record /case1/odd
one_hdr "odd subject: X-Client-Cert-Subject is openssl's RFC 2253 text ($(cert_subject "$F/odd.crt.pem"))" \
    X-Client-Cert-Subject "$(cert_subject "$F/odd.crt.pem")"
one_hdr "odd subject: X-Client-Cert-Serial is openssl's (0A0B)" X-Client-Cert-Serial "$(cert_serial "$F/odd.crt.pem")"
[[ "$(cert_serial "$F/odd.crt.pem")" == 0A0B ]] || fail "openssl prints the forged serial as $(cert_serial "$F/odd.crt.pem")"
one_hdr "odd subject: no header injected through CR LF in the CN" X-Injected ""
# Serial 0 (not RFC 5280's "positive", but OpenSSL's strict checks let it through):
# refused, or the header is openssl's text "00".
gcurl "$GA" "$F/serial0.crt.pem" "$F/serial0.key.pem" /case1/serial0
if [[ "$CODE" != 200 ]]; then
    pass "serial 0: certificate refused (HTTP '$CODE')"
else
    record /case1/serial0
    got="$(py hdr X-Client-Cert-Serial <<<"$REC_J")"
    if [[ "$got" == 00 ]]; then
        pass "serial 0: X-Client-Cert-Serial is openssl's 00"
    else
        fail "serial 0: X-Client-Cert-Serial is '$got', openssl x509 -serial says 00"
    fi
fi

# ---------------------------------------------------------------- 2. the SPIFFE workload, s_client
printf 'GET /case2/svc HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n' > "$T/req"
skip="$(nlines "$LA")"
sclient "$GA" "$I/svc.crt.pem" "$I/svc.key.pem" "$T/req" "$T/resp"
[[ $RC -eq 0 ]] || fail "s_client with svc failed (exit $RC): $(tail -n 5 "$T/resp.err")"
run py responses "$T/resp"
[[ "$OUT" == $'200\t/case2/svc\t-' ]] || fail "s_client with svc: expected one 200 from the upstream for /case2/svc, got: $OUT"
pass "svc (s_client): HTTP 200 with the upstream's answer"
record /case2/svc
one_hdr "svc: X-Client-Cert-Spiffe-Id is the SPIFFE ID" X-Client-Cert-Spiffe-Id "$SPIFFE_ID"
one_hdr "svc: X-Client-Cert-Subject is svc's" X-Client-Cert-Subject "$(cert_subject "$I/svc.crt.pem")"
log_event "$LA" "$skip" event=request path=/case2/svc
[[ "$(py get spiffe_id <<<"$EV")" == "$SPIFFE_ID" ]] || fail "svc: access log spiffe_id is not the SPIFFE ID: $EV"
pass "svc: access log spiffe_id is the SPIFFE ID"

# KeyUpdate (update_requested) then a request, on one connection: s_client's command
# letters need it without -quiet/-ign_eof, so stdin stays open until the answer is in.
# No request line may start with a command letter, as stdin can arrive line by line
# ('C' reconnects): no Connection line; s_client closes when its stdin ends.
skip="$(nlines "$LA")"
set +e
{ printf 'K\n'; sleep 0.5
  printf 'GET /case2/keyupdate HTTP/1.1\nHost: api.example.com\n\n'; sleep 3
} | timeout 20 env OPENSSL_CONF=/dev/null LD_LIBRARY_PATH="$OPENSSL_LIBDIR" "$OPENSSL_BIN" s_client \
    -connect "127.0.0.1:$GA" -servername api.example.com -verify_hostname api.example.com \
    -CAfile "$SCHAIN" -verify_return_error -cert "$I/svc.crt.pem" -key "$I/svc.key.pem" \
    -crlf -msg -msgfile "$T/ku.msg" > "$T/ku.out" 2> "$T/ku.err"
set -e
grep -q '^KEYUPDATE' "$T/ku.err" || fail "s_client did not send its KeyUpdate: $(tail -n 3 "$T/ku.err")"
grep -qa 'HTTP/1.1 200 OK' "$T/ku.out" || fail "after a KeyUpdate: no 200 from the gateway: $(grep -ao 'HTTP/1.1 [0-9]*' "$T/ku.out"; tail -n 3 "$T/ku.err")"
record /case2/keyupdate
grep -q '^<<< .*KeyUpdate' "$T/ku.msg" || fail "the gateway did not answer a KeyUpdate that asked for its own: $(grep -a KeyUpdate "$T/ku.msg")"
log_event "$LA" "$skip" event=request path=/case2/keyupdate status=200
pass "KeyUpdate (update_requested) from s_client: the gateway sent its own and answered 200 under the new keys"

# ---------------------------------------------------------------- 3. spoofed identity headers
printf '%s\r\n' \
    'POST /case3/spoof HTTP/1.1' \
    'Host: api.example.com' \
    'X-Client-Cert-Subject: CN=admin,O=Example' \
    'x_client_cert_verify: SUCCESS' \
    'X-CLIENT-CERT-SERIAL: 01' \
    'X-CLIENT-CERT-SERIAL: 02' \
    'x-client-cert-fingerprint: 0000' \
    'X-Client-Cert-Issuer: CN=Evil CA' \
    'X_Client_Cert_Spiffe_Id: spiffe://cluster.local/ns/kube-system/sa/admin' \
    'X-Forwarded-Client-Cert: By=spiffe://cluster.local/admin;Hash=00' \
    'Client-Cert: :MIIB:' \
    'Client-Cert-Chain: :MIIB:' \
    'X-SSL-Client-Verify: SUCCESS' \
    'X-Forwarded-For: 6.6.6.6' \
    'x-forwarded-proto: http' \
    'X-Custom-Kept: yes' \
    'Transfer-Encoding: chunked' \
    'Connection: close' \
    '' \
    '5' \
    'hello' \
    '0' \
    'X-Client-Cert-Verify: TRAILER' \
    'Client-Cert: :TRAILER:' \
    '' > "$T/req"
sclient "$GA" "$c1" "$k1" "$T/req" "$T/resp"
run py responses "$T/resp"
[[ "$OUT" == $'200\t/case3/spoof\t-' ]] || fail "spoofed headers: expected 200 from the upstream, got: $OUT $(tail -n 3 "$T/resp.err")"
pass "request with spoofed identity headers: 200 (forwarded, cleaned)"
record /case3/spoof
one_hdr "spoof: an ordinary header still reaches the upstream" X-Custom-Kept yes
[[ "$(py get body_len <<<"$REC_J")" == 5 && "$(py get trailers <<<"$REC_J")" == "[]" ]] \
    || fail "spoof: expected the 5-byte body and no trailer at the upstream: $REC_J"
pass "spoof: the body arrived, the trailer fields did not"
want="X-Client-Cert-Subject: $C1_SUBJECT
X-Client-Cert-Issuer: $C1_ISSUER
X-Client-Cert-Serial: $C1_SERIAL
X-Client-Cert-Fingerprint: $C1_FP
X-Client-Cert-Verify: SUCCESS
X-Forwarded-For: 127.0.0.1
X-Forwarded-Proto: https"
got="$(py ident <<<"$REC_J")"
[[ "$got" == "$want" ]] || fail "spoof: the upstream's identity-like headers are not exactly the gateway's own:
--- expected
$want
--- got
$got"
pass "spoof: every spoofed header removed (any case, '_', repeated, XFCC, Client-Cert(-Chain), X-SSL-Client, XFF), only the gateway's values arrive"
# Spoofing through the certificate: a SPIFFE URI SAN with CR LF, signed by the client CA.
# Refusing the certificate is fine; forwarding a second X-Client-Cert-Verify is not.
gcurl "$GA" "$F/crlfspiffe.crt.pem" "$F/crlfspiffe.key.pem" /case3/crlf-spiffe
if [[ "$CODE" != 200 ]]; then
    pass "a SPIFFE URI with CR LF: certificate refused (HTTP '$CODE')"
else
    record /case3/crlf-spiffe
    got="$(py hdr X-Client-Cert-Verify <<<"$REC_J")"
    if [[ "$got" == SUCCESS ]]; then
        pass "a SPIFFE URI with CR LF: no header injected (X-Client-Cert-Verify: SUCCESS only)"
    else
        fail "a client certificate whose SPIFFE URI SAN holds CR LF injects headers: the upstream got X-Client-Cert-Verify values '${got//$'\n'/' | '}' :: $(py ident <<<"$REC_J" | tr '\n' '|')"
    fi
fi

# ---------------------------------------------------------------- 4. refused handshakes
recs_before="$(nlines "$REC")"
# refused_curl DESC CERT KEY CODE: curl with CERT must not get an answer, and the log says CODE
refused_curl() {
    local desc="$1" cert="$2" key="$3" code="$4" skip
    skip="$(nlines "$LA")"
    gcurl "$GA" "$cert" "$key" /case4/refused
    [[ $RC -ne 0 && "$CODE" != 200 ]] || fail "$desc: expected the handshake refused, got HTTP '$CODE' (curl exit $RC)"
    pass "$desc: curl refused (exit $RC, $(head -n 1 "$T/curl.err" | cut -c1-120))"
    refused_as "$desc" "$LA" "$skip" "$code"
}
refused_curl "no client certificate" - - no_certificate
refused_curl "client1 of a second, separate PKI" "$P2/issued/client1.chain.pem" "$P2/issued/client1.key.pem" unknown_ca
refused_curl "expired client certificate" "$F/expired.crt.pem" "$F/expired.key.pem" expired
refused_curl "not yet valid client certificate" "$F/notyet.crt.pem" "$F/notyet.key.pem" not_yet_valid
refused_curl "serverAuth-only certificate of the client intermediate" "$F/srvonly.crt.pem" "$F/srvonly.key.pem" wrong_eku
refused_curl "certificate of the client intermediate without EKU" "$F/noeku.crt.pem" "$F/noeku.key.pem" wrong_eku
refused_curl "SPIFFE URI outside cluster.local" "$F/badspiffe.crt.pem" "$F/badspiffe.key.pem" name_constraints
# The server's own certificate (with its chain): not from the client CA, and serverAuth only.
skip="$(nlines "$LA")"
gcurl "$GA" "$I/api.example.com.chain.pem" "$I/api.example.com.key.pem" /case4/refused
[[ $RC -ne 0 && "$CODE" != 200 ]] || fail "server certificate as client certificate: expected a refusal, got HTTP '$CODE'"
pass "the server's own certificate as a client certificate: curl refused (exit $RC)"
log_event "$LA" "$skip" event=handshake_refused
got="$(py get reason_code <<<"$EV")"
[[ "$got" == unknown_ca || "$got" == wrong_eku ]] || fail "server certificate as client certificate: reason_code '$got': $EV"
pass "the server's own certificate: access log reason_code $got"
# TLS 1.2
printf 'GET /case4/tls12 HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n' > "$T/req"
skip="$(nlines "$LA")"
sclient "$GA" "$c1" "$k1" "$T/req" "$T/resp" -tls1_2
[[ $RC -ne 0 && ! -s "$T/resp" ]] || fail "TLS 1.2: expected the handshake refused (exit $RC): $(head -c 300 "$T/resp")"
pass "TLS 1.2 client: refused"
refused_as "TLS 1.2 client" "$LA" "$skip" protocol
# The same forging, done right, passes: the refusals above are for what they test.
gcurl "$GA" "$F/good.crt.pem" "$F/good.key.pem" /case4/forged-good
[[ "$CODE" == 200 ]] || fail "a correctly forged client certificate: expected 200, got '$CODE': $(cat "$T/curl.err")"
pass "a client certificate forged the same way but correct: 200"
[[ "$(nlines "$REC")" -eq $((recs_before + 1)) && "$(py count "$REC" path /case4/refused)" -eq 0 ]] \
    || fail "refused handshakes reached the upstream: $(tail -n 3 "$REC" | head -c 1500)"
pass "no refused client reached the upstream"

# ---------------------------------------------------------------- 5. --require-pq
start_gw pq --upstream "127.0.0.1:$UP_PORT" --cert "$I/api.example.com.chain.pem" \
    --key "$I/api.example.com.key.pem" "${SRV[@]}" --workers 1 --require-pq
GB="$GW_PORT" LB="$T/pq.log"
printf 'GET /case5/pq-x25519 HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n' > "$T/req"
skip="$(nlines "$LB")"
sclient "$GB" "$c1" "$k1" "$T/req" "$T/resp" -groups X25519
[[ $RC -ne 0 && ! -s "$T/resp" ]] || fail "--require-pq: s_client -groups X25519 was not refused (exit $RC): $(head -c 300 "$T/resp")"
pass "--require-pq: s_client -groups X25519 refused"
refused_as "--require-pq, X25519 only" "$LB" "$skip" not_pq
# --require-pq still lets in clients that offer an ML-KEM hybrid (the ClientHello's group
# code points are read as groups, not as NIDs).
printf 'GET /case5/pq-mlkem HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n' > "$T/req"
skip="$(nlines "$LB")"
sclient "$GB" "$c1" "$k1" "$T/req" "$T/resp" -groups X25519MLKEM768
run py responses "$T/resp"
if [[ "$OUT" == $'200\t/case5/pq-mlkem\t-' ]]; then
    log_event "$LB" "$skip" event=request path=/case5/pq-mlkem
    [[ "$(py get group <<<"$EV")" == X25519MLKEM768 ]] || fail "--require-pq: logged group is not X25519MLKEM768: $EV"
    pass "--require-pq: s_client -groups X25519MLKEM768 accepted (200, logged X25519MLKEM768)"
else
    fail "--require-pq refuses a client offering X25519MLKEM768 (s_client -groups X25519MLKEM768: exit $RC, answer '$OUT', log: $(tail -n 1 "$LB"))"
fi
gcurl "$GB" "$c1" "$k1" /case5/pq-curl
if [[ "$CODE" == 200 ]]; then
    pass "--require-pq: curl (default groups, X25519MLKEM768 first) accepted"
else
    fail "--require-pq refuses curl, whose default groups start with X25519MLKEM768 (HTTP '$CODE', exit $RC: $(head -n 1 "$T/curl.err"))"
fi
# The default gateway: X25519 is the fallback.
printf 'GET /case5/x25519 HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n' > "$T/req"
skip="$(nlines "$LA")"
sclient "$GA" "$c1" "$k1" "$T/req" "$T/resp" -groups X25519
run py responses "$T/resp"
[[ "$OUT" == $'200\t/case5/x25519\t-' ]] || fail "default gateway: s_client -groups X25519: expected 200, got '$OUT' (exit $RC): $(tail -n 3 "$T/resp.err")"
pass "default gateway: s_client -groups X25519 accepted"
log_event "$LA" "$skip" event=request path=/case5/x25519
got="$(py get group <<<"$EV")"
# OpenSSL (and the IANA registry) spell the group "x25519".
[[ "${got,,}" == x25519 && "$(py get tls_version <<<"$EV")" == TLSv1.3 ]] \
    || fail "default gateway, -groups X25519: access log group '$got' (expected X25519): $EV"
pass "default gateway: access log group $got, TLSv1.3"

# ---------------------------------------------------------------- 6. ambiguous requests
# Each carries a complete request for /case6/smuggled-N inside, which must never arrive.
recs_before="$(nlines "$REC")"
smuggle() {
    local desc="$1" bytes="$2" skip
    printf '%b' "$bytes" > "$T/req"
    skip="$(nlines "$LA")"
    sclient "$GA" "$c1" "$k1" "$T/req" "$T/resp"
    [[ $RC -ne 124 ]] || fail "$desc: the gateway did not close the connection after its answer"
    run py responses "$T/resp"
    [[ "$OUT" == $'400\t-\tbad_request' ]] || fail "$desc: expected exactly one 400 with a JSON error bad_request, got: $OUT :: $(head -c 400 "$T/resp")"
    log_event "$LA" "$skip" event=request status=400
    pass "$desc: 400 {\"error\":\"bad_request\"}, connection closed, logged"
}
# (printf -v: a command substitution would drop the final LF)
printf -v s1 'GET /case6/smuggled-%d HTTP/1.1\r\nHost: api.example.com\r\n\r\n' 1
printf -v s2 'GET /case6/smuggled-%d HTTP/1.1\r\nHost: api.example.com\r\n\r\n' 2
printf -v s3 'GET /case6/smuggled-%d HTTP/1.1\r\nHost: api.example.com\r\n\r\n' 3
printf -v s4 'GET /case6/smuggled-%d HTTP/1.1\r\nHost: api.example.com\r\n\r\n' 4
smuggle "Content-Length and Transfer-Encoding" \
    "POST /case6/a HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n$s1"
smuggle "two Content-Length fields" \
    "POST /case6/b HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 0\r\nContent-Length: ${#s2}\r\n\r\n$s2"
smuggle "bad chunk size" \
    "POST /case6/c HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n$s3\r\n0\r\n\r\n"
smuggle "obs-fold" \
    "GET /case6/d HTTP/1.1\r\nHost: api.example.com\r\nX-Note: a\r\n Content-Length: ${#s4}\r\n\r\n$s4"
smuggle "bare LF line endings" \
    "GET /case6/e HTTP/1.1\nHost: api.example.com\n\nGET /case6/smuggled-5 HTTP/1.1\nHost: api.example.com\n\n"
smuggle "bare LF inside the head" \
    "GET /case6/f HTTP/1.1\r\nHost: api.example.com\nX-A: b\r\n\r\n"
smuggle "bare CR" \
    "GET /case6/g HTTP/1.1\r\nHost: api.example.com\r\nX-A: b\rTransfer-Encoding: chunked\r\n\r\n"
smuggle "no Host" "GET /case6/h HTTP/1.1\r\n\r\n"
smuggle "two Host fields" "GET /case6/i HTTP/1.1\r\nHost: api.example.com\r\nHost: evil.example\r\n\r\n"
# A normal request afterwards: it arrives, and it is the only thing that did.
gcurl "$GA" "$c1" "$k1" /case6/after
[[ "$CODE" == 200 ]] || fail "a normal request after the refused ones: expected 200, got '$CODE'"
sleep 0.2
[[ "$(nlines "$REC")" -eq $((recs_before + 1)) ]] \
    || fail "ambiguous requests reached the upstream: $(tail -n +"$((recs_before + 1))" "$REC" | head -c 3000)"
[[ "$(py count "$REC" path /case6/)" -eq 1 ]] || fail "the upstream recorded more /case6 requests than the last one"
pass "nothing of the ambiguous requests reached the upstream (its record grew by the next good request only)"

# ---------------------------------------------------------------- 7. keep-alive, pipelining
run with_ossl35 "$CURL_BIN" -sS --max-time 30 --cacert "$SCHAIN" --cert "$c1" --key "$k1" \
    --resolve "api.example.com:$GA:127.0.0.1" -w '%{http_code} %{num_connects}\n' \
    -o "$T/k1" "https://api.example.com:$GA/case7/keep-1" -o "$T/k2" "https://api.example.com:$GA/case7/keep-2"
[[ $RC -eq 0 && "$OUT" == $'200 1\n200 0' ]] \
    || fail "keep-alive: expected '200 1' then '200 0' (one TCP connection for two requests), got (exit $RC): $OUT"
[[ "$(py get path < "$T/k1")" == /case7/keep-1 && "$(py get path < "$T/k2")" == /case7/keep-2 ]] \
    || fail "keep-alive: the answers are not the upstream's for keep-1 and keep-2"
pass "keep-alive: curl sends two requests over one TCP connection, both answered"
printf 'GET /case7/pipe-1 HTTP/1.1\r\nHost: api.example.com\r\n\r\nPOST /case7/pipe-2 HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 5\r\n\r\nhelloGET /case7/pipe-3 HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n' > "$T/req"
sclient "$GA" "$c1" "$k1" "$T/req" "$T/resp"
run py responses "$T/resp"
[[ "$OUT" == $'200\t/case7/pipe-1\t-\n200\t/case7/pipe-2\t-\n200\t/case7/pipe-3\t-' ]] \
    || fail "pipelining: expected three 200s for pipe-1, pipe-2, pipe-3 in order, got: $OUT"
pass "pipelining: three requests in one write, three answers in order"
record /case7/pipe-2
[[ "$(py get body_len <<<"$REC_J")" == 5 ]] || fail "pipelining: pipe-2's body did not arrive: $REC_J"
pass "pipelining: the body of the middle request arrived"

# ---------------------------------------------------------------- 8. bodies
head -c 100000 /dev/urandom > "$T/body-100k"
head -c 5242880 /dev/urandom > "$T/body-5m"
sum_100k="$(sha256sum "$T/body-100k" | cut -d' ' -f1)"
sum_5m="$(sha256sum "$T/body-5m" | cut -d' ' -f1)"
gcurl "$GA" "$c1" "$k1" /case8/chunked -H 'Transfer-Encoding: chunked' --data-binary "@$T/body-100k"
[[ "$CODE" == 200 ]] || fail "chunked body: expected 200, got '$CODE': $(cat "$T/curl.err")"
record /case8/chunked
[[ "$(py get chunked <<<"$REC_J")" == true && "$(py get body_len <<<"$REC_J")" == 100000 \
    && "$(py get body_sha256 <<<"$REC_J")" == "$sum_100k" ]] \
    || fail "chunked body: the upstream did not get the 100000 bytes intact, chunked: $(head -c 300 <<<"$REC_J")"
pass "a chunked request body (100 KB) reaches the upstream intact"
gcurl "$GA" "$c1" "$k1" /case8/big --data-binary "@$T/body-5m" -v
[[ "$CODE" == 200 ]] || fail "5 MB body: expected 200, got '$CODE': $(tail -n 5 "$T/curl.err")"
record /case8/big
[[ "$(py get body_len <<<"$REC_J")" == 5242880 && "$(py get body_sha256 <<<"$REC_J")" == "$sum_5m" ]] \
    || fail "5 MB body: the upstream did not get it intact: $(head -c 300 <<<"$REC_J")"
pass "a 5 MB Content-Length body reaches the upstream intact"
one_hdr "5 MB body: the upstream saw Expect: 100-continue" Expect 100-continue
ce="$(cat "$T/curl.err")"
assert_contains "5 MB body: curl sent Expect: 100-continue" "$ce" "> Expect: 100-continue"
assert_contains "5 MB body: curl got the 100 Continue through the gateway" "$ce" "< HTTP/1.1 100 Continue"
gcurl "$GA" "$c1" "$k1" /bytes/5242883
[[ "$CODE" == 200 ]] || fail "5 MB response: expected 200, got '$CODE'"
want_sum="$("$PYTHON" -c 'import sys; P = bytes(range(256)) * 16; n = 5242883; sys.stdout.buffer.write((P * (n // len(P) + 1))[:n])' | sha256sum | cut -d' ' -f1)"
[[ "$(sha256sum "$T/body" | cut -d' ' -f1)" == "$want_sum" ]] || fail "5 MB response: curl did not get the upstream's bytes intact ($(wc -c < "$T/body") bytes)"
pass "a 5 MB response reaches curl intact"

# ---------------------------------------------------------------- 9. upstream down, silent
DEAD_PORT="$(free_port)"
AVOID_PORT="$DEAD_PORT"
start_gw down --upstream "127.0.0.1:$DEAD_PORT" --cert "$I/api.example.com.chain.pem" \
    --key "$I/api.example.com.key.pem" "${SRV[@]}" --workers 1 --handshake-timeout 1
GC="$GW_PORT" LC="$T/down.log"
gcurl "$GC" "$c1" "$k1" /case9/down
[[ "$CODE" == 502 && "$(py get error < "$T/body")" == bad_gateway ]] \
    || fail "upstream down: expected 502 with error bad_gateway, got '$CODE': $(head -c 300 "$T/body")"
pass "upstream down: 502 {\"error\":\"bad_gateway\",...}"
log_event "$LC" 0 event=request path=/case9/down status=502
pass "upstream down: logged with status 502"
# A client that connects and says nothing: refused after --handshake-timeout.
skip="$(nlines "$LC")"
exec 9<>"/dev/tcp/127.0.0.1/$GC"
refused_as "a client silent during the handshake (--handshake-timeout 1)" "$LC" "$skip" timeout
exec 9>&-

# held PORT OUT [INPUT...]: an mTLS connection that sends INPUT (printf format), then
# nothing for 8 s; s_client ends when the gateway closes (its stdin is a process
# substitution: nothing waits for the writer). Its run time in HELD_S.
held() {
    local port="$1" out="$2" t0=$SECONDS; shift 2
    set +e
    timeout 12 env OPENSSL_CONF=/dev/null LD_LIBRARY_PATH="$OPENSSL_LIBDIR" "$OPENSSL_BIN" \
        s_client -connect "127.0.0.1:$port" -servername api.example.com -CAfile "$SCHAIN" \
        -cert "$c1" -key "$k1" -quiet > "$out" 2>&1 < <([[ $# -gt 0 ]] && printf "$@"; sleep 8)
    set -e
    HELD_S=$((SECONDS - t0))
}
start_gw limits --upstream "127.0.0.1:$UP_PORT" --cert "$I/api.example.com.chain.pem" \
    --key "$I/api.example.com.key.pem" "${SRV[@]}" --workers 1 --header-timeout 1 --idle-timeout 1
GL="$GW_PORT"
held "$GL" "$T/held-silent.out" &
HPID=$!
track_pid $HPID
sleep 0.5
gcurl "$GL" "$c1" "$k1" /case9/beside-silent
[[ "$CODE" == 200 ]] || fail "beside a client silent after its handshake (one worker): '$CODE'"
wait "$HPID"
held "$GL" "$T/held-silent.out"
(( HELD_S <= 5 )) || fail "a client silent after its handshake was held ${HELD_S} s with --header-timeout 1"
pass "a client that sends no request is closed after --header-timeout (${HELD_S} s), and another is served meanwhile"
held "$GL" "$T/held-idle.out" 'GET /case9/idle HTTP/1.1\r\nHost: api.example.com\r\n\r\n'
grep -qa 'HTTP/1.1 200' "$T/held-idle.out" || fail "--idle-timeout: the request before the idle time got no 200: $(head -c 300 "$T/held-idle.out")"
(( HELD_S <= 5 )) || fail "an idle keep-alive connection was held ${HELD_S} s with --idle-timeout 1"
pass "an idle keep-alive connection is closed after --idle-timeout (${HELD_S} s)"
start_gw maxconn --upstream "127.0.0.1:$UP_PORT" --cert "$I/api.example.com.chain.pem" \
    --key "$I/api.example.com.key.pem" "${SRV[@]}" --workers 1 --max-connections 2
GM="$GW_PORT"
held "$GM" "$T/held-1.out" &
H1=$!
track_pid $H1
held "$GM" "$T/held-2.out" &
H2=$!
track_pid $H2
for ((i = 0; i < 50; i++)); do
    [[ $(ss -tnH state established "( sport = :$GM )" | wc -l) -ge 2 ]] && break
    sleep 0.1
done
sleep 0.5 # both handshakes through
gcurl "$GM" "$c1" "$k1" /case9/third --max-time 2
[[ "$CODE" != 200 ]] || fail "--max-connections 2 with two held: a third client was served"
_pqm_kill_tree "$H1"
_pqm_kill_tree "$H2"
wait "$H1" "$H2" 2> /dev/null || true
gcurl_200 20 0.2 "$GM" "$c1" "$k1" /case9/after-held
[[ "$CODE" == 200 ]] || fail "--max-connections 2: once the held connections went, a client still got '$CODE'"
pass "--max-connections 2: a third client waits while two are held, and is served once they go"

start_gw slow --upstream "127.0.0.1:$UP_PORT" --cert "$I/api.example.com.chain.pem" \
    --key "$I/api.example.com.key.pem" "${SRV[@]}" --workers 1 --upstream-timeout 1
GD="$GW_PORT"
t0=$SECONDS
gcurl "$GD" "$c1" "$k1" /sleep/5
[[ "$CODE" == 504 ]] || fail "silent upstream: expected 504, got '$CODE': $(head -c 300 "$T/body") $(cat "$T/curl.err")"
(( SECONDS - t0 <= 4 )) || fail "silent upstream: the 504 took $((SECONDS - t0)) s with --upstream-timeout 1"
err504="$(py get error < "$T/body" 2>/dev/null || true)"
[[ -n "$err504" ]] || fail "silent upstream: the 504 has no JSON body with an error: $(head -c 300 "$T/body")"
pass "upstream silent past --upstream-timeout 1: 504 {\"error\":\"$err504\"} (after $((SECONDS - t0)) s)"
gcurl "$GD" "$c1" "$k1" /case9/after-504
[[ "$CODE" == 200 ]] || fail "after a 504, the next request: expected 200, got '$CODE'"
pass "after a 504 the gateway serves the next request"
# The upstream restarts: a pooled connection to the old one must not turn into a 502.
kill -TERM "$UP_PID"
wait "$UP_PID" 2>/dev/null || true
start_upstream
gcurl "$GA" "$c1" "$k1" /case9/restarted
[[ "$CODE" == 200 ]] || fail "after an upstream restart: expected 200, got '$CODE': $(head -c 300 "$T/body")"
pass "after an upstream restart, requests are answered (stale pooled connection dropped)"

# ---------------------------------------------------------------- 10. revocation
c2="$I/client2.crt.pem"
k2="$I/client2.key.pem"
cp "$C/int.crl.pem" "$T/live/int.crl.pem"
start_gw crl --upstream "127.0.0.1:$UP_PORT" --cert "$I/api.example.com.chain.pem" \
    --key "$I/api.example.com.key.pem" "${SRV[@]}" --workers 1 \
    --crl "$T/live/int.crl.pem" --crl "$C/root.crl.pem" --watch-interval 0
GE="$GW_PORT" GE_PID="$GW_PID" LE="$T/crl.log"
gcurl "$GE" "$c1" "$k1" /case10/client1
[[ "$CODE" == 200 ]] || fail "CRLs of both CAs, client1 not revoked: expected 200, got '$CODE': $(cat "$T/curl.err")"
pass "with both CAs' CRLs: client1 (not revoked) accepted"
gcurl "$GE" "$c2" "$k2" /case10/client2
[[ "$CODE" == 200 ]] || fail "CRLs of both CAs: client2: expected 200, got '$CODE'"
pass "with both CAs' CRLs: client2 accepted"
# A session of client1's, made before the revocation, to offer again after it.
printf 'GET /case10/session HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n' > "$T/req"
sclient "$GE" "$c1" "$k1" "$T/req" "$T/resp" -sess_out "$T/c1.sess"
[[ -s "$T/c1.sess" ]] || fail "no session saved for client1 (s_client -sess_out)"
printf 'GET /case10/resumed HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n' > "$T/req"
resume "$GE" "$c1" "$k1" "$T/c1.sess" "$T/resume-before.out"
assert_contains "before the revocation, client1's session resumes" "$(cat "$T/resume-before.out")" "Reused, TLSv1.3"
# A session made with another listener (case 1's gateway, same certificates and CAs)
# does not resume here: each listener's tickets are its own.
resume "$GE" "$c1" "$k1" "$T/session.pem" "$T/resume-other.out"
ro="$(cat "$T/resume-other.out")"
assert_not_contains "another listener's session is not resumed" "$ro" "Reused, TLSv1.3"
assert_contains "... the client gets its answer after a full handshake" "$ro" "HTTP/1.1 200"
replace "$C/int-revoked.crl.pem" "$T/live/int.crl.pem"
kill -HUP "$GE_PID"
for ((i = 0; i < 50; i++)); do
    skip="$(nlines "$LE")"
    gcurl "$GE" "$c1" "$k1" /case10/client1-revoked
    [[ "$CODE" == 200 ]] || break
    sleep 0.1
done
[[ $RC -ne 0 && "$CODE" != 200 ]] || fail "client1 revoked by the new CRL + SIGHUP: still accepted (HTTP '$CODE')"
pass "client1 revoked in the new CRL, SIGHUP: curl refused"
refused_as "client1 revoked" "$LE" "$skip" revoked
resume "$GE" "$c1" "$k1" "$T/c1.sess" "$T/resume-after.out"
ra="$(cat "$T/resume-after.out")"
assert_not_contains "after the revocation, client1's session does not resume" "$ra" "Reused, TLSv1.3"
assert_not_contains "after the revocation, client1's offered session gets no answer" "$ra" "HTTP/1.1 200"
gcurl "$GE" "$c2" "$k2" /case10/client2-after
[[ "$CODE" == 200 ]] || fail "after client1's revocation, client2: expected 200, got '$CODE': $(cat "$T/curl.err")"
pass "after client1's revocation, client2 is still accepted"

start_gw crl-noroot --upstream "127.0.0.1:$UP_PORT" --cert "$I/api.example.com.chain.pem" \
    --key "$I/api.example.com.key.pem" "${SRV[@]}" --workers 1 --crl "$C/int.crl.pem"
gcurl "$GW_PORT" "$c2" "$k2" /case10/noroot
[[ $RC -ne 0 && "$CODE" != 200 ]] || fail "the root's CRL missing: client2 accepted (HTTP '$CODE')"
pass "the root's CRL missing: curl refused"
refused_as "the root's CRL missing" "$T/crl-noroot.log" 0 crl_missing
start_gw crl-noroot-soft --upstream "127.0.0.1:$UP_PORT" --cert "$I/api.example.com.chain.pem" \
    --key "$I/api.example.com.key.pem" "${SRV[@]}" --workers 1 --crl "$C/int.crl.pem" --crl-soft-fail
gcurl "$GW_PORT" "$c2" "$k2" /case10/noroot-soft
[[ "$CODE" == 200 ]] || fail "the root's CRL missing, --crl-soft-fail: expected 200, got '$CODE': $(cat "$T/curl.err")"
pass "the root's CRL missing, --crl-soft-fail: accepted"
start_gw crl-expired --upstream "127.0.0.1:$UP_PORT" --cert "$I/api.example.com.chain.pem" \
    --key "$I/api.example.com.key.pem" "${SRV[@]}" --workers 1 \
    --crl "$C/int-expired.crl.pem" --crl "$C/root.crl.pem"
gcurl "$GW_PORT" "$c2" "$k2" /case10/expired-crl
[[ $RC -ne 0 && "$CODE" != 200 ]] || fail "an expired CRL: client2 accepted (HTTP '$CODE')"
pass "the intermediate's CRL expired: curl refused"
refused_as "the intermediate's CRL expired" "$T/crl-expired.log" 0 crl_expired
start_gw crl-expired-soft --upstream "127.0.0.1:$UP_PORT" --cert "$I/api.example.com.chain.pem" \
    --key "$I/api.example.com.key.pem" "${SRV[@]}" --workers 1 \
    --crl "$C/int-expired.crl.pem" --crl "$C/root.crl.pem" --crl-soft-fail
gcurl "$GW_PORT" "$c2" "$k2" /case10/expired-crl-soft
[[ "$CODE" == 200 ]] || fail "an expired CRL with --crl-soft-fail: expected 200, got '$CODE'"
pass "the intermediate's CRL expired, --crl-soft-fail: accepted"
# A session made while the root's CRL was current does not resume once that CRL has
# expired: resumption checks the whole chain again, not only the leaf's own CRL.
t0=$SECONDS
gencrl root "$T/short-root.crl.pem" -crlsec 8
start_gw crl-short --upstream "127.0.0.1:$UP_PORT" --cert "$I/api.example.com.chain.pem" \
    --key "$I/api.example.com.key.pem" "${SRV[@]}" --workers 1 \
    --crl "$C/int.crl.pem" --crl "$T/short-root.crl.pem" --watch-interval 0
printf 'GET /case10/short HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n' > "$T/req"
sclient "$GW_PORT" "$c2" "$k2" "$T/req" "$T/resp" -sess_out "$T/c2.sess"
[[ -s "$T/c2.sess" ]] || fail "no session saved for client2 (s_client -sess_out)"
resume "$GW_PORT" "$c2" "$k2" "$T/c2.sess" "$T/resume-short-before.out"
(( SECONDS - t0 < 8 )) || fail "the setup took $((SECONDS - t0)) s, longer than the root CRL's 8 s"
assert_contains "while the root's CRL is current, client2's session resumes" \
    "$(cat "$T/resume-short-before.out")" "Reused, TLSv1.3"
while (( SECONDS - t0 < 10 )); do sleep 0.5; done
skip="$(nlines "$T/crl-short.log")"
resume "$GW_PORT" "$c2" "$k2" "$T/c2.sess" "$T/resume-short-after.out"
rs="$(cat "$T/resume-short-after.out")"
assert_not_contains "once the root's CRL has expired, client2's session does not resume" "$rs" "Reused, TLSv1.3"
assert_not_contains "... and gets no answer" "$rs" "HTTP/1.1 200"
refused_as "client2 after the root's CRL expired (the full handshake)" "$T/crl-short.log" "$skip" crl_expired

# ---------------------------------------------------------------- 11. SIGHUP, server certificate
# served_serial PORT: the serial of the certificate the gateway presents (s_client).
served_serial() {
    printf '' > "$T/empty"
    set +e
    timeout 20 env OPENSSL_CONF=/dev/null LD_LIBRARY_PATH="$OPENSSL_LIBDIR" "$OPENSSL_BIN" s_client \
        -connect "127.0.0.1:$1" -servername api.example.com -verify_hostname api.example.com \
        -CAfile "$SCHAIN" -verify_return_error -cert "$c1" -key "$k1" < "$T/empty" > "$T/sc.out" 2>&1
    set -e
    ossl x509 -in "$T/sc.out" -noout -serial 2>/dev/null | sed 's/^serial=//'
}
# refused_reloads: how many times the main gateway said "reload refused" (or "reload (SIGHUP)
# refused": the words may frame what triggered it)
RELOAD_REFUSED='reload( \([^)]*\))? refused'
refused_reloads() { grep -cE "$RELOAD_REFUSED" "$T/main.err" || true; }
# hup_refused DESC: SIGHUP the main gateway, wait for one more "reload refused" on stderr.
hup_refused() {
    local n i
    n="$(refused_reloads)"
    kill -HUP "$GA_PID"
    for ((i = 0; i < 100; i++)); do
        [[ "$(refused_reloads)" -gt "$n" ]] && break
        sleep 0.05
    done
    [[ "$(refused_reloads)" -gt "$n" ]] || fail "$1: no 'reload refused' on the gateway's stderr: $(tail -n 3 "$T/main.err")"
    pass "$1: stderr says reload refused ($(grep -E "$RELOAD_REFUSED" "$T/main.err" | tail -n 1 | cut -c1-160))"
}
OLD_SERIAL="$(cert_serial "$I/api.example.com.crt.pem")"
NEW_SERIAL="$(cert_serial "$T/next/api.crt.pem")"
[[ "$OLD_SERIAL" != "$NEW_SERIAL" ]] || fail "the two server certificates have the same serial"
[[ "$(served_serial "$GA")" == "$OLD_SERIAL" ]] || fail "the gateway does not present the server certificate it was given: $(tail -n 5 "$T/sc.out")"
pass "the gateway presents api.example.com serial $OLD_SERIAL"
echo "not a certificate" > "$T/broken.pem"
replace "$T/broken.pem" "$T/live/cert.pem"
hup_refused "SIGHUP with a broken certificate file"
got="$(served_serial "$GA")"
[[ "$got" == "$OLD_SERIAL" ]] || fail "after a refused reload, the gateway presents serial '$got', not $OLD_SERIAL: $(tail -n 4 "$T/sc.out" | tr '\n' '|') :: $(tail -n 3 "$T/main.err" | tr '\n' '|')"
gcurl "$GA" "$c1" "$k1" /case11/after-broken
[[ "$CODE" == 200 ]] || fail "after a refused reload: expected 200, got '$CODE': $(cat "$T/curl.err")"
pass "after the refused reload: the old certificate is still served, requests answered"
replace "$T/next/api.chain.pem" "$T/live/cert.pem"
hup_refused "SIGHUP with a new certificate but the old key"
got="$(served_serial "$GA")"
[[ "$got" == "$OLD_SERIAL" ]] || fail "after a refused reload (key mismatch), the gateway presents serial '$got', not $OLD_SERIAL: $(tail -n 4 "$T/sc.out" | tr '\n' '|') :: $(tail -n 3 "$T/main.err" | tr '\n' '|')"
pass "after the refused reload (key mismatch): the old certificate is still served"
replace "$T/next/api.key.pem" "$T/live/key.pem"
kill -HUP "$GA_PID"
for ((i = 0; i < 100; i++)); do
    got="$(served_serial "$GA")"
    [[ "$got" == "$NEW_SERIAL" ]] && break
    sleep 0.05
done
[[ "$got" == "$NEW_SERIAL" ]] || fail "SIGHUP with a new certificate and key: still serving '$got', not $NEW_SERIAL: $(tail -n 3 "$T/main.err")"
pass "SIGHUP with a new valid certificate and key: new connections see serial $NEW_SERIAL"
gcurl "$GA" "$c1" "$k1" /case11/after-reload
[[ "$CODE" == 200 ]] || fail "after the reload: curl (verifying the new certificate): expected 200, got '$CODE': $(cat "$T/curl.err")"
pass "after the reload: curl verifies the new certificate and gets 200"
# The client CA file: the second PKI's chain instead; its client1 gets in, ours not.
replace "$P2/client-ca-chain.pem" "$T/live/client-ca.pem"
kill -HUP "$GA_PID"
gcurl_200 100 0.05 "$GA" "$P2/issued/client1.crt.pem" "$P2/issued/client1.key.pem" /case11/pki2-client
[[ "$CODE" == 200 ]] || fail "SIGHUP with the second PKI's client CA file: its client1 still refused ('$CODE')"
pass "SIGHUP with a new client CA file: the new CA's client is accepted"
skip="$(nlines "$LA")"
gcurl "$GA" "$c1" "$k1" /case11/old-ca-client
[[ $RC -ne 0 && "$CODE" != 200 ]] || fail "SIGHUP with a new client CA file: a client of the old CA still accepted"
pass "SIGHUP with a new client CA file: the old CA's client is refused"
refused_as "a client of the CA no longer configured" "$LA" "$skip" unknown_ca
replace "$CCHAIN" "$T/live/client-ca.pem"
kill -HUP "$GA_PID"
gcurl_200 100 0.05 "$GA" "$c1" "$k1" /case11/ca-restored
[[ "$CODE" == 200 ]] || fail "client CA file restored + SIGHUP: client1 still refused ('$CODE')"
pass "client CA file restored + SIGHUP: client1 accepted again"

# ---------------------------------------------------------------- 12. SIGTERM drains, exits 0
set +e
with_ossl35 "$CURL_BIN" -sS --max-time 30 --cacert "$SCHAIN" --cert "$c1" --key "$k1" \
    --resolve "api.example.com:$GA:127.0.0.1" -o "$T/drain.body" -w '%{http_code}' \
    "https://api.example.com:$GA/sleep/2" > "$T/drain.code" 2> "$T/drain.err" &
CURL_PID=$!
set -e
track_pid "$CURL_PID"
for ((i = 0; i < 100; i++)); do
    [[ "$(py count "$REC" path /sleep/2)" -ge 1 ]] && break
    sleep 0.05
done
[[ "$(py count "$REC" path /sleep/2)" -ge 1 ]] || fail "the slow request did not reach the upstream"
kill -TERM "$GA_PID"
unset "GW_NAME[$GA_PID]"
wait_exit "$GA_PID" 15
gw_rc=$RC
wait_exit "$CURL_PID" 15
curl_rc=$RC
[[ $gw_rc -eq 0 ]] || fail "SIGTERM: the gateway exited $gw_rc, expected 0: $(tail -n 5 "$T/main.err")"
pass "SIGTERM: the gateway exits with status 0"
[[ $curl_rc -eq 0 && "$(cat "$T/drain.code")" == 200 && "$(py get path < "$T/drain.body")" == /sleep/2 ]] \
    || fail "SIGTERM: the request in flight did not complete (curl exit $curl_rc, HTTP '$(cat "$T/drain.code")'): $(cat "$T/drain.err")"
pass "SIGTERM: the request in flight was answered before the exit"
port_in_use "$GA" && fail "after its exit, something still listens on the gateway's port $GA"
pass "after SIGTERM the port is closed"

finish
