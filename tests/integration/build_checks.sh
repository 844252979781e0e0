#!/usr/bin/env bash
# The build itself: `make install`'s layout runs without LD_LIBRARY_PATH on the
# OpenSSL 3.5 it was built against, exports only the public API, and the configure
# step refuses an OpenSSL that lacks ML-DSA-65 / X25519MLKEM768 with a clear message.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
require_tool cmake nm pkg-config

BUILD_DIR="$(dirname "$PQMTLS_BIN")"

# 1. Installed binary and libraries find OpenSSL 3.5 by their run path.
expect_ok "cmake --install into a temporary prefix" cmake --install "$BUILD_DIR" --prefix "$T/prefix"
for f in bin/pqmtls lib/libpqmtls.so lib/libpqmtls.a include/pqmtls/pqmtls.h include/pqmtls/pki.h include/pqmtls/x509.h; do
    [[ -e "$T/prefix/$f" ]] || fail "install did not produce $f"
done
pass "install layout: binary, shared and static library, public headers"
M="$T/prefix/share/man/man1/pqmtls.1"
[[ -s "$M" ]] || fail "install did not produce share/man/man1/pqmtls.1"
if command -v man > /dev/null; then
    run env MANWIDTH=120 MANPATH="$T/prefix/share/man" man pqmtls
else
    run groff -man -Tutf8 "$M"
fi
[[ $RC -eq 0 ]] || fail "the manual page does not render: $OUT"
# Every command the binary lists has its section, holding that command's own --help.
CMDS=$("$PQMTLS_BIN" --help | awk '/^Commands:/ {on = 1; next} on && /^  [a-z]/ {print} on && /^$/ {exit}' | sed -E 's/^  (\S+( \S+)?) {2,}.*/\1/')
[[ $(wc -l <<<"$CMDS") -ge 20 ]] || fail "pqmtls --help lists too few commands: $CMDS"
while IFS= read -r cmd; do
    grep -qF ".SS \"pqmtls $cmd\"" "$M" || fail "the manual page lacks a section for 'pqmtls $cmd'"
    grep -q "Usage: pqmtls $cmd\b" <<<"$OUT" || fail "the manual page's section for 'pqmtls $cmd' lacks its usage"
done <<<"$CMDS"
grep -q -- "--client-ocsp" <<<"$OUT" || fail "the manual page lacks the gateway's options"
pass "man pqmtls renders from the installed page, with every command and the gateway's options"
run env -u LD_LIBRARY_PATH ldd "$T/prefix/bin/pqmtls"
assert_contains "installed pqmtls links libcrypto from $OPENSSL_LIBDIR" "$OUT" "$OPENSSL_LIBDIR/libcrypto.so"
assert_not_contains "no unresolved library" "$OUT" "not found"
run env -u LD_LIBRARY_PATH "$T/prefix/bin/pqmtls" pki init "$T/pki" --no-passphrase
[[ $RC -eq 0 ]] || fail "installed pqmtls cannot make an ML-DSA PKI without LD_LIBRARY_PATH: $OUT"
run "$T/prefix/bin/pqmtls" inspect "$T/pki/root-ca.crt.pem"
assert_contains "installed pqmtls signs with ML-DSA-65" "$OUT" "ml-dsa-65"

# 2. The shared library exports the public API only (pqm_*), no internal pqm__ symbols.
run nm -D --defined-only "$T/prefix/lib/libpqmtls.so"
assert_contains "pqm_pki_create exported" "$OUT" " pqm_pki_create"
internal=$(grep -c ' pqm__' <<<"$OUT" || true)
[[ "$internal" -eq 0 ]] || fail "internal symbols exported: $(grep ' pqm__' <<<"$OUT" | head -3)"
pass "no internal symbol exported"

# 3. A C program builds against the installed headers and library alone.
cat > "$T/use.c" <<'C'
#include <stdio.h>
#include <pqmtls/pqmtls.h>
int main(int argc, char **argv)
{
    struct pqm_certinfo *info;
    char err[256];
    if (argc != 2 || (info = pqm_certinfo_load(argv[1], err, sizeof(err))) == NULL)
        return 1;
    pqm_certinfo_free(info);
    printf("pqmtls %s\n", pqm_version());
    return 0;
}
C
# A sanitizer build of the library needs its runtime in the program too.
san=()
# (ldd's output is taken whole first: `ldd | grep -q` can end in SIGPIPE, which pipefail
# would count as "no match".)
libs=$(ldd "$T/prefix/lib/libpqmtls.so")
if [[ "$libs" == *libasan* ]]; then san=(-fsanitize=address,undefined); fi
expect_ok "a program compiles against the installed API" \
    cc -std=c11 -Wall -Werror "${san[@]}" -I"$T/prefix/include" "$T/use.c" -o "$T/use" \
    -L"$T/prefix/lib" -Wl,-rpath,"$T/prefix/lib" -lpqmtls
expect_ok "and runs" env -u LD_LIBRARY_PATH "$T/use" "$T/pki/root-ca.crt.pem"

# 4. Configure refuses an OpenSSL without ML-DSA: a prefix whose pkg-config files claim
#    3.5 but whose library is Debian 12's OpenSSL 3.0.
if pkg-config --exists openssl 2>/dev/null && [[ -f /usr/include/openssl/ssl.h ]]; then
    fake="$T/fake-openssl"
    mkdir -p "$fake/lib/pkgconfig"
    libdir=$(pkg-config --variable=libdir libcrypto)
    for pc in libcrypto libssl; do
        lib=${pc#lib}
        cat > "$fake/lib/pkgconfig/$pc.pc" <<PC
prefix=$fake
libdir=$libdir
includedir=/usr/include
Name: $pc
Description: OpenSSL 3.0 pretending to be 3.5
Version: 3.5.0
Libs: -L$libdir -l$lib
Cflags: -I/usr/include
PC
    done
    run cmake -S "$PQMTLS_SOURCE_DIR" -B "$T/fake-build" -DPQMTLS_OPENSSL_PREFIX="$fake" -DPQMTLS_TESTS=OFF
    [[ $RC -ne 0 ]] || fail "configure accepted an OpenSSL without ML-DSA"
    flat=$(tr -s ' \n' ' ' <<<"$OUT")
    assert_contains "configure names the missing algorithm" "$flat" "lacks what pqmtls needs: ML-DSA-65 key generation failed"

    run cmake -S "$PQMTLS_SOURCE_DIR" -B "$T/none-build" -DPQMTLS_OPENSSL_PREFIX="$T/nowhere" -DPQMTLS_TESTS=OFF
    [[ $RC -ne 0 ]] || fail "configure accepted a prefix without OpenSSL"
    flat=$(tr -s ' \n' ' ' <<<"$OUT")
    assert_contains "configure says what to do without OpenSSL 3.5" "$flat" "scripts/deps.sh"
else
    info "Debian's libssl-dev is not installed: configure refusal not exercised"
fi
done_all
