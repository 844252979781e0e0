#!/usr/bin/env bash
# The reference stays complete: every command `pqmtls --help` lists has a row in the
# README's reference and a mention in docs/cli.md, and every option of the gateway's
# configuration (`pqmtls gateway --help`) has a row in the README's table of keys, saying
# what its --help says.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
require_bin
README="$PQMTLS_SOURCE_DIR/README.md"
CLI="$PQMTLS_SOURCE_DIR/docs/cli.md"

run pqm --help
cmds=$(awk '/^Commands:/ {on = 1; next} on && /^  [a-z]/ {print} on && /^$/ {exit}' <<<"$OUT" |
    sed -E 's/^  ([a-z0-9-]+( [a-z0-9-]+)?) {2,}.*/\1/')
n=$(wc -l <<<"$cmds")
[[ $n -ge 20 ]] || fail "expected at least 20 commands in pqmtls --help, found $n"
missing=""
while IFS= read -r c; do
    grep -qF "| \`pqmtls $c\` |" "$README" || missing+=" README:'$c'"
    grep -qF "pqmtls $c" "$CLI" || missing+=" cli.md:'$c'"
done <<<"$cmds"
[[ -z "$missing" ]] || fail "commands missing from the reference:$missing"
pass "all $n commands are in the README's reference and in docs/cli.md"

run pqm gateway --help
keys=$(sed -n '/^Options:/,$p' <<<"$OUT" | sed -nE 's/^  --([a-z0-9-]+).*/\1/p' | grep -v '^config$' | tr '-' '_')
k=$(wc -l <<<"$keys")
[[ $k -ge 30 ]] || fail "expected at least 30 gateway options, found $k"
missing=""
while IFS= read -r key; do
    grep -qF "| \`$key\` |" "$README" || missing+=" $key"
done <<<"$keys"
[[ -z "$missing" ]] || fail "gateway keys missing from the README's table:$missing"
pass "all $k gateway configuration keys are in the README's table"
# ... and each row says what the option's own --help says, so the two cannot drift.
printf '%s\n' "$OUT" > "$T/gateway-help.txt"
/usr/bin/python3 - "$README" "$T/gateway-help.txt" <<'PY' || fail "the README's table of keys differs from pqmtls gateway --help"
import re, sys
readme = open(sys.argv[1]).read()
helptext = open(sys.argv[2]).read().split("Options:", 1)[1]
want = {m.group(1).replace("-", "_"): " ".join(m.group(2).split())
        for m in re.finditer(r"^  --([a-z0-9-]+)(?: \S+)? {2,}(.+)$", helptext, re.M)}
bad = []
for key, text in want.items():
    m = re.search(r"^\| `%s` \| [^|]*(?:\\\|[^|]*)* \| (.+) \|$" % re.escape(key), readme, re.M)
    if key != "config" and (m is None or " ".join(m.group(1).split()) != text):
        bad.append(f"{key}: README {m.group(1) if m else None!r} != --help {text!r}")
if bad:
    sys.exit("\n".join(bad))
PY
pass "every row of the README's table says what pqmtls gateway --help says"

done_all
