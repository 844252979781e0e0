#!/usr/bin/env bash
# The gateway's operation: the YAML configuration (errors with file and line), the
# authorization policy (403 with a JSON body, deny over allow, path normal form), the
# admin listener (Prometheus metrics checked by promtool, /healthz, /readyz, loopback
# only), systemd's readiness protocol, the expiry warning, and the drain on SIGTERM.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
require_tool curl python3 promtool

P="$T/pki"
pqm pki init "$P" --org Example --server-domain example.com --spiffe-trust-domain cluster.local \
    --no-passphrase > /dev/null
pqm pki issue server --pki "$P" --name api.example.com --ip 127.0.0.1 --no-key-passphrase > /dev/null
echo 'server key passphrase' > "$T/key.pass"
echo 'not it' > "$T/wrong.pass"
pqm pki issue server --pki "$P" --name enc.example.com --ip 127.0.0.1 \
    --key-passphrase-file "$T/key.pass" > /dev/null
pqm pki issue client --pki "$P" --name client1 --no-key-passphrase > /dev/null
pqm pki issue client --pki "$P" --name mallory --no-key-passphrase > /dev/null
pqm pki issue client --pki "$P" --name soon --days 5 --no-key-passphrase > /dev/null
pqm pki issue client --pki "$P" --name svc --no-key-passphrase \
    --spiffe-id spiffe://cluster.local/ns/production/sa/frontend-service > /dev/null
I="$P/issued"

# ---- an upstream that records what reaches it ----------------------------------------
UP=$(free_port)
cat > "$T/up.py" <<'EOF'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        with open(sys.argv[2], "a") as f:
            f.write(self.command + " " + self.path + "\n")
        cc = self.headers.get("Client-Cert")
        if cc is not None:
            with open(sys.argv[2] + ".client-cert", "w") as f:
                f.write(cc)
        body = b"upstream says hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_DELETE = do_GET
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
python3 "$T/up.py" "$UP" "$T/seen" & track_pid $!
wait_port "$UP" 10 || fail "the upstream did not start"
touch "$T/seen"

GW=$(free_port)
ADMIN=$(free_port)
METRICS=$(free_port)
while [[ "$METRICS" == "$ADMIN" ]]; do METRICS=$(free_port); done
curl_as() { # NAME URL-PATH [curl args...]: prints the HTTP status
    local name=$1 path=$2; shift 2
    LD_LIBRARY_PATH="$OPENSSL_LIBDIR" curl -sS -o "$T/body" -w '%{http_code}' \
        --cacert "$P/server-ca-chain.pem" --cert "$I/$name.crt.pem" --key "$I/$name.key.pem" \
        --resolve "api.example.com:$GW:127.0.0.1" "$@" "https://api.example.com:$GW$path"
}

# ---- configuration file errors name the file and the line ------------------------------
cat > "$T/bad.yaml" <<EOF
listen: 127.0.0.1:$GW
upstream: 127.0.0.1:$UP
verify_depth: 12
EOF
run pqm gateway --config "$T/bad.yaml"
[[ $RC -eq 1 ]] || fail "a bad value: exit $RC, expected 1"
assert_contains "a bad value is refused with file and line" "$OUT" "bad.yaml:3: verify_depth"
printf 'listen: 127.0.0.1:1\nlisten_adress: x\n' > "$T/typo.yaml"
run pqm gateway --config "$T/typo.yaml"
assert_contains "an unknown key is refused with file and line" "$OUT" "typo.yaml:2: unknown option 'listen_adress'"
run pqm gateway --listen 127.0.0.1:1 --upstream 127.0.0.1:2
[[ $RC -eq 2 ]] || fail "missing options: exit $RC, expected 2"
assert_contains "a missing required option is named" "$OUT" "cert is required"

# ---- the gateway under systemd's notify protocol ---------------------------------------
cat > "$T/notify.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        f.write(s.recv(4096).decode() + "\n")
EOF
python3 "$T/notify.py" "$T/notify.sock" "$T/notify.log" & track_pid $!
for _ in $(seq 1 50); do [[ -S "$T/notify.sock" ]] && break; sleep 0.05; done
cat > "$T/gw.yaml" <<EOF
# the seed scenario's AuthorizationPolicy, at the gateway
listen: 127.0.0.1:$GW
upstream: 127.0.0.1:$UP
cert: $I/api.example.com.chain.pem
key: $I/api.example.com.key.pem
client_ca: $P/client-ca-chain.pem
admin: 127.0.0.1:$ADMIN
metrics: 127.0.0.1:$METRICS
workers: 2
max_header_size: 4096
allow:
  - principal=cluster.local/ns/production/sa/frontend-service path=/api/ method=GET,POST
  - cn=client1,mallory,soon path=/public
deny:
  - cn=mallory
EOF
run pqm gateway --config "$T/gw.yaml" --admin "0.0.0.0:$ADMIN"
[[ $RC -eq 1 ]] || fail "an admin listener off loopback: exit $RC, expected 1"
assert_contains "the admin listener is loopback only" "$OUT" "must be on a loopback address"
assert_contains "and the refusal points to the metrics listener" "$OUT" "give metrics: ADDR:PORT"
NOTIFY_SOCKET="$T/notify.sock" "$PQMTLS_BIN" gateway --config "$T/gw.yaml" --access-log "$T/access.log" \
    2> "$T/gw.err" &
GWPID=$!
track_pid $GWPID
wait_port "$GW" 10 "$GWPID" || fail "the gateway did not start: $(cat "$T/gw.err")"
for _ in $(seq 1 50); do grep -q 'READY=1' "$T/notify.log" 2>/dev/null && break; sleep 0.05; done
notified=$(cat "$T/notify.log")
assert_contains "READY=1 reaches systemd once the gateway listens" "$notified" "READY=1"

# A second gateway on the same port is refused rather than sharing it (SO_REUSEPORT).
run pqm gateway --config "$T/gw.yaml" --admin "127.0.0.1:$(free_port)" --metrics "127.0.0.1:$(free_port)"
[[ $RC -eq 1 ]] || fail "a second gateway on port $GW: exit $RC, expected 1 ($OUT)"
assert_contains "a second gateway on a taken port is refused" "$OUT" "another gateway running"

# ---- authorization ---------------------------------------------------------------------
code=$(curl_as svc /api/orders)
[[ $code == 200 ]] || fail "svc GET /api/orders: $code, expected 200"
pass "an allowed principal reaches the upstream"
code=$(curl_as svc /api/orders -X DELETE)
[[ $code == 403 ]] || fail "svc DELETE /api/orders: $code, expected 403"
body=$(cat "$T/body")
assert_contains "a refused request gets a JSON body" "$body" '"error":"forbidden"'
code=$(curl_as client1 /api/orders)
[[ $code == 403 ]] || fail "client1 GET /api/orders: $code, expected 403"
pass "no allow rule matches: 403"
code=$(curl_as client1 /public/doc)
[[ $code == 200 ]] || fail "client1 GET /public/doc: $code, expected 200"
code=$(curl_as mallory /public/doc)
[[ $code == 403 ]] || fail "mallory GET /public/doc: $code, expected 403 (deny wins)"
pass "a deny rule wins over an allow rule"
code=$(curl_as client1 /public/../api/orders --path-as-is)
[[ $code == 400 ]] || fail "a dot-segment path: $code, expected 400"
pass "a path not in normal form is refused when rules look at paths"
seen=$(cat "$T/seen")
assert_contains "the allowed requests reached the upstream" "$seen" "GET /public/doc"
assert_not_contains "no refused request reached the upstream" "$seen" "DELETE"
[[ $(grep -c . "$T/seen") -eq 2 ]] || fail "the upstream saw $(grep -c . "$T/seen") requests, expected 2: $seen"
log=$(cat "$T/access.log")
assert_contains "the access log says which rule refused" "$log" "denied by rule 'cn=mallory'"

# ---- max_header_size (4096 in this configuration) ----------------------------------------
code=$(curl_as client1 /public/doc -H "X-Big: $(head -c 5000 /dev/zero | tr '\0' a)")
[[ $code == 431 ]] || fail "a 5000-byte header with max_header_size 4096: $code, expected 431"
code=$(curl_as client1 /public/doc -H "X-Big: $(head -c 3000 /dev/zero | tr '\0' a)")
[[ $code == 200 ]] || fail "a 3000-byte header with max_header_size 4096: $code, expected 200"
pass "max_header_size: a larger head gets 431, a smaller one passes"

# ---- expiry warning: once per certificate per hour ---------------------------------------
curl_as soon /public/x > /dev/null || true
curl_as soon /public/x > /dev/null || true
n=$(grep -c '"event":"certificate_expiring"' "$T/access.log" || true)
[[ $n -eq 1 ]] || fail "expected one expiry warning for two connections, got $n"
assert_contains "the expiry warning reaches the operator too" "$(cat "$T/gw.err")" "CN=soon,O=Example"
n=$(grep -c '"event":"certificate_expiring".*CN=client1' "$T/access.log" || true)
[[ $n -eq 0 ]] || fail "a certificate valid for a year was warned about"

# ---- admin: metrics, health, readiness --------------------------------------------------
curl -sS -o "$T/metrics" "http://127.0.0.1:$ADMIN/metrics" || fail "GET /metrics failed"
promtool check metrics < "$T/metrics" > "$T/promtool.out" 2>&1 \
    || fail "promtool check metrics: $(cat "$T/promtool.out")"
pass "promtool check metrics accepts the output"
m=$(cat "$T/metrics")
assert_match "handshakes are counted" "$m" 'pqmtls_handshakes_total\{result="success",reason=""\} [1-9]'
assert_match "X25519MLKEM768 is counted" "$m" 'pqmtls_negotiated_groups_total\{group="X25519MLKEM768"\} [1-9]'
assert_match "403s are counted" "$m" 'pqmtls_requests_total\{code="403"\} 3'
assert_match "200s are counted" "$m" 'pqmtls_requests_total\{code="200"\} [1-9]'
assert_match "the upstream latency histogram has samples" "$m" 'pqmtls_upstream_latency_seconds_count [1-9]'
assert_match "a returning client certificate is answered from the verify cache" "$m" \
    'pqmtls_client_verify_total\{cache="hit"\} [1-9]'
assert_match "... and a certificate's first connection is verified in full" "$m" \
    'pqmtls_client_verify_total\{cache="miss"\} [1-9]'
soonest=$(sed -n 's/^pqmtls_client_cert_soonest_expiry_timestamp_seconds //p' <<< "$m")
want=$(date -d "$(ossl x509 -in "$I/soon.crt.pem" -noout -enddate | cut -d= -f2)" +%s)
[[ "$soonest" == "$want" ]] || fail "soonest expiry $soonest, expected $want (soon.crt.pem)"
pass "the soonest expiry gauge is the 5-day certificate's notAfter"
LD_LIBRARY_PATH="$OPENSSL_LIBDIR" curl -sS -o /dev/null --cacert "$P/server-ca-chain.pem" \
    --resolve "api.example.com:$GW:127.0.0.1" "https://api.example.com:$GW/" 2>/dev/null || true
curl -sS -o "$T/metrics" "http://127.0.0.1:$ADMIN/metrics"
assert_match "a refused handshake is counted by reason" "$(cat "$T/metrics")" \
    'pqmtls_handshakes_total\{result="refused",reason="no_certificate"\} 1'
[[ $(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN/healthz") == 200 ]] || fail "/healthz"
[[ $(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN/readyz") == 200 ]] || fail "/readyz"
[[ $(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN/nope") == 404 ]] || fail "/nope"
pass "/healthz and /readyz answer 200, anything else 404"

# The metrics listener: /metrics alone, on a thread of its own.
curl -sS -o "$T/metrics2" "http://127.0.0.1:$METRICS/metrics" || fail "GET /metrics on the metrics listener failed"
promtool check metrics < "$T/metrics2" > "$T/promtool2.out" 2>&1 || fail "promtool (metrics listener): $(cat "$T/promtool2.out")"
assert_match "the metrics listener serves the same counters" "$(cat "$T/metrics2")" \
    'pqmtls_handshakes_total\{result="refused",reason="no_certificate"\} 1'
[[ $(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$METRICS/healthz") == 404 ]] || fail "/healthz on the metrics listener"
pass "the metrics listener answers /metrics only (/healthz: 404)"
exec 7<> "/dev/tcp/127.0.0.1/$METRICS" # a scraper that connects and says nothing
code=$(curl -sS --max-time 1 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN/healthz" || true)
exec 7>&-
[[ $code == 200 ]] || fail "with the metrics listener held by a silent client, /healthz gave '$code'"
pass "a silent client on the metrics listener does not delay the admin listener's probes"
# A client that trickles one byte every 0.4 s is cut off after the 2 s a request may take:
# a scrape that comes meanwhile is answered within 4 s, not after the trickle (8 s).
python3 -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for b in b"GET /metrics HTTP/1.1\r\n"[:20]:
    try: s.send(bytes([b]))
    except OSError: break
    time.sleep(0.4)' "$METRICS" &
TRICKLE=$!
track_pid $TRICKLE
sleep 0.3
code=$(curl -sS --max-time 4 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$METRICS/metrics" || true)
[[ $code == 200 ]] || fail "a scrape behind a client trickling bytes got '$code' within 4 s"
pass "a client trickling bytes holds the metrics listener 2 s at most"
kill "$TRICKLE" 2> /dev/null || true

# ---- pqmtls bench against the gateway ---------------------------------------------------
bench() { pqm bench --connect "127.0.0.1:$GW" --host api.example.com --cert "$I/client1.crt.pem" \
    --key "$I/client1.key.pem" --ca "$P/server-ca-chain.pem" --path /public/bench --json "$@"; }
run bench --mode handshake --connections 2 --duration 1
[[ $RC -eq 0 ]] || fail "pqmtls bench --mode handshake: exit $RC: $OUT"
assert_match "bench: full handshakes, no error" "$OUT" '"handshakes":[1-9][0-9]*,"requests":[1-9][0-9]*,"errors":0,"non_200":0'
assert_contains "bench: the hybrid group was negotiated" "$OUT" '"group":"X25519MLKEM768"'
hs=$(sed -n 's/.*"handshakes":\([0-9]*\),"requests":\([0-9]*\).*/\1 \2/p' <<< "$OUT")
[[ ${hs% *} -ge ${hs#* } ]] || fail "bench --mode handshake: fewer handshakes than requests ($hs)"
run bench --mode keepalive --connections 2 --duration 1
assert_match "bench: keep-alive requests outnumber handshakes" "$OUT" '"handshakes":2,"requests":[0-9]{2,},"errors":0'
bench --mode idle --connections 5 --duration 3 > "$T/idle.json" &
BPID=$!
for _ in $(seq 1 60); do
    m=$(curl -sS "http://127.0.0.1:$ADMIN/metrics")
    [[ "$m" == *"pqmtls_connections_active 5"* ]] && break
    sleep 0.05
done
assert_contains "bench --mode idle holds its connections open (the gateway counts 5)" "$m" "pqmtls_connections_active 5"
wait "$BPID"
assert_contains "bench --mode idle: every connection was held" "$(cat "$T/idle.json")" '"held":5'

# ---- reload under load drops no request ---------------------------------------------------
bench --mode keepalive --connections 4 --duration 3 > "$T/load-ka.json" &
KPID=$!
bench --mode handshake --connections 2 --duration 3 > "$T/load-hs.json" &
HPID=$!
for _ in 1 2 3 4 5; do sleep 0.4; kill -HUP "$GWPID"; done
wait "$KPID" || fail "bench keepalive under reloads failed: $(cat "$T/load-ka.json")"
wait "$HPID" || fail "bench handshake under reloads failed: $(cat "$T/load-hs.json")"
assert_match "five reloads under keep-alive load: no request lost" "$(cat "$T/load-ka.json")" '"requests":[1-9][0-9]*,"errors":0,"non_200":0'
assert_match "five reloads under handshake load: no request lost" "$(cat "$T/load-hs.json")" '"requests":[1-9][0-9]*,"errors":0,"non_200":0'
n=$(grep -c 'reloaded' "$T/gw.err" || true)
[[ $n -ge 5 ]] || fail "the gateway reloaded $n times, expected 5: $(cat "$T/gw.err")"

# ---- the policy reloads with the configuration file ---------------------------------------
wait_log() { # PATTERN: wait for a line of the gateway's stderr
    for _ in $(seq 1 100); do grep -q -- "$1" "$T/gw.err" && return 0; sleep 0.05; done
    fail "the gateway never said '$1': $(cat "$T/gw.err")"
}
cp "$T/gw.yaml" "$T/gw.yaml.orig"
sed 's|^deny:|  - cn=client1 path=/api/orders method=GET\ndeny:|' "$T/gw.yaml.orig" > "$T/gw.yaml.new"
mv "$T/gw.yaml.new" "$T/gw.yaml"
kill -HUP "$GWPID"
for _ in $(seq 1 50); do grep -q 'RELOADING=1' "$T/notify.log" && break; sleep 0.05; done
assert_contains "SIGHUP is announced to systemd" "$(cat "$T/notify.log")" "RELOADING=1"
wait_log "reloaded the configuration"
code=$(curl_as client1 /api/orders)
[[ $code == 200 ]] || fail "client1 GET /api/orders after the policy reload: $code, expected 200"
pass "a new allow rule applies after SIGHUP, without a restart"
cp "$T/gw.yaml" "$T/gw.yaml.good"
printf 'allow:\n  - user=nobody\n' >> "$T/gw.yaml"
kill -HUP "$GWPID"
wait_log "reload (SIGHUP) refused"
assert_contains "a broken policy is refused with file and line" "$(cat "$T/gw.err")" "gw.yaml:"
code=$(curl_as client1 /api/orders)
[[ $code == 200 ]] || fail "after a refused reload: $code, expected 200 (the running policy stays)"
code=$(curl_as mallory /public/doc)
[[ $code == 403 ]] || fail "after a refused reload mallory got $code, expected 403"
pass "a refused reload keeps the running policy"

# ---- an encrypted server key, and the RFC 9440 Client-Cert header ----------------------
GW3=$(free_port)
ADM3=$(free_port)
run pqm gateway --listen "127.0.0.1:$GW3" --upstream "127.0.0.1:$UP" \
    --cert "$I/enc.example.com.chain.pem" --key "$I/enc.example.com.key.pem" \
    --key-passphrase-file "$T/wrong.pass" --client-ca "$P/client-ca-chain.pem"
[[ $RC -eq 1 ]] || fail "an encrypted key with the wrong passphrase: exit $RC, expected 1"
assert_contains "a wrong key passphrase is refused, naming the key file" "$OUT" "enc.example.com.key.pem"
assert_match "... and saying that the passphrase is wrong" "$OUT" "passphrase"
"$PQMTLS_BIN" gateway --listen "127.0.0.1:$GW3" --upstream "127.0.0.1:$UP" \
    --cert "$I/enc.example.com.chain.pem" --key "$I/enc.example.com.key.pem" \
    --key-passphrase-file "$T/key.pass" --client-ca "$P/client-ca-chain.pem" --workers 1 \
    --client-cert-header --access-log off --verify-cache=false --admin "127.0.0.1:$ADM3" \
    2> "$T/enc.err" &
EPID=$!
track_pid $EPID
wait_port "$GW3" 10 "$EPID" || fail "the gateway with an encrypted key did not start: $(cat "$T/enc.err")"
rm -f "$T/seen.client-cert"
code=$(LD_LIBRARY_PATH="$OPENSSL_LIBDIR" curl -sS -o /dev/null -w '%{http_code}' \
    --cacert "$P/server-ca-chain.pem" --cert "$I/client1.crt.pem" --key "$I/client1.key.pem" \
    --resolve "enc.example.com:$GW3:127.0.0.1" "https://enc.example.com:$GW3/public/cc" \
    -H 'Client-Cert: :c3Bvb2Y=:')
[[ $code == 200 ]] || fail "the gateway with an encrypted key (passphrase file) answered $code"
pass "an encrypted server key is read with its passphrase file"
want=":$(ossl x509 -in "$I/client1.crt.pem" -outform DER | base64 -w0):"
[[ "$(cat "$T/seen.client-cert" 2>/dev/null)" == "$want" ]] \
    || fail "Client-Cert at the upstream is not client1's certificate (RFC 9440): $(head -c 80 "$T/seen.client-cert" 2>/dev/null)"
pass "client_cert_header: the upstream gets client1's DER certificate in Client-Cert, not the client's"
code=$(LD_LIBRARY_PATH="$OPENSSL_LIBDIR" curl -sS -o /dev/null -w '%{http_code}' \
    --cacert "$P/server-ca-chain.pem" --cert "$I/client1.crt.pem" --key "$I/client1.key.pem" \
    --resolve "enc.example.com:$GW3:127.0.0.1" "https://enc.example.com:$GW3/public/again")
[[ $code == 200 ]] || fail "client1's second connection to the gateway without verify cache: $code"
m=$(curl -sS "http://127.0.0.1:$ADM3/metrics")
assert_match "verify_cache: false verifies a returning certificate in full" "$m" \
    'pqmtls_client_verify_total\{cache="hit"\} 0'
kill -TERM "$EPID"; wait "$EPID" || true

# ---- as a user without privileges (a container's non-root user) -----------------------
if command -v setpriv > /dev/null && [[ $(id -u) -eq 0 ]]; then
    U="$T/nobody"
    mkdir -p "$U"
    cp "$I/api.example.com.chain.pem" "$I/api.example.com.key.pem" "$P/client-ca-chain.pem" "$U/"
    chown -R nobody "$U"
    chmod 711 "$T"
    GW2=$(free_port)
    setpriv --reuid=nobody --regid=nogroup --clear-groups "$PQMTLS_BIN" gateway \
        --listen "127.0.0.1:$GW2" --upstream "127.0.0.1:$UP" --cert "$U/api.example.com.chain.pem" \
        --key "$U/api.example.com.key.pem" --client-ca "$U/client-ca-chain.pem" --workers 1 \
        --access-log - > "$T/nobody.out" 2> "$T/nobody.err" &
    NPID=$!
    track_pid $NPID
    wait_port "$GW2" 10 "$NPID" || fail "the gateway as nobody did not start: $(cat "$T/nobody.err")"
    code=$(LD_LIBRARY_PATH="$OPENSSL_LIBDIR" curl -sS -o /dev/null -w '%{http_code}' \
        --cacert "$P/server-ca-chain.pem" --cert "$I/client1.crt.pem" --key "$I/client1.key.pem" \
        --resolve "api.example.com:$GW2:127.0.0.1" "https://api.example.com:$GW2/public/x")
    [[ $code == 200 ]] || fail "the gateway running as nobody answered $code"
    [[ "$(ps -o user= -p "$NPID")" == nobody ]] || fail "the gateway does not run as nobody"
    pass "the gateway runs without privileges (as nobody) and serves"
    kill -TERM "$NPID"
    wait "$NPID" || fail "the gateway as nobody did not exit 0 on SIGTERM"
else
    info "not root or no setpriv: the unprivileged run is skipped"
fi

# ---- a file that changes on disk reloads without a signal ----------------------------
# (the configuration file, broken above, is put right: the watch reloads it, no signal)
cp "$T/gw.yaml.good" "$T/gw.yaml.tmp" && mv "$T/gw.yaml.tmp" "$T/gw.yaml"
for _ in $(seq 1 100); do
    grep -q 'reloaded the configuration.*(a file changed)' "$T/gw.err" && break
    sleep 0.05
done
assert_match "a configuration file changed on disk is reloaded without SIGHUP" \
    "$(cat "$T/gw.err")" 'reloaded the configuration.*\(a file changed\)'
before=$(grep -c 'reloaded.*(a file changed)' "$T/gw.err" || true)
cp "$P/client-ca-chain.pem" "$T/ca.new" && cat "$T/ca.new" > "$P/client-ca-chain.pem"
for _ in $(seq 1 100); do
    [[ $(grep -c 'reloaded.*(a file changed)' "$T/gw.err" || true) -gt $before ]] && break
    sleep 0.05
done
[[ $(grep -c 'reloaded.*(a file changed)' "$T/gw.err" || true) -gt $before ]] \
    || fail "rewriting the client CA file did not reload the gateway within 5 s: $(tail -n 3 "$T/gw.err")"
pass "a client CA file rewritten on disk is reloaded without SIGHUP"

# ---- drain -----------------------------------------------------------------------------
kill -TERM "$GWPID"
set +e; wait "$GWPID"; rc=$?; set -e
[[ $rc -eq 0 ]] || fail "the gateway exited $rc after SIGTERM, expected 0"
assert_contains "SIGTERM is announced to systemd" "$(cat "$T/notify.log")" "STOPPING=1"
pass "SIGTERM drains and exits 0"
done_all
