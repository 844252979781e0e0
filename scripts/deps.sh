#!/usr/bin/env bash
# Installs what pqmtls needs on Debian 12, idempotently, and prints the
# OpenSSL (>= 3.5) prefix to build against on its last line of stdout.
#
#   scripts/deps.sh            install packages, find or build OpenSSL 3.5
#   scripts/deps.sh --openssl  only find or build OpenSSL (no package installs)
#
# PQMTLS_DEPS=build installs only what building needs (BUILD_PACKAGES), not the peers
# and checkers the tests use: deploy/Containerfile's build stage runs `make` so.
#
# OpenSSL: the system's when pkg-config reports >= 3.5; otherwise Debian 13's
# source package, fetched through a private apt configuration (apt verifies it
# against the signed index), built once into a cache directory outside the
# clone, keyed by version: ${PQMTLS_CACHE:-/var/cache/pqmtls}/openssl-<ver>.
#
# llhttp (the gateway's HTTP/1.1 parser) is not in Debian 12: Debian 13's
# libllhttp-dev and libllhttp9.2 binary packages are fetched through the same
# private apt configuration and unpacked (dpkg -x) into the cache:
# .../llhttp-<ver>. Its prefix is printed as "llhttp=<prefix>" before the last line.
set -euo pipefail

log() { printf 'deps: %s\n' "$*" >&2; }
die() { printf 'deps: error: %s\n' "$*" >&2; exit 1; }

# What building needs (the tests included: cmocka).
BUILD_PACKAGES=(
  build-essential cmake pkg-config perl make xz-utils ca-certificates
  libsqlite3-dev libcmocka-dev libjansson-dev libyaml-dev libev-dev
)
# What the tests need besides.
# python3-yaml, python3-jsonschema: tests/integration/lib/schema_check.py checks the
# exported Kubernetes and Istio documents against tests/schemas.
# groff-base: tests/integration/build_checks.sh renders the installed manual page.
# prometheus: for its promtool, which checks the gateway's metrics in a test.
# libssl-dev is Debian's OpenSSL 3.0: never built against (CMake is pointed at 3.5), but
# tests/integration/build_checks.sh uses it to show that configure refuses an OpenSSL
# without ML-DSA.
# systemd (systemd-analyze) and strace: tests/integration/deploy.sh checks the systemd
# unit and the system calls the gateway makes against its SystemCallFilter.
TEST_PACKAGES=(
  libssl-dev nginx-light curl procps sqlite3 iproute2 python3 util-linux binutils
  clang libclang-rt-14-dev prometheus python3-yaml python3-jsonschema groff-base
  systemd strace
)
PACKAGES=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}")
if [ "${PQMTLS_DEPS:-all}" = build ]; then
  PACKAGES=("${BUILD_PACKAGES[@]}")
fi

install_packages() {
  command -v dpkg-query >/dev/null || { log "not a Debian system: install ${PACKAGES[*]} yourself"; return 0; }
  local missing=()
  for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}); run as root or install them"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  # nginx-light's postinst starts a system nginx on :80, prometheus's a server on :9090
  # (only promtool is wanted); tests run their own peers.
  local unit
  for unit in nginx prometheus; do
    if command -v systemctl >/dev/null && systemctl is-active -q "$unit" 2>/dev/null; then
      systemctl stop "$unit" >&2 || true
    fi
  done
}

openssl_ok() { # $1 = prefix, or "" for the system
  local v
  if [ -z "$1" ]; then
    v=$(pkg-config --modversion openssl 2>/dev/null) || return 1
  else
    v=$(PKG_CONFIG_PATH="$1/lib/pkgconfig" pkg-config --modversion openssl 2>/dev/null) || return 1
  fi
  [ "$(printf '%s\n3.5.0\n' "$v" | sort -V | head -n1)" = "3.5.0" ]
}

cache_root() {
  if [ -n "${PQMTLS_CACHE:-}" ]; then echo "$PQMTLS_CACHE"; return; fi
  if mkdir -p /var/cache/pqmtls 2>/dev/null && [ -w /var/cache/pqmtls ]; then
    echo /var/cache/pqmtls
  else
    echo "${XDG_CACHE_HOME:-$HOME/.cache}/pqmtls"
  fi
}

# Prints the newest complete cached build, if any.
cached_openssl() {
  local root=$1 d
  for d in $(ls -d "$root"/openssl-* 2>/dev/null | sort -V -r); do
    [ -f "$d/.complete" ] && openssl_ok "$d" && { echo "$d"; return 0; }
  done
  return 1
}

debian_mirror() {
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
  fi
  [ -n "$m" ] || die "cannot find the Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
  echo "$m"
}

# A private apt configuration for Debian 13 in a new work directory under $1: sets
# WORK and APT_OPTS. $2 is "deb-src" or "deb". The system's apt sources stay untouched;
# apt checks what it downloads against the signed index.
private_apt() {
  local root=$1 kind=$2 m
  WORK=$(mktemp -d "$root/work.XXXXXX")
  BUILD_WORK="$BUILD_WORK $WORK"
  m=$(debian_mirror)
  mkdir -p "$WORK/lists/partial" "$WORK/cache/archives/partial"
  printf '%s [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s trixie main\n' "$kind" "$m" > "$WORK/sources.list"
  APT_OPTS=(-o "Dir::Etc::SourceList=$WORK/sources.list" -o Dir::Etc::SourceParts=/dev/null
            -o "Dir::State::Lists=$WORK/lists" -o "Dir::Cache=$WORK/cache" -o APT::Sandbox::User=root -q)
  log "reading the Debian 13 $kind index from $m"
  apt-get "${APT_OPTS[@]}" update >&2 || die "apt-get update of the trixie $kind index failed"
}

build_openssl() {
  local root=$1 work apt_opts v src
  private_apt "$root" deb-src
  work=$WORK; apt_opts=("${APT_OPTS[@]}")
  local versions
  versions=$(apt-cache "${apt_opts[@]}" showsrc openssl 2>/dev/null | awk '/^Package: /{p=$2} /^Version: / && p=="openssl" {print $2}' | sort -V -r -u)
  [ -n "$versions" ] || die "no openssl source package in the trixie index"
  mkdir -p "$work/src"
  for v in $versions; do
    case "$v" in 3.5.*) ;; *) continue ;; esac
    log "trying openssl source $v"
    if (cd "$work/src" && apt-get "${apt_opts[@]}" source --download-only "openssl=$v" >&2); then
      break
    fi
    rm -f "$work/src"/*
    v=""
  done
  [ -n "${v:-}" ] || die "no OpenSSL 3.5 source version could be downloaded (tried: $(echo $versions))"
  local upstream=${v%%-*}; upstream=${upstream#*:}
  local prefix="$root/openssl-$upstream"
  tar -xzf "$work/src"/openssl_"$upstream".orig.tar.gz -C "$work/src"
  src=$(find "$work/src" -maxdepth 1 -mindepth 1 -type d -name 'openssl-*' | head -n1)
  [ -n "$src" ] || die "unpacking openssl_$upstream.orig.tar.gz gave no source directory"
  log "building OpenSSL $upstream into $prefix (a few minutes, once per machine)"
  rm -rf "$prefix"
  (cd "$src" && ./Configure --prefix="$prefix" --libdir=lib --openssldir="$prefix/ssl" \
      "-Wl,-rpath,$prefix/lib" shared no-docs no-tests >&2 \
    && make -j"$(nproc)" build_sw >&2 && make install_sw install_ssldirs >&2) \
    || die "building OpenSSL $upstream failed"
  touch "$prefix/.complete"
  rm -rf "$work"
  echo "$prefix"
}

find_openssl() {
  if openssl_ok ""; then
    pkg-config --variable=prefix openssl
    return
  fi
  local root p
  root=$(cache_root)
  mkdir -p "$root"
  if p=$(cached_openssl "$root"); then echo "$p"; return; fi
  [ "$(id -u)" -eq 0 ] || [ -w "$root" ] || die "cannot write the cache $root"
  # One builder at a time per machine.
  exec 9>"$root/.lock"
  flock 9
  if p=$(cached_openssl "$root"); then echo "$p"; return; fi
  build_openssl "$root"
}

# Prints the cached llhttp prefix, fetching it the first time.
cached_llhttp() {
  local root=$1 d
  for d in $(ls -d "$root"/llhttp-* 2>/dev/null | sort -V -r); do
    [ -f "$d/.complete" ] && [ -f "$d/usr/include/llhttp.h" ] && { echo "$d"; return 0; }
  done
  return 1
}

fetch_llhttp() {
  local root=$1 v prefix deb
  private_apt "$root" deb
  v=$(apt-cache "${APT_OPTS[@]}" show libllhttp-dev 2>/dev/null | awk '/^Version: / {print $2}' | sort -V -r | head -n1)
  [ -n "$v" ] || die "no libllhttp-dev in the trixie index"
  (cd "$WORK" && apt-get "${APT_OPTS[@]}" download "libllhttp-dev=$v" >&2) \
    || die "downloading libllhttp-dev $v failed"
  local lib
  lib=$(apt-cache "${APT_OPTS[@]}" show "libllhttp-dev=$v" | awk -F': ' '/^Depends: / {print $2; exit}' \
        | tr ',' '\n' | awk '$1 ~ /^libllhttp[0-9.]+$/ {print $1; exit}')
  [ -n "$lib" ] || die "cannot read libllhttp-dev's runtime library package"
  (cd "$WORK" && apt-get "${APT_OPTS[@]}" download "$lib=$v" >&2) || die "downloading $lib $v failed"
  prefix="$root/llhttp-${v%%[~+-]*}"
  rm -rf "$prefix"
  for deb in "$WORK"/*.deb; do
    dpkg -x "$deb" "$prefix" || die "unpacking $deb failed"
  done
  [ -f "$prefix/usr/include/llhttp.h" ] || die "libllhttp-dev $v has no llhttp.h"
  touch "$prefix/.complete"
  rm -rf "$WORK"
  echo "$prefix"
}

find_llhttp() {
  local root p
  root=$(cache_root)
  mkdir -p "$root"
  if p=$(cached_llhttp "$root"); then echo "$p"; return; fi
  exec 8>"$root/.lock-llhttp"
  flock 8
  if p=$(cached_llhttp "$root"); then echo "$p"; return; fi
  fetch_llhttp "$root"
}

BUILD_WORK=""
cleanup() { if [ -n "$BUILD_WORK" ]; then rm -rf $BUILD_WORK; fi; }
trap cleanup EXIT

main() {
  if [ "${1:-}" != "--openssl" ]; then install_packages; fi
  local p l
  l=$(find_llhttp)
  echo "llhttp=$l"
  p=$(find_openssl)
  openssl_ok "$p" || die "OpenSSL at $p is older than 3.5"
  echo "$p"
}
main "$@"
