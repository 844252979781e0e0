#!/usr/bin/env bash
# scripts/mkman.sh PQMTLS OUT: writes the manual page pqmtls(1) to OUT from the --help
# text of the built binary, so that the page and the tool never disagree.
set -euo pipefail
bin=$1 out=$2
version=$("$bin" --version | awk '{print $2}')

# roff-safe text: backslashes escaped, lines that would start a request protected.
esc() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }

commands=$("$bin" --help | awk '/^Commands:/ {on = 1; next} on && /^  [a-z]/ {print} on && /^$/ {exit}' |
  sed -E 's/^  ([a-z0-9-]+( [a-z0-9-]+)?) {2,}.*/\1/')
[ -n "$commands" ] || { echo "mkman: no commands in '$bin --help'" >&2; exit 1; }

{
  printf '.TH PQMTLS 1 "" "pqmtls %s" "User Commands"\n' "$version"
  printf '.SH NAME\npqmtls \\- post-quantum mutual TLS infrastructure (ML-DSA, ML-KEM)\n'
  printf '.SH SYNOPSIS\n.B pqmtls\n.I COMMAND\n[\\fIOPTIONS\\fR]\n'
  printf '.SH DESCRIPTION\n'
  printf 'pqmtls builds a post-quantum PKI (ML-DSA-65 root, server and client intermediate CAs),\n'
  printf 'issues, revokes and renews certificates, terminates mutual TLS in front of an API\n'
  printf '(TLS 1.3, X25519MLKEM768), calls such APIs, and writes the nginx, Istio and Kubernetes\n'
  printf 'configuration that enforces the same PKI.\n'
  printf '.PP\n.nf\n'
  "$bin" --help | esc
  printf '.fi\n.SH COMMANDS\n'
  while IFS= read -r cmd; do
    printf '.SS "pqmtls %s"\n.nf\n' "$cmd"
    # shellcheck disable=SC2086
    "$bin" $cmd --help | esc
    printf '.fi\n'
  done <<< "$commands"
  printf '.SH ENVIRONMENT\n.TP\n.B PQMTLS_PASSPHRASE\nthe PKI passphrase, when no --passphrase-file is given\n'
  printf '.TP\n.B PQMTLS_KEY_PASSPHRASE\nthe passphrase of an issued key\n'
  printf '.SH EXIT STATUS\n0 success, 1 a refused or failed operation, 2 a usage error.\n'
  printf '.SH SEE ALSO\nThe documents in the source tree: docs/cli.md, docs/pki.md, docs/gateway.md,\n'
  printf 'docs/client.md, docs/export.md.\n'
} > "$out.tmp"
mv "$out.tmp" "$out"
