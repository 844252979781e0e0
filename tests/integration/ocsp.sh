#!/usr/bin/env bash
# OCSP: `pqmtls ocsp signers` makes one delegated signer per intermediate CA (EKU
# OCSPSigning, id-pkix-ocsp-nocheck, keyUsage digitalSignature, ML-DSA-65, recorded in the
# inventory with kind 'ocsp', links to the current one, renewal supersedes and removes the
# old key).
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
require_tool python3

P=$T/pki
echo "ocsp-test-passphrase" > "$T/pass"
PF=(--passphrase-file "$T/pass")
pqm pki init "$P" --org Example --server-domain example.com "${PF[@]}" > /dev/null || fail "pki init"
for n in c1 c2 c3; do
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

done_all
