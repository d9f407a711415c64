# node call, the client of node rpc, and libnodeclient's proxies: the
# EXAMPLES scenarios (greeting, add, the shop, the chain of three), one-way
# calls, --json, the standard error codes, a server killed mid-call, a
# server that moved, a name server restarted with kill -9; then the
# library's own checks (tests/tools/rpc_client), also across two moves.
. "$(dirname "$0")/../lib.sh"
RC_TOOL="$TOOLS/rpc_client"
[ -x "$RC_TOOL" ] || { fail "$RC_TOOL is not built (make tools)"; finish; }
NSPORT=$(free_port); P1=$(free_port); P2=$(free_port); P3=$(free_port); PK=$(free_port)
NS=tcp://127.0.0.1:$NSPORT; U1=tcp://127.0.0.1:$P1; U2=tcp://127.0.0.1:$P2; U3=tcp://127.0.0.1:$P3
UK=tcp://127.0.0.1:$PK
cat >"$T/c.json" <<JSON
{
  "cluster": "call-test",
  "defaults": { "timeout_ms": 3000, "discovery": false },
  "nodes": {
    "n": { "roles": { "nameserver": { "listen": "$NS", "discovery": false } } },
    "a": { "roles": { "rpc": { "listen": "$U1", "http": "", "ttl_s": 3 } } },
    "b": { "roles": { "rpc": { "listen": "$U2", "http": "", "ttl_s": 3 } } },
    "c": { "roles": { "rpc": { "listen": "$U3", "http": "", "ttl_s": 3 } } },
    "m": { "roles": { "rpc": { "http": "", "ttl_s": 3 } } }
  }
}
JSON
export NODE_CONFIG="$T/c.json"

start ns "$NODE" --name n --data-dir "$T/ns" nameserver
wait_for "$T/ns.log" 'listening on' || { fail "name server did not start"; finish; }
start a "$NODE" --name a rpc --object server=greeting --object example.shop.Shop=shop \
	--object example.chainTopology.1=chain:this=1,next=2
start b "$NODE" --name b rpc --object example.chainTopology.2=chain:this=2,next=3
start c "$NODE" --name c rpc --object example.chainTopology.3=chain:this=3,next=1
for s in a b c; do wait_for "$T/$s.log" 'registered example' || fail "rpc $s did not register"; done
wait_for "$T/a.log" 'registered server' 5 >/dev/null

# call NAME ARGS...: node call ARGS, stdout in $T/NAME.out, stderr in $T/NAME.err, status in $RC
call() { cn=$1; shift; "$NODE" call "$@" >"$T/$cn.out" 2>"$T/$cn.err"; RC=$?; }
out_is() { [ "$(cat "$T/$1.out")" = "$2" ]; }
err_has() { grep -q -- "$2" "$T/$1.err"; }

# ---- the seed scenarios ----
call greet server welcomeMessage Rashmi
check "greeting: Hi welcome Rashmi" sh -c "[ $RC = 0 ] && [ \"\$(cat '$T/greet.out')\" = 'Hi welcome Rashmi' ]"
call add rpc.a add 3 5
check "add 3 5 by the server's name: 8" out_is add 8
call addu $U1 add 3 5
check "add 3 5 by address: 8" out_is addu 8
n=0
for step in "logOn Rashmi" "deposit Rashmi 100" "buy Rashmi book 37" "logOut Rashmi" \
	"logOn Meeta" "deposit Meeta 50" "deposit Meeta 50" "logOut Meeta"; do
	# shellcheck disable=SC2086 # the words of a step are its arguments
	call shop example.shop.Shop $step
	[ $RC = 0 ] && n=$((n + 1)) || echo "shop step '$step': $(cat "$T/shop.err")" >&2
done
check "the shop: Rashmi and Meeta log on, deposit, buy, log out (8 calls)" [ $n = 8 ]
call all example.shop.Shop allAccounts
check "allAccounts: {\"Meeta\":100,\"Rashmi\":63}" python3 -c "
import json; assert json.load(open('$T/all.out')) == {'Meeta': 100, 'Rashmi': 63}"
call bad example.shop.Shop deposit x 5
check "a deposit to an unknown account: exit 1, \"METHOD: MESSAGE [CODE TYPE]\"" sh -c "[ $RC = 1 ] && [ ! -s '$T/bad.out' ] &&
	grep -qx 'node call: example.shop.Shop.deposit: unknown account \"x\" (log on first) \[-32000 KeyError\]' '$T/bad.err'"
call after rpc.a add 1 1
check "the server still answers after the error" out_is after 2
call chain --json example.chainTopology.1 process '[]'
check "the chain of three objects on three servers" out_is chain '["passed on from 1","passed on from 2","passed on from 3","complete at 1"]'

# ---- one-way calls ----
call ow --oneway rpc.a sleep 2000
check "--oneway: exit 0 at once, prints nothing" sh -c "[ $RC = 0 ] && [ ! -s '$T/ow.out' ] && [ ! -s '$T/ow.err' ]"
call ow1 example.shop.Shop logOn Oneway
call ow2 --oneway example.shop.Shop deposit Oneway 5
i=0; while call ow3 example.shop.Shop balance Oneway && ! out_is ow3 5 && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
check "a one-way deposit happened" out_is ow3 5

# ---- arguments and output ----
call j1 --json rpc.a echo '{"a":[1,2.5,"x"],"b":null}'
check "--json: an object argument, the result as JSON" out_is j1 '{"a":[1,2.5,"x"],"b":null}'
call j2 --json server welcomeMessage '"Meeta"'
check "--json: a string result printed as JSON" out_is j2 '"Hi welcome Meeta"'
call j3 rpc.a echo hello
check "a word is a string, printed as it is" out_is j3 hello
call j4 rpc.a echo true
check "true is JSON true" out_is j4 true
call j5 rpc.a echo 12.5e1
check "a number is a number" out_is j5 125
call j6 rpc.a echo '[1,2]'
check "without --json, other JSON is a string" out_is j6 '[1,2]'
call j7 --json rpc.a echo '[1,2]'
check "with --json it is JSON" out_is j7 '[1,2]'
call j8 --json rpc.a echo hello
check "--json with an ARG that is not JSON: exit 2 naming it" sh -c "[ $RC = 2 ] && grep -q 'argument 1 is not JSON text: hello' '$T/j8.err'"
call p1 rpc.a add --params '{"a":40,"b":2}'
check "--params by name" out_is p1 42
call p2 rpc.a add 1 --params '[1,2]'
check "--params and ARGs: exit 2" [ $RC = 2 ]
call p3 rpc.a add --params '7'
check "--params that is not an array or object: exit 2" [ $RC = 2 ]
call neg rpc.a add -- -3 5
check "after --, negative numbers" out_is neg 2
call u1 rpc.a
check "no METHOD: exit 2" [ $RC = 2 ]
call u2 --count 0 rpc.a add 1 2
check "--count 0: exit 2" [ $RC = 2 ]
call cnt --count 200 rpc.a add 3 5
check "--count 200: the result once, then calls/s and percentiles on stderr" sh -c "[ $RC = 0 ] && [ \"\$(cat '$T/cnt.out')\" = 8 ] &&
	grep -Eq '^200 calls in [0-9.]+ s: [0-9]+ calls/s, p50 [0-9]+ us, p99 [0-9]+ us$' '$T/cnt.err'"

# ---- errors ----
call e1 rpc.a nope
check "an unknown method: exit 1, -32601" sh -c "[ $RC = 1 ] && grep -q 'method not found.*\[-32601\]' '$T/e1.err'"
call e2 example.shop.Shop nope
check "an unknown method of an object: -32601, has no method" sh -c "[ $RC = 1 ] && grep -q 'has no method \"nope\" \[-32601\]' '$T/e2.err'"
call e3 rpc.a add 1
check "wrong arity: exit 1, -32602" sh -c "[ $RC = 1 ] && grep -q 'takes 2 (a,b), got 1 \[-32602\]' '$T/e3.err'"
call e4 rpc.a add 1 x
check "wrong types: exit 1, -32602" sh -c "[ $RC = 1 ] && grep -q 'must be a number, not a string \[-32602\]' '$T/e4.err'"
call e5 no.such.name hello
check "a name nobody registered: exit 1, no such name ... at the name server" sh -c "[ $RC = 1 ] &&
	grep -qx 'node call: no such name no.such.name at the name server $NS' '$T/e5.err'"
call e6 --nameserver tcp://127.0.0.1:$(free_port) --timeout 500 server welcomeMessage x
check "a name server that does not answer: exit 5" sh -c "[ $RC = 5 ] && grep -q 'name server .* did not answer' '$T/e6.err'"
call e7 --timeout 300 rpc.a sleep 2000
check "a call longer than --timeout: exit 5 with the transport's message" sh -c "[ $RC = 5 ] && grep -q 'sleep: rpc server $U1 did not answer in 300 ms' '$T/e7.err'"
call e8 'tcp://' add 1 2
check "a target that is not a valid address: exit 2" [ $RC = 2 ]

# ---- a server killed mid-call: a time-out within --timeout, no hang ----
start k "$NODE" --name m rpc --listen "$UK" --register-as rpc.k
wait_for "$T/k.log" 'registered rpc.k' || fail "rpc k did not start"
T0=$(now_ms)
"$NODE" --timeout 3000 call rpc.k sleep 5000 >"$T/mid.out" 2>"$T/mid.err" &
MP=$!
sleep 0.5
kill9 "$PID_k"
wait $MP; rc=$?; T1=$(now_ms)
# (a time-out, or at once when the connection resets as the process dies)
check "server killed mid-call: exit 5 within the 3 s limit ($((T1 - T0)) ms: $(cat "$T/mid.err"))" sh -c "[ $rc = 5 ] &&
	[ $((T1 - T0)) -lt 4500 ] && grep -q 'sleep: .*rpc server $UK' '$T/mid.err'"

# ---- the server moves: killed, started at another address ----
PM1=$(free_port); PM2=$(free_port)
start m1 "$NODE" --name m rpc --listen "tcp://127.0.0.1:$PM1" --register-as rpc.m --object example.moving=greeting
wait_for "$T/m1.log" 'registered example.moving' || fail "rpc m1 did not register"
call mv1 example.moving welcomeMessage one
check "example.moving answers at its first address" out_is mv1 "Hi welcome one"
kill9 "$PID_m1"
start m2 "$NODE" --name m rpc --listen "tcp://127.0.0.1:$PM2" --register-as rpc.m --object example.moving=greeting --replace
wait_for "$T/m2.log" 'registered example.moving' || fail "rpc m2 did not register"
call mv2 example.moving welcomeMessage two
check "after the move (registered again with --replace) the name works" out_is mv2 "Hi welcome two"

# ---- the name server is killed and restarted: names still resolve ----
kill9 "$PID_ns"
start ns2 "$NODE" --name n --data-dir "$T/ns" nameserver
wait_for "$T/ns2.log" 'listening on' || fail "name server did not restart"
call nsr server welcomeMessage again
check "after a name server kill -9 and restart: names resolve" out_is nsr "Hi welcome again"
call nsr2 example.moving welcomeMessage again
check "and the moved name too" out_is nsr2 "Hi welcome again"

# ---- the library: rpc_client ----
# relay FILE: the program's "ok:" and "FAIL:" lines count as our checks
relay() {
	while IFS= read -r line; do
		case "$line" in
		ok:* | figure:*) echo "$line" ;;
		FAIL:*) fail "${line#FAIL: }" ;;
		esac
	done <"$1"
}
"$RC_TOOL" all "$U1" rpc.a >"$T/lib.out" 2>&1
rc=$?
relay "$T/lib.out"
check "rpc_client all exits 0" [ $rc = 0 ]
[ $rc = 0 ] || tail -5 "$T/lib.out" >&2

# Two moves under one proxy: killed and started elsewhere (the old address
# dead), then again with another server at the old address.
PR1=$(free_port); PR2=$(free_port); PR3=$(free_port)
start r1 "$NODE" --name m rpc --listen "tcp://127.0.0.1:$PR1" --register-as rpc.r1 --object example.roaming=greeting
wait_for "$T/r1.log" 'registered example.roaming' || fail "rpc r1 did not register"
"$RC_TOOL" move example.roaming "$T/go" >"$T/move.out" 2>&1 &
RP=$!
wait_for "$T/move.out" 'move 1' 20 || fail "rpc_client move did not start"
kill9 "$PID_r1"
start r2 "$NODE" --name m rpc --listen "tcp://127.0.0.1:$PR2" --register-as rpc.r2 --object example.roaming=greeting --replace
wait_for "$T/r2.log" 'registered example.roaming' || fail "rpc r2 did not register"
touch "$T/go.1"
wait_for "$T/move.out" 'move 2' 20 || fail "rpc_client move did not get to the second move"
kill9 "$PID_r2"
start r3 "$NODE" --name m rpc --listen "tcp://127.0.0.1:$PR3" --register-as rpc.r3 --object example.roaming=greeting --replace
start r4 "$NODE" --name m rpc --listen "tcp://127.0.0.1:$PR2" --register-as rpc.r4
wait_for "$T/r3.log" 'registered example.roaming' || fail "rpc r3 did not register"
wait_for "$T/r4.log" 'registered rpc.r4' || fail "rpc r4 did not start at the old address"
touch "$T/go.2"
wait $RP; rc=$?
relay "$T/move.out"
check "rpc_client move exits 0" [ $rc = 0 ]
[ $rc = 0 ] || tail -5 "$T/move.out" >&2

# ---- figures (printed, not timed) ----
"$NODE" call --count 2000 "$U1" add 3 5 >/dev/null 2>"$T/fig1"
"$TOOLS/rawcall" "$U1" '{"jsonrpc":"2.0","method":"add","params":[3,5],"id":1}' 5000 2000 >"$T/fig2" 2>&1
echo "figure: node call --count 2000: $(cat "$T/fig1"); a bare REQ/REP pair: $(cat "$T/fig2")"

for s in a b c m2 r3 r4 ns2; do
	stop_pid "$(eval echo \$PID_$s)"
	check "rpc $s stops cleanly" [ "$STOP_RC" = 0 ]
done
check_no_sanitizer
finish
