# Bad input gets one clear line and a documented exit status: malformed
# JSON with --json (arguments and stdin lines, nothing sent), bad channel
# names, unknown subcommands, an unknown or wrong host, no chanhost in
# the cluster file.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/common.sh"
start_chanhost

"$NODE" chan create bad --capacity 10 >/dev/null
"$NODE" chan write bad --json '{"a":' 2>"$T/e"; rc=$?
check "--json bad argument: exit 2" [ "$rc" = 2 ]
check "--json bad argument: message" grep -q "^node chan: --json: VALUE 1 is not JSON: {\"a\":" "$T/e"
printf '1\n[2]\n{oops\n4\n' | "$NODE" chan write bad --json 2>"$T/e"; rc=$?
check "--json bad stdin line: exit 1" [ "$rc" = 1 ]
check "--json bad stdin line: names the line" grep -q "^node chan: stdin line 3 is not JSON: {oops" "$T/e"
check "the lines before the bad one in that batch were not sent" [ "$(chan_field bad buffered)" = 0 ]
printf '1\n\n  \n2\n' | "$NODE" chan write bad --json; rc=$?
check "--json: blank lines are skipped" [ "$rc" = 0 ] && [ "$(chan_field bad buffered)" = 2 ]

for name in 'a b' 'x;y' '' "$(printf 'n%.0s' $(seq 1 201))"; do
	"$NODE" chan read "$name" --count 1 2>"$T/e"; rc=$?
	check "bad name '$(echo "$name" | cut -c1-10)': exit 2" [ "$rc" = 2 ] && grep -q "^node chan: bad name" "$T/e"
done
"$NODE" pub 'bad topic' x 2>"$T/e"; rc=$?
check "pub: bad topic name exit 2" [ "$rc" = 2 ]
"$NODE" chan frobnicate x 2>"$T/e"; rc=$?
check "unknown subcommand: exit 2" [ "$rc" = 2 ] && grep -q 'unknown subcommand "frobnicate"' "$T/e"
"$NODE" chan read a b 2>/dev/null; rc=$?
check "read takes one channel: exit 2" [ "$rc" = 2 ]
"$NODE" chan create k --kind many2many 2>/dev/null; rc=$?
check "bad --kind: exit 2" [ "$rc" = 2 ]
"$NODE" chan read x --count 0 2>/dev/null; rc=$?
check "bad --count: exit 2" [ "$rc" = 2 ]

DEAD=tcp://127.0.0.1:$(free_port)
t0=$(now_ms)
"$NODE" chan read x --host "$DEAD" 2>"$T/e"; rc=$?
t1=$(now_ms)
check "unreachable host: exit 5" [ "$rc" = 5 ]
check "unreachable host: one line naming it" grep -q "^node chan: cannot reach chanhost $DEAD: " "$T/e"
check "unreachable host: within the call time limit (3 s)" [ $((t1 - t0)) -lt 6000 ]
"$NODE" chan read x --host "nonsense://x" 2>"$T/e"; rc=$?
check "bad URL: exit 2 with a message" [ "$rc" = 2 ] && grep -q "^node chan: cannot dial nonsense://x" "$T/e"
cat >"$T/none.json" <<JSON
{ "cluster": "none", "defaults": { "discovery": false }, "nodes": { "x": { "roles": { "broker": {} } } } }
JSON
"$NODE" --config "$T/none.json" chan read x 2>"$T/e"; rc=$?
check "no chanhost in the cluster file: exit 3" [ "$rc" = 3 ] && grep -q "chanhost.*--host URL" "$T/e"
finish
