#!/usr/bin/env bash
# The mesh hierarchy and `pqmtls export istio-cacerts`:
#  - pki init --mesh-alg ecdsa-p256 / pki mesh: a classical root and intermediate in
#    DIR/mesh (keys 0600, encrypted like the other CA keys), recorded in the inventory,
#    the intermediate constrained to the SPIFFE trust domain; ML-DSA refused for it; a
#    second mesh refused;
#  - export istio-cacerts: the Secret cacerts in istio-system (schema-valid, mode 0600),
#    with ca-cert.pem, an unencrypted EC P-256 ca-key.pem matching it, root-cert.pem and
#    cert-chain.pem = ca-cert + root; openssl verifies the chain, and a workload certificate
#    signed with ca-key.pem as istiod would (SPIFFE ID in the trust domain) verifies, one
#    outside the trust domain does not;
#  - a PKI without a mesh hierarchy: refused, explaining why (Envoy and ML-DSA) and how.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
PY=/usr/bin/python3
CHECK="$PQMTLS_SOURCE_DIR/tests/integration/lib/schema_check.py"

echo "cacerts test passphrase" > "$T/pass"
P=$T/pki
expect_rc 2 "pki init --mesh-alg ml-dsa-65 is refused" pqm pki init "$T/x" --no-passphrase --mesh-alg ml-dsa-65
assert_contains "saying why" "$OUT" "cannot verify ML-DSA"
[[ ! -e "$T/x" ]] || fail "a refused pki init left a directory"
expect_ok "pki init --mesh-alg ecdsa-p256" pqm pki init "$P" --passphrase-file "$T/pass" \
    --spiffe-trust-domain cluster.local --mesh-alg ecdsa-p256
M=$P/mesh
for f in mesh-root-ca.key.pem mesh-int-ca.key.pem; do
    [[ "$(file_mode "$M/$f")" == 600 ]] || fail "$f has mode $(file_mode "$M/$f")"
    head -1 "$M/$f" | grep -q "ENCRYPTED PRIVATE KEY" || fail "$f is not encrypted"
done
pass "the mesh CA keys are encrypted, mode 0600"
run pqm pki list --pki "$P" --json
"$PY" -c 'import json,sys; d={c["name"]: c for c in json.loads(sys.argv[1])["certificates"]}; assert d["mesh-root-ca"]["kind"]=="root" and d["mesh-int-ca"]["kind"]=="intermediate" and d["mesh-int-ca"]["issuer_serial"]==d["mesh-root-ca"]["serial"], d' "$OUT" \
    || fail "the inventory does not record the mesh CAs"
pass "the inventory records the mesh root and intermediate"
run ossl x509 -in "$M/mesh-int-ca.crt.pem" -noout -text
assert_contains "the mesh intermediate is ECDSA P-256" "$OUT" "ASN1 OID: prime256v1"
assert_contains "constrained to the trust domain" "$OUT" "URI:cluster.local"
expect_rc 1 "a second mesh hierarchy is refused" pqm pki mesh --pki "$P" --passphrase-file "$T/pass"
assert_contains "as existing" "$OUT" "already exists"

expect_rc 1 "export without the passphrase is refused" env -u PQMTLS_PASSPHRASE "$PQMTLS_BIN" export istio-cacerts --pki "$P" --passphrase-file /dev/null
expect_ok "export istio-cacerts" pqm export istio-cacerts --pki "$P" --passphrase-file "$T/pass" --out "$T/cacerts.yaml"
[[ "$(file_mode "$T/cacerts.yaml")" == 600 ]] || fail "cacerts.yaml has mode $(file_mode "$T/cacerts.yaml")"
pass "the Secret file is mode 0600"
expect_ok "the Secret passes the Kubernetes schema" "$PY" "$CHECK" "$T/cacerts.yaml"
"$PY" - "$T/cacerts.yaml" "$T" <<'PY' || fail "the Secret is not Istio's cacerts"
import base64, sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
assert d["kind"] == "Secret" and d["metadata"]["name"] == "cacerts" and d["metadata"]["namespace"] == "istio-system"
assert sorted(d["data"]) == ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"], sorted(d["data"])
for k, v in d["data"].items():
    open(sys.argv[2] + "/" + k, "wb").write(base64.b64decode(v))
PY
pass "cacerts in istio-system holds ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem"
head -1 "$T/ca-key.pem" | grep -q "BEGIN PRIVATE KEY" || fail "ca-key.pem is not an unencrypted PKCS#8 key"
pass "ca-key.pem is unencrypted (istiod reads it so)"
cmp -s "$T/ca-cert.pem" "$M/mesh-int-ca.crt.pem" && cmp -s "$T/root-cert.pem" "$M/mesh-root-ca.crt.pem" \
    && cmp -s "$T/cert-chain.pem" <(cat "$M/mesh-int-ca.crt.pem" "$M/mesh-root-ca.crt.pem") \
    || fail "the certificates are not the mesh CAs"
pass "ca-cert is the mesh intermediate, root-cert the mesh root, cert-chain both"
[[ "$(ossl pkey -in "$T/ca-key.pem" -pubout)" == "$(ossl x509 -in "$T/ca-cert.pem" -noout -pubkey)" ]] \
    || fail "ca-key.pem does not match ca-cert.pem"
pass "ca-key.pem matches ca-cert.pem"
expect_ok "openssl verifies ca-cert.pem against root-cert.pem" ossl verify -x509_strict -CAfile "$T/root-cert.pem" "$T/ca-cert.pem"

# istiod's job: a workload certificate signed with ca-key.pem.
workload() { # NAME SPIFFE-ID
    ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.key" -subj "/O=cluster" -out "$T/$1.csr" 2> /dev/null
    printf 'subjectAltName=URI:%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' "$2" > "$T/$1.ext"
    ossl x509 -req -in "$T/$1.csr" -CA "$T/ca-cert.pem" -CAkey "$T/ca-key.pem" -CAcreateserial \
        -days 1 -extfile "$T/$1.ext" -out "$T/$1.crt" 2> /dev/null
}
workload wl spiffe://cluster.local/ns/production/sa/frontend-service
expect_ok "a workload certificate signed with ca-key.pem verifies up to root-cert.pem" \
    ossl verify -x509_strict -CAfile "$T/root-cert.pem" -untrusted "$T/ca-cert.pem" "$T/wl.crt"
workload evil spiffe://evil.example/ns/x/sa/y
expect_fail_d() { local d="$1"; shift; expect_fail "$@"; pass "$d"; }
expect_fail_d "one outside the trust domain does not (name constraints)" \
    ossl verify -x509_strict -CAfile "$T/root-cert.pem" -untrusted "$T/ca-cert.pem" "$T/evil.crt"
assert_match "as a name constraint violation" "$OUT" "[Nn]ame constraint|permitted subtree"

# A PKI without a mesh hierarchy
pqm pki init "$T/plain" --no-passphrase > /dev/null || fail "pki init"
expect_rc 1 "export from a PKI without a mesh hierarchy is refused" pqm export istio-cacerts --pki "$T/plain"
assert_contains "explaining why" "$OUT" "cannot verify ML-DSA"
assert_contains "and how" "$OUT" "pqmtls pki mesh --pki"
expect_rc 1 "pki mesh --alg ml-dsa-65 is refused" pqm pki mesh --pki "$T/plain" --alg ml-dsa-65
expect_ok "pki mesh adds one to an existing PKI" pqm pki mesh --pki "$T/plain" --alg ecdsa-p384
expect_ok "then the export works" pqm export istio-cacerts --pki "$T/plain"
assert_contains "to standard output" "$OUT" "name: cacerts"
run pqm pki tree --pki "$T/plain"
assert_contains "pki tree shows the mesh root" "$OUT" "mesh-root-ca (ecdsa-p384)"

# Mesh files that do not belong together are refused, never written into a Secret.
pqm pki init "$T/other" --no-passphrase --mesh-alg ecdsa-p384 > /dev/null || fail "pki init (other)"
cp -r "$T/plain" "$T/swapped"
cp "$T/other/mesh/mesh-root-ca.crt.pem" "$T/swapped/mesh/mesh-root-ca.crt.pem"
expect_rc 1 "a mesh root that did not sign the intermediate is refused" pqm export istio-cacerts --pki "$T/swapped"
assert_contains "saying so" "$OUT" "the mesh intermediate is not signed by the mesh root"
cp -r "$T/plain" "$T/rekeyed"
cp "$T/other/mesh/mesh-int-ca.key.pem" "$T/rekeyed/mesh/mesh-int-ca.key.pem"
expect_rc 1 "a mesh intermediate key of another certificate is refused" pqm export istio-cacerts --pki "$T/rekeyed"
assert_contains "naming both files" "$OUT" "mesh-int-ca.key.pem does not match mesh-int-ca.crt.pem"

done_all
