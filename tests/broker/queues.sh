# Queue settings from the cluster file: a full queue (max_length) refuses new
# submits with queue_full while other queues are unaffected, and takes them
# again once it drains; a queue's result time to live (result_ttl_s) makes a
# finished task's result disappear (state pending) after it.
. "$(dirname "$0")/../lib.sh"
cluster_file queues-test '"lease_ms": 1500' '"concurrency": 2' '"queues": { "small": { "max_length": 10 }, "brief": { "result_ttl_s": 1 } }'
qfield() { # qfield QUEUE KEY: one member of `node queues --json`
	"$NODE" queues --json 2>/dev/null | python3 -c '
import json, sys
for l in sys.stdin:
    q = json.loads(l)
    if q["name"] == sys.argv[1]: print(q.get(sys.argv[2]))' "$1" "$2"
}

start_broker || { fail "broker did not start"; finish; }
start_worker W w --queues default,brief || finish

# ---- queue full: max_length 10, nobody consumes "small" yet ----
n=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	"$NODE" submit echo "$i" --queue small --id "s-$i" >/dev/null 2>"$T/s-$i.err" && n=$((n + 1))
done
check "10 submits to a queue with max_length 10 are accepted ($n)" [ $n = 10 ]
"$NODE" submit echo 11 --queue small --id s-11 >"$T/s11" 2>&1
rc=$?
check "the 11th submit exits 1" [ $rc = 1 ]
check "its error says the queue is full" grep -q 'queue small is full' "$T/s11"
"$TOOLS/call" "$URL" '{"op":"submit","tasks":[{"id":"s-12","name":"echo","args":[12],"queue":"small"}]}' 5000 >"$T/s12" 2>&1
check "at the protocol level the error code is queue_full" grep -q '"code":"queue_full"' "$T/s12"
"$NODE" result s-11 >"$T/s11r" 2>&1
check "the refused task does not exist (pending)" grep -q 'not ready (state pending)' "$T/s11r"
printf '[{"id":"s-a","name":"echo","args":[1],"queue":"default"},{"id":"s-b","name":"echo","args":[2],"queue":"small"}]' >"$T/mixed.json"
"$NODE" submit "$T/mixed.json" >"$T/mixed" 2>&1
rc=$?
check "a batch with one task for the full queue is refused (exit 1)" [ $rc = 1 ]
"$NODE" status s-a >/dev/null 2>&1
check "as a whole: its task for default was not created either" [ $? = 1 ]
check "queues shows small at depth 10 of max_length 10" sh -c "[ '$(qfield small depth)' = 10 ] && [ '$(qfield small max_length)' = 10 ]"
"$NODE" submit add 2 2 --wait --timeout 20 >"$T/other" 2>&1
check "other queues are unaffected: a submit to default runs" grep -q ': 4$' "$T/other"
"$NODE" submit add 3 3 --queue brief --id other-brief --wait --timeout 20 >"$T/other2" 2>&1
check "and a submit to brief runs" grep -q ': 6$' "$T/other2"
"$NODE" ping "$URL" >/dev/null 2>&1
check "the broker answers ping" [ $? = 0 ]
start_worker WS ws --queues small
"$NODE" result s-10 --wait --timeout 20 >"$T/s10" 2>&1
check "a worker drains the full queue" grep -qx 10 "$T/s10"
i=0
while [ $i -lt 50 ] && [ "$(qfield small depth)/$(qfield small leased)" != 0/0 ]; do sleep 0.1; i=$((i + 1)); done
"$NODE" submit echo 11 --queue small --id s-11 --wait --timeout 20 >"$T/s11b" 2>&1
check "once drained the queue takes submits again" grep -q '^s-11: 11$' "$T/s11b"

# ---- result time to live: brief has result_ttl_s 1 ----
"$NODE" submit add 20 22 --queue brief --id ttl-1 --wait --timeout 20 >"$T/ttl" 2>&1
t0=$(now_ms)
check "a task on brief finishes" grep -q '^ttl-1: 42$' "$T/ttl"
"$NODE" result ttl-1 >"$T/ttl0" 2>&1
check "right after, its result is there" grep -qx 42 "$T/ttl0"
gone=0
i=0
while [ $i -lt 60 ]; do
	"$NODE" result ttl-1 >"$T/ttl1" 2>&1
	if grep -q 'not ready (state pending)' "$T/ttl1"; then gone=$(now_ms); break; fi
	sleep 0.05; i=$((i + 1))
done
check "its result disappears (state pending) after the 1 s time to live" [ "$gone" != 0 ]
[ "$gone" != 0 ] && check "not before 1 s, and within 2.5 s ($((gone - t0)) ms after the result)" \
	[ $((gone - t0)) -ge 900 -a $((gone - t0)) -le 2500 ]
"$NODE" status ttl-1 >"$T/ttl2" 2>&1
rc=$?
check "status of the expired task exits 1 (no such task)" sh -c "[ $rc = 1 ] && grep -q 'no task ttl-1' '$T/ttl2'"
"$NODE" result s-10 >"$T/s10b" 2>&1
check "results on queues without a short time to live stay" grep -qx 10 "$T/s10b"
# the expiry survives a restart: the forgotten task does not come back
stop_pid "$PID_broker"
mv "$T/broker.log" "$T/broker-1.log"
start_broker || fail "broker did not restart"
"$NODE" result ttl-1 >"$T/ttl3" 2>&1
check "after a restart the expired result is still gone" grep -q 'not ready (state pending)' "$T/ttl3"
"$NODE" result s-10 >"$T/s10c" 2>&1
check "after a restart other results are there" grep -qx 10 "$T/s10c"

stop_cluster $PID_ws $PID_w $PID_broker
check_no_sanitizer
finish
