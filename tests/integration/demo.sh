#!/usr/bin/env bash
# demo: scripts/demo.sh (`make demo`) runs to the end against the built binary, in a
# temporary DEMO_DIR, and fails when the binary does.
#
# Run by hand from the repository root:
#   PQMTLS_BIN=build/pqmtls bash tests/integration/demo.sh
# (PQMTLS_BIN defaults to build/pqmtls; PQMTLS_KEEP_TMP=1 keeps the temp dir on failure)
#
# Asserts:
#  - the demo exits 0 and says "All steps succeeded";
#  - it shows its three expected refusals ("refused with exit status 1, as expected");
#  - DEMO_DIR/pki/issued holds the certificate, key and chain of api.example.com, client-1,
#    client-2 and service-a, and the PKI is consistent (pki check);
#  - with a broken binary (PQMTLS_BIN=/bin/false) the demo exits non-zero.

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin

DEMO="$PQMTLS_SOURCE_DIR/scripts/demo.sh"
[[ -f "$DEMO" ]] || fail "demo script not found at $DEMO"

run env DEMO_DIR="$T/demo" PQMTLS_BIN="$PQMTLS_BIN" bash "$DEMO"
[[ $RC -eq 0 ]] || fail "scripts/demo.sh: expected exit 0, got $RC: ${OUT: -3000}"
pass "scripts/demo.sh exits 0 with DEMO_DIR=\$T/demo"
DEMO_OUT="$OUT"
assert_contains "the demo says 'All steps succeeded'" "$DEMO_OUT" "All steps succeeded"
n=$(grep -c -F 'refused with exit status 1, as expected' <<<"$DEMO_OUT" || true)
[[ "$n" -eq 3 ]] || fail "expected 3 'refused with exit status 1, as expected' lines, got $n"
pass "the demo shows its 3 expected refusals"
assert_not_contains "the demo reports no FAILED step" "$DEMO_OUT" "FAILED"

I="$T/demo/pki/issued"
for name in api.example.com client-1 client-2 service-a; do
    for s in crt.pem key.pem chain.pem; do
        [[ -s "$I/$name.$s" ]] || fail "the demo did not write pki/issued/$name.$s"
    done
    ossl x509 -in "$I/$name.crt.pem" -noout >/dev/null 2>&1 || fail "pki/issued/$name.crt.pem is not a certificate"
    pass "the demo issued $name (certificate, key, chain)"
done
[[ ! -e "$I/evil.org.crt.pem" ]] || fail "the demo's refused evil.org left a certificate"
pass "the demo's refused evil.org left no certificate"
[[ "$(file_mode "$T/demo/passphrase.txt")" == 600 ]] || fail "demo/passphrase.txt mode is $(file_mode "$T/demo/passphrase.txt")"
pass "demo/passphrase.txt has mode 0600"
expect_ok "pki check on the demo's PKI" pqm pki check --pki "$T/demo/pki"

# A broken binary must make the demo fail, not print success.
run env DEMO_DIR="$T/demo-broken" PQMTLS_BIN=/bin/false bash "$DEMO"
[[ $RC -ne 0 ]] || fail "scripts/demo.sh with PQMTLS_BIN=/bin/false: expected a non-zero exit, got 0"
pass "scripts/demo.sh with PQMTLS_BIN=/bin/false exits non-zero ($RC)"
assert_not_contains "with a broken binary the demo does not claim success" "$OUT" "All steps succeeded"

done_all
