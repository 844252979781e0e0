#!/usr/bin/env bash
# deploy/: what can be checked without a container runtime or systemd as PID 1.
#  - deploy/Containerfile, parsed: a Debian 12 build stage that runs the project's make
#    and deploy/stage-runtime.sh, a debian:12-slim runtime stage with only Debian's
#    runtime libraries and the staged files, a numeric non-root USER, the exec-form
#    ENTRYPOINT and CMD, and the same user, port, command and arguments as the
#    Deployment `pqmtls export k8s` writes. Two broken copies are refused.
#  - deploy/stage-runtime.sh on this build: the files the image gets, and every library
#    they need found in the staged tree by run path or in a package the runtime stage
#    installs; the staged binary runs without LD_LIBRARY_PATH.
#  - deploy/pqmtls-gateway.service: `systemd-analyze verify` without a warning (a copy
#    whose ExecStart names the built binary, since verify wants the program to exist, and
#    the built manual page on MANPATH; a misspelled key is caught), Type=notify and the hardening options, an exposure
#    level of at most 2.0 by `systemd-analyze security --offline`, and the system calls
#    the gateway makes (under strace: start, requests, metrics, SIGHUP, a file reload,
#    drain) all allowed by its SystemCallFilter.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.bash"
require_bin
require_tool readelf dpkg-query systemd-analyze
PY=/usr/bin/python3
"$PY" -c 'import yaml' 2> /dev/null || fail "Debian's python3-yaml is needed (scripts/deps.sh installs it)"
D=$PQMTLS_SOURCE_DIR/deploy
BUILD_DIR=$(dirname "$PQMTLS_BIN")
sanitized=0
[[ "$(ldd "$PQMTLS_BIN")" == *libasan* ]] && sanitized=1

# ---- the Containerfile ------------------------------------------------------------------
P=$T/pki
pqm pki init "$P" --org Example --server-domain example.com --no-passphrase > /dev/null
pqm pki issue server --pki "$P" --name api.example.com --ip 127.0.0.1 --no-key-passphrase > /dev/null
pqm pki issue client --pki "$P" --name alice --no-key-passphrase > /dev/null
pqm pki crl --pki "$P" > /dev/null
pqm export k8s --pki "$P" --out "$T/k8s.yaml" 2> /dev/null || fail "export k8s"
cat > "$T/containerfile.py" <<'PY'
import json, shlex, sys, yaml
def check(ok, what):
    if not ok:
        sys.exit(f"FAILED: {what}")
    print(f"CHECK {what}")
def parse(path):
    """[(stage, INSTRUCTION, arguments)], continuation lines joined, comments dropped."""
    out, stage, cur = [], -1, ""
    for line in open(path):
        s = line.rstrip("\n")
        if not cur and (not s.strip() or s.lstrip().startswith("#")):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        instr, _, args = cur.strip().partition(" ")
        cur = ""
        if instr.upper() == "FROM":
            stage += 1
        out.append((stage, instr.upper(), args.strip()))
    return out
ins = parse(sys.argv[1])
docs = [d for d in yaml.safe_load_all(open(sys.argv[2])) if d]
froms = [a.split() for _, i, a in ins if i == "FROM"]
check(len(froms) == 2, f"two stages: {froms}")
check(froms[0][0] in ("debian:12", "debian:12-slim") and froms[0][1:] == ["AS", "build"], "the first stage builds on Debian 12 (AS build)")
check(froms[1][0] == "debian:12-slim", "the runtime stage is debian:12-slim")
build = [a for s, i, a in ins if s == 0 and i == "RUN"]
check(any("PQMTLS_DEPS=build make" in r and "deploy/stage-runtime.sh build /staging" in r for r in build), "the build stage runs the project's make, then deploy/stage-runtime.sh into /staging")
run = [(i, a) for s, i, a in ins if s == 1]
check(not any(i == "ADD" for i, _ in run), "no ADD in the runtime stage")
copies = [a for i, a in run if i == "COPY"]
check(copies == ["--from=build /staging/ /"], f"the runtime stage copies the staged files only: {copies}")
apt = [a for i, a in run if i == "RUN" and "apt-get install" in a]
check(len(apt) == 1, "one apt-get install in the runtime stage")
words = shlex.split(apt[0].split("apt-get install", 1)[1].split("&&")[0])
pkgs = [w for w in words if not w.startswith("-")]
check("--no-install-recommends" in words, "without recommended packages")
print("PACKAGES " + " ".join(pkgs))
check(any("useradd" in a and "--uid 10001" in a for i, a in run if i == "RUN"), "the image has a user 10001")
users = [(n, a) for n, (i, a) in enumerate(run) if i == "USER"]
check(len(users) == 1, "one USER")
n_user, user = users[0]
uid, _, gid = user.partition(":")
check(uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0, f"USER {user} is numeric and not root (runAsNonRoot can check it)")
check(all(i != "RUN" for i, _ in run[n_user:]), "nothing runs as root after USER")
entry = json.loads(next(a for i, a in run if i == "ENTRYPOINT"))
cmd = json.loads(next(a for i, a in run if i == "CMD"))
check(entry == ["pqmtls", "gateway"], "ENTRYPOINT [\"pqmtls\", \"gateway\"] (exec form)")
check(cmd == ["--config", "/etc/pqmtls/gateway.yaml"], "CMD [\"--config\", \"/etc/pqmtls/gateway.yaml\"]")
expose = [a for i, a in run if i == "EXPOSE"]
dep = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
c = dep["containers"][0]
check(expose == [str(c["ports"][0]["containerPort"])], "EXPOSE is the Deployment's containerPort")
check(dep["securityContext"]["runAsUser"] == int(uid) and dep["securityContext"]["runAsGroup"] == int(gid), "the Deployment runs as the image's user")
check(c["command"] == entry and c["args"] == cmd, "the Deployment's command and args are the image's ENTRYPOINT and CMD")
PY
py_checks "$D/Containerfile" "$T/k8s.yaml" < "$T/containerfile.py"
PACKAGES=$("$PY" "$T/containerfile.py" "$D/Containerfile" "$T/k8s.yaml" | sed -n 's/^PACKAGES //p')
[[ -n $PACKAGES ]] || fail "no runtime packages read from the Containerfile"
sed 's/^USER 10001:10001/USER root/' "$D/Containerfile" > "$T/root.Containerfile"
expect_rc 1 "a Containerfile whose USER is root is refused" "$PY" "$T/containerfile.py" "$T/root.Containerfile" "$T/k8s.yaml"
assert_contains "saying why" "$OUT" "is numeric and not root"
sed 's/^ENTRYPOINT .*/ENTRYPOINT pqmtls gateway/' "$D/Containerfile" > "$T/shell.Containerfile"
expect_rc 1 "a shell-form ENTRYPOINT is refused" "$PY" "$T/containerfile.py" "$T/shell.Containerfile" "$T/k8s.yaml"

# ---- what the runtime stage gets ----------------------------------------------------------
S=$T/stage
expect_ok "deploy/stage-runtime.sh stages this build" bash "$D/stage-runtime.sh" "$BUILD_DIR" "$S"
files=$(cd "$S" && find . -type f -o -type l | sort | tr '\n' ' ')
[[ $files =~ ^\./usr/local/bin/pqmtls\ \./usr/local/lib/libpqmtls\.so\.0\ \./usr/local/lib/libpqmtls\.so\.0\.[0-9.]+\ \./var/cache/pqmtls/openssl-[0-9.]+/lib/libcrypto\.so\.3\ \./var/cache/pqmtls/openssl-[0-9.]+/lib/libssl\.so\.3\ $ ]] \
    || fail "the staged files: $files"
pass "the stage holds the binary, libpqmtls and OpenSSL's two libraries, nothing else"
ossl_dir=$(cd "$S" && dirname "$(find . -name libcrypto.so.3)" | sed 's|^\.||')
[[ -d "$BUILD_DIR" && -e "$ossl_dir/libcrypto.so.3" ]] || fail "$ossl_dir is not where this build's OpenSSL is"
# unresolved PACKAGE...: every library an ELF file of the stage needs that is neither in
# the stage by its run path nor in one of the packages (or libc6, Essential in every
# Debian image), as "file: library" lines.
unresolved() {
    local provided elf rp lib d found
    provided=$(dpkg-query -L libc6 "$@" 2> /dev/null | sed -n 's|.*/\([^/]*\.so[^/]*\)$|\1|p' | sort -u)
    while IFS= read -r elf; do
        rp=$(readelf -d "$elf" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
        for lib in $(readelf -d "$elf" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
            found=0
            IFS=: read -r -a dirs <<< "$rp"
            for d in "${dirs[@]}"; do
                d=${d//\$ORIGIN/$(dirname "$elf")}
                [[ $d == "$S"* ]] || d=$S$d
                [[ -e "$d/$lib" ]] && found=1
            done
            grep -qxF "$lib" <<< "$provided" && found=1
            # the sanitizer runtime of a test build (images are built without)
            [[ $sanitized -eq 1 && $lib == lib*san.so* ]] && found=1
            [[ $found -eq 1 ]] || echo "$(basename "$elf"): $lib"
        done
    done < <(find "$S" -type f \( -name pqmtls -o -name '*.so*' \))
}
# shellcheck disable=SC2086
missing=$(unresolved $PACKAGES)
[[ -z $missing ]] || fail "libraries neither staged nor in the runtime packages ($PACKAGES): $missing"
pass "every library the staged files need is staged or comes with $PACKAGES"
# shellcheck disable=SC2086
missing=$(unresolved ${PACKAGES//libyaml-0-2/})
assert_contains "without libyaml-0-2 in the runtime stage, libyaml would be missing" "$missing" ": libyaml-0.so.2"
run env -i "$S/usr/local/bin/pqmtls" --version
[[ $RC -eq 0 && $OUT == "pqmtls "* ]] || fail "the staged binary does not run without LD_LIBRARY_PATH: $OUT"
run env -i ldd "$S/usr/local/bin/pqmtls"
assert_contains "it takes libpqmtls from the stage (\$ORIGIN/../lib)" "$OUT" "libpqmtls.so.0 => $S/usr/local/bin/../lib/libpqmtls.so.0"
assert_contains "and OpenSSL 3.5 from its path in the image" "$OUT" "libcrypto.so.3 => $ossl_dir/libcrypto.so.3"
run env -i "$S/usr/local/bin/pqmtls" probe --help
assert_contains "the staged binary has the probe the exec probes run" "$OUT" "Usage: pqmtls probe"

# ---- the systemd unit ---------------------------------------------------------------------
U=$T/unit/pqmtls-gateway.service
mkdir -p "$T/unit"
# verify wants ExecStart's program to exist: the built binary stands in for /usr/local/bin's.
sed "s|^ExecStart=/usr/local/bin/pqmtls |ExecStart=$PQMTLS_BIN |" "$D/pqmtls-gateway.service" > "$U"
grep -q "^ExecStart=$PQMTLS_BIN gateway --config /etc/pqmtls/gateway.yaml" "$U" || fail "ExecStart was not rewritten: $(grep ExecStart "$U")"
# Documentation=man:pqmtls(1): verify looks the page up with man, so the built page is
# put on MANPATH (make install puts it in /usr/local/share/man).
[[ -s "$BUILD_DIR/pqmtls.1" ]] || fail "the build has no manual page $BUILD_DIR/pqmtls.1"
mkdir -p "$T/man/man1" && cp "$BUILD_DIR/pqmtls.1" "$T/man/man1/"
man_check=(--man=no)
command -v man > /dev/null && man_check=(--man=yes)
verify() { # UNIT: systemd-analyze verify, which must exit 0 and say nothing
    run env MANPATH="$T/man" systemd-analyze verify "${man_check[@]}" "$1"
    [[ $RC -eq 0 && -z $OUT ]]
}
verify "$U" || fail "systemd-analyze verify: exit $RC: $OUT"
pass "systemd-analyze verify accepts the unit without a warning"
sed 's/^NoNewPrivileges=yes/NoNewPrivilege=yes/' "$U" > "$T/unit/typo.service"
! verify "$T/unit/typo.service" || fail "a misspelled key passed systemd-analyze verify"
assert_contains "a misspelled key is caught" "$OUT" "Unknown key 'NoNewPrivilege'"
for want in Type=notify NotifyAccess=main 'ExecReload=/bin/kill -HUP $MAINPID' User=pqmtls Group=pqmtls \
    NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes \
    CapabilityBoundingSet=CAP_NET_BIND_SERVICE ReadOnlyPaths=/etc/pqmtls RestrictNamespaces=yes \
    MemoryDenyWriteExecute=yes SystemCallFilter=@system-service; do
    grep -qxF -- "$want" "$U" || fail "the unit lacks $want"
done
grep -q '^DynamicUser=' "$U" && fail "the unit asks for a dynamic user, which could not read a key installed for user pqmtls"
pass "Type=notify, reload by SIGHUP, the static user pqmtls and the hardening options"
run systemd-analyze security --offline=yes --threshold=20 "$U"
[[ $RC -eq 0 ]] || fail "exposure above 2.0: $(tail -n 1 <<< "$OUT")"
assert_match "systemd-analyze security: exposure at most 2.0" "$OUT" 'Overall exposure level for pqmtls-gateway.service: (0\.[0-9]|1\.[0-9]|2\.0) '
grep -vE '^(Protect|Private|Restrict|SystemCall|Capability|Ambient|NoNew|Lock|Memory|RemoveIPC|UMask|ProcSubset)' \
    "$U" > "$T/unit/bare.service"
run systemd-analyze security --offline=yes --threshold=20 "$T/unit/bare.service"
[[ $RC -ne 0 ]] || fail "the unit without its hardening passed --threshold=20: $(tail -n 1 <<< "$OUT")"
pass "without its hardening options the same unit is over the threshold"

# The system calls the gateway makes, against the unit's SystemCallFilter.
if [[ $sanitized -eq 1 ]]; then
    info "a sanitizer build makes system calls of its own: the SystemCallFilter check is for the plain build"
elif ! command -v strace > /dev/null || ! strace -f -o /dev/null true 2> /dev/null; then
    info "strace cannot trace here: the SystemCallFilter check is skipped"
else
    UP=$(free_port)
    "$PY" "$PQMTLS_SOURCE_DIR/tests/integration/lib/upstream.py" "$UP" "$T/seen" & track_pid $!
    wait_port "$UP" 10 || fail "the upstream did not start"
    GW=$(free_port)
    ADMIN=$(free_port)
    mkdir -p "$T/etc/pqmtls"
    cat > "$T/etc/pqmtls/gateway.yaml" <<EOF
listen: 127.0.0.1:$GW
upstream: 127.0.0.1:$UP
admin: 127.0.0.1:$ADMIN
cert: $P/issued/api.example.com.chain.pem
key: $P/issued/api.example.com.key.pem
client_ca: $P/client-ca-chain.pem
crl: [$P/crl/client-ca-chain.crl.pem]
workers: 2
watch_interval: 0.1
EOF
    # ExecStart's arguments, the configuration's directory moved here.
    read -r -a argv <<< "$(sed -n "s|^ExecStart=||p" "$U" | sed "s|/etc/pqmtls|$T/etc/pqmtls|")"
    strace -f -qq -o "$T/strace.out" "${argv[@]}" > /dev/null 2> "$T/gw.err" &
    SPID=$!
    track_pid $SPID
    wait_port "$GW" 20 "$SPID" || fail "the gateway under strace did not start: $(cat "$T/gw.err")"
    GWPID=$(pgrep -P "$SPID" | head -n 1)
    [[ -n $GWPID ]] || fail "no gateway process under strace $SPID"
    for i in 1 2 3; do
        pqm request "https://api.example.com:$GW/x$i" --resolve "api.example.com:$GW:127.0.0.1" \
            --cert "$P/issued/alice.crt.pem" --key "$P/issued/alice.key.pem" \
            --ca "$P/server-ca-chain.pem" -o /dev/null || fail "request $i through the traced gateway"
    done
    pqm probe "http://127.0.0.1:$ADMIN/metrics" || fail "metrics"
    kill -HUP "$GWPID"
    for _ in $(seq 1 100); do grep -q 'reloaded.*SIGHUP' "$T/gw.err" && break; sleep 0.05; done
    cp "$P/client-ca-chain.pem" "$T/ca" && cat "$T/ca" > "$P/client-ca-chain.pem"
    for _ in $(seq 1 100); do grep -q 'reloaded.*a file changed' "$T/gw.err" && break; sleep 0.05; done
    grep -q 'reloaded.*a file changed' "$T/gw.err" || fail "no reload on a file change: $(cat "$T/gw.err")"
    kill -TERM "$GWPID"
    wait "$SPID" || fail "the traced gateway did not exit 0: $(tail -n 3 "$T/gw.err")"
    systemd-analyze syscall-filter > "$T/groups" 2> /dev/null
    py_checks "$T/strace.out" "$T/groups" "$U" <<'PY'
import re, sys
trace, groups_file, unit = sys.argv[1:4]
def check(ok, what):
    if not ok:
        sys.exit(f"FAILED: {what}")
    print(f"CHECK {what}")
groups, cur = {}, None
for line in open(groups_file):
    s = line.strip()
    if line.startswith("@"):
        cur = groups.setdefault(s, set())
    elif cur is not None and s and not s.startswith("#"):
        cur.add(s)
def expand(name, seen=()):
    if not name.startswith("@"):
        return {name}
    out = set()
    for m in groups[name]:
        if m not in seen:
            out |= expand(m, seen + (name,))
    return out
allowed = None
for line in open(unit):
    m = re.match(r"SystemCallFilter=(~?)(.*)", line.strip())
    if not m:
        continue
    names = set().union(*(expand(n) for n in m.group(2).split()))
    if m.group(1):
        allowed = (allowed if allowed is not None else set()) - names
    else:
        allowed = (allowed or set()) | names
check(allowed is not None and len(allowed) > 100, "the unit's SystemCallFilter is an allow list")
check(not {"mount", "reboot", "setrlimit", "sched_setaffinity", "init_module", "ptrace"} & allowed, "it refuses mount, reboot, setrlimit, sched_setaffinity, init_module, ptrace")
used = set()
for line in open(trace):
    m = re.match(r"\d+\s+([a-z0-9_]+)\(", line)
    if m:
        used.add(m.group(1))
check(len(used) > 20 and {"accept4", "rt_sigtimedwait", "epoll_wait"} <= used, f"the trace saw the gateway at work ({len(used)} distinct calls)")
check(used <= allowed, f"every system call the gateway made is allowed: {sorted(used - allowed) or 'yes'}")
PY
fi
done_all
