#!/usr/bin/env bash
# scripts/demo.sh: the whole pqmtls architecture on one machine (`make demo`).
#
#   1. a post-quantum PKI (ML-DSA-65): root CA, server and client intermediates; the
#      API server's certificate and the seed's clients (Client 1, Client 2 about to
#      expire, Service A with a SPIFFE ID), plus Mallory (revoked) and Intern (a SPIFFE
#      ID the policy does not allow); CRLs;
#   2. a small backend API (scripts/demo_backend.py) behind the pqmtls gateway (TLS 1.3,
#      X25519MLKEM768, client certificates, CRLs, an identity policy, access log,
#      metrics), and Service A's legacy client behind `pqmtls tunnel`;
#   3. the calls, then a report: who got in, why the others did not, the negotiated group
#      and signature algorithm, the gateway's log lines and metrics, the PKI tree, and
#      the nginx and Istio configuration generated from the same PKI.
# Everything it starts is stopped when it ends, however it ends. Exits non-zero when a
# step that should succeed fails or one that should be refused is not.
#
# Environment: PQMTLS_BIN (default build/pqmtls), DEMO_DIR (default <repo>/demo).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
PQMTLS_BIN=${PQMTLS_BIN:-$root/build/pqmtls}
DEMO_DIR=${DEMO_DIR:-$root/demo}
PYTHON=${PYTHON:-python3}

die() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }
[ -x "$PQMTLS_BIN" ] || die "pqmtls binary not found or not executable: $PQMTLS_BIN (run make)"
command -v "$PYTHON" > /dev/null || die "python3 is needed for the demo's backend API"
command -v curl > /dev/null || die "curl is needed for Service A's legacy client"
unset PQMTLS_PASSPHRASE PQMTLS_KEY_PASSPHRASE

pids=()
stop_all() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
}
trap stop_all EXIT

step=0
section() {
  step=$((step + 1))
  printf '\n'; printf '=%.0s' {1..78}; printf '\n %d. %s\n' "$step" "$*"; printf '=%.0s' {1..78}; printf '\n'
}
show() {
  local shown="${*//"$PQMTLS_BIN"/pqmtls}"
  printf '$ %s\n' "${shown//"$DEMO_DIR"\//}"
}
run() { show "$@"; "$@" || die "exit status $? from: ${*//$PQMTLS_BIN/pqmtls}"; }
pq() { run "$PQMTLS_BIN" "$@"; }
quiet() { "$@" > /dev/null || die "exit status $? from: ${*//$PQMTLS_BIN/pqmtls}"; }
free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_port PORT PID: until PID listens on 127.0.0.1:PORT (watched with ss: a probe
# connection would be a refused handshake in the gateway's log).
wait_port() {
  local i
  for ((i = 0; i < 200; i++)); do
    [ -n "$(ss -ltnH "( sport = :$1 )" 2> /dev/null)" ] && return 0
    kill -0 "$2" 2> /dev/null || return 1
    sleep 0.05
  done
  return 1
}
# start NAME CMD...: a background process whose output goes to DEMO_DIR/NAME.out
start() {
  local name=$1; shift
  show "$@" "&"
  "$@" > "$DEMO_DIR/$name.out" 2>&1 &
  pids+=("$!")
  LAST_PID=$!
}

pki=$DEMO_DIR/pki
issued=$pki/issued
pass=$DEMO_DIR/passphrase.txt
keypass=$DEMO_DIR/key-passphrase.txt

section "Fresh demo directory: $DEMO_DIR"
case "$DEMO_DIR" in "" | / | "$root") die "refusing to use DEMO_DIR=$DEMO_DIR" ;; esac
[ -e "$DEMO_DIR" ] && { echo "removing the previous demo"; rm -rf -- "$DEMO_DIR"; }
mkdir -p "$DEMO_DIR"
for f in "$pass" "$keypass"; do
  (umask 077; head -c 24 /dev/urandom | base64 | tr -d '\n/+=' > "$f"; printf '\n' >> "$f")
  echo "random passphrase in ${f#"$DEMO_DIR"/} (mode $(stat -c %a "$f"))"
done
P=(--passphrase-file "$pass")
K=(--key-passphrase-file "$keypass")

section "The PKI: root CA -> server and client intermediate CAs, all ML-DSA-65"
pq pki init "$pki" --org Example --server-domain example.com --spiffe-trust-domain cluster.local "${P[@]}" > /dev/null
pq pki issue server --pki "$pki" --name api.example.com --dns api.example.com --ip 127.0.0.1 "${P[@]}" "${K[@]}"
pq pki issue client --pki "$pki" --name client-1 "${P[@]}" "${K[@]}"
pq pki issue client --pki "$pki" --name client-2 --hours 60 "${P[@]}" "${K[@]}"
pq pki issue client --pki "$pki" --name service-a \
  --spiffe-id spiffe://cluster.local/ns/production/sa/frontend-service "${P[@]}" "${K[@]}"
pq pki issue client --pki "$pki" --name mallory "${P[@]}" "${K[@]}"
pq pki issue client --pki "$pki" --name intern \
  --spiffe-id spiffe://cluster.local/ns/staging/sa/intern "${P[@]}" "${K[@]}"
mallory_serial=$("$PQMTLS_BIN" inspect "$issued/mallory.crt.pem" --json | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["serial"])')
pq pki revoke --pki "$pki" "$mallory_serial" --reason keyCompromise
pq pki crl --pki "$pki" "${P[@]}"

section "The backend API, the gateway in front of it, and Service A's tunnel"
backend_port=$(free_port)
# DEMO_DIR on its command line too: every process the demo starts names it, so that a
# leftover one can be found (tests/integration/demo.sh looks).
start backend "$PYTHON" "$here/demo_backend.py" "$backend_port" "$DEMO_DIR"
wait_port "$backend_port" "$LAST_PID" || die "the backend did not start: $(cat "$DEMO_DIR/backend.out")"
gw_port=$(free_port)
admin_port=$(free_port)
cat > "$DEMO_DIR/gateway.yaml" <<YAML
# The pqmtls gateway of the demo (docs/gateway.md lists every key).
listen: 127.0.0.1:$gw_port
upstream: 127.0.0.1:$backend_port
admin: 127.0.0.1:$admin_port
cert: $issued/api.example.com.chain.pem
key: $issued/api.example.com.key.pem
key_passphrase_file: $keypass
client_ca: $pki/client-ca-chain.pem
crl:
  - $pki/crl/client-ca-chain.crl.pem
require_pq: true
expiry_warning_days: 30
access_log: $DEMO_DIR/access.log
workers: 2
allow:
  - "cn=client-1,client-2"
  - "namespace=production"
YAML
echo "gateway.yaml: client CAs only, CRLs of the whole client chain, hybrid post-quantum key"
echo "exchange required, and a policy: Client 1, Client 2 and the production namespace."
start gateway "$PQMTLS_BIN" gateway --config "$DEMO_DIR/gateway.yaml"
gw_pid=$LAST_PID
wait_port "$gw_port" "$gw_pid" || die "the gateway did not start: $(cat "$DEMO_DIR/gateway.out")"
tunnel_port=$(free_port)
start tunnel "$PQMTLS_BIN" tunnel --listen "127.0.0.1:$tunnel_port" --upstream "api.example.com:$gw_port" \
  --resolve "api.example.com:$gw_port:127.0.0.1" --cert "$issued/service-a.chain.pem" \
  --key "$issued/service-a.key.pem" "${K[@]}" --ca "$pki/server-ca-chain.pem" --require-pq
wait_port "$tunnel_port" "$LAST_PID" || die "the tunnel did not start: $(cat "$DEMO_DIR/tunnel.out")"

section "The calls"
url="https://api.example.com:$gw_port/orders"
rq() { # NAME [request options]: one call with NAME's certificate; result in DEMO_DIR/NAME.json
  local name=$1; shift
  show pqmtls request "$url" --cert "issued/$name.chain.pem" --key "issued/$name.key.pem" ... "$@"
  set +e
  "$PQMTLS_BIN" request "$url" --resolve "api.example.com:$gw_port:127.0.0.1" \
    --cert "$issued/$name.chain.pem" --key "$issued/$name.key.pem" "${K[@]}" \
    --ca "$pki/server-ca-chain.pem" --require-pq --json "$@" > "$DEMO_DIR/$name.json" 2> "$DEMO_DIR/$name.err"
  echo $? > "$DEMO_DIR/$name.rc"
  set -e
}
rq client-1
rq client-2 -X POST -H 'Content-Type: application/json' -d '{"item": "lattice", "qty": 1}'
rq mallory
rq intern
echo "Service A's legacy client speaks plain HTTP to the tunnel:"
show curl -s "http://127.0.0.1:$tunnel_port/orders" -H "Host: api.example.com"
curl -sS --max-time 20 -o "$DEMO_DIR/service-a.body" -w '%{http_code}' \
  -H "Host: api.example.com" "http://127.0.0.1:$tunnel_port/orders" > "$DEMO_DIR/service-a.code" || true
sleep 0.3 # the gateway writes its log lines at the end of each loop iteration

section "Report"
"$PYTHON" - "$DEMO_DIR" <<'PY' || die "the calls did not go as the demo expects"
import json, os, sys
d = sys.argv[1]
def read(name, ext):
    p = os.path.join(d, name + ext)
    return open(p).read() if os.path.exists(p) else ""
rows, bad = [], []
def row(who, how, status, why, expect_in):
    rows.append((who, how, status, why))
    if (status.startswith("2")) != expect_in:
        bad.append(who)
for name, who in (("client-1", "Client 1"), ("client-2", "Client 2"), ("mallory", "Mallory"), ("intern", "Intern")):
    rc = read(name, ".rc").strip()
    if rc == "0" or read(name, ".json").strip():
        try:
            j = json.loads(read(name, ".json"))
        except ValueError:
            j = {}
        st = str(j.get("status", "?"))
        why = "admitted" if st.startswith("2") else "refused by the gateway's policy (HTTP %s)" % st
        if name == "client-1":
            group, sigalg = j.get("group", "?"), j.get("signature_algorithm", j.get("sigalg", "?"))
        row(who, "pqmtls request", st, why, name in ("client-1", "client-2"))
    else:
        err = read(name, ".err").strip().splitlines()
        row(who, "pqmtls request", "-", "refused in the handshake: " + (err[-1] if err else "?"), False)
code = read("service-a", ".code").strip() or "-"
row("Service A", "legacy HTTP -> pqmtls tunnel", code, "admitted (SPIFFE ID in namespace production)" if code.startswith("2") else "refused", True)
print("%-10s %-30s %-6s %s" % ("who", "how", "status", "what happened"))
for r in rows:
    print("%-10s %-30s %-6s %s" % r)
print()
print("Key exchange and signatures of Client 1's connection: %s, %s" % (group, sigalg))
print("Service A's call, as the backend saw it: %s" % json.loads(read("service-a", ".body") or "{}").get("caller"))
if bad:
    print("UNEXPECTED:", ", ".join(bad))
    sys.exit(1)
PY
echo
echo "The gateway's access log (access.log: one JSON line per request and per refused"
echo "handshake; here a few of their fields):"
"$PYTHON" - "$DEMO_DIR/access.log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    ev = e.get("event")
    if ev == "request":
        what = "%s %s -> %s  (%s, %s, %s)" % (e["method"], e["path"], e["status"], e["tls_version"], e["group"], e["sigalg"])
    elif ev == "handshake_refused":
        what = "handshake refused: %s: %s" % (e["reason_code"], e["reason"])
    elif ev == "certificate_expiring":
        what = "certificate expiring %s" % e.get("not_after", "")
    else:
        continue
    print("  %-9s %-22s %s" % (e["time"][11:19], e.get("subject", "") or "-", what))
PY
grep -q '"reason_code":"revoked"' "$DEMO_DIR/access.log" || die "the gateway did not log Mallory's revocation"
grep -q '"certificate_expiring"' "$DEMO_DIR/access.log" || die "the gateway did not warn about Client 2's expiry"
grep -q '"status":403' "$DEMO_DIR/access.log" || die "the gateway did not log the policy refusal"
echo
echo "Its metrics (http://127.0.0.1:$admin_port/metrics, excerpt):"
curl -sS --max-time 10 "http://127.0.0.1:$admin_port/metrics" > "$DEMO_DIR/metrics.txt" || die "no metrics"
grep -E '^pqmtls_(handshakes_total|negotiated_groups_total|requests_total)' "$DEMO_DIR/metrics.txt" | grep -v ' 0$'

section "The PKI"
pq pki tree --pki "$pki"
pq pki status --pki "$pki" || true

section "The same PKI for nginx and Istio"
pq export nginx --pki "$pki" --server-name api.example.com --upstream "http://127.0.0.1:$backend_port" \
  --out "$DEMO_DIR/nginx" "${K[@]}"
sed -n '/^server {/,/^}/p' "$DEMO_DIR/nginx/api.example.com.conf"
# The mesh's share of the gateway's policy: the production namespace. (cn= rules have no
# Istio equivalent; the export refuses them rather than widen or narrow them.)
cat > "$DEMO_DIR/mesh-policy.yaml" <<'YAML'
allow:
  - "namespace=production"
YAML
pq export istio --pki "$pki" --namespace production --policy "$DEMO_DIR/mesh-policy.yaml" \
  --out "$DEMO_DIR/istio.yaml"
cat "$DEMO_DIR/istio.yaml"

section "Stopping what the demo started"
stop_all
pids=()
echo "backend, gateway and tunnel stopped."
cat <<EOF

All steps succeeded. In $DEMO_DIR:
  pki/                 the PKI (inventory pki.db, CAs, issued/, crl/)
  gateway.yaml         the gateway's configuration; access.log its log; metrics.txt
  nginx/, istio.yaml   the same identities for nginx and Istio
EOF
