#!/usr/bin/env bash
# scripts/demo.sh: the pqmtls demo (`make demo`).
#
# Builds a post-quantum (ML-DSA-65) three-tier PKI in demo/ (an old demo/ is
# removed first), issues the seed's certificates:
#   - API server   api.example.com  (DNS api.example.com, IP 127.0.0.1)
#   - Client 1     client-1
#   - Client 2     client-2
#   - Service A    service-a        (SPIFFE ID spiffe://cluster.local/ns/production/sa/frontend-service)
# then prints the tree, inspects every leaf, verifies every chain, and shows
# one refusal that is expected (a client certificate used as a server).
# Exits non-zero if any step that should succeed fails.
#
# Environment: PQMTLS_BIN (default build/pqmtls), DEMO_DIR (default <repo>/demo).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
PQMTLS_BIN=${PQMTLS_BIN:-$root/build/pqmtls}
DEMO_DIR=${DEMO_DIR:-$root/demo}

die() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }
[ -x "$PQMTLS_BIN" ] || die "pqmtls binary not found or not executable: $PQMTLS_BIN (run make)"
# Passphrases come only from the file below, never from a stray environment.
unset PQMTLS_PASSPHRASE

step=0
section() {
  step=$((step + 1))
  printf '\n'
  printf '=%.0s' {1..78}; printf '\n'
  printf ' %d. %s\n' "$step" "$*"
  printf '=%.0s' {1..78}; printf '\n'
}
# run CMD...: echo the command (paths shortened), run it, fail the demo on error.
show() {
  local shown="${*//"$PQMTLS_BIN"/pqmtls}"
  printf '$ %s\n' "${shown//"$root"\//}"
}
run() {
  show "$@"
  "$@" || die "exit status $? from: ${*//$PQMTLS_BIN/pqmtls}"
}
pq() { run "$PQMTLS_BIN" "$@"; }

pki=$DEMO_DIR/pki
pass=$DEMO_DIR/passphrase.txt          # protects the CA keys
keypass=$DEMO_DIR/key-passphrase.txt   # protects the issued keys: never the CA's
issued=$pki/issued

section "Fresh demo directory: $DEMO_DIR"
case "$DEMO_DIR" in
  "" | / | "$root") die "refusing to use DEMO_DIR=$DEMO_DIR" ;;
esac
if [ -e "$DEMO_DIR" ]; then
  echo "removing the previous demo"
  rm -rf -- "$DEMO_DIR"
fi
mkdir -p "$DEMO_DIR"
# Random passphrases, mode 0600 from the start (never on a command line).
for f in "$pass" "$keypass"; do
  (
    umask 077
    head -c 24 /dev/urandom | base64 | tr -d '\n/+=' > "$f"
    printf '\n' >> "$f"
  )
  [ "$(wc -c < "$f")" -gt 16 ] || die "could not generate a passphrase"
  echo "random passphrase written to ${f#"$DEMO_DIR"/} ($(stat -c %a "$f"))"
done

section "Create the PKI: root CA -> server and client intermediate CAs (ML-DSA-65)"
pq pki init "$pki" --alg ml-dsa-65 --org Example \
  --server-domain example.com --spiffe-trust-domain cluster.local \
  --passphrase-file "$pass"

section "Issue the API server certificate: api.example.com"
pq pki issue server --pki "$pki" --name api.example.com \
  --dns api.example.com --ip 127.0.0.1 --passphrase-file "$pass" --key-passphrase-file "$keypass"

section "Issue the client certificates: Client 1, Client 2, Service A"
pq pki issue client --pki "$pki" --name client-1 --passphrase-file "$pass" --key-passphrase-file "$keypass"
pq pki issue client --pki "$pki" --name client-2 --passphrase-file "$pass" --key-passphrase-file "$keypass"
pq pki issue client --pki "$pki" --name service-a \
  --spiffe-id spiffe://cluster.local/ns/production/sa/frontend-service \
  --passphrase-file "$pass" --key-passphrase-file "$keypass"

section "Inventory"
pq pki list --pki "$pki"
pq pki check --pki "$pki"

section "PKI tree (text)"
pq pki tree --pki "$pki" --format text

section "PKI tree (mermaid)"
pq pki tree --pki "$pki" --format mermaid

servers=(api.example.com)
clients=(client-1 client-2 service-a)
for name in "${servers[@]}" "${clients[@]}"; do
  section "Inspect $name"
  pq inspect "$issued/$name.crt.pem"
done

section "Verify every chain (trust: the CA chain of the matching intermediate)"
for name in "${servers[@]}"; do
  pq verify --ca "$pki/server-ca-chain.pem" --purpose server "$issued/$name.chain.pem"
done
for name in "${clients[@]}"; do
  pq verify --ca "$pki/client-ca-chain.pem" --purpose client "$issued/$name.chain.pem"
done

# refused WHY CMD...: CMD must be refused with exit status 1.
refused() {
  local why=$1 rc; shift
  echo "(this command is SUPPOSED to fail: $why)"
  show "$@"
  set +e
  "$@" 2>&1
  rc=$?
  set -e
  [ "$rc" -eq 1 ] || die "expected exit status 1 (refused), got $rc"
  echo "-> refused with exit status 1, as expected"
}

section "Expected refusals"
refused "client-1 has no serverAuth EKU" \
  "$PQMTLS_BIN" verify --ca "$pki/client-ca-chain.pem" --purpose server "$issued/client-1.chain.pem"
refused "client-1 was issued by the client intermediate, which a client of the API does not trust" \
  "$PQMTLS_BIN" verify --ca "$pki/server-ca-chain.pem" --purpose client "$issued/client-1.chain.pem"
refused "evil.org is outside the server CA's name constraint (example.com)" \
  "$PQMTLS_BIN" pki issue server --pki "$pki" --name evil.org --passphrase-file "$pass"

section "Summary"
cat <<EOF
All steps succeeded. Files:
  demo/passphrase.txt              random passphrase (0600) for the CA keys
  demo/key-passphrase.txt          random passphrase (0600) for the issued keys
  demo/pki/                        the PKI (root CA, server and client intermediates, inventory)
  demo/pki/server-ca-chain.pem     trust for server certificates
  demo/pki/client-ca-chain.pem     trust for client certificates
  demo/pki/issued/NAME.crt.pem     leaf certificate
  demo/pki/issued/NAME.key.pem     leaf private key (encrypted with key-passphrase.txt, 0600)
  demo/pki/issued/NAME.chain.pem   leaf + intermediate
  NAME: ${servers[*]} ${clients[*]}
(demo/ is $DEMO_DIR)
EOF
