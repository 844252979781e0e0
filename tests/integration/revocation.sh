#!/usr/bin/env bash
# Revocation: `pki revoke` records time and reason and refuses unknown, already revoked
# and root serials; `pki crl` signs a v2 CRL per CA (ML-DSA, CRL number growing with each
# run, AKI, reason codes, nextUpdate as asked) and the chain files; OpenSSL 3.5 judges
# them: `openssl crl -verify` accepts each, `openssl verify -crl_check_all` refuses the
# revoked client and accepts the others; a revoked intermediate is listed by the root's
# CRL and takes its whole branch down. With --crl-url / --ocsp-url (at init or by
# `pki configure`) certificates carry the distribution point of their issuer's DER CRL
# and the responder's URL, and `openssl verify -crl_download` fetches the CRLs that
# DIR/crl/ serves over HTTP and refuses a revoked certificate.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin

# expect_fail_d DESC CMD...: CMD must fail cleanly.
expect_fail_d() { local d="$1"; shift; expect_fail "$@"; pass "$d"; }

P=$T/pki
echo "crl-test-passphrase" > "$T/pass"
pqm pki init "$P" --org Example --server-domain example.com --spiffe-trust-domain cluster.local \
    --passphrase-file "$T/pass" > /dev/null || fail "pki init"
for n in c1 c2 c3; do
    pqm pki issue client --pki "$P" --name "$n" --passphrase-file "$T/pass" > /dev/null || fail "issue $n"
done
pqm pki issue server --pki "$P" --name api.example.com --passphrase-file "$T/pass" > /dev/null || fail "issue server"
S1=$(cert_serial "$P/issued/c1.crt.pem")
S2=$(cert_serial "$P/issued/c2.crt.pem")
S3=$(cert_serial "$P/issued/c3.crt.pem")
ROOT=$(cert_serial "$P/root-ca.crt.pem")
SINT=$(cert_serial "$P/server-int-ca.crt.pem")

# --- pki revoke ---------------------------------------------------------------------
expect_ok "revoke c1 for keyCompromise" pqm pki revoke --pki "$P" "$S1" --reason keyCompromise
assert_contains "the output names the certificate" "$OUT" "'c1'"
assert_contains "and says what comes next" "$OUT" "pqmtls pki crl --pki"
lower=$(printf '%s' "$S2" | tr 'A-F' 'a-f' | sed 's/../&:/g; s/:$//')
expect_ok "revoke c2 given in lower case with colons (superseded)" pqm pki revoke --pki "$P" "$lower" --reason superseded
expect_rc 1 "revoking c1 again is refused" pqm pki revoke --pki "$P" "$S1"
assert_contains "as already revoked" "$OUT" "already revoked"
expect_rc 1 "an unknown serial is refused" pqm pki revoke --pki "$P" 0123456789ABCDEF
assert_contains "as not in the inventory" "$OUT" "not in this PKI's inventory"
expect_rc 1 "a serial that is not hex is refused" pqm pki revoke --pki "$P" xyz
assert_contains "as not a serial" "$OUT" "not a serial number"
expect_rc 1 "an unknown reason is refused" pqm pki revoke --pki "$P" "$S3" --reason bored
assert_contains "with the list of reasons" "$OUT" "cessationOfOperation"
expect_rc 1 "the root cannot be revoked" pqm pki revoke --pki "$P" "$ROOT"
assert_contains "and the refusal says why" "$OUT" "a root is not revoked by a CRL"
expect_rc 2 "revoke without a serial is a usage error" pqm pki revoke --pki "$P"
expect_rc 2 "revoke refuses --json (an option of pki crl)" pqm pki revoke --pki "$P" 01 --json
assert_contains "saying it does not apply" "$OUT" "--json does not apply here"

run pqm pki list --pki "$P" --json
python3 - "$OUT" "$S1" "$S2" "$S3" <<'PY' || fail "the inventory does not record the revocations"
import json, sys
rows = {r["serial"]: r for r in json.loads(sys.argv[1])["certificates"]}
s1, s2, s3 = sys.argv[2:5]
assert rows[s1]["status"] == "revoked" and rows[s1]["revocation_reason"] == "keyCompromise", rows[s1]
assert rows[s1]["revoked_at"].endswith("Z"), rows[s1]
assert rows[s2]["status"] == "revoked" and rows[s2]["revocation_reason"] == "superseded", rows[s2]
assert rows[s3]["status"] == "valid" and "revoked_at" not in rows[s3], rows[s3]
PY
pass "the inventory records status, time and reason of each revocation"

# --- pki crl -------------------------------------------------------------------------
expect_rc 2 "pki crl refuses a bad --next-update" pqm pki crl --pki "$P" --passphrase-file "$T/pass" --next-update 3w
expect_rc 1 "pki crl needs the CA passphrase" env -u PQMTLS_PASSPHRASE "$PQMTLS_BIN" pki crl --pki "$P" --passphrase-file /dev/null
expect_ok "pki crl --next-update 2d" pqm pki crl --pki "$P" --passphrase-file "$T/pass" --next-update 2d --json
N1=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d[2]["number"], d[2]["entries"], d[0]["entries"])' "$OUT")
[[ "$N1" == "1 2 0" ]] || fail "first run: expected CRL #1 with 2 client entries and an empty root CRL, got '$N1'"
pass "the first CRLs are number 1; the client CA's lists 2 entries, the root's none"
C=$P/crl
for f in root-ca.crl.pem server-int-ca.crl.pem client-int-ca.crl.pem root-ca.crl server-int-ca.crl client-int-ca.crl client-ca-chain.crl.pem server-ca-chain.crl.pem; do
    [[ -s "$C/$f" ]] || fail "missing $C/$f"
done
pass "DIR/crl holds PEM and DER CRLs per CA and the two chain files"
[[ $(grep -c 'BEGIN X509 CRL' "$C/client-ca-chain.crl.pem") == 2 ]] || fail "client-ca-chain.crl.pem should hold 2 CRLs"
pass "client-ca-chain.crl.pem holds the client CA's and the root's CRLs"

run ossl crl -in "$C/client-int-ca.crl.pem" -noout -text
assert_contains "CRL is version 2" "$OUT" "Version 2"
assert_contains "signed with ML-DSA-65" "$OUT" "Signature Algorithm: ML-DSA-65"
assert_contains "has a CRL number" "$OUT" "X509v3 CRL Number"
assert_contains "has an authority key identifier" "$OUT" "X509v3 Authority Key Identifier"
assert_contains "lists c1" "$OUT" "$S1"
assert_contains "with reason keyCompromise" "$OUT" "Key Compromise"
assert_contains "and c2 as superseded" "$OUT" "Superseded"
assert_not_contains "and not c3" "$OUT" "$S3"
ski=$(ossl x509 -in "$P/client-int-ca.crt.pem" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' ')
aki=$(ossl crl -in "$C/client-int-ca.crl.pem" -noout -text | grep -A1 'Authority Key Identifier' | tail -1 | tr -d ' ')
[[ -n "$ski" && "$ski" == "$aki" ]] || fail "AKI '$aki' is not the CA's SKI '$ski'"
pass "the CRL's AKI is the CA's subject key identifier"
nb=$(date -u -d "$(ossl crl -in "$C/client-int-ca.crl.pem" -noout -nextupdate | cut -d= -f2)" +%s)
lb=$(date -u -d "$(ossl crl -in "$C/client-int-ca.crl.pem" -noout -lastupdate | cut -d= -f2)" +%s)
[[ $((nb - lb)) -eq $((172800 + 60)) ]] || fail "nextUpdate - thisUpdate = $((nb - lb)), expected 2 days and the minute thisUpdate is set back"
(( lb <= $(date +%s) - 55 )) || fail "thisUpdate $lb is not set back a minute"
pass "nextUpdate is 2 days from now, as asked; thisUpdate a minute back (clocks a little behind)"

declare -A CA_OF=([root-ca]=root-ca.crt.pem [server-int-ca]=server-ca-chain.pem [client-int-ca]=client-ca-chain.pem)
for b in root-ca server-int-ca client-int-ca; do
    expect_ok "openssl crl -verify accepts $b's CRL (PEM)" ossl crl -in "$C/$b.crl.pem" -CAfile "$P/${CA_OF[$b]}" -verify -noout
    assert_contains "and says so" "$OUT" "verify OK"
    expect_ok "openssl crl -verify accepts $b's CRL (DER)" ossl crl -inform DER -in "$C/$b.crl" -CAfile "$P/${CA_OF[$b]}" -verify -noout
done
cp "$C/client-int-ca.crl.pem" "$T/tampered.crl.pem"
sed -i '3s/A/B/; 3s/a/b/' "$T/tampered.crl.pem"
expect_fail_d "openssl crl -verify refuses a tampered CRL" ossl crl -in "$T/tampered.crl.pem" -CAfile "$P/client-ca-chain.pem" -verify -noout

# openssl verify with the CRLs of the whole chain.
judge() { ossl verify -x509_strict -crl_check_all -CAfile "$P/root-ca.crt.pem" -untrusted "$P/client-int-ca.crt.pem" -CRLfile "$C/client-ca-chain.crl.pem" "$@"; }
expect_fail_d "openssl verify -crl_check_all refuses revoked c1" judge "$P/issued/c1.crt.pem"
assert_contains "as revoked" "$OUT" "certificate revoked"
expect_fail_d "and revoked c2" judge "$P/issued/c2.crt.pem"
expect_ok "and accepts c3" judge "$P/issued/c3.crt.pem"
expect_ok "pqmtls verify --crl accepts c3" pqm verify --ca "$P/client-ca-chain.pem" --purpose client --crl "$C/client-ca-chain.crl.pem" "$P/issued/c3.crt.pem"
expect_fail_d "pqmtls verify --crl refuses c1" pqm verify --ca "$P/client-ca-chain.pem" --purpose client --crl "$C/client-ca-chain.crl.pem" "$P/issued/c1.crt.pem"
assert_contains "as revoked" "$OUT" "revoked"

# A second run: the number grows; the files are replaced whole.
expect_ok "pki crl again (PQMTLS_PASSPHRASE)" env PQMTLS_PASSPHRASE="crl-test-passphrase" "$PQMTLS_BIN" pki crl --pki "$P" --json
N2=$(python3 -c 'import json,sys; print(" ".join(str(c["number"]) for c in json.loads(sys.argv[1])))' "$OUT")
[[ "$N2" == "2 2 2" ]] || fail "second run: CRL numbers '$N2', expected '2 2 2'"
run ossl crl -in "$C/root-ca.crl.pem" -noout -crlnumber
assert_contains "the root's CRL file now carries number 2" "$OUT" "crlNumber=0x02"
ls "$C" | grep -q '^\.pqm' && fail "temporary files left in $C"
pass "no temporary files are left behind"

# --- revoking an intermediate ---------------------------------------------------------
expect_ok "revoke the server intermediate (cACompromise)" pqm pki revoke --pki "$P" "$SINT" --reason cACompromise
expect_ok "pki crl" pqm pki crl --pki "$P" --passphrase-file "$T/pass"
nb=$(date -u -d "$(ossl crl -in "$C/root-ca.crl.pem" -noout -nextupdate | cut -d= -f2)" +%s)
lb=$(date -u -d "$(ossl crl -in "$C/root-ca.crl.pem" -noout -lastupdate | cut -d= -f2)" +%s)
[[ $((nb - lb)) -eq $((7 * 86400 + 60)) ]] || fail "without --next-update: nextUpdate - thisUpdate = $((nb - lb)), expected 7 days (and a minute)"
pass "without --next-update the CRLs are valid 7 days"
run ossl crl -in "$C/root-ca.crl.pem" -noout -text
assert_contains "the root's CRL lists the server intermediate" "$OUT" "$SINT"
assert_contains "as a CA compromise" "$OUT" "CA Compromise"
expect_fail_d "openssl verify -crl_check_all now refuses the server certificate" \
    ossl verify -crl_check_all -CAfile "$P/root-ca.crt.pem" -untrusted "$P/server-int-ca.crt.pem" \
    -CRLfile "$C/server-ca-chain.crl.pem" "$P/issued/api.example.com.crt.pem"
assert_contains "because its CA is revoked" "$OUT" "certificate revoked"
expect_ok "while client c3 still verifies" judge "$P/issued/c3.crt.pem"

# --- distribution points ----------------------------------------------------------------
expect_rc 2 "pki init refuses an ftp:// CRL URL" pqm pki init "$T/bad" --no-passphrase --crl-url ftp://x/crl
assert_contains "naming the option" "$OUT" "--crl-url 'ftp://x/crl' must start with http:// or https://"
[[ ! -e "$T/bad" ]] || fail "a refused pki init left $T/bad"
HP=$(free_port)
U=$T/urls
pqm pki init "$U" --no-passphrase --server-domain example.com --crl-url "http://127.0.0.1:$HP/crl/" \
    --ocsp-url "http://127.0.0.1:9/ocsp" > /dev/null || fail "pki init with URLs"
pqm pki issue client --pki "$U" --name u1 > /dev/null && pqm pki issue client --pki "$U" --name u2 > /dev/null || fail "issue u1 u2"
run ossl x509 -in "$U/client-int-ca.crt.pem" -noout -ext crlDistributionPoints
assert_contains "the client intermediate points at the root's CRL" "$OUT" "URI:http://127.0.0.1:$HP/crl/root-ca.crl"
run ossl x509 -in "$U/root-ca.crt.pem" -noout -ext crlDistributionPoints
assert_not_contains "the root carries no distribution point" "$OUT" "URI:"
run ossl x509 -in "$U/issued/u1.crt.pem" -noout -ext crlDistributionPoints,authorityInfoAccess
assert_contains "a client certificate points at its CA's CRL" "$OUT" "URI:http://127.0.0.1:$HP/crl/client-int-ca.crl"
assert_contains "and at the OCSP responder" "$OUT" "OCSP - URI:http://127.0.0.1:9/ocsp"
expect_ok "pki configure --ocsp-url none" pqm pki configure --pki "$U" --ocsp-url none
assert_contains "shows the settings" "$OUT" "ocsp-url  (none)"
expect_rc 1 "pki configure refuses a URL with a space" pqm pki configure --pki "$U" --crl-url "http://a b/"
assert_contains "and says where" "$OUT" "not allowed in a URL"
pqm pki issue client --pki "$U" --name u3 > /dev/null || fail "issue u3"
run ossl x509 -in "$U/issued/u3.crt.pem" -noout -ext authorityInfoAccess
assert_not_contains "a certificate issued after --ocsp-url none has no OCSP URL" "$OUT" "OCSP"
pqm pki configure --pki "$U" --ocsp-url "http://127.0.0.1:8/ocsp2" > /dev/null || fail "configure"
expect_ok "pki renew --name u3" pqm pki renew --pki "$U" --name u3
run ossl x509 -in "$U/issued/u3.crt.pem" -noout -ext crlDistributionPoints,authorityInfoAccess
assert_contains "the renewal carries the PKI's URLs as they are now" "$OUT" "OCSP - URI:http://127.0.0.1:8/ocsp2"
assert_contains "and its CA's CRL" "$OUT" "/crl/client-int-ca.crl"

pqm pki revoke --pki "$U" "$(cert_serial "$U/issued/u1.crt.pem")" > /dev/null || fail "revoke u1"
pqm pki crl --pki "$U" > /dev/null || fail "pki crl"
( cd "$U" && exec python3 -m http.server "$HP" --bind 127.0.0.1 ) > "$T/http.log" 2>&1 &
track_pid $!
wait_port "$HP" || fail "the CRL web server did not start"
# -crl_check: the leaf's CRL, from its distribution point. (-crl_check_all would also ask
# for a CRL covering the self-signed root, which no distribution point names.)
dl() { ossl verify -crl_check -crl_download -CAfile "$U/root-ca.crt.pem" -untrusted "$U/client-int-ca.crt.pem" "$@"; }
expect_fail_d "openssl verify -crl_download refuses revoked u1 with the published CRL" dl "$U/issued/u1.crt.pem"
assert_contains "as revoked" "$OUT" "certificate revoked"
expect_ok "and accepts u2" dl "$U/issued/u2.crt.pem"
assert_contains "the CRL was fetched from the distribution point" "$(cat "$T/http.log")" "GET /crl/client-int-ca.crl"
expect_fail_d "-crl_check_all fetches the root's CRL through the intermediate's distribution point" \
    ossl verify -crl_check_all -crl_download -CAfile "$U/root-ca.crt.pem" -untrusted "$U/client-int-ca.crt.pem" "$U/issued/u2.crt.pem"
assert_contains "(logged by the web server)" "$(cat "$T/http.log")" "GET /crl/root-ca.crl"

done_all
