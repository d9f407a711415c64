# The name server: register, lookup, list by prefix, remove; duplicates
# (exists, --replace); TTL expiry and renew; the registry survives SIGTERM
# and kill -9; bad input gets bad_args / unknown_op and the server keeps
# serving.
. "$(dirname "$0")/../lib.sh"
PORT=$(free_port)
URL=tcp://127.0.0.1:$PORT
cat >"$T/c.json" <<JSON
{
  "cluster": "ns-test",
  "defaults": { "timeout_ms": 5000 },
  "nodes": {
    "n": { "host": "127.0.0.1", "roles": { "nameserver": { "listen": "$URL", "default_ttl_s": 0 } } }
  }
}
JSON
export NODE_CONFIG="$T/c.json"
NS_DIR="$T/data-n"
start_ns() { start ns "$NODE" --name n --data-dir "$NS_DIR" nameserver; wait_for "$T/ns.log" 'listening on' 10; }
req() { "$TOOLS/call" "$URL" "$2" 5000 >"$T/$1" 2>&1; RC=$?; }
code_is() { grep -q "\"ok\":false,\"error\":{\"code\":\"$2\"" "$T/$1"; }
ns() { "$NODE" ns "$@"; }

"$NODE" config keys >"$T/keys" 2>&1
check "config keys lists roles.nameserver.listen and default_ttl_s" sh -c "grep -q 'roles.nameserver.listen' '$T/keys' && grep -q 'roles.nameserver.default_ttl_s' '$T/keys'"
"$NODE" config check "$T/c.json" >/dev/null 2>&1
check "a cluster file with a nameserver role is valid" [ $? = 0 ]

start_ns || { fail "name server did not start"; finish; }

# ---- register, lookup, list, remove ----
ns register svc.alpha tcp://10.0.0.1:9000 --meta '{"v":1}' >"$T/r1" 2>&1
check "register prints NAME -> ADDRESS" grep -q '^svc.alpha -> tcp://10.0.0.1:9000 (expires never)' "$T/r1"
ns register svc.beta tcp://10.0.0.2:9000 >/dev/null 2>&1
ns register other/gamma ipc:///tmp/g >/dev/null 2>&1
check "lookup prints the address" sh -c "[ \"\$('$NODE' ns lookup svc.alpha)\" = tcp://10.0.0.1:9000 ]"
ns lookup svc.alpha --json >"$T/l1" 2>&1
check "lookup --json has name, address and meta" python3 -c "
import json; d = json.load(open('$T/l1'))
assert d['name'] == 'svc.alpha' and d['address'] == 'tcp://10.0.0.1:9000' and d['meta'] == {'v': 1} and 'expires_ms' not in d, d"
ns list svc. --json >"$T/ls" 2>&1
check "list by prefix: the two svc. names, sorted" python3 -c "
names = [__import__('json').loads(l)['name'] for l in open('$T/ls')]
assert names == ['svc.alpha', 'svc.beta'], names"
ns list >"$T/la" 2>&1
check "list without a prefix: a table of all three" sh -c "grep -q '^NAME' '$T/la' && [ \$(grep -c -e svc.alpha -e svc.beta -e other/gamma '$T/la') = 3 ]"
ns lookup nope >"$T/l2" 2>&1; rc=$?
check "lookup of an unknown name: exit 1, not found" sh -c "[ $rc = 1 ] && grep -q 'no such name' '$T/l2'"

# ---- duplicates ----
ns register svc.alpha tcp://10.0.0.9:1 >"$T/d1" 2>&1; rc=$?
check "a duplicate register: exit 1, registered already" sh -c "[ $rc = 1 ] && grep -q 'registered already' '$T/d1'"
req d2 '{"op":"register","name":"svc.alpha","address":"x"}'
check "a duplicate register on the wire: code exists" code_is d2 exists
ns register svc.alpha tcp://10.0.0.9:1 --replace --meta '{"v":2}' >"$T/d3" 2>&1; rc=$?
check "--replace takes it over" sh -c "[ $rc = 0 ] && grep -q replaced '$T/d3' && [ \"\$('$NODE' ns lookup svc.alpha)\" = tcp://10.0.0.9:1 ]"

ns remove svc.beta >"$T/x1" 2>&1; rc=$?
check "remove: exit 0" sh -c "[ $rc = 0 ] && grep -q 'svc.beta: removed' '$T/x1'"
ns lookup svc.beta >/dev/null 2>&1; rc=$?
check "a removed name is gone" [ $rc = 1 ]
ns remove svc.beta >/dev/null 2>&1; rc=$?
check "removing it again: exit 1" [ $rc = 1 ]

# ---- TTL ----
ns register tmp.short x:1 --ttl 1 >/dev/null 2>&1
ns register tmp.kept x:2 --ttl 1 >/dev/null 2>&1
ns lookup tmp.short --json >"$T/t0" 2>&1
check "a TTL entry has expires_ms" grep -q expires_ms "$T/t0"
for i in 1 2 3 4 5 6; do ns renew tmp.kept >/dev/null 2>&1; sleep 0.3; done
ns lookup tmp.short >/dev/null 2>&1; rc=$?
check "a 1 s TTL entry has expired after 1.8 s" [ $rc = 1 ]
ns lookup tmp.kept >/dev/null 2>&1; rc=$?
check "renew kept the other alive" [ $rc = 0 ]
ns renew tmp.kept tmp.short >"$T/rn" 2>&1; rc=$?
check "renew of a missing name: listed, exit 1" sh -c "[ $rc = 1 ] && grep -q 'tmp.short: not registered' '$T/rn'"
req rn2 '{"op":"renew","names":["tmp.kept","ghost"]}'
check "renew reply lists missing names" grep -q '"missing":\["ghost"\]' "$T/rn2"
ns register tmp.long x:3 --ttl 600 >/dev/null 2>&1
ns register tmp.gone x:4 --ttl 2 >/dev/null 2>&1
sleep 1.2
check "the sweep drops expired entries from list" sh -c "! '$NODE' ns list tmp.short --json | grep -q ."

# ---- restarts ----
stop_pid "$PID_ns"
check "SIGTERM: the name server exits 0" [ "$STOP_RC" = 0 ]
mv "$T/ns.log" "$T/ns-1.log"
start_ns || { fail "name server did not restart"; finish; }
after() {
	check "$1: svc.alpha is there with its new address" sh -c "[ \"\$('$NODE' ns lookup svc.alpha)\" = tcp://10.0.0.9:1 ]"
	ns lookup svc.alpha --json >"$T/a1" 2>&1
	check "$1: and its new meta" grep -q '"meta":{"v":2}' "$T/a1"
	check "$1: other/gamma is there" sh -c "'$NODE' ns lookup other/gamma >/dev/null"
	check "$1: tmp.long keeps its TTL" sh -c "'$NODE' ns lookup tmp.long --json | grep -q expires_ms"
	ns lookup svc.beta >/dev/null 2>&1; rc=$?
	check "$1: the removed svc.beta stays removed" [ $rc = 1 ]
}
after "after SIGTERM"
ns register post.kill tcp://1.2.3.4:5 >/dev/null 2>&1
kill9 "$PID_ns"
mv "$T/ns.log" "$T/ns-2.log"
sleep 1 # tmp.gone (TTL 2 s) runs out while the server is down
start_ns || { fail "name server did not restart after kill -9"; finish; }
after "after kill -9"
check "after kill -9: a name registered just before is there" sh -c "'$NODE' ns lookup post.kill >/dev/null"
ns lookup tmp.gone >/dev/null 2>&1; rc=$?
check "an entry whose TTL passed while down is dropped" [ $rc = 1 ]
check "the replay says so" grep -q '[1-9][0-9]* expired while down' "$T/ns.log"

# ---- bad input ----
req b1 '{"op":"register","name":"has space","address":"x"}'
check "a name with a space: bad_args" code_is b1 bad_args
python3 -c "print('{\"op\":\"register\",\"name\":\"' + 'a' * 201 + '\",\"address\":\"x\"}')" >"$T/long.json"
"$TOOLS/call" "$URL" "@$T/long.json" 5000 >"$T/b2" 2>&1
check "a 201-character name: bad_args" code_is b2 bad_args
req b3 '{"op":"register","name":"","address":"x"}'
check "an empty name: bad_args" code_is b3 bad_args
req b4 '{"op":"register","address":"x"}'
check "register without a name: bad_args" code_is b4 bad_args
req b5 '{"op":"register","name":"ok.name"}'
check "register without an address: bad_args" code_is b5 bad_args
req b6 '{"op":"register","name":"ok.name","address":7}'
check "an address that is a number: bad_args" code_is b6 bad_args
python3 -c "print('{\"op\":\"register\",\"name\":\"ok.name\",\"address\":\"' + 'a' * 513 + '\"}')" >"$T/addr.json"
"$TOOLS/call" "$URL" "@$T/addr.json" 5000 >"$T/b7" 2>&1
check "a 513-byte address: bad_args" code_is b7 bad_args
req b8 '{"op":"register","name":"ok.name","address":"x","meta":[1]}'
check "meta that is an array: bad_args" code_is b8 bad_args
req b9 '{"op":"register","name":"ok.name","address":"x","ttl_s":-1}'
check "a negative ttl_s: bad_args" code_is b9 bad_args
req b10 '{"op":"register","name":"ok.name","address":"x","ttl_s":1.5}'
check "a fractional ttl_s: bad_args" code_is b10 bad_args
req b11 '{"op":"register","name":"ok.name","address":"x","replace":"yes"}'
check "replace that is a string: bad_args" code_is b11 bad_args
req b12 '{"op":"renew","names":"svc.alpha"}'
check "renew names not an array: bad_args" code_is b12 bad_args
req b13 '{"op":"renew","names":[]}'
check "renew with no names: bad_args" code_is b13 bad_args
req b14 '{"op":"renew","names":["ok",5]}'
check "renew with a number among names: bad_args" code_is b14 bad_args
req b15 '{"op":"lookup"}'
check "lookup without a name: bad_args" code_is b15 bad_args
req b16 '{"op":"lookup","name":["x"]}'
check "lookup with a name that is an array: bad_args" code_is b16 bad_args
req b17 '{"op":"list","prefix":3}'
check "list with a numeric prefix: bad_args" code_is b17 bad_args
req b18 '{"op":"remove","name":"bad name"}'
check "remove with a bad name: bad_args" code_is b18 bad_args
req b19 '{"op":"frobnicate"}'
check "an unknown op: unknown_op" code_is b19 unknown_op
req b20 '{"op":"lookup","name":"ok.name"}'
check "none of the bad registers created anything" code_is b20 not_found
"$TOOLS/call" "$URL" '{"op":"ping"}' 3000 >"$T/p" 2>&1
check "the name server answers ping as role nameserver" grep -q '"role":"nameserver"' "$T/p"

# ---- the command line ----
ns >/dev/null 2>&1; rc=$?
check "node ns without a subcommand: exit 2" [ $rc = 2 ]
ns frob x >/dev/null 2>&1; rc=$?
check "an unknown subcommand: exit 2" [ $rc = 2 ]
ns register only-name >/dev/null 2>&1; rc=$?
check "register without an address: exit 2" [ $rc = 2 ]
ns register a b --meta '[1]' >/dev/null 2>&1; rc=$?
check "--meta that is not an object: exit 2" [ $rc = 2 ]
ns register a b --ttl x >/dev/null 2>&1; rc=$?
check "--ttl that is not a number: exit 2" [ $rc = 2 ]
ns register 'bad name' b >"$T/c1" 2>&1; rc=$?
check "a bad name from the command line: exit 1 with the server's message" sh -c "[ $rc = 1 ] && grep -q 'expected 1 to 200' '$T/c1'"
DEAD=$(free_port)
"$NODE" --timeout 500 ns lookup x --nameserver "tcp://127.0.0.1:$DEAD" >/dev/null 2>&1; rc=$?
check "no name server at --nameserver: exit 5" [ $rc = 5 ]
ns ping >"$T/p1" 2>&1; rc=$?
check "ns ping: exit 0, names the node and version" sh -c "[ $rc = 0 ] && grep -q '^name server $URL: node n, version' '$T/p1'"
"$NODE" --timeout 500 ns ping --nameserver "tcp://127.0.0.1:$DEAD" >/dev/null 2>&1; rc=$?
check "ns ping of nobody: exit 5" [ $rc = 5 ]

stop_pid "$PID_ns"
check "the name server stops cleanly" [ "$STOP_RC" = 0 ]
check_no_sanitizer
finish
