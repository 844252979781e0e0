#!/usr/bin/env bash
# openssl_judge: OpenSSL 3.5's own `openssl verify -x509_strict` is the judge of
# the certificates `pqmtls pki` makes, and `pqmtls verify` must agree with it.
#
# Run by hand from the repository root:
#   PQMTLS_BIN=build/pqmtls OPENSSL_BIN=/var/cache/pqmtls/openssl-3.5.7/bin/openssl \
#   OPENSSL_LIBDIR=/var/cache/pqmtls/openssl-3.5.7/lib bash tests/integration/openssl_judge.sh
# (all three default to those values when unset; PQMTLS_KEEP_TMP=1 keeps the temp dir on failure)
#
# Asserts:
#  - pki init / issue server / issue client (+ SPIFFE ID) succeed;
#  - each leaf verifies with `openssl verify -x509_strict` against its own chain file for
#    its own purpose, and fails against the other chain file and for the other purpose;
#  - a server certificate for a name outside the server CA's name constraints, forced into
#    existence with the openssl CLI and the server CA key, fails `openssl verify`;
#    `pqmtls pki issue server --name evil.org` is refused (exit 1, message about the constraint);
#  - `pqmtls verify` agrees with openssl on every one of those cases; it builds the path from
#    --ca alone (a chain file's intermediate is ignored, docs/cli.md), an intermediate alone may be the anchor;
#  - encrypted keys: mode 0600, "ENCRYPTED PRIVATE KEY", do not load with a wrong passphrase;
#  - `pki sign-csr` accepts an OpenSSL-made ML-DSA-65 CSR and refuses tampered CSRs and garbage;
#  - certificate extensions as printed by `openssl x509 -text`;
#  - SPIFFE IDs outside the trust domain or malformed are refused;
#  - a wrong passphrase at `pki issue` is exit 1 with a clear message, never a crash.

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin

P="$T/pki"
echo 'correct horse battery staple' > "$T/pass.txt"
echo 'not the passphrase' > "$T/wrong.txt"
PASSIN="file:$T/pass.txt"
PF=(--passphrase-file "$T/pass.txt")
# Leaf keys get a passphrase of their own (here the same file, to keep one secret).
KF=(--key-passphrase-file "$T/pass.txt")

# ---------------------------------------------------------------- PKI creation
expect_ok "pki init (ML-DSA-65, org Example, server domain example.com, trust domain cluster.local)" \
    pqm pki init "$P" --org Example --server-domain example.com \
        --spiffe-trust-domain cluster.local "${PF[@]}"

SCHAIN="$(pki_file "$P" server-ca-chain.pem)"
CCHAIN="$(pki_file "$P" client-ca-chain.pem)"
SKEY="$(pki_file "$P" server-int-ca.key.pem server-ca.key.pem)"
info "server chain: ${SCHAIN#"$P"/}, client chain: ${CCHAIN#"$P"/}, server CA key: ${SKEY#"$P"/}"

expect_ok "issue server api.example.com (--dns api.example.com --ip 127.0.0.1)" \
    pqm pki issue server --pki "$P" --name api.example.com --dns api.example.com --ip 127.0.0.1 "${PF[@]}" "${KF[@]}"
expect_ok "issue client client1" \
    pqm pki issue client --pki "$P" --name client1 "${PF[@]}" "${KF[@]}"
expect_ok "issue client service-a with SPIFFE ID" \
    pqm pki issue client --pki "$P" --name service-a \
        --spiffe-id spiffe://cluster.local/ns/production/sa/frontend-service "${PF[@]}" "${KF[@]}"

I="$P/issued"
SRV="$I/api.example.com.crt.pem"
CL1="$I/client1.crt.pem"
SVA="$I/service-a.crt.pem"
for f in "$SRV" "$CL1" "$SVA" "$I/api.example.com.key.pem" "$I/client1.key.pem" "$I/service-a.key.pem" \
         "$I/api.example.com.chain.pem" "$I/client1.chain.pem" "$I/service-a.chain.pem"; do
    [[ -s "$f" ]] || fail "expected file ${f#"$T"/} after issue"
done
pass "issued files (crt, key, chain) exist for all three"

# Split the chain files: the root is the self-issued one, the intermediate the other.
find_ca() { # CHAINFILE OUTPREFIX -> sets CA_ROOT, CA_INT
    local f
    CA_ROOT="" CA_INT=""
    for f in $(split_pem "$1" "$2"); do
        if is_self_issued "$f"; then CA_ROOT="$f"; else CA_INT="$f"; fi
    done
    [[ -n "$CA_ROOT" && -n "$CA_INT" ]] || fail "$1 should hold an intermediate and the root"
}
[[ "$(cert_count "$SCHAIN")" -eq 2 ]] || fail "server-ca-chain.pem should hold 2 certificates, holds $(cert_count "$SCHAIN")"
[[ "$(cert_count "$CCHAIN")" -eq 2 ]] || fail "client-ca-chain.pem should hold 2 certificates, holds $(cert_count "$CCHAIN")"
find_ca "$SCHAIN" "$T/schain"; ROOT="$CA_ROOT"; SINT="$CA_INT"
find_ca "$CCHAIN" "$T/cchain"; ROOT2="$CA_ROOT"; CINT="$CA_INT"
[[ "$(cert_fp "$ROOT")" == "$(cert_fp "$ROOT2")" ]] || fail "server and client chains end in different roots"
[[ "$(cert_fp "$SINT")" != "$(cert_fp "$CINT")" ]] || fail "server and client intermediates are the same certificate"
pass "both chain files hold their own intermediate and the same root"
[[ "$(cert_issuer "$SRV")" == "$(cert_subject "$SINT")" ]] || fail "server leaf not issued by the server intermediate"
[[ "$(cert_issuer "$CL1")" == "$(cert_subject "$CINT")" ]] || fail "client leaf not issued by the client intermediate"
pass "leaves are issued by their own intermediate"

# ---------------------------------------------------------------- judge helpers
# judge EXPECT(ok|bad) DESC PURPOSE(sslserver|sslclient) CHAIN CERT
# Runs openssl verify, then pqmtls verify with the same trust and purpose: both must agree.
judge() {
    local want="$1" desc="$2" purpose="$3" chain="$4" cert="$5"; shift 5
    local ppurpose=server
    [[ "$purpose" == sslclient ]] && ppurpose=client
    run ossl verify -x509_strict -purpose "$purpose" -CAfile "$chain" "$@" "$cert"
    local orc=$RC oout=$OUT
    if [[ "$want" == ok ]]; then
        [[ $orc -eq 0 ]] || fail "openssl verify: $desc: expected OK, got exit $orc: $oout"
    else
        [[ $orc -ne 0 ]] || fail "openssl verify: $desc: expected failure, got OK: $oout"
    fi
    pass "openssl verify: $desc -> $want"
    run pqm verify --ca "$chain" --purpose "$ppurpose" "$cert"
    if [[ "$want" == ok ]]; then
        [[ $RC -eq 0 ]] || fail "pqmtls verify disagrees with openssl: $desc: expected OK (exit 0), got exit $RC: $OUT"
    else
        [[ $RC -eq 1 ]] || fail "pqmtls verify disagrees with openssl: $desc: expected refusal (exit 1), got exit $RC: $OUT"
    fi
    pass "pqmtls verify agrees: $desc -> $want"
}

# ---------------------------------------------------------------- chains and purposes
judge ok  "server leaf vs server-ca-chain, purpose server"         sslserver "$SCHAIN" "$SRV"
judge bad "server leaf vs client-ca-chain, purpose server"         sslserver "$CCHAIN" "$SRV"
judge bad "server leaf vs server-ca-chain, purpose client"         sslclient "$SCHAIN" "$SRV"
judge ok  "client1 vs client-ca-chain, purpose client"             sslclient "$CCHAIN" "$CL1"
judge bad "client1 vs server-ca-chain, purpose client"             sslclient "$SCHAIN" "$CL1"
judge bad "client1 presented for purpose server (client chain)"    sslserver "$CCHAIN" "$CL1"
judge ok  "service-a vs client-ca-chain, purpose client"           sslclient "$CCHAIN" "$SVA"
judge bad "service-a vs server-ca-chain, purpose client"           sslclient "$SCHAIN" "$SVA"
judge bad "service-a presented for purpose server (client chain)"  sslserver "$CCHAIN" "$SVA"
# Trusting only the root, with the intermediate nowhere: both refuse.
judge bad "server leaf, root-only trust, no intermediate"          sslserver "$ROOT" "$SRV"
# pqmtls builds the path from --ca alone (docs/cli.md): a chain file's intermediate is ignored.
expect_rc 1 "pqmtls verify: api.example.com.chain.pem with root-only trust is refused (chain file's intermediate ignored)" \
    pqm verify --ca "$ROOT" --purpose server "$I/api.example.com.chain.pem"
expect_rc 0 "pqmtls verify: api.example.com.chain.pem against server-ca-chain.pem, purpose server" \
    pqm verify --ca "$SCHAIN" --purpose server "$I/api.example.com.chain.pem"
expect_rc 1 "pqmtls verify: client1.chain.pem against server-ca-chain.pem, purpose client, is refused" \
    pqm verify --ca "$SCHAIN" --purpose client "$I/client1.chain.pem"
expect_rc 0 "pqmtls verify: client1.chain.pem against client-ca-chain.pem, purpose client" \
    pqm verify --ca "$CCHAIN" --purpose client "$I/client1.chain.pem"
# The intermediate alone as --ca (it may be the anchor): accepted for its own leaves only.
expect_rc 0 "pqmtls verify: client1 with only the client intermediate as --ca" \
    pqm verify --ca "$CINT" --purpose client "$CL1"
expect_rc 1 "pqmtls verify: api.example.com with only the client intermediate as --ca is refused" \
    pqm verify --ca "$CINT" --purpose server "$SRV"

# ---------------------------------------------------------------- name constraints
# A certificate for evil.org, signed by the real server intermediate key with the openssl CLI.
expect_ok "openssl decrypts the server CA key with the PKI passphrase" \
    ossl pkey -in "$SKEY" -passin "$PASSIN" -out "$T/sint.key"
chmod 600 "$T/sint.key"
cat > "$T/evil.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:evil.org
EOF
expect_ok "openssl req makes an ML-DSA-65 CSR for evil.org" \
    ossl req -new -newkey ml-dsa-65 -nodes -keyout "$T/evil.key" -out "$T/evil.csr" -subj "/O=Example/CN=evil.org"
expect_ok "openssl x509 -req signs evil.org with the server intermediate key (forced)" \
    ossl x509 -req -in "$T/evil.csr" -CA "$SINT" -CAkey "$T/sint.key" -days 30 \
        -extfile "$T/evil.ext" -out "$T/evil.crt.pem"
judge bad "evil.org (outside DNS:example.com constraint) vs server-ca-chain" sslserver "$SCHAIN" "$T/evil.crt.pem"
run ossl verify -x509_strict -purpose sslserver -CAfile "$SCHAIN" "$T/evil.crt.pem"
assert_contains "openssl names the constraint violation for evil.org" "$OUT" "permitted subtree violation"
# Control: the same forced path, for a name inside the constraint, verifies (so the failure above
# is the constraint, not the way the certificate was made).
sed 's/DNS:evil.org/DNS:inside.example.com/' "$T/evil.ext" > "$T/inside.ext"
ossl req -new -newkey ml-dsa-65 -nodes -keyout "$T/inside.key" -out "$T/inside.csr" -subj "/O=Example/CN=inside.example.com" 2>/dev/null
ossl x509 -req -in "$T/inside.csr" -CA "$SINT" -CAkey "$T/sint.key" -days 30 \
    -extfile "$T/inside.ext" -out "$T/inside.crt.pem" 2>/dev/null
judge ok  "control: inside.example.com forced the same way vs server-ca-chain" sslserver "$SCHAIN" "$T/inside.crt.pem"
# An IP SAN outside loopback (default --server-ip-range permits only loopback)
sed 's/DNS:evil.org/DNS:ip.example.com,IP:10.1.2.3/' "$T/evil.ext" > "$T/ip.ext"
ossl x509 -req -in "$T/inside.csr" -CA "$SINT" -CAkey "$T/sint.key" -days 30 \
    -extfile "$T/ip.ext" -out "$T/ip.crt.pem" 2>/dev/null
judge bad "IP 10.1.2.3 (outside default loopback IP constraint) vs server-ca-chain" sslserver "$SCHAIN" "$T/ip.crt.pem"

expect_rc 1 "pqmtls pki issue server --name evil.org is refused with exit 1" \
    pqm pki issue server --pki "$P" --name evil.org "${PF[@]}"
shopt -s nocasematch
[[ "$OUT" =~ constrain|permitted|example\.com ]] || fail "refusal of evil.org should mention the name constraint, got: $OUT"
shopt -u nocasematch
pass "refusal of evil.org mentions the constraint: $(head -n 1 <<<"$OUT")"
[[ ! -e "$I/evil.org.crt.pem" ]] || fail "refused evil.org still left $I/evil.org.crt.pem"
pass "no certificate file for the refused evil.org"
expect_rc 1 "pqmtls pki issue server api2.example.com --dns evil.org is refused with exit 1" \
    pqm pki issue server --pki "$P" --name api2.example.com --dns evil.org "${PF[@]}"
expect_rc 1 "pqmtls pki issue server with --ip 10.1.2.3 (outside loopback) is refused with exit 1" \
    pqm pki issue server --pki "$P" --name api3.example.com --ip 10.1.2.3 "${PF[@]}"

# ---------------------------------------------------------------- keys
for k in "$I/api.example.com.key.pem" "$I/client1.key.pem" "$I/service-a.key.pem" "$SKEY"; do
    kn="${k#"$P"/}"
    [[ "$(file_mode "$k")" == 600 ]] || fail "$kn mode is $(file_mode "$k"), expected 600"
    pass "$kn has mode 0600"
    [[ "$(head -n 1 "$k")" == "-----BEGIN ENCRYPTED PRIVATE KEY-----" ]] \
        || fail "$kn PEM header is '$(head -n 1 "$k")', expected ENCRYPTED PRIVATE KEY"
    pass "$kn is an ENCRYPTED PRIVATE KEY"
    run ossl pkey -in "$k" -passin pass:wrong -noout
    [[ $RC -ne 0 ]] || fail "$kn loads with a wrong passphrase"
    pass "$kn does not load with a wrong passphrase"
    run ossl pkey -in "$k" -passin "$PASSIN" -pubout
    [[ $RC -eq 0 ]] || fail "$kn does not load with the right passphrase: $OUT"
    pass "$kn loads with the right passphrase"
done
# The leaf key is the key of the leaf certificate
kpub="$(ossl pkey -in "$I/client1.key.pem" -passin "$PASSIN" -pubout)"
cpub="$(ossl x509 -in "$CL1" -noout -pubkey)"
[[ "$kpub" == "$cpub" ]] || fail "client1.key.pem does not match client1.crt.pem"
pass "client1.key.pem matches the public key of client1.crt.pem"
for k in "$(pki_file "$P" root-ca.key.pem root.key.pem)" "$(pki_file "$P" client-int-ca.key.pem client-ca.key.pem)"; do
    [[ "$(file_mode "$k")" == 600 ]] || fail "${k#"$P"/} mode is $(file_mode "$k"), expected 600"
    [[ "$(head -n 1 "$k")" == "-----BEGIN ENCRYPTED PRIVATE KEY-----" ]] || fail "${k#"$P"/} is not encrypted"
    pass "${k#"$P"/} is encrypted with mode 0600"
done

# ---------------------------------------------------------------- wrong passphrase
expect_rc 1 "pki issue with a wrong passphrase exits exactly 1" \
    pqm pki issue client --pki "$P" --name wrongpass --passphrase-file "$T/wrong.txt"
shopt -s nocasematch
[[ "$OUT" =~ passphrase|password|decrypt ]] || fail "wrong-passphrase message should say what is wrong, got: $OUT"
shopt -u nocasematch
pass "wrong-passphrase message is clear: $(head -n 1 <<<"$OUT")"
[[ ! -e "$I/wrongpass.crt.pem" && ! -e "$I/wrongpass.key.pem" ]] || fail "wrong passphrase left files for wrongpass"
pass "wrong passphrase leaves no files behind"
run env PQMTLS_PASSPHRASE='not the passphrase' "$PQMTLS_BIN" pki issue client --pki "$P" --name wrongpass2 </dev/null
[[ $RC -eq 1 ]] || fail "pki issue with a wrong PQMTLS_PASSPHRASE: expected exit 1, got $RC: $OUT"
pass "pki issue with a wrong PQMTLS_PASSPHRASE exits exactly 1"
: > "$T/empty.txt"
run pqm pki issue client --pki "$P" --name emptypass --passphrase-file "$T/empty.txt"
[[ $RC -eq 1 || $RC -eq 2 ]] || fail "pki issue with an empty passphrase file: expected exit 1 (or 2), got $RC: $OUT"
pass "pki issue with an empty passphrase file is refused (exit $RC)"
run env PQMTLS_PASSPHRASE="$(cat "$T/pass.txt")" "$PQMTLS_BIN" pki issue client --pki "$P" --name envpass </dev/null
[[ $RC -eq 0 ]] || fail "pki issue with the right PQMTLS_PASSPHRASE: expected exit 0, got $RC: $OUT"
pass "pki issue with the right PQMTLS_PASSPHRASE succeeds"

# ---------------------------------------------------------------- sign-csr
expect_ok "openssl req -new -newkey ml-dsa-65 makes a client CSR" \
    ossl req -new -newkey ml-dsa-65 -nodes -keyout "$T/csr.key" -out "$T/csr.pem" -subj "/O=Example/CN=csrclientcn"
expect_ok "pki sign-csr accepts the valid CSR (profile client)" \
    pqm pki sign-csr --pki "$P" --csr "$T/csr.pem" --profile client --name csrclient "${PF[@]}"
[[ -s "$I/csrclient.crt.pem" ]] || fail "sign-csr wrote no $I/csrclient.crt.pem"
[[ "$(ossl x509 -in "$I/csrclient.crt.pem" -noout -pubkey)" == "$(ossl req -in "$T/csr.pem" -noout -pubkey)" ]] \
    || fail "sign-csr certificate does not carry the CSR's public key"
pass "sign-csr certificate carries the CSR's public key"
judge ok "sign-csr client certificate vs client-ca-chain" sslclient "$CCHAIN" "$I/csrclient.crt.pem"

# Tampered CSRs: flip a byte of the signature, and of the subject, in DER.
pem_to_der "$T/csr.pem" > "$T/csr.der"
sz=$(stat -c %s "$T/csr.der")
cp "$T/csr.der" "$T/tsig.der"; flip_byte "$T/tsig.der" $(( sz - 20 ))
off=$(grep -obUa 'csrclientcn' "$T/csr.der" | awk -F: 'NR == 1 {print $1}')
[[ -n "$off" ]] || fail "could not find the subject CN in the CSR's DER"
cp "$T/csr.der" "$T/tsubj.der"; flip_byte "$T/tsubj.der" $(( off + 3 ))   # csrclientcn -> csrbliemtcn
der_to_pem "$T/tsig.der" "CERTIFICATE REQUEST" > "$T/tsig.pem"
der_to_pem "$T/tsubj.der" "CERTIFICATE REQUEST" > "$T/tsubj.pem"
for t in tsig tsubj; do
    run ossl req -in "$T/$t.pem" -noout -verify
    [[ $RC -ne 0 ]] || fail "test setup: openssl still accepts the tampered CSR $t"
    run ossl req -in "$T/$t.pem" -noout -subject
    [[ $RC -eq 0 ]] || fail "test setup: tampered CSR $t no longer parses (should parse, with a bad signature): $OUT"
done
pass "test setup: both tampered CSRs parse but fail openssl req -verify"
expect_rc 1 "pki sign-csr refuses a CSR with a flipped signature byte (exit 1)" \
    pqm pki sign-csr --pki "$P" --csr "$T/tsig.pem" --profile client --name tsig "${PF[@]}"
expect_rc 1 "pki sign-csr refuses a CSR with a flipped subject byte (exit 1)" \
    pqm pki sign-csr --pki "$P" --csr "$T/tsubj.pem" --profile client --name tsubj "${PF[@]}"
head -c 3000 /dev/urandom > "$T/garbage.pem"
expect_rc 1 "pki sign-csr refuses a garbage file (exit 1)" \
    pqm pki sign-csr --pki "$P" --csr "$T/garbage.pem" --profile client --name garbage "${PF[@]}"
printf -- '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' > "$T/garbage2.pem"
expect_rc 1 "pki sign-csr refuses a PEM with a garbage body (exit 1)" \
    pqm pki sign-csr --pki "$P" --csr "$T/garbage2.pem" --profile client --name garbage2 "${PF[@]}"
for n in tsig tsubj garbage garbage2; do
    [[ ! -e "$I/$n.crt.pem" ]] || fail "refused CSR $n still produced $I/$n.crt.pem"
done
pass "no certificate written for any refused CSR"
# A server-profile CSR for a name outside the constraint
ossl req -new -newkey ml-dsa-65 -nodes -keyout "$T/csr2.key" -out "$T/csr2.pem" -subj "/CN=evil.org" 2>/dev/null
expect_rc 1 "pki sign-csr --profile server refuses --dns evil.org (exit 1)" \
    pqm pki sign-csr --pki "$P" --csr "$T/csr2.pem" --profile server --name evil.org --dns evil.org "${PF[@]}"

# ---------------------------------------------------------------- extensions (openssl x509 -text)
# expect_ext DESC CERT HEADER CRITICAL(yes|no|any) EXPECTED_VALUE(exact, lines joined by "|")
expect_ext() {
    local desc="$1" cert="$2" hdr="$3" crit="$4" want="$5" blk got hline note=""
    blk="$(ext_block "$cert" "$hdr")"
    [[ -n "$blk" ]] || fail "$desc: no '$hdr' extension"
    hline="$(head -n 1 <<<"$blk")"
    case "$crit" in
        yes) [[ "$hline" == *critical* ]] || fail "$desc: '$hdr' is not critical"; note=" (critical)" ;;
        no)  [[ "$hline" != *critical* ]] || fail "$desc: '$hdr' is critical, expected not" ;;
    esac
    got="$(tail -n +2 <<<"$blk" | paste -sd "|")"
    [[ "$got" == "$want" ]] || fail "$desc: '$hdr' is '$got', expected '$want'"
    pass "$desc: $hdr$note = $want"
}
# leaf_not_ca DESC CERT: basicConstraints, if present, says CA:FALSE
leaf_not_ca() {
    local v; v="$(ext_value "$2" "X509v3 Basic Constraints")"
    [[ -z "$v" || "$v" == "CA:FALSE" ]] || fail "$1: basicConstraints is '$v', expected CA:FALSE or absent"
    pass "$1: not a CA (basicConstraints ${v:-absent})"
}
expect_ext "root"                "$ROOT" "X509v3 Basic Constraints" yes "CA:TRUE, pathlen:2"
expect_ext "root"                "$ROOT" "X509v3 Key Usage"         yes "Certificate Sign, CRL Sign"
expect_ext "server intermediate" "$SINT" "X509v3 Basic Constraints" yes "CA:TRUE, pathlen:0"
expect_ext "server intermediate" "$SINT" "X509v3 Key Usage"         yes "Certificate Sign, CRL Sign"
expect_ext "client intermediate" "$CINT" "X509v3 Basic Constraints" yes "CA:TRUE, pathlen:0"
expect_ext "client intermediate" "$CINT" "X509v3 Key Usage"         yes "Certificate Sign, CRL Sign"
nc="$(ext_block "$SINT" "X509v3 Name Constraints")"
[[ "$(head -n 1 <<<"$nc")" == *critical* ]] || fail "server intermediate: Name Constraints missing or not critical: $nc"
grep -qx 'DNS:example.com' <<<"$nc" || fail "server intermediate: Name Constraints lack DNS:example.com: $nc"
grep -qx 'IP:127.0.0.0/255.0.0.0' <<<"$nc" || fail "server intermediate: Name Constraints lack IP:127.0.0.0/255.0.0.0 (default loopback): $nc"
grep -q 'Permitted:' <<<"$nc" || fail "server intermediate: constraints are not in Permitted: $nc"
pass "server intermediate: critical Name Constraints permit DNS:example.com and loopback IP"
nc="$(ext_block "$CINT" "X509v3 Name Constraints")"
[[ "$(head -n 1 <<<"$nc")" == *critical* ]] || fail "client intermediate: Name Constraints missing or not critical: $nc"
grep -qx 'URI:cluster.local' <<<"$nc" || fail "client intermediate: Name Constraints lack URI:cluster.local: $nc"
pass "client intermediate: critical Name Constraints permit URI:cluster.local"
leaf_not_ca "server leaf" "$SRV"
expect_ext "server leaf" "$SRV" "X509v3 Extended Key Usage" any "TLS Web Server Authentication"
san="$(ext_value "$SRV" "X509v3 Subject Alternative Name")"
[[ "$san" == *"DNS:api.example.com"* && "$san" == *"IP Address:127.0.0.1"* ]] \
    || fail "server leaf SAN lacks DNS:api.example.com or IP Address:127.0.0.1: $san"
pass "server leaf SAN: $san"
leaf_not_ca "client1 leaf" "$CL1"
leaf_not_ca "service-a leaf" "$SVA"
expect_ext "client1 leaf"   "$CL1" "X509v3 Extended Key Usage" any "TLS Web Client Authentication"
expect_ext "service-a leaf" "$SVA" "X509v3 Extended Key Usage" any "TLS Web Client Authentication"
expect_ext "service-a leaf" "$SVA" "X509v3 Subject Alternative Name" any "URI:spiffe://cluster.local/ns/production/sa/frontend-service"
for c in "$ROOT" "$SINT" "$CINT" "$SRV" "$CL1" "$SVA"; do
    sa="$(ossl x509 -in "$c" -noout -text | awk -F': ' '/Signature Algorithm/ && !n++ {print $2}')"
    [[ "$sa" == ML-DSA-65 ]] || fail "$(cert_subject "$c") signed with '$sa', expected ML-DSA-65"
done
pass "all six certificates are signed with ML-DSA-65"
grep -q 'O=Example' <<<"$(cert_subject "$ROOT")" || fail "root subject lacks O=Example: $(cert_subject "$ROOT")"
pass "root subject carries O=Example"
for c in "$SRV" "$CL1" "$SVA" "$SINT"; do
    expect_ok "pqmtls inspect $(basename "$c")" pqm inspect "$c"
done

# ---------------------------------------------------------------- SPIFFE IDs
spiffe_refused() { # DESC URI
    local n="sp$((++_sp))"
    run pqm pki issue client --pki "$P" --name "$n" --spiffe-id "$2" "${PF[@]}"
    [[ $RC -eq 1 || $RC -eq 2 ]] || fail "SPIFFE ID $2 ($1): expected refusal (exit 1 or 2), got exit $RC: $OUT"
    [[ ! -e "$I/$n.crt.pem" ]] || fail "SPIFFE ID $2 ($1) refused but $I/$n.crt.pem written"
    pass "SPIFFE ID refused ($1, exit $RC): $2"
}
_sp=0
spiffe_refused "outside trust domain"        "spiffe://evil.local/x"
spiffe_refused "no path"                     "spiffe://cluster.local"
spiffe_refused "root path only"              "spiffe://cluster.local/"
spiffe_refused "dot-dot segment"             "spiffe://cluster.local/../x"
spiffe_refused "dot segment"                 "spiffe://cluster.local/./x"
spiffe_refused "uppercase scheme"            "SPIFFE://cluster.local/x"
spiffe_refused "uppercase trust domain"      "spiffe://CLUSTER.local/x"
spiffe_refused "empty segment"               "spiffe://cluster.local/a//b"
spiffe_refused "trailing slash"              "spiffe://cluster.local/x/"
spiffe_refused "query"                       "spiffe://cluster.local/x?y=1"
spiffe_refused "fragment"                    "spiffe://cluster.local/x#y"
spiffe_refused "port"                        "spiffe://cluster.local:8443/x"
spiffe_refused "userinfo"                    "spiffe://user@cluster.local/x"
spiffe_refused "percent-encoding"            "spiffe://cluster.local/a%2Fb"
spiffe_refused "other scheme"                "https://cluster.local/x"
spiffe_refused "subdomain of trust domain"   "spiffe://evil.cluster.local/x"
spiffe_refused "suffix trust domain"         "spiffe://evilcluster.local/x"
expect_ok "a well-formed SPIFFE ID in the trust domain is accepted" \
    pqm pki issue client --pki "$P" --name service-b --spiffe-id spiffe://cluster.local/ns/default/sa/b-svc_1.x "${PF[@]}"

# ---------------------------------------------------------------- inventory still consistent
expect_ok "pki check: inventory consistent with the files after all of the above" pqm pki check --pki "$P"

done_all
