#!/usr/bin/env bash
# pqmtls probe: the exec probe of the gateway's loopback admin listener. 0 for /healthz
# and /readyz of a serving gateway; 1 with the status for a 404 and for /readyz once the
# gateway drains (while /healthz still passes); 1 with the reason for a refused
# connection, a listener that never answers (within --timeout) and an answer that is not
# HTTP; 2 for usage errors.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
PY=/usr/bin/python3

P=$T/pki
pqm pki init "$P" --org Example --server-domain example.com --no-passphrase > /dev/null
pqm pki issue server --pki "$P" --name api.example.com --ip 127.0.0.1 --no-key-passphrase > /dev/null
pqm pki issue client --pki "$P" --name alice --no-key-passphrase > /dev/null
I=$P/issued
UP=$(free_port)
"$PY" "$PQMTLS_SOURCE_DIR/tests/integration/lib/upstream.py" "$UP" "$T/seen" & track_pid $!
wait_port "$UP" 10 || fail "the upstream did not start"
GW=$(free_port)
ADMIN=$(free_port)
"$PQMTLS_BIN" gateway --listen "127.0.0.1:$GW" --upstream "127.0.0.1:$UP" \
    --cert "$I/api.example.com.chain.pem" --key "$I/api.example.com.key.pem" \
    --client-ca "$P/client-ca-chain.pem" --admin "127.0.0.1:$ADMIN" --workers 1 \
    --drain-timeout 10 --access-log off 2> "$T/gw.err" &
GWPID=$!
track_pid $GWPID
wait_port "$GW" 10 "$GWPID" || fail "the gateway did not start: $(cat "$T/gw.err")"
wait_port "$ADMIN" 10 "$GWPID" || fail "the admin listener did not start"

expect_ok "/healthz of a serving gateway" pqm probe "http://127.0.0.1:$ADMIN/healthz"
[[ -z "$OUT" ]] || fail "probe printed something on success: $OUT"
expect_ok "/readyz of a serving gateway" pqm probe --timeout 1 "http://127.0.0.1:$ADMIN/readyz"
expect_rc 1 "a 404 fails the probe" pqm probe "http://127.0.0.1:$ADMIN/nope"
assert_contains "with the status and the body's first line" "$OUT" "http://127.0.0.1:$ADMIN/nope: 404 not found"

expect_rc 2 "no URL is a usage error" pqm probe
expect_rc 2 "an https:// URL is a usage error" pqm probe "https://127.0.0.1:$ADMIN/healthz"
expect_rc 2 "--timeout 0 is a usage error" pqm probe --timeout 0 "http://127.0.0.1:$ADMIN/healthz"
expect_rc 1 "a URL without a port is refused" pqm probe "http://127.0.0.1/healthz"
assert_contains "saying so" "$OUT" "needs a HOST:PORT"
expect_rc 1 "a path with a space is refused (no request splitting)" pqm probe "http://127.0.0.1:$ADMIN/a b"

DEAD=$(free_port)
expect_rc 1 "nothing listening fails the probe" pqm probe "http://127.0.0.1:$DEAD/healthz"
assert_contains "with the reason" "$OUT" "Connection refused"

SILENT=$(free_port)
"$PY" -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8); time.sleep(120)' "$SILENT" & track_pid $!
wait_port "$SILENT" 10 || fail "the silent listener did not start"
t0=$EPOCHREALTIME
expect_rc 1 "a listener that never answers fails the probe" pqm probe --timeout 1 "http://127.0.0.1:$SILENT/healthz"
took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')
assert_contains "as a timeout" "$OUT" "timed out waiting for the answer"
awk -v t="$took" 'BEGIN { exit !(t >= 0.9 && t < 3) }' || fail "--timeout 1 took $took s"
pass "--timeout 1 gives up after about a second ($took s)"

GARBLE=$(free_port)
"$PY" -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
while True:
    c, _ = s.accept(); c.recv(4096); c.sendall(b"SSH-2.0-OpenSSH\r\n"); c.close()' "$GARBLE" & track_pid $!
wait_port "$GARBLE" 10 || fail "the garbling listener did not start"
expect_rc 1 "an answer that is not HTTP fails the probe" pqm probe "http://127.0.0.1:$GARBLE/healthz"
assert_contains "saying so" "$OUT" "not HTTP/1.x"

# ---- draining: /readyz fails, /healthz passes -------------------------------------------
pqm request "https://api.example.com:$GW/sleep/3" --resolve "api.example.com:$GW:127.0.0.1" \
    --cert "$I/alice.crt.pem" --key "$I/alice.key.pem" --ca "$P/server-ca-chain.pem" \
    -o /dev/null > "$T/slow.out" 2>&1 &
SLOW=$!
for _ in $(seq 1 100); do grep -q '/sleep/3' "$T/seen" 2> /dev/null && break; sleep 0.05; done
grep -q '/sleep/3' "$T/seen" || fail "the slow request did not reach the upstream"
kill -TERM "$GWPID"
for _ in $(seq 1 100); do grep -q 'draining' "$T/gw.err" && break; sleep 0.02; done
expect_rc 1 "/readyz of a draining gateway fails the probe" pqm probe "http://127.0.0.1:$ADMIN/readyz"
assert_contains "with 503 draining" "$OUT" "503 draining"
expect_ok "/healthz of a draining gateway still passes (no restart while it drains)" \
    pqm probe "http://127.0.0.1:$ADMIN/healthz"
wait "$SLOW" || fail "the request in flight did not finish during the drain: $(cat "$T/slow.out")"
wait "$GWPID" || fail "the gateway did not exit 0"
expect_rc 1 "after the exit, /healthz fails" pqm probe "http://127.0.0.1:$ADMIN/healthz"
done_all
