#!/usr/bin/env bash
# pqmtls export k8s: the gateway's Secret, ConfigMap, Deployment, Service and
# PodDisruptionBudget (and Namespace) as one multi-document YAML. Every document passes
# the Kubernetes 1.32 schemas (tests/schemas, strict); the contents are checked (the
# Secret's files are the PKI's, the paths gateway.yaml names are those the projected
# volume provides, security context, probes, resources, selectors, ports, checksum).
# Then the pod is played on this machine: the volume's files are written from the
# Secret and ConfigMap as the kubelet lays them out (only the mount root, the listen,
# admin, metrics and upstream addresses rewritten, to a temporary directory and free loopback
# ports), the Deployment's own command runs the real gateway as user 10001 with the
# files group-readable through fsGroup, an ML-DSA client gets through it over
# X25519MLKEM768, its exec probes pass, and a revocation exported and published by a
# kubelet-style ..data swap reloads it. Refusals: no CRLs yet, an unknown or ambiguous
# server name, an encrypted key without (or with a wrong) passphrase, CRLs too large
# for a ConfigMap, bad namespace, upstream, image, replicas and service type. With
# --client, a kubernetes.io/tls Secret per client identity (chain, key, server CA chain),
# whose files a workload uses to call the exported gateway; refusals for an unknown,
# encrypted, duplicate or badly named client.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.bash"
require_bin
PY=/usr/bin/python3
LIB="$PQMTLS_SOURCE_DIR/tests/integration/lib"
CHECK="$LIB/schema_check.py"
"$PY" -c 'import yaml, jsonschema' 2> /dev/null || fail "Debian's python3-yaml and python3-jsonschema are needed (scripts/deps.sh installs them)"

P=$T/pki
I=$P/issued
pqm pki init "$P" --org Example --server-domain example.com --no-passphrase > /dev/null || fail "pki init"
pqm pki issue server --pki "$P" --name api.example.com --ip 127.0.0.1 --no-key-passphrase > /dev/null
pqm pki issue client --pki "$P" --name alice --no-key-passphrase > /dev/null
pqm pki issue client --pki "$P" --name bob --no-key-passphrase > /dev/null
k8s() { pqm export k8s --pki "$P" "$@"; }

# ---- refusals ---------------------------------------------------------------------------
expect_rc 1 "without CRLs the export is refused" k8s
assert_contains "naming the command that writes them" "$OUT" "run \`pqmtls pki crl --pki $P\` first"
pqm pki crl --pki "$P" > /dev/null
expect_rc 2 "--pki is required" pqm export k8s
expect_rc 2 "an operand is a usage error" k8s extra
expect_rc 2 "--replicas 0 is a usage error" k8s --replicas 0
expect_rc 1 "an unknown server name is refused" k8s --name nope.example.com
assert_contains "saying how to issue it" "$OUT" "pqmtls pki issue server --name nope.example.com"
expect_rc 1 "a namespace Kubernetes would refuse" k8s --namespace Edge_1
assert_contains "is refused with the rule" "$OUT" "is not a Kubernetes namespace name"
expect_rc 1 "an upstream without a port" k8s --upstream backend
assert_contains "is refused" "$OUT" "--upstream 'backend' is not HOST:PORT"
expect_rc 1 "an upstream with a quote is refused" k8s --upstream 'back"end:80'
expect_rc 1 "an image with a space is refused" k8s --image 'pqmtls gateway:1'
expect_rc 1 "a service type other than ClusterIP or LoadBalancer" k8s --service-type NodePort
assert_contains "is refused" "$OUT" "is not ClusterIP or LoadBalancer"

echo 'server key passphrase' > "$T/key.pass"
echo 'not it' > "$T/wrong.pass"
pqm pki issue server --pki "$P" --name enc.example.com --ip 127.0.0.1 --key-passphrase-file "$T/key.pass" > /dev/null
expect_rc 1 "two server certificates and no --name" k8s
assert_contains "are refused, with their names" "$OUT" "2 valid server certificates (api.example.com, enc.example.com): name one with --name"
expect_rc 1 "an encrypted key without --key-passphrase-file" k8s --name enc.example.com
assert_contains "is refused, naming the option" "$OUT" "enc.example.com.key.pem is encrypted: give --key-passphrase-file"
expect_rc 1 "a wrong key passphrase is refused at export, not by every pod" \
    k8s --name enc.example.com --key-passphrase-file "$T/wrong.pass"
assert_contains "naming the option and the key" "$OUT" "--key-passphrase-file: $I/enc.example.com.key.pem: cannot decrypt the key"

cp "$P/crl/client-ca-chain.crl.pem" "$T/crl.saved"
head -c 1100000 /dev/zero | tr '\0' '#' >> "$P/crl/client-ca-chain.crl.pem"
expect_rc 1 "CRLs larger than a ConfigMap may hold are refused" k8s --name api.example.com
assert_contains "saying why" "$OUT" "Kubernetes limits to 1 MiB"
cp "$I/api.example.com.chain.pem" "$P/crl/client-ca-chain.crl.pem"
expect_rc 1 "a CRL file without a CRL is refused" k8s --name api.example.com
assert_contains "saying so" "$OUT" "client-ca-chain.crl.pem: no CRL found"
cp "$P/crl/client-int-ca.crl" "$P/crl/client-ca-chain.crl.pem"
expect_rc 1 "a DER CRL is refused (a ConfigMap holds text)" k8s --name api.example.com
assert_contains "naming the command that writes it" "$OUT" "is not PEM text: write it again with \`pqmtls pki crl"
cp "$T/crl.saved" "$P/crl/client-ca-chain.crl.pem"
printf 'workers: 2\n' > "$T/norules.yaml"
expect_rc 1 "a --policy file without rules is refused" k8s --name api.example.com --policy "$T/norules.yaml"
assert_contains "saying so" "$OUT" "no allow, deny or allow_spiffe rule"
printf 'allow:\n  - "user=alice"\n' > "$T/badrule.yaml"
expect_rc 1 "a --policy rule the gateway would refuse is refused" k8s --name api.example.com --policy "$T/badrule.yaml"
assert_contains "with its file and the reason" "$OUT" "badrule.yaml:1: allow 'user=alice': unknown key 'user'"
cat > "$T/policy.yaml" <<'YAML'
allow:
  - "cn=alice,bob path=/orders"
deny:
  - "cn=bob method=DELETE"
YAML

# ---- the documents ------------------------------------------------------------------------
NS=edge
K8S_ARGS=(--name api.example.com --namespace "$NS" --upstream api.production.svc.cluster.local:8080
    --replicas 3 --policy "$T/policy.yaml")
expect_ok "export k8s --out" k8s "${K8S_ARGS[@]}" --out "$T/k8s.yaml"
[[ $(file_mode "$T/k8s.yaml") == 600 ]] || fail "k8s.yaml has mode $(file_mode "$T/k8s.yaml"), expected 600 (it holds the key)"
pass "the file is written mode 0600 (it holds the server's private key)"
expect_ok "to standard output" k8s "${K8S_ARGS[@]}"
[[ "$OUT" == "$(cat "$T/k8s.yaml")" ]] || fail "standard output differs from --out"
pass "standard output holds the same YAML"
expect_ok "every document passes the Kubernetes 1.32 schemas" "$PY" "$CHECK" "$T/k8s.yaml"
for kind in "Secret pqmtls-gateway-tls" "ConfigMap pqmtls-gateway" "Deployment pqmtls-gateway" \
    "Service pqmtls-gateway" "PodDisruptionBudget pqmtls-gateway"; do
    assert_contains "$kind is written and checked" "$OUT" "$kind"
done
expect_ok "with --create-namespace and a LoadBalancer, too" k8s --name enc.example.com \
    --key-passphrase-file "$T/key.pass" --create-namespace --service-type LoadBalancer --out "$T/enc.yaml"
expect_ok "those documents pass the schemas" "$PY" "$CHECK" "$T/enc.yaml"
assert_contains "the Namespace among them" "$OUT" "Namespace pqmtls"

# The validator is not a rubber stamp.
sed 's/readOnlyRootFilesystem: true/readOnlyRootFilesytem: true/' "$T/k8s.yaml" > "$T/typo.yaml"
expect_rc 1 "the schema check refuses a misspelled field" "$PY" "$CHECK" "$T/typo.yaml"
assert_contains "and names it" "$OUT" "'readOnlyRootFilesytem' was unexpected"
sed 's/  maxUnavailable: 1/  maxUnavailable: [1]/' "$T/k8s.yaml" > "$T/type.yaml"
expect_rc 1 "and a value of the wrong type" "$PY" "$CHECK" "$T/type.yaml"

py_checks "$T/k8s.yaml" "$P" "$NS" <<'PY'
import base64, hashlib, sys, yaml
path, pki, ns = sys.argv[1:4]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
def check(ok, what):
    if not ok:
        sys.exit(f"FAILED: {what}")
    print(f"CHECK {what}")
kinds = [d["kind"] for d in docs]
check(kinds == ["Secret", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget"], f"the five objects, in apply order: {kinds}")
check(all(d["metadata"]["namespace"] == ns for d in docs), "all in the namespace given")
sec, cm, dep, svc, pdb = docs
raw = lambda f: open(f"{pki}/{f}", "rb").read()
data = {k: base64.b64decode(v) for k, v in sec["data"].items()}
check(sec["type"] == "kubernetes.io/tls", "the Secret is of type kubernetes.io/tls")
check(data["tls.crt"] == raw("issued/api.example.com.chain.pem"), "tls.crt is the server's certificate chain")
check(data["tls.key"] == raw("issued/api.example.com.key.pem"), "tls.key is its key")
check(data["ca.crt"] == raw("client-ca-chain.pem"), "ca.crt is the client CA chain")
check("key.pass" not in data, "no key.pass for an unencrypted key")
check(cm["data"]["client-ca-chain.crl.pem"] == raw("crl/client-ca-chain.crl.pem").decode(), "the ConfigMap holds the CRLs pki crl wrote")
gw = yaml.safe_load(cm["data"]["gateway.yaml"])
check(gw["listen"] == "0.0.0.0:8443" and gw["upstream"] == "api.production.svc.cluster.local:8080", "gateway.yaml listens on 8443 and forwards to the upstream given")
check(gw["admin"].startswith("127.0.0.1:"), "the admin listener stays on loopback")
check(gw["metrics"] == "0.0.0.0:9902", "a metrics listener (/metrics alone) on the pod's 9902")
check(gw["allow"] == ["cn=alice,bob path=/orders"] and gw["deny"] == ["cn=bob method=DELETE"], "--policy's allow and deny rules are in gateway.yaml")
pod = dep["spec"]["template"]["spec"]
c, = pod["containers"]
mount, = c["volumeMounts"]
vol, = [v for v in pod["volumes"] if v["name"] == mount["name"]]
provided = set()
for src in vol["projected"]["sources"]:
    kind = "secret" if "secret" in src else "configMap"
    obj = sec if kind == "secret" else cm
    check(src[kind]["name"] == obj["metadata"]["name"], f"the volume projects the {obj['kind']}")
    for it in src[kind]["items"]:
        check(it["key"] in obj["data"], f"{it['key']} is a key of the {obj['kind']}")
        provided.add(f"{mount['mountPath']}/{it['path']}")
check(mount["readOnly"] is True and mount["mountPath"] == "/etc/pqmtls", "mounted read-only at /etc/pqmtls")
want = {gw["cert"]: "tls.crt", gw["key"]: "tls.key", gw["client_ca"]: "ca.crt", gw["crl"][0]: "client-ca-chain.crl.pem"}
check(set(want) <= provided, f"every file gateway.yaml names is in the volume: {sorted(want)}")
check(gw["cert"].startswith("/etc/pqmtls/tls/") and gw["crl"][0].startswith("/etc/pqmtls/crl/"), "cert, key, CA under tls/ (the Secret), the CRLs under crl/ (the ConfigMap)")
argv = c["command"] + c["args"]
check(argv == ["pqmtls", "gateway", "--config", "/etc/pqmtls/gateway.yaml"] and argv[3] in provided, "the container runs pqmtls gateway --config on the volume's gateway.yaml")
sha = hashlib.sha256(cm["data"]["gateway.yaml"].encode()).hexdigest()
check(dep["spec"]["template"]["metadata"]["annotations"]["pqmtls.io/gateway-config-sha256"] == sha, "the pod template carries gateway.yaml's SHA-256")
ann = dep["spec"]["template"]["metadata"]["annotations"]
check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "9902" and ann.get("prometheus.io/path") == "/metrics", "the pods say where Prometheus scrapes them")
psc, csc = pod["securityContext"], c["securityContext"]
check(psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001 and psc["fsGroup"] == 10001, "the pod runs as user 10001, non-root, files group 10001 (fsGroup)")
check(psc["seccompProfile"]["type"] == "RuntimeDefault" and csc["seccompProfile"]["type"] == "RuntimeDefault", "seccomp RuntimeDefault")
check(csc["allowPrivilegeEscalation"] is False and csc["privileged"] is False, "no privilege escalation, not privileged")
check(csc["readOnlyRootFilesystem"] is True, "read-only root file system")
check(csc["capabilities"] == {"drop": ["ALL"]}, "every capability dropped, none added")
check(vol["projected"]["defaultMode"] == 0o440, "the files are mode 0440: root and the fsGroup")
check(pod["automountServiceAccountToken"] is False, "no service account token in the pod")
r = c["resources"]
check(all(k in r[w] for w in ("requests", "limits") for k in ("cpu", "memory")), "CPU and memory requests and limits")
check(dep["spec"]["replicas"] == 3, "--replicas 3")
for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
    cmd = c[probe]["exec"]["command"]
    check(cmd[:2] == ["pqmtls", "probe"] and cmd[-1] == f"http://{gw['admin']}{path}", f"{probe} runs pqmtls probe on the admin listener's {path}")
    check(int(cmd[cmd.index("--timeout") + 1]) < c[probe]["timeoutSeconds"], f"{probe}: pqmtls probe gives up before the kubelet does")
labels = dep["spec"]["template"]["metadata"]["labels"]
sel = dep["spec"]["selector"]["matchLabels"]
check(sel.items() <= labels.items(), "the Deployment's selector matches its pods")
check(svc["spec"]["selector"].items() <= labels.items(), "the Service selects the gateway's pods")
port, = svc["spec"]["ports"]
cport, = [p for p in c["ports"] if p["name"] == port["targetPort"]]
check(port["port"] == 443 and cport["containerPort"] == 8443 == int(gw["listen"].split(":")[1]), "the Service's 443 reaches the container's 8443, where the gateway listens")
check(svc["spec"]["type"] == "ClusterIP", "a ClusterIP Service by default")
check(pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable") == 1, "the PodDisruptionBudget keeps all but one pod")
check(pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(), "the PodDisruptionBudget selects the gateway's pods")
PY
py_checks "$T/enc.yaml" "$T/key.pass" <<'PY'
import base64, sys, yaml
path, passfile = sys.argv[1:3]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
def check(ok, what):
    if not ok:
        sys.exit(f"FAILED: {what}")
    print(f"CHECK {what}")
ns, sec, cm, dep, svc, pdb = docs
check(ns["kind"] == "Namespace" and ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted", "the Namespace enforces Pod Security restricted, and comes first")
check(base64.b64decode(sec["data"]["key.pass"]) == open(passfile, "rb").read().splitlines(True)[0], "key.pass holds the passphrase's first line")
gw = yaml.safe_load(cm["data"]["gateway.yaml"])
items = [it["path"] for s in dep["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"] for it in s.get("secret", {}).get("items", [])]
check(gw["key_passphrase_file"] == "/etc/pqmtls/tls/key.pass" and "tls/key.pass" in items, "key_passphrase_file names the passphrase in the mounted Secret")
check(svc["spec"]["type"] == "LoadBalancer" and svc["spec"]["externalTrafficPolicy"] == "Local", "--service-type LoadBalancer keeps the client's address (externalTrafficPolicy Local)")
PY

# ---- the pod, played here ------------------------------------------------------------------
UP=$(free_port)
"$PY" "$LIB/upstream.py" "$UP" "$T/seen" & track_pid $!
wait_port "$UP" 10 || fail "the upstream did not start"
METRICS=$(free_port) # the pods' metrics listener, here
MNT=$T/pod/etc/pqmtls # the mount root in the pod, here
# volume MANIFEST DIR GW ADMIN: the volume's files from MANIFEST into DIR, the mount root
# and the addresses rewritten (nothing else), checked to be what the container names.
volume() {
    local mountpath
    rm -rf "$2" && mkdir -p "$2"
    mountpath=$("$PY" "$LIB/k8s_volume.py" files "$1" "$2") || fail "k8s_volume.py files $1"
    [[ $mountpath == /etc/pqmtls ]] || fail "the volume is mounted at $mountpath"
    sed -i -e "s|/etc/pqmtls|$MNT|g" -e "s|\"0.0.0.0:8443\"|\"127.0.0.1:$3\"|" \
        -e "s|\"127.0.0.1:9901\"|\"127.0.0.1:$4\"|" -e "s|\"0.0.0.0:9902\"|\"127.0.0.1:$METRICS\"|" \
        -e "s|\"api.production.svc.cluster.local:8080\"|\"127.0.0.1:$UP\"|" "$2/gateway.yaml"
}
# pod_argv MANIFEST WHICH: the container's or a probe's argv, rewritten as the volume is.
pod_argv() {
    "$PY" "$LIB/k8s_volume.py" argv "$1" "$2" | sed -e "1s|^pqmtls\$|$PQMTLS_BIN|" \
        -e "s|/etc/pqmtls|$MNT|g" -e "s|127.0.0.1:9901|127.0.0.1:$ADMIN|"
}
as_user=()
if command -v setpriv > /dev/null && [[ $(id -u) -eq 0 ]]; then
    as_user=(setpriv --reuid=10001 --regid=10001 --clear-groups)
    chmod 711 "$T"
else
    info "not root or no setpriv: the gateway runs as $(id -un), not as user 10001"
fi
GW=$(free_port)
ADMIN=$(free_port)
volume "$T/k8s.yaml" "$T/vol1" "$GW" "$ADMIN"
"$PY" "$LIB/kubelet.py" write "$MNT" "$T/vol1" 10001 || fail "kubelet.py write"
[[ $(stat -c '%a %g' "$MNT/tls/tls.key") == "440 10001" ]] || fail "tls.key: $(stat -c '%a %g' "$MNT/tls/tls.key")"
pass "tls.key in the volume is mode 0440, group 10001 (defaultMode, fsGroup)"
mapfile -t ARGV < <(pod_argv "$T/k8s.yaml" container)
[[ ${ARGV[1]} == gateway && ${ARGV[3]} == "$MNT/gateway.yaml" ]] || fail "the container's argv: ${ARGV[*]}"
"${as_user[@]}" "${ARGV[@]}" > "$T/access.log" 2> "$T/gw.err" &
GWPID=$!
track_pid $GWPID
wait_port "$GW" 10 "$GWPID" || fail "the gateway did not start from the exported files: $(cat "$T/gw.err")"
if [[ ${#as_user[@]} -gt 0 ]]; then
    [[ $(ps -o uid= -p "$GWPID" | tr -d ' ') == 10001 ]] || fail "the gateway is not running as 10001"
    pass "the Deployment's command runs the gateway as user 10001 with the exported files"
fi
req() { # NAME HOST [ARGS...]: pqmtls request --json as NAME's certificate (of $REQ_PATH)
    local name=$1 host=$2; shift 2
    pqm request "https://$host:$GW${REQ_PATH:-/orders}" --resolve "$host:$GW:127.0.0.1" \
        --cert "$I/$name.crt.pem" --key "$I/$name.key.pem" --ca "$P/server-ca-chain.pem" --json "$@"
}
expect_ok "an ML-DSA client gets through the exported gateway" req alice api.example.com
assert_contains "with 200" "$OUT" '"status":200'
assert_contains "over X25519MLKEM768" "$OUT" '"group":"X25519MLKEM768"'
assert_match "the gateway proves itself with ML-DSA" "$OUT" '"sigalg":"(mldsa65|id-ml-dsa-65|ML-DSA-65)"'
assert_contains "the upstream sees the client's identity" "$(tail -n 1 "$T/seen")" '"X-Client-Cert-Subject", "CN=alice,O=Example"'
expect_rc 1 "a certificate of the server CA is refused as a client (ca.crt is the client chain)" \
    req api.example.com api.example.com
REQ_PATH=/admin run req alice api.example.com
assert_contains "the exported policy holds: a path no allow rule names gets 403" "$OUT" '"status":403'
run req bob api.example.com -X DELETE
assert_contains "and its deny rule wins" "$OUT" '"status":403'
for probe in livenessProbe readinessProbe; do
    mapfile -t PROBE < <(pod_argv "$T/k8s.yaml" $probe)
    expect_ok "the $probe exec command passes" "${PROBE[@]}"
done
run curl -sS --max-time 5 "http://127.0.0.1:$METRICS/metrics"
assert_match "the pod's metrics listener serves the counters" "$OUT" 'pqmtls_handshakes_total\{result="success",reason=""\} [1-9]'

# ---- client identities: a Secret per --client, used by a workload -------------------------
pqm pki issue client --pki "$P" --name Carol_1 --no-key-passphrase > /dev/null
pqm pki issue client --pki "$P" --name dave --key-passphrase-file "$T/key.pass" > /dev/null
expect_rc 1 "--client naming no client certificate is refused" k8s --name api.example.com --client nobody
assert_contains "saying how to issue it" "$OUT" "pqmtls pki issue client --name nobody"
expect_rc 1 "--client with a server certificate's name is refused" k8s --name api.example.com --client api.example.com
expect_rc 1 "--client whose Secret name Kubernetes would refuse" k8s --name api.example.com --client Carol_1
assert_contains "is refused with the rule" "$OUT" "the Secret pqmtls-client-Carol_1 would not be a Kubernetes name"
expect_rc 1 "--client with an encrypted key is refused" k8s --name api.example.com --client dave
assert_contains "saying why and what to do" "$OUT" "a workload has no passphrase to give; issue it again with --no-key-passphrase"
expect_rc 1 "the same --client twice is refused" k8s --name api.example.com --client alice --client alice
expect_ok "export k8s --client alice --client bob" k8s "${K8S_ARGS[@]}" --client alice --client bob --out "$T/clients.yaml"
expect_ok "with the client Secrets, every document passes the schemas" "$PY" "$CHECK" "$T/clients.yaml"
py_checks "$T/clients.yaml" "$P" "$NS" "$T/wl" <<'PY'
import base64, os, sys, yaml
path, pki, ns, out = sys.argv[1:5]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
def check(ok, what):
    if not ok:
        sys.exit(f"FAILED: {what}")
    print(f"CHECK {what}")
kinds = [(d["kind"], d["metadata"]["name"]) for d in docs]
check(kinds[5:] == [("Secret", "pqmtls-client-alice"), ("Secret", "pqmtls-client-bob")], f"a Secret per --client after the gateway's objects: {kinds}")
for name in ("alice", "bob"):
    sec = [d for d in docs if d["metadata"]["name"] == "pqmtls-client-" + name][0]
    data = {k: base64.b64decode(v) for k, v in sec["data"].items()}
    check(sec["type"] == "kubernetes.io/tls" and sec["metadata"]["namespace"] == ns, f"{name}: kubernetes.io/tls in {ns}")
    check(sorted(data) == ["ca.crt", "tls.crt", "tls.key"], f"{name}: tls.crt, tls.key, ca.crt and nothing else")
    check(data["tls.crt"] == open(f"{pki}/issued/{name}.chain.pem", "rb").read(), f"{name}: tls.crt is issued/{name}.chain.pem")
    check(data["tls.key"] == open(f"{pki}/issued/{name}.key.pem", "rb").read(), f"{name}: tls.key is its key")
    check(data["ca.crt"] == open(f"{pki}/server-ca-chain.pem", "rb").read(), f"{name}: ca.crt is the server CA chain (what a client trusts)")
    check(sec["metadata"]["annotations"]["pqmtls.io/client-name"] == name, f"{name}: annotated with the client's name")
    os.makedirs(f"{out}/{name}", exist_ok=True)
    for k, v in data.items():
        open(f"{out}/{name}/{k}", "wb").write(v)
PY
run pqm request "https://api.example.com:$GW/orders" --resolve "api.example.com:$GW:127.0.0.1" \
    --cert "$T/wl/alice/tls.crt" --key "$T/wl/alice/tls.key" --ca "$T/wl/alice/ca.crt" --json
assert_contains "a workload with the files of Secret pqmtls-client-alice calls the exported gateway" "$OUT" '"status":200'

# ---- a revocation reaches the running pod: export, apply, kubelet swap ---------------------
pqm pki revoke --pki "$P" "$(cert_serial "$I/bob.crt.pem")" > /dev/null
expect_ok "bob passes before the revocation is published" req bob api.example.com
pqm pki crl --pki "$P" > /dev/null
k8s "${K8S_ARGS[@]}" --out "$T/k8s-2.yaml" 2> /dev/null || fail "the second export"
sha() { sed -n 's/.*pqmtls.io\/gateway-config-sha256: "\(.*\)"/\1/p' "$1"; }
[[ $(sha "$T/k8s.yaml") == "$(sha "$T/k8s-2.yaml")" ]] || fail "a new CRL changed the pod template's checksum"
pass "new CRLs leave the pod template alone (no rollout: the pods reload)"
k8s --name api.example.com --namespace "$NS" --upstream other:8080 --out "$T/k8s-3.yaml" 2> /dev/null || fail "export --upstream other:8080"
[[ $(sha "$T/k8s.yaml") != "$(sha "$T/k8s-3.yaml")" ]] || fail "a new upstream left the checksum alone"
pass "a new gateway.yaml changes the checksum (the pods roll)"
volume "$T/k8s-2.yaml" "$T/vol2" "$GW" "$ADMIN"
"$PY" "$LIB/kubelet.py" write "$MNT" "$T/vol2" 10001 || fail "kubelet.py write"
for _ in $(seq 1 100); do grep -q 'reloaded.*(a file changed)' "$T/gw.err" && break; sleep 0.05; done
assert_match "the ..data swap reloads the gateway" "$(cat "$T/gw.err")" 'reloaded .*\(a file changed\)'
expect_rc 1 "the revoked client is refused after the swap" req bob api.example.com
expect_ok "the other still passes" req alice api.example.com
kill -TERM "$GWPID"
wait "$GWPID" || fail "the gateway did not exit 0 on SIGTERM: $(tail -n 3 "$T/gw.err")"
pass "SIGTERM drains and exits 0"

# ---- the encrypted key: key.pass from the Secret -----------------------------------------
GW=$(free_port)
ADMIN=$(free_port)
MNT=$T/pod2/etc/pqmtls
volume "$T/enc.yaml" "$T/vol3" "$GW" "$ADMIN"
sed -i "s|\"backend:8080\"|\"127.0.0.1:$UP\"|" "$T/vol3/gateway.yaml"
"$PY" "$LIB/kubelet.py" write "$MNT" "$T/vol3" 10001 || fail "kubelet.py write"
mapfile -t ARGV < <(pod_argv "$T/enc.yaml" container)
"${as_user[@]}" "${ARGV[@]}" > /dev/null 2> "$T/gw2.err" &
GWPID=$!
track_pid $GWPID
wait_port "$GW" 10 "$GWPID" || fail "the gateway with the encrypted key did not start: $(cat "$T/gw2.err")"
expect_ok "the gateway opens the encrypted key with key.pass from the Secret" req alice enc.example.com
assert_contains "and serves" "$OUT" '"status":200'
done_all
