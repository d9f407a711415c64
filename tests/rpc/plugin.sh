# node rpc with the example plugin (conf/plugins/counter.c): instance modes over
# the transport and HTTP, kv's KeyError, nested calls, params, no lost update
# under parallel load, plugins from the cluster file, clear start-up errors.
. "$(dirname "$0")/../lib.sh"
unset NODE_CONFIG # the objects come from the flags, not from a cluster file around
SO="$ROOT/$NODE_BUILD/plugins/counter.so"
INC="$ROOT/$NODE_BUILD/include"
if [ ! -f "$SO" ] || [ ! -x "$TOOLS/rawcall" ]; then
	fail "needs $SO and $TOOLS/rawcall (make tools builds both)"
	finish
fi
PORT=$(free_port)
HPORT=$(free_port)
while [ "$HPORT" = "$PORT" ]; do HPORT=$(free_port); done
URL=tcp://127.0.0.1:$PORT
HURL=http://127.0.0.1:$HPORT

# req METHOD [PARAMS]: one JSON-RPC request with id 1
req() { printf '{"jsonrpc":"2.0","id":1,"method":"%s","params":%s}' "$1" "${2:-[]}"; }
# call TEXT: send it over a new connection (a new session), print the reply
call() { "$TOOLS/rawcall" "$URL" "$1" 10000 2>&1; }
# is DESCRIPTION TEXT REPLY: the reply to TEXT is exactly REPLY
is() {
	got=$(call "$2")
	if [ "$got" = "$3" ]; then ok "$1"; else fail "$1: got $got"; fi
}
result() { printf '{"jsonrpc":"2.0","id":1,"result":%s}' "$1"; }
# has DESCRIPTION TEXT PATTERN: the reply to TEXT holds PATTERN (grep -F)
has() {
	got=$(call "$2")
	if printf '%s' "$got" | grep -qF -- "$3"; then ok "$1"; else fail "$1: got $got"; fi
}
# hpost SESSION TEXT: POST over HTTP with X-Node-Session SESSION ("" for none)
hpost() {
	if [ -n "$1" ]; then curl -s -m 10 -H "X-Node-Session: $1" -d "$2" "$HURL/rpc"
	else curl -s -m 10 -d "$2" "$HURL/rpc"; fi
}

start rpc "$NODE" rpc --listen "$URL" --http "$HURL" --nameserver '' --plugin "$SO" \
	--object c.shared=counter:start=10 --object c.session=counter:mode=session --object c.call=counter:mode=call \
	--object store=kv --object c.load=counter:start=1000 --object store.load=kv --object store.full=kv
wait_for "$T/rpc.log" 'serving JSON-RPC over HTTP' 10 || { fail "node rpc with the plugin did not start"; finish; }
check "the plugin's load is logged with its kinds" grep -q "plugin $SO: 2 kinds (counter)" "$T/rpc.log"

# ---- instance modes ----
is "shared: the first connection sees start + 1" "$(req c.shared.incr)" "$(result 11)"
is "shared: a second connection sees the same instance" "$(req c.shared.incr)" "$(result 12)"
is "shared: get" "$(req c.shared.get)" "$(result 12)"
two='[{"jsonrpc":"2.0","id":1,"method":"c.session.incr"},{"jsonrpc":"2.0","id":2,"method":"c.session.incr"}]'
is "session: a batch of two incr in one message shares the connection's instance" "$two" \
	'[{"jsonrpc":"2.0","id":1,"result":1},{"jsonrpc":"2.0","id":2,"result":2}]'
is "session: a new connection starts again at 1" "$(req c.session.incr)" "$(result 1)"
# The sessions of closed connections are freed (bounded wait: the close is seen asynchronously).
i=0
while [ $i -lt 50 ]; do
	call "$(req rpc.objects)" >"$T/objects"
	python3 -c "import json,sys; sys.exit(json.load(open('$T/objects'))['result']['c.session']['sessions'] != 0)" 2>/dev/null && break
	sleep 0.1; i=$((i + 1))
done
check "session: instances of closed connections are freed" [ $i -lt 50 ]

check "http: the first request of session A gets 1" [ "$(hpost A "$(req c.session.incr)")" = "$(result 1)" ]
check "http: the second request of session A shares its instance: 2" [ "$(hpost A "$(req c.session.incr)")" = "$(result 2)" ]
check "http: session B gets a fresh instance: 1" [ "$(hpost B "$(req c.session.incr)")" = "$(result 1)" ]
check "http: session A still has its own: 3" [ "$(hpost A "$(req c.session.incr)")" = "$(result 3)" ]
check "http: without a header every request gets a fresh one" [ "$(hpost '' "$(req c.session.incr)")" = "$(result 1)" ]
check "http: the shared counter is the same one" [ "$(hpost '' "$(req c.shared.get)")" = "$(result 12)" ]

is "call: a new instance per call" "$(req c.call.incr)" "$(result 1)"
is "call: again 1" "$(req c.call.incr)" "$(result 1)"
is "call: even within one batch" \
	'[{"jsonrpc":"2.0","id":1,"method":"c.call.incr"},{"jsonrpc":"2.0","id":2,"method":"c.call.incr"}]' \
	'[{"jsonrpc":"2.0","id":1,"result":1},{"jsonrpc":"2.0","id":2,"result":1}]'

# ---- params ----
is "by-name params: incr {\"by\": 5}" "$(req c.call.incr '{"by":5}')" "$(result 5)"
is "positional: incr [-3]" "$(req c.call.incr '[-3]')" "$(result -3)"
has "an unknown parameter name: -32602" "$(req c.call.incr '{"bye":5}')" '"code":-32602'
has "wrong arity (incr 1, 2): -32602" "$(req c.shared.incr '[1,2]')" '"error":{"code":-32602,"message":"invalid params: incr takes 0 to 1 (by), got 2"'
has "wrong arity (get 1): -32602" "$(req c.shared.get '[1]')" '"code":-32602'
has "a wrong type (incr 1.5): -32602 from the plugin" "$(req c.shared.incr '[1.5]')" \
	'"error":{"code":-32602,"message":"invalid params: by must be an integer'
# (9007199254740000 has few digits, so node passes it on exactly; 1000 more is past 2^53)
has "incr past 2^53: OverflowError" \
	'[{"jsonrpc":"2.0","id":1,"method":"c.session.incr","params":[1000]},{"jsonrpc":"2.0","id":2,"method":"c.session.incr","params":[9007199254740000]}]' \
	'"data":{"type":"OverflowError"}'
has "an unknown method: -32601" "$(req c.shared.decr)" '"code":-32601'
is "reset" "$(req c.shared.reset)" "$(result 0)"
is "after reset" "$(req c.shared.incr)" "$(result 1)"

# ---- kv ----
is "kv: put returns null" "$(req store.put '["a",{"x":[1,2]}]')" "$(result null)"
is "kv: put by name" "$(req store.put '{"key":"b","value":"two"}')" "$(result null)"
is "kv: get returns the value as it was put" "$(req store.get '["a"]')" "$(result '{"x":[1,2]}')"
is "kv: put replaces" "$(req store.put '["a",3]')" "$(result null)"
is "kv: get after the replace" "$(req store.get '["a"]')" "$(result 3)"
is "kv: keys, sorted" "$(req store.keys)" "$(result '["a","b"]')"
is "kv: a missing key is a KeyError (-32000, data.type)" "$(req store.get '["zz"]')" \
	'{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"no key \"zz\"","data":{"type":"KeyError"}}}'
has "kv: a key that is not a string: -32602" "$(req store.put '[1,2]')" '"code":-32602'
for b in 0 1 2 3 4 5 6 7 8 9; do
	awk -v B=$b 'BEGIN { printf "["; for (i = 0; i < 1000; i++) printf "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"store.full.put\",\"params\":[\"f%d-%03d\",%d]}", i ? "," : "", i, B, i, i; printf "]" }' >"$T/full"
	call "@$T/full" | grep -q error && break
done
check "kv: 10000 keys fit (the limit)" [ "$b" = 9 ]
has "kv: one more is a MemoryError" "$(req store.full.put '["one-more",1]')" \
	'"message":"put: the map holds 10000 keys already (the limit)","data":{"type":"MemoryError"}'
is "kv: an existing key may still be replaced when full" "$(req store.full.put '["f0-000","new"]')" "$(result null)"

# ---- nested calls through host->call ----
is "relay to the server's own add by URL: 8" "$(req c.shared.relay "[\"$URL\",\"add\",[3,5]]")" "$(result 8)"
is "relay by-name params to the add" "$(req c.call.relay "{\"target\":\"$URL\",\"method\":\"add\",\"params\":{\"a\":1,\"b\":2}}")" "$(result 3)"
is "relay to another plugin object" "$(req c.call.relay "[\"$URL\",\"store.get\",[\"b\"]]")" "$(result '"two"')"
has "relay of a remote KeyError: RelayError with the message" "$(req c.call.relay "[\"$URL\",\"store.get\",[\"zz\"]]")" \
	'no key \"zz\"","data":{"type":"RelayError"}'
has "relay by name without a name server: RelayError saying so" "$(req c.call.relay '["some.object","m"]')" \
	'"data":{"type":"RelayError"}'

# ---- no lost update: a serialized shared counter under parallel load ----
# 8 connections of 200 calls each and 8 batches of 500 incr, all at once.
awk 'BEGIN { printf "["; for (i = 0; i < 500; i++) printf "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"c.load.incr\"}", i ? "," : "", i; printf "]" }' >"$T/batch"
LOAD=""
for p in 1 2 3 4 5 6 7 8; do
	"$TOOLS/rawcall" "$URL" "$(req c.load.incr)" 20000 200 >"$T/loop$p" 2>&1 &
	LOAD="$LOAD $!"
	"$TOOLS/rawcall" "$URL" "@$T/batch" 20000 >"$T/batch$p" 2>&1 &
	LOAD="$LOAD $!"
	awk -v K="$p" 'BEGIN { printf "["; for (i = 0; i < 100; i++) printf "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"store.load.put\",\"params\":[\"k%s-%03d\",%d]}", i ? "," : "", i, K, i, i; printf "]" }' >"$T/kv$p"
	"$TOOLS/rawcall" "$URL" "@$T/kv$p" 20000 >"$T/kvout$p" 2>&1 &
	LOAD="$LOAD $!"
done
bad=0
for p in $LOAD; do wait "$p" || bad=$((bad + 1)); done
check "every load process got its answers" [ $bad = 0 ]
check "no batch had an error" sh -c "! grep -l error '$T'/batch[1-8] '$T'/kvout[1-8]"
is "the shared serialized counter ends at exactly 1000 + 8 * (200 + 500)" "$(req c.load.get)" "$(result 6600)"
call "$(req store.load.keys)" >"$T/kvkeys"
check "the concurrent kv holds every one of the 800 keys put at once" python3 -c "
import json; k = json.load(open('$T/kvkeys'))['result']
assert len(k) == 800 and k == sorted(k) and k[0] == 'k1-000' and k[-1] == 'k8-099', (len(k), k[:3])"

stop_pid "$PID_rpc"
check "the server stops cleanly (exit 0)" [ "$STOP_RC" = 0 ]

# ---- plugins and objects from the cluster file ----
CPORT=$(free_port)
cat >"$T/c.json" <<JSON
{
  "cluster": "plugin-test",
  "nodes": {
    "r": { "host": "127.0.0.1", "roles": { "rpc": {
      "listen": "tcp://127.0.0.1:$CPORT", "http": "",
      "plugins": ["$SO"],
      "objects": [
        { "name": "f.counter", "kind": "counter", "start": 5, "mode": "shared", "concurrency": "serialized" },
        { "name": "f.store", "kind": "kv", "mode": "session" }
      ] } } }
  }
}
JSON
"$NODE" config check "$T/c.json" >"$T/cc" 2>&1; rc=$?
check "config check: a cluster file with roles.rpc.plugins and objects is valid" sh -c "[ $rc = 0 ] && grep -q valid '$T/cc'"
export NODE_CONFIG="$T/c.json"
start cf "$NODE" --name r rpc --nameserver ''
if wait_for "$T/cf.log" 'listening on' 10; then
	got=$("$TOOLS/rawcall" tcp://127.0.0.1:$CPORT "$(req f.counter.incr)" 5000 2>&1)
	check "an object of the cluster file: its start setting applies (6)" [ "$got" = "$(result 6)" ]
	got=$("$TOOLS/rawcall" tcp://127.0.0.1:$CPORT "$(req f.store.keys)" 5000 2>&1)
	check "a kv object of the cluster file answers" [ "$got" = "$(result '[]')" ]
	stop_pid "$PID_cf"
	check "it stops cleanly" [ "$STOP_RC" = 0 ]
else
	fail "node rpc from the cluster file did not start"
fi
unset NODE_CONFIG

# ---- start-up errors: one clear line naming the file, a non-zero exit ----
# bad_start NAME PATTERN ARGS...: node rpc ARGS must exit non-zero, saying PATTERN
bad_start() {
	n=$1 pat=$2; shift 2
	timeout 20 "$NODE" rpc --listen tcp://127.0.0.1:0 --nameserver '' "$@" >"$T/$n.err" 2>&1; rc=$?
	if [ $rc != 0 ] && [ $rc != 124 ] && grep -qF -- "$pat" "$T/$n.err"; then ok "$n: exit $rc, $pat"
	else fail "$n: exit $rc, wanted '$pat' in: $(cat "$T/$n.err")"; fi
}
bad_start "a missing file" "cannot load plugin $T/none.so" --plugin "$T/none.so"
echo "not a shared object" >"$T/text.so"
bad_start "a text file" "cannot load plugin $T/text.so" --plugin "$T/text.so"
if command -v "${CC:-cc}" >/dev/null; then
	printf 'int plugin_answer(void) { return 42; }\n' >"$T/nosym.c"
	"${CC:-cc}" -shared -fPIC -o "$T/nosym.so" "$T/nosym.c"
	bad_start "a .so without node_rpc_plugin_v1" "$T/nosym.so is not a node rpc plugin: it exports no node_rpc_plugin_v1" \
		--plugin "$T/nosym.so"
	cat >"$T/abi.c" <<'C'
#include <node/rpc_plugin.h>
#include <stddef.h>
static const node_rpc_plugin p = {NODE_RPC_PLUGIN_ABI + 1, "future", NULL};
const node_rpc_plugin *node_rpc_plugin_v1(void) { return &p; }
C
	"${CC:-cc}" -shared -fPIC -I"$INC" -o "$T/abi.so" "$T/abi.c"
	bad_start "a plugin of another ABI" "plugin $T/abi.so speaks plugin ABI 2" --plugin "$T/abi.so"
else
	echo "no C compiler: the checks of .so files built here are skipped"
fi
bad_start "an unknown kind in --object" 'unknown kind "nokind"' --plugin "$SO" --object x=nokind
bad_start "a kind of a plugin not loaded" 'unknown kind "counter"' --object x=counter
bad_start "a misspelt setting, from the plugin's create" 'unknown setting "strat" (it takes: start)' \
	--plugin "$SO" --object x=counter:strat=1
bad_start "a bad setting value" 'start must be an integer' --plugin "$SO" --object x=counter:start=ten
bad_start "the same plugin twice" "plugin $SO: kind counter exists already" --plugin "$SO" --plugin "$SO"

check_no_sanitizer
finish
