# shellcheck shell=bash
# Shared helpers for the integration tests under tests/integration/*.sh.
# Sourced, never run: it lives in lib/ so that the CTest glob
# (tests/integration/*.sh) does not pick it up as a test of its own.
#
# Each test sources it with:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
#
# Environment (set by CTest, see tests/CMakeLists.txt; defaulted here for runs by hand):
#   PQMTLS_BIN         the pqmtls binary          (default: <repo>/build/pqmtls)
#   OPENSSL_BIN        OpenSSL 3.5's openssl CLI   (default: /var/cache/pqmtls/openssl-3.5.7/bin/openssl)
#   OPENSSL_LIBDIR     OpenSSL 3.5's lib dir       (default: dirname(OPENSSL_BIN)/../lib)
#   PQMTLS_SOURCE_DIR  the repository root         (default: two levels above this file's dir)

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    echo "common.bash: helper library, source it from a test"
    exit 0
fi

set -euo pipefail

_pqm_lib_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${PQMTLS_SOURCE_DIR:=$(cd "$_pqm_lib_dir/../../.." && pwd)}"
: "${PQMTLS_BIN:=$PQMTLS_SOURCE_DIR/build/pqmtls}"
: "${OPENSSL_BIN:=/var/cache/pqmtls/openssl-3.5.7/bin/openssl}"
: "${OPENSSL_LIBDIR:=$(cd "$(dirname "$OPENSSL_BIN")/../lib" 2>/dev/null && pwd || echo /var/cache/pqmtls/openssl-3.5.7/lib)}"
export PQMTLS_SOURCE_DIR PQMTLS_BIN OPENSSL_BIN OPENSSL_LIBDIR
# The passphrase must come from the files the tests give, never from the caller's environment.
unset PQMTLS_PASSPHRASE

TEST_NAME="$(basename "${BASH_SOURCE[1]:-$0}" .sh)"
_pqm_checks=0

# ---- output -----------------------------------------------------------------
pass() { _pqm_checks=$((_pqm_checks + 1)); printf 'ok   %s: %s\n' "$TEST_NAME" "$*"; }
info() { printf '..   %s: %s\n' "$TEST_NAME" "$*"; }
fail() { printf 'FAIL %s: %s\n' "$TEST_NAME" "$*" >&2; exit 1; }
done_all() { printf 'PASS %s: %d checks\n' "$TEST_NAME" "$_pqm_checks"; }

# ---- temp dir and cleanup ---------------------------------------------------
T="$(mktemp -d "${TMPDIR:-/tmp}/pqmtls-${TEST_NAME}.XXXXXX")"
export T
_pqm_bg_pids=()

# Register a background process started by the test, to be killed at exit.
track_pid() { _pqm_bg_pids+=("$1"); }

# A background job started from a shell function or a pipeline is a subshell whose
# children (an openssl s_server, a curl) would outlive a TERM to the subshell alone: the
# whole tree goes, deepest first. A process that is gone already is not an error (a
# parent often ends as soon as its child does), so set -e callers may use it.
_pqm_kill_tree() {
    local child
    for child in $(pgrep -P "$1" 2>/dev/null); do _pqm_kill_tree "$child"; done
    kill -TERM "$1" 2>/dev/null || true
}

_pqm_cleanup() {
    local rc=$? pid
    set +e
    for pid in "${_pqm_bg_pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            _pqm_kill_tree "$pid"
            kill -TERM "$pid" 2>/dev/null
            for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    done
    if [[ $rc -ne 0 && -n "${PQMTLS_KEEP_TMP:-}" ]]; then
        echo "kept $T" >&2
    else
        rm -rf "$T"
    fi
    exit "$rc"
}
trap _pqm_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- preconditions ----------------------------------------------------------
require_bin() {
    [[ -x "$PQMTLS_BIN" ]] || fail "pqmtls binary not found at PQMTLS_BIN=$PQMTLS_BIN (build with make)"
    [[ -x "$OPENSSL_BIN" ]] || fail "openssl not found at OPENSSL_BIN=$OPENSSL_BIN"
    [[ -d "$OPENSSL_LIBDIR" ]] || fail "OpenSSL lib dir not found at OPENSSL_LIBDIR=$OPENSSL_LIBDIR"
}
require_tool() {
    local t
    for t in "$@"; do command -v "$t" >/dev/null 2>&1 || fail "required tool '$t' not installed"; done
}

# ---- wrappers -----------------------------------------------------------------
# OpenSSL 3.5's CLI, with no config file (install_sw installs none).
ossl() { OPENSSL_CONF=/dev/null LD_LIBRARY_PATH="$OPENSSL_LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$OPENSSL_BIN" "$@"; }
pqm() { "$PQMTLS_BIN" "$@"; }
# Run a Debian 12 program (nginx, curl) on OpenSSL 3.5.
with_ossl35() { LD_LIBRARY_PATH="$OPENSSL_LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"; }

# ---- assertions -------------------------------------------------------------
# Run CMD, capture stdout+stderr into $OUT and the status into $RC; never aborts.
OUT="" RC=0
run() {
    set +e
    OUT="$("$@" 2>&1)"
    RC=$?
    set -e
}

# expect_ok DESC CMD...: CMD must exit 0.
expect_ok() {
    local desc="$1"; shift
    run "$@"
    [[ $RC -eq 0 ]] || fail "$desc: expected success, got exit $RC: $* :: ${OUT:0:2000}"
    pass "$desc"
}

# expect_fail CMD...: CMD must exit non-zero (and not die of a signal / crash).
expect_fail() {
    run "$@"
    [[ $RC -ne 0 ]] || fail "expected failure, but it succeeded: $* :: ${OUT:0:2000}"
    [[ $RC -lt 128 ]] || fail "expected a clean failure, got exit $RC (signal/crash): $* :: ${OUT:0:2000}"
    return 0
}

# expect_rc N DESC CMD...: CMD must exit exactly N.
expect_rc() {
    local want="$1" desc="$2"; shift 2
    run "$@"
    [[ $RC -eq $want ]] || fail "$desc: expected exit $want, got exit $RC: $* :: ${OUT:0:2000}"
    pass "$desc"
}

# assert_contains DESC HAYSTACK NEEDLE (fixed string, case-sensitive)
assert_contains() {
    [[ "$2" == *"$3"* ]] || fail "$1: expected to find '$3' in: ${2:0:3000}"
    pass "$1"
}
assert_not_contains() {
    [[ "$2" != *"$3"* ]] || fail "$1: did not expect '$3' in: ${2:0:3000}"
    pass "$1"
}
# assert_match DESC STRING ERE
assert_match() {
    [[ "$2" =~ $3 ]] || fail "$1: expected to match /$3/: ${2:0:3000}"
    pass "$1"
}
# Exactly one line on stderr for a refused operation (docs/cli.md): not enforced
# everywhere, but messages must be non-empty.
assert_nonempty() { [[ -n "$2" ]] || fail "$1: empty"; pass "$1"; }

# file_mode FILE -> octal permission bits, e.g. 600
file_mode() { stat -c '%a' "$1"; }

# ---- ports ------------------------------------------------------------------
# port_in_use PORT: something listens on 127.0.0.1:PORT (or on the wildcard).
port_in_use() {
    local p="$1"
    [[ -n "$(ss -ltnH "( sport = :$p )" 2>/dev/null)" ]] && return 0
    # belt and braces: a connect that succeeds means a listener
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return 0
    return 1
}

# free_port: print a TCP port on 127.0.0.1 with no listener, from a random base below
# the ephemeral range (32768-60999 on Linux): a port some client connection took as its
# local port cannot be listened on, and parallel tests make many connections.
free_port() {
    local base p i lo=20000 hi=32767
    base=$(( lo + (RANDOM * 32768 + RANDOM) % (hi - lo) ))
    for ((i = 0; i < 500; i++)); do
        p=$(( base + i ))
        (( p > hi )) && p=$(( lo + p % (hi - lo) ))
        if ! port_in_use "$p"; then echo "$p"; return 0; fi
    done
    fail "no free loopback port found"
}

# wait_port PORT [SECONDS] [PID]: wait until 127.0.0.1:PORT accepts connections.
wait_port() {
    local p="$1" secs="${2:-10}" pid="${3:-}" i
    for ((i = 0; i < secs * 20; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then return 0; fi
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        sleep 0.05
    done
    return 1
}

# ---- PEM/DER helpers --------------------------------------------------------
# sha256 fingerprint of a certificate PEM: lowercase hex, no colons.
cert_fp() {
    ossl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/^.*=//; s/://g' | tr 'A-F' 'a-f'
}
# serial of a certificate, uppercase hex as openssl prints it
cert_serial() { ossl x509 -in "$1" -noout -serial | sed 's/^serial=//'; }

# split_pem FILE OUTPREFIX: write each certificate of FILE to OUTPREFIX-N.pem
# (N from 0), print the file names in order.
split_pem() {
    local in="$1" pre="$2"
    awk -v pre="$pre" '
        /-----BEGIN CERTIFICATE-----/ { f = sprintf("%s-%d.pem", pre, n++); print f }
        f != "" { print > f }
        /-----END CERTIFICATE-----/ { close(f); f = "" }
    ' "$in" | while read -r f; do echo "$f"; done
}
cert_count() { grep -c -- '-----BEGIN CERTIFICATE-----' "$1" || true; }
cert_subject() { ossl x509 -in "$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//'; }
cert_issuer() { ossl x509 -in "$1" -noout -issuer -nameopt RFC2253 | sed 's/^issuer=//'; }
is_self_issued() { [[ "$(cert_subject "$1")" == "$(cert_issuer "$1")" ]]; }

# pki_file PKIDIR NAME...: print the path of the first of NAMEs found in the PKI
# directory (outside issued/), or fail.
pki_file() {
    local dir="$1" n f; shift
    for n in "$@"; do
        f="$(find "$dir" -path "$dir/issued" -prune -o -type f -name "$n" -print 2>/dev/null | sort | awk 'NR == 1')"
        if [[ -n "$f" ]]; then echo "$f"; return 0; fi
    done
    fail "none of [$*] found in PKI directory $dir: $(cd "$dir" && find . -maxdepth 2 | sort | tr '\n' ' ')"
}

# ext_block CERT HEADER: print the extension header line of `openssl x509 -text`
# that starts with HEADER (e.g. "X509v3 Basic Constraints") and the value lines
# indented deeper below it; empty if the extension is absent.
ext_block() {
    ossl x509 -in "$1" -noout -text | awk -v h="$2" '
        function ind(s) { match(s, /^ */); return RLENGTH }
        # read to the end (no early exit: openssl must not get SIGPIPE under pipefail)
        over { next }
        on && ind($0) <= hi { on = 0; over = 1; next }
        on { sub(/^ +/, ""); print; next }
        { t = $0; sub(/^ +/, "", t) }
        index(t, h) == 1 { on = 1; hi = ind($0); print t }
    '
}
# ext_value CERT HEADER: the value lines only, joined by newlines, trimmed.
ext_value() { ext_block "$1" "$2" | tail -n +2; }

# der_to_pem DERFILE LABEL > PEMFILE (no re-encoding by OpenSSL)
der_to_pem() {
    printf -- '-----BEGIN %s-----\n' "$2"
    base64 -w 64 "$1"
    printf -- '-----END %s-----\n' "$2"
}
# pem_body_to_der PEMFILE > DERFILE (first PEM block)
pem_to_der() { awk '/-----BEGIN/{on=1; next} /-----END/{exit} on' "$1" | base64 -d; }

# flip_byte FILE OFFSET: XOR the byte at OFFSET with 0x01, in place.
flip_byte() {
    local f="$1" off="$2" b nb
    b=$(od -An -tu1 -j "$off" -N 1 "$f" | tr -d ' ')
    [[ -n "$b" ]] || fail "flip_byte: offset $off beyond $f"
    nb=$(( b ^ 1 ))
    printf "\\x$(printf '%02x' "$nb")" | dd of="$f" bs=1 seek="$off" count=1 conv=notrunc status=none
}
