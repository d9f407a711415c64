# kill -9 the broker again and again while a client submits 20,000 tasks and
# two workers consume: every acknowledged task ends with exactly one result.
# Then for fsync always, and a hand-truncated journal tail.
. "$(dirname "$0")/../lib.sh"
N=${CRASH_TASKS:-20000}
PORT=$(free_port)
URL=tcp://127.0.0.1:$PORT
cat >"$T/c.json" <<JSON
{"nodes": {"n1": {"roles": {"broker": {"listen": "$URL", "lease_ms": 2000}, "worker": {"concurrency": 2}}}}}
JSON

start_broker() { # start_broker FSYNC
	start broker "$NODE" --config "$T/c.json" --name n1 --data-dir "$T/data" broker --fsync "$1"
	wait_for "$T/broker.log" 'listening on' 20
}

run_policy() {
	policy=$1; prefix=$2
	rm -rf "$T/data"
	start_broker "$policy" || { fail "broker did not start"; return; }
	start w1 "$NODE" --config "$T/c.json" --name n1 --data-dir "$T/w1" worker
	start w2 "$NODE" --config "$T/c.json" --name n1 --data-dir "$T/w2" worker
	LOADGEN_BATCH=100 LOADGEN_PAUSE_MS=15 "$TOOLS/loadgen" submit "$URL" "$N" "$prefix" "$T/acks-$prefix" >"$T/submit-$prefix.log" 2>&1 &
	SUB=$!; PIDS="$PIDS $SUB"
	kills=0
	while kill -0 $SUB 2>/dev/null && [ $kills -lt 12 ]; do
		sleep 0.$(( (kills * 37) % 7 + 2 ))
		kill -9 "$PID_broker" 2>/dev/null; wait "$PID_broker" 2>/dev/null
		kills=$((kills + 1))
		mv "$T/broker.log" "$T/broker-$prefix-$kills.log"
		start_broker "$policy" || { fail "broker did not restart after kill $kills"; break; }
	done
	wait $SUB
	check "$policy: the submitter got every batch acknowledged" grep -q "acked $N" "$T/acks-$prefix"
	check "$policy: the broker was killed at least 5 times during the submit ($kills)" [ "$kills" -ge 5 ]
	"$TOOLS/loadgen" check "$URL" "$N" "$prefix" 120 >"$T/check-$prefix.log" 2>&1
	check "$policy: all $N acknowledged tasks have their result" grep -q "succeeded $N wrong 0 unfinished 0" "$T/check-$prefix.log"
	cat "$T/check-$prefix.log"
	python3 - "$T/data/broker" "$prefix" <<'PY' >"$T/dups-$prefix.log" 2>&1
import glob, re, sys, collections
c = collections.Counter()
for f in sorted(glob.glob(sys.argv[1] + "/*.log")):
    for m in re.finditer(rb'"t":"f","id":"' + sys.argv[2].encode() + rb'-(\d+)"', open(f, "rb").read()):
        c[m.group(1)] += 1
dups = [k for k, v in c.items() if v > 1]
print("results recorded twice:", len(dups))
sys.exit(1 if dups else 0)
PY
	check "$policy: no task has two recorded results" [ $? = 0 ]
	for p in $PID_w1 $PID_w2 $PID_broker; do stop_pid "$p"; done
}

run_policy batch b
run_policy always a

# A torn tail: cut the last journal segment in the middle of a record.
seg=$(ls "$T/data/broker"/journal-*.log | tail -1)
size=$(stat -c %s "$seg")
printf '\x40\x00\x00\x00garbage' >>"$seg"
start_broker batch
check "a torn tail is cut with a log line" grep -q 'cut a torn or corrupt tail' "$T/broker.log"
check "the journal is cut back to its last good record" [ "$(stat -c %s "$seg")" -le "$((size + 1))" ]
"$TOOLS/loadgen" check "$URL" "$N" a 10 >"$T/after-cut.log" 2>&1
check "everything before the torn tail is served" grep -q 'wrong 0 unfinished 0' "$T/after-cut.log"
stop_pid "$PID_broker"
finish
