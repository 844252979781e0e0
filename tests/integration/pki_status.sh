#!/usr/bin/env bash
# pki status: counts by status; certificates in use that expire within 7/30/90 days or
# have expired (judged now or --in a duration); each CA's CRL (number, entries, next
# update, signature); OCSP signers; and exit status 1 exactly when something needs
# attention: an expired certificate in use, a stale CRL, a CRL not signed by its CA or
# damaged, a revocation not yet in its CA's CRL, or an interrupted command's pending row.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin

P=$T/pki
pqm pki init "$P" --no-passphrase --server-domain example.com > /dev/null || fail "pki init"
pqm pki issue client --pki "$P" --name d1 --days 1 > /dev/null || fail "issue d1"
pqm pki issue client --pki "$P" --name d20 --days 20 > /dev/null || fail "issue d20"
pqm pki issue server --pki "$P" --name d60.example.com --days 60 > /dev/null || fail "issue d60"
pqm pki issue client --pki "$P" --name d365 --days 365 > /dev/null || fail "issue d365"

jq_py() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print($1)" "$OUT"; }

expect_ok "status of a fresh PKI (no CRL yet, nothing revoked) is fine" pqm pki status --pki "$P"
assert_contains "it lists the CRLs as not written yet" "$OUT" "none (pqmtls pki crl writes it)"
expect_ok "status --json" pqm pki status --pki "$P" --json
[[ "$(jq_py 'd["counts"]["valid"]')" == 7 ]] || fail "expected 7 valid certificates (3 CAs + 4): $OUT"
pass "--json counts 7 valid certificates"
[[ "$(jq_py '" ".join(sorted(c["name"] for c in d["expiring"]["7d"]))')" == "d1" ]] || fail "7d window: $OUT"
pass "within 7 days: d1 only"
[[ "$(jq_py '" ".join(sorted(c["name"] for c in d["expiring"]["30d"]))')" == "d1 d20" ]] || fail "30d window: $OUT"
pass "within 30 days: d1 and d20"
[[ "$(jq_py '" ".join(sorted(c["name"] for c in d["expiring"]["90d"]))')" == "d1 d20 d60.example.com" ]] || fail "90d window: $OUT"
pass "within 90 days: d1, d20 and d60.example.com (not d365)"
[[ "$(jq_py 'd["ok"]')" == True ]] || fail "ok should be true: $OUT"

expect_rc 1 "status --in 2d: d1 will have expired (exit 1)" pqm pki status --pki "$P" --in 2d
assert_contains "and the problem names it" "$OUT" "client 'd1'"
assert_contains "as expired" "$OUT" "has expired"
expect_rc 2 "status --in rejects a bad duration" pqm pki status --pki "$P" --in soon

# CRLs
expect_ok "pki crl" pqm pki crl --pki "$P" --next-update 7d
expect_ok "status with fresh CRLs" pqm pki status --pki "$P" --json
[[ "$(jq_py '" ".join(str(c["number"]) + ":" + str(c["signature_ok"]) for c in d["crls"])')" == "1:True 1:True 1:True" ]] \
    || fail "CRL numbers/signatures: $OUT"
pass "each CA's CRL is #1 with a good signature"
expect_rc 1 "status --in 8d: the 7-day CRLs will be stale" pqm pki status --pki "$P" --in 8d
assert_contains "the problem says stale" "$OUT" "is stale: its next update was"

pqm pki revoke --pki "$P" "$(cert_serial "$P/issued/d20.crt.pem")" > /dev/null || fail "revoke d20"
expect_rc 1 "a revocation not yet in the CRL is a problem" pqm pki status --pki "$P"
assert_contains "the problem says what to run" "$OUT" "not in its CRL yet: run \`pqmtls pki crl\`"
assert_contains "and counts the revoked" "$OUT" "revoked 1"
pqm pki crl --pki "$P" > /dev/null || fail "pki crl"
expect_ok "after pki crl it is fine again" pqm pki status --pki "$P"

# A CRL signed by another key (another PKI's client CA, same file name) is flagged.
pqm pki init "$T/other" --no-passphrase > /dev/null && pqm pki crl --pki "$T/other" > /dev/null || fail "other PKI"
cp "$T/other/crl/client-int-ca.crl.pem" "$P/crl/client-int-ca.crl.pem"
expect_rc 1 "a CRL not signed by its CA is a problem" pqm pki status --pki "$P"
assert_contains "and named" "$OUT" "is not signed by the client intermediate CA's key"
pqm pki crl --pki "$P" > /dev/null || fail "pki crl"
expect_ok "republished: fine" pqm pki status --pki "$P"
# A damaged CRL file is a problem, not "none".
head -c 300 "$P/crl/server-int-ca.crl.pem" > "$T/cut.pem" && cp "$T/cut.pem" "$P/crl/server-int-ca.crl.pem"
expect_rc 1 "a damaged CRL file is a problem" pqm pki status --pki "$P"
assert_contains "named, with what to do" "$OUT" "the server intermediate CA's CRL $P/crl/server-int-ca.crl.pem cannot be read: no PEM CRL in it"
assert_contains "and listed as unreadable" "$OUT" "unreadable: no PEM CRL in it"
pqm pki crl --pki "$P" > /dev/null || fail "pki crl"
expect_ok "written again: fine" pqm pki status --pki "$P"
# An interrupted issuance (a pending row, made by hand on a copy) is a problem, unless a
# writer holds the lock (then it is work in progress); pki check rolls it back.
cp -r "$P" "$T/cut"
python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1])
c.execute("UPDATE certs SET status = ? WHERE name = ?", ("pending", "d365")); c.commit()' "$T/cut/pki.db"
expect_rc 1 "a certificate left pending by an interrupted command is a problem" pqm pki status --pki "$T/cut"
assert_contains "with what to run" "$OUT" "1 certificate(s) of an interrupted issuance or renewal are pending: \`pqmtls pki check --pki $T/cut\` rolls them back"
flock "$T/cut/.lock" sleep 3 &
LOCKER=$!
track_pid $LOCKER
sleep 0.3
run pqm pki status --pki "$T/cut"
assert_not_contains "while a writer holds the lock, pending rows are work in progress" "$OUT" "interrupted"
wait "$LOCKER"
pqm pki check --pki "$T/cut" > /dev/null 2>&1 || true
run pqm pki status --pki "$T/cut"
assert_not_contains "after pki check rolled it back, no longer reported" "$OUT" "interrupted"
# OCSP signers: listed with their validity; one that will have expired is a problem.
expect_ok "ocsp signers" pqm ocsp signers --pki "$P" --days 20
expect_ok "status lists the signers" pqm pki status --pki "$P" --json
[[ "$(jq_py '" ".join(sorted(c["name"] for c in d["ocsp_signers"]))')" == "client-int-ca-ocsp server-int-ca-ocsp" ]] \
    || fail "ocsp_signers: $OUT"
pass "--json lists both OCSP signers"
expect_rc 1 "status --in 21d: the 20-day signers will have expired" pqm pki status --pki "$P" --in 21d
assert_contains "and names them" "$OUT" "ocsp 'server-int-ca-ocsp'"
expect_rc 1 "status of a directory that is not a PKI fails" pqm pki status --pki "$T"
assert_contains "and says so" "$OUT" "not a pqmtls PKI directory"

done_all
