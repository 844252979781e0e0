#!/usr/bin/env bash
# The gateway's file watch under a Kubernetes volume mount: the kubelet replaces a
# mounted Secret's or ConfigMap's files by pointing the link ..data at a new directory
# (lib/kubelet.py does exactly that), and the files the gateway names are links through
# ..data. A swap of the CRLs, of the configuration file and of the certificate and key
# each reloads the gateway without a signal; a swap that lands while the gateway is still
# loading the previous one is not missed (the files are stamped before they are read).
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
PY=/usr/bin/python3
KUBELET="$PQMTLS_SOURCE_DIR/tests/integration/lib/kubelet.py"

P=$T/pki
pqm pki init "$P" --org Example --server-domain example.com --no-passphrase > /dev/null
pqm pki issue server --pki "$P" --name api.example.com --ip 127.0.0.1 --no-key-passphrase > /dev/null
pqm pki issue server --pki "$P" --name api-next.example.com --dns api.example.com --ip 127.0.0.1 \
    --no-key-passphrase > /dev/null
pqm pki issue client --pki "$P" --name alice --no-key-passphrase > /dev/null
pqm pki issue client --pki "$P" --name bob --no-key-passphrase > /dev/null
pqm pki crl --pki "$P" > /dev/null
I=$P/issued

UP=$(free_port)
"$PY" "$PQMTLS_SOURCE_DIR/tests/integration/lib/upstream.py" "$UP" "$T/seen" & track_pid $!
wait_port "$UP" 10 || fail "the upstream did not start"
GW=$(free_port)
MNT=$T/mnt # where the volume is mounted (/etc/pqmtls in a pod)

# payload DIR SERVER-NAME CLIENT-CRL [EXTRA-YAML]: the volume's files, as the kubelet
# would write them from a Secret and a ConfigMap (a projected volume).
payload() {
    local d=$1 server=$2 ccrl=$3 extra=${4:-}
    rm -rf "$d" && mkdir -p "$d/tls" "$d/crl"
    cp "$I/$server.chain.pem" "$d/tls/tls.crt"
    cp "$I/$server.key.pem" "$d/tls/tls.key"
    cp "$P/client-ca-chain.pem" "$d/tls/ca.crt"
    cp "$P/crl/root-ca.crl.pem" "$d/crl/root-ca.crl.pem"
    cp "$ccrl" "$d/crl/client-int-ca.crl.pem"
    cat > "$d/gateway.yaml" <<EOF
listen: 127.0.0.1:$GW
upstream: 127.0.0.1:$UP
cert: $MNT/tls/tls.crt
key: $MNT/tls/tls.key
client_ca: $MNT/tls/ca.crt
crl:
  - $MNT/crl/root-ca.crl.pem
  - $MNT/crl/client-int-ca.crl.pem
watch_interval: 0.05
workers: 1
access_log: "off"
$extra
EOF
}
as() { # NAME PATH: the HTTP status NAME gets, or "refused" when the handshake fails
    local out
    out=$(pqm request "https://api.example.com:$GW$2" --resolve "api.example.com:$GW:127.0.0.1" \
        --cert "$I/$1.crt.pem" --key "$I/$1.key.pem" --ca "$P/server-ca-chain.pem" --json 2>&1) \
        || { echo refused; return 0; }
    sed -n 's/.*"status":\([0-9]*\).*/\1/p' <<< "$out"
}
server_cn() {
    pqm request "https://api.example.com:$GW/" --resolve "api.example.com:$GW:127.0.0.1" \
        --cert "$I/alice.crt.pem" --key "$I/alice.key.pem" --ca "$P/server-ca-chain.pem" --json \
        | sed -n 's/.*"server_subject":"CN=\([^,"]*\).*/\1/p'
}
reloads() { grep -c 'reloaded.*(a file changed)' "$T/gw.err" || true; }
wait_reloads() { # N: until the gateway said "reloaded" N times
    for _ in $(seq 1 200); do [[ $(reloads) -ge $1 ]] && return 0; sleep 0.05; done
    fail "expected $1 reloads, saw $(reloads): $(tail -n 5 "$T/gw.err")"
}

payload "$T/a" api.example.com "$P/crl/client-int-ca.crl.pem"
"$PY" "$KUBELET" write "$MNT" "$T/a" || fail "kubelet.py write"
[[ -L "$MNT/..data" && -L "$MNT/gateway.yaml" && -L "$MNT/tls" ]] || fail "the mount is not laid out as the kubelet does"
[[ "$(readlink "$MNT/tls")" == "..data/tls" && "$(readlink "$MNT/..data")" == ..20* ]] \
    || fail "unexpected links: tls -> $(readlink "$MNT/tls"), ..data -> $(readlink "$MNT/..data")"
pass "the volume is laid out as the kubelet does (NAME -> ..data/NAME, ..data -> ..<time>)"

"$PQMTLS_BIN" gateway --config "$MNT/gateway.yaml" 2> "$T/gw.err" &
GWPID=$!
track_pid $GWPID
wait_port "$GW" 10 "$GWPID" || fail "the gateway did not start: $(cat "$T/gw.err")"
[[ $(as alice /) == 200 && $(as bob /) == 200 ]] || fail "alice and bob before any swap: $(as alice /) $(as bob /)"
pass "the gateway serves from the mounted files"

# ---- the CRLs: bob is revoked, the kubelet publishes the new CRL ------------------------
pqm pki revoke --pki "$P" "$(cert_serial "$I/bob.crt.pem")" > /dev/null
pqm pki crl --pki "$P" > /dev/null
payload "$T/b" api.example.com "$P/crl/client-int-ca.crl.pem"
n=$(reloads)
"$PY" "$KUBELET" write "$MNT" "$T/b"
wait_reloads $((n + 1))
[[ $(as bob /) == refused ]] || fail "bob after the CRL swap: $(as bob /), expected a refused handshake"
[[ $(as alice /) == 200 ]] || fail "alice after the CRL swap: $(as alice /)"
pass "a ..data swap of the CRLs reloads: the revoked client is refused, the other still passes"

# ---- the configuration file itself --------------------------------------------------------
payload "$T/c" api.example.com "$P/crl/client-int-ca.crl.pem" $'allow:\n  - cn=alice path=/mine'
n=$(reloads)
"$PY" "$KUBELET" write "$MNT" "$T/c"
wait_reloads $((n + 1))
[[ $(as alice /mine/x) == 200 && $(as alice /other) == 403 ]] \
    || fail "after the configuration swap: /mine/x $(as alice /mine/x), /other $(as alice /other)"
pass "a ..data swap of gateway.yaml reloads its policy"

# ---- the certificate and key (a renewal) ----------------------------------------------
[[ $(server_cn) == api.example.com ]] || fail "the served certificate: $(server_cn)"
payload "$T/d" api-next.example.com "$P/crl/client-int-ca.crl.pem"
n=$(reloads)
"$PY" "$KUBELET" write "$MNT" "$T/d"
wait_reloads $((n + 1))
[[ $(server_cn) == api-next.example.com ]] || fail "after the certificate swap the gateway serves $(server_cn)"
pass "a ..data swap of tls.crt and tls.key serves the new certificate"

# ---- a swap while the previous one is still being loaded ---------------------------------
# A client intermediate CRL with 300,000 entries (bob not among them) takes the gateway
# tens of milliseconds to parse and check after reading it: kubelet.py publishes the
# volume with it (E), waits until the gateway has read it, and publishes the volume with
# bob revoked (F) at once. The gateway must end up with F's files.
mkdir -p "$T/ca"
printf '[ca]\ndefault_ca = c\n[c]\ndatabase = %s\ncrlnumber = %s\ndefault_md = default\ndefault_crl_days = 7\n' \
    "$T/ca/index.txt" "$T/ca/crlnumber" > "$T/ca/ca.cnf"
echo 1000 > "$T/ca/crlnumber"
awk 'BEGIN { for (i = 1; i <= 300000; i++) printf "R\t300101000000Z\t250101000000Z\t7F%08X\tunknown\t/CN=x\n", i }' \
    > "$T/ca/index.txt"
ossl ca -config "$T/ca/ca.cnf" -gencrl -keyfile "$P/client-int-ca.key.pem" \
    -cert "$P/client-int-ca.crt.pem" -out "$T/big.crl.pem" 2> /dev/null || fail "openssl ca -gencrl"
payload "$T/e" api-next.example.com "$T/big.crl.pem"
payload "$T/f" api-next.example.com "$P/crl/client-int-ca.crl.pem"
n=$(reloads)
"$PY" "$KUBELET" write "$MNT" "$T/e"
wait_reloads $((n + 1))
[[ $(as bob /) == 200 ]] || fail "with the large CRL (bob not revoked) bob got $(as bob /)"
pass "the large CRL loads (bob is not revoked in it)"
"$PY" "$KUBELET" write "$MNT" "$T/f"
wait_reloads $((n + 2))
[[ $(as bob /) == refused ]] || fail "bob is not refused after the swap back"
n=$(reloads)
run "$PY" "$KUBELET" swap-during-read "$MNT" "$T/e" "$T/f" "$GWPID" "$(stat -c %s "$T/big.crl.pem")"
[[ $RC -eq 0 ]] || fail "kubelet.py swap-during-read: $OUT"
info "$OUT"
wait_reloads $((n + 1))
for _ in $(seq 1 40); do [[ $(as bob /) == refused ]] && break; sleep 0.05; done
[[ $(as bob /) == refused ]] \
    || fail "a swap during a reload was missed: the gateway kept the large CRL's files (bob passes): $(tail -n 4 "$T/gw.err")"
pass "a swap that lands while the previous files are being loaded is reloaded too"

kill -TERM "$GWPID"
wait "$GWPID" || fail "the gateway did not exit 0 on SIGTERM"
done_all
