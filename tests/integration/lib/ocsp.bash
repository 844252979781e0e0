# OpenSSL 3.5's own OCSP responder for the tests, fed from a pqmtls inventory.
# Needs common.bash (T, OPENSSL_BIN, OPENSSL_LIBDIR, track_pid, fail).

# ossl_ocsp_index DB CA_SERIAL OUT: the index.txt of the certificates CA_SERIAL issued,
# as `openssl ocsp -index` reads it (revoked ones with their time and reason).
ossl_ocsp_index() {
    python3 - "$1" "$2" "$3" <<'PY'
import sqlite3, sys, time
db, ca, out = sys.argv[1:4]
def a(t): return time.strftime("%y%m%d%H%M%SZ", time.gmtime(t))
with open(out, "w") as f:
    for s, na, st, ra, why in sqlite3.connect(db).execute(
            "SELECT serial, not_after, status, revoked_at, revocation_reason FROM certs "
            "WHERE issuer_serial = ? AND serial <> issuer_serial", (ca,)):
        if st == "revoked":
            f.write("R\t%s\t%s,%s\t%s\tunknown\t/CN=%s\n" % (a(na), a(ra), why, s, s))
        else:
            f.write("V\t%s\t\t%s\tunknown\t/CN=%s\n" % (a(na), s, s))
PY
}

# ossl_ocsp_responder PKI SIDE PORT: `openssl ocsp` answering for the certificates of
# PKI's SIDE (server or client) intermediate, signing with that CA's key (which must be
# unencrypted); its PID in RESP_PID. Watched with ss, not by connecting: `openssl ocsp`
# serves one connection at a time and waits forever on one that sends nothing.
ossl_ocsp_responder() {
    local pki="$1" side="$2" port="$3" i ca
    ca=$(OPENSSL_CONF=/dev/null LD_LIBRARY_PATH="$OPENSSL_LIBDIR" "$OPENSSL_BIN" x509 \
        -in "$pki/$side-int-ca.crt.pem" -noout -serial | sed 's/^serial=//')
    ossl_ocsp_index "$pki/pki.db" "$ca" "$T/$side.idx"
    env OPENSSL_CONF=/dev/null LD_LIBRARY_PATH="$OPENSSL_LIBDIR" "$OPENSSL_BIN" ocsp -index "$T/$side.idx" \
        -port "$port" -rsigner "$pki/$side-int-ca.crt.pem" -rkey "$pki/$side-int-ca.key.pem" \
        -CA "$pki/$side-int-ca.crt.pem" -nmin 10 >> "$T/$side.resp.log" 2>&1 &
    RESP_PID=$!
    track_pid "$RESP_PID"
    for ((i = 0; i < 200; i++)); do
        [[ -n "$(ss -ltnH "( sport = :$port )" 2>/dev/null)" ]] && return 0
        sleep 0.05
    done
    fail "openssl ocsp ($side) did not start: $(tail -3 "$T/$side.resp.log")"
}
