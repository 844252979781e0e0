# shellcheck shell=bash
# py_checks ARGS... < SCRIPT: runs the Python script on standard input (Debian's
# /usr/bin/python3) with ARGS; it prints "CHECK what" for each check it made and exits
# non-zero at the first that fails (with the reason). Each CHECK line counts as a pass;
# a failure, or a script that checked nothing, fails the test with the script's output.
# Sourced after common.bash.
py_checks() {
    local out line n=0
    out=$(/usr/bin/python3 - "$@" 2>&1) || fail "${out:0:3000}"
    while IFS= read -r line; do
        if [[ $line == CHECK\ * ]]; then
            pass "${line#CHECK }"
            n=$((n + 1))
        fi
    done <<< "$out"
    [[ $n -gt 0 ]] || fail "a check script checked nothing: ${out:0:3000}"
}
