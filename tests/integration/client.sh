#!/usr/bin/env bash
# client: `pqmtls request`, the mTLS HTTP client, end to end against real servers:
# OpenSSL 3.5's s_server (-www, TLS 1.3, client certificate required), the project's
# gateway in front of a recording python3 upstream (HTTP/1.1), and a raw TLS server
# (python3's ssl on OpenSSL 3.5 through LD_LIBRARY_PATH) that records the request bytes.
# Certificates come from `pqmtls pki`; what the PKI refuses to make (expired, clientAuth
# only, a server certificate under the client CA) is forged with OpenSSL 3.5 from the
# intermediates' keys; CRLs are made by `openssl ca -gencrl`.
#
# Run by hand from the repository root:
#   PQMTLS_BIN=build/pqmtls OPENSSL_BIN=/var/cache/pqmtls/openssl-3.5.7/bin/openssl \
#   OPENSSL_LIBDIR=/var/cache/pqmtls/openssl-3.5.7/lib bash tests/integration/client.sh
# (all default to those values when unset; PQMTLS_KEEP_TMP=1 keeps the temp dir on
#  failure: the last request's stdout/stderr in $T/req.out and $T/req.err, the upstream's
#  record $T/up.jsonl, the raw server's $T/raw.jsonl, servers' stderr $T/<name>.err)
#
# Asserts, each accept path with the refusal it pairs with:
#  1. s_server -www -Verify 2: the page (the client certificate's subject CN=client1, TLSv1.3);
#     --json: one object, status 200, TLSv1.3, X25519MLKEM768, sigalg, the server subject,
#     verify ok, timings; -i: "HTTP/1.0 200" then the page; an IP URL checked against the
#     IP SAN. --ca with the root only (the intermediate the server sends is not used): refused.
#  2. The gateway and upstream: GET (path and query), POST with -d STRING, -d @FILE,
#     -d @- (stdin), -X PUT, -X DELETE; -H headers; User-Agent pqmtls/<version>; the
#     client's identity (X-Client-Cert-Subject) as openssl prints it; -o FILE; -i; --json;
#     --fail on 404 (exit 1) against exit 0 without; a 1 MB binary body both ways (sha256);
#     --groups X25519; --require-pq against a PQ server; --timeout (exit 1, "timed out"
#     on stderr, well before the upstream answers); an encrypted client key
#     with --key-passphrase-file (and a wrong passphrase refused); a refused connection.
#  3. The request bytes (raw TLS server): request line, Host with the port, User-Agent,
#     Connection: close, Content-Length of a body, CRLF line ends, one Host.
#  4. Refusals, exit 1 and one line `pqmtls request: ...` on stderr with the reason, nothing
#     reaching the upstream behind the gateway: a server certificate with EKU clientAuth
#     only, with no EKU, with anyExtendedKeyUsage only (serverAuth); a name mismatch
#     (name/host); a server certificate under the client CA, another PKI's server, --ca
#     the client CA chain (not trusted/unknown); an expired certificate (expired); a pin
#     mismatch (pin; the right pin accepted, alone or beside a wrong one); a classical-only
#     server under --require-pq (post-quantum; accepted without, group X25519); a revoked
#     server certificate with --crl (revoked; accepted with CRLs that do not list it).
#  5. Usage errors exit 2: no URL, an http:// URL, an unknown option, no --ca.

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
require_tool python3 ss timeout sha256sum base64 awk
# The interpreter itself, not a wrapper script (pyenv's shims cost ~70 ms a call).
PYTHON="$(python3 -c 'import sys; print(sys.executable)')"
SECONDS=0

finish() {
    info "runtime ${SECONDS}s"
    # --system-ca: the system store (here SSL_CERT_FILE) is trusted only when asked.
GS_PORT=$(free_port)
ossl s_server -accept "127.0.0.1:$GS_PORT" -cert "$P/issued/api.example.com.crt.pem" \
    -cert_chain "$P/server-ca-chain.pem" -key "$P/issued/api.example.com.key.pem" \
    -Verify 2 -CAfile "$P/client-ca-chain.pem" -www -tls1_3 -quiet > /dev/null 2>&1 &
track_pid $!
wait_port "$GS_PORT" 10 || fail "s_server for --system-ca did not start"
sysreq() { SSL_CERT_FILE="$P/server-ca-chain.pem" "$PQMTLS_BIN" request \
    "https://api.example.com:$GS_PORT/" --resolve "api.example.com:$GS_PORT:127.0.0.1" \
    --cert "$P/issued/client1.crt.pem" --key "$P/issued/client1.key.pem" \
    --ca "$P/client-ca-chain.pem" "$@"; }
run sysreq
[[ $RC -eq 1 ]] || fail "without --system-ca the system store was trusted (exit $RC)"
pass "the system store is not trusted unless asked"
run sysreq --system-ca
[[ $RC -eq 0 ]] || fail "with --system-ca (SSL_CERT_FILE = the server CA chain): exit $RC: ${OUT:0:300}"
pass "--system-ca trusts the system store (SSL_CERT_FILE)"
done_all
}

run pqm --version
[[ $RC -eq 0 ]] || fail "pqmtls --version: exit $RC: $OUT"
VERSION="$(awk 'NR == 1 { print $NF }' <<<"$OUT")"
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+ ]] || fail "cannot read the version from 'pqmtls --version': $OUT"
UA="pqmtls/$VERSION"

run pqm request --help
[[ $RC -eq 0 ]] || fail "pqmtls request --help: exit $RC (is the command built?): ${OUT:0:500}"
assert_contains "pqmtls request --help describes the command" "$OUT" "--resolve"

# ---------------------------------------------------------------- JSON helper
cat > "$T/h.py" <<'PYEOF'
import json, sys

def text(v):
    return v if isinstance(v, str) else json.dumps(v)

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "one":
    # one < OUTPUT: "ok" when OUTPUT is exactly one JSON object (and white space)
    data = sys.stdin.read()
    try:
        o, end = json.JSONDecoder().raw_decode(data.strip())
    except ValueError as e:
        sys.exit("not JSON: %s" % e)
    if end != len(data.strip()):
        sys.exit("more than one JSON value")
    if not isinstance(o, dict):
        sys.exit("not a JSON object")
    print("ok")
elif cmd == "get":
    # get A.B.C < JSON: the value (strings raw, the rest as JSON); exit 3 when absent
    o = json.loads(sys.stdin.read())
    for k in args[0].split("."):
        if not isinstance(o, dict) or k not in o:
            sys.exit(3)
        o = o[k]
    print(text(o))
elif cmd == "timings":
    # timings < JSON: "ok" when timings_ms has numbers connect <= total, handshake <= total
    t = json.loads(sys.stdin.read()).get("timings_ms")
    if not isinstance(t, dict):
        sys.exit("no timings_ms object")
    for k in ("connect", "handshake", "total"):
        v = t.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            sys.exit("timings_ms.%s is %r" % (k, v))
    if t["connect"] > t["total"] or t["handshake"] > t["total"]:
        sys.exit("timings_ms parts exceed the total: %r" % t)
    print("ok")
elif cmd == "hdr":
    # hdr NAME < RECORD: every value of the header NAME (any case), one per line
    o = json.loads(sys.stdin.read())
    for k, v in o.get("headers", []):
        if k.lower() == args[0].lower():
            print(v)
elif cmd == "line":
    # line FILE N: the N-th line (1-based) of FILE; exit 3 when there is none
    with open(args[0], encoding="utf-8") as f:
        lines = f.read().splitlines()
    n = int(args[1])
    if n < 1 or n > len(lines):
        sys.exit(3)
    print(lines[n - 1])
else:
    sys.exit("h.py: unknown command " + cmd)
PYEOF
py() { "$PYTHON" "$T/h.py" "$@"; }

# ---------------------------------------------------------------- certificates
P="$T/pki"
I="$P/issued"
expect_ok "pki init" pqm pki init "$P" --org Example --server-domain example.com \
    --spiffe-trust-domain cluster.local --no-passphrase
expect_ok "issue server api.example.com (and 127.0.0.1)" \
    pqm pki issue server --pki "$P" --name api.example.com --ip 127.0.0.1 --no-key-passphrase
expect_ok "issue client client1" pqm pki issue client --pki "$P" --name client1 --no-key-passphrase
echo 'client2 key passphrase' > "$T/c2.pass"
echo 'not the passphrase' > "$T/wrong.pass"
expect_ok "issue client client2 (encrypted key)" pqm pki issue client --pki "$P" --name client2 \
    --key-passphrase-file "$T/c2.pass"
SCHAIN="$P/server-ca-chain.pem"
CCHAIN="$P/client-ca-chain.pem"
for f in "$SCHAIN" "$CCHAIN" "$P/server-int-ca.crt.pem" "$P/server-int-ca.key.pem" \
    "$P/client-int-ca.crt.pem" "$P/client-int-ca.key.pem" "$P/root-ca.crt.pem" "$P/root-ca.key.pem" \
    "$I/api.example.com.chain.pem" "$I/client1.key.pem" "$I/client2.key.pem"; do
    [[ -s "$f" ]] || fail "the PKI lacks $f"
done
grep -q -- '-----BEGIN ENCRYPTED PRIVATE KEY-----' "$I/client2.key.pem" \
    || fail "client2's key is not encrypted"
# A second, separate PKI with the same names: its server is not ours.
P2="$T/pki2"
expect_ok "pki init (a second, separate PKI)" pqm pki init "$P2" --org Example \
    --server-domain example.com --spiffe-trust-domain cluster.local --no-passphrase
expect_ok "issue server api.example.com (second PKI)" pqm pki issue server --pki "$P2" \
    --name api.example.com --ip 127.0.0.1 --no-key-passphrase

# Server certificates pqmtls refuses to make, forged with OpenSSL 3.5.
F="$T/forged"
mkdir -p "$F"
cat > "$F/ext.cnf" <<'EOF'
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:api.example.com, IP:127.0.0.1
[clientonly]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:api.example.com, IP:127.0.0.1
[noeku]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:api.example.com, IP:127.0.0.1
[anyeku]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = anyExtendedKeyUsage
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:api.example.com, IP:127.0.0.1
EOF
# forge NAME server|client SECTION SUBJECT [x509 options...]: $F/NAME.{crt,key}.pem, ML-DSA-65,
# signed by the server or the client intermediate with the extensions of SECTION.
forge() {
    local n="$1" ca="$2" sec="$3" subj="$4"; shift 4
    run ossl req -new -newkey ml-dsa-65 -nodes -keyout "$F/$n.key.pem" -subj "$subj" -out "$F/$n.csr"
    [[ $RC -eq 0 ]] || fail "forge $n: openssl req: $OUT"
    run ossl x509 -req -in "$F/$n.csr" -CA "$P/$ca-int-ca.crt.pem" -CAkey "$P/$ca-int-ca.key.pem" \
        -extfile "$F/ext.cnf" -extensions "$sec" -out "$F/$n.crt.pem" "$@"
    [[ $RC -eq 0 ]] || fail "forge $n: openssl x509 -req: $OUT"
}
forge good server server "/O=Example/CN=api.example.com" -days 30
forge clientonly server clientonly "/O=Example/CN=api.example.com" -days 30
forge noeku server noeku "/O=Example/CN=api.example.com" -days 30
forge anyeku server anyeku "/O=Example/CN=api.example.com" -days 30
forge expired server server "/O=Example/CN=api.example.com" -not_before 20200101000000Z -not_after 20210101000000Z
forge underclientca client server "/O=Example/CN=api.example.com" -days 30
run ossl x509 -in "$F/expired.crt.pem" -noout -enddate
assert_contains "forged 'expired' server certificate ended in 2021" "$OUT" "2021 GMT"
run ossl x509 -in "$F/clientonly.crt.pem" -noout -ext extendedKeyUsage,subjectAltName
assert_match "forged 'clientonly' certificate: clientAuth only, DNS api.example.com" "$OUT" \
    "TLS Web Client Authentication.*DNS:api\.example\.com"
assert_not_contains "forged 'clientonly' certificate has no serverAuth" "$OUT" "Server Authentication"
run ossl x509 -in "$F/noeku.crt.pem" -noout -text
assert_not_contains "forged 'noeku' certificate has no extended key usage" "$OUT" "Extended Key Usage"
run ossl x509 -in "$F/anyeku.crt.pem" -noout -ext extendedKeyUsage
assert_contains "forged 'anyeku' certificate has anyExtendedKeyUsage only" "$OUT" "Any Extended Key Usage"
run cert_issuer "$F/underclientca.crt.pem"
assert_contains "forged 'underclientca' certificate is issued by the client intermediate" "$OUT" \
    "$(cert_subject "$P/client-int-ca.crt.pem")"
run ossl verify -CAfile "$P/root-ca.crt.pem" -untrusted "$P/server-int-ca.crt.pem" -purpose sslserver \
    "$F/good.crt.pem"
assert_contains "forged 'good' server certificate verifies with openssl" "$OUT" "OK"

# pin_of CERT: sha256:BASE64 of the certificate's SubjectPublicKeyInfo (DER)
pin_of() {
    local b
    b="$(ossl x509 -in "$1" -pubkey -noout | ossl pkey -pubin -outform DER | ossl dgst -sha256 -binary | base64 -w 0)"
    [[ ${#b} -eq 44 ]] || fail "pin_of $1: '$b'"
    echo "sha256:$b"
}
PIN_RIGHT="$(pin_of "$I/api.example.com.crt.pem")"
PIN_WRONG="$(pin_of "$I/client1.crt.pem")"
[[ "$PIN_RIGHT" != "$PIN_WRONG" ]] || fail "the two pins are equal"

# CRLs of the server intermediate and of the root, by `openssl ca -gencrl`.
C="$T/crl"
source "$PQMTLS_SOURCE_DIR/tests/integration/lib/openssl_ca.bash"
ca_setup sint "$P/server-int-ca.crt.pem" "$P/server-int-ca.key.pem"
ca_setup root "$P/root-ca.crt.pem" "$P/root-ca.key.pem"
gencrl sint "$C/sint.crl.pem"
gencrl root "$C/root.crl.pem"
run ossl ca -config "$C/sint/ca.cnf" -revoke "$I/api.example.com.crt.pem" -batch
[[ $RC -eq 0 ]] || fail "openssl ca -revoke api.example.com: $OUT"
gencrl sint "$C/sint-revoked.crl.pem"
SERVER_SERIAL="$(cert_serial "$I/api.example.com.crt.pem")"
run ossl crl -in "$C/sint-revoked.crl.pem" -noout -text
assert_contains "the new server-intermediate CRL lists api.example.com's serial" "$OUT" "$SERVER_SERIAL"
run ossl crl -in "$C/sint.crl.pem" -noout -text
assert_not_contains "the first server-intermediate CRL does not list it" "$OUT" "$SERVER_SERIAL"

# ---------------------------------------------------------------- the client
CL=(--cert "$I/client1.crt.pem" --key "$I/client1.key.pem" --ca "$SCHAIN")
# req ARGS...: `pqmtls request ARGS...`, stdin from $REQ_IN (default /dev/null); stdout in
# $T/req.out (ROUT: NUL bytes dropped), stderr in $T/req.err (RERR), exit status in RC.
REQ_IN=/dev/null
ROUT="" RERR=""
req() {
    set +e
    timeout 30 "$PQMTLS_BIN" request "$@" < "$REQ_IN" > "$T/req.out" 2> "$T/req.err"
    RC=$?
    set -e
    ROUT="$(tr -d '\000' < "$T/req.out")"
    RERR="$(tr -d '\000' < "$T/req.err")"
    [[ $RC -ne 124 ]] || fail "pqmtls request $* did not finish within 30 s"
    [[ $RC -lt 128 ]] || fail "pqmtls request $* died of a signal (exit $RC): ${RERR:0:1000}"
}
# req_ok DESC ARGS...: must exit 0.
req_ok() {
    local desc="$1"; shift
    req "$@"
    [[ $RC -eq 0 ]] || fail "$desc: expected exit 0, got $RC: pqmtls request $* :: stderr: ${RERR:0:1500}"
    pass "$desc"
}
# req_refused DESC ERE ARGS...: must exit 1 with exactly one stderr line
# `pqmtls request: ...` that matches ERE (lower-cased), and print nothing on stdout.
req_refused() {
    local desc="$1" ere="$2" n; shift 2
    req "$@"
    [[ $RC -eq 1 ]] || fail "$desc: expected exit 1, got $RC: pqmtls request $* :: stdout: ${ROUT:0:300} :: stderr: ${RERR:0:1500}"
    n="$(grep -c '' "$T/req.err" || true)"
    [[ $n -eq 1 ]] || fail "$desc: expected one line on stderr, got $n: ${RERR:0:1500}"
    [[ "$RERR" == "pqmtls request: "* ]] || fail "$desc: stderr does not start with 'pqmtls request: ': $RERR"
    [[ "${RERR,,}" =~ $ere ]] || fail "$desc: stderr does not name the reason /$ere/: $RERR"
    [[ ! -s "$T/req.out" ]] || fail "$desc: a refused request printed on stdout: ${ROUT:0:300}"
    pass "$desc (${RERR:0:160})"
}

# ---------------------------------------------------------------- processes
# wait_listen PORT PID: wait (15 s) until PORT has a listener, without connecting to it.
wait_listen() {
    local p="$1" pid="$2" i
    for ((i = 0; i < 300; i++)); do
        [[ -n "$(ss -ltnH "( sport = :$p )" 2>/dev/null)" ]] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
# stop PID: end a process this test started, and reap it.
stop() {
    local pid="$1" i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
# start_ss NAME CERT CHAIN KEY [s_server options...]: `openssl s_server -www` on a free
# loopback port, TLS 1.3, a client certificate of the client CA required; SS_PORT, SS_PID.
start_ss() {
    local name="$1" cert="$2" chain="$3" key="$4"; shift 4
    SS_PORT="$(free_port)"
    env OPENSSL_CONF=/dev/null LD_LIBRARY_PATH="$OPENSSL_LIBDIR" "$OPENSSL_BIN" s_server \
        -accept "127.0.0.1:$SS_PORT" -cert "$cert" -cert_chain "$chain" -key "$key" \
        -Verify 2 -CAfile "$CCHAIN" -www -tls1_3 "$@" < /dev/null > "$T/$name.out" 2> "$T/$name.err" &
    SS_PID=$!
    track_pid "$SS_PID"
    wait_listen "$SS_PORT" "$SS_PID" \
        || fail "s_server $name did not listen on 127.0.0.1:$SS_PORT: $(tail -n 5 "$T/$name.err")"
}
# url_for PORT [PATH] [HOST]: the URL and the --resolve option for HOST (api.example.com)
url() { echo "https://${3:-api.example.com}:$1${2:-/}"; }
resolve() { echo "${2:-api.example.com}:$1:127.0.0.1"; }

# ---------------------------------------------------------------- 1. s_server -www
start_ss main "$I/api.example.com.crt.pem" "$SCHAIN" "$I/api.example.com.key.pem"
SP="$SS_PORT"
req_ok "s_server: GET / with client1" "$(url "$SP")" --resolve "$(resolve "$SP")" "${CL[@]}"
assert_contains "s_server: the page shows the client certificate" "$ROUT" "Client certificate"
assert_contains "s_server: the page shows client1's subject" "$ROUT" "Subject: O=Example, CN=client1"
assert_contains "s_server: the page says TLSv1.3" "$ROUT" "Protocol  : TLSv1.3"
assert_not_contains "s_server: without -i, no status line on stdout" "$ROUT" "HTTP/1.0 200"
[[ -z "$RERR" ]] || fail "s_server: a successful request wrote on stderr: $RERR"
pass "s_server: nothing on stderr for a successful request"

req_ok "s_server: --json" "$(url "$SP")" --resolve "$(resolve "$SP")" "${CL[@]}" --json
J="$ROUT"
run py one <<<"$J"
[[ $RC -eq 0 ]] || fail "--json: not one JSON object ($OUT): ${J:0:1000}"
pass "--json prints one JSON object"
assert_not_contains "--json: no page on stdout" "$J" "<HTML>"
[[ "$(py get status <<<"$J")" == 200 ]] || fail "--json status: '$(py get status <<<"$J")': $J"
pass "--json: status 200"
[[ "$(py get tls_version <<<"$J")" == TLSv1.3 ]] || fail "--json tls_version: $J"
pass "--json: tls_version TLSv1.3"
[[ "$(py get group <<<"$J")" == X25519MLKEM768 ]] || fail "--json group: $J"
pass "--json: group X25519MLKEM768"
[[ "$(py get verify <<<"$J")" == ok ]] || fail "--json verify: $J"
pass "--json: verify ok"
run py get server_subject <<<"$J"
assert_match "--json: server_subject names api.example.com" "$OUT" "CN ?= ?api\.example\.com"
run py get sigalg <<<"$J"
assert_match "--json: sigalg names ML-DSA-65 (the server key)" "${OUT,,}" "ml-?dsa-?65"
run py timings <<<"$J"
[[ $RC -eq 0 ]] || fail "--json timings_ms: $OUT: $J"
pass "--json: timings_ms connect, handshake, total"

req_ok "s_server: -i" "$(url "$SP")" --resolve "$(resolve "$SP")" "${CL[@]}" -i
first="$(head -n 1 "$T/req.out" | tr -d '\r')"
assert_match "-i: the status line first (s_server -www answers HTTP/1.0)" "$first" "^HTTP/1\.0 200"
assert_match "-i: the headers, a blank line, then the page" "$ROUT" $'Content-type: text/html\r?\n\r?\n<HTML>'

req_ok "s_server: https://127.0.0.1:PORT/ (the IP address SAN)" "$(url "$SP" / 127.0.0.1)" "${CL[@]}"
assert_contains "s_server by IP address: the page" "$ROUT" "Client certificate"
# The server sends its intermediate; the path must come from --ca alone.
req_refused "--ca with the root only: the intermediate the server sends is not used" \
    "not trusted|unknown" "$(url "$SP")" --resolve "$(resolve "$SP")" \
    --cert "$I/client1.crt.pem" --key "$I/client1.key.pem" --ca "$P/root-ca.crt.pem"
req_refused "--ca the client CA chain: the server is not trusted" "not trusted|unknown" \
    "$(url "$SP")" --resolve "$(resolve "$SP")" \
    --cert "$I/client1.crt.pem" --key "$I/client1.key.pem" --ca "$CCHAIN"
req_refused "the wrong host name (other.example.com) against api.example.com's certificate" \
    "name|host" "$(url "$SP" / other.example.com)" --resolve "$(resolve "$SP" other.example.com)" "${CL[@]}"
req_ok "s_server: the right --pin" "$(url "$SP")" --resolve "$(resolve "$SP")" "${CL[@]}" --pin "$PIN_RIGHT"
req_refused "s_server: another key's --pin" "pin" "$(url "$SP")" --resolve "$(resolve "$SP")" \
    "${CL[@]}" --pin "$PIN_WRONG"
stop "$SS_PID"

# ---------------------------------------------------------------- 1b. forged servers
start_ss good "$F/good.crt.pem" "$SCHAIN" "$F/good.key.pem"
req_ok "a forged but correct server certificate is accepted" "$(url "$SS_PORT")" \
    --resolve "$(resolve "$SS_PORT")" "${CL[@]}"
assert_contains "forged correct server: the page" "$ROUT" "Client certificate"
stop "$SS_PID"

start_ss clientonly "$F/clientonly.crt.pem" "$SCHAIN" "$F/clientonly.key.pem"
req_refused "a server certificate with EKU clientAuth only" "serverauth" "$(url "$SS_PORT")" \
    --resolve "$(resolve "$SS_PORT")" "${CL[@]}"
stop "$SS_PID"

# OpenSSL's purpose check lets a leaf without an EKU (or with anyExtendedKeyUsage) pass
# as a server; the contract wants serverAuth itself.
start_ss noeku "$F/noeku.crt.pem" "$SCHAIN" "$F/noeku.key.pem"
req_refused "a server certificate without extended key usage" "serverauth" "$(url "$SS_PORT")" \
    --resolve "$(resolve "$SS_PORT")" "${CL[@]}"
stop "$SS_PID"
start_ss anyeku "$F/anyeku.crt.pem" "$SCHAIN" "$F/anyeku.key.pem"
req_refused "a server certificate with anyExtendedKeyUsage only" "serverauth" "$(url "$SS_PORT")" \
    --resolve "$(resolve "$SS_PORT")" "${CL[@]}"
stop "$SS_PID"

# Served with the client intermediate and the root: the root is in --ca, the client
# intermediate not; only a client that used the server's intermediates would build a path.
start_ss underclientca "$F/underclientca.crt.pem" "$CCHAIN" "$F/underclientca.key.pem"
req_refused "a server certificate (serverAuth, api.example.com) issued by the client CA" \
    "not trusted|unknown" "$(url "$SS_PORT")" --resolve "$(resolve "$SS_PORT")" "${CL[@]}"
stop "$SS_PID"

start_ss expired "$F/expired.crt.pem" "$SCHAIN" "$F/expired.key.pem"
req_refused "an expired server certificate" "expired" "$(url "$SS_PORT")" \
    --resolve "$(resolve "$SS_PORT")" "${CL[@]}"
stop "$SS_PID"

start_ss foreign "$P2/issued/api.example.com.crt.pem" "$P2/server-ca-chain.pem" \
    "$P2/issued/api.example.com.key.pem"
req_refused "another PKI's api.example.com" "not trusted|unknown" "$(url "$SS_PORT")" \
    --resolve "$(resolve "$SS_PORT")" "${CL[@]}"
stop "$SS_PID"

start_ss classical "$I/api.example.com.crt.pem" "$SCHAIN" "$I/api.example.com.key.pem" -groups X25519
req_refused "--require-pq against a server with X25519 only" "post-quantum" "$(url "$SS_PORT")" \
    --resolve "$(resolve "$SS_PORT")" "${CL[@]}" --require-pq
req_ok "without --require-pq, the X25519-only server is accepted" "$(url "$SS_PORT")" \
    --resolve "$(resolve "$SS_PORT")" "${CL[@]}" --json
g="$(py get group <<<"$ROUT")"
[[ "${g,,}" == x25519 ]] || fail "the X25519-only server: --json group '$g', expected X25519: $ROUT"
pass "the X25519-only server: --json group $g"
stop "$SS_PID"

# ---------------------------------------------------------------- 2. gateway and upstream
cat > "$T/up.py" <<'PYEOF'
# A recording HTTP/1.1 upstream: every request appends a JSON line to RECORD, then
#   /echo...     200, the request body back (application/octet-stream)
#   /missing...  404, "no such thing"
#   /sleep/S     200 after S seconds
#   anything     200, JSON: method, path, body (latin-1), X-Client-Cert-Subject, User-Agent
import hashlib, json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, *a):
        pass

    def body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def handle_one(self):
        body = self.body()
        rec = {
            "method": self.command, "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_len": len(body), "body_sha256": hashlib.sha256(body).hexdigest(),
            "body": body.decode("latin-1") if len(body) <= 65536 else None,
            "subject": self.headers.get("X-Client-Cert-Subject"),
            "user_agent": self.headers.get("User-Agent"),
        }
        with lock:
            with open(sys.argv[2], "a", encoding="utf-8") as f:
                f.write(json.dumps(rec, sort_keys=True) + "\n")
        status, ctype = 200, "application/json"
        if self.path.startswith("/echo"):
            out, ctype = body, "application/octet-stream"
        elif self.path.startswith("/missing"):
            status, out, ctype = 404, b"no such thing\n", "text/plain"
        else:
            if self.path.startswith("/sleep/"):
                time.sleep(min(float(self.path.split("/")[2]), 30))
            out = (json.dumps(rec, sort_keys=True) + "\n").encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(out)))
            self.send_header("X-Upstream", "yes")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(out)
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_one

class S(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

open(sys.argv[2], "a").close()
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever(poll_interval=0.1)
PYEOF
UP_PORT="$(free_port)"
REC="$T/up.jsonl"
"$PYTHON" "$T/up.py" "$UP_PORT" "$REC" > "$T/up.out" 2> "$T/up.err" &
UP_PID=$!
track_pid "$UP_PID"
wait_listen "$UP_PORT" "$UP_PID" || fail "the upstream did not listen: $(tail -n 5 "$T/up.err")"

# start_gw NAME CERT KEY: a gateway on a free loopback port in front of the upstream;
# GW_PORT, GW_PID. The gateway binds with SO_REUSEPORT: check nobody else listens there.
start_gw() {
    local name="$1" cert="$2" key="$3" l line
    GW_PORT="$(free_port)"
    "$PQMTLS_BIN" gateway --listen "127.0.0.1:$GW_PORT" --upstream "127.0.0.1:$UP_PORT" \
        --cert "$cert" --key "$key" --client-ca "$CCHAIN" --workers 1 --watch-interval 0 \
        --access-log "$T/$name.log" > "$T/$name.out" 2> "$T/$name.err" &
    GW_PID=$!
    track_pid "$GW_PID"
    wait_listen "$GW_PORT" "$GW_PID" \
        || fail "gateway $name did not listen on 127.0.0.1:$GW_PORT: $(tail -n 5 "$T/$name.err")"
    l="$(ss -ltnpH "( sport = :$GW_PORT )" 2>/dev/null || true)"
    if [[ "$l" == *pid=* ]]; then
        while IFS= read -r line; do
            [[ "$line" == *"pid=$GW_PID,"* ]] || fail "gateway $name: another process listens on port $GW_PORT too: $line"
        done <<<"$l"
    fi
}
start_gw gw "$I/api.example.com.chain.pem" "$I/api.example.com.key.pem"
GW="$GW_PORT"
GWPID="$GW_PID"
GURL() { url "$GW" "$1"; }
GRES=(--resolve "$(resolve "$GW")")

nrec() { grep -c '' "$REC" || true; }
# last_rec N: sets R to the record of request N (1-based), fails if there is none.
R=""
rec_n() {
    run py line "$REC" "$1"
    [[ $RC -eq 0 ]] || fail "the upstream has no record #$1 (it has $(nrec))"
    R="$OUT"
}
# got_one DESC: exactly one more record than $seen, in R.
seen=0
got_one() {
    local n
    n="$(nrec)"
    [[ $n -eq $((seen + 1)) ]] || fail "$1: the upstream got $((n - seen)) requests, expected 1"
    rec_n "$n"
    seen="$n"
}
# got_none DESC: no new record since $seen.
got_none() {
    local n
    sleep 0.2 # a request sent in spite of the refusal would be on its way through the gateway
    n="$(nrec)"
    [[ $n -eq $seen ]] || fail "$1: $((n - seen)) request(s) reached the upstream: $(tail -n 1 "$REC")"
    pass "$1: nothing reached the upstream"
}

# GET with a query, -H headers
req_ok "gateway: GET /hello?x=1&y=two with -H headers" "$(GURL '/hello?x=1&y=two')" "${GRES[@]}" "${CL[@]}" \
    -H 'X-Test: one two' -H 'X-Other:3'
got_one "GET /hello"
[[ "$(py get method <<<"$R")" == GET ]] || fail "GET: the upstream saw method $(py get method <<<"$R")"
[[ "$(py get path <<<"$R")" == '/hello?x=1&y=two' ]] || fail "GET: the upstream saw path $(py get path <<<"$R")"
pass "GET: method and path (with query) arrive"
[[ "$(py get body_len <<<"$R")" == 0 ]] || fail "GET: the upstream got a body: $R"
pass "GET: no body"
[[ "$(py hdr X-Test <<<"$R")" == "one two" ]] || fail "-H 'X-Test: one two': the upstream saw '$(py hdr X-Test <<<"$R")'"
[[ "$(py hdr X-Other <<<"$R")" == 3 ]] || fail "-H 'X-Other:3': the upstream saw '$(py hdr X-Other <<<"$R")'"
pass "-H headers arrive (with and without a space after the colon)"
[[ "$(py get user_agent <<<"$R")" == "$UA" ]] || fail "User-Agent: the upstream saw '$(py get user_agent <<<"$R")', expected $UA"
pass "User-Agent is $UA"
[[ "$(py hdr User-Agent <<<"$R" | grep -c '')" -eq 1 ]] || fail "User-Agent sent more than once: $R"
pass "one User-Agent"
want_subject="$(cert_subject "$I/client1.crt.pem")"
[[ "$(py get subject <<<"$R")" == "$want_subject" ]] \
    || fail "X-Client-Cert-Subject: the upstream saw '$(py get subject <<<"$R")', expected '$want_subject'"
pass "the gateway identified client1 ($want_subject)"
run py hdr Host <<<"$R"
assert_match "Host names api.example.com" "$OUT" "^api\.example\.com(:$GW)?$"
# the body printed: the upstream's JSON echo
[[ "$(py get path <<<"$ROUT")" == '/hello?x=1&y=two' ]] || fail "GET: stdout is not the upstream's answer: ${ROUT:0:500}"
pass "GET: the response body on stdout"

# POST with -d STRING (no -X)
req_ok "gateway: -d STRING" "$(GURL /post)" "${GRES[@]}" "${CL[@]}" -d 'hello=world&x=1 2'
got_one "-d STRING"
[[ "$(py get method <<<"$R")" == POST ]] || fail "-d without -X: method $(py get method <<<"$R"), expected POST"
pass "-d without -X sends POST"
[[ "$(py get body <<<"$R")" == 'hello=world&x=1 2' ]] || fail "-d STRING: the upstream got '$(py get body <<<"$R")'"
pass "-d STRING arrives intact"
[[ "$(py hdr Content-Length <<<"$R")" == 17 || "$(py get body_len <<<"$R")" == 17 ]] || fail "-d STRING: length: $R"

# -X PUT -d, -X DELETE
req_ok "gateway: -X PUT -d" "$(GURL /put)" "${GRES[@]}" "${CL[@]}" -X PUT -d 'put body'
got_one "-X PUT"
[[ "$(py get method <<<"$R")" == PUT && "$(py get body <<<"$R")" == 'put body' ]] || fail "-X PUT -d: $R"
pass "-X PUT -d 'put body' arrives as PUT with its body"
req_ok "gateway: -X DELETE" "$(GURL /del/1)" "${GRES[@]}" "${CL[@]}" -X DELETE
got_one "-X DELETE"
[[ "$(py get method <<<"$R")" == DELETE && "$(py get path <<<"$R")" == /del/1 ]] || fail "-X DELETE: $R"
pass "-X DELETE arrives as DELETE"

# -d @FILE, text with LF, CR LF, a tab, UTF-8
printf 'line one\nline two\r\n\ttabbed \xc3\xa9t\xc3\xa9\n\nlast' > "$T/body.txt"
want="$(sha256sum "$T/body.txt" | awk '{print $1}')"
req_ok "gateway: -d @FILE" "$(GURL /file)" "${GRES[@]}" "${CL[@]}" -d "@$T/body.txt"
got_one "-d @FILE"
[[ "$(py get method <<<"$R")" == POST ]] || fail "-d @FILE: method $(py get method <<<"$R")"
[[ "$(py get body_sha256 <<<"$R")" == "$want" ]] \
    || fail "-d @FILE: the body arrived changed ($(py get body_len <<<"$R") bytes of $(stat -c %s "$T/body.txt")): $(py get body <<<"$R" | od -c | head -n 5)"
pass "-d @FILE arrives intact (line ends, tab, UTF-8)"

# -d @- from stdin
printf 'from stdin\nsecond line\n' > "$T/stdin.txt"
want="$(sha256sum "$T/stdin.txt" | awk '{print $1}')"
REQ_IN="$T/stdin.txt"
req_ok "gateway: -d @- (stdin)" "$(GURL /stdin)" "${GRES[@]}" "${CL[@]}" -d @-
REQ_IN=/dev/null
got_one "-d @-"
[[ "$(py get body_sha256 <<<"$R")" == "$want" ]] || fail "-d @-: the upstream got '$(py get body <<<"$R")'"
pass "-d @- sends stdin intact"

# -o FILE
req_ok "gateway: -o FILE" "$(GURL /out)" "${GRES[@]}" "${CL[@]}" -o "$T/o.json"
got_one "-o FILE"
[[ -s "$T/o.json" ]] || fail "-o: $T/o.json was not written"
[[ "$(py get path < "$T/o.json")" == /out ]] || fail "-o: the file does not hold the body: $(head -c 300 "$T/o.json")"
pass "-o FILE holds the response body"
[[ ! -s "$T/req.out" ]] || fail "-o: the body went to stdout too: ${ROUT:0:300}"
pass "-o FILE: nothing on stdout"

# -i
req_ok "gateway: -i" "$(GURL /head)" "${GRES[@]}" "${CL[@]}" -i
got_one "-i"
first="$(head -n 1 "$T/req.out" | tr -d '\r')"
assert_match "-i: status line HTTP/1.1 200" "$first" "^HTTP/1\.1 200"
assert_match "-i: the upstream's headers" "$ROUT" $'(^|\n)[Xx]-[Uu]pstream: yes\r?\n'
assert_match "-i: a blank line, then the body" "$ROUT" $'\r?\n\r?\n\\{"body"'

# --json against the gateway
req_ok "gateway: --json" "$(GURL /json)" "${GRES[@]}" "${CL[@]}" --json
got_one "--json"
[[ "$(py get status <<<"$ROUT")" == 200 && "$(py get group <<<"$ROUT")" == X25519MLKEM768 \
    && "$(py get verify <<<"$ROUT")" == ok ]] || fail "gateway --json: $ROUT"
pass "gateway --json: 200, X25519MLKEM768, verify ok"

# 404: exit 0 without --fail, 1 with it
req_ok "gateway: a 404 without --fail exits 0" "$(GURL /missing/x)" "${GRES[@]}" "${CL[@]}"
got_one "404 without --fail"
assert_contains "a 404 without --fail: the body on stdout" "$ROUT" "no such thing"
req_ok "gateway: a 404 with --json (no --fail)" "$(GURL /missing/y)" "${GRES[@]}" "${CL[@]}" --json
got_one "404 --json"
[[ "$(py get status <<<"$ROUT")" == 404 ]] || fail "a 404 with --json: status $(py get status <<<"$ROUT"): $ROUT"
pass "--json reports status 404"
req "$(GURL /missing/z)" "${GRES[@]}" "${CL[@]}" --fail
[[ $RC -eq 1 ]] || fail "--fail with a 404: exit $RC, expected 1: $RERR"
pass "--fail with a 404 exits 1"
assert_contains "--fail with a 404: stderr names the status" "$RERR" "404"
[[ "$RERR" == "pqmtls request: "* && "$(grep -c '' "$T/req.err")" -eq 1 ]] \
    || fail "--fail with a 404: expected one line 'pqmtls request: ...' on stderr: $RERR"
pass "--fail with a 404: one line 'pqmtls request: ...' on stderr"
got_one "--fail 404 (the request was sent)"
req_ok "gateway: --fail with a 200 exits 0" "$(GURL /fine)" "${GRES[@]}" "${CL[@]}" --fail
got_one "--fail 200"

# 1 MB of binary data both ways
head -c 1048576 /dev/urandom > "$T/big.bin"
want="$(sha256sum "$T/big.bin" | awk '{print $1}')"
req_ok "gateway: a 1 MB binary body (-d @FILE -o FILE)" "$(GURL /echo)" "${GRES[@]}" "${CL[@]}" \
    -d "@$T/big.bin" -o "$T/big.out"
got_one "1 MB"
[[ "$(py get body_len <<<"$R")" == 1048576 && "$(py get body_sha256 <<<"$R")" == "$want" ]] \
    || fail "1 MB: the upstream got $(py get body_len <<<"$R") bytes, sha256 $(py get body_sha256 <<<"$R"), expected 1048576, $want"
pass "1 MB: the upstream got the body intact"
[[ "$(sha256sum "$T/big.out" | awk '{print $1}')" == "$want" ]] \
    || fail "1 MB: -o got $(stat -c %s "$T/big.out") bytes, not the body sent back"
pass "1 MB: the response written by -o is intact"
req_ok "gateway: a 1 MB binary body to stdout" "$(GURL /echo2)" "${GRES[@]}" "${CL[@]}" -d "@$T/big.bin"
got_one "1 MB to stdout"
[[ "$(sha256sum "$T/req.out" | awk '{print $1}')" == "$want" ]] \
    || fail "1 MB: stdout got $(stat -c %s "$T/req.out") bytes, not the body sent back"
pass "1 MB: the response on stdout is intact"

# --groups, --require-pq against a post-quantum server, an IP URL
req_ok "gateway: --groups X25519" "$(GURL /groups)" "${GRES[@]}" "${CL[@]}" --groups X25519 --json
got_one "--groups X25519"
g="$(py get group <<<"$ROUT")"
[[ "${g,,}" == x25519 ]] || fail "--groups X25519: group '$g': $ROUT"
pass "--groups X25519 negotiates X25519"
req_ok "gateway: --require-pq against a post-quantum server" "$(GURL /pq)" "${GRES[@]}" "${CL[@]}" --require-pq --json
got_one "--require-pq"
[[ "$(py get group <<<"$ROUT")" == X25519MLKEM768 ]] || fail "--require-pq: $ROUT"
pass "--require-pq: X25519MLKEM768"
req_ok "gateway: https://127.0.0.1:PORT/ (IP SAN)" "$(url "$GW" /ip 127.0.0.1)" "${CL[@]}"
got_one "IP URL"

# an encrypted client key
req_ok "gateway: client2's encrypted key with --key-passphrase-file" "$(GURL /c2)" "${GRES[@]}" \
    --cert "$I/client2.crt.pem" --key "$I/client2.key.pem" --key-passphrase-file "$T/c2.pass" --ca "$SCHAIN"
got_one "client2"
[[ "$(py get subject <<<"$R")" == "$(cert_subject "$I/client2.crt.pem")" ]] || fail "client2: the gateway saw '$(py get subject <<<"$R")'"
pass "client2 identified by the gateway"
req "$(GURL /c2wrong)" "${GRES[@]}" --cert "$I/client2.crt.pem" --key "$I/client2.key.pem" \
    --key-passphrase-file "$T/wrong.pass" --ca "$SCHAIN"
[[ $RC -eq 1 || $RC -eq 2 ]] || fail "a wrong key passphrase: exit $RC, expected 1: $RERR"
[[ "$RERR" == "pqmtls request: "* ]] || fail "a wrong key passphrase: stderr: $RERR"
pass "a wrong key passphrase is refused (exit $RC: ${RERR:0:120})"
got_none "a wrong key passphrase"

# --timeout: the upstream answers after 5 s
t0="$(date +%s%N)"
req "$(GURL /sleep/5)" "${GRES[@]}" "${CL[@]}" --timeout 1
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[[ $RC -eq 1 ]] || fail "--timeout 1 against a 5 s answer: exit $RC after ${ms} ms: $RERR"
(( ms < 4000 )) || fail "--timeout 1 against a 5 s answer: gave up after ${ms} ms"
[[ "$RERR" == "pqmtls request: "* ]] || fail "--timeout: stderr: $RERR"
[[ "${RERR,,}" =~ timed\ out|timeout|time-out ]] || fail "--timeout: stderr does not say it timed out: $RERR"
pass "--timeout 1: exit 1 after ${ms} ms (${RERR:0:100})"
seen="$(nrec)"

# a refused connection
DEAD="$(free_port)"
req_refused "a refused connection" "refused|connect" "$(url "$DEAD")" --resolve "$(resolve "$DEAD")" "${CL[@]}"

# ---------------------------------------------------------------- 4. refusals at the gateway
req_refused "gateway: the wrong host name" "name|host" "$(url "$GW" /wronghost other.example.com)" \
    --resolve "$(resolve "$GW" other.example.com)" "${CL[@]}"
got_none "the wrong host name"
req_refused "gateway: another key's pin" "pin" "$(GURL /pin-wrong)" "${GRES[@]}" "${CL[@]}" --pin "$PIN_WRONG"
got_none "another key's pin"
req_ok "gateway: the right pin" "$(GURL /pin-right)" "${GRES[@]}" "${CL[@]}" --pin "$PIN_RIGHT"
got_one "the right pin"
req_ok "gateway: --pin repeated, one of them right" "$(GURL /pin-two)" "${GRES[@]}" "${CL[@]}" \
    --pin "$PIN_WRONG" --pin "$PIN_RIGHT"
got_one "two pins"
req_refused "gateway: --ca the client CA chain" "not trusted|unknown" "$(GURL /wrong-ca)" "${GRES[@]}" \
    --cert "$I/client1.crt.pem" --key "$I/client1.key.pem" --ca "$CCHAIN"
got_none "--ca the client CA chain"
req_refused "gateway: revoked with --crl" "revoked" "$(GURL /revoked)" "${GRES[@]}" "${CL[@]}" \
    --crl "$C/sint-revoked.crl.pem" --crl "$C/root.crl.pem"
got_none "revoked with --crl"
req_ok "gateway: CRLs that do not list the server certificate" "$(GURL /crl-ok)" "${GRES[@]}" "${CL[@]}" \
    --crl "$C/sint.crl.pem" --crl "$C/root.crl.pem"
got_one "CRLs that do not list it"
stop "$GWPID"

# Another PKI's server behind a gateway: nothing must reach its upstream.
start_gw gw2 "$P2/issued/api.example.com.chain.pem" "$P2/issued/api.example.com.key.pem"
req_refused "gateway with another PKI's certificate" "not trusted|unknown" "$(url "$GW_PORT" /foreign)" \
    --resolve "$(resolve "$GW_PORT")" "${CL[@]}"
got_none "another PKI's gateway"
stop "$GW_PID"

# ---------------------------------------------------------------- 3. the request bytes
cat > "$T/raw.py" <<'PYEOF'
# A TLS 1.3 server (client certificate required) that records each request as it came:
# the request line, the header fields in order, the body (per Content-Length), whether
# any line of the head ended in a bare LF; answers 200 "ok" and closes.
import json, socket, ssl, sys
port, cert, key, ca, record = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
ctx.verify_mode = ssl.CERT_REQUIRED
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(16)
while True:
    c, _ = ls.accept()
    rec = {}
    t = None
    try:
        c.settimeout(10)
        t = ctx.wrap_socket(c, server_side=True)
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 1 << 20:
            chunk = t.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = []
        for line in lines[1:]:
            k, _, v = line.decode("latin-1").partition(":")
            headers.append([k, v.strip()])
        cl = [v for k, v in headers if k.lower() == "content-length"]
        n = int(cl[0]) if cl else 0
        while len(body) < n:
            chunk = t.recv(65536)
            if not chunk:
                break
            body += chunk
        rec = {"request_line": lines[0].decode("latin-1"), "headers": headers,
               "body": body.decode("latin-1"), "bare_lf": b"\n" in head.replace(b"\r\n", b"")}
        t.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
                  b"Connection: close\r\n\r\nok\n")
    except Exception as e:
        rec["error"] = repr(e)
    finally:
        with open(record, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
        try:
            if t is not None:
                c.settimeout(1)
                t.unwrap()
        except Exception:
            pass
        c.close()
PYEOF
RAW_PORT="$(free_port)"
RAWREC="$T/raw.jsonl"
: > "$RAWREC"
env OPENSSL_CONF=/dev/null LD_LIBRARY_PATH="$OPENSSL_LIBDIR" "$PYTHON" "$T/raw.py" "$RAW_PORT" \
    "$I/api.example.com.chain.pem" "$I/api.example.com.key.pem" "$CCHAIN" "$RAWREC" \
    > "$T/raw.out" 2> "$T/raw.err" &
RAW_PID=$!
track_pid "$RAW_PID"
wait_listen "$RAW_PORT" "$RAW_PID" || fail "the raw TLS server did not listen: $(tail -n 5 "$T/raw.err")"
raw_last() {
    local n
    n="$(grep -c '' "$RAWREC" || true)"
    run py line "$RAWREC" "$n"
    [[ $RC -eq 0 ]] || fail "the raw server recorded nothing"
    R="$OUT"
    [[ -z "$(py get error <<<"$R" 2>/dev/null || true)" ]] || fail "the raw server: $(py get error <<<"$R")"
}
req_ok "raw server: GET" "$(url "$RAW_PORT" '/raw/get?a=b')" --resolve "$(resolve "$RAW_PORT")" "${CL[@]}"
assert_contains "raw server: the answer's body on stdout" "$ROUT" "ok"
raw_last
run py get request_line <<<"$R"
assert_match "raw GET: request line 'GET /raw/get?a=b HTTP/1.1'" "$OUT" '^GET /raw/get\?a=b HTTP/1\.1$'
run py hdr Host <<<"$R"
[[ "$OUT" == "api.example.com:$RAW_PORT" ]] || fail "raw GET: Host '$OUT', expected api.example.com:$RAW_PORT: $R"
pass "raw GET: one Host header, api.example.com:$RAW_PORT"
run py hdr User-Agent <<<"$R"
[[ "$OUT" == "$UA" ]] || fail "raw GET: User-Agent '$OUT', expected $UA"
pass "raw GET: User-Agent $UA"
run py hdr Connection <<<"$R"
[[ "${OUT,,}" == close ]] || fail "raw GET: Connection '$OUT', expected close: $R"
pass "raw GET: Connection: close"
[[ -z "$(py hdr Content-Length <<<"$R")" || "$(py hdr Content-Length <<<"$R")" == 0 ]] || fail "raw GET: a Content-Length: $R"
[[ -z "$(py hdr Transfer-Encoding <<<"$R")" ]] || fail "raw GET: a Transfer-Encoding: $R"
pass "raw GET: no body framing"
[[ "$(py get bare_lf <<<"$R")" == false ]] || fail "raw GET: a header line ends in a bare LF: $R"
pass "raw GET: every head line ends in CR LF"
req_ok "raw server: POST -d" "$(url "$RAW_PORT" /raw/post)" --resolve "$(resolve "$RAW_PORT")" "${CL[@]}" \
    -d 'a=1&b=2'
raw_last
run py get request_line <<<"$R"
assert_match "raw POST: request line 'POST /raw/post HTTP/1.1'" "$OUT" '^POST /raw/post HTTP/1\.1$'
[[ "$(py hdr Content-Length <<<"$R")" == 7 ]] || fail "raw POST: Content-Length '$(py hdr Content-Length <<<"$R")', expected 7: $R"
pass "raw POST: Content-Length 7"
[[ "$(py get body <<<"$R")" == 'a=1&b=2' ]] || fail "raw POST: body '$(py get body <<<"$R")'"
pass "raw POST: the body"
[[ "$(py hdr Host <<<"$R" | grep -c '')" -eq 1 ]] || fail "raw POST: Host sent $(py hdr Host <<<"$R" | grep -c '') times"
pass "raw POST: one Host"
stop "$RAW_PID"

# ---------------------------------------------------------------- 5. usage errors
usage() { # DESC ARGS...: exit 2, something on stderr
    local desc="$1"; shift
    req "$@"
    [[ $RC -eq 2 ]] || fail "$desc: expected exit 2, got $RC: pqmtls request $* :: ${RERR:0:500}"
    [[ -n "$RERR" ]] || fail "$desc: nothing on stderr"
    pass "$desc: exit 2"
}
usage "no URL" "${CL[@]}"
usage "an http:// URL" "http://api.example.com:$GW/" "${CL[@]}"
usage "an unknown option" "$(GURL /)" "${GRES[@]}" "${CL[@]}" --no-such-option
usage "no --ca (never the system store)" "$(GURL /)" "${GRES[@]}" \
    --cert "$I/client1.crt.pem" --key "$I/client1.key.pem"

finish
