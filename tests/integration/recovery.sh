#!/usr/bin/env bash
# Recovery after interruptions and conflicts, beyond issued/ (crash_consistency.sh):
# - a batch killed while signing into an --out directory leaves no temporary file
#   (certificates and keys) behind once the next command has recovered;
# - a file someone else creates at a name a batch is about to publish survives the
#   failed batch, which rolls back whole;
# - a killed `pki init` leaves its half-built directory, which the next init removes;
# - a batch of several parts (signed while the previous part is recorded and published)
#   killed at random points is whole or absent after recovery;
# - a batch with a taken name far into it is refused before anything is signed.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
require_tool sqlite3

# kill_when_present DIR PATTERN TRIES STEP CMD...: runs CMD in the background and kills it
# (SIGKILL) once DIR holds an entry named PATTERN, or after TRIES polls STEP seconds apart;
# prints how many such entries DIR holds then.
kill_when_present() {
    local dir=$1 pattern=$2 tries=$3 step=$4 pid
    shift 4
    "$@" > /dev/null 2>&1 &
    pid=$!
    for _ in $(seq 1 "$tries"); do
        [[ -n "$(find "$dir" -maxdepth 1 -name "$pattern" -print -quit)" ]] && break
        sleep "$step"
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    find "$dir" -maxdepth 1 -name "$pattern" | wc -l
}

pqm pki init "$T/p" --no-passphrase > /dev/null
mkdir "$T/out" "$T/out2"

# 1. Killed while writing into --out. A part's files are staged just before they are
#    published, so the kill can miss the moment; then the batch is recovered and tried
#    again under another name.
staged=0
for attempt in 1 2 3 4 5; do
    staged=$(kill_when_present "$T/out" '.pqmtls-tmp-*' 2000 0.002 \
        "$PQMTLS_BIN" pki issue client --pki "$T/p" --name "kk$attempt" --count 2000 \
        --out "$T/out/t$attempt" --no-key-passphrase)
    [[ $staged -gt 0 ]] && break
    info "attempt $attempt: killed when no file was staged; again"
done
[[ $staged -gt 0 ]] || fail "no batch was killed while files were staged; cannot test the sweep"
info "$staged temporary files staged when killed"
expect_ok "pki check recovers" pqm pki check --pki "$T/p"
left=$(find "$T/out" -name '.pqmtls-tmp-*' | wc -l)
[[ $left -eq 0 ]] || fail "$left temporary files (keys among them) left in the --out directory"
pass "no temporary file left in the --out directory"
[[ $(sqlite3 "$T/p/pki.db" "select count(*) from staging") -eq 0 ]] || fail "staging record left"
pass "the staging record is gone"
[[ $(sqlite3 "$T/p/pki.db" "select count(*) from certs where status in ('valid','pending') and name like 'kk%'") -eq \
   $(find "$T/out" -name 't*.crt.pem' | wc -l) ]] || fail "inventory and --out directory disagree"
pass "inventory and --out directory agree"

# 2. A foreign file at a name the batch publishes: kept, and the batch rolls back whole,
#    the parts it had already published included. The file is placed once the first
#    part is published (the batch has checked its names by then) and long before the
#    fourth part, which holds t-0500, is; if this machine lets the batch finish first
#    (noclobber tells), try again with a new one.
placed=0
for attempt in 1 2 3; do
    out="$T/out2-$attempt"
    mkdir "$out"
    "$PQMTLS_BIN" pki issue client --pki "$T/p" --name "ff$attempt" --count 600 --out "$out/t" \
        --no-key-passphrase > /dev/null 2> "$T/ff.err" &
    pid=$!
    for _ in $(seq 1 1000); do
        [[ -e "$out/t-0001.crt.pem" ]] && break
        sleep 0.005
    done
    if (set -C; echo precious > "$out/t-0500.crt.pem") 2>/dev/null; then placed=1; fi
    set +e; wait "$pid"; rc=$?; set -e
    [[ $placed -eq 1 ]] && break
    info "attempt $attempt: the batch published before the foreign file was placed; again"
done
[[ $placed -eq 1 ]] || fail "could not place a foreign file during a batch in 3 attempts"
[[ $rc -eq 1 ]] || fail "the batch should fail with exit 1 when a name is taken (got $rc)"
assert_contains "the refusal names the file" "$(cat "$T/ff.err")" "t-0500.crt.pem"
[[ "$(cat "$out/t-0500.crt.pem")" == precious ]] || fail "the foreign file was removed or replaced"
pass "the foreign file is untouched"
[[ $(find "$out" -type f | wc -l) -eq 1 ]] || fail "files of the failed batch remain: $(ls -A "$out" | head)"
pass "nothing of the failed batch remains"
[[ $(sqlite3 "$T/p/pki.db" "select count(*) from certs where name like 'ff${attempt}-%' and status != 'aborted'") -eq 0 ]] \
    || fail "rows of the failed batch are not aborted"
pass "its rows are aborted (serials retired)"
expect_ok "pki check agrees" pqm pki check --pki "$T/p"

# 3. A killed init leaves .NAME.pqmtls-init-XXXXXX; the next init of NAME removes it.
mkdir "$T/inits"
kill_when_present "$T/inits" '.pk.pqmtls-init-*' 300 0.01 \
    "$PQMTLS_BIN" pki init "$T/inits/pk" --no-passphrase --root-alg slh-dsa-sha2-128s > /dev/null
if [[ -e "$T/inits/pk" ]]; then
    info "init finished before it was killed; making a leftover by hand"
    rm -rf "$T/inits/pk"
fi
if [[ -z "$(find "$T/inits" -maxdepth 1 -name '.pk.pqmtls-init-*' -print -quit)" ]]; then
    mkdir "$T/inits/.pk.pqmtls-init-abc123" && echo key > "$T/inits/.pk.pqmtls-init-abc123/root-ca.key.pem"
fi
[[ -n "$(find "$T/inits" -maxdepth 1 -name '.pk.pqmtls-init-*' -print -quit)" ]] || fail "no leftover to test with"
expect_ok "init again" pqm pki init "$T/inits/pk" --no-passphrase
[[ -z "$(find "$T/inits" -maxdepth 1 -name '.pk.pqmtls-init-*' -print -quit)" ]] || fail "the killed init's directory (CA keys) is still there"
pass "the killed init's directory is gone"
# 4. Recovery recognises its own files by content: a pending row's files go, but a file
#    someone else put at one of its names stays.
pqm pki init "$T/id" --no-passphrase > /dev/null
pqm pki issue client --pki "$T/id" --name own > /dev/null
pqm pki issue client --pki "$T/id" --name theirs > /dev/null
sqlite3 "$T/id/pki.db" "update certs set status = 'pending' where name in ('own', 'theirs')"
echo "someone else's file" > "$T/id/issued/theirs.crt.pem"
run pqm pki check --pki "$T/id"
[[ ! -e "$T/id/issued/own.crt.pem" && ! -e "$T/id/issued/own.key.pem" && ! -e "$T/id/issued/own.chain.pem" ]] \
    || fail "recovery left files of an interrupted issuance"
pass "an interrupted issuance's files are removed"
[[ "$(cat "$T/id/issued/theirs.crt.pem")" == "someone else's file" ]] || fail "recovery removed a file it did not write"
[[ ! -e "$T/id/issued/theirs.key.pem" ]] || fail "recovery left theirs.key.pem, which it did write"
pass "a file with other content at its name stays; its own key goes"
[[ $RC -eq 1 ]] || fail "check should report the file it does not know (exit 1), got $RC: $OUT"
assert_contains "check names the file it does not know" "$OUT" "theirs.crt.pem: not in the inventory"
[[ $(sqlite3 "$T/id/pki.db" "select count(*) from certs where status = 'aborted'") -eq 2 ]] || fail "rows not aborted"
pass "both rows are aborted"

# 5. A PKI opened by a relative path is recovered from anywhere.
mkdir "$T/rel"
pqm pki init "$T/rel/p" --no-passphrase > /dev/null
for attempt in 1 2 3 4 5; do
    staged=$(kill_when_present "$T/rel/p/issued" '.pqmtls-tmp-*' 2000 0.002 \
        env -C "$T/rel" "$PQMTLS_BIN" pki issue client --pki p --name "rr$attempt" --count 2000 \
        --no-key-passphrase)
    [[ $staged -gt 0 ]] && break
    ( cd / && "$PQMTLS_BIN" pki check --pki "$T/rel/p" > /dev/null ) || fail "check from / failed"
    info "attempt $attempt: killed when no file was staged; again"
done
[[ $staged -gt 0 ]] || fail "no batch was killed while files were staged; cannot test the sweep"
( cd / && "$PQMTLS_BIN" pki check --pki "$T/rel/p" > /dev/null ) || fail "check from / failed"
[[ -z "$(find "$T/rel/p/issued" -name '.pqmtls-tmp-*' -print -quit)" ]] || fail "temporary files left"
pass "recovered from another directory: no temporary file left"

# 6. Concurrent issuers: the lock serialises them; every certificate lands once.
pqm pki init "$T/cc" --no-passphrase > /dev/null
pids=()
for i in 1 2 3 4; do
    "$PQMTLS_BIN" pki issue client --pki "$T/cc" --name "w$i" --count 25 > /dev/null 2>&1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || fail "a concurrent issuer failed"; done
pass "four concurrent batches all succeed"
expect_ok "pki check agrees after concurrent issuers" pqm pki check --pki "$T/cc"
[[ $(sqlite3 "$T/cc/pki.db" "select count(distinct serial) from certs where status = 'valid' and kind = 'client'") -eq 100 ]] \
    || fail "expected 100 distinct valid client certificates"
pass "100 distinct certificates recorded"

# 7. Batches of 300 (three parts of 128, 128 and 44) killed at random points. The parts
#    are recorded and published while the next part is signed, but the batch is one
#    transaction: after recovery it is either all valid, with its 900 files, or absent.
pqm pki init "$T/parts" --no-passphrase > /dev/null
s0=$(date +%s%N)
pqm pki issue client --pki "$T/parts" --name whole --count 300 --no-key-passphrase > /dev/null
dur=$(( ($(date +%s%N) - s0) / 1000 ))
info "an uninterrupted batch of 300 takes ${dur} us"
killed=0 whole=0
for i in $(seq 1 8); do
    d=$(( (RANDOM * 32768 + RANDOM) % (dur * 12 / 10 + 1) ))
    printf -v delay '%d.%06d' $(( d / 1000000 )) $(( d % 1000000 ))
    "$PQMTLS_BIN" pki issue client --pki "$T/parts" --name "k$i" --count 300 --no-key-passphrase \
        > /dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null || true
    set +e; { wait "$pid"; } 2>/dev/null; rc=$?; set -e
    [[ $rc -eq 137 ]] && killed=$((killed + 1))
    expect_ok "pki check after batch k$i (killed after ${delay} s)" pqm pki check --pki "$T/parts"
    v=$(sqlite3 "$T/parts/pki.db" "select count(*) from certs where status = 'valid' and name like 'k$i-%'")
    files=$(find "$T/parts/issued" -name "k$i-*" | wc -l)
    [[ $v -eq 0 || $v -eq 300 ]] || fail "batch k$i: $v of 300 certificates valid after recovery"
    [[ $files -eq $(( v * 3 )) ]] || fail "batch k$i: $files files for $v valid certificates"
    [[ $v -eq 300 ]] && whole=$((whole + 1))
done
[[ -z "$(find "$T/parts/issued" -name '.pqmtls-tmp-*' -print -quit)" ]] || fail "temporary files left"
(( killed > 0 )) || fail "no batch was killed mid-way: nothing was exercised"
pass "8 batches of 300 ($killed killed at random points, $whole whole): each whole or absent, files agree"

# 8. A batch whose 250th name is taken is refused before anything is signed: it signs in
#    parts, but checks every name and file first, so no serial is spent (no aborted row).
pqm pki issue client --pki "$T/parts" --name late-0250 --no-key-passphrase > /dev/null
run pqm pki issue client --pki "$T/parts" --name late --count 300 --no-key-passphrase
[[ $RC -eq 1 ]] || fail "a batch with a taken name should fail with exit 1, got $RC: $OUT"
assert_contains "the refusal names the certificate" "$OUT" "late-0250"
[[ $(sqlite3 "$T/parts/pki.db" "select count(*) from certs where name like 'late-%'") -eq 1 ]] \
    || fail "the refused batch left rows: $(sqlite3 "$T/parts/pki.db" "select name, status from certs where name like 'late-%' and name != 'late-0250' limit 3")"
pass "a taken name in the third part refuses the batch before any certificate is signed"
touch "$T/parts/issued/file-0290.chain.pem"
run pqm pki issue client --pki "$T/parts" --name file --count 300 --no-key-passphrase
[[ $RC -eq 1 ]] || fail "a batch with an existing output file should fail with exit 1, got $RC: $OUT"
assert_contains "the refusal names the file" "$OUT" "file-0290.chain.pem already exists"
[[ $(sqlite3 "$T/parts/pki.db" "select count(*) from certs where name like 'file-%'") -eq 0 ]] \
    || fail "the refused batch left rows"
pass "an existing output file in the third part refuses the batch before any certificate is signed"
done_all
