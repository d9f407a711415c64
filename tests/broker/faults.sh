# Workers that die or go silent in the middle of a task: the lease runs out
# and another worker runs it, with exactly one result recorded; a late result
# from a worker that lost its lease is never applied twice.
. "$(dirname "$0")/../lib.sh"
PORT=$(free_port)
URL=tcp://127.0.0.1:$PORT
cat >"$T/c.json" <<JSON
{
  "cluster": "faults-test",
  "defaults": { "timeout_ms": 5000 },
  "queues": { "fragile": { "max_deliveries": 2 } },
  "nodes": {
    "b": { "host": "127.0.0.1", "roles": { "broker": { "listen": "$URL", "lease_ms": 1500 } } },
    "w": { "host": "127.0.0.1", "roles": { "worker": { "concurrency": 1 } } }
  }
}
JSON
export NODE_CONFIG="$T/c.json"
DATA="$T/data-b/broker"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# st ID: `node status ID --json` into $T/st-ID.json; field ID KEY prints one member
st() { "$NODE" status "$1" --json >"$T/st-$1.json" 2>/dev/null; }
field() {
	python3 -c 'import json, sys
try: d = json.load(open(sys.argv[1]))
except Exception: d = {}
v = d.get(sys.argv[2])
print("" if v is None else v)' "$T/st-$1.json" "$2"
}
# wait_state ID STATE [WORKER] [SECONDS]: until the task is in STATE (run by WORKER), bounded
wait_state() {
	i=0; lim=$(( ${4:-10} * 10 ))
	while [ $i -lt $lim ]; do
		st "$1"
		grep -q "\"state\":\"$2\"" "$T/st-$1.json" && { [ -z "${3:-}" ] || grep -q "\"worker\":\"$3\"" "$T/st-$1.json"; } && return 0
		sleep 0.1; i=$((i + 1))
	done
	echo "task $1 is not $2${3:+ on $3} after ${4:-10} s: $(cat "$T/st-$1.json" 2>/dev/null)" >&2
	return 1
}
# start_worker VAR LOGNAME ARGS...: start a worker, wait for "consuming", put its name in VAR
start_worker() {
	var=$1 lname=$2; shift 2
	start "$lname" "$NODE" --name w --data-dir "$T/data-$lname" worker "$@"
	wait_for "$T/$lname.log" 'consuming' || { fail "worker $lname did not start"; return 1; }
	eval "$var=\$(sed -n 's/.*worker \([^ ]*\) consuming.*/\1/p' \"\$T/\$lname.log\" | head -1)"
}
# finishes ID: how many result records ("t":"f") the journal holds for ID
finishes() {
	cat "$DATA"/*.log 2>/dev/null | grep -a -o "\"t\":\"f\",\"id\":\"$1\"" | wc -l
}
kill9() { # kill9 PID: SIGKILL one of ours and reap it
	kill -KILL "$1" 2>/dev/null; wait "$1" 2>/dev/null
}

start broker "$NODE" --name b --data-dir "$T/data-b" broker
wait_for "$T/broker.log" 'listening on' || { fail "broker did not start"; finish; }

# ---- 1. kill -9 the worker in the middle of a long task ----
start_worker WA wa --queues default
"$NODE" submit sleep 3000 --id k1-long >/dev/null 2>&1
check "the long task starts on the first worker" wait_state k1-long started "$WA" 10
sleep 0.5
kill9 "$PID_wa"
killed_at=$(now_ms)
start_worker WB wb --queues default
"$NODE" result k1-long --wait --timeout 20 >"$T/k1" 2>&1
done_at=$(now_ms)
check "after the kill the task completes with its value" grep -qx 3000 "$T/k1"
check "it completed only after the lease ran out and the task ran again ($((done_at - killed_at)) ms >= 3500)" \
	[ $((done_at - killed_at)) -ge 3500 ]
st k1-long
check "status says succeeded" [ "$(field k1-long state)" = succeeded ]
check "status says 2 deliveries ($(field k1-long deliveries))" [ "$(field k1-long deliveries)" = 2 ]
check "the second worker ($WB) finished it ($(field k1-long worker))" [ "$(field k1-long worker)" = "$WB" ]
check "the journal holds exactly one result record for it ($(finishes k1-long))" [ "$(finishes k1-long)" = 1 ]
check "the broker logged the lost worker" grep -q "worker $WA is gone: 1 task back" "$T/broker.log"
"$NODE" queues --json >"$T/q1" 2>&1
check "queues counts one success on default and nothing leased" python3 -c "
import json; q = {q['name']: q for q in map(json.loads, open('$T/q1'))}['default']
assert q['succeeded'] == 1 and q['leased'] == 0 and q['depth'] == 0, q"

# ---- 1b. a worker that goes silent (SIGSTOP) and comes back after its lease moved on ----
start_worker WS ws --queues late
"$NODE" submit sleep 2000 --queue late --id k1-late >/dev/null 2>&1
check "the late task starts on the worker that will freeze" wait_state k1-late started "$WS" 10
start_worker WT wt --queues late
kill -STOP "$PID_ws"
check "the frozen worker loses its lease: the other worker runs the task" wait_state k1-late started "$WT" 10
kill -CONT "$PID_ws" # its sleep is over by now: it reports a result for a task it no longer holds
"$NODE" result k1-late --wait --timeout 20 >"$T/k1l" 2>&1
check "the late task has its value" grep -qx 2000 "$T/k1l"
sleep 2.5 # the second worker's own result (2 s task) arrives too
st k1-late
check "the late task was delivered twice ($(field k1-late deliveries))" [ "$(field k1-late deliveries)" = 2 ]
check "two results arrived, one is recorded ($(finishes k1-late) result records)" [ "$(finishes k1-late)" = 1 ]
st k1-late
check "the late task is still succeeded" [ "$(field k1-late state)" = succeeded ]
for p in $PID_ws $PID_wt; do stop_pid "$p"; done

for p in $PID_wb $PID_broker; do stop_pid "$p"; done
check "the broker stops cleanly" [ "$STOP_RC" = 0 ]
check "no sanitizer report in any log or output" sh -c "! grep -rlE '(Address|Leak|Undefined)Sanitizer|runtime error:' '$T'"
finish
