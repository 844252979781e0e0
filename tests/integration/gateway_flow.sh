#!/usr/bin/env bash
# The gateway's flow control under concurrency, one worker: large responses to several
# clients at once (one of them rate-limited) arrive intact; a client that stops reading
# holds only its own connection (the others' downloads finish meanwhile, and the
# gateway's memory stays bounded); large uploads from several clients at once reach the
# upstream intact; then the stopped client reads again and gets every byte. Each
# transfer has a deadline, so a stall (bytes left in a buffer that no event reports)
# fails the test instead of hanging it. The sanitizer build runs the gateway with one
# pump round per turn, so there every transfer goes through the deferral path too.
#
# As root, the test runs in a network namespace of its own whose TCP buffers are small
# (64 KiB at most): the kernel then holds little of a transfer, and the gateway's own
# buffering and flow control carry it (a response's last records still waiting for the
# socket when the gateway would close, for one).
if [[ -z "${PQM_FLOW_NETNS:-}" && $(id -u) -eq 0 ]] && unshare -n true 2> /dev/null; then
    exec unshare -n env PQM_FLOW_NETNS=1 bash -c 'ip link set lo up &&
        sysctl -qw net.ipv4.tcp_wmem="4096 16384 65536" net.ipv4.tcp_rmem="4096 16384 65536" &&
        exec bash "$0" "$@"' "$0" "$@"
fi
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
CURL_BIN="${CURL_BIN:-curl}"
require_tool "$CURL_BIN" python3 sha256sum
if [[ -n "${PQM_FLOW_NETNS:-}" ]]; then
    info "in a network namespace with TCP buffers of 64 KiB at most"
else
    info "not root (or no unshare): the kernel's TCP buffers are the host's, larger than the gateway's"
fi

P=$T/pki
pqm pki init "$P" --no-passphrase --server-domain example.com > /dev/null || fail "pki init"
pqm pki issue server --pki "$P" --name api.example.com --ip 127.0.0.1 --no-key-passphrase > /dev/null || fail "issue server"
pqm pki issue client --pki "$P" --name c1 --no-key-passphrase > /dev/null || fail "issue c1"
I=$P/issued

UP=$(free_port)
python3 "$PQMTLS_SOURCE_DIR/tests/integration/lib/upstream.py" "$UP" "$T/rec.jsonl" > "$T/up.log" 2>&1 &
track_pid $!
wait_port "$UP" 10 || fail "the upstream did not start"
GW=$(free_port)
"$PQMTLS_BIN" gateway --listen "127.0.0.1:$GW" --upstream "127.0.0.1:$UP" \
    --cert "$I/api.example.com.chain.pem" --key "$I/api.example.com.key.pem" \
    --client-ca "$P/client-ca-chain.pem" --workers 1 --access-log off 2> "$T/gw.err" &
GWPID=$!
track_pid $GWPID
wait_port "$GW" 10 "$GWPID" || fail "the gateway did not start: $(cat "$T/gw.err")"

# get N OUT [curl options]: GET /bytes/N through the gateway into OUT, 60 s at most.
get() {
    local n=$1 out=$2; shift 2
    with_ossl35 "$CURL_BIN" -sS --max-time 60 --cacert "$P/server-ca-chain.pem" \
        --cert "$I/c1.crt.pem" --key "$I/c1.key.pem" --resolve "api.example.com:$GW:127.0.0.1" \
        "$@" -o "$out" "https://api.example.com:$GW/bytes/$n"
}
pattern_sum() { # N: SHA-256 of what /bytes/N answers
    python3 -c 'import sys; P = bytes(range(256)) * 16; n = int(sys.argv[1])
w = sys.stdout.buffer
while n > 0: w.write(P[:min(n, len(P))]); n -= min(n, len(P))' "$1" | sha256sum | cut -d' ' -f1
}
N=$((30 * 1024 * 1024 + 12345)) # not a multiple of any buffer or record size
WANT=$(pattern_sum "$N")

# ---- concurrent downloads, one rate-limited ------------------------------------------------
pids=()
for i in 1 2 3; do get "$N" "$T/down$i" & pids+=($!); done
get "$N" "$T/down4" --limit-rate 8M & pids+=($!)
for i in "${!pids[@]}"; do wait "${pids[$i]}" || fail "download $((i + 1)) failed or took over 60 s"; done
for i in 1 2 3 4; do
    [[ "$(sha256sum < "$T/down$i" | cut -d' ' -f1)" == "$WANT" ]] \
        || fail "download $i is not the upstream's bytes ($(stat -c %s "$T/down$i") of $N)"
done
pass "4 concurrent 30 MB downloads through one worker (one at 8 MB/s) arrive intact"

# ---- Connection: close to a slow reader ------------------------------------------------------
# The gateway closes once the response has left: the records still waiting for the
# socket (sealed, not yet sent) are part of it. 30 MB at 12 MB/s: more than the kernel's
# socket buffers hold, so the gateway's own output waits for the socket at the end.
cpids=()
for i in 1 2; do get "$N" "$T/close$i" --limit-rate 12M -H 'Connection: close' & cpids+=($!); done
for p in "${cpids[@]}"; do wait "$p" || true; done
for i in 1 2; do
    [[ "$(sha256sum < "$T/close$i" | cut -d' ' -f1)" == "$WANT" ]] \
        || fail "Connection: close at 12 MB/s: download $i lost its end ($(stat -c %s "$T/close$i") of $N bytes)"
done
pass "Connection: close to a slow reader: every byte arrives before the gateway closes"

# ---- a client that stops reading -------------------------------------------------------------
# curl writes into a pipe nobody reads until $T/go exists: it stops reading the socket,
# the gateway's buffers for it fill, and reading from its upstream stops.
rm -f "$T/go"
(get "$N" - | python3 -c 'import os, sys, time
while not os.path.exists(sys.argv[1]): time.sleep(0.05)
d = sys.stdin.buffer.read(); open(sys.argv[2], "wb").write(d)' "$T/go" "$T/stalled") &
STALLED=$!
track_pid $STALLED
sleep 2
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$GWPID/status"; }
before=$(rss_kib)
t0=$(date +%s)
get "$N" "$T/during" || fail "a download while another client stopped reading failed or took over 60 s"
[[ "$(sha256sum < "$T/during" | cut -d' ' -f1)" == "$WANT" ]] || fail "the download beside the stopped client is not intact"
pass "a client that stops reading does not hold up another's 30 MB download ($(( $(date +%s) - t0 )) s)"
after=$(rss_kib)
if [[ "$(ldd "$PQMTLS_BIN")" == *libasan* ]]; then
    info "a sanitizer build keeps freed memory in quarantine: the RSS bound is for the plain build"
else
    (( after - before < 16384 )) || fail "the gateway's RSS grew by $(( after - before )) KiB while a client did not read"
    pass "the stopped client costs bounded memory (RSS $before -> $after KiB): the gateway stops reading its upstream"
fi

# ---- concurrent uploads -----------------------------------------------------------------------
U=$((20 * 1024 * 1024 + 777))
head -c "$U" /dev/urandom > "$T/up.bin"
USUM=$(sha256sum < "$T/up.bin" | cut -d' ' -f1)
pids=()
for i in 1 2 3; do
    with_ossl35 "$CURL_BIN" -sS --max-time 60 --cacert "$P/server-ca-chain.pem" \
        --cert "$I/c1.crt.pem" --key "$I/c1.key.pem" --resolve "api.example.com:$GW:127.0.0.1" \
        -H 'Content-Type: application/octet-stream' --data-binary "@$T/up.bin" \
        -o "$T/upans$i" "https://api.example.com:$GW/upload$i" & pids+=($!)
done
for i in "${!pids[@]}"; do wait "${pids[$i]}" || fail "upload $((i + 1)) failed or took over 60 s"; done
for i in 1 2 3; do
    line=$(grep "\"path\": \"/upload$i\"" "$T/rec.jsonl" | tail -1)
    [[ "$line" == *"\"body_len\": $U"* && "$line" == *"\"body_sha256\": \"$USUM\""* ]] \
        || fail "upload $i did not reach the upstream intact: ${line:0:300}"
done
pass "3 concurrent 20 MB uploads reach the upstream intact"

# ---- the stopped client reads again --------------------------------------------------------
touch "$T/go"
wait "$STALLED" || fail "the client that stopped reading did not get its answer once it read again"
[[ "$(sha256sum < "$T/stalled" | cut -d' ' -f1)" == "$WANT" ]] \
    || fail "the stopped client's download is not intact ($(stat -c %s "$T/stalled") of $N)"
pass "the client that stopped reading gets every byte once it reads again"
kill -0 "$GWPID" || fail "the gateway died"

# ---- SIGTERM during a slow download: it is drained, not cut ------------------------------------
get "$N" "$T/drained" --limit-rate 12M &
DPID=$!
sleep 1
kill -TERM "$GWPID"
wait "$DPID" || fail "the download in flight at SIGTERM failed ($(stat -c %s "$T/drained") of $N bytes)"
[[ "$(sha256sum < "$T/drained" | cut -d' ' -f1)" == "$WANT" ]] \
    || fail "SIGTERM cut the download in flight ($(stat -c %s "$T/drained") of $N bytes)"
wait "$GWPID" || fail "the gateway did not exit 0 after draining"
pass "SIGTERM during a slow 30 MB download: the download completes, then the gateway exits 0"
done_all
