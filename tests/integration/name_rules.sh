#!/usr/bin/env bash
# Names that must not get into certificates, and anchors that must not be trusted:
# client certificates carry no DNS/IP names, an IP address is not a DNS name, a
# leading-dot --server-domain means subdomains only, a CSR's CN is taken whole or
# refused, CSR keys on weak curves are refused, a server batch stays under its domain,
# long SPIFFE IDs are recorded whole, --out paths are UTF-8, and an anchor marked as
# rejected for client authentication is refused by pqmtls verify.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
require_tool cc

P=$T/p
pqm pki init "$P" --no-passphrase --server-domain example.com --spiffe-trust-domain cluster.local > /dev/null

# Client certificates: SPIFFE ID only.
expect_rc 1 "client --dns refused" pqm pki issue client --pki "$P" --name c1 --dns www.bank.com
assert_contains "the refusal explains" "$OUT" "--dns and --ip belong in server certificates"
expect_rc 1 "client --ip refused" pqm pki issue client --pki "$P" --name c1 --ip 8.8.8.8
[[ ! -e "$P/issued/c1.crt.pem" ]] || fail "a refused client certificate was written"

# An IP address is not a DNS name (it would escape the IP constraints).
pqm pki init "$T/open" --no-passphrase > /dev/null
expect_rc 1 "server --name 10.1.2.3 refused as a DNS name" pqm pki issue server --pki "$T/open" --name 10.1.2.3
assert_contains "and told to use --ip" "$OUT" "use --ip"
expect_rc 2 "--dns 192.168.1.1 refused (a usage error)" pqm pki issue server --pki "$T/open" --name a.example.net --dns 192.168.1.1
expect_ok "a name with digits in a label is fine" pqm pki issue server --pki "$T/open" --name 1a.example.net

# --server-domain .example.org: below the domain only.
pqm pki init "$T/dot" --no-passphrase --server-domain .example.org > /dev/null
run ossl x509 -in "$T/dot/server-int-ca.crt.pem" -noout -ext nameConstraints
assert_contains "the constraint keeps its leading dot" "$OUT" "DNS:.example.org"
expect_ok "a subdomain is issued" pqm pki issue server --pki "$T/dot" --name api.example.org
expect_rc 1 "the apex is refused" pqm pki issue server --pki "$T/dot" --name example.org

# A server batch numbers its first label and stays under the domain.
expect_ok "server --count 2" pqm pki issue server --pki "$P" --name node.example.com --count 2
for n in node-0001.example.com node-0002.example.com; do
    [[ -f "$P/issued/$n.crt.pem" ]] || fail "expected $n"
    run ossl x509 -in "$P/issued/$n.crt.pem" -noout -ext subjectAltName
    assert_contains "$n carries its own DNS name" "$OUT" "DNS:$n"
done

# A long SPIFFE ID is recorded whole in the inventory.
long="spiffe://cluster.local/$(printf 'segment%03d/' $(seq 1 30))admin"
expect_ok "a ${#long}-byte SPIFFE ID" pqm pki issue client --pki "$P" --name longid --spiffe-id "$long"
run pqm pki list --pki "$P" --json
assert_contains "recorded whole" "$OUT" "URI:$long\""
run pqm inspect "$P/issued/longid.crt.pem" --json
assert_contains "inspected whole" "$OUT" "\"spiffe_id\": \"$long\""

# --out must be UTF-8 (it is recorded and shown as JSON).
mkdir "$T/o$'\xff'" 2>/dev/null || true
expect_rc 2 "a non-UTF-8 --out is a usage error" pqm pki issue client --pki "$P" --name u1 --out "$T/o"$'\xff'"/x"
run pqm pki list --pki "$P" --json
[[ $RC -eq 0 ]] || fail "pki list broke: $OUT"
pass "pki list still works"

# --out names a file prefix, not a directory.
expect_rc 2 "--out ending in / is refused" pqm pki issue client --pki "$P" --name u2 --out "$T/"
expect_rc 2 "--out of . is refused" pqm pki issue client --pki "$P" --name u3 --out .

# CSRs: the CN is taken whole or refused; weak curves are refused.
INC="$(dirname "$OPENSSL_LIBDIR")/include"
cat > "$T/mkcsr.c" <<'C'
/* mkcsr OUT CURVE_OR_MLDSA CN_HEX: a CSR whose CN holds exactly the given bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
int main(int argc, char **argv)
{
    if (argc != 4) return 2;
    unsigned char cn[256]; size_t n = strlen(argv[3]) / 2;
    for (size_t i = 0; i < n; i++) sscanf(argv[3] + 2 * i, "%2hhx", &cn[i]);
    EVP_PKEY *k = strncmp(argv[2], "ML-DSA", 6) == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, argv[2])
                                                      : EVP_PKEY_Q_keygen(NULL, NULL, "EC", argv[2]);
    X509_REQ *r = X509_REQ_new();
    X509_NAME *nm = X509_NAME_new();
    if (k == NULL || r == NULL || nm == NULL ||
        X509_NAME_add_entry_by_NID(nm, NID_commonName, V_ASN1_UTF8STRING, cn, (int)n, -1, 0) != 1 ||
        X509_REQ_set_subject_name(r, nm) != 1 || X509_REQ_set_pubkey(r, k) != 1 ||
        X509_REQ_sign(r, k, strncmp(argv[2], "ML-DSA", 6) == 0 ? NULL : EVP_sha256()) <= 0) return 1;
    FILE *f = fopen(argv[1], "w");
    return f != NULL && PEM_write_X509_REQ(f, r) == 1 && fclose(f) == 0 ? 0 : 1;
}
C
cc -std=c11 -I"$INC" "$T/mkcsr.c" -o "$T/mkcsr" -L"$OPENSSL_LIBDIR" -Wl,-rpath,"$OPENSSL_LIBDIR" -lcrypto \
    || fail "cannot build the CSR maker"
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
"$T/mkcsr" "$T/nul.csr" ML-DSA-65 "$(hex api.example.com)00$(hex .attacker.org)"
expect_rc 1 "a CN with a NUL is refused" pqm pki sign-csr --pki "$P" --csr "$T/nul.csr" --profile server
assert_contains "saying why" "$OUT" "NUL"
[[ ! -e "$P/issued/api.example.com.crt.pem" ]] || fail "a certificate was issued for the CN cut at its NUL"
"$T/mkcsr" "$T/long.csr" ML-DSA-65 "$(hex "$(printf 'a%.0s' $(seq 1 69))")"
expect_rc 1 "a 69-character CN is refused, not cut" pqm pki sign-csr --pki "$P" --csr "$T/long.csr" --profile client
"$T/mkcsr" "$T/ok.csr" ML-DSA-65 "$(hex device-17)"
expect_ok "a plain CN names the certificate" pqm pki sign-csr --pki "$P" --csr "$T/ok.csr" --profile client
[[ -f "$P/issued/device-17.crt.pem" ]] || fail "device-17 not issued"
"$T/mkcsr" "$T/weak.csr" prime192v1 "$(hex weak-device)"
expect_rc 1 "a P-192 key is refused" pqm pki sign-csr --pki "$P" --csr "$T/weak.csr" --profile client
"$T/mkcsr" "$T/p256.csr" P-256 "$(hex p256-device)"
expect_ok "a P-256 key is accepted" pqm pki sign-csr --pki "$P" --csr "$T/p256.csr" --profile client

# pqmtls verify honours an anchor's trust settings.
ossl x509 -in "$P/client-int-ca.crt.pem" -addreject clientAuth -trustout -out "$T/rejecting-anchor.pem"
expect_ok "the plain anchor verifies client1" pqm verify --ca "$P/client-ca-chain.pem" --purpose client "$P/issued/device-17.crt.pem"
expect_rc 1 "an anchor rejected for clientAuth is refused" pqm verify --ca "$T/rejecting-anchor.pem" --purpose client "$P/issued/device-17.crt.pem"
done_all
