# Bad input at the protocol level: every malformed, oversize or out-of-place
# request gets an error reply with a stable code (bad_request, bad_args,
# too_large, unknown_op, not_found), and the broker keeps serving. A worker
# that reports a task it does not hold changes nothing; clients that go away
# while parked (get, fetch) leave nothing parked behind.
. "$(dirname "$0")/../lib.sh"
cluster_file badinput-test '"lease_ms": 1500' '' '"limits": { "max_message": 65536 }'

# req NAME JSON|@FILE [TIMEOUT_MS]: one call; reply or error in $T/NAME, exit status in $RC
req() {
	"$TOOLS/call" "$URL" "$2" "${3:-5000}" >"$T/$1" 2>&1
	RC=$?
}
# code_is NAME CODE: the reply in $T/NAME is an error with that code
code_is() { grep -q "\"ok\":false,\"error\":{\"code\":\"$2\"" "$T/$1"; }
alive() { "$TOOLS/call" "$URL" '{"op":"ping"}' 3000 2>/dev/null | grep -q '"role":"broker"'; }
parked() { "$TOOLS/call" "$URL" '{"op":"info"}' 3000 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin)["stats"]["parked"])'; }
wait_parked() { # wait_parked N: until info says N parked calls (bounded: 5 s)
	i=0
	while [ $i -lt 50 ]; do
		[ "$(parked)" = "$1" ] && return 0
		sleep 0.1; i=$((i + 1))
	done
	echo "parked is $(parked), not $1" >&2
	return 1
}

start_broker || { fail "broker did not start"; finish; }

# ---- submit with bad arguments: bad_args, and nothing is created ----
req s1 '{"op":"submit","tasks":{"name":"add","args":[1,2]}}'
check "submit with tasks not an array: bad_args" code_is s1 bad_args
req s2 '{"op":"submit","tasks":[]}'
check "submit with no tasks: bad_args" code_is s2 bad_args
req s3 '{"op":"submit"}'
check "submit without tasks: bad_args" code_is s3 bad_args
python3 -c "
import json
json.dump({'op': 'submit', 'tasks': [{}] * 10001}, open('$T/many.json', 'w'), separators=(',', ':'))"
req s4 "@$T/many.json" 10000
check "submit with 10001 tasks (30 KB): bad_args naming the limit" sh -c "grep -q '\"code\":\"bad_args\"' '$T/s4' && grep -q '10000' '$T/s4'"
req s5 '{"op":"submit","tasks":[{"id":"has space","name":"add","args":[1,2]}]}'
check "an id with a space: bad_args naming tasks[0].id" sh -c "grep -q '\"code\":\"bad_args\"' '$T/s5' && grep -q 'tasks\[0\]\.id' '$T/s5'"
req s6 '{"op":"submit","tasks":[{"name":"add","args":[1,2]},{"name":"add","args":[1,2],"priority":10}]}'
check "a priority of 10: bad_args naming tasks[1].priority" sh -c "grep -q '\"code\":\"bad_args\"' '$T/s6' && grep -q 'tasks\[1\]\.priority' '$T/s6'"
req s7 '{"op":"submit","tasks":[{"name":"add","args":[1,2],"priority":2.5}]}'
check "a priority of 2.5: bad_args" code_is s7 bad_args
req s8 '{"op":"submit","tasks":[{"name":"add","args":{"a":1}}]}'
check "args not an array: bad_args" code_is s8 bad_args
req s9 '{"op":"submit","tasks":[{"name":"add","args":[1],"kwargs":[1]}]}'
check "kwargs not an object: bad_args" code_is s9 bad_args
req s10 '{"op":"submit","tasks":[{"args":[1]}]}'
check "a task without a name: bad_args" code_is s10 bad_args
req s11 '{"op":"submit","tasks":[{"name":"add","queue":"bad queue"}]}'
check "a queue name with a space: bad_args" code_is s11 bad_args
req s12 '{"op":"submit","tasks":[{"name":"add","queue":7}]}'
check "a queue that is not a string: bad_args" code_is s12 bad_args
req s13 '{"op":"submit","tasks":[{"id":"ok-1","name":"add","args":[1,2]},{"id":"bad 2","name":"add"}]}'
check "a batch with one bad task is refused" code_is s13 bad_args
req s14 '{"op":"status","id":"ok-1"}'
check "and none of it was created" code_is s14 not_found
req s15 '{"op":"queues"}'
check "no queue was created by the refused submits" sh -c "! grep -q 'bad queue' '$T/s15'"
check "the broker answers ping after bad submits" alive

# ---- oversize messages (limits.max_message 65536) ----
python3 -c "
import json
json.dump({'op': 'submit', 'tasks': [{'name': 'echo', 'args': ['a' * 102400]}]}, open('$T/big.json', 'w'))"
req b1 "@$T/big.json"
check "100 KiB of args (compressed on the wire): too_large" code_is b1 too_large
python3 -c "
import base64, json, os
json.dump({'op': 'submit', 'tasks': [{'id': 'big-2', 'name': 'echo', 'args': [base64.b64encode(os.urandom(102400)).decode()]}]}, open('$T/big2.json', 'w'))"
req b2 "@$T/big2.json" 2000
check "136 KiB that do not compress: nng drops it, the call times out (no reply, as documented)" [ "$RC" != 0 ]
check "the broker answers ping after oversize messages" alive
req b3 '{"op":"status","id":"big-2"}'
check "the oversize task was not created" code_is b3 not_found
req b4 '{"op":"info"}'
check "info counts the refusal over the limit" python3 -c "
import json; d = json.load(open('$T/b4'))
assert d['stats']['refused_limits'] >= 1, d"

# ---- malformed requests ----
req m1 '{"op":"frob"}'
check "an unknown op: unknown_op" code_is m1 unknown_op
req m2 '{"noop":1}'
check "no op: bad_request" code_is m2 bad_request
req m3 '{"op":7}'
check "an op that is not a string: bad_request" code_is m3 bad_request
if command -v nngcat >/dev/null; then
	nngcat --req --dial "$URL" --raw --recv-timeout 3 --data '{"op":"submit","tasks":[' >"$T/m4" 2>&1
	check "malformed JSON (nngcat): bad_request" grep -q '"code":"bad_request"' "$T/m4"
	nngcat --req --dial "$URL" --raw --recv-timeout 3 --data '[1,2,3]' >"$T/m5" 2>&1
	check "a JSON array instead of an object (nngcat): bad_request" grep -q '"code":"bad_request"' "$T/m5"
fi
req m6 '{"op":"get","ids":"x"}'
check "get with ids not an array: bad_args" code_is m6 bad_args
req m7 '{"op":"get","ids":["x"],"wait_ms":-5}'
check "get with a negative wait_ms: bad_args" code_is m7 bad_args
req m8 '{"op":"status"}'
check "status without an id: bad_args" code_is m8 bad_args
req m9 '{"op":"dead","action":"explode"}'
check "dead with an unknown action: bad_args" code_is m9 bad_args
req m10 '{"op":"register","worker":"bad name","queues":["default"],"concurrency":1}'
check "register with a bad worker name: bad_args" code_is m10 bad_args

# ---- worker ops from a worker that never registered: not_found ----
req u1 '{"op":"fetch","worker":"stranger","queues":["default"],"slots":1,"wait_ms":0}'
check "fetch from an unregistered worker: not_found" code_is u1 not_found
req u2 '{"op":"report","worker":"stranger","results":[{"id":"x","ok":true,"value":1}]}'
check "report from an unregistered worker: not_found" code_is u2 not_found
req u3 '{"op":"heartbeat","worker":"stranger","running":[]}'
check "heartbeat from an unregistered worker: not_found" code_is u3 not_found
req u4 '{"op":"giveback","worker":"stranger","ids":["x"]}'
check "giveback from an unregistered worker: not_found" code_is u4 not_found
req u5 '{"op":"bye","worker":"stranger"}'
check "bye from an unregistered worker: not_found" code_is u5 not_found
req u6 '{"op":"fetch","queues":["default"]}'
check "fetch without a worker name: bad_args" code_is u6 bad_args

# ---- reports for tasks the worker does not hold ----
for g in g1 g2; do
	req "reg-$g" "{\"op\":\"register\",\"worker\":\"$g\",\"queues\":[\"q8\"],\"concurrency\":1,\"tasks\":[\"echo\"],\"host\":\"127.0.0.1\",\"pid\":1}"
done
check "two test workers register" sh -c "grep -q '\"ok\":true' '$T/reg-g1' && grep -q '\"ok\":true' '$T/reg-g2'"
req f0 '{"op":"fetch","worker":"g1","queues":["q8"],"slots":0}'
check "fetch with 0 slots: bad_args" code_is f0 bad_args
req f00 '{"op":"fetch","worker":"g1","queues":"q8"}'
check "fetch with queues not an array: bad_args" code_is f00 bad_args
req sub '{"op":"submit","tasks":[{"id":"bi-1","name":"echo","args":["real"],"queue":"q8"},{"id":"bi-q","name":"echo","args":["q"],"queue":"q8idle"}]}'
check "submit bi-1 and bi-q" grep -q '"created":2' "$T/sub"
req f1 '{"op":"fetch","worker":"g1","queues":["q8"],"slots":1,"wait_ms":0}'
check "g1 takes bi-1" grep -q '"id":"bi-1"' "$T/f1"
req r1 '{"op":"report","worker":"g2","results":[{"id":"bi-1","delivery":1,"ok":true,"value":"imposter"}]}'
check "g2 reports g1's task: accepted 0, ignored 1" sh -c "grep -q '\"accepted\":0' '$T/r1' && grep -q '\"ignored\":1' '$T/r1'"
req r2 '{"op":"report","worker":"g2","results":[{"id":"no-such-task","ok":true,"value":1}]}'
check "a report for an unknown id: accepted 0, ignored 1" sh -c "grep -q '\"accepted\":0' '$T/r2' && grep -q '\"ignored\":1' '$T/r2'"
req r3 '{"op":"report","worker":"g2","results":[{"id":"bi-q","ok":true,"value":"never ran"}]}'
check "a report for a queued task nobody was given: accepted 0, ignored 1" sh -c "grep -q '\"accepted\":0' '$T/r3' && grep -q '\"ignored\":1' '$T/r3'"
req r4 '{"op":"report","worker":"g1","results":[{"id":"bi-1","delivery":1,"ok":"yes","value":1}]}'
check "a result with ok not a boolean is ignored" grep -q '"ignored":1' "$T/r4"
req r5 '{"op":"report","worker":"g1","results":{"id":"bi-1"}}'
check "report with results not an array: bad_args" code_is r5 bad_args
req r6 '{"op":"report","worker":"g1","results":[{"id":"bi-1","delivery":1,"ok":true,"value":"real"}]}'
check "the worker holding bi-1 reports it: accepted 1" grep -q '"accepted":1' "$T/r6"
req r7 '{"op":"report","worker":"g1","results":[{"id":"bi-1","delivery":1,"ok":true,"value":"again"}]}'
check "a second report of the same task: ignored" sh -c "grep -q '\"accepted\":0' '$T/r7' && grep -q '\"ignored\":1' '$T/r7'"
req gt '{"op":"get","ids":["bi-1","bi-q"]}'
check "bi-1 holds the real result; bi-q is still queued" sh -c "grep -q '\"id\":\"bi-1\",\"state\":\"succeeded\",\"value\":\"real\"' '$T/gt' && grep -q '\"id\":\"bi-q\",\"state\":\"queued\"' '$T/gt'"
check "bi-1 has exactly one result record ($(finishes bi-1)); bi-q none ($(finishes bi-q))" \
	[ "$(finishes bi-1)" = 1 -a "$(finishes bi-q)" = 0 ]
req gb '{"op":"giveback","worker":"g2","ids":["bi-q","bi-1","nope"]}'
check "a giveback of tasks the worker does not hold requeues nothing" grep -q '"requeued":0' "$T/gb"

# ---- clients that go away while parked ----
check "nothing is parked before" wait_parked 0
start waiter "$NODE" result never-1 --wait --timeout 30
check "a result --wait for a task that never finishes parks a get" wait_parked 1
kill -KILL "$PID_waiter"; wait "$PID_waiter" 2>/dev/null
check "when that client is killed nothing stays parked" wait_parked 0
start fetcher "$TOOLS/call" "$URL" '{"op":"fetch","worker":"g2","queues":["q9"],"slots":1,"wait_ms":30000}' 35000
check "a fetch on an empty queue parks" wait_parked 1
kill -KILL "$PID_fetcher"; wait "$PID_fetcher" 2>/dev/null
check "when that worker's connection dies nothing stays parked" wait_parked 0
req q9 '{"op":"submit","tasks":[{"id":"q9-1","name":"echo","args":[1],"queue":"q9"}]}'
sleep 0.3
req q9s '{"op":"status","id":"q9-1"}'
check "a task submitted afterwards is not handed to the dead fetch (still queued)" grep -q '"state":"queued"' "$T/q9s"
i=0
while [ $i -lt 3 ]; do # the same, several at once
	start "w$i" "$NODE" result "never-$i" --wait --timeout 30
	i=$((i + 1))
done
check "three parked gets" wait_parked 3
for p in $PID_w0 $PID_w1 $PID_w2; do kill -KILL "$p"; wait "$p" 2>/dev/null; done
check "all three are gone once their clients are killed" wait_parked 0
check "the broker answers ping at the end" alive
check "the broker logged no error" sh -c "! grep -q ' error \|twice' '$T/broker.log'"

stop_cluster "$PID_broker"
check "nothing was logged at error level during shutdown" sh -c "! grep -q ' error ' '$T/broker.log'"
check_no_sanitizer
finish
