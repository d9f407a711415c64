# Worker shutdown: on SIGTERM a worker stops asking for work, gives its
# unstarted prefetched tasks back at once (queued again, deliveries 0, and
# another worker finishes them), lets the running task finish within the
# grace period, reports its result and exits 0. Past the grace period it
# still exits 0 and the unfinished task runs elsewhere, with one result.
. "$(dirname "$0")/../lib.sh"
# A long lease: anything queued again within a second or two was given back,
# not reclaimed by the lease.
cluster_file worker-test '"lease_ms": 8000' '"concurrency": 1'

# count_states STATE [WORKER]: how many of g-0..g-3 are in STATE (run by WORKER)
count_states() {
	n=0
	for i in 0 1 2 3; do
		st "g-$i"
		grep -q "\"state\":\"$1\"" "$T/st-g-$i.json" && { [ -z "${2:-}" ] || grep -q "\"worker\":\"$2\"" "$T/st-g-$i.json"; } && n=$((n + 1))
	done
	echo $n
}
wait_count() { # wait_count N SECONDS STATE [WORKER]
	want=$1 secs=$2; shift 2
	i=0
	while [ $i -lt $((secs * 10)) ]; do
		[ "$(count_states "$@")" = "$want" ] && return 0
		sleep 0.1; i=$((i + 1))
	done
	echo "wanted $want tasks $*, have $(count_states "$@")" >&2
	return 1
}
# exits_within PID TENTHS: wait (bounded) for PID to exit; then the time in
# $t1 and, unless it is still running (status 1), its exit status in $rc
exits_within() {
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt "$2" ]; do sleep 0.1; i=$((i + 1)); done
	t1=$(now_ms)
	kill -0 "$1" 2>/dev/null && return 1
	wait "$1"; rc=$?
	return 0
}

start_broker || { fail "broker did not start"; finish; }

# ---- SIGTERM with one task running and three prefetched ----
python3 -c "
import json
json.dump([{'id': 'g-%d' % i, 'name': 'sleep', 'args': [1500]} for i in range(4)], open('$T/g.json', 'w'))"
"$NODE" submit "$T/g.json" >/dev/null 2>&1
start_worker W1 w1 --concurrency 1 --prefetch 3 --grace 10
check "the worker with concurrency 1 and prefetch 3 holds all 4 tasks" wait_count 4 5 started "$W1"
sleep 0.3 # the first one is running now
t0=$(now_ms)
kill -TERM "$PID_w1"
check "within a second 3 unstarted tasks are queued again (given back, not reclaimed by the 8 s lease)" wait_count 3 1 queued
q=0
for i in 0 1 2 3; do
	if grep -q '"state":"queued"' "$T/st-g-$i.json"; then
		grep -q '"deliveries":0' "$T/st-g-$i.json" && q=$((q + 1))
		GIVEN="${GIVEN:-} g-$i"
	else
		RUN=g-$i
	fi
done
check "the given-back tasks have deliveries 0 ($q of 3)" [ "$q" = 3 ]
check "the worker logged the giveback" wait_for "$T/w1.log" 'gave back 3 unstarted tasks' 2
check "the task still running stays started on $W1" sh -c "grep -q '\"state\":\"started\"' '$T/st-$RUN.json' && grep -q '\"worker\":\"$W1\"' '$T/st-$RUN.json'"
if ! exits_within "$PID_w1" 150; then
	fail "the worker is still running 15 s after SIGTERM (grace 10 s)"
else
	check "the worker exits 0 after SIGTERM (status $rc)" [ $rc = 0 ]
	check "it exits when its running task is done, well within the grace ($((t1 - t0)) ms < 5000)" [ $((t1 - t0)) -lt 5000 ]
fi
st "$RUN"
check "the running task's result is recorded: succeeded on $W1 after 1 delivery" \
	sh -c "[ '$(field "$RUN" state)' = succeeded ] && [ '$(field "$RUN" worker)' = '$W1' ] && [ '$(field "$RUN" deliveries)' = 1 ]"
check "the worker logged its stop with 1 success" grep -q "worker $W1 stopped: 1 task succeeded" "$T/w1.log"
check "the given-back tasks are still queued while no worker runs" [ "$(count_states queued)" = 3 ]
start_worker W2 w2 --concurrency 3
n=0
for id in $GIVEN; do
	"$NODE" result "$id" --wait --timeout 20 >"$T/r-$id" 2>&1
	st "$id"
	grep -qx 1500 "$T/r-$id" && [ "$(field "$id" worker)" = "$W2" ] && [ "$(field "$id" deliveries)" = 1 ] && n=$((n + 1))
done
check "another worker finishes the given-back tasks, each delivered once ($n of 3)" [ "$n" = 3 ]
n=0
for i in 0 1 2 3; do [ "$(finishes g-$i)" = 1 ] && n=$((n + 1)); done
check "each of the 4 tasks has exactly one result record ($n of 4)" [ "$n" = 4 ]

# ---- SIGTERM while the worker also waits for more work (a fetch parked at the broker) ----
"$NODE" submit sleep 1500 --id term-1 >/dev/null 2>&1
i=0
while [ $i -lt 50 ]; do st term-1; grep -q "\"worker\":\"$W2\"" "$T/st-term-1.json" && break; sleep 0.1; i=$((i + 1)); done
check "term-1 runs on $W2, which has 2 more threads free" grep -q '"state":"started"' "$T/st-term-1.json"
cpu0=$(awk '{print $14 + $15}' "/proc/$PID_w2/stat" 2>/dev/null)
t0=$(now_ms)
kill -TERM "$PID_w2"
sleep 1
cpu1=$(awk '{print $14 + $15}' "/proc/$PID_w2/stat" 2>/dev/null)
check "a draining worker does not spin: under 0.3 s of CPU in its first second ($(( ${cpu1:-0} - ${cpu0:-0} )) ticks)" \
	[ $(( ${cpu1:-0} - ${cpu0:-0} )) -lt 30 ]
if ! exits_within "$PID_w2" 100; then
	fail "the worker is still running 11 s after SIGTERM with a 1.5 s task (log below)"
	cat "$T/w2.log" >&2
	kill9 "$PID_w2"
else
	check "it exits 0 (status $rc)" [ $rc = 0 ]
	check "it exits once its 1.5 s task is done ($((t1 - t0)) ms < 4000)" [ $((t1 - t0)) -lt 4000 ]
fi
st term-1
check "term-1's result is recorded: succeeded on $W2 after 1 delivery ($(field term-1 state), $(field term-1 worker), $(field term-1 deliveries))" \
	sh -c "[ '$(field term-1 state)' = succeeded ] && [ '$(field term-1 worker)' = '$W2' ] && [ '$(field term-1 deliveries)' = 1 ]"
check "the broker never thought $W2 was gone" sh -c "! grep -q 'worker $W2 is gone' '$T/broker.log'"

# ---- SIGTERM with a task longer than the grace period ----
start_worker W3 w3 --queues slow --concurrency 1 --grace 1
"$NODE" submit sleep 4000 --queue slow --id long-1 >/dev/null 2>&1
i=0
while [ $i -lt 50 ]; do st long-1; grep -q "\"worker\":\"$W3\"" "$T/st-long-1.json" && break; sleep 0.1; i=$((i + 1)); done
check "the long task runs on $W3" grep -q '"state":"started"' "$T/st-long-1.json"
t0=$(now_ms)
kill -TERM "$PID_w3"
if ! exits_within "$PID_w3" 100; then
	fail "the worker is still running 10 s after SIGTERM with --grace 1"
else
	check "past the grace the worker still exits 0 (status $rc)" [ $rc = 0 ]
	check "it exits soon after the 1 s grace ($((t1 - t0)) ms, between 900 and 3500)" [ $((t1 - t0)) -ge 900 -a $((t1 - t0)) -lt 3500 ]
fi
check "it logs the task it leaves unfinished" grep -q 'grace period of 1 s is over; leaving 1 task unfinished.*long-1' "$T/w3.log"
start_worker W4 w4 --queues slow --concurrency 1
"$NODE" result long-1 --wait --timeout 20 >"$T/long" 2>&1
check "the unfinished task runs again elsewhere and succeeds" grep -qx 4000 "$T/long"
st long-1
check "it finished on $W4 ($(field long-1 worker)) after 2 deliveries ($(field long-1 deliveries))" \
	sh -c "[ '$(field long-1 worker)' = '$W4' ] && [ '$(field long-1 deliveries)' = 2 ]"
check "long-1 has exactly one result record ($(finishes long-1))" [ "$(finishes long-1)" = 1 ]

stop_cluster $PID_w4 $PID_broker
check_no_sanitizer
finish
