# Results survive the broker: after a clean stop (SIGTERM) and after kill -9
# the broker recovers from its journal every finished task with its value
# or error, every queued task, and dead letters; workers register again and
# carry on.
. "$(dirname "$0")/../lib.sh"
cluster_file restart-test '"lease_ms": 1500, "batch_ms": 50' '"concurrency": 2' '"queues": { "poison": { "max_deliveries": 1 } }'
FIB90=2880067194370816120
# results_there WHEN: every finished task answers as before
results_there() {
	"$NODE" result r-add >"$T/ra" 2>&1
	check "$1: node result prints the add value" grep -qx 5 "$T/ra"
	"$NODE" result r-fibo >"$T/rf" 2>&1
	check "$1: a big exact fibo value is kept exactly" grep -qx "$FIB90" "$T/rf"
	"$NODE" result r-echo >"$T/re" 2>&1
	check "$1: an echoed object is kept" grep -qx '{"a":\[1,"x"\],"b":null}' "$T/re"
	"$NODE" result r-fail >"$T/rx" 2>&1
	rc=$?
	check "$1: a failed task keeps its error (exit 1)" sh -c "[ $rc = 1 ] && grep -q 'failed: .*it broke' '$T/rx'"
	"$NODE" status r-add --json >"$T/rs" 2>&1
	check "$1: status keeps state, deliveries, submit and finish times" python3 -c "
import json; d = json.load(open('$T/rs'))
assert d['state'] == 'succeeded' and d['deliveries'] == 1, d
assert d['finished_ms'] >= d['submitted_ms'] > 0, d"
	check "$1: status keeps the worker that ran it and when it started" python3 -c "
import json; d = json.load(open('$T/rs'))
assert d.get('worker') == '$WNAME' and d['finished_ms'] >= d.get('started_ms', 0) >= d['submitted_ms'], d"
	"$NODE" result r-idle >"$T/ri" 2>&1
	check "$1: a queued task is still queued" grep -q 'not ready (state queued)' "$T/ri"
	"$NODE" dead list >"$T/rd" 2>&1
	check "$1: a dead letter is still dead" grep -q '^r-dead  *echo  *poison  *1 ' "$T/rd"
}

start_broker 20 || { fail "broker did not start"; finish; }
start_worker WNAME w || finish
"$NODE" submit add 2 3 --id r-add --wait --timeout 20 >/dev/null 2>&1
"$NODE" submit fibo 90 --id r-fibo --wait --timeout 20 >/dev/null 2>&1
"$NODE" submit echo '{"a":[1,"x"],"b":null}' --id r-echo --wait --timeout 20 >/dev/null 2>&1
"$NODE" submit fail "it broke" --id r-fail --wait --timeout 20 >/dev/null 2>&1
"$NODE" submit echo idle --queue idle --id r-idle >/dev/null 2>&1
"$NODE" submit echo doomed --queue poison --id r-dead >/dev/null 2>&1
# a ghost worker takes the poison task and vanishes: it goes dead (max_deliveries 1)
"$TOOLS/call" "$URL" '{"op":"register","worker":"ghost","queues":["poison"],"concurrency":1,"tasks":["echo"],"host":"127.0.0.1","pid":1}' 5000 >/dev/null 2>&1
"$TOOLS/call" "$URL" '{"op":"fetch","worker":"ghost","queues":["poison"],"slots":1,"wait_ms":0}' 5000 >"$T/ghost" 2>&1
check "a ghost worker takes the poison task" grep -q r-dead "$T/ghost"
i=0
while [ $i -lt 50 ] && ! "$NODE" dead list 2>/dev/null | grep -q '^r-dead '; do sleep 0.1; i=$((i + 1)); done
results_there "before any restart"

stop_pid "$PID_broker"
check "SIGTERM: the broker exits 0" [ "$STOP_RC" = 0 ]
mv "$T/broker.log" "$T/broker-1.log"
start_broker 20 || { fail "broker did not restart after SIGTERM"; finish; }
check "it recovers 6 tasks from its journal" grep -q 'journal .*: 6 tasks from' "$T/broker.log"
results_there "after a clean restart"
check "the worker registers again" wait_for "$T/w.log" 'registered again' 10
"$NODE" submit add 40 2 --id r-new1 --wait --timeout 20 >"$T/n1" 2>&1
check "after a clean restart new tasks run" grep -q '^r-new1: 42$' "$T/n1"

sleep 0.3 # (results seen a moment before a kill -9: see the loop below)
kill9 "$PID_broker"
mv "$T/broker.log" "$T/broker-2.log"
start_broker 20 || { fail "broker did not restart after kill -9"; finish; }
check "after kill -9 it recovers 7 tasks" grep -q 'journal .*: 7 tasks from' "$T/broker.log"
results_there "after kill -9"
"$NODE" result r-new1 >"$T/n1b" 2>&1
check "after kill -9: the task finished after the first restart is there" grep -qx 42 "$T/n1b"
i=0
while [ $i -lt 100 ] && [ "$(grep -c 'registered again' "$T/w.log")" -lt 2 ]; do sleep 0.1; i=$((i + 1)); done
check "the worker registers again after the kill" [ "$(grep -c 'registered again' "$T/w.log")" -ge 2 ]
"$NODE" submit add 1 1 --id r-new2 --wait --timeout 20 >"$T/n2" 2>&1
check "after kill -9 new tasks run" grep -q '^r-new2: 2$' "$T/n2"
# kill -9 right after acknowledged submits (fsync batch: acknowledged means on disk)
for i in 1 2 3 4 5; do "$NODE" submit echo "$i" --queue idle --id "r-ack-$i" >/dev/null 2>&1; done
kill9 "$PID_broker"
mv "$T/broker.log" "$T/broker-3.log"
start_broker 20 || { fail "broker did not restart after the second kill -9"; finish; }
n=0
for i in 1 2 3 4 5; do "$NODE" result "r-ack-$i" 2>&1 | grep -q 'state queued' && n=$((n + 1)); done
check "tasks acknowledged just before a kill -9 are all there ($n of 5)" [ $n = 5 ]
"$NODE" result r-new2 >"$T/n2b" 2>&1
check "and so is the last result" grep -qx 2 "$T/n2b"
# A result a client has seen survives a kill -9 that follows at once (batch_ms
# 50 above: a group commit waits up to 50 ms after the previous write).
lost=0 lostlog=""
for r in 1 2 3 4 5 6 7 8 9 10; do
	"$NODE" submit add "$r" 1000 --id "seen-$r" --wait --timeout 10 >"$T/seen" 2>&1
	kill9 "$PID_broker"
	mv "$T/broker.log" "$T/broker-seen-$r.log"
	start_broker 20 || { fail "broker did not restart (seen-$r)"; break; }
	got=$("$NODE" result "seen-$r" 2>&1)
	if ! grep -qx "seen-$r: $((r + 1000))" "$T/seen"; then
		fail "seen-$r: submit --wait did not print its result: $(cat "$T/seen")"
	elif [ "$got" != $((r + 1000)) ]; then
		lost=$((lost + 1)); lostlog="$lostlog; seen-$r: client saw $((r + 1000)), after kill -9: $got"
	fi
	j=0 # the worker registers again before the next round
	while [ $j -lt 100 ] && ! grep -q "worker $WNAME online" "$T/broker.log"; do sleep 0.05; j=$((j + 1)); done
done
check "a result a client has seen is never lost to a kill -9 right after ($lost of 10 lost$lostlog)" [ $lost = 0 ]
check "no recovery skipped a record" sh -c "! grep -q 'skipped a record\|cut a torn' '$T'/broker*.log"

stop_cluster $PID_w $PID_broker
check_no_sanitizer
finish
