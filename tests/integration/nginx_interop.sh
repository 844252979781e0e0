#!/usr/bin/env bash
# nginx_interop: Debian 12's nginx and curl, run on the project's OpenSSL 3.5 with
# LD_LIBRARY_PATH, complete an mTLS handshake using only certificates made by
# `pqmtls pki` (ML-DSA-65 chain, ssl_verify_client on, ssl_verify_depth 2), and nginx
# reports $ssl_client_verify = SUCCESS; without a client certificate nginx refuses.
#
# Run by hand from the repository root:
#   PQMTLS_BIN=build/pqmtls OPENSSL_BIN=/var/cache/pqmtls/openssl-3.5.7/bin/openssl \
#   OPENSSL_LIBDIR=/var/cache/pqmtls/openssl-3.5.7/lib bash tests/integration/nginx_interop.sh
# (all three default to those values when unset; NGINX_BIN defaults to /usr/sbin/nginx,
#  CURL_BIN to curl; PQMTLS_KEEP_TMP=1 keeps the temp dir on failure)
#
# Asserts:
#  - nginx loads the pqmtls server chain and its encrypted key (ssl_password_file);
#  - curl with client1's certificate and encrypted key: HTTP 200, $ssl_client_verify = SUCCESS,
#    hybrid group X25519MLKEM768 ($ssl_curve 0x11ec), client DN CN=client1, TLS 1.3;
#  - curl verifies the server by name (api.example.com) against server-ca-chain.pem only,
#    and refuses the server when trusting client-ca-chain.pem instead;
#  - the SPIFFE workload certificate (service-a) also gets SUCCESS;
#  - without a client certificate: 400 "No required SSL certificate was sent";
#  - a server-profile certificate presented as a client certificate: 400, verify fails;
#  - a client certificate from another pqmtls PKI (same names, different root): 400.

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
NGINX_BIN="${NGINX_BIN:-/usr/sbin/nginx}"
CURL_BIN="${CURL_BIN:-curl}"
[[ -x "$NGINX_BIN" ]] || fail "nginx not found at $NGINX_BIN"
require_tool "$CURL_BIN" ss

# The Debian programs must really run on OpenSSL 3.5 (else no ML-DSA, no ML-KEM).
run with_ossl35 "$NGINX_BIN" -V
assert_contains "nginx runs on OpenSSL 3.5 with LD_LIBRARY_PATH" "$OUT" "running with OpenSSL 3.5"
run with_ossl35 "$CURL_BIN" --version
assert_match "curl runs on OpenSSL 3.5 with LD_LIBRARY_PATH" "$OUT" "OpenSSL/3\.5"

# ---------------------------------------------------------------- certificates, all by pqmtls
P="$T/pki"
PASS='nginx interop passphrase'
printf '%s\n' "$PASS" > "$T/pass.txt"
chmod 600 "$T/pass.txt"
PF=(--passphrase-file "$T/pass.txt")
# Leaf keys get a passphrase of their own (here the same file, to keep one secret).
KF=(--key-passphrase-file "$T/pass.txt")
expect_ok "pki init" pqm pki init "$P" --org Example --server-domain example.com \
    --spiffe-trust-domain cluster.local "${PF[@]}"
expect_ok "issue server api.example.com" \
    pqm pki issue server --pki "$P" --name api.example.com --dns api.example.com --ip 127.0.0.1 "${PF[@]}" "${KF[@]}"
expect_ok "issue client client1" pqm pki issue client --pki "$P" --name client1 "${PF[@]}" "${KF[@]}"
expect_ok "issue client service-a (SPIFFE)" pqm pki issue client --pki "$P" --name service-a \
    --spiffe-id spiffe://cluster.local/ns/production/sa/frontend-service "${PF[@]}" "${KF[@]}"
SCHAIN="$(pki_file "$P" server-ca-chain.pem)"
CCHAIN="$(pki_file "$P" client-ca-chain.pem)"
I="$P/issued"

# A second, unrelated PKI with the same names: its client certificate must be refused.
P2="$T/pki2"
expect_ok "pki init (foreign PKI)" pqm pki init "$P2" --org Example --server-domain example.com \
    --spiffe-trust-domain cluster.local "${PF[@]}"
expect_ok "issue client client1 (foreign PKI)" pqm pki issue client --pki "$P2" --name client1 "${PF[@]}" "${KF[@]}"

# The leaf keys are encrypted (with --key-passphrase-file).
[[ "$(head -n 1 "$I/api.example.com.key.pem")" == "-----BEGIN ENCRYPTED PRIVATE KEY-----" ]] \
    || fail "server key is not encrypted"
pass "server key is encrypted: nginx needs ssl_password_file"

# ---------------------------------------------------------------- nginx
PORT="$(free_port)"
N="$T/nginx"
mkdir -p "$N"
cat > "$N/nginx.conf" <<EOF
# As root, nginx without a master process stays root and needs no 'user' directive.
daemon off;
master_process off;
worker_processes 1;
pid $N/nginx.pid;
error_log $N/error.log info;
events { worker_connections 64; }
http {
    access_log $N/access.log;
    client_body_temp_path $N/body;
    proxy_temp_path $N/proxy;
    fastcgi_temp_path $N/fastcgi;
    uwsgi_temp_path $N/uwsgi;
    scgi_temp_path $N/scgi;
    server {
        listen 127.0.0.1:$PORT ssl;
        server_name api.example.com;
        ssl_certificate $I/api.example.com.chain.pem;
        ssl_certificate_key $I/api.example.com.key.pem;
        ssl_password_file $T/pass.txt;
        ssl_client_certificate $CCHAIN;
        ssl_verify_client on;
        ssl_verify_depth 2;
        ssl_protocols TLSv1.3;
        ssl_ecdh_curve X25519MLKEM768:X25519;
        location / {
            default_type text/plain;
            return 200 "verify=\$ssl_client_verify curve=\$ssl_curve protocol=\$ssl_protocol dn=\$ssl_client_s_dn\n";
        }
    }
}
EOF
expect_ok "nginx -t accepts the configuration (pqmtls chain, encrypted key)" \
    with_ossl35 "$NGINX_BIN" -t -p "$N" -c "$N/nginx.conf"
env LD_LIBRARY_PATH="$OPENSSL_LIBDIR" "$NGINX_BIN" -p "$N" -c "$N/nginx.conf" > "$N/stdout.log" 2>&1 &
NGINX_PID=$!
track_pid "$NGINX_PID"
if ! wait_port "$PORT" 15 "$NGINX_PID"; then
    fail "nginx did not listen on 127.0.0.1:$PORT: $(cat "$N/error.log" "$N/stdout.log" 2>/dev/null | tail -n 20)"
fi
pass "nginx listens on 127.0.0.1:$PORT"

URL="https://api.example.com:$PORT/"
RES=(--resolve "api.example.com:$PORT:127.0.0.1")
# mcurl ARGS...: curl on OpenSSL 3.5, body and status in $OUT ("...\nHTTP <code>"), exit in $RC
mcurl() {
    run with_ossl35 "$CURL_BIN" -sS --max-time 20 "${RES[@]}" -w '\nHTTP %{http_code}\n' "$@" "$URL"
}

# ---- mTLS with client1
mcurl --cacert "$SCHAIN" --cert "$I/client1.crt.pem" --key "$I/client1.key.pem" --pass "$PASS"
[[ $RC -eq 0 ]] || fail "curl with client1 failed (exit $RC): $OUT :: $(tail -n 5 "$N/error.log")"
assert_contains "client1: HTTP 200" "$OUT" "HTTP 200"
assert_contains "client1: nginx \$ssl_client_verify = SUCCESS" "$OUT" "verify=SUCCESS "
[[ "$OUT" == *"curve=0x11ec "* || "$OUT" == *"curve=X25519MLKEM768 "* ]] \
    || fail "client1: expected \$ssl_curve X25519MLKEM768 (0x11ec), got: $OUT"
pass "client1: key exchange X25519MLKEM768 ($(grep -o 'curve=[^ ]*' <<<"$OUT"))"
assert_contains "client1: TLS 1.3" "$OUT" "protocol=TLSv1.3 "
assert_match "client1: nginx sees client DN CN=client1" "$OUT" "dn=.*CN=client1"

# ---- mTLS with the SPIFFE workload certificate
mcurl --cacert "$SCHAIN" --cert "$I/service-a.crt.pem" --key "$I/service-a.key.pem" --pass "$PASS"
assert_contains "service-a: nginx \$ssl_client_verify = SUCCESS" "$OUT" "verify=SUCCESS "

# ---- client cert sent with its chain file (leaf + intermediate) also works
mcurl --cacert "$SCHAIN" --cert "$I/client1.chain.pem" --key "$I/client1.key.pem" --pass "$PASS"
assert_contains "client1 chain file as client certificate: SUCCESS" "$OUT" "verify=SUCCESS "

# ---- curl checks the server: trusting only another PKI's CA chain, the server is refused
# (not client-ca-chain.pem: it holds the shared root, which anchors the server chain too)
mcurl --cacert "$(pki_file "$P2" server-ca-chain.pem)" --cert "$I/client1.crt.pem" --key "$I/client1.key.pem" --pass "$PASS"
[[ $RC -ne 0 && "$OUT" != *"verify=SUCCESS"* ]] || fail "curl trusting a foreign PKI accepted the server: $OUT"
pass "curl refuses the server when it trusts only a foreign PKI's chain (exit $RC)"
# ... and trusting only the client intermediate (curl allows partial chains), refused too
split_pem "$CCHAIN" "$T/cc" > "$T/cc.list"
for c in $(cat "$T/cc.list"); do is_self_issued "$c" || cp "$c" "$T/client-int.pem"; done
mcurl --cacert "$T/client-int.pem" --cert "$I/client1.crt.pem" --key "$I/client1.key.pem" --pass "$PASS"
[[ $RC -ne 0 && "$OUT" != *"verify=SUCCESS"* ]] || fail "curl trusting only the client intermediate accepted the server: $OUT"
pass "curl refuses the server when it trusts only the client intermediate (exit $RC)"
# ... and checks the name: another name on the same address is refused
run with_ossl35 "$CURL_BIN" -sS --max-time 20 --resolve "other.example.com:$PORT:127.0.0.1" \
    --cacert "$SCHAIN" --cert "$I/client1.crt.pem" --key "$I/client1.key.pem" --pass "$PASS" \
    "https://other.example.com:$PORT/"
[[ $RC -ne 0 ]] || fail "curl accepted the server certificate for other.example.com: $OUT"
pass "curl refuses the server certificate for a name it does not carry (exit $RC)"
# ... and the IP SAN works
run with_ossl35 "$CURL_BIN" -sS --max-time 20 --cacert "$SCHAIN" \
    --cert "$I/client1.crt.pem" --key "$I/client1.key.pem" --pass "$PASS" "https://127.0.0.1:$PORT/"
assert_contains "curl to https://127.0.0.1 (IP SAN): SUCCESS" "$OUT" "verify=SUCCESS "

# ---- no client certificate: refused
mcurl --cacert "$SCHAIN"
assert_contains "no client certificate: HTTP 400" "$OUT" "HTTP 400"
assert_contains "no client certificate: 'No required SSL certificate was sent'" "$OUT" "No required SSL certificate was sent"
assert_not_contains "no client certificate: no SUCCESS" "$OUT" "verify=SUCCESS"

# ---- server-profile certificate presented as a client certificate: refused
mcurl --cacert "$SCHAIN" --cert "$I/api.example.com.chain.pem" --key "$I/api.example.com.key.pem" --pass "$PASS"
assert_contains "server certificate as client certificate: HTTP 400" "$OUT" "HTTP 400"
assert_contains "server certificate as client certificate: 'The SSL certificate error'" "$OUT" "The SSL certificate error"
assert_not_contains "server certificate as client certificate: no SUCCESS" "$OUT" "verify=SUCCESS"

# ---- client certificate from a foreign PKI: refused
mcurl --cacert "$SCHAIN" --cert "$P2/issued/client1.chain.pem" --key "$P2/issued/client1.key.pem" --pass "$PASS"
assert_contains "foreign-PKI client1: HTTP 400" "$OUT" "HTTP 400"
assert_not_contains "foreign-PKI client1: no SUCCESS" "$OUT" "verify=SUCCESS"

# nginx logged the reasons
grep -q 'client sent no required SSL certificate' "$N/error.log" \
    || fail "nginx error.log lacks 'client sent no required SSL certificate'"
grep -q 'client SSL certificate verify error' "$N/error.log" \
    || fail "nginx error.log lacks 'client SSL certificate verify error'"
pass "nginx error.log records both refusals"
kill -0 "$NGINX_PID" 2>/dev/null || fail "nginx died during the test: $(tail -n 20 "$N/error.log")"
pass "nginx still running after all handshakes"

done_all
