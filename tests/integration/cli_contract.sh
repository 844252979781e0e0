#!/usr/bin/env bash
# cli_contract: the command-line contract of docs/cli.md and docs/pki.md that no other
# integration test covers: exit statuses and messages, --help, the JSON of `pki list` and
# `inspect` (checked against OpenSSL), `pki tree` in its three formats, --p12, --out,
# --count, the key passphrase options, every --alg and --root-alg, --days, --server-ip-range
# and `pki sign-csr` ignoring a CSR's requested extensions.
#
# Run by hand from the repository root:
#   PQMTLS_BIN=build/pqmtls OPENSSL_BIN=/var/cache/pqmtls/openssl-3.5.7/bin/openssl \
#   OPENSSL_LIBDIR=/var/cache/pqmtls/openssl-3.5.7/lib bash tests/integration/cli_contract.sh
# (all three default to those values when unset; PQMTLS_KEEP_TMP=1 keeps the temp dir on failure)
#
# Needs python3 (to parse and check the JSON output).

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
require_tool python3

P="$T/pki"
I="$P/issued"
echo 'correct horse battery staple' > "$T/pass.txt"
echo 'another passphrase entirely' > "$T/other.txt"
PASSIN="file:$T/pass.txt"
PF=(--passphrase-file "$T/pass.txt")

# ---------------------------------------------------------------- helpers
# JSON helpers: json.load must accept the whole output (so the JSON is valid), then print
# flat lines that the checks below compare with OpenSSL.
cat > "$T/h.py" <<'PYEOF'
import ipaddress, json, sys

def flat(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ",".join(flat(x) for x in v)
    return str(v)

def ip_norm(s):
    # "127.0.0.0/255.0.0.0" or "0:0:0:0:0:0:0:1/FFFF:..." -> "127.0.0.0/8", "::1/128"
    addr, _, mask = s.partition("/")
    a = ipaddress.ip_address(addr)
    if not mask:
        return str(a)
    m = int(ipaddress.ip_address(mask))
    bits = bin(m).count("1")
    return "%s/%d" % (a, bits)

KU = {"Digital Signature": "digitalSignature", "Non Repudiation": "nonRepudiation",
      "Key Encipherment": "keyEncipherment", "Data Encipherment": "dataEncipherment",
      "Key Agreement": "keyAgreement", "Certificate Sign": "keyCertSign",
      "CRL Sign": "cRLSign", "Encipher Only": "encipherOnly", "Decipher Only": "decipherOnly"}
EKU = {"TLS Web Server Authentication": "serverAuth",
       "TLS Web Client Authentication": "clientAuth"}

def split_items(text):
    out = []
    for line in text.splitlines():
        for item in line.split(","):
            item = item.strip()
            if item:
                out.append(item)
    return out

cmd = sys.argv[1]
if cmd == "list-tsv":
    # fields separated by US (0x1f, not whitespace, so that empty fields survive `read`):
    # name kind profile status serial fp key_algorithm not_after cert_path key_path p12_path sans issuer_serial
    doc = json.load(sys.stdin)
    for c in doc["certificates"]:
        print("\x1f".join(flat(c.get(k)) for k in (
            "name", "kind", "profile", "status", "serial", "sha256_fingerprint",
            "key_algorithm", "not_after", "cert_path", "key_path", "p12_path", "sans",
            "issuer_serial")))
elif cmd == "inspect-flat":
    doc = json.load(sys.stdin)
    for k, v in doc.items():
        if k == "name_constraints":
            if v is None:
                print("name_constraints=null")
            else:
                print("name_constraints=permitted:%s;excluded:%s"
                      % (flat(v.get("permitted")), flat(v.get("excluded"))))
        else:
            print("%s=%s" % (k, flat(v)))
elif cmd == "indent":
    # for each line: the position (in characters, not bytes) of its first letter or digit
    for line in sys.stdin.buffer.read().decode("utf-8").splitlines():
        print(next((i for i, ch in enumerate(line) if ch.isalnum()), -1))
elif cmd == "json-ok":
    json.load(sys.stdin)
elif cmd == "ossl-ku":
    print(",".join(KU.get(x, "?" + x) for x in split_items(sys.stdin.read())))
elif cmd == "ossl-eku":
    print(",".join(EKU.get(x, "?" + x) for x in split_items(sys.stdin.read())))
elif cmd == "ossl-san":
    out = []
    for x in split_items(sys.stdin.read()):
        if x.startswith("IP Address:"):
            out.append("IP:" + ip_norm(x[len("IP Address:"):]))
        else:
            out.append(x)
    print(",".join(out))
elif cmd == "ossl-nc":
    per, exc, cur = [], [], None
    for line in sys.stdin.read().splitlines():
        t = line.strip()
        if t == "Permitted:":
            cur = per
        elif t == "Excluded:":
            cur = exc
        elif t and cur is not None:
            cur.append("IP:" + ip_norm(t[3:]) if t.startswith("IP:") else t)
    print("permitted:%s;excluded:%s" % (",".join(per), ",".join(exc)))
else:
    sys.exit("h.py: unknown command " + cmd)
PYEOF
py() { python3 "$T/h.py" "$@"; }
US=$'\x1f'   # field separator of list_tsv

# refused DESC NEEDLE CMD...: exit exactly 1 with exactly one line on stderr, containing NEEDLE.
ERR=""
refused() {
    local desc="$1" needle="$2" rc n; shift 2
    set +e
    "$@" >"$T/r.out" 2>"$T/r.err"
    rc=$?
    set -e
    ERR="$(cat "$T/r.err")"
    [[ $rc -eq 1 ]] || fail "$desc: expected exit 1, got $rc: $* :: $ERR $(head -c 500 "$T/r.out")"
    n=$(wc -l < "$T/r.err")
    [[ $n -eq 1 ]] || fail "$desc: expected exactly one line on stderr, got $n: $ERR"
    [[ "$ERR" == *"$needle"* ]] || fail "$desc: stderr should name '$needle', got: $ERR"
    pass "$desc (exit 1: $ERR)"
}
# usage DESC NEEDLE CMD...: exit exactly 2 (a usage error), stderr names NEEDLE.
usage() {
    local desc="$1" needle="$2" rc; shift 2
    set +e
    "$@" >"$T/u.out" 2>"$T/u.err"
    rc=$?
    set -e
    ERR="$(cat "$T/u.err")"
    [[ $rc -eq 2 ]] || fail "$desc: expected exit 2 (usage error), got $rc: $* :: $ERR"
    [[ "$ERR" == *"$needle"* ]] || fail "$desc: stderr should name '$needle', got: $ERR"
    pass "$desc (exit 2: $(head -n 1 <<<"$ERR"))"
}
# list_tsv DIR: pki list --json as TSV (fails the test if the JSON does not parse)
list_tsv() {
    local j
    j="$(pqm pki list --pki "$1" --json)" || fail "pki list --pki $1 --json failed"
    py list-tsv <<<"$j" || fail "pki list --json output is not the expected JSON: ${j:0:2000}"
}
# field of one inventory row: list_field DIR NAME COLUMN(1-based)
list_field() { list_tsv "$1" | awk -F"$US" -v n="$2" -v c="$3" '$1 == n { print $c }'; }
# iso date of a certificate's notAfter (as pqmtls prints it)
cert_end_iso() { date -u -d "$(ossl x509 -in "$1" -noout -enddate | sed 's/^notAfter=//')" +%Y-%m-%dT%H:%M:%SZ; }
cert_end_epoch() { date -u -d "$(ossl x509 -in "$1" -noout -enddate | sed 's/^notAfter=//')" +%s; }
# leaf public key algorithm as printed by openssl x509 -text
pubkey_alg() { ossl x509 -in "$1" -noout -text | awk -F': ' '/Public Key Algorithm:/ && !n++ { print $2 }'; }
sig_alg() { ossl x509 -in "$1" -noout -text | awk -F': ' '/Signature Algorithm:/ && !n++ { print $2 }'; }
# the private key of a PEM file (first key block), for comparison of public keys
pem_key_block() { awk '/-----BEGIN .*PRIVATE KEY-----/ { on = 1 } on { print } /-----END .*PRIVATE KEY-----/ { on = 0 }' "$1"; }

# ================================================================ --help
help_ok() {
    local out rc
    set +e
    out="$("$PQMTLS_BIN" "$@" --help 2>/dev/null)"
    rc=$?
    set -e
    [[ $rc -eq 0 ]] || fail "pqmtls $* --help: expected exit 0, got $rc"
    grep -q '^Usage:' <<<"$out" || fail "pqmtls $* --help: no 'Usage:' line on stdout: ${out:0:500}"
    pass "pqmtls ${*:+$* }--help exits 0 and prints a Usage: line"
}
help_ok
for c in "pki" "pki init" "pki issue" "pki issue server" "pki issue client" "pki sign-csr" \
         "pki list" "pki tree" "pki check" "inspect" "verify"; do
    # shellcheck disable=SC2086
    help_ok $c
done

# ================================================================ the main PKI
expect_ok "pki init (org Example, server domain example.com, trust domain cluster.local)" \
    pqm pki init "$P" --org Example --server-domain example.com \
        --spiffe-trust-domain cluster.local "${PF[@]}"
expect_ok "issue server api.example.com --dns api.example.com --ip 127.0.0.1" \
    pqm pki issue server --pki "$P" --name api.example.com --dns api.example.com --ip 127.0.0.1 "${PF[@]}"
expect_ok "issue client client-1" pqm pki issue client --pki "$P" --name client-1 "${PF[@]}"
SPIFFE=spiffe://cluster.local/ns/production/sa/frontend-service
expect_ok "issue client service-a --spiffe-id $SPIFFE" \
    pqm pki issue client --pki "$P" --name service-a --spiffe-id "$SPIFFE" "${PF[@]}"
# Every name issued in $P, for the final whole-inventory check.
ISSUED=(api.example.com client-1 service-a)

# ================================================================ exit statuses
echo 'this is not a certificate' > "$T/notcert.txt"
refused "inspect on a non-certificate names that file" "$T/notcert.txt" pqm inspect "$T/notcert.txt"
refused "inspect on a missing file names that file" "$T/missing.pem" pqm inspect "$T/missing.pem"
refused "pki list --pki /nonexistent names pki.db" "pki.db" pqm pki list --pki "$T/nonexistent"
refused "pki check --pki /nonexistent names pki.db" "pki.db" pqm pki check --pki "$T/nonexistent"

mkdir "$T/busy"
echo 'precious data' > "$T/busy/keep.txt"
before_sum="$(sha256sum "$T/busy/keep.txt")"
before_parent="$(ls -A "$T")"
refused "pki init into a non-empty directory says 'not empty'" "not empty" \
    pqm pki init "$T/busy" "${PF[@]}"
[[ "$(sha256sum "$T/busy/keep.txt")" == "$before_sum" ]] || fail "pki init changed the existing file in the non-empty directory"
[[ "$(ls -A "$T/busy")" == "keep.txt" ]] || fail "pki init added files to the non-empty directory: $(ls -A "$T/busy")"
[[ "$(ls -A "$T")" == "$before_parent" ]] || fail "refused pki init left something beside it: $(ls -A "$T")"
pass "refused pki init left the existing file untouched and nothing beside it"

usage "unknown option (pki list --bogus)"        "--bogus" pqm pki list --pki "$P" --bogus
usage "unknown option (pki issue --frobnicate)"  "--frobnicate" pqm pki issue client --pki "$P" --name x --frobnicate "${PF[@]}"
usage "unknown command (pqmtls bogus)"           "bogus"   pqm bogus
usage "missing --pki (pki list)"                 "--pki"   pqm pki list
usage "missing --pki (pki issue server)"         "--pki"   pqm pki issue server --name a.example.com "${PF[@]}"
usage "missing --name (pki issue server)"        "--name"  pqm pki issue server --pki "$P" "${PF[@]}"
usage "missing --name (pki issue client)"        "--name"  pqm pki issue client --pki "$P" "${PF[@]}"
usage "unknown --alg at pki init"                "foo"     pqm pki init "$T/algfoo" --alg foo "${PF[@]}"
[[ ! -e "$T/algfoo" ]] || fail "pki init with an unknown --alg still created $T/algfoo"
pass "pki init with an unknown --alg created nothing"
usage "unknown --alg at pki issue"               "foo"     pqm pki issue client --pki "$P" --name algfoo --alg foo "${PF[@]}"
usage "unknown --root-alg at pki init"           "bar"     pqm pki init "$T/algbar" --root-alg bar "${PF[@]}"
usage "bad --format for pki tree"                "svg"     pqm pki tree --pki "$P" --format svg
usage "verify without --ca"                      "--ca"    pqm verify --purpose server "$I/api.example.com.crt.pem"
[[ ! -e "$I/algfoo.crt.pem" && ! -e "$I/x.crt.pem" ]] || fail "a usage error still issued a certificate"
pass "no certificate issued by any usage error"

# ================================================================ pki list --json
# Expected rows: name|kind|profile|sans|file
declare -A FILE_OF=(
    [root-ca]="$P/root-ca.crt.pem" [server-int-ca]="$P/server-int-ca.crt.pem"
    [client-int-ca]="$P/client-int-ca.crt.pem"
    [api.example.com]="$I/api.example.com.crt.pem" [client-1]="$I/client-1.crt.pem"
    [service-a]="$I/service-a.crt.pem")
declare -A KIND_OF=([root-ca]=root [server-int-ca]=intermediate [client-int-ca]=intermediate
    [api.example.com]=server [client-1]=client [service-a]=client)
declare -A PROFILE_OF=([root-ca]=root-ca [server-int-ca]=server-ca [client-int-ca]=client-ca
    [api.example.com]=server [client-1]=client [service-a]=client)
declare -A SANS_OF=([root-ca]="" [server-int-ca]="" [client-int-ca]=""
    [api.example.com]="DNS:api.example.com,IP:127.0.0.1" [client-1]="" [service-a]="URI:$SPIFFE")
declare -A ISSUER_OF=([root-ca]=root-ca [server-int-ca]=root-ca [client-int-ca]=root-ca
    [api.example.com]=server-int-ca [client-1]=client-int-ca [service-a]=client-int-ca)

LJSON="$(pqm pki list --pki "$P" --json)"
py json-ok <<<"$LJSON" || fail "pki list --json is not valid JSON: ${LJSON:0:2000}"
pass "pki list --json is valid JSON"
LTSV="$(py list-tsv <<<"$LJSON")"
[[ "$(wc -l <<<"$LTSV")" -eq 6 ]] || fail "pki list --json should list 6 certificates, lists: $(cut -d "$US" -f1 <<<"$LTSV" | paste -sd ' ')"
pass "pki list --json lists exactly the 3 CAs and the 3 issued certificates"
for n in root-ca server-int-ca client-int-ca api.example.com client-1 service-a; do
    row="$(awk -F"$US" -v n="$n" '$1 == n' <<<"$LTSV")"
    [[ -n "$row" ]] || fail "pki list --json does not list $n"
    IFS="$US" read -r _ kind profile status serial fp alg notafter cpath _ _ sans iserial <<<"$row"
    f="${FILE_OF[$n]}"
    [[ "$kind" == "${KIND_OF[$n]}" ]] || fail "list $n: kind '$kind', expected '${KIND_OF[$n]}'"
    [[ "$profile" == "${PROFILE_OF[$n]}" ]] || fail "list $n: profile '$profile', expected '${PROFILE_OF[$n]}'"
    [[ "$status" == valid ]] || fail "list $n: status '$status', expected 'valid'"
    [[ "$serial" == "$(cert_serial "$f")" ]] || fail "list $n: serial '$serial', openssl says '$(cert_serial "$f")'"
    [[ "$fp" == "$(cert_fp "$f")" ]] || fail "list $n: sha256_fingerprint '$fp', openssl says '$(cert_fp "$f")'"
    [[ "$alg" == ml-dsa-65 ]] || fail "list $n: key_algorithm '$alg', expected ml-dsa-65"
    [[ "$notafter" == "$(cert_end_iso "$f")" ]] || fail "list $n: not_after '$notafter', openssl says '$(cert_end_iso "$f")'"
    [[ "$sans" == "${SANS_OF[$n]}" ]] || fail "list $n: sans '$sans', expected '${SANS_OF[$n]}'"
    [[ "$iserial" == "$(cert_serial "${FILE_OF[${ISSUER_OF[$n]}]}")" ]] || fail "list $n: issuer_serial '$iserial' is not its issuer's serial"
    [[ "$cpath" == "${f#"$P"/}" || "$cpath" == "$f" ]] || fail "list $n: cert_path '$cpath', expected ${f#"$P"/}"
    pass "list --json $n: $kind/$profile valid, serial, fingerprint and not_after = openssl, sans [${sans}], ml-dsa-65"
done

# ================================================================ inspect --json vs openssl
# inspect_vs_openssl CERT EXPECT_CA(true|false) EXPECT_PATHLEN(null|N)
inspect_vs_openssl() {
    local c="$1" want_ca="$2" want_pl="$3" j flat nm got want bc now end dl
    nm="$(basename "$c")"
    j="$(pqm inspect "$c" --json)" || fail "inspect --json $nm failed"
    flat="$(py inspect-flat <<<"$j")" || fail "inspect --json $nm: not valid JSON: ${j:0:1500}"
    g() { awk -v k="$1" 'index($0, k "=") == 1 { print substr($0, length(k) + 2) }' <<<"$flat"; }
    chk() { # FIELD WANT
        got="$(g "$1")"
        [[ "$got" == "$2" ]] || fail "inspect --json $nm: $1 is '$got', openssl says '$2'"
    }
    chk subject "$(cert_subject "$c")"
    chk issuer "$(cert_issuer "$c")"
    chk serial "$(cert_serial "$c")"
    chk sha256_fingerprint "$(cert_fp "$c")"
    chk key_usage "$(ext_value "$c" "X509v3 Key Usage" | py ossl-ku)"
    chk extended_key_usage "$(ext_value "$c" "X509v3 Extended Key Usage" | py ossl-eku)"
    chk sans "$(ext_value "$c" "X509v3 Subject Alternative Name" | py ossl-san)"
    want="null"
    while IFS= read -r u; do [[ "$u" == URI:spiffe://* ]] && want="${u#URI:}"; done < <(tr ',' '\n' <<<"$(g sans)")
    chk spiffe_id "$want"
    bc="$(ext_value "$c" "X509v3 Basic Constraints")"
    if [[ "$bc" == CA:TRUE* ]]; then
        chk is_ca true
        chk path_len "$(sed -n 's/.*pathlen:\([0-9]*\).*/\1/p' <<<"$bc")"
    else
        chk is_ca false
        chk path_len null
    fi
    chk is_ca "$want_ca"
    chk path_len "$want_pl"
    if [[ -n "$(ext_block "$c" "X509v3 Name Constraints")" ]]; then
        chk name_constraints "$(ext_value "$c" "X509v3 Name Constraints" | py ossl-nc)"
    else
        chk name_constraints null
    fi
    now=$(date +%s); end=$(cert_end_epoch "$c")
    dl=$(( (end - now) / 86400 ))
    got="$(g days_left)"
    if ! [[ "$got" =~ ^[0-9]+$ ]] || (( got < dl - 1 || got > dl + 1 )); then
        fail "inspect --json $nm: days_left '$got', expected $dl (from openssl notAfter)"
    fi
    pass "inspect --json $nm agrees with openssl: subject, issuer, serial, fingerprint, key usage, EKU, SANs, SPIFFE ID, CA/path_len ($want_ca/$want_pl), name constraints, days_left $got"
}
inspect_vs_openssl "$I/api.example.com.crt.pem" false null
inspect_vs_openssl "$I/service-a.crt.pem" false null
inspect_vs_openssl "$I/client-1.crt.pem" false null
inspect_vs_openssl "$P/server-int-ca.crt.pem" true 0
inspect_vs_openssl "$P/client-int-ca.crt.pem" true 0
inspect_vs_openssl "$P/root-ca.crt.pem" true 2

# explicit expectations, not only agreement with openssl
jf() { pqm inspect "$1" --json | py inspect-flat | awk -v k="$2" 'index($0, k "=") == 1 { print substr($0, length(k) + 2) }'; }
[[ "$(jf "$I/service-a.crt.pem" spiffe_id)" == "$SPIFFE" ]] || fail "inspect --json service-a: spiffe_id is '$(jf "$I/service-a.crt.pem" spiffe_id)'"
pass "inspect --json service-a: spiffe_id = $SPIFFE"
[[ "$(jf "$I/api.example.com.crt.pem" extended_key_usage)" == serverAuth ]] || fail "inspect --json api.example.com: EKU is not serverAuth"
[[ "$(jf "$I/client-1.crt.pem" extended_key_usage)" == clientAuth ]] || fail "inspect --json client-1: EKU is not clientAuth"
[[ "$(jf "$I/api.example.com.crt.pem" key_usage)" == digitalSignature ]] || fail "inspect --json api.example.com: key_usage is not digitalSignature"
pass "inspect --json: server EKU serverAuth, client EKU clientAuth, leaf key_usage digitalSignature"
nc="$(jf "$P/server-int-ca.crt.pem" name_constraints)"
[[ "$nc" == "permitted:DNS:example.com,IP:127.0.0.0/8,IP:::1/128;excluded:" ]] \
    || fail "inspect --json server-int-ca: name_constraints '$nc', expected DNS:example.com and loopback"
pass "inspect --json server-int-ca: name_constraints permit DNS:example.com, IP:127.0.0.0/8, IP:::1/128"
dl="$(jf "$I/api.example.com.crt.pem" days_left)"
[[ "$dl" == 364 || "$dl" == 365 ]] || fail "inspect --json of a fresh 365-day cert: days_left '$dl', expected 364 or 365"
pass "inspect --json of a fresh 365-day cert: days_left $dl"

expect_ok "inspect (text) service-a" pqm inspect "$I/service-a.crt.pem"
grep -Eq "^Serial:[[:space:]]+$(cert_serial "$I/service-a.crt.pem")\$" <<<"$OUT" \
    || fail "inspect text: no 'Serial: $(cert_serial "$I/service-a.crt.pem")' line: $OUT"
pass "inspect text shows the serial openssl shows"
grep -Eq "^SPIFFE ID:[[:space:]]+$SPIFFE\$" <<<"$OUT" || fail "inspect text: no 'SPIFFE ID: $SPIFFE' line: $OUT"
pass "inspect text shows 'SPIFFE ID: $SPIFFE'"

# ================================================================ pki tree
expect_ok "pki tree (default text)" pqm pki tree --pki "$P"
TREE_DEFAULT="$OUT"
expect_ok "pki tree --format text" pqm pki tree --pki "$P" --format text
TREE="$OUT"
[[ "$TREE" == "$TREE_DEFAULT" ]] || fail "pki tree without --format differs from --format text"
pass "pki tree defaults to the text format"
[[ "$(head -n 1 <<<"$TREE")" == root-ca* ]] || fail "tree text: first line is not root-ca: $(head -n 1 <<<"$TREE")"
pass "tree text: root-ca at the top"
lineno() { grep -n -m 1 -F -- "$1" <<<"$TREE" | cut -d: -f1; }
TREE_INDENT="$(py indent <<<"$TREE")"
indent() { sed -n "$1p" <<<"$TREE_INDENT"; }
l_sint=$(lineno server-int-ca); l_cint=$(lineno client-int-ca); l_api=$(lineno api.example.com)
l_c1=$(lineno client-1); l_sa=$(lineno service-a)
[[ -n "$l_sint" && -n "$l_cint" && -n "$l_api" && -n "$l_c1" && -n "$l_sa" ]] || fail "tree text lacks a certificate: $TREE"
(( l_sint < l_api && l_api < l_cint )) || fail "tree text: api.example.com is not between server-int-ca and client-int-ca: $TREE"
pass "tree text: api.example.com comes after server-int-ca and before client-int-ca"
(( l_cint < l_c1 && l_cint < l_sa )) || fail "tree text: client-1/service-a are not after client-int-ca: $TREE"
pass "tree text: client-1 and service-a come after client-int-ca"
(( $(indent 1) < $(indent "$l_sint") && $(indent "$l_sint") < $(indent "$l_api") )) \
    || fail "tree text: root, intermediate, leaf are not indented deeper and deeper: $TREE"
(( $(indent "$l_sint") == $(indent "$l_cint") && $(indent "$l_api") == $(indent "$l_c1") && $(indent "$l_c1") == $(indent "$l_sa") )) \
    || fail "tree text: intermediates (or leaves) are not at the same depth: $TREE"
pass "tree text: leaves are indented under their intermediate, intermediates under the root"

# non-root certificates and their issuer (by serial), from the inventory
EDGES="$(list_tsv "$P" | awk -F"$US" '$2 != "root" { print $13 " " $5 }')"
NEDGES=$(wc -l <<<"$EDGES")
expect_ok "pki tree --format mermaid" pqm pki tree --pki "$P" --format mermaid
MER="$OUT"
[[ "$(head -n 1 <<<"$MER")" == "graph TD"* ]] || fail "mermaid: does not start with 'graph TD': $(head -n 1 <<<"$MER")"
pass "mermaid starts with 'graph TD'"
[[ "$(grep -c -- '-->' <<<"$MER")" -eq "$NEDGES" ]] || fail "mermaid: $(grep -c -- '-->' <<<"$MER") '-->' edges, expected $NEDGES: $MER"
pass "mermaid has one '-->' edge per non-root certificate ($NEDGES)"
while read -r is s; do
    grep -Eq -- "^[[:space:]]*[A-Za-z_]*${is}[[:space:]]*-->[[:space:]]*[A-Za-z_]*${s}\b" <<<"$MER" \
        || fail "mermaid: no edge from issuer $is to $s: $MER"
done <<<"$EDGES"
pass "mermaid: every edge goes from the issuer to the certificate it issued"
expect_ok "pki tree --format dot" pqm pki tree --pki "$P" --format dot
DOT="$OUT"
[[ "$(head -n 1 <<<"$DOT")" == digraph* ]] || fail "dot: does not start with 'digraph': $(head -n 1 <<<"$DOT")"
pass "dot starts with 'digraph'"
[[ "$(grep -c -- '->' <<<"$DOT")" -eq "$NEDGES" ]] || fail "dot: $(grep -c -- '->' <<<"$DOT") '->' edges, expected $NEDGES: $DOT"
pass "dot has one '->' edge per non-root certificate ($NEDGES)"
while read -r is s; do
    grep -Eq -- "\"?[A-Za-z_]*${is}\"?[[:space:]]*->[[:space:]]*\"?[A-Za-z_]*${s}\b" <<<"$DOT" \
        || fail "dot: no edge from issuer $is to $s: $DOT"
done <<<"$EDGES"
pass "dot: every edge goes from the issuer to the certificate it issued"
if command -v dot >/dev/null 2>&1; then
    dot -Tsvg <<<"$DOT" > "$T/tree.svg" 2>"$T/dot.err" || fail "graphviz dot -Tsvg rejects the DOT output: $(cat "$T/dot.err")"
    grep -q '<svg' "$T/tree.svg" || fail "graphviz dot -Tsvg made no SVG"
    pass "graphviz dot -Tsvg accepts the DOT output"
else
    info "graphviz 'dot' not installed: skipping the dot -Tsvg check"
fi

# ================================================================ --p12
run pqm pki issue client --pki "$P" --name p12x --p12 "${PF[@]}"
[[ $RC -eq 2 ]] || fail "--p12 without a passphrase of its own: expected a usage error, got $RC: $OUT"
assert_contains "--p12 without a passphrase asks for one (never the PKI's)" "$OUT" "--p12-passphrase-file"
[[ ! -e "$I/p12x.p12" ]] || fail "a refused --p12 still wrote p12x.p12"
expect_ok "issue client p12c --p12 --key-passphrase-file pass.txt" \
    pqm pki issue client --pki "$P" --name p12c --p12 --key-passphrase-file "$T/pass.txt" "${PF[@]}"
ISSUED+=(p12c)
[[ -s "$I/p12c.p12" ]] || fail "--p12 wrote no $I/p12c.p12"
[[ "$(file_mode "$I/p12c.p12")" == 600 ]] || fail "p12c.p12 mode is $(file_mode "$I/p12c.p12"), expected 600"
pass "p12c.p12 exists with mode 0600"
expect_ok "openssl pkcs12 opens p12c.p12 with the key passphrase" \
    ossl pkcs12 -in "$I/p12c.p12" -passin "$PASSIN" -nodes -out "$T/p12c.pem"
[[ "$(cert_count "$T/p12c.pem")" -eq 3 ]] || fail "p12c.p12 holds $(cert_count "$T/p12c.pem") certificates, expected 3"
fps=""
for f in $(split_pem "$T/p12c.pem" "$T/p12c-cert"); do fps+="$(cert_fp "$f") "; done
for want in "$I/p12c.crt.pem" "$P/client-int-ca.crt.pem" "$P/root-ca.crt.pem"; do
    [[ "$fps" == *"$(cert_fp "$want")"* ]] || fail "p12c.p12 lacks $(basename "$want")"
done
pass "p12c.p12 holds the leaf, the client intermediate and the root"
pem_key_block "$T/p12c.pem" > "$T/p12c-key.pem"
[[ -s "$T/p12c-key.pem" ]] || fail "p12c.p12 holds no private key"
[[ "$(ossl pkey -in "$T/p12c-key.pem" -pubout)" == "$(ossl x509 -in "$I/p12c.crt.pem" -noout -pubkey)" ]] \
    || fail "the private key in p12c.p12 does not match p12c.crt.pem"
pass "the private key in p12c.p12 matches the certificate"
[[ "$(list_field "$P" p12c 11)" == *p12c.p12 ]] || fail "pki list --json: p12_path of p12c is '$(list_field "$P" p12c 11)'"
pass "pki list --json records p12c's p12_path"

expect_ok "issue client p12d --p12 --p12-passphrase-file other.txt" \
    pqm pki issue client --pki "$P" --name p12d --p12 --p12-passphrase-file "$T/other.txt" "${PF[@]}"
ISSUED+=(p12d)
expect_ok "p12d.p12 opens with the --p12-passphrase-file passphrase" \
    ossl pkcs12 -in "$I/p12d.p12" -passin "file:$T/other.txt" -nodes -out "$T/p12d.pem"
run ossl pkcs12 -in "$I/p12d.p12" -passin "$PASSIN" -nodes -out "$T/p12d-bad.pem"
[[ $RC -ne 0 ]] || fail "p12d.p12 still opens with the PKI passphrase"
pass "p12d.p12 does not open with the PKI passphrase"
[[ "$(file_mode "$I/p12d.p12")" == 600 ]] || fail "p12d.p12 mode is $(file_mode "$I/p12d.p12"), expected 600"
pass "p12d.p12 has mode 0600"

# ================================================================ --out
mkdir "$T/elsewhere"
run bash -c 'cd "$T" && "$PQMTLS_BIN" pki issue server --pki "$1" --name out.example.com --out elsewhere/srv --passphrase-file "$T/pass.txt"' _ "$P"
[[ $RC -eq 0 ]] || fail "issue server --out elsewhere/srv (relative, from $T): exit $RC: $OUT"
pass "issue server out.example.com --out elsewhere/srv (a relative PREFIX in another directory)"
ISSUED+=(out.example.com)
for s in crt.pem key.pem chain.pem; do
    [[ -s "$T/elsewhere/srv.$s" ]] || fail "--out did not write elsewhere/srv.$s"
done
[[ "$(file_mode "$T/elsewhere/srv.key.pem")" == 600 ]] || fail "--out key mode is $(file_mode "$T/elsewhere/srv.key.pem")"
pass "--out wrote PREFIX.crt.pem, PREFIX.key.pem (0600), PREFIX.chain.pem"
[[ ! -e "$I/out.example.com.crt.pem" ]] || fail "--out still wrote $I/out.example.com.crt.pem"
pass "--out wrote nothing under DIR/issued"
absdir="$(realpath "$T/elsewhere")"
row="$(list_tsv "$P" | awk -F"$US" '$1 == "out.example.com"')"
IFS="$US" read -r _ _ _ _ _ ofp _ _ ocpath okpath _ _ _ <<<"$row"
[[ "$ocpath" == "$absdir/srv.crt.pem" ]] || fail "pki list --json: cert_path of out.example.com is '$ocpath', expected $absdir/srv.crt.pem"
[[ "$okpath" == "$absdir/srv.key.pem" ]] || fail "pki list --json: key_path of out.example.com is '$okpath', expected $absdir/srv.key.pem"
[[ "$ofp" == "$(cert_fp "$T/elsewhere/srv.crt.pem")" ]] || fail "pki list --json: fingerprint of out.example.com does not match the --out file"
pass "pki list --json records the absolute --out paths ($absdir/srv.*) and the file's fingerprint"
expect_ok "pki check passes with a certificate written by --out" pqm pki check --pki "$P"
expect_ok "issue client outp12 --out PREFIX --p12" \
    pqm pki issue client --pki "$P" --name outp12 --out "$T/elsewhere/cl" --p12 \
    --p12-passphrase-file "$T/other.txt" "${PF[@]}"
ISSUED+=(outp12)
[[ -s "$T/elsewhere/cl.p12" && ! -e "$I/outp12.p12" ]] || fail "--out PREFIX --p12 did not write PREFIX.p12 (and only it)"
pass "--out PREFIX --p12 writes PREFIX.p12"

# ================================================================ --count
expect_ok "issue client batch --count 3" pqm pki issue client --pki "$P" --name batch --count 3 "${PF[@]}"
ISSUED+=(batch-0001 batch-0002 batch-0003)
for n in batch-0001 batch-0002 batch-0003; do
    [[ -s "$I/$n.crt.pem" && -s "$I/$n.key.pem" && -s "$I/$n.chain.pem" ]] || fail "--count 3 did not write $n.*"
    [[ "$(ossl x509 -in "$I/$n.crt.pem" -noout -subject -nameopt RFC2253)" == *"CN=$n"* ]] || fail "$n.crt.pem does not have CN=$n"
    [[ "$(list_field "$P" "$n" 4)" == valid ]] || fail "pki list --json: $n is not listed as valid"
done
[[ ! -e "$I/batch-0004.crt.pem" && ! -e "$I/batch.crt.pem" && ! -e "$I/batch-0000.crt.pem" ]] || fail "--count 3 wrote more than batch-0001..0003"
pass "--count 3 issues batch-0001, batch-0002, batch-0003 (CN and inventory), nothing else"
n59="$(printf 'c%.0s' {1..59})"
expect_ok "--count 3 with a 59-character name (59 + '-0003' = 64) is accepted" \
    pqm pki issue client --pki "$P" --name "$n59" --count 3 "${PF[@]}"
ISSUED+=("$n59-0001" "$n59-0002" "$n59-0003")
n60="$(printf 'd%.0s' {1..60})"
run pqm pki issue client --pki "$P" --name "$n60" --count 3 "${PF[@]}"
[[ $RC -eq 1 || $RC -eq 2 ]] || fail "--count 3 with a 60-character name (over 64): expected refusal (exit 1 or 2), got $RC: $OUT"
[[ "$OUT" == *64* ]] || fail "--count refusal should mention the 64-character limit: $OUT"
compgen -G "$I/$n60*" >/dev/null && fail "--count refusal still wrote files for $n60"
pass "--count 3 with a 60-character name is refused (exit $RC, mentions 64), no files"

# ================================================================ key passphrases
# By default an issued key is not encrypted with the PKI passphrase (a service must not
# hold the secret that protects the CAs): it is written unencrypted, mode 0600.
k="$I/api.example.com.key.pem"
[[ "$(head -n 1 "$k")" == "-----BEGIN PRIVATE KEY-----" ]] || fail "default leaf key header is '$(head -n 1 "$k")'"
[[ "$(file_mode "$k")" == 600 ]] || fail "default leaf key mode is $(file_mode "$k")"
pass "default leaf key: unencrypted, mode 0600, no PKI passphrase involved"
expect_ok "issue client kpo --key-passphrase-file other.txt" \
    pqm pki issue client --pki "$P" --name kpo --key-passphrase-file "$T/other.txt" "${PF[@]}"
ISSUED+=(kpo)
[[ "$(head -n 1 "$I/kpo.key.pem")" == "-----BEGIN ENCRYPTED PRIVATE KEY-----" ]] || fail "kpo.key.pem is not encrypted"
expect_ok "kpo.key.pem opens with the --key-passphrase-file passphrase" ossl pkey -in "$I/kpo.key.pem" -passin "file:$T/other.txt" -noout
run ossl pkey -in "$I/kpo.key.pem" -passin "$PASSIN" -noout
[[ $RC -ne 0 ]] || fail "kpo.key.pem opens with the PKI passphrase, not only with other.txt"
pass "kpo.key.pem does not open with the PKI passphrase"
expect_ok "issue client kpn --no-key-passphrase" \
    pqm pki issue client --pki "$P" --name kpn --no-key-passphrase "${PF[@]}"
ISSUED+=(kpn)
[[ "$(head -n 1 "$I/kpn.key.pem")" == "-----BEGIN PRIVATE KEY-----" ]] || fail "--no-key-passphrase key header is '$(head -n 1 "$I/kpn.key.pem")'"
[[ "$(file_mode "$I/kpn.key.pem")" == 600 ]] || fail "--no-key-passphrase key mode is $(file_mode "$I/kpn.key.pem")"
[[ "$(ossl pkey -in "$I/kpn.key.pem" -passin pass: -pubout)" == "$(ossl x509 -in "$I/kpn.crt.pem" -noout -pubkey)" ]] \
    || fail "kpn.key.pem does not load unencrypted or does not match kpn.crt.pem"
pass "--no-key-passphrase writes an unencrypted 'BEGIN PRIVATE KEY' (mode 0600) matching the certificate"
usage "--key-passphrase-file with --no-key-passphrase" "--no-key-passphrase" \
    pqm pki issue client --pki "$P" --name kpx --key-passphrase-file "$T/other.txt" --no-key-passphrase "${PF[@]}"

NP="$T/np"
run pqm pki init "$NP" --server-domain example.com --no-passphrase </dev/null
[[ $RC -eq 0 ]] || fail "pki init --no-passphrase: exit $RC: $OUT"
pass "pki init --no-passphrase (no passphrase file, no terminal)"
for n in root-ca server-int-ca client-int-ca; do
    [[ "$(head -n 1 "$NP/$n.key.pem")" == "-----BEGIN PRIVATE KEY-----" ]] || fail "--no-passphrase: $n.key.pem is not an unencrypted PRIVATE KEY"
    [[ "$(file_mode "$NP/$n.key.pem")" == 600 ]] || fail "--no-passphrase: $n.key.pem mode $(file_mode "$NP/$n.key.pem")"
done
pass "--no-passphrase: CA keys are unencrypted, mode 0600"
run pqm pki issue server --pki "$NP" --name a.example.com </dev/null
[[ $RC -eq 0 ]] || fail "issue in a --no-passphrase PKI without a passphrase: exit $RC: $OUT"
pass "a --no-passphrase PKI issues without any passphrase"
[[ "$(head -n 1 "$NP/issued/a.example.com.key.pem")" == "-----BEGIN PRIVATE KEY-----" ]] || fail "leaf key of a --no-passphrase PKI is encrypted"
[[ "$(file_mode "$NP/issued/a.example.com.key.pem")" == 600 ]] || fail "leaf key of a --no-passphrase PKI: mode $(file_mode "$NP/issued/a.example.com.key.pem")"
pass "a --no-passphrase PKI issues unencrypted leaf keys (mode 0600)"

EP="$T/envpki"
run env PQMTLS_PASSPHRASE='from the environment' "$PQMTLS_BIN" pki init "$EP" --server-domain example.com </dev/null
[[ $RC -eq 0 ]] || fail "pki init with PQMTLS_PASSPHRASE: exit $RC: $OUT"
pass "pki init with PQMTLS_PASSPHRASE instead of --passphrase-file"
[[ "$(head -n 1 "$EP/root-ca.key.pem")" == "-----BEGIN ENCRYPTED PRIVATE KEY-----" ]] || fail "PQMTLS_PASSPHRASE: root key is not encrypted"
expect_ok "root key made with PQMTLS_PASSPHRASE opens with that passphrase" \
    ossl pkey -in "$EP/root-ca.key.pem" -passin 'pass:from the environment' -noout
run env PQMTLS_PASSPHRASE='from the environment' PQMTLS_KEY_PASSPHRASE='the key one' \
    "$PQMTLS_BIN" pki issue client --pki "$EP" --name envc </dev/null
[[ $RC -eq 0 ]] || fail "pki issue with PQMTLS_PASSPHRASE and PQMTLS_KEY_PASSPHRASE: exit $RC: $OUT"
expect_ok "leaf key issued with PQMTLS_KEY_PASSPHRASE opens with that passphrase" \
    ossl pkey -in "$EP/issued/envc.key.pem" -passin 'pass:the key one' -noout
run ossl pkey -in "$EP/issued/envc.key.pem" -passin 'pass:from the environment' -noout
[[ $RC -ne 0 ]] || fail "the leaf key opens with the PKI passphrase"
pass "the leaf key does not open with the PKI passphrase"
run pqm pki issue client --pki "$EP" --name nopass </dev/null
[[ $RC -ne 0 && $RC -lt 128 ]] || fail "pki issue in an encrypted PKI without any passphrase: expected refusal, got exit $RC"
[[ ! -e "$EP/issued/nopass.crt.pem" ]] || fail "pki issue without a passphrase still wrote a certificate"
pass "pki issue in an encrypted PKI with no passphrase source is refused (exit $RC)"

# ================================================================ --alg / --root-alg
declare -A PK=([ecdsa-p256]=id-ecPublicKey [ecdsa-p384]=id-ecPublicKey [ed25519]=ED25519
    [rsa-3072]=rsaEncryption [ml-dsa-44]=ML-DSA-44 [ml-dsa-87]=ML-DSA-87)
declare -A SIG=([ecdsa-p256]=ecdsa-with-SHA256 [ecdsa-p384]=ecdsa-with-SHA384 [ed25519]=ED25519
    [rsa-3072]=sha256WithRSAEncryption [ml-dsa-44]=ML-DSA-44 [ml-dsa-87]=ML-DSA-87)
declare -A DETAIL=([ecdsa-p256]="NIST CURVE: P-256" [ecdsa-p384]="NIST CURVE: P-384"
    [rsa-3072]="Public-Key: (3072 bit)" [ed25519]="" [ml-dsa-44]="" [ml-dsa-87]="")
for a in ecdsa-p256 ecdsa-p384 ed25519 rsa-3072 ml-dsa-44 ml-dsa-87; do
    D="$T/alg-$a"
    run pqm pki init "$D" --alg "$a" --server-domain example.com --no-passphrase
    [[ $RC -eq 0 ]] || fail "pki init --alg $a: exit $RC: $OUT"
    run pqm pki issue server --pki "$D" --name s.example.com --ip 127.0.0.1
    [[ $RC -eq 0 ]] || fail "pki issue server in the --alg $a PKI: exit $RC: $OUT"
    leaf="$D/issued/s.example.com.crt.pem"
    run ossl verify -x509_strict -purpose sslserver -CAfile "$D/server-ca-chain.pem" "$leaf"
    [[ $RC -eq 0 ]] || fail "--alg $a: openssl verify -x509_strict -purpose sslserver rejects the server certificate: $OUT"
    for c in "$leaf" "$D/server-int-ca.crt.pem" "$D/root-ca.crt.pem"; do
        [[ "$(pubkey_alg "$c")" == "${PK[$a]}" ]] || fail "--alg $a: $(basename "$c") public key is '$(pubkey_alg "$c")', expected ${PK[$a]}"
        [[ "$(sig_alg "$c")" == "${SIG[$a]}" ]] || fail "--alg $a: $(basename "$c") signed with '$(sig_alg "$c")', expected ${SIG[$a]}"
        if [[ -n "${DETAIL[$a]}" ]]; then
            [[ "$(ossl x509 -in "$c" -noout -text)" == *"${DETAIL[$a]}"* ]] || fail "--alg $a: $(basename "$c") lacks '${DETAIL[$a]}'"
        fi
    done
    [[ "$(ossl pkey -in "$D/issued/s.example.com.key.pem" -pubout)" == "$(ossl x509 -in "$leaf" -noout -pubkey)" ]] \
        || fail "--alg $a: the leaf key does not match the leaf certificate"
    [[ "$(list_field "$D" s.example.com 7)" == "$a" ]] || fail "--alg $a: pki list key_algorithm is '$(list_field "$D" s.example.com 7)'"
    pass "--alg $a: openssl verify -x509_strict -purpose sslserver OK; root, intermediate, leaf: ${PK[$a]} ${DETAIL[$a]:+(${DETAIL[$a]}) }signed with ${SIG[$a]}"
done
expect_ok "pki issue --alg ed25519 in the ML-DSA-65 PKI" \
    pqm pki issue client --pki "$P" --name edleaf --alg ed25519 "${PF[@]}"
ISSUED+=(edleaf)
[[ "$(pubkey_alg "$I/edleaf.crt.pem")" == ED25519 && "$(sig_alg "$I/edleaf.crt.pem")" == ML-DSA-65 ]] \
    || fail "issue --alg ed25519: leaf key '$(pubkey_alg "$I/edleaf.crt.pem")' signed with '$(sig_alg "$I/edleaf.crt.pem")', expected ED25519 signed with ML-DSA-65"
pass "pki issue --alg ed25519: an Ed25519 leaf key signed by the ML-DSA-65 intermediate"

S="$T/slh"
run pqm pki init "$S" --root-alg slh-dsa-sha2-128s --server-domain example.com --no-passphrase
[[ $RC -eq 0 ]] || fail "pki init --root-alg slh-dsa-sha2-128s: exit $RC: $OUT"
pass "pki init --root-alg slh-dsa-sha2-128s (ML-DSA-65 intermediates)"
run pqm pki issue server --pki "$S" --name s.example.com
[[ $RC -eq 0 ]] || fail "pki issue server under an SLH-DSA root: exit $RC: $OUT"
[[ "$(pubkey_alg "$S/root-ca.crt.pem")" == SLH-DSA-SHA2-128s && "$(sig_alg "$S/root-ca.crt.pem")" == SLH-DSA-SHA2-128s ]] \
    || fail "--root-alg: root is '$(pubkey_alg "$S/root-ca.crt.pem")' signed with '$(sig_alg "$S/root-ca.crt.pem")'"
pass "--root-alg: the root is SLH-DSA-SHA2-128s, self-signed with SLH-DSA-SHA2-128s"
for n in server-int-ca client-int-ca; do
    [[ "$(pubkey_alg "$S/$n.crt.pem")" == ML-DSA-65 && "$(sig_alg "$S/$n.crt.pem")" == SLH-DSA-SHA2-128s ]] \
        || fail "--root-alg: $n is '$(pubkey_alg "$S/$n.crt.pem")' signed with '$(sig_alg "$S/$n.crt.pem")'"
done
[[ "$(pubkey_alg "$S/issued/s.example.com.crt.pem")" == ML-DSA-65 && "$(sig_alg "$S/issued/s.example.com.crt.pem")" == ML-DSA-65 ]] \
    || fail "--root-alg: the leaf is not ML-DSA-65 signed with ML-DSA-65"
pass "--root-alg: intermediates are ML-DSA-65 signed with SLH-DSA, the leaf ML-DSA-65"
expect_ok "--root-alg slh-dsa-sha2-128s: openssl verify -x509_strict -purpose sslserver accepts the chain" \
    ossl verify -x509_strict -purpose sslserver -CAfile "$S/server-ca-chain.pem" "$S/issued/s.example.com.crt.pem"
expect_ok "--root-alg slh-dsa-sha2-128s: pqmtls verify accepts the chain" \
    pqm verify --ca "$S/server-ca-chain.pem" --purpose server "$S/issued/s.example.com.crt.pem"

# ================================================================ --days
expect_ok "issue server d10.example.com --days 10" pqm pki issue server --pki "$NP" --name d10.example.com --days 10
delta=$(( $(cert_end_epoch "$NP/issued/d10.example.com.crt.pem") - $(date +%s) ))
(( delta > 10 * 86400 - 600 && delta <= 10 * 86400 + 120 )) \
    || fail "--days 10: notAfter is $delta s ahead, expected about $((10 * 86400))"
pass "--days 10: notAfter is 10 days ahead ($delta s)"
ca_end="$(list_field "$NP" server-int-ca 8)"
[[ -n "$ca_end" ]] || fail "no not_after for server-int-ca in pki list --json"
refused "--days beyond the server intermediate's life is refused, naming its expiry" "$ca_end" \
    pqm pki issue server --pki "$NP" --name long.example.com --days 3000
shopt -s nocasematch
[[ "$ERR" == *expire* ]] || fail "--days refusal should say the CA expires: $ERR"
shopt -u nocasematch
[[ ! -e "$NP/issued/long.example.com.crt.pem" ]] || fail "refused --days still wrote a certificate"
pass "--days refusal mentions the CA's expiry and writes nothing"
run pqm pki init "$T/rd" --root-days 100 --ca-days 200 --no-passphrase
[[ $RC -eq 1 ]] || fail "pki init --root-days 100 --ca-days 200: expected exit 1, got $RC: $OUT"
[[ ! -e "$T/rd" ]] || fail "refused pki init --root-days 100 --ca-days 200 still created $T/rd"
pass "pki init --root-days 100 --ca-days 200 is refused (exit 1) and creates nothing: $(head -n 1 <<<"$OUT")"

# ================================================================ --server-ip-range
R="$T/ipr"
expect_ok "pki init --server-ip-range 10.0.0.0/8" pqm pki init "$R" --server-domain example.com --server-ip-range 10.0.0.0/8 --no-passphrase
expect_ok "--server-ip-range 10.0.0.0/8: --ip 10.1.2.3 accepted" pqm pki issue server --pki "$R" --name a.example.com --ip 10.1.2.3
[[ "$(list_field "$R" a.example.com 12)" == "DNS:a.example.com,IP:10.1.2.3" ]] || fail "10.1.2.3 not in the SANs: $(list_field "$R" a.example.com 12)"
refused "--server-ip-range 10.0.0.0/8: --ip 127.0.0.1 refused" "127.0.0.1" \
    pqm pki issue server --pki "$R" --name b.example.com --ip 127.0.0.1
RN="$T/ipnone"
expect_ok "pki init --server-ip-range none" pqm pki init "$RN" --server-domain example.com --server-ip-range none --no-passphrase
refused "--server-ip-range none: --ip 127.0.0.1 refused" "127.0.0.1" \
    pqm pki issue server --pki "$RN" --name b.example.com --ip 127.0.0.1
refused "--server-ip-range none: --ip 10.0.0.1 refused" "10.0.0.1" \
    pqm pki issue server --pki "$RN" --name c.example.com --ip 10.0.0.1
refused "--server-ip-range none: --ip ::1 refused" "::1" \
    pqm pki issue server --pki "$RN" --name d.example.com --ip ::1
expect_ok "--server-ip-range none: a DNS-only server certificate is still issued" \
    pqm pki issue server --pki "$RN" --name e.example.com
expect_ok "default range: --ip 127.0.0.1 accepted" pqm pki issue server --pki "$NP" --name lo.example.com --ip 127.0.0.1
expect_ok "default range: --ip ::1 accepted" pqm pki issue server --pki "$NP" --name lo6.example.com --ip ::1
refused "default range: --ip 10.0.0.1 refused" "10.0.0.1" \
    pqm pki issue server --pki "$NP" --name ten.example.com --ip 10.0.0.1
for f in "$R/issued/b.example.com" "$RN/issued/b.example.com" "$RN/issued/c.example.com" "$RN/issued/d.example.com" "$NP/issued/ten.example.com"; do
    [[ ! -e "$f.crt.pem" ]] || fail "a refused --ip still wrote $f.crt.pem"
done
pass "no certificate written for any refused --ip"

# ================================================================ sign-csr
ossl req -new -newkey ml-dsa-65 -nodes -keyout "$T/dev.key" -out "$T/dev.csr" -subj "/CN=device-17" 2>/dev/null \
    || fail "test setup: openssl req could not make a CSR"
expect_ok "pki sign-csr --profile client without --name" \
    pqm pki sign-csr --pki "$P" --csr "$T/dev.csr" --profile client "${PF[@]}"
ISSUED+=(device-17)
[[ -s "$I/device-17.crt.pem" && -s "$I/device-17.chain.pem" ]] || fail "sign-csr without --name did not write issued/device-17.* (the CSR's CN)"
[[ ! -e "$I/device-17.key.pem" ]] || fail "sign-csr wrote a key"
[[ "$(list_field "$P" device-17 2)" == client ]] || fail "sign-csr without --name: no inventory row named device-17"
[[ "$(cert_subject "$I/device-17.crt.pem")" == *"CN=device-17"* ]] || fail "sign-csr: subject is $(cert_subject "$I/device-17.crt.pem")"
[[ "$(ossl x509 -in "$I/device-17.crt.pem" -noout -pubkey)" == "$(ossl req -in "$T/dev.csr" -noout -pubkey)" ]] \
    || fail "sign-csr: the certificate does not carry the CSR's key"
pass "sign-csr without --name names the certificate after the CSR's CN (device-17), with the CSR's key and no key file"

ossl req -new -newkey ml-dsa-65 -nodes -keyout "$T/ev.key" -out "$T/ev.csr" -subj "/CN=web.example.com" \
    -addext "subjectAltName=DNS:evil.org" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null \
    || fail "test setup: openssl req could not make the CSR with requested extensions"
evtext="$(ossl req -in "$T/ev.csr" -noout -text)"
[[ "$evtext" == *DNS:evil.org* ]] || fail "test setup: the CSR does not request DNS:evil.org"
[[ "$evtext" == *CA:TRUE* ]] || fail "test setup: the CSR does not request CA:TRUE"
expect_ok "pki sign-csr --profile server of a CSR requesting SAN evil.org and CA:TRUE" \
    pqm pki sign-csr --pki "$P" --csr "$T/ev.csr" --profile server "${PF[@]}"
ISSUED+=(web.example.com)
W="$I/web.example.com.crt.pem"
[[ -s "$W" ]] || fail "sign-csr did not write $W"
bc="$(ext_value "$W" "X509v3 Basic Constraints")"
[[ "$bc" == "CA:FALSE" ]] || fail "sign-csr honoured the CSR's basicConstraints: '$bc', expected CA:FALSE"
pass "sign-csr ignored the CSR's CA:TRUE: the certificate says CA:FALSE"
san="$(ext_value "$W" "X509v3 Subject Alternative Name")"
[[ "$san" != *evil.org* ]] || fail "sign-csr copied the CSR's SAN: $san"
[[ "$san" == "DNS:web.example.com" ]] || fail "sign-csr server SAN is '$san', expected DNS:web.example.com"
pass "sign-csr ignored the CSR's SAN evil.org: SAN is $san"
[[ "$(ext_value "$W" "X509v3 Extended Key Usage")" == "TLS Web Server Authentication" ]] || fail "sign-csr --profile server: EKU is not serverAuth"
pass "sign-csr --profile server: EKU serverAuth"
expect_ok "openssl verify -x509_strict -purpose sslserver accepts the sign-csr certificate" \
    ossl verify -x509_strict -purpose sslserver -CAfile "$P/server-ca-chain.pem" "$W"

# ================================================================ whole inventory
LTSV="$(list_tsv "$P")"
want_names="$(printf '%s\n' root-ca server-int-ca client-int-ca "${ISSUED[@]}" | sort)"
got_names="$(cut -d "$US" -f1 <<<"$LTSV" | sort)"
[[ "$got_names" == "$want_names" ]] || fail "pki list --json names differ from what was issued: $(diff <(echo "$want_names") <(echo "$got_names") | tr '\n' ' ')"
pass "pki list --json lists the 3 CAs and every certificate issued (${#ISSUED[@]})"
while IFS="$US" read -r n _ _ status serial fp alg _ cpath _ _ _ _; do
    [[ "$cpath" == /* ]] || cpath="$P/$cpath"
    [[ "$status" == valid ]] || fail "list $n: status '$status'"
    [[ "$fp" == "$(cert_fp "$cpath")" ]] || fail "list $n: fingerprint differs from openssl's of $cpath"
    [[ "$serial" == "$(cert_serial "$cpath")" ]] || fail "list $n: serial differs from openssl's of $cpath"
    case "$n" in edleaf) want=ed25519 ;; *) want=ml-dsa-65 ;; esac
    [[ "$alg" == "$want" ]] || fail "list $n: key_algorithm '$alg', expected $want"
done <<<"$LTSV"
pass "every inventory row is valid, with the serial and fingerprint openssl reads from its file"
expect_ok "pki check passes at the end" pqm pki check --pki "$P"

done_all
