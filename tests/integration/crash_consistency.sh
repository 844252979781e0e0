#!/usr/bin/env bash
# crash_consistency: killing `pqmtls pki issue` at random points (SIGKILL, repeatedly)
# never leaves the inventory inconsistent with the files, and never reuses a serial.
#
# Run by hand from the repository root:
#   PQMTLS_BIN=build/pqmtls OPENSSL_BIN=/var/cache/pqmtls/openssl-3.5.7/bin/openssl \
#   OPENSSL_LIBDIR=/var/cache/pqmtls/openssl-3.5.7/lib bash tests/integration/crash_consistency.sh
# (all three default to those values when unset; CRASH_ITERATIONS (default 60) sets the
#  number of kills; CRASH_SEED seeds $RANDOM to replay a run; PQMTLS_KEEP_TMP=1 keeps the
#  temp dir on failure)
#
# Asserts:
#  - every `pki issue` that was not killed succeeded (a kill never wedges the next run);
#  - after the loop, `pki check` exits 0 (it finishes recovery), and again 0 when re-run;
#  - independently, with the sqlite3 CLI on DIR/pki.db: every 'valid' row's certificate file
#    exists and its SHA-256 fingerprint and serial match the row; its key and chain files exist,
#    the key matches the certificate; every *.crt.pem / *.key.pem / *.chain.pem in DIR/issued
#    belongs to a valid row; no serial appears twice in the table; no name has two valid rows;
#  - no serial was ever used for two different certificates: every certificate seen on disk
#    after any kill (including temp files) and every CA certificate is keyed by serial;
#  - no leftover temp files (names starting with '.') in DIR/issued;
#  - names whose issue was killed before it committed can be issued afterwards.

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
require_tool sqlite3 stat

ITER="${CRASH_ITERATIONS:-60}"
SEED="${CRASH_SEED:-$(( RANDOM * 32768 + RANDOM ))}"
RANDOM="$SEED"
info "seed: CRASH_SEED=$SEED (set it to replay the same kill delays), iterations: $ITER"

P="$T/pki"
expect_ok "pki init --no-passphrase" pqm pki init "$P" --org Example --server-domain example.com \
    --spiffe-trust-domain cluster.local --no-passphrase
DB="$P/pki.db"
[[ -f "$DB" ]] || fail "no inventory database at $DB"
I="$P/issued"

# ---------------------------------------------------------------- serials seen on disk
# $T/seen: "SERIAL FINGERPRINT FILE" for every certificate ever seen on disk.
SEEN="$T/seen"; : > "$SEEN"
declare -A _seen_key=()
norm_serial() { local s="${1^^}"; s="${s#"${s%%[!0]*}"}"; echo "${s:-0}"; }
record_cert() { # FILE [LABEL]
    local f="$1" s fp
    s="$(ossl x509 -in "$f" -noout -serial 2>/dev/null)" || return 0   # partial / not a cert
    fp="$(cert_fp "$f" 2>/dev/null)" || return 0
    echo "$(norm_serial "${s#serial=}") $fp ${2:-${f#"$P"/}}" >> "$SEEN"
}
snapshot() { # every file in issued/ (dot files too) not seen before with the same inode/size/mtime
    local line key f
    [[ -d "$I" ]] || return 0
    while IFS= read -r line; do
        f="${line%%|*}"; key="$line"
        [[ -n "${_seen_key[$key]:-}" ]] && continue
        _seen_key[$key]=1
        case "$f" in *.key.pem|*.db|*.db-*) continue ;; esac
        record_cert "$f"
    done < <(find "$I" -maxdepth 1 -type f -printf '%p|%i|%s|%T@\n')
}
for c in $(split_pem "$(pki_file "$P" server-ca-chain.pem)" "$T/sc") $(split_pem "$(pki_file "$P" client-ca-chain.pem)" "$T/cc"); do
    record_cert "$c" "CA:$(cert_subject "$c")"
done
check_serials_unique() { # DESC
    local dup
    dup="$(sort -u "$SEEN" | awk '{print $1, $2}' | sort -u | awk '{c[$1]++; f[$1]=f[$1] " " $2} END {for (s in c) if (c[s] > 1) print s ":" f[s]}')"
    [[ -z "$dup" ]] || fail "$1: serial reused for different certificates: $dup :: $(grep -F "${dup%%:*}" "$SEEN")"
    pass "$1: no serial used for two different certificates ($(awk '{print $2}' "$SEEN" | sort -u | wc -l) distinct certificates seen on disk)"
}

# ---------------------------------------------------------------- the kill loop
# Calibrate the kill window on this machine: a delay drawn uniformly from 0 to 1.2x the time
# an uninterrupted run takes (single and --count 5), so that most runs die mid-way at a
# random point (a fixed 0-150 ms window would miss most of a ~10 ms run).
measure_us() { # NAME [ARGS...]
    local s e
    s=$(date +%s%N)
    run pqm pki issue client --pki "$P" --name "$1" "${@:2}" --no-key-passphrase
    e=$(date +%s%N)
    [[ $RC -eq 0 ]] || fail "calibration issue --name $1 ${*:2} failed (exit $RC): $OUT"
    echo $(( (e - s) / 1000 ))
}
dur1=$(measure_us calib)
dur5=$(measure_us calibb --count 5)
info "uninterrupted run: ${dur1} us single, ${dur5} us with --count 5"
pass "uninterrupted pki issue (single and --count 5) succeeds"
snapshot
killed=0 completed=0
declare -a killed_names=() killed_counts=()
t0=$SECONDS
for ((i = 1; i <= ITER; i++)); do
    if (( i % 4 == 0 )); then name="b$i"; cnt=5; args=(--count 5); else name="c$i"; cnt=1; args=(); fi
    max=$(( (cnt == 1 ? dur1 : dur5) * 12 / 10 + 1 ))
    d=$(( (RANDOM * 32768 + RANDOM) % max ))
    printf -v delay '%d.%06d' $(( d / 1000000 )) $(( d % 1000000 ))
    "$PQMTLS_BIN" pki issue client --pki "$P" --name "$name" "${args[@]}" --no-key-passphrase \
        > "$T/issue.out" 2> "$T/issue.err" &
    pid=$!
    sleep "$delay"
    kill -KILL "$pid" 2>/dev/null || true
    set +e; { wait "$pid"; } 2>/dev/null; rc=$?; set -e
    case $rc in
        137) killed=$((killed + 1)); killed_names+=("$name"); killed_counts+=("$cnt") ;;
        0)   completed=$((completed + 1)) ;;
        *)   fail "iteration $i: pki issue --name $name ${args[*]} (after earlier kills) exited $rc, expected 0 or SIGKILL: $(cat "$T/issue.err")" ;;
    esac
    snapshot
done
info "loop: $killed killed, $completed completed, $((SECONDS - t0)) s"
(( killed > 0 )) || fail "no run was killed mid-way: the test did not exercise anything (runs too fast?)"
pass "$ITER runs of pki issue, $killed killed by SIGKILL mid-way, every other one succeeded"
check_serials_unique "during the kill loop"

# ---------------------------------------------------------------- recovery
before_pending=$(sqlite3 -batch -noheader "$DB" "SELECT COUNT(*) FROM certs WHERE status = 'pending';" 2>/dev/null || echo '?')
before_dot=$(find "$I" -maxdepth 1 -name '.*' ! -name . | wc -l)
info "before recovery: $before_pending pending row(s), $before_dot temp file(s) in issued/"
expect_rc 0 "pki check exits 0 after the kills (finishes recovery)" pqm pki check --pki "$P"
expect_rc 0 "pki check exits 0 when run again" pqm pki check --pki "$P"
snapshot

# ---------------------------------------------------------------- independent inventory check
schema="$(sqlite3 "$DB" .schema)"
for col in serial name status cert_path fingerprint; do
    grep -qiE "\b$col\b" <<<"$schema" || fail "inventory schema lacks column '$col': $schema"
done
grep -qiE 'create table[^(]*\bcerts\b' <<<"$schema" || fail "inventory has no table certs: $schema"
has_key_path=0; grep -qiE '\bkey_path\b' <<<"$schema" && has_key_path=1
q() { sqlite3 -batch -noheader -separator '|' "$DB" "$1"; }

integrity="$(q 'PRAGMA integrity_check;')"
[[ "$integrity" == ok ]] || fail "sqlite integrity_check: $integrity"
pass "sqlite integrity_check ok"

dups="$(q "SELECT serial, COUNT(*) FROM certs GROUP BY upper(ltrim(serial, '0')) HAVING COUNT(*) > 1;")"
[[ -z "$dups" ]] || fail "serial appears more than once in the certs table: $dups"
pass "no serial appears twice in the certs table ($(q 'SELECT COUNT(*) FROM certs;') rows, all statuses)"
pend="$(q "SELECT COUNT(*) FROM certs WHERE status = 'pending';" 2>/dev/null || echo 0)"
[[ "$pend" -eq 0 ]] || fail "$pend row(s) still 'pending' after pki check finished recovery: $(q "SELECT serial, name FROM certs WHERE status = 'pending';")"
pass "no row left 'pending' after recovery"
dupn="$(q "SELECT name, COUNT(*) FROM certs WHERE status = 'valid' GROUP BY name HAVING COUNT(*) > 1;")"
[[ -z "$dupn" ]] || fail "a name has more than one valid row: $dupn"
pass "no name has two valid rows"

nvalid=$(q "SELECT COUNT(*) FROM certs WHERE status = 'valid';")
(( nvalid > 0 )) || fail "no valid row in the inventory after $completed completed runs"
# rows of the kind 'leaf' (if the table also records CAs, cert_path may point outside issued/)
declare -A valid_names=()
while IFS='|' read -r serial name cert_path fp key_path; do
    f="$P/$cert_path"
    [[ "$cert_path" == /* ]] && f="$cert_path"
    [[ -f "$f" ]] || fail "valid row $name (serial $serial): certificate file $cert_path missing"
    got="$(cert_fp "$f")"
    [[ "$got" == "${fp,,}" ]] || fail "valid row $name: fingerprint $fp in the table, $got on disk ($cert_path)"
    s="$(cert_serial "$f")"
    [[ "$(norm_serial "$s")" == "$(norm_serial "$serial")" ]] || fail "valid row $name: serial $serial in the table, $s on disk"
    case "$f" in
    "$I"/*)
        valid_names["$(basename "$f" .crt.pem)"]=1
        base="${f%.crt.pem}"
        if [[ $has_key_path -eq 1 && -n "$key_path" ]]; then
            k="$P/$key_path"; [[ "$key_path" == /* ]] && k="$key_path"
        else
            k="$base.key.pem"
        fi
        [[ -f "$k" ]] || fail "valid row $name: key file ${k#"$P"/} missing"
        [[ -f "$base.chain.pem" ]] || fail "valid row $name: chain file ${base#"$P"/}.chain.pem missing"
        [[ "$(ossl pkey -in "$k" -pubout 2>/dev/null)" == "$(ossl x509 -in "$f" -noout -pubkey)" ]] \
            || fail "valid row $name: key ${k#"$P"/} does not match the certificate"
        [[ "$(cert_fp "$base.chain.pem")" == "$got" ]] || fail "valid row $name: chain file does not start with the certificate"
        ;;
    esac
done < <(q "SELECT serial, name, cert_path, fingerprint, $([[ $has_key_path -eq 1 ]] && echo key_path || echo "''") FROM certs WHERE status = 'valid';")
pass "every valid row ($nvalid): certificate present, fingerprint and serial match, key and chain present, key matches"

shopt -s nullglob
for f in "$I"/*.crt.pem "$I"/*.key.pem "$I"/*.chain.pem; do
    n="$(basename "$f")"; n="${n%.crt.pem}"; n="${n%.key.pem}"; n="${n%.chain.pem}"
    [[ -n "${valid_names[$n]:-}" ]] || fail "file ${f#"$P"/} in issued/ has no valid row in the inventory"
done
pass "every crt/key/chain file in issued/ belongs to a valid row"
leftover="$(find "$I" -maxdepth 1 -name '.*' ! -name . -printf '%f ')"
[[ -z "$leftover" ]] || fail "leftover temp files in issued/: $leftover"
pass "no leftover temp files (dot files) in issued/"
leftover="$(find "$P" -mindepth 1 -maxdepth 1 -name '.*' ! -name .lock -printf '%f ')"   # .lock: the persistent flock file
[[ -z "$leftover" ]] || fail "leftover temp files in the PKI directory: $leftover"
pass "no leftover temp files (dot files other than the .lock file) in the PKI directory"
others="$(find "$I" -mindepth 1 -maxdepth 1 ! -name '*.crt.pem' ! -name '*.key.pem' ! -name '*.chain.pem' -printf '%f ')"
[[ -z "$others" ]] || fail "unexpected files in issued/: $others"
pass "nothing else in issued/"
shopt -u nullglob
check_serials_unique "after recovery"

# ---------------------------------------------------------------- killed names are not stuck
retried=0
for idx in "${!killed_names[@]}"; do
    name="${killed_names[$idx]}"; cnt="${killed_counts[$idx]}"
    if [[ $cnt -eq 1 ]]; then
        v=$(q "SELECT COUNT(*) FROM certs WHERE status = 'valid' AND name = '$name';")
        args=()
    else
        v=$(q "SELECT COUNT(*) FROM certs WHERE status = 'valid' AND name LIKE '$name-%';")
        args=(--count "$cnt")
    fi
    [[ "$v" -eq 0 ]] || continue      # killed after it committed: the name is taken, rightly
    expect_ok "re-issue killed name $name${args[*]:+ ${args[*]}}" \
        pqm pki issue client --pki "$P" --name "$name" "${args[@]}" --no-key-passphrase
    retried=$((retried + 1))
    (( retried >= 6 )) && break
done
(( retried > 0 )) || info "every killed run had already committed: no name to retry (rare; re-run to exercise)"
snapshot
expect_rc 0 "pki check exits 0 after the re-issues" pqm pki check --pki "$P"
dups="$(q "SELECT serial FROM certs GROUP BY upper(ltrim(serial, '0')) HAVING COUNT(*) > 1;")"
[[ -z "$dups" ]] || fail "serial appears more than once in the certs table after re-issue: $dups"
check_serials_unique "after the re-issues"

# the check really checks: an unrecorded certificate in issued/ must be reported (exit 1)
cp "$(find "$I" -maxdepth 1 -name '*.crt.pem' -print -quit)" "$I/stray.crt.pem"
expect_rc 1 "pki check exits 1 on an unrecorded certificate file in issued/ (sanity of the judge)" pqm pki check --pki "$P"
[[ -e "$I/stray.crt.pem" ]] || fail "pki check deleted the unrecorded file issued/stray.crt.pem instead of reporting it"
rm -f "$I/stray.crt.pem"
# ... and a recorded file whose content changed
victim="$(find "$I" -maxdepth 1 -name '*.crt.pem' -print -quit)"
cp "$victim" "$T/victim.pem"
cp "$(pki_file "$P" root-ca.crt.pem)" "$victim"
expect_rc 1 "pki check exits 1 when a recorded certificate file has other content (fingerprint mismatch)" pqm pki check --pki "$P"
cp "$T/victim.pem" "$victim"
# the check really checks: remove a recorded file and it must complain (exit 1), then put it back
victim="$(find "$I" -maxdepth 1 -name '*.crt.pem' -print -quit)"
mv "$victim" "$T/victim.pem"
expect_rc 1 "pki check exits 1 when a recorded certificate file is missing (sanity of the judge)" pqm pki check --pki "$P"
mv "$T/victim.pem" "$victim"
expect_rc 0 "pki check exits 0 again once the file is back" pqm pki check --pki "$P"

done_all
