#!/usr/bin/env bash
# The gateway and OCSP, against OpenSSL 3.5's own responder (`openssl ocsp -index`,
# one per intermediate, each signing with its CA's ML-DSA-65 key):
#  - stapling: `openssl s_client -status` gets a successful, ML-DSA-65-signed response
#    for the gateway's certificate, fetched in the background; the responder stopped,
#    the cached response is still stapled;
#  - client_ocsp hard: a good client passes, a client the responder says is revoked is
#    refused (access log reason_code revoked, naming it and the reason); a client never
#    seen while the responder is down is refused (ocsp_unavailable), a client whose good
#    answer is cached still passes; a session resumed after the certificate was revoked
#    is refused too;
#  - client_ocsp soft: with the responder down, or silent past ocsp_timeout, clients pass;
#    with it up, a revoked client's first connection waits for the answer and is refused;
#  - the same with pqmtls's own responder (`pqmtls ocsp serve`, answers signed by the
#    delegated ML-DSA-65 signer of each intermediate): the stapled response verifies,
#    and a `pki revoke` (no CRL, no restart) makes the hard-mode gateway refuse the client
#    once its cached good answer runs out; with 1-minute answers the staple is fetched
#    again half-way (a new producedAt), before the first one expires.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
CURL_BIN="${CURL_BIN:-curl}"
require_tool "$CURL_BIN" python3

PA=$(free_port); PB=$(free_port)
while [[ "$PB" == "$PA" ]]; do PB=$(free_port); done
P=$T/pki
pqm pki init "$P" --no-passphrase --server-domain example.com --ocsp-url "http://127.0.0.1:$PA/" > /dev/null || fail "pki init"
pqm pki issue server --pki "$P" --name api.example.com --ip 127.0.0.1 > /dev/null || fail "issue server"
pqm pki configure --pki "$P" --ocsp-url "http://127.0.0.1:$PB/" > /dev/null || fail "configure"
for n in good bad late resumed; do pqm pki issue client --pki "$P" --name "$n" > /dev/null || fail "issue $n"; done
I=$P/issued
pqm pki revoke --pki "$P" "$(cert_serial "$I/bad.crt.pem")" --reason keyCompromise > /dev/null || fail "revoke bad"

source "$PQMTLS_SOURCE_DIR/tests/integration/lib/ocsp.bash"
responder() { ossl_ocsp_responder "$P" "$1" "$2"; }
responder server "$PA"; SRESP=$RESP_PID
responder client "$PB"; CRESP=$RESP_PID

UP=$(free_port)
python3 "$PQMTLS_SOURCE_DIR/tests/integration/lib/upstream.py" "$UP" "$T/rec.jsonl" > "$T/up.log" 2>&1 &
track_pid $!
wait_port "$UP" || fail "upstream did not start"

# gateway NAME OPTIONS...: port in GW_PORT
gateway() {
    local name="$1"; shift
    GW_PORT=$(free_port)
    "$PQMTLS_BIN" gateway --listen "127.0.0.1:$GW_PORT" --upstream "127.0.0.1:$UP" \
        --cert "$I/api.example.com.chain.pem" --key "$I/api.example.com.key.pem" \
        --client-ca "$P/client-ca-chain.pem" --workers 1 --access-log "$T/$name.log" "$@" \
        > "$T/$name.out" 2> "$T/$name.err" &
    track_pid $!
    wait_port "$GW_PORT" || fail "gateway $name did not start: $(tail -3 "$T/$name.err")"
}
# gc PORT NAME: HTTP status of one request with NAME's certificate in CODE
gc() {
    set +e
    CODE=$(with_ossl35 "$CURL_BIN" -sS --max-time 20 --cacert "$P/server-ca-chain.pem" \
        --cert "$I/$2.crt.pem" --key "$I/$2.key.pem" -o /dev/null -w '%{http_code}' \
        "https://127.0.0.1:$1/x" 2> "$T/curl.err")
    set -e
}
# status PORT: the stapled response as s_client -status prints it, in OUT
status() {
    set +e
    OUT=$(echo | timeout 10 env OPENSSL_CONF=/dev/null LD_LIBRARY_PATH="$OPENSSL_LIBDIR" "$OPENSSL_BIN" s_client \
        -connect "127.0.0.1:$1" -status -CAfile "$P/server-ca-chain.pem" \
        -cert "$I/good.crt.pem" -key "$I/good.key.pem" 2>&1)
    set -e
}

# --- stapling + hard ---------------------------------------------------------------------
ADM=$(free_port)
gateway hard --client-ocsp hard --ocsp-cache-seconds 2 --admin "127.0.0.1:$ADM"
H=$GW_PORT
for _ in $(seq 50); do status "$H"; [[ "$OUT" == *"OCSP Response Status: successful"* ]] && break; sleep 0.2; done
assert_contains "s_client -status: the gateway staples a successful OCSP response" "$OUT" "OCSP Response Status: successful"
assert_contains "for its certificate, good" "$OUT" "Cert Status: good"
assert_contains "signed with ML-DSA-65" "$OUT" "Signature Algorithm: ML-DSA-65"
assert_contains "by the server intermediate" "$OUT" "Responder Id: O = pqmtls, CN = pqmtls Server Intermediate CA"
kill "$SRESP"; wait "$SRESP" 2> /dev/null || true
status "$H"
assert_contains "with the responder stopped, the cached response is still stapled" "$OUT" "Cert Status: good"

gc "$H" good; [[ "$CODE" == 200 ]] || fail "good client (hard): $CODE $(cat "$T/curl.err")"
pass "hard: a client the responder says is good passes"
gc "$H" bad; [[ "$CODE" != 200 ]] || fail "revoked client passed in hard mode"
pass "hard: the client the responder says is revoked is refused"
line=$(grep '"handshake_refused"' "$T/hard.log" | tail -1)
assert_contains "the access log says revoked" "$line" '"reason_code":"revoked"'
assert_contains "names the client" "$line" "CN=bad"
assert_contains "and the OCSP reason" "$line" "OCSP: keyCompromise"
[[ $(grep -c '"path": "/x"' "$T/rec.jsonl") -eq 1 ]] || fail "the upstream saw the revoked client's request"
pass "the revoked client's request never reached the upstream"

# The session of 'resumed', then its revocation (responder restarted with the new state).
sess() {
    set +e
    OUT=$(printf 'GET /%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' "$2" | timeout 10 env OPENSSL_CONF=/dev/null \
        LD_LIBRARY_PATH="$OPENSSL_LIBDIR" "$OPENSSL_BIN" s_client -connect "127.0.0.1:$H" -ign_eof \
        -CAfile "$P/server-ca-chain.pem" -cert "$I/resumed.crt.pem" -key "$I/resumed.key.pem" "$1" "$T/resumed.sess" 2>&1)
    set -e
}
sess -sess_out first
assert_contains "resumed: the first, full handshake is answered" "$OUT" "HTTP/1.1 200"
pqm pki revoke --pki "$P" "$(cert_serial "$I/resumed.crt.pem")" --reason affiliationChanged > /dev/null || fail "revoke resumed"
kill "$CRESP"; wait "$CRESP" 2> /dev/null || true
responder client "$PB"; CRESP=$RESP_PID
sleep 2.5   # the cached good answer (--ocsp-cache-seconds 2) runs out
sess -sess_in second
assert_contains "the second connection resumes the session" "$OUT" "Reused, TLSv1.3"
assert_not_contains "a session resumed after the revocation is not served" "$OUT" "HTTP/1.1 200"
line=$(grep '"handshake_refused"' "$T/hard.log" | tail -1)
assert_contains "and the log says revoked (affiliationChanged)" "$line" "OCSP: affiliationChanged"

kill "$CRESP"; wait "$CRESP" 2> /dev/null || true
gc "$H" late; [[ "$CODE" != 200 ]] || fail "hard: a client never checked passed with the responder down"
pass "hard: a client never checked is refused while the responder is down"
line=$(grep '"handshake_refused"' "$T/hard.log" | tail -1)
assert_contains "as ocsp_unavailable" "$line" '"reason_code":"ocsp_unavailable"'

run curl -sS --max-time 10 "http://127.0.0.1:$ADM/metrics"
assert_contains "metrics: the staple is valid" "$OUT" "pqmtls_ocsp_staple_valid 1"
assert_match "metrics: OCSP queries were made" "$OUT" "pqmtls_ocsp_queries_total [1-9]"
assert_match "metrics: refusals by OCSP are counted as revoked" "$OUT" 'pqmtls_handshakes_total\{result="refused",reason="revoked"\} [1-9]'
assert_match "metrics: and as ocsp_unavailable" "$OUT" 'pqmtls_handshakes_total\{result="refused",reason="ocsp_unavailable"\} [1-9]'

# --- soft --------------------------------------------------------------------------------
gateway soft --client-ocsp soft --ocsp-stapling off
S=$GW_PORT
gc "$S" late; [[ "$CODE" == 200 ]] || fail "soft: with the responder down a client should pass: $CODE"
pass "soft: with the responder down, a client passes"
status "$S"
assert_not_contains "ocsp_stapling off: nothing stapled" "$OUT" "OCSP Response Status: successful"
responder client "$PB"; CRESP=$RESP_PID
gc "$S" bad
[[ "$CODE" != 200 ]] || fail "soft: the revoked client passed its first connection while the responder answers"
pass "soft: the first connection of a revoked client waits for the answer and is refused"
line=$(grep '"handshake_refused"' "$T/soft.log" | tail -1)
assert_contains "as revoked, by OCSP" "$line" "OCSP: keyCompromise"
gc "$S" good; [[ "$CODE" == 200 ]] || fail "soft: good client: $CODE"
pass "soft: the good client still passes"
# A responder that accepts and never answers: soft lets the client through after
# ocsp_timeout (and the connection's own wait), hard refuses it.
SILENT=$(free_port)
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16); held = []
while True: held.append(s.accept()[0])' "$SILENT" & track_pid $!
wait_port "$SILENT" || fail "the silent responder did not start"
gateway silent --client-ocsp soft --ocsp-stapling off --ocsp-responder "http://127.0.0.1:$SILENT/" --ocsp-timeout 1
t0=$(date +%s%N)
gc "$GW_PORT" bad
waited=$(( ($(date +%s%N) - t0) / 1000000 ))
[[ "$CODE" == 200 ]] || fail "soft: with a silent responder a client should pass after ocsp_timeout: $CODE"
(( waited >= 900 )) || fail "soft: the client passed after $waited ms, before the answer could come"
pass "soft: with a silent responder the client waits ocsp_timeout ($waited ms) and passes"
# Ten new certificates at once: the two query threads take two at a time, each query
# timing out after 1 s. A connection's wait has one deadline (ocsp_timeout + 1 = 2 s),
# which the answers for the others, each waking every waiting connection, do not move:
# all ten pass after about 2 s, not after the five rounds of queries (5 s).
for n in $(seq 1 10); do pqm pki issue client --pki "$P" --name "w$n" > /dev/null || fail "issue w$n"; done
t0=$(date +%s%N)
pids=()
for n in $(seq 1 10); do
    with_ossl35 "$CURL_BIN" -sS --max-time 20 --cacert "$P/server-ca-chain.pem" --cert "$I/w$n.crt.pem" \
        --key "$I/w$n.key.pem" -o /dev/null "https://127.0.0.1:$GW_PORT/w$n" 2> /dev/null & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "soft: a client behind the queue of OCSP queries was refused"; done
waited=$(( ($(date +%s%N) - t0) / 1000000 ))
(( waited < 4000 )) || fail "soft: ten clients took $waited ms: a wait's deadline moved with the other answers"
pass "soft: ten new clients behind two query threads all pass by their deadline ($waited ms)"
assert_contains "and the gateway says who passed without an answer" "$(cat "$T/silent.err")" \
    "admitted without an OCSP answer within 2 s (client_ocsp: soft)"

# --- pqmtls ocsp serve --------------------------------------------------------------------
PR=$(free_port)
Q=$T/pki2
pqm pki init "$Q" --no-passphrase --org Example --server-domain example.com --ocsp-url "http://127.0.0.1:$PR/" > /dev/null || fail "pki init (2)"
pqm pki issue server --pki "$Q" --name api.example.com --ip 127.0.0.1 > /dev/null || fail "issue server (2)"
pqm pki issue client --pki "$Q" --name alice > /dev/null || fail "issue alice"
expect_ok "ocsp signers" pqm ocsp signers --pki "$Q"
"$PQMTLS_BIN" ocsp serve --pki "$Q" --listen "127.0.0.1:$PR" --validity 1m > "$T/serve.log" 2>&1 &
track_pid $!
wait_port "$PR" || fail "ocsp serve did not start: $(cat "$T/serve.log")"
GW_PORT=$(free_port)
"$PQMTLS_BIN" gateway --listen "127.0.0.1:$GW_PORT" --upstream "127.0.0.1:$UP" \
    --cert "$Q/issued/api.example.com.chain.pem" --key "$Q/issued/api.example.com.key.pem" \
    --client-ca "$Q/client-ca-chain.pem" --workers 1 --access-log "$T/own.log" \
    --client-ocsp hard --ocsp-cache-seconds 1 > "$T/own.out" 2> "$T/own.err" &
track_pid $!
wait_port "$GW_PORT" || fail "gateway (own responder) did not start: $(tail -3 "$T/own.err")"
for _ in $(seq 50); do
    set +e
    OUT=$(echo | timeout 10 env OPENSSL_CONF=/dev/null LD_LIBRARY_PATH="$OPENSSL_LIBDIR" "$OPENSSL_BIN" s_client \
        -connect "127.0.0.1:$GW_PORT" -status -CAfile "$Q/server-ca-chain.pem" \
        -cert "$Q/issued/alice.crt.pem" -key "$Q/issued/alice.key.pem" 2>&1)
    set -e
    [[ "$OUT" == *"OCSP Response Status: successful"* ]] && break
    sleep 0.2
done
assert_contains "pqmtls ocsp serve: the gateway staples its answer" "$OUT" "OCSP Response Status: successful"
assert_contains "good" "$OUT" "Cert Status: good"
assert_contains "signed with ML-DSA-65" "$OUT" "Signature Algorithm: ML-DSA-65"
assert_contains "by the delegated signer (responder ID by key hash)" "$OUT" "Responder Id: "
first=$(grep -m1 'Produced At:' <<<"$OUT")
[[ -n "$first" ]] || fail "no producedAt in the stapled response"
own() {
    set +e
    CODE=$(with_ossl35 "$CURL_BIN" -sS --max-time 20 --cacert "$Q/server-ca-chain.pem" \
        --cert "$Q/issued/alice.crt.pem" --key "$Q/issued/alice.key.pem" -o /dev/null -w '%{http_code}' \
        "https://127.0.0.1:$GW_PORT/own" 2> "$T/curl.err")
    set -e
}
own
[[ "$CODE" == 200 ]] || fail "alice (good, delegated signer) got $CODE: $(cat "$T/curl.err") $(tail -3 "$T/own.err")"
pass "hard mode with the delegated signer's answers: alice passes"
pqm pki revoke --pki "$Q" "$(cert_serial "$Q/issued/alice.crt.pem")" --reason keyCompromise > /dev/null || fail "revoke alice"
sleep 1.5 # alice's cached good answer runs out; the responder answers from the inventory
own
[[ "$CODE" != 200 ]] || fail "alice passed after pki revoke"
pass "after pki revoke (no CRL, no restart), the gateway refuses alice"
line=$(grep '"handshake_refused"' "$T/own.log" | tail -1)
assert_contains "because the responder says revoked" "$line" "OCSP: keyCompromise"

# Refresh: the 1-minute answer is fetched again half-way through its life.
staple_now() {
    set +e
    OUT=$(echo | timeout 10 env OPENSSL_CONF=/dev/null LD_LIBRARY_PATH="$OPENSSL_LIBDIR" "$OPENSSL_BIN" s_client \
        -connect "127.0.0.1:$GW_PORT" -status -CAfile "$Q/server-ca-chain.pem" 2>&1)
    set -e
}
refreshed=0
for _ in $(seq 90); do
    staple_now
    now=$(grep -m1 'Produced At:' <<<"$OUT" || true)
    if [[ -n "$now" && "$now" != "$first" ]]; then refreshed=1; break; fi
    sleep 0.5
done
[[ $refreshed == 1 ]] || fail "the staple was not refreshed within 45 s (still $first)"
pass "the staple is fetched again before it expires ($first -> $now)"
assert_contains "and the new one is current" "$OUT" "Cert Status: good"

# A refused reload changes nothing, stapling included: with ocsp_stapling on, files whose
# certificate names no responder are refused, and the running one is still stapled.
mkdir -p "$T/on"
cp "$Q/issued/api.example.com.chain.pem" "$Q/issued/api.example.com.key.pem" "$T/on/"
ON_PORT=$(free_port)
"$PQMTLS_BIN" gateway --listen "127.0.0.1:$ON_PORT" --upstream "127.0.0.1:$UP" \
    --cert "$T/on/api.example.com.chain.pem" --key "$T/on/api.example.com.key.pem" \
    --client-ca "$Q/client-ca-chain.pem" --workers 1 --access-log off --ocsp-stapling on \
    --watch-interval 0 > /dev/null 2> "$T/on.err" &
ONPID=$!
track_pid $ONPID
wait_port "$ON_PORT" || fail "gateway (stapling on) did not start: $(tail -3 "$T/on.err")"
on_status() {
    set +e
    OUT=$(echo | timeout 10 env OPENSSL_CONF=/dev/null LD_LIBRARY_PATH="$OPENSSL_LIBDIR" "$OPENSSL_BIN" s_client \
        -connect "127.0.0.1:$ON_PORT" -status -CAfile "$Q/server-ca-chain.pem" 2>&1)
    set -e
}
for _ in $(seq 50); do on_status; [[ "$OUT" == *"OCSP Response Status: successful"* ]] && break; sleep 0.2; done
assert_contains "ocsp_stapling on: stapled" "$OUT" "OCSP Response Status: successful"
N=$T/pki-noocsp
pqm pki init "$N" --no-passphrase --server-domain example.com > /dev/null || fail "pki init (no OCSP URL)"
pqm pki issue server --pki "$N" --name api.example.com --ip 127.0.0.1 --no-key-passphrase > /dev/null || fail "issue (no OCSP URL)"
cp "$N/issued/api.example.com.chain.pem" "$N/issued/api.example.com.key.pem" "$T/on/"
kill -HUP "$ONPID"
for _ in $(seq 50); do grep -q 'refused' "$T/on.err" && break; sleep 0.1; done
assert_contains "a reload to a certificate without a responder is refused under ocsp_stapling on" \
    "$(cat "$T/on.err")" "ocsp_stapling is on, but the certificate names no OCSP responder"
on_status
assert_contains "and the running certificate is still stapled" "$OUT" "OCSP Response Status: successful"
assert_contains "by the responder of the PKI it came from" "$OUT" "Cert Status: good"

done_all
