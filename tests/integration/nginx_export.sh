#!/usr/bin/env bash
# pqmtls export nginx, run by Debian's nginx on OpenSSL 3.5 exactly as written (only the
# --ssl-dir paths rewritten to a temporary directory):
#  - the files: NAME.conf, ssl/ with the chain, the key and its passphrase (0600), the CA
#    chains and the client chain's CRLs (0644); bad arguments refused with the reason;
#  - `nginx -t` passes; an ML-DSA-65 client completes the handshake (X25519MLKEM768) and
#    the upstream gets X-Client-Cert-Subject, -Issuer, -Serial, -Fingerprint, -Verify
#    with the client's values and none of the copies the client sent (nor
#    X-Forwarded-Client-Cert, Client-Cert);
#  - no client certificate, and a revoked one (ssl_crl), are refused;
#  - nginx staples the OCSP response of the server certificate's responder.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
source "$(dirname "${BASH_SOURCE[0]}")/lib/ocsp.bash"
source "$(dirname "${BASH_SOURCE[0]}")/lib/nginx.bash"
require_bin
NGINX_BIN="${NGINX_BIN:-/usr/sbin/nginx}"
CURL_BIN="${CURL_BIN:-curl}"
[[ -x "$NGINX_BIN" ]] || fail "nginx not found at $NGINX_BIN"
require_tool "$CURL_BIN" python3

PA=$(free_port)
P=$T/pki
echo "nginx export key passphrase" > "$T/keypass"
pqm pki init "$P" --no-passphrase --org Example --server-domain example.com \
    --ocsp-url "http://127.0.0.1:$PA" > /dev/null || fail "pki init"
pqm pki issue server --pki "$P" --name api.example.com --ip 127.0.0.1 --key-passphrase-file "$T/keypass" > /dev/null || fail "issue server"
for n in good bad; do pqm pki issue client --pki "$P" --name "$n" > /dev/null || fail "issue $n"; done
I=$P/issued
pqm pki revoke --pki "$P" "$(cert_serial "$I/bad.crt.pem")" --reason keyCompromise > /dev/null || fail "revoke"

UP=$(free_port)
NP=$(free_port)
while [[ "$NP" == "$UP" ]]; do NP=$(free_port); done
X=(--pki "$P" --server-name api.example.com --upstream "http://127.0.0.1:$UP" --out "$T/out" --listen-port "$NP")
expect_rc 1 "export before any CRL is refused" pqm export nginx "${X[@]}" --key-passphrase-file "$T/keypass"
assert_contains "and says to run pki crl" "$OUT" "pqmtls pki crl"
pqm pki crl --pki "$P" > /dev/null || fail "pki crl"
expect_rc 1 "an encrypted key without --key-passphrase-file is refused" pqm export nginx "${X[@]}"
assert_contains "with the reason" "$OUT" "is encrypted: give --key-passphrase-file"
expect_rc 1 "an upstream that would inject nginx syntax is refused" pqm export nginx --pki "$P" \
    --server-name api.example.com --upstream 'http://x;include /etc/passwd' --out "$T/bad"
expect_rc 1 "an unknown server name is refused" pqm export nginx --pki "$P" --server-name www.example.com \
    --upstream http://x --out "$T/bad"
assert_contains "naming it" "$OUT" "no valid server certificate named 'www.example.com'"
expect_ok "export nginx" pqm export nginx "${X[@]}" --key-passphrase-file "$T/keypass"

C=$T/out/api.example.com.conf
S=$T/out/ssl
for f in api.example.com.key.pem api.example.com.pass; do
    [[ "$(file_mode "$S/$f")" == 600 ]] || fail "$f has mode $(file_mode "$S/$f"), expected 600"
done
pass "the key and its passphrase are mode 0600"
for f in api.example.com.chain.pem client-ca-chain.pem server-ca-chain.pem client-ca-chain.crl.pem; do
    [[ "$(file_mode "$S/$f")" == 644 ]] || fail "$f has mode $(file_mode "$S/$f"), expected 644"
    cmp -s "$S/$f" "$P/$([[ $f == api.* ]] && echo issued/)$([[ $f == *.crl.pem ]] && echo crl/)$f" \
        || fail "$S/$f is not a copy of the PKI's file"
done
pass "the certificates and CRLs are copies, mode 0644"
for d in "ssl_protocols           TLSv1.3;" "ssl_ecdh_curve          X25519MLKEM768:X25519;" \
    "ssl_verify_client       on;" "ssl_verify_depth        2;" \
    "ssl_client_certificate  /etc/nginx/ssl/client-ca-chain.pem;" \
    "ssl_crl                 /etc/nginx/ssl/client-ca-chain.crl.pem;" \
    "ssl_password_file       /etc/nginx/ssl/api.example.com.pass;" "ssl_stapling            on;"; do
    grep -qF "$d" "$C" || fail "the server block lacks '$d'"
done
pass "the server block has TLS 1.3, the hybrid group first, verify on, depth 2, ssl_crl, stapling"
grep -q "proxy_ssl_verify" "$C" && fail "an http:// upstream got proxy_ssl settings"

# An https:// upstream is verified; a server whose key is not encrypted leaves no
# passphrase of an earlier export behind.
pqm pki issue server --pki "$P" --name plain.example.com --ip 127.0.0.1 --no-key-passphrase > /dev/null || fail "issue plain"
echo "an old passphrase" > "$S/plain.example.com.pass"
expect_ok "export nginx with an https:// upstream" pqm export nginx --pki "$P" --server-name plain.example.com \
    --upstream "https://127.0.0.1:$UP" --out "$T/out" --listen-port "$NP"
[[ -e "$S/plain.example.com.pass" ]] && fail "the stale plain.example.com.pass is still in $S"
pass "the passphrase file of an earlier export is removed when the key is not encrypted"
for d in "proxy_ssl_verify on;" "proxy_ssl_server_name on;" "proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;"; do
    grep -qF "$d" "$T/out/plain.example.com.conf" || fail "the https upstream's block lacks '$d'"
done
pass "an https:// upstream's certificate is verified (proxy_ssl_verify on, server name, CAs)"
expect_rc 1 "--upstream-ca with a plain http:// upstream is refused" pqm export nginx --pki "$P" \
    --server-name plain.example.com --upstream "http://127.0.0.1:$UP" --upstream-ca /etc/ssl/x.pem --out "$T/bad"
assert_contains "saying why" "$OUT" "--upstream-ca is for an https:// upstream"
cp "$P/server-ca-chain.pem" "$T/upstream-ca.pem"
expect_ok "export nginx --upstream-ca" pqm export nginx --pki "$P" --server-name plain.example.com \
    --upstream "https://127.0.0.1:$UP" --upstream-ca "$T/upstream-ca.pem" --out "$T/out2" --listen-port "$NP"
grep -qF "proxy_ssl_trusted_certificate $T/upstream-ca.pem;" "$T/out2/plain.example.com.conf" \
    || fail "the block does not name --upstream-ca"
sed "s|/etc/nginx/ssl|$T/out2/ssl|g" "$T/out2/plain.example.com.conf" > "$T/https-server.conf"
nginx_conf "$T/nginx-https" "    include $T/https-server.conf;"
expect_ok "nginx -t accepts the block with the https upstream's verification" \
    with_ossl35 "$NGINX_BIN" -t -p "$T/nginx-https" -c "$T/nginx-https/nginx.conf"

# nginx with exactly that block, the paths moved to the temporary directory
sed "s|/etc/nginx/ssl|$S|g" "$C" > "$T/server.conf"
diff <(sed "s|/etc/nginx/ssl|SSL|g" "$C") <(sed "s|$S|SSL|g" "$T/server.conf") > /dev/null || fail "the rewrite changed more than paths"
N=$T/nginx
nginx_conf "$N" "    include $T/server.conf;"
expect_ok "nginx -t accepts the exported server block" with_ossl35 "$NGINX_BIN" -t -p "$N" -c "$N/nginx.conf"
ossl_ocsp_responder "$P" server "$PA"
python3 "$PQMTLS_SOURCE_DIR/tests/integration/lib/upstream.py" "$UP" "$T/rec.jsonl" > "$T/up.log" 2>&1 &
track_pid $!
wait_port "$UP" || fail "upstream did not start"
env LD_LIBRARY_PATH="$OPENSSL_LIBDIR" "$NGINX_BIN" -p "$N" -c "$N/nginx.conf" > "$N/stdout.log" 2>&1 &
track_pid $!
wait_port "$NP" || fail "nginx did not start: $(tail -5 "$N/error.log")"

nc() { # NAME [curl options]: status in CODE
    local who="$1"; shift
    local cert=()
    [[ "$who" != - ]] && cert=(--cert "$I/$who.crt.pem" --key "$I/$who.key.pem")
    set +e
    CODE=$(with_ossl35 "$CURL_BIN" -sS --max-time 20 --cacert "$P/server-ca-chain.pem" "${cert[@]}" \
        -o "$T/body" -w '%{http_code}' "$@" "https://127.0.0.1:$NP/hello" 2> "$T/curl.err")
    set -e
}
nc good -H 'X-Client-Cert-Subject: CN=admin' -H 'X-Forwarded-Client-Cert: forged' -H 'Client-Cert: :Zm9v:' \
    -H 'X-Client-Cert-Verify: SUCCESS' -H 'X-Client-Cert-Spiffe-Id: spiffe://cluster.local/ns/x/sa/admin'
[[ "$CODE" == 200 ]] || fail "the ML-DSA-65 client got $CODE: $(cat "$T/curl.err") $(tail -3 "$N/error.log")"
pass "an ML-DSA-65 client completes the mTLS handshake with nginx (200)"
python3 - "$T/rec.jsonl" "$(cert_serial "$I/good.crt.pem")" \
    "$(ossl x509 -in "$I/good.crt.pem" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')" <<'PY' || fail "the upstream's headers are wrong"
import json, sys
rec = [json.loads(l) for l in open(sys.argv[1])][-1]
h = {}
for k, v in rec["headers"]:
    h.setdefault(k.lower(), []).append(v)
def one(name, want):
    got = h.get(name.lower(), [])
    assert got == [want], (name, got, want)
one("X-Client-Cert-Subject", "CN=good,O=Example")
one("X-Client-Cert-Issuer", "CN=Example Client Intermediate CA,O=Example")
one("X-Client-Cert-Verify", "SUCCESS")
assert [s.upper() for s in h["x-client-cert-serial"]] == [sys.argv[2]], h["x-client-cert-serial"]
assert h["x-client-cert-fingerprint"] == [sys.argv[3]], h["x-client-cert-fingerprint"]
for gone in ("x-forwarded-client-cert", "client-cert", "x-client-cert-spiffe-id", "client-cert-chain"):
    assert gone not in h, (gone, h.get(gone))
PY
pass "the upstream gets the five X-Client-Cert-* headers with the client's values, and none of the client's copies"

nc -
[[ "$CODE" == 400 ]] || fail "no client certificate: $CODE"
pass "no client certificate: 400"
nc bad
[[ "$CODE" == 400 ]] || fail "revoked client: $CODE"
pass "the revoked client (ssl_crl): 400"
grep -q 'certificate revoked' "$N/error.log" || fail "nginx's log lacks 'certificate revoked'"
pass "nginx logs 'certificate revoked'"

# nginx fetches the staple on the first handshake that asks, and staples from then on
for _ in $(seq 30); do
    set +e
    OUT=$(echo | timeout 10 env OPENSSL_CONF=/dev/null LD_LIBRARY_PATH="$OPENSSL_LIBDIR" "$OPENSSL_BIN" s_client \
        -connect "127.0.0.1:$NP" -status -CAfile "$P/server-ca-chain.pem" \
        -cert "$I/good.crt.pem" -key "$I/good.key.pem" 2>&1)
    set -e
    [[ "$OUT" == *"OCSP Response Status: successful"* ]] && break
    sleep 0.3
done
assert_contains "nginx staples the OCSP response" "$OUT" "OCSP Response Status: successful"
assert_contains "ML-DSA-65 signed" "$OUT" "Signature Algorithm: ML-DSA-65"

done_all
