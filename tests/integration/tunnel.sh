#!/usr/bin/env bash
# pqmtls tunnel: a plain TCP port that reaches the gateway over mutual TLS. 100 MB go up and
# 100 MB come down intact (SHA-256), 200 connections held open at once each get their
# answer, the identity reaching the upstream is the tunnel's certificate, a tunnel whose CA
# does not trust the server refuses, SIGHUP reloads and so does a file changed on disk
# (--watch-interval), and the C API example (examples/
# mtls_get.c, built with the project) calls the same API.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
require_tool curl python3 sha256sum

P="$T/pki"
pqm pki init "$P" --org Example --server-domain example.com --no-passphrase > /dev/null
pqm pki issue server --pki "$P" --name api.example.com --ip 127.0.0.1 --no-key-passphrase > /dev/null
pqm pki issue client --pki "$P" --name legacy --no-key-passphrase > /dev/null
I="$P/issued"

# ---- an upstream: /sha answers the SHA-256 of the body it read, /big?n=N sends N bytes ---
UP=$(free_port)
cat > "$T/up.py" <<'EOF'
import hashlib, http.server, os, sys, time, urllib.parse
BLOCK = bytes(range(256)) * 256  # 64 KiB, the pattern the test regenerates
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        n, h = int(self.headers.get("Content-Length") or 0), hashlib.sha256()
        while n > 0:
            chunk = self.rfile.read(min(n, 1 << 20))
            if not chunk:
                break
            h.update(chunk)
            n -= len(chunk)
        self.answer((h.hexdigest() + " " + self.headers.get("X-Client-Cert-Subject", "-") + "\n").encode())
    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        if self.path.startswith("/hold"):
            return self.hold(int(q["n"][0]))
        if "n" not in q:
            return self.answer(("hello " + self.headers.get("X-Client-Cert-Subject", "-") + "\n").encode())
        n = int(q["n"][0])
        self.send_response(200)
        self.send_header("Content-Length", str(n))
        self.end_headers()
        while n > 0:
            self.wfile.write(BLOCK[:min(n, len(BLOCK))])
            n -= min(n, len(BLOCK))
    def hold(self, n):
        # Says the request is here (DIR/held), waits for DIR/go, sends the head on its
        # own, then the body: records of the head's size and then of 16 KiB each.
        open(os.path.join(sys.argv[2], "held"), "w").close()
        while not os.path.exists(os.path.join(sys.argv[2], "go")):
            time.sleep(0.02)
        self.send_response(200)
        self.send_header("Content-Length", str(n))
        self.end_headers()
        time.sleep(0.2)
        self.wfile.write(b"t" * n)
    def answer(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    request_queue_size = 512
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
python3 "$T/up.py" "$UP" "$T" & track_pid $!
wait_port "$UP" 10 || fail "the upstream did not start"

GW=$(free_port)
"$PQMTLS_BIN" gateway --listen "127.0.0.1:$GW" --upstream "127.0.0.1:$UP" \
    --cert "$I/api.example.com.chain.pem" --key "$I/api.example.com.key.pem" \
    --client-ca "$P/client-ca-chain.pem" --access-log off 2> "$T/gw.err" &
GWPID=$!
track_pid $GWPID
wait_port "$GW" 10 "$GWPID" || fail "the gateway did not start: $(cat "$T/gw.err")"

TUN=$(free_port)
start_tunnel() { # PORT CA-FILE ERR-FILE WATCH-INTERVAL: sets TPID
    "$PQMTLS_BIN" tunnel --listen "127.0.0.1:$1" --upstream "api.example.com:$GW" \
        --resolve "api.example.com:$GW:127.0.0.1" --cert "$I/legacy.crt.pem" \
        --key "$I/legacy.key.pem" --ca "$2" --watch-interval "$4" 2> "$3" &
    TPID=$!
    track_pid $TPID
    wait_port "$1" 10 "$TPID" || fail "the tunnel did not start: $(cat "$3")"
}
cp "$P/server-ca-chain.pem" "$T/ca.pem"
# SIGHUP only for this one (--watch-interval 0), so that each reload below is the
# signal's; a second tunnel further down watches its files.
start_tunnel "$TUN" "$T/ca.pem" "$T/tunnel.err" 0

# ---- the identity, both directions ------------------------------------------------------
run curl -sS "http://127.0.0.1:$TUN/hello"
[[ $RC -eq 0 ]] || fail "a request through the tunnel failed: $OUT"
assert_contains "the upstream sees the tunnel's certificate as the client" "$OUT" "hello CN=legacy,O=Example"

head -c $((100 * 1024 * 1024)) /dev/urandom > "$T/up.bin"
want=$(sha256sum "$T/up.bin" | cut -d' ' -f1)
run curl -sS -H 'Expect:' --data-binary "@$T/up.bin" "http://127.0.0.1:$TUN/sha"
[[ $RC -eq 0 ]] || fail "100 MB up through the tunnel: curl failed: $OUT"
assert_contains "100 MB go up through the tunnel intact (SHA-256)" "$OUT" "$want CN=legacy"
rm -f "$T/up.bin"

python3 -c 'import sys; b = bytes(range(256)) * 256; n = 100 * 1024 * 1024
w = sys.stdout.buffer
while n > 0: w.write(b[:min(n, len(b))]); n -= min(n, len(b))' | sha256sum | cut -d' ' -f1 > "$T/want.down"
curl -sS "http://127.0.0.1:$TUN/big?n=$((100 * 1024 * 1024))" | sha256sum | cut -d' ' -f1 > "$T/got.down"
[[ "$(cat "$T/got.down")" == "$(cat "$T/want.down")" ]] \
    || fail "100 MB down through the tunnel: SHA-256 $(cat "$T/got.down"), expected $(cat "$T/want.down")"
pass "100 MB come down through the tunnel intact (SHA-256)"

# A tail that waits inside TLS: while the tunnel is stopped, the head (its own record) and
# 64 KiB of body arrive; resumed, it fills its 64 KiB buffer, so the last record is read
# only in part and the socket has nothing more to report. The rest must still come.
rm -f "$T/held" "$T/go"
curl -sS -m 10 -o "$T/held.body" "http://127.0.0.1:$TUN/hold?n=65536" 2> "$T/held.err" &
HCURL=$!
for _ in $(seq 1 200); do [[ -e "$T/held" ]] && break; sleep 0.02; done
[[ -e "$T/held" ]] || fail "the held request did not reach the upstream"
kill -STOP "$TPID"
touch "$T/go"
sleep 1
kill -CONT "$TPID"
wait "$HCURL" || fail "a tail left inside TLS was not delivered: $(cat "$T/held.err")"
[[ $(stat -c %s "$T/held.body") -eq 65536 ]] || fail "the held answer came short: $(stat -c %s "$T/held.body") bytes"
pass "the part of a record left inside TLS reaches the client (no wait for the socket)"

# ---- 200 connections open at once ---------------------------------------------------------
cat > "$T/many.py" <<'EOF'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    socks.append(s)
for i, s in enumerate(socks):  # every connection is open before any request is answered
    s.sendall(b"GET /c%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % i)
ok = 0
for s in socks:
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    ok += data.startswith(b"HTTP/1.1 200") and b"hello CN=legacy" in data
    s.close()
print(ok)
EOF
run python3 "$T/many.py" "$TUN" 200
[[ $RC -eq 0 && "$OUT" == 200 ]] || fail "200 concurrent connections: $OUT answered of 200"
pass "200 connections held open at once through one tunnel thread: every one answered"
[[ $(ps -o nlwp= -p "$TPID" | tr -d ' ') -eq 1 ]] || fail "the tunnel runs more than one thread"
pass "the tunnel is a single thread"

# ---- a CA that does not trust the server: refused, and said -------------------------------
cp "$P/client-ca-chain.pem" "$T/ca.pem"
kill -HUP "$TPID"
for _ in $(seq 1 50); do grep -q reloaded "$T/tunnel.err" && break; sleep 0.05; done
assert_contains "SIGHUP reloads the tunnel's files" "$(cat "$T/tunnel.err")" "reloaded"
run curl -sS "http://127.0.0.1:$TUN/hello"
[[ $RC -ne 0 ]] || fail "with the client CA as trust, the tunnel still reached the server: $OUT"
assert_contains "the tunnel says why it refused the server" "$(cat "$T/tunnel.err")" "not trusted"
cp "$P/server-ca-chain.pem" "$T/ca.pem"
kill -HUP "$TPID"
for _ in $(seq 1 50); do [[ $(grep -c reloaded "$T/tunnel.err") -ge 2 ]] && break; sleep 0.05; done
run curl -sS "http://127.0.0.1:$TUN/hello"
assert_contains "after another SIGHUP with the right CA, the tunnel works again" "$OUT" "hello CN=legacy"

# ---- the file watch: a changed file reloads without a signal -----------------------------
TUN2=$(free_port)
cp "$P/server-ca-chain.pem" "$T/ca2.pem"
T1PID=$TPID
start_tunnel "$TUN2" "$T/ca2.pem" "$T/tunnel2.err" 0.2
T2PID=$TPID
TPID=$T1PID
cp "$P/client-ca-chain.pem" "$T/ca2.new" && mv "$T/ca2.new" "$T/ca2.pem"
for _ in $(seq 1 100); do grep -q 'a file changed' "$T/tunnel2.err" && break; sleep 0.05; done
assert_contains "a CA file replaced on disk reloads the tunnel without a signal" \
    "$(cat "$T/tunnel2.err")" "reloaded the certificate, key, CA and CRL files (a file changed)"
run curl -sS "http://127.0.0.1:$TUN2/hello"
[[ $RC -ne 0 ]] || fail "after the watched CA file changed to the client CA, the tunnel still reached the server"
pass "and the reloaded CA is the one in force"
kill -TERM "$T2PID"

# ---- the C API example ----------------------------------------------------------------
EX="$(dirname "$PQMTLS_BIN")/example_mtls_get"
[[ -x "$EX" ]] || fail "examples/mtls_get.c was not built ($EX)"
[[ $(wc -l < "$PQMTLS_SOURCE_DIR/examples/mtls_get.c") -lt 40 ]] || fail "the example is 40 lines or more"
run "$EX" api.example.com "$GW" /hello "$I/legacy.crt.pem" "$I/legacy.key.pem" "$P/server-ca-chain.pem" 127.0.0.1
[[ $RC -eq 0 ]] || fail "the example failed: $OUT"
assert_contains "the C example calls the mTLS API and prints its answer" "$OUT" "hello CN=legacy"
assert_contains "the C example negotiated X25519MLKEM768" "$OUT" "X25519MLKEM768"
run "$EX" api.example.com "$GW" /hello "$I/legacy.crt.pem" "$I/legacy.key.pem" "$P/client-ca-chain.pem" 127.0.0.1
[[ $RC -eq 1 ]] || fail "the example with the wrong CA: exit $RC, expected 1"
assert_contains "the C API says why the server is refused" "$OUT" "not trusted"

kill -TERM "$TPID"
wait "$TPID" || fail "the tunnel did not exit 0 on SIGTERM"
pass "SIGTERM stops the tunnel"
done_all
