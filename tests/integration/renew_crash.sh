#!/usr/bin/env bash
# renew_crash: `pqmtls pki renew` killed (SIGKILL) at random points, again and again. After
# each kill, the next command's recovery (`pki check`) leaves at the paths of every
# certificate either its old set or its new set, whole: the certificate is the one the
# inventory holds valid, the key matches it, the chain starts with it. No row is pending,
# one row per name is valid, every superseded row's archived files are there and are its
# own, the archive holds nothing else, no temporary file is left, and no serial is reused.
# (tests/unit/renew_test.c stops a renewal at each of its renames; this one at any point.)
#
# RENEW_CRASH_ITERATIONS (default 40) sets the number of kills; CRASH_SEED replays a run.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
require_tool sqlite3

ITER="${RENEW_CRASH_ITERATIONS:-40}"
SEED="${CRASH_SEED:-$(( RANDOM * 32768 + RANDOM ))}"
RANDOM="$SEED"
info "seed: CRASH_SEED=$SEED, iterations: $ITER"

P="$T/pki"
I="$P/issued"
pqm pki init "$P" --org Example --server-domain example.com --no-passphrase > /dev/null
pqm pki issue server --pki "$P" --name api.example.com --ip 127.0.0.1 > /dev/null
pqm pki issue client --pki "$P" --name c1 > /dev/null
NAMES=(api.example.com c1)
q() { sqlite3 -batch -noheader -separator '|' "$P/pki.db" "$1"; }

# consistent DESC: the checks of the header, after recovery.
consistent() {
    local n fp key row
    [[ $(q "SELECT COUNT(*) FROM certs WHERE status = 'pending'") -eq 0 ]] || fail "$1: a row is still pending"
    for n in "${NAMES[@]}"; do
        row=$(q "SELECT fingerprint, key_path FROM certs WHERE name = '$n' AND status = 'valid'")
        [[ $(wc -l <<<"$row") -eq 1 && -n "$row" ]] || fail "$1: $n has not exactly one valid row: '$row'"
        fp=${row%%|*}; key=${row#*|}
        [[ "$(cert_fp "$I/$n.crt.pem")" == "$fp" ]] || fail "$1: $n.crt.pem is not the valid row's certificate"
        [[ "$(ossl x509 -in "$I/$n.crt.pem" -noout -pubkey)" == "$(ossl pkey -in "$P/$key" -pubout)" ]] \
            || fail "$1: $n: the key at the path does not match the certificate (a mixed set)"
        [[ "$(cert_fp "$I/$n.chain.pem")" == "$fp" ]] || fail "$1: $n.chain.pem does not start with the certificate"
    done
    local serial path want archived=0
    while IFS='|' read -r serial path want; do
        [[ -f "$P/$path" && "$(cert_fp "$P/$path")" == "$want" ]] || fail "$1: superseded $serial: $path missing or not its certificate"
        archived=$((archived + 1))
    done < <(q "SELECT serial, cert_path, fingerprint FROM certs WHERE status = 'superseded'")
    local files
    files=$(find "$I/archive" -name '*.crt.pem' 2>/dev/null | wc -l)
    [[ $files -eq $archived ]] || fail "$1: $files archived certificates for $archived superseded rows"
    [[ -z "$(find "$I" -name '.pqmtls-tmp-*' -print -quit)" ]] || fail "$1: temporary files left"
    [[ $(q "SELECT COUNT(*) FROM staging") -eq 0 ]] || fail "$1: a staging row is left"
}

measure_us() {
    local s e
    s=$(date +%s%N)
    pqm pki renew --pki "$P" --name c1 > /dev/null || fail "calibration renewal failed"
    e=$(date +%s%N)
    echo $(( (e - s) / 1000 ))
}
dur=$(measure_us)
info "an uninterrupted renewal takes ${dur} us"
consistent "after an uninterrupted renewal"
pass "an uninterrupted renewal leaves everything consistent"

killed=0 completed=0
for ((i = 1; i <= ITER; i++)); do
    n=${NAMES[$((i % 2))]}
    args=(--name "$n")
    (( i % 3 == 0 )) && args+=(--reuse-key)
    # Half the kills anywhere in the run, half in its last 40%, where the files are
    # replaced (the start of a process, the lock and the signature come first).
    if (( i % 2 )); then
        d=$(( (RANDOM * 32768 + RANDOM) % (dur * 12 / 10 + 1) ))
    else
        d=$(( dur * 6 / 10 + (RANDOM * 32768 + RANDOM) % (dur * 5 / 10 + 1) ))
    fi
    printf -v delay '%d.%06d' $(( d / 1000000 )) $(( d % 1000000 ))
    "$PQMTLS_BIN" pki renew --pki "$P" "${args[@]}" > /dev/null 2> "$T/renew.err" &
    pid=$!
    sleep "$delay"
    kill -KILL "$pid" 2>/dev/null || true
    set +e; { wait "$pid"; } 2>/dev/null; rc=$?; set -e
    case $rc in
        137) killed=$((killed + 1)) ;;
        0) completed=$((completed + 1)) ;;
        *) fail "iteration $i: pki renew ${args[*]} exited $rc: $(cat "$T/renew.err")" ;;
    esac
    run pqm pki check --pki "$P"
    [[ $RC -eq 0 ]] || fail "iteration $i: pki check after the kill: $OUT"
    consistent "iteration $i (${args[*]}, killed after $delay s)"
done
info "$killed killed, $completed completed, $(q "SELECT COUNT(*) FROM certs WHERE status = 'aborted'") rolled back after their intent was recorded"
(( killed > 0 )) || fail "no renewal was killed mid-way: nothing was exercised"
pass "$ITER renewals, $killed killed by SIGKILL at random points: after each, the old or the new set is whole at the paths and the inventory agrees"
dups=$(q "SELECT serial FROM certs GROUP BY serial HAVING COUNT(*) > 1")
[[ -z "$dups" ]] || fail "a serial is recorded twice: $dups"
pass "no serial is recorded twice ($(q "SELECT COUNT(*) FROM certs WHERE status = 'aborted'") renewals rolled back, their serials retired)"
expect_ok "a renewal after all that succeeds" pqm pki renew --pki "$P" --within 400d
consistent "the final renewal"
pass "and leaves everything consistent"
done_all
