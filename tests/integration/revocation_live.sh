#!/usr/bin/env bash
# Revocation reaching running verifiers, with only the files `pqmtls pki crl` writes:
#  - a gateway started with --crl DIR/crl/client-ca-chain.crl.pem accepts c-a and c-b;
#    `pki revoke` c-a + `pki crl`: the gateway's file watch reloads the CRLs without a
#    restart, refuses c-a (access log reason_code revoked, with c-a's subject and the CRL
#    file named), still accepts c-b, and a keep-alive connection opened before the reload
#    keeps working;
#  - Debian's nginx (on OpenSSL 3.5) with `ssl_crl DIR/crl/client-ca-chain.crl.pem`
#    refuses revoked c-a and accepts c-b;
#  - a revoked client intermediate takes every client down at the gateway.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
source "$(dirname "${BASH_SOURCE[0]}")/lib/nginx.bash"
require_bin
NGINX_BIN="${NGINX_BIN:-/usr/sbin/nginx}"
CURL_BIN="${CURL_BIN:-curl}"
[[ -x "$NGINX_BIN" ]] || fail "nginx not found at $NGINX_BIN"
require_tool "$CURL_BIN" python3

P=$T/pki
pqm pki init "$P" --no-passphrase --org Example --server-domain example.com > /dev/null || fail "pki init"
pqm pki issue server --pki "$P" --name api.example.com --ip 127.0.0.1 > /dev/null || fail "issue server"
for n in c-a c-b; do pqm pki issue client --pki "$P" --name "$n" > /dev/null || fail "issue $n"; done
expect_ok "pki crl" pqm pki crl --pki "$P"
I=$P/issued
CRL=$P/crl/client-ca-chain.crl.pem

UP=$(free_port)
python3 "$PQMTLS_SOURCE_DIR/tests/integration/lib/upstream.py" "$UP" "$T/rec.jsonl" > "$T/up.log" 2>&1 &
track_pid $!
wait_port "$UP" || fail "upstream did not start"

GW=$(free_port)
"$PQMTLS_BIN" gateway --listen "127.0.0.1:$GW" --upstream "127.0.0.1:$UP" \
    --cert "$I/api.example.com.chain.pem" --key "$I/api.example.com.key.pem" \
    --client-ca "$P/client-ca-chain.pem" --crl "$CRL" --watch-interval 1 --workers 1 \
    --access-log "$T/access.log" > "$T/gw.out" 2> "$T/gw.err" &
GW_PID=$!
track_pid "$GW_PID"
wait_port "$GW" || fail "gateway did not start: $(tail -5 "$T/gw.err")"

# gc CERT PATH: status code of one request through the gateway in CODE
gc() {
    set +e
    CODE=$(with_ossl35 "$CURL_BIN" -sS --max-time 20 --cacert "$P/server-ca-chain.pem" \
        --cert "$I/$1.crt.pem" --key "$I/$1.key.pem" -o /dev/null -w '%{http_code}' \
        "https://127.0.0.1:$GW$2" 2> "$T/curl.err")
    RC=$?
    set -e
}
gc c-a /before; [[ "$CODE" == 200 ]] || fail "c-a before revocation: $CODE $(cat "$T/curl.err")"
pass "c-a passes the gateway before its revocation"
gc c-b /before; [[ "$CODE" == 200 ]] || fail "c-b before revocation: $CODE"
pass "c-b passes too"

# A keep-alive connection opened before the reload (python, so that it stays open).
with_ossl35 python3 - "$GW" "$P" "$T/ka.ready" "$T/ka.go" "$T/ka.result" <<'PY' &
import os, socket, ssl, sys, time
port, pki, ready, go, result = sys.argv[1:6]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(pki + "/server-ca-chain.pem")
ctx.load_cert_chain(pki + "/issued/c-b.crt.pem", pki + "/issued/c-b.key.pem")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port))), server_hostname="127.0.0.1")
def req(path):
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < n:
        body += s.recv(65536)
    return head.split(b" ")[1].decode()
first = req("/ka/1")
open(ready, "w").write(first)
for _ in range(600):
    if os.path.exists(go): break
    time.sleep(0.05)
open(result, "w").write(req("/ka/2"))
PY
KA_PID=$!
track_pid "$KA_PID"
for _ in $(seq 100); do [[ -s "$T/ka.ready" ]] && break; sleep 0.1; done
[[ "$(cat "$T/ka.ready" 2>/dev/null)" == 200 ]] || fail "the keep-alive connection did not get its first answer"

S_A=$(cert_serial "$I/c-a.crt.pem")
expect_ok "pki revoke c-a" pqm pki revoke --pki "$P" "$S_A" --reason keyCompromise
expect_ok "pki crl (the gateway watches the file it replaces)" pqm pki crl --pki "$P"
refused=0
for _ in $(seq 100); do
    gc c-a /after
    if [[ "$CODE" != 200 ]]; then refused=1; break; fi
    sleep 0.1
done
[[ $refused == 1 ]] || fail "the gateway still accepts revoked c-a 10 s after the new CRL"
pass "the running gateway refuses c-a once the new CRL is written (no restart)"
kill -0 "$GW_PID" 2>/dev/null || fail "the gateway is not the same process"
pass "the gateway was not restarted (same PID)"
line=$(grep '"handshake_refused"' "$T/access.log" | grep '"revoked"' | tail -1)
[[ -n "$line" ]] || fail "no handshake_refused line with reason_code revoked: $(tail -3 "$T/access.log")"
pass "the access log has a handshake_refused line with reason_code revoked"
assert_match "with the CRL entry's reason and date" "$line" "keyCompromise, since 20[0-9]{2}-[0-9]{2}-[0-9]{2}T"
assert_contains "the refusal names c-a" "$line" "CN=c-a"
assert_contains "and the CRL file that lists it" "$line" "client-ca-chain.crl.pem"
grep -q 'reload' "$T/gw.err" "$T/gw.out" "$T/access.log" || fail "nothing logged the reload"
pass "the reload is logged"
gc c-b /after; [[ "$CODE" == 200 ]] || fail "c-b after the new CRL: $CODE"
pass "c-b still passes"
touch "$T/ka.go"
wait "$KA_PID" || fail "the keep-alive client failed"
[[ "$(cat "$T/ka.result")" == 200 ]] || fail "the keep-alive connection's second request: $(cat "$T/ka.result")"
pass "a keep-alive connection opened before the reload still works after it"

# --- nginx with the generated ssl_crl ----------------------------------------------------
NP=$(free_port)
N=$T/nginx
nginx_conf "$N" "    server {
        listen 127.0.0.1:$NP ssl;
        ssl_certificate $I/api.example.com.chain.pem;
        ssl_certificate_key $I/api.example.com.key.pem;
        ssl_client_certificate $P/client-ca-chain.pem;
        ssl_verify_client on;
        ssl_verify_depth 2;
        ssl_crl $CRL;
        ssl_protocols TLSv1.3;
        ssl_ecdh_curve X25519MLKEM768:X25519;
        location / { default_type text/plain; return 200 \"verify=\$ssl_client_verify\n\"; }
    }"
expect_ok "nginx -t accepts ssl_crl with the pqmtls CRLs" with_ossl35 "$NGINX_BIN" -t -p "$N" -c "$N/nginx.conf"
env LD_LIBRARY_PATH="$OPENSSL_LIBDIR" "$NGINX_BIN" -p "$N" -c "$N/nginx.conf" > "$N/stdout.log" 2>&1 &
track_pid $!
wait_port "$NP" || fail "nginx did not start: $(tail -5 "$N/error.log")"
nc() {
    run with_ossl35 "$CURL_BIN" -sS --max-time 20 --cacert "$P/server-ca-chain.pem" \
        --cert "$I/$1.crt.pem" --key "$I/$1.key.pem" -w '\nHTTP %{http_code}\n' "https://127.0.0.1:$NP/"
}
nc c-b
assert_contains "nginx accepts c-b with the CRLs" "$OUT" "verify=SUCCESS"
nc c-a
assert_contains "nginx refuses revoked c-a: HTTP 400" "$OUT" "HTTP 400"
assert_not_contains "without SUCCESS" "$OUT" "verify=SUCCESS"
grep -q 'certificate revoked' "$N/error.log" || fail "nginx's error log does not say 'certificate revoked': $(tail -3 "$N/error.log")"
pass "nginx logs 'certificate revoked'"

# --- a revoked intermediate --------------------------------------------------------------
expect_ok "revoke the client intermediate" pqm pki revoke --pki "$P" "$(cert_serial "$P/client-int-ca.crt.pem")" --reason cACompromise
expect_ok "pki crl" pqm pki crl --pki "$P"
refused=0
for _ in $(seq 100); do
    gc c-b /int
    if [[ "$CODE" != 200 ]]; then refused=1; break; fi
    sleep 0.1
done
[[ $refused == 1 ]] || fail "the gateway still accepts c-b after its CA was revoked"
pass "with its CA revoked, c-b is refused too"
line=$(grep '"handshake_refused"' "$T/access.log" | tail -1)
assert_contains "the refusal names the revoked intermediate" "$line" "Client Intermediate CA"

done_all
