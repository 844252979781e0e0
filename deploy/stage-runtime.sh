#!/usr/bin/env bash
# deploy/stage-runtime.sh BUILD DESTDIR: what the gateway's image needs at run time,
# from a build directory that `make` made, under DESTDIR at the paths it has in the
# image (deploy/Containerfile copies DESTDIR to /):
#   /usr/local/bin/pqmtls, /usr/local/lib/libpqmtls.so.0*   (cmake --install --strip)
#   <OpenSSL libdir>/libssl.so.3, libcrypto.so.3           (the directory of the binary's
#                                                 run path: /var/cache/pqmtls/openssl-<ver>/lib)
# The installed binary finds libpqmtls by its run path $ORIGIN/../lib and OpenSSL by the
# absolute one, so the OpenSSL libraries keep their path. Nothing else: no headers, no
# static library, no openssl tool. Debian's libev4, libsqlite3-0, libjansson4 and
# libyaml-0-2 come from apt in the image. Checked by tests/integration/deploy.sh.
set -euo pipefail
die() { printf 'stage-runtime: %s\n' "$*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: deploy/stage-runtime.sh BUILD DESTDIR"
build=$1 dest=$2
[ -f "$build/CMakeCache.txt" ] || die "$build is not a build directory: run make first"

mkdir -p "$dest"
inst=$(mktemp -d "$dest/.install.XXXXXX")
trap 'rm -rf "$inst"' EXIT
DESTDIR=$inst cmake --install "$build" --prefix /usr/local --strip > /dev/null
install -D -m 0755 "$inst/usr/local/bin/pqmtls" "$dest/usr/local/bin/pqmtls"
mkdir -p "$dest/usr/local/lib"
cp -a "$inst"/usr/local/lib/libpqmtls.so.0* "$dest/usr/local/lib/"

# The run path: $ORIGIN/../lib for libpqmtls, then OpenSSL's library directory.
runpath=$(readelf -d "$dest/usr/local/bin/pqmtls" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
case ":$runpath:" in
  *':$ORIGIN/../lib:'*) ;;
  *) die "the installed pqmtls has run path '$runpath', without \$ORIGIN/../lib" ;;
esac
ossl=""
IFS=: read -r -a dirs <<< "$runpath"
for d in "${dirs[@]}"; do
  if [ -e "$d/libcrypto.so.3" ]; then ossl=$d; break; fi
done
[ -n "$ossl" ] || die "no directory of the run path '$runpath' holds libcrypto.so.3"
mkdir -p "$dest$ossl"
cp -L "$ossl/libssl.so.3" "$ossl/libcrypto.so.3" "$dest$ossl/"
echo "staged into $dest: /usr/local/bin/pqmtls, /usr/local/lib/libpqmtls.so.0, $ossl/libssl.so.3 and libcrypto.so.3"
