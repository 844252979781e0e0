#!/usr/bin/env bash
# pqmtls pki renew: certificates issued with short lifetimes (--hours 2, --days 1) and long
# ones (--days 365); `pki renew --within 3d` replaces exactly those in the window: new
# serials at the same paths with matching keys and chains, the old files in
# issued/archive, the inventory's superseded/replaced_by links, `pki check` agreeing;
# --dry-run changes nothing; --reuse-key keeps the public key (and renews a sign-csr
# certificate, which is skipped without it); encrypted keys stay encrypted with their
# passphrase; a second run with nothing in the window does nothing; the usage errors.
# Profiles: `pki init --profile cloud-native` gives 24-hour certificates and an 8-hour
# window, iot 10-year intermediates.
# Reload: a running gateway serves the renewed server certificate (its serial, seen by
# s_client) without a restart, on its file watch and on SIGHUP, and a keep-alive
# connection opened before the renewal still gets its answer after it; the tunnel
# presents its renewed client certificate (the serial the upstream sees), on its file
# watch and on SIGHUP.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
require_tool python3 sha256sum

P="$T/pki"
I="$P/issued"
A="$I/archive"
echo "renew-test-passphrase" > "$T/pass"
echo "key passphrase" > "$T/kp"
pqm pki init "$P" --org Example --server-domain example.com --passphrase-file "$T/pass" \
    > /dev/null || fail "pki init"
issue() { pqm pki issue "$@" --pki "$P" --passphrase-file "$T/pass" > /dev/null || fail "pki issue $*"; }
issue server --name api.example.com --ip 127.0.0.1 --hours 2
issue client --name c2h --hours 2
issue client --name c1d --days 1
issue client --name c365 --days 365
issue client --name enc --days 1 --key-passphrase-file "$T/kp"
ossl req -new -newkey ml-dsa-65 -nodes -keyout "$T/dev.key" -out "$T/dev.csr" -subj /CN=dev1 \
    2> /dev/null || fail "openssl req"
pqm pki sign-csr --pki "$P" --csr "$T/dev.csr" --profile client --lifetime 36h \
    --passphrase-file "$T/pass" > /dev/null || fail "pki sign-csr"
DUE=(api.example.com c2h c1d enc)
declare -A OLD
for n in "${DUE[@]}" c365 dev1; do OLD[$n]=$(cert_serial "$I/$n.crt.pem"); done

# state: the files of issued/ with their SHA-256 and the inventory, to compare.
state() { (cd "$I" && find . -type f -print0 | sort -z | xargs -0 sha256sum); pqm pki list --pki "$P" --all --json; }
# pub CERT-OR-KEY: the public key (PEM) of a certificate or a key file
pub_of_cert() { ossl x509 -in "$1" -noout -pubkey; }
pub_of_key() { ossl pkey -in "$1" -pubout ${2:+-passin "file:$2"}; }
json() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))" "$1" "$2"; }

# ---- usage errors ---------------------------------------------------------------------------
expect_rc 2 "--within and --name together are a usage error" pqm pki renew --pki "$P" --within 3d --name c2h
expect_rc 2 "a --within that is not a duration is refused" pqm pki renew --pki "$P" --within 3w
expect_rc 2 "--days and --hours together are refused" pqm pki renew --pki "$P" --days 3 --hours 2
expect_rc 2 "a lifetime under an hour is refused" pqm pki renew --pki "$P" --lifetime 30m
assert_contains "naming the range" "$OUT" "1h to 36500d"
expect_rc 2 "--pki is required" pqm pki renew --within 3d
expect_rc 1 "an unknown --name is refused" pqm pki renew --pki "$P" --name nobody --passphrase-file "$T/pass"
assert_contains "saying no valid certificate has it" "$OUT" "no valid certificate is named 'nobody'"
run env -u PQMTLS_PASSPHRASE "$PQMTLS_BIN" pki renew --pki "$P" --within 3d < /dev/null
[[ $RC -ne 0 ]] || fail "a renewal without the PKI passphrase succeeded"
assert_contains "a renewal needs the PKI passphrase to sign" "$OUT" "encrypted"
expect_ok "pki renew --help" pqm pki renew --help
assert_contains "the help explains the archive" "$OUT" "issued/archive"
assert_contains "the help explains --reuse-key for sign-csr certificates" "$OUT" "sign-csr"

# ---- a dry run --------------------------------------------------------------------------------
before=$(state)
expect_rc 1 "a dry run (no PKI passphrase needed) reports a skipped certificate with exit 1" \
    pqm pki renew --pki "$P" --within 3d --dry-run --key-passphrase-file "$T/kp" --json
DRY="$OUT"
[[ "$(json "$DRY" "sorted(c['name'] for c in d['certificates'] if c['result'] == 'would renew')")" == \
   "['api.example.com', 'c1d', 'c2h', 'enc']" ]] || fail "dry run: would renew the wrong set: $DRY"
pass "the dry run would renew exactly the four certificates in the window"
[[ "$(json "$DRY" "[c['reason'] for c in d['certificates'] if c['result'] == 'skipped']")" == *"--reuse-key"* ]] \
    || fail "dry run: dev1 should be skipped, pointing to --reuse-key: $DRY"
pass "and skips the sign-csr certificate, saying --reuse-key renews it"
[[ "$(state)" == "$before" ]] || fail "the dry run changed files or the inventory"
[[ ! -e "$A" ]] || fail "the dry run made the archive directory"
pass "the dry run changed no file and no inventory row"
assert_not_contains "with nothing interrupted, no warning" "$DRY" "interrupted"
# After an interrupted operation (a pending row, made here by hand on a copy that nothing
# recovers), a dry run, which takes no lock and runs no recovery, says its plan may be short.
cp -r "$P" "$T/interrupted"
python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1])
c.execute("UPDATE certs SET status = ? WHERE name = ? AND status = ?", ("pending", "c1d", "valid")); c.commit()' \
    "$T/interrupted/pki.db"
run pqm pki renew --pki "$T/interrupted" --within 3d --dry-run --key-passphrase-file "$T/kp"
assert_contains "a dry run after an interrupted operation warns that its plan may be short" "$OUT" \
    "1 certificate(s) of an interrupted issuance or renewal are pending; the real run rolls them back first"

echo "not the passphrase" > "$T/wrong"
expect_rc 1 "a wrong PKI passphrase fails the renewal" pqm pki renew --pki "$P" --within 3d \
    --key-passphrase-file "$T/kp" --passphrase-file "$T/wrong"
assert_contains "naming the CA key it cannot decrypt" "$OUT" "int-ca.key.pem: cannot decrypt the key: wrong passphrase"
[[ "$(state)" == "$before" ]] || fail "a renewal refused for its passphrase changed something"
pass "and changes nothing"

# ---- the renewal --------------------------------------------------------------------------
t0=$(date +%s)
expect_rc 1 "pki renew --within 3d renews the window, skipping the sign-csr certificate (exit 1)" \
    pqm pki renew --pki "$P" --within 3d --key-passphrase-file "$T/kp" --passphrase-file "$T/pass" --json
R="$OUT"
[[ "$(json "$R" "sorted(c['name'] for c in d['certificates'] if c['result'] == 'renewed')")" == \
   "['api.example.com', 'c1d', 'c2h', 'enc']" ]] || fail "renewed the wrong set: $R"
[[ "$(json "$R" "(d['renewed'], d['skipped'], d['within_seconds'])")" == "(4, 1, 259200)" ]] \
    || fail "the JSON summary is wrong: $R"
pass "exactly the four certificates expiring within 3 days are renewed"
LIST=$(pqm pki list --pki "$P" --json)
declare -A NEW
for n in "${DUE[@]}"; do
    NEW[$n]=$(json "$R" "[c['new_serial'] for c in d['certificates'] if c['name'] == '$n'][0]")
    [[ "$(cert_serial "$I/$n.crt.pem")" == "${NEW[$n]}" ]] || fail "$n: the file at the old path is not the new certificate"
    [[ "${NEW[$n]}" != "${OLD[$n]}" ]] || fail "$n: same serial"
    kp=""; [[ $n == enc ]] && kp="$T/kp"
    [[ "$(pub_of_cert "$I/$n.crt.pem")" == "$(pub_of_key "$I/$n.key.pem" "$kp")" ]] \
        || fail "$n: the key at the old path does not match the new certificate"
    [[ "$(pub_of_cert "$I/$n.crt.pem")" != "$(pub_of_cert "$A/$n.${OLD[$n]}.crt.pem")" ]] \
        || fail "$n: the new certificate has the old public key"
    [[ "$(cert_fp "$I/$n.chain.pem")" == "$(cert_fp "$I/$n.crt.pem")" ]] || fail "$n: the chain does not start with the new certificate"
    [[ "$(cert_serial "$A/$n.${OLD[$n]}.crt.pem")" == "${OLD[$n]}" ]] || fail "$n: the old certificate is not archived"
    [[ "$(pub_of_cert "$A/$n.${OLD[$n]}.crt.pem")" == "$(pub_of_key "$A/$n.${OLD[$n]}.key.pem" "$kp")" ]] \
        || fail "$n: the archived key does not match the archived certificate"
    [[ -f "$A/$n.${OLD[$n]}.chain.pem" ]] || fail "$n: the old chain is not archived"
    [[ $(file_mode "$I/$n.key.pem") == 600 && $(file_mode "$A/$n.${OLD[$n]}.key.pem") == 600 ]] || fail "$n: key modes"
    python3 - "$LIST" "$n" "${OLD[$n]}" "${NEW[$n]}" <<'PY' || fail "$n: the inventory does not link old and new"
import json, sys
rows = {r["serial"]: r for r in json.loads(sys.argv[1])["certificates"]}
name, old, new = sys.argv[2:5]
assert rows[old]["status"] == "superseded" and rows[old]["replaced_by"] == new, rows[old]
assert rows[old]["cert_path"] == "issued/archive/%s.%s.crt.pem" % (name, old), rows[old]
assert rows[new]["status"] == "valid" and "replaced_by" not in rows[new], rows[new]
assert rows[new]["cert_path"] == "issued/%s.crt.pem" % name, rows[new]
assert rows[new]["subject"] == rows[old]["subject"] and rows[new]["sans"] == rows[old]["sans"], rows[new]
assert rows[new]["key_algorithm"] == rows[old]["key_algorithm"] == "ml-dsa-65", rows[new]
assert rows[new]["profile"] == rows[old]["profile"], rows[new]
PY
done
pass "each renewed certificate: new serial at the old paths, a matching new key, its chain, the old set archived, old superseded by new"
na=$(date -u -d "$(ossl x509 -in "$I/c2h.crt.pem" -noout -enddate | cut -d= -f2)" +%s)
(( na >= t0 + 365 * 86400 - 5 && na <= $(date +%s) + 365 * 86400 + 5 )) || fail "the renewed c2h is not valid for the default 365 days"
pass "a renewal lives the profile's lifetime (365 days by default), not the old one's 2 hours"
head -1 "$I/enc.key.pem" | grep -q 'ENCRYPTED PRIVATE KEY' || fail "enc's renewed key is not encrypted"
pass "an encrypted key is renewed encrypted, with its own passphrase"
for n in c365 dev1; do
    [[ "$(cert_serial "$I/$n.crt.pem")" == "${OLD[$n]}" ]] || fail "$n was renewed"
done
[[ "$(json "$LIST" "[r['status'] for r in d['certificates'] if r['name'] == 'c365']")" == "['valid']" ]] || fail "c365 changed"
pass "the certificate outside the window and the skipped one are untouched"
expect_ok "openssl verifies the renewed server certificate" ossl verify -CAfile "$P/root-ca.crt.pem" \
    -untrusted "$P/server-int-ca.crt.pem" -purpose sslserver "$I/api.example.com.crt.pem"
expect_ok "pqmtls verify accepts a renewed client certificate" pqm verify --ca "$P/client-ca-chain.pem" \
    --purpose client "$I/c1d.chain.pem"
expect_ok "pki check agrees with the files" pqm pki check --pki "$P"
run pqm pki list --pki "$P"
assert_match "pki list shows the superseded certificates" "$OUT" "c2h +client +superseded"
[[ -z "$(find "$I" "$A" -name '.pqmtls-tmp-*')" ]] || fail "temporary files left"
pass "no temporary file is left"

# ---- --reuse-key ----------------------------------------------------------------------------
devpub=$(pub_of_cert "$I/dev1.crt.pem")
expect_ok "--reuse-key renews the sign-csr certificate" pqm pki renew --pki "$P" --within 3d --reuse-key \
    --passphrase-file "$T/pass"
[[ "$(cert_serial "$I/dev1.crt.pem")" != "${OLD[dev1]}" && "$(pub_of_cert "$I/dev1.crt.pem")" == "$devpub" ]] \
    || fail "dev1: not renewed for the same public key"
[[ ! -e "$I/dev1.key.pem" ]] || fail "a key file appeared for the CSR certificate"
pass "for the same public key, with no key file"
keysum=$(sha256sum < "$I/c365.key.pem")
c365pub=$(pub_of_cert "$I/c365.crt.pem")
expect_ok "--name c365 --reuse-key renews a certificate far from expiry" pqm pki renew --pki "$P" \
    --name c365 --reuse-key --passphrase-file "$T/pass"
[[ "$(cert_serial "$I/c365.crt.pem")" != "${OLD[c365]}" ]] || fail "c365 not renewed"
[[ "$(pub_of_cert "$I/c365.crt.pem")" == "$c365pub" && "$(sha256sum < "$I/c365.key.pem")" == "$keysum" ]] \
    || fail "--reuse-key changed the key"
[[ ! -e "$A/c365.${OLD[c365]}.key.pem" ]] || fail "a kept key was archived"
pass "--reuse-key keeps the public key and leaves the key file as it is"

# ---- nothing left in the window ------------------------------------------------------------
before=$(state)
expect_ok "a second renew --within 3d" pqm pki renew --pki "$P" --within 3d --passphrase-file "$T/pass"
assert_contains "finds nothing to renew" "$OUT" "Nothing to renew"
[[ "$(state)" == "$before" ]] || fail "a renewal with nothing in the window changed something"
pass "and changes nothing"
expect_ok "pki check still agrees" pqm pki check --pki "$P"

# ---- profiles ----------------------------------------------------------------------------------
CN="$T/cn"
expect_ok "pki init --profile cloud-native" pqm pki init "$CN" --profile cloud-native --no-passphrase
assert_contains "says the profile's lifetimes" "$OUT" "issued for 24h and renewed when 8h remain"
pqm pki issue client --pki "$CN" --name day > /dev/null
pqm pki issue client --pki "$CN" --name short --hours 2 > /dev/null
nb=$(date -u -d "$(ossl x509 -in "$CN/issued/day.crt.pem" -noout -startdate | cut -d= -f2)" +%s)
na=$(date -u -d "$(ossl x509 -in "$CN/issued/day.crt.pem" -noout -enddate | cut -d= -f2)" +%s)
(( na - nb == 86400 + 60 )) || fail "cloud-native: notAfter - notBefore = $((na - nb)) s, expected 24 h (+60 s of clock allowance)"
pass "pki issue without --days on a cloud-native PKI gives a 24-hour certificate"
expect_ok "renew --dry-run without --within uses the profile's window" pqm pki renew --pki "$CN" --dry-run --json
[[ "$(json "$OUT" "(d['profile'], d['within_seconds'], d['lifetime_seconds'])")" == "('cloud-native', 28800, 86400)" ]] \
    || fail "cloud-native: window and lifetime: $OUT"
[[ "$(json "$OUT" "[c['name'] for c in d['certificates']]")" == "['short']" ]] \
    || fail "cloud-native: the 8-hour window should hold the 2-hour certificate only: $OUT"
pass "the 8-hour window holds the 2-hour certificate and not the 24-hour one"
expect_ok "pki init --profile iot" pqm pki init "$T/iot" --profile iot --no-passphrase
na=$(date -u -d "$(ossl x509 -in "$T/iot/client-int-ca.crt.pem" -noout -enddate | cut -d= -f2)" +%s)
(( na - $(date +%s) > 3640 * 86400 )) || fail "iot: the intermediates should live 10 years"
pqm pki issue client --pki "$T/iot" --name sensor > /dev/null
na=$(date -u -d "$(ossl x509 -in "$T/iot/issued/sensor.crt.pem" -noout -enddate | cut -d= -f2)" +%s)
(( na - $(date +%s) > 1094 * 86400 && na - $(date +%s) <= 1095 * 86400 )) || fail "iot: leaves should live 3 years"
pass "iot: 3-year leaves under 10-year intermediates"
expect_rc 2 "an unknown profile is refused" pqm pki init "$T/bad" --profile banking --no-passphrase
assert_contains "with the list of profiles" "$OUT" "cloud-native, financial, healthcare, iot"

# ---- a gateway and a tunnel pick up renewed files ------------------------------------------------
G="$T/gpki"
pqm pki init "$G" --org Example --server-domain example.com --no-passphrase > /dev/null
pqm pki issue server --pki "$G" --name api.example.com --ip 127.0.0.1 > /dev/null
pqm pki issue client --pki "$G" --name caller > /dev/null
pqm pki issue client --pki "$G" --name legacy > /dev/null
GI="$G/issued"
UP=$(free_port)
python3 "$PQMTLS_SOURCE_DIR/tests/integration/lib/upstream.py" "$UP" "$T/up.jsonl" > "$T/up.out" 2>&1 &
track_pid $!
wait_port "$UP" 10 || fail "the upstream did not start"

start_gateway() { # WATCH-INTERVAL ERR-FILE: sets GWPORT, GWPID
    GWPORT=$(free_port)
    "$PQMTLS_BIN" gateway --listen "127.0.0.1:$GWPORT" --upstream "127.0.0.1:$UP" \
        --cert "$GI/api.example.com.chain.pem" --key "$GI/api.example.com.key.pem" \
        --client-ca "$G/client-ca-chain.pem" --access-log off --workers 1 \
        --watch-interval "$1" 2> "$2" &
    GWPID=$!
    track_pid $GWPID
    wait_port "$GWPORT" 10 "$GWPID" || fail "the gateway did not start: $(cat "$2")"
}
served_serial() { # PORT: the serial of the certificate the gateway serves a new connection
    ossl s_client -connect "127.0.0.1:$1" -servername api.example.com -CAfile "$G/server-ca-chain.pem" \
        -cert "$GI/caller.crt.pem" -key "$GI/caller.key.pem" < /dev/null 2> /dev/null \
        | ossl x509 -noout -serial | sed 's/^serial=//'
}
wait_serial() { # PORT SERIAL: until the gateway serves SERIAL (10 s)
    for _ in $(seq 1 100); do [[ "$(served_serial "$1")" == "$2" ]] && return 0; sleep 0.1; done
    return 1
}
renew_name() { # PKI NAME: renews NAME now; prints the new serial
    pqm pki renew --pki "$1" --name "$2" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["certificates"][0]["new_serial"])'
}

start_gateway 0.2 "$T/gw.err"
GWA=$GWPORT
s0=$(cert_serial "$GI/api.example.com.crt.pem")
[[ "$(served_serial "$GWA")" == "$s0" ]] || fail "the gateway does not serve the issued certificate"
# A keep-alive connection opened before the renewal: s_client reading its requests from a FIFO.
mkfifo "$T/ka.in"
ossl s_client -connect "127.0.0.1:$GWA" -servername api.example.com -CAfile "$G/server-ca-chain.pem" \
    -verify_return_error -cert "$GI/caller.crt.pem" -key "$GI/caller.key.pem" -quiet \
    < "$T/ka.in" > "$T/ka.out" 2> "$T/ka.err" &
KAPID=$!
track_pid $KAPID
exec 7> "$T/ka.in"
printf 'GET /before-renewal HTTP/1.1\r\nHost: api.example.com\r\n\r\n' >&7
for _ in $(seq 1 100); do [[ $(grep -c '^HTTP/1.1 200' "$T/ka.out") -ge 1 ]] && break; sleep 0.05; done
[[ $(grep -c '^HTTP/1.1 200' "$T/ka.out") -eq 1 ]] || fail "keep-alive: no answer to the first request: $(cat "$T/ka.out" "$T/ka.err")"
s1=$(renew_name "$G" api.example.com)
[[ -n "$s1" && "$s1" != "$s0" ]] || fail "the server certificate was not renewed"
wait_serial "$GWA" "$s1" || fail "the watching gateway still serves $(served_serial "$GWA"), not the renewed $s1"
pass "a running gateway serves the renewed server certificate without a restart (file watch)"
assert_contains "and says it reloaded because a file changed" "$(cat "$T/gw.err")" "a file changed"
printf 'GET /after-renewal HTTP/1.1\r\nHost: api.example.com\r\n\r\n' >&7
for _ in $(seq 1 100); do [[ $(grep -c '^HTTP/1.1 200' "$T/ka.out") -ge 2 ]] && break; sleep 0.05; done
[[ $(grep -c '^HTTP/1.1 200' "$T/ka.out") -eq 2 ]] || fail "keep-alive: the connection opened before the renewal got no second answer: $(cat "$T/ka.out" "$T/ka.err")"
grep -q '"path": "/after-renewal"' "$T/up.jsonl" || fail "the upstream did not see the request after the renewal"
pass "a keep-alive connection opened before the renewal is still served after it"
exec 7>&-
kill -0 "$GWPID" || fail "the gateway died"

start_gateway 0 "$T/gw2.err"
GWB=$GWPORT
GWBPID=$GWPID
[[ "$(served_serial "$GWB")" == "$s1" ]] || fail "the second gateway does not serve the current certificate"
s2=$(renew_name "$G" api.example.com)
sleep 0.5
[[ "$(served_serial "$GWB")" == "$s1" ]] || fail "a gateway with --watch-interval 0 reloaded without a signal"
kill -HUP "$GWBPID"
wait_serial "$GWB" "$s2" || fail "after SIGHUP the gateway still serves $(served_serial "$GWB"), not $s2"
pass "a gateway that only reloads on SIGHUP serves the renewed certificate after SIGHUP"
wait_serial "$GWA" "$s2" || fail "the watching gateway did not follow the second renewal"
pass "and the watching one follows the second renewal too"

start_tunnel() { # WATCH-INTERVAL ERR-FILE: sets TUN, TPID
    TUN=$(free_port)
    "$PQMTLS_BIN" tunnel --listen "127.0.0.1:$TUN" --upstream "api.example.com:$GWA" \
        --resolve "api.example.com:$GWA:127.0.0.1" --cert "$GI/legacy.chain.pem" \
        --key "$GI/legacy.key.pem" --ca "$G/server-ca-chain.pem" --watch-interval "$1" 2> "$2" &
    TPID=$!
    track_pid $TPID
    wait_port "$TUN" 10 "$TPID" || fail "the tunnel did not start: $(cat "$2")"
}
seen_serial() { # PORT: a request through the tunnel; the client serial the upstream saw
    local path="/t$RANDOM$RANDOM"
    curl -sS -o /dev/null "http://127.0.0.1:$1$path" || return 1
    python3 - "$T/up.jsonl" "$path" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("path") == sys.argv[2]:
        print(dict((k.lower(), v) for k, v in r["headers"]).get("x-client-cert-serial", ""))
PY
}
wait_seen() { # PORT SERIAL
    for _ in $(seq 1 100); do [[ "$(seen_serial "$1")" == "$2" ]] && return 0; sleep 0.1; done
    return 1
}
require_tool curl
start_tunnel 0.2 "$T/tun.err"
TA=$TUN
l0=$(cert_serial "$GI/legacy.crt.pem")
[[ "$(seen_serial "$TA")" == "$l0" ]] || fail "the upstream does not see the tunnel's certificate"
l1=$(renew_name "$G" legacy)
wait_seen "$TA" "$l1" || fail "the watching tunnel still presents $(seen_serial "$TA"), not the renewed $l1"
pass "a running tunnel presents its renewed client certificate without a restart (file watch)"
assert_contains "and says it reloaded because a file changed" "$(cat "$T/tun.err")" "(a file changed)"
start_tunnel 0 "$T/tun2.err"
[[ "$(seen_serial "$TUN")" == "$l1" ]] || fail "the second tunnel does not present the current certificate"
l2=$(renew_name "$G" legacy)
sleep 0.5
[[ "$(seen_serial "$TUN")" == "$l1" ]] || fail "a tunnel with --watch-interval 0 reloaded without a signal"
kill -HUP "$TPID"
wait_seen "$TUN" "$l2" || fail "after SIGHUP the tunnel still presents $(seen_serial "$TUN"), not $l2"
pass "a tunnel that only reloads on SIGHUP presents the renewed certificate after SIGHUP"
expect_ok "pki check agrees after the renewals under load" pqm pki check --pki "$G"

done_all
