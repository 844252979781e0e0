#!/usr/bin/env bash
# pqmtls export istio: PeerAuthentication STRICT, DestinationRule ISTIO_MUTUAL and an
# AuthorizationPolicy whose principals are the PKI's SPIFFE IDs in Istio's form, as one
# multi-document YAML; with --policy, the gateway policy's rules (allow and deny) in
# Istio's terms. Every document is validated against the Istio CRD schemas
# (tests/schemas, made strict) with Debian's python3-yaml and python3-jsonschema, and the
# validator is shown to catch a misspelled field. Refusals: a bad namespace, a PKI without
# SPIFFE IDs, rules Istio cannot express.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
PY=/usr/bin/python3
CHECK="$PQMTLS_SOURCE_DIR/tests/integration/lib/schema_check.py"
"$PY" -c 'import yaml, jsonschema' 2> /dev/null || fail "Debian's python3-yaml and python3-jsonschema are needed (scripts/deps.sh installs them)"

P=$T/pki
pqm pki init "$P" --no-passphrase --spiffe-trust-domain cluster.local > /dev/null || fail "pki init"
expect_rc 1 "a PKI without SPIFFE IDs and no --policy is refused" pqm export istio --pki "$P" --namespace production
assert_contains "with what to do" "$OUT" "pki issue client --spiffe-id"
pqm pki issue client --pki "$P" --name fe --spiffe-id spiffe://cluster.local/ns/production/sa/frontend-service > /dev/null || fail "issue fe"
pqm pki issue client --pki "$P" --name pay --spiffe-id spiffe://cluster.local/ns/payments/sa/api > /dev/null || fail "issue pay"
pqm pki issue client --pki "$P" --name old --spiffe-id spiffe://cluster.local/ns/production/sa/retired > /dev/null || fail "issue old"
pqm pki issue client --pki "$P" --name plain > /dev/null || fail "issue plain"
pqm pki revoke --pki "$P" "$(cert_serial "$P/issued/old.crt.pem")" > /dev/null || fail "revoke old"

expect_rc 2 "--namespace is required" pqm export istio --pki "$P"
expect_rc 1 "a namespace Kubernetes would refuse is refused" pqm export istio --pki "$P" --namespace Prod_1
assert_contains "naming the rule" "$OUT" "is not a Kubernetes namespace name"
expect_ok "export istio --out" pqm export istio --pki "$P" --namespace production --out "$T/istio.yaml"
expect_ok "the documents pass the Istio CRD schemas" "$PY" "$CHECK" "$T/istio.yaml"
assert_contains "PeerAuthentication" "$OUT" "PeerAuthentication default"
assert_contains "DestinationRule" "$OUT" "DestinationRule default-mtls"
assert_contains "AuthorizationPolicy" "$OUT" "AuthorizationPolicy pqmtls-allow"
"$PY" - "$T/istio.yaml" <<'PY' || fail "the documents do not say what the seed asks"
import sys, yaml
docs = {d["kind"]: d for d in yaml.safe_load_all(open(sys.argv[1])) if d}
assert docs["PeerAuthentication"]["spec"]["mtls"]["mode"] == "STRICT"
assert docs["PeerAuthentication"]["metadata"]["namespace"] == "production"
dr = docs["DestinationRule"]["spec"]
assert dr["host"] == "*.production.svc.cluster.local" and dr["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL"
ap = docs["AuthorizationPolicy"]["spec"]
assert ap["action"] == "ALLOW"
principals = sorted(ap["rules"][0]["from"][0]["source"]["principals"])
assert principals == ["cluster.local/ns/payments/sa/api", "cluster.local/ns/production/sa/frontend-service"], principals
PY
pass "STRICT, ISTIO_MUTUAL for the namespace, principals = the valid SPIFFE IDs in Istio's form (not the revoked one)"
expect_ok "export istio to standard output" pqm export istio --pki "$P" --namespace production
[[ "$OUT" == "$(cat "$T/istio.yaml")" ]] || fail "standard output differs from --out"
pass "standard output holds the same YAML"
set +e; ERR=$(pqm export istio --pki "$P" --namespace production 2>&1 > /dev/full); RC=$?; set -e
[[ $RC -eq 1 ]] || fail "export to a full standard output: exit $RC, expected 1"
assert_contains "a standard output that cannot be written fails, and says so" "$ERR" "cannot write to standard output: No space left on device"

cat > "$T/policy.yaml" <<'YAML'
allow:
  - "principal=cluster.local/ns/production/sa/frontend-service path=/api/ method=GET,POST"
  - "namespace=monitoring path=/metrics"
allow_spiffe:
  - "spiffe://cluster.local/ns/payments/*"
deny:
  - "spiffe=spiffe://cluster.local/ns/production/sa/legacy"
YAML
expect_ok "export istio --policy" pqm export istio --pki "$P" --namespace production --policy "$T/policy.yaml" --out "$T/policy-istio.yaml"
expect_ok "the policy documents pass the schemas" "$PY" "$CHECK" "$T/policy-istio.yaml"
assert_contains "with a DENY policy" "$OUT" "AuthorizationPolicy pqmtls-deny"
"$PY" - "$T/policy-istio.yaml" <<'PY' || fail "the policy rules are not translated as documented"
import sys, yaml
aps = {d["metadata"]["name"]: d["spec"] for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "AuthorizationPolicy"}
allow, deny = aps["pqmtls-allow"], aps["pqmtls-deny"]
assert allow["action"] == "ALLOW" and deny["action"] == "DENY"
r0, r1, r2 = allow["rules"]
assert r0["from"][0]["source"]["principals"] == ["cluster.local/ns/production/sa/frontend-service"]
assert r0["to"][0]["operation"] == {"paths": ["/api/*"], "methods": ["GET", "POST"]}, r0
assert r1["from"][0]["source"]["namespaces"] == ["monitoring"] and r1["to"][0]["operation"]["paths"] == ["/metrics", "/metrics/*"], r1
assert r2["from"][0]["source"]["principals"] == ["cluster.local/ns/payments/*"], r2
assert deny["rules"][0]["from"][0]["source"]["principals"] == ["cluster.local/ns/production/sa/legacy"]
PY
pass "allow, allow_spiffe and deny rules become Istio rules (principals, namespaces, paths as the gateway matches them: /metrics and below, never /metricsx; methods)"

# refused RULE WHAT TEXT: a policy with the one allow rule RULE is refused, saying TEXT.
refused() {
    printf 'allow:\n  - "%s"\n' "$1" > "$T/rule.yaml"
    expect_rc 1 "$2" pqm export istio --pki "$P" --namespace production --policy "$T/rule.yaml"
    assert_contains "saying: $3" "$OUT" "$3"
}
refused "namespace=monitoring path=/metrics*" "a '*' the gateway takes literally in path= is refused" \
    "the '*' in '/metrics*' would mean something else to Istio"
refused "principal=*/ns/production/sa/frontend-service" \
    "a leading '*' in principal= (a wildcard only to Istio) is refused" "would mean something else to Istio"
refused "cn=admin" "a cn= rule is refused" "no equivalent in an Istio AuthorizationPolicy"
refused "principal=cluster.local/ns/a/sa/b spiffe=spiffe://cluster.local/ns/a/sa/c" \
    "two principal terms in one rule are refused" "two terms for the same Istio field"

# A PKI directory whose name holds a newline stays inside the YAML comment.
NL="$T/pki
kind: Injected"
cp -r "$P" "$NL"
expect_ok "export istio from a directory with a newline in its name" pqm export istio --pki "$NL" --namespace production --out "$T/nl.yaml"
expect_ok "the documents still pass the schemas" "$PY" "$CHECK" "$T/nl.yaml"
grep -q '^kind: Injected' "$T/nl.yaml" && fail "the directory name became YAML: $(head -3 "$T/nl.yaml")"
pass "the directory name cannot end the comment and start YAML"


# The validator is not a rubber stamp.
sed 's/    mode: STRICT/    mdoe: STRICT/' "$T/istio.yaml" > "$T/typo.yaml"
expect_rc 1 "the schema check refuses a misspelled field" "$PY" "$CHECK" "$T/typo.yaml"
assert_contains "and names it" "$OUT" "'mdoe' was unexpected"
sed 's/mode: ISTIO_MUTUAL/mode: ISTIO_MUTAL/' "$T/istio.yaml" > "$T/enum.yaml"
expect_rc 1 "and a value outside an enum" "$PY" "$CHECK" "$T/enum.yaml"

done_all
