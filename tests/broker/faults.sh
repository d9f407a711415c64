# Workers that die or go silent in the middle of a task: the lease runs out
# and another worker runs it, with exactly one result recorded; a late result
# from a worker that lost its lease is never applied twice.
. "$(dirname "$0")/../lib.sh"
cluster_file faults-test '"lease_ms": 1500' '"concurrency": 1' '"queues": { "fragile": { "max_deliveries": 2 } }'
start_broker || { fail "broker did not start"; finish; }

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

stop_cluster $PID_wb $PID_broker
check_no_sanitizer
finish
