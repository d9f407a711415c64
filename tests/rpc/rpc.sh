# node rpc, the server: JSON-RPC 2.0 on the transport and over HTTP (every
# standard error code, batches, notifications, limits), registration at the
# name server (TTL, heartbeat, clean stop, kill -9, duplicates, --replace,
# name server restart), the chain across three servers (no deadlock), a
# server killed mid-call, and the HTTP token of a cluster with a secret.
. "$(dirname "$0")/../lib.sh"
NSPORT=$(free_port); P1=$(free_port); P2=$(free_port); P3=$(free_port); HP=$(free_port)
NS=tcp://127.0.0.1:$NSPORT; U1=tcp://127.0.0.1:$P1; U2=tcp://127.0.0.1:$P2; U3=tcp://127.0.0.1:$P3
H=http://127.0.0.1:$HP
cat >"$T/c.json" <<JSON
{
  "cluster": "rpc-test",
  "defaults": { "timeout_ms": 3000, "discovery": false },
  "limits": { "max_message": 65536, "compress_above": 0 },
  "nodes": {
    "n": { "roles": { "nameserver": { "listen": "$NS", "discovery": false } } },
    "a": { "roles": { "rpc": { "listen": "$U1", "http": "$H", "ttl_s": 3, "call_timeout_ms": 4000,
                               "objects": [ { "name": "example.shop.Shop", "kind": "shop" },
                                            { "name": "server", "kind": "greeting" },
                                            { "name": "example.chainTopology.1", "kind": "chain", "this": "1", "next": "2" } ] } } },
    "b": { "roles": { "rpc": { "listen": "$U2", "http": "", "ttl_s": 3,
                               "objects": [ { "name": "example.chainTopology.2", "kind": "chain", "this": "2", "next": "3" } ] } } },
    "c": { "roles": { "rpc": { "listen": "$U3", "http": "", "ttl_s": 3,
                               "objects": [ { "name": "example.chainTopology.3", "kind": "chain", "this": "3", "next": "1" } ] } } }
  }
}
JSON
export NODE_CONFIG="$T/c.json"
"$NODE" config check "$T/c.json" >"$T/cc" 2>&1
check "a cluster file with rpc roles and objects is valid" [ $? = 0 ]

start ns "$NODE" --name n --data-dir "$T/ns" nameserver
wait_for "$T/ns.log" 'listening on' || { fail "name server did not start"; finish; }
start a "$NODE" --name a rpc
start b "$NODE" --name b rpc
start c "$NODE" --name c rpc
for s in a b c; do wait_for "$T/$s.log" 'registered example' || fail "rpc $s did not register"; done
wait_for "$T/a.log" 'registered rpc.a' 5 >/dev/null

rpc() { "$TOOLS/rawcall" "$1" "$2" "${3:-5000}" >"$T/out" 2>&1; RC=$?; }
has() { grep -q -- "$1" "$T/out"; }

# ---- the seed calls ----
rpc $U1 '{"jsonrpc":"2.0","method":"add","params":[3,5],"id":1}'
check "add(3, 5) = 8" has '"id":1,"result":8}'
rpc $U1 '{"jsonrpc":"2.0","method":"server.welcomeMessage","params":["Rashmi"],"id":"g"}'
check "greeting: Hi welcome Rashmi" has '"result":"Hi welcome Rashmi"'
rpc $U1 '{"jsonrpc":"2.0","method":"example.chainTopology.1.process","params":[["hello"]],"id":3}'
check "the chain across three servers comes back complete" has '"result":\["passed on from 1","passed on from 2","passed on from 3","complete at 1"\]'
check "server 1 logged forwarding and closing the chain" sh -c "grep -q '1 forwarding the message to the object 2' '$T/a.log' && grep -q 'Back at 1; the chain is closed!' '$T/a.log'"
check "server 2 forwarded to 3" grep -q '2 forwarding the message to the object 3' "$T/b.log"
# A chain started at 2 and at 3 at the same time as at 1: every server is
# waiting for another; none may deadlock.
for k in 1 2 3; do
	port=$(eval echo \$P$k)
	"$TOOLS/rawcall" tcp://127.0.0.1:$port "{\"jsonrpc\":\"2.0\",\"method\":\"example.chainTopology.$k.process\",\"params\":[[\"x\"]],\"id\":$k}" 5000 >"$T/cyc$k" 2>&1 &
	eval "CP$k=\$!"
done
for k in 1 2 3; do wait "$(eval echo \$CP$k)"; done
check "three chains at once, each around the cycle: no deadlock" sh -c "grep -q 'complete at 1' '$T/cyc1' && grep -q 'complete at 2' '$T/cyc2' && grep -q 'complete at 3' '$T/cyc3'"

# ---- params by name, errors with the standard codes ----
rpc $U1 '{"jsonrpc":"2.0","method":"example.shop.Shop.deposit","params":{"amount":5,"name":"nobody"},"id":4}'
check "an application error: -32000 with data.type, message unknown account" sh -c "grep -q '\"code\":-32000' '$T/out' && grep -q 'unknown account' '$T/out' && grep -q '\"type\":\"KeyError\"' '$T/out'"
rpc $U1 '{"jsonrpc":"2.0","method":"add","params":{"a":1,"b":2},"id":5}'
check "params by name" has '"result":3'
rpc $U1 '{"jsonrpc":"2.0","method":"add","params":{"a":1,"c":2},"id":6}'
check "an unknown parameter name: -32602" has '"code":-32602'
rpc $U1 '{"jsonrpc":"2.0","method":"server.nope","id":7}'
check "unknown method: -32601" sh -c "grep -q '\"code\":-32601' '$T/out' && grep -q 'has no method' '$T/out'"
rpc $U1 '{"jsonrpc":"2.0","method":"nobody.here.x","id":8}'
check "unknown object: -32601" sh -c "grep -q '\"code\":-32601' '$T/out' && grep -q 'no object' '$T/out'"
rpc $U1 '{"jsonrpc":"2.0","method":"add","params":[1],"id":9}'
check "wrong arity: -32602 naming the parameters" sh -c "grep -q '\"code\":-32602' '$T/out' && grep -q 'takes 2 (a,b), got 1' '$T/out'"
rpc $U1 '{"jsonrpc":"2.0","method":"add","params":[1,"x"],"id":10}'
check "wrong type: -32602" sh -c "grep -q '\"code\":-32602' '$T/out' && grep -q 'must be a number' '$T/out'"
rpc $U1 '{"method":"add","params":[1,2],"id":11}'
check "no jsonrpc member: -32600" has '"code":-32600'
rpc $U1 '{"jsonrpc":"2.0","method":"add","params":"1,2","id":12}'
check "params not a list or object: -32600" has '"code":-32600'
rpc $U1 '{"jsonrpc":"2.0","method":"add","params":[1,2],"id":{"x":1}}'
check "an object as id: -32600 with id null" sh -c "grep -q '\"code\":-32600' '$T/out' && grep -q '\"id\":null' '$T/out'"
rpc $U1 '{"jsonrpc": "2.0", "method": "add", "params": [1'
check "malformed JSON: -32700" has '"code":-32700'
rpc $U1 '{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}xyz'
check "text after the JSON value: -32700, nothing run" sh -c "grep -q '\"code\":-32700' '$T/out' && ! grep -q '\"result\"' '$T/out'"
rpc $U1 '1'
check "a bare number: -32600 invalid request" has '"code":-32600'
rpc $U1 '{"jsonrpc":"2.0","method":"add","params":[2,2],"id":2,"op":"ping"}'
check "a JSON-RPC request with an op member is still JSON-RPC" has '"result":4'
rpc $U1 '[]'
check "an empty batch: -32600" has '"code":-32600'
rpc $U1 '{"jsonrpc":"2.0","method":"echo","params":[1]}'
check "a notification alone is acknowledged at once" has '{"ok":true}'

# ---- batches ----
rpc $U1 '[{"jsonrpc":"2.0","method":"add","params":[1,2],"id":"a"},{"jsonrpc":"2.0","method":"nope","id":"b"},{"jsonrpc":"2.0","method":"echo","params":[5]},7,{"jsonrpc":"2.0","method":"example.chainTopology.1.process","params":[["m"]],"id":"c"}]'
check "a mixed batch: one answer per request with an id, in order, none for the notification" python3 -c "
import json; r = json.load(open('$T/out'))
assert [x['id'] for x in r] == ['a', 'b', None, 'c'], r
assert r[0]['result'] == 3 and r[1]['error']['code'] == -32601 and r[2]['error']['code'] == -32600
assert r[3]['result'][-1] == 'complete at 1', r"
python3 -c "
import json; print(json.dumps([{'jsonrpc': '2.0', 'method': 'add', 'params': [i, 1], 'id': i} for i in range(1001)]))" >"$T/big.json"
rpc $U1 "@$T/big.json"
check "a batch of 1001: refused as too large (-32005)" has '"code":-32005'

# ---- limits: answers share the message limit ----
python3 -c "
import json; print(json.dumps([{'jsonrpc': '2.0', 'method': 'example.shop.Shop.logOn', 'params': ['customer%04d' % i]} for i in range(400)]))" >"$T/logons.json"
rpc $U1 "@$T/logons.json"
python3 -c "
import json; print(json.dumps([{'jsonrpc': '2.0', 'method': 'example.shop.Shop.allAccounts', 'id': i} for i in range(30)]))" >"$T/all30.json"
rpc $U1 "@$T/all30.json"
check "answers past the message limit become -32005 errors that keep their ids" python3 -c "
import json; r = json.load(open('$T/out'))
assert [x['id'] for x in r] == list(range(30)), r
assert 'result' in r[0] and len(r[0]['result']) >= 400 and r[-1]['error']['code'] == -32005, r[-1]"

# ---- limits: oversize params ----
python3 -c "
import json; print(json.dumps({'jsonrpc': '2.0', 'method': 'echo', 'params': ['x' * 70000], 'id': 1}))" >"$T/huge.json"
rpc $U1 "@$T/huge.json"
check "params over the message limit: refused with -32005, no crash" has '"code":-32005'
rpc $U1 '{"jsonrpc":"2.0","method":"add","params":[40,2],"id":13}'
check "the server still answers after bad input" has '"result":42'

# ---- HTTP ----
curl -s -o "$T/h1" -w '%{http_code}' -X POST -d '{"jsonrpc":"2.0","method":"add","params":[3,5],"id":1}' "$H/rpc" >"$T/h1c"
check "HTTP POST /rpc: 200 and the result" sh -c "[ \"\$(cat '$T/h1c')\" = 200 ] && grep -q '\"result\":8' '$T/h1'"
curl -s -o "$T/h2" -w '%{http_code}' -X POST -d '{"jsonrpc":"2.0","method":"echo","params":[1]}' "$H/" >"$T/h2c"
check "HTTP: a notification gets 204 and no body" sh -c "[ \"\$(cat '$T/h2c')\" = 204 ] && [ ! -s '$T/h2' ]"
curl -s -o "$T/h3" -X POST -d '[{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1},{"jsonrpc":"2.0","method":"x","id":2}]' "$H/"
check "HTTP: a batch" python3 -c "
import json; r = json.load(open('$T/h3')); assert r[0]['result'] == 2 and r[1]['error']['code'] == -32601, r"
curl -s -o "$T/h4" -X POST -d 'not json' "$H/rpc"
check "HTTP: malformed JSON gives -32700" grep -q '"code":-32700' "$T/h4"
curl -s -o "$T/h5" -w '%{http_code}' -X POST --data-binary "@$T/huge.json" "$H/rpc" >"$T/h5c"
check "HTTP: a body over the limit is refused (413)" [ "$(cat "$T/h5c")" = 413 ]
curl -s -o "$T/h6" "$H/"
check "HTTP GET / lists the objects" python3 -c "
import json; d = json.load(open('$T/h6')); assert 'example.shop.Shop' in d['objects'] and d['objects']['server']['kind'] == 'greeting', d"
curl -s -o /dev/null -w '%{http_code}' -X PUT -d '{}' "$H/rpc" >"$T/h7c"
check "HTTP: another method is refused (405)" [ "$(cat "$T/h7c")" = 405 ]

# ---- the name server: registrations, TTL, clean stop, kill -9, duplicates ----
"$NODE" ns list example. --json >"$T/names" 2>&1
check "every object is registered with its kind and methods" python3 -c "
import json; e = {d['name']: d for d in map(json.loads, open('$T/names'))}
assert set(e) == {'example.shop.Shop', 'example.chainTopology.1', 'example.chainTopology.2', 'example.chainTopology.3'}, e
s = e['example.shop.Shop']; assert s['address'] == '$U1' and s['meta']['kind'] == 'shop' and 'deposit' in s['meta']['methods'], s"
"$NODE" ns lookup rpc.a --json >"$T/srv" 2>&1
check "the server registers itself as rpc.NODE (kind server, its objects)" python3 -c "
import json; d = json.load(open('$T/srv')); assert d['meta']['kind'] == 'server' and 'server' in d['meta']['objects'], d"
sleep 4 # past the 3 s TTL: only the heartbeat keeps the names
check "the heartbeat renews the names past their TTL" sh -c "[ \"\$('$NODE' ns lookup example.chainTopology.2)\" = '$U2' ]"
start dup "$NODE" --name b rpc --listen tcp://127.0.0.1:$(free_port)
i=0; while kill -0 $PID_dup 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
wait $PID_dup; rc=$?
check "a second server with the same object name does not start (exit 3, registered already)" sh -c "[ $rc = 3 ] && grep -q 'registered already by $U2' '$T/dup.log'"
stop_pid $PID_c
check "a clean stop exits 0" [ "$STOP_RC" = 0 ]
"$NODE" ns lookup example.chainTopology.3 >/dev/null 2>&1
check "a clean stop removes its names at once" [ $? = 1 ]
rpc $U1 '{"jsonrpc":"2.0","method":"example.chainTopology.1.process","params":[["y"]],"id":14}'
# (server 1 may still have the address cached: a time-out then, else "not registered")
check "the chain with a link missing: an error naming what failed, within the time limit" sh -c "grep -q -e 'example.chainTopology.3 is not registered' -e 'did not answer' '$T/out' && grep -q '\"code\":-3200[12]' '$T/out'"
kill -9 $PID_b; wait $PID_b 2>/dev/null
i=0; while "$NODE" ns lookup example.chainTopology.2 >/dev/null 2>&1 && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "a server killed with -9 disappears when its TTL runs out" [ $i -lt 100 ]
NEWP=$(free_port)
start b2 "$NODE" --name b rpc --listen tcp://127.0.0.1:$NEWP
wait_for "$T/b2.log" 'registered example' || fail "restarted server did not register"
check "a restarted server registers again, at its new address" sh -c "[ \"\$('$NODE' ns lookup example.chainTopology.2)\" = tcp://127.0.0.1:$NEWP ]"
start dup2 "$NODE" --name b rpc --listen tcp://127.0.0.1:$(free_port) --replace --register-as rpc.b2
wait_for "$T/dup2.log" 'registered example' || fail "--replace did not register"
check "--replace takes a name over" sh -c "[ \"\$('$NODE' ns lookup example.chainTopology.2)\" != tcp://127.0.0.1:$NEWP ]"
check "the server whose name was taken over notices at its next renewal" wait_for "$T/b2.log" 'example.chainTopology.2 was taken over' 5
stop_pid $PID_dup2

# ---- the name server restarts: names survive, heartbeats go on ----
kill -9 $PID_ns; wait $PID_ns 2>/dev/null
start ns2 "$NODE" --name n --data-dir "$T/ns" nameserver
wait_for "$T/ns2.log" 'listening on' || fail "name server did not restart"
check "after a name server kill -9 and restart the names are there" sh -c "[ \"\$('$NODE' ns lookup example.shop.Shop)\" = '$U1' ]"
sleep 4
check "and the servers' heartbeats keep them past the TTL" sh -c "[ \"\$('$NODE' ns lookup server)\" = '$U1' ]"

# ---- a server killed mid-call: the caller gets a time-out, nothing hangs ----
"$TOOLS/rawcall" $U1 '{"jsonrpc":"2.0","method":"sleep","params":[5000],"id":1}' 1500 >"$T/mid" 2>&1 &
MP=$!
sleep 0.3
kill -9 $PID_a; wait $PID_a 2>/dev/null
T0=$(now_ms); wait $MP; rc=$?; T1=$(now_ms)
check "server killed mid-call: the caller fails within its time limit" sh -c "[ $rc != 0 ] && [ $((T1 - T0)) -lt 3000 ]"

# ---- a cluster with a secret: HTTP wants the token ----
SP=$(free_port); SHP=$(free_port)
cat >"$T/s.json" <<JSON
{ "cluster": "sec", "secret": "0123456789abcdef0123", "defaults": { "discovery": false },
  "nodes": { "s": { "roles": { "rpc": { "listen": "tcp://127.0.0.1:$SP", "http": "http://127.0.0.1:$SHP" } } } } }
JSON
start sec "$NODE" -c "$T/s.json" --name s rpc --nameserver ''
wait_for "$T/sec.log" 'serving JSON-RPC over HTTP' || fail "secret server did not start"
curl -s -o "$T/t1" -w '%{http_code}' -X POST -d '{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}' "http://127.0.0.1:$SHP/rpc" >"$T/t1c"
check "with a secret, HTTP without the token: 401" sh -c "[ \"\$(cat '$T/t1c')\" = 401 ] && grep -q 'node token' '$T/t1'"
TOKEN=$("$NODE" -c "$T/s.json" token)
curl -s -o "$T/t2" -H "Authorization: Bearer $TOKEN" -X POST -d '{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}' "http://127.0.0.1:$SHP/rpc"
check "with the token from node token: the call goes through" grep -q '"result":3' "$T/t2"
curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${TOKEN%?}0" -X POST -d '{}' "http://127.0.0.1:$SHP/rpc" >"$T/t3c"
check "a wrong token: 401" [ "$(cat "$T/t3c")" = 401 ]
rpc tcp://127.0.0.1:$SP '{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}'
check "with a secret, unsigned transport messages are refused" sh -c "! grep -q '\"result\"' '$T/out'"
stop_pid $PID_sec
check "the secret server stops cleanly" [ "$STOP_RC" = 0 ]
for s in a b b2 ns ns2; do check_no_sanitizer "$T/$s.log" 2>/dev/null; done
finish
