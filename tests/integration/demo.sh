#!/usr/bin/env bash
# demo: scripts/demo.sh (`make demo`), the whole architecture on one machine, runs to the
# end against the built binary in a temporary DEMO_DIR and reports what the seed expects:
#  - Client 1 and Client 2 get in over TLS 1.3 with X25519MLKEM768 and ML-DSA-65, Client 2
#    with an expiry warning in the gateway's log; Service A gets in through the tunnel
#    with its SPIFFE ID reaching the backend; Mallory (revoked) is refused in the
#    handshake and the log says revoked; Intern is refused by the policy (403);
#  - the metrics, the PKI tree, and the nginx and Istio files are produced;
#  - nothing it started is left running; the PKI is consistent (pki check);
#  - with a broken binary (PQMTLS_BIN=/bin/false) the demo exits non-zero.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin

DEMO="$PQMTLS_SOURCE_DIR/scripts/demo.sh"
[[ -f "$DEMO" ]] || fail "demo script not found at $DEMO"

run env DEMO_DIR="$T/demo" PQMTLS_BIN="$PQMTLS_BIN" bash "$DEMO"
[[ $RC -eq 0 ]] || fail "scripts/demo.sh: expected exit 0, got $RC: ${OUT: -3000}"
pass "scripts/demo.sh exits 0 with DEMO_DIR=\$T/demo"
D="$OUT"
assert_contains "the demo says 'All steps succeeded'" "$D" "All steps succeeded"
assert_not_contains "the demo reports no FAILED step" "$D" "FAILED"
assert_match "Client 1: 200, admitted" "$D" "Client 1 +pqmtls request +200 +admitted"
assert_match "Client 2: 201, admitted" "$D" "Client 2 +pqmtls request +201 +admitted"
assert_match "Mallory: refused in the handshake as revoked" "$D" "Mallory +pqmtls request +- +refused in the handshake: .*certificate revoked"
assert_match "Intern: refused by the policy (403)" "$D" "Intern +pqmtls request +403 +refused by the gateway's policy"
assert_match "Service A: 200 through the tunnel" "$D" "Service A +legacy HTTP -> pqmtls tunnel +200 +admitted"
assert_contains "the negotiated group and signature algorithm" "$D" "X25519MLKEM768, id-ml-dsa-65"
assert_contains "the backend saw Service A's SPIFFE ID" "$D" "'spiffe_id': 'spiffe://cluster.local/ns/production/sa/frontend-service'"
assert_contains "the log shows Client 2's expiry warning" "$D" "CN=client-2,O=Example  certificate expiring"
assert_contains "and Mallory's revocation" "$D" "handshake refused: revoked: 'CN=mallory,O=Example' is revoked"
assert_match "the metrics count the revoked handshake" "$D" 'pqmtls_handshakes_total\{result="refused",reason="revoked"\} 1'
assert_contains "the PKI tree" "$D" "mallory (ml-dsa-65, revoked)"
for f in nginx/api.example.com.conf nginx/ssl/client-ca-chain.crl.pem istio.yaml gateway.yaml access.log; do
    [[ -s "$T/demo/$f" ]] || fail "the demo did not write $f"
done
pass "the demo wrote the nginx and Istio files, its gateway configuration and log"
assert_contains "and prints the nginx server block" "$D" "ssl_verify_client       on;"
assert_contains "and the Istio policy" "$D" "mode: STRICT"
/usr/bin/python3 - "$T/demo/istio.yaml" <<'PY' || fail "the demo's Istio policy does not match the gateway's"
import sys, yaml
aps = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "AuthorizationPolicy"]
rules = [r for ap in aps if ap["spec"]["action"] == "ALLOW" for r in ap["spec"]["rules"]]
sources = [s["source"] for r in rules for s in r.get("from", [])]
assert sources == [{"namespaces": ["production"]}], sources
assert "intern" not in open(sys.argv[1]).read()
PY
pass "the Istio policy allows the production namespace only: Intern (staging) is not let in by the mesh either"
left=$(pgrep -af -- "$T/demo" || true)
[[ -z "$left" ]] || fail "the demo left processes running: $left"
pass "nothing the demo started is still running"
expect_ok "pki check on the demo's PKI" pqm pki check --pki "$T/demo/pki"
[[ "$(file_mode "$T/demo/passphrase.txt")" == 600 ]] || fail "demo/passphrase.txt mode is $(file_mode "$T/demo/passphrase.txt")"
pass "demo/passphrase.txt has mode 0600"

# A broken binary must make the demo fail, not print success.
run env DEMO_DIR="$T/demo-broken" PQMTLS_BIN=/bin/false bash "$DEMO"
[[ $RC -ne 0 ]] || fail "scripts/demo.sh with PQMTLS_BIN=/bin/false: expected a non-zero exit, got 0"
pass "scripts/demo.sh with PQMTLS_BIN=/bin/false exits non-zero ($RC)"
assert_not_contains "with a broken binary the demo does not claim success" "$OUT" "All steps succeeded"

done_all
