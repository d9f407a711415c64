# Journal compaction (compact_mb 1, segment_mb 1): 30,000 add tasks are
# submitted and completed, then short-lived tasks with big arguments on a
# queue whose results expire (result_ttl_s 1) make the journal grow far past
# what the live tasks need, until the broker logs "journal compacted". A
# snapshot-N.log then replaces the old segments, the directory shrinks, and
# after a restart (SIGTERM, and kill -9) every task still has its result.
. "$(dirname "$0")/../lib.sh"
N=${COMPACT_TASKS:-30000}
cluster_file compact-test '"lease_ms": 1500, "compact_mb": 1, "segment_mb": 1' '"queues": ["default", "scratch"], "concurrency": 2' '"queues": { "scratch": { "result_ttl_s": 1 } }'
dir_kb() { du -sk "$DATA" | cut -f1; }

start_broker 20 || { fail "broker did not start"; finish; }
start_worker W w || finish

"$TOOLS/loadgen" submit "$URL" "$N" c >"$T/submit.log" 2>&1
check "loadgen submits $N tasks" [ $? = 0 ]
"$TOOLS/loadgen" check "$URL" "$N" c 60 >"$T/check1.log" 2>&1
check "all $N have their result" grep -q "succeeded $N wrong 0 unfinished 0" "$T/check1.log"
check "the journal is past 1 MiB ($(dir_kb) KiB) in several 1 MiB segments ($(ls "$DATA"/journal-*.log | wc -l))" \
	[ "$(dir_kb)" -gt 1024 -a "$(ls "$DATA"/journal-*.log | wc -l)" -ge 2 ]

# Short-lived tasks with 10 KB of arguments each, in batches of 50, until
# the journal is compacted (bounded: 40 batches).
python3 -c "
import json
json.dump([{'name': 'echo', 'args': ['%06d' % i + 'y' * 10000], 'queue': 'scratch'} for i in range(50)], open('$T/scratch.json', 'w'))"
batches=0
while [ $batches -lt 40 ] && ! grep -q 'journal compacted' "$T/broker.log"; do
	"$NODE" submit "$T/scratch.json" --wait --timeout 30 >/dev/null 2>"$T/scratch.err" || { fail "a scratch batch failed: $(cat "$T/scratch.err")"; break; }
	batches=$((batches + 1))
	kb=$(dir_kb); [ "$kb" -gt "${peak_kb:-0}" ] && peak_kb=$kb
	sleep 0.2
done
check "the broker logs \"journal compacted\" (after $batches scratch batches)" wait_for "$T/broker.log" 'journal compacted' 10
# let a compaction still running finish (no snapshot-N.log.tmp), bounded
i=0
while [ $i -lt 100 ] && ls "$DATA"/*.tmp >/dev/null 2>&1; do sleep 0.1; i=$((i + 1)); done
sleep 0.3
while [ $i -lt 100 ] && ls "$DATA"/*.tmp >/dev/null 2>&1; do sleep 0.1; i=$((i + 1)); done
grep 'compact' "$T/broker.log"
snap=$(ls "$DATA"/snapshot-*.log 2>/dev/null | tail -1)
check "a snapshot-N.log exists" [ -n "$snap" ]
if [ -n "$snap" ]; then
	base=$(basename "$snap" .log); base=${base#snapshot-}; base=$(expr "$base" + 0)
	old=0
	for s in "$DATA"/journal-*.log; do
		n=$(basename "$s" .log); n=$(expr "${n#journal-}" + 0)
		[ "$n" -lt "$base" ] && old=$((old + 1))
	done
	check "no segment older than the snapshot (below $base) is left ($old)" [ $old = 0 ]
fi
check "no temporary snapshot is left" sh -c "! ls '$DATA'/*.tmp >/dev/null 2>&1"
check "the directory shrank: $(dir_kb) KiB now, at most ${peak_kb:-0} KiB before" [ "$(dir_kb)" -lt "${peak_kb:-0}" ]

"$TOOLS/loadgen" check "$URL" "$N" c 10 >"$T/check2.log" 2>&1
check "right after compaction every task has its result" grep -q "succeeded $N wrong 0 unfinished 0" "$T/check2.log"

# Restart on the snapshot: SIGTERM, then kill -9.
stop_pid "$PID_broker"
check "the broker stops cleanly" [ "$STOP_RC" = 0 ]
mv "$T/broker.log" "$T/broker-1.log"
start_broker 20 || { fail "broker did not restart"; finish; }
check "recovery reads the snapshot: at least $N tasks" python3 -c "
import re; m = re.search(r': (\d+) tasks from', open('$T/broker.log').read())
assert m and int(m.group(1)) >= $N, m and m.group(0)"
check "recovery found no damage" sh -c "! grep -q 'cut a torn\|skipped a record\|damaged' '$T/broker.log'"
"$TOOLS/loadgen" check "$URL" "$N" c 10 >"$T/check3.log" 2>&1
check "after a restart every task still has its correct result" grep -q "succeeded $N wrong 0 unfinished 0" "$T/check3.log"
cat "$T/check3.log"
"$NODE" submit add 1 2 --id after-compact --wait --timeout 20 >"$T/ac" 2>&1
check "new tasks run after the restart" grep -q ': 3$' "$T/ac"
kill9 "$PID_broker"
mv "$T/broker.log" "$T/broker-2.log"
start_broker 20 || { fail "broker did not restart after kill -9"; finish; }
"$TOOLS/loadgen" check "$URL" "$N" c 10 >"$T/check4.log" 2>&1
check "after kill -9 too" grep -q "succeeded $N wrong 0 unfinished 0" "$T/check4.log"
"$NODE" result after-compact >"$T/ac2" 2>&1
check "and the task after the compaction is there" grep -qx 3 "$T/ac2"

for p in $PID_w $PID_broker; do stop_pid "$p"; done
check_no_sanitizer
finish
