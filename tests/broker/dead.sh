# Dead letters: a task that keeps killing its workers (kill -9 of the worker
# holding it, twice, on a queue with max_deliveries 2) goes to dead letters
# instead of killing workers forever; it can be listed, requeued (and then a
# worker finishes it) and purged.
. "$(dirname "$0")/../lib.sh"
cluster_file dead-test '"lease_ms": 1500' '"concurrency": 1' '"queues": { "fragile": { "max_deliveries": 2 } }'
start_broker || { fail "broker did not start"; finish; }

# ---- a task that kills its workers goes to dead letters (fragile: max_deliveries 2) ----
start_worker WC wc --queues fragile --concurrency 2
"$NODE" submit sleep 3000 --queue fragile --id d-1 >/dev/null 2>&1
"$NODE" submit sleep 3000 --queue fragile --id d-2 >/dev/null 2>&1
check "d-1 starts on worker $WC" wait_state d-1 started "$WC" 10
check "d-2 starts on worker $WC too" wait_state d-2 started "$WC" 10
kill9 "$PID_wc"
start_worker WD wd --queues fragile --concurrency 2
check "after the first kill the next worker gets d-1" wait_state d-1 started "$WD" 10
check "and d-2" wait_state d-2 started "$WD" 10
st d-1
check "d-1 has had 2 deliveries ($(field d-1 deliveries))" [ "$(field d-1 deliveries)" = 2 ]
kill9 "$PID_wd"
dead_wait() { # until `node dead list` shows every id given (bounded: 10 s)
	i=0
	while [ $i -lt 50 ]; do
		"$NODE" dead list >"$T/dl" 2>&1
		all=1
		for id in "$@"; do grep -q "^$id " "$T/dl" || all=0; done
		[ $all = 1 ] && return 0
		sleep 0.2; i=$((i + 1))
	done
	cat "$T/dl" >&2
	return 1
}
check "after the second kill both are dead letters" dead_wait d-1 d-2
check "dead list shows d-1 with name, queue and 2 deliveries" grep -q '^d-1  *sleep  *fragile  *2 ' "$T/dl"
check "the broker logged the dead letter" grep -q 'task d-1 (sleep) went to dead letters after 2 deliveries' "$T/broker.log"
"$NODE" result d-1 >"$T/dr" 2>&1
rc=$?
check "result of a dead task exits 1 and says dead" sh -c "[ $rc = 1 ] && grep -q '^d-1: dead' '$T/dr'"
start_worker WE we --queues fragile
sleep 0.3
st d-1
check "no worker takes a dead task by itself" [ "$(field d-1 state)" = dead ]
"$NODE" dead requeue d-1 >"$T/rq" 2>&1
check "dead requeue d-1 puts it back" grep -q '^requeued 1 task$' "$T/rq"
"$NODE" result d-1 --wait --timeout 20 >"$T/d1" 2>&1
check "the requeued task is finished by a new worker" grep -qx 3000 "$T/d1"
st d-1
check "d-1 succeeded on $WE with its deliveries counted afresh ($(field d-1 worker), $(field d-1 deliveries))" \
	sh -c "[ '$(field d-1 state)' = succeeded ] && [ '$(field d-1 worker)' = '$WE' ] && [ '$(field d-1 deliveries)' = 1 ]"
"$NODE" dead list >"$T/dl2" 2>&1
check "only d-2 is still dead" sh -c "grep -q '^d-2 ' '$T/dl2' && ! grep -q '^d-1 ' '$T/dl2'"
"$NODE" dead purge >"$T/pg" 2>&1
check "dead purge drops it" grep -q '^purged 1 dead task$' "$T/pg"
"$NODE" dead list >"$T/dl3" 2>&1
check "the dead list is empty after purge" grep -q '^no dead tasks$' "$T/dl3"
"$NODE" result d-2 >"$T/d2" 2>&1
check "a purged task is pending (forgotten)" grep -q 'not ready (state pending)' "$T/d2"
check "d-1 has one result record ($(finishes d-1))" [ "$(finishes d-1)" = 1 ]

stop_cluster $PID_we $PID_broker
check_no_sanitizer
finish
