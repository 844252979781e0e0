# shellcheck shell=bash
# CRLs made by OpenSSL's own `openssl ca`, as a reference beside pqmtls's: sourced by
# tests after lib/common.bash, with C set to the directory the CA databases go in.

# ca_setup NAME CERT KEY: a CA database for `openssl ca` in $C/NAME
ca_setup() {
    mkdir -p "$C/$1"
    : > "$C/$1/index.txt"
    echo 1000 > "$C/$1/crlnumber"
    cat > "$C/$1/ca.cnf" <<EOC
[ca]
default_ca = CA_default
[CA_default]
database = $C/$1/index.txt
crlnumber = $C/$1/crlnumber
certificate = $2
private_key = $3
default_md = default
default_crl_days = 1
unique_subject = no
EOC
}

# gencrl NAME OUT [ca options...]: the CRL of CA NAME into OUT
gencrl() {
    local n="$1" out="$2"; shift 2
    run ossl ca -config "$C/$n/ca.cnf" -gencrl -batch -out "$out" "$@"
    [[ $RC -eq 0 ]] || fail "openssl ca -gencrl ($n): $OUT"
}
