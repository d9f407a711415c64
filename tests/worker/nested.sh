# Nested futures and chunks on a worker. A task that submits sub-tasks and
# waits for them (fibr) lends its slot while it waits, so a worker of
# --concurrency 1 finishes a whole tree of them, and the extra threads go
# away afterwards; past 256 waiting tasks it still finishes (sub-tasks run
# inline); a sub-task that fails makes its parent fail with a message that
# names it. chunk runs one task over many argument lists in a delivery.
. "$(dirname "$0")/../lib.sh"
# tiny holds at most 3 tasks: a fibr tree there cannot submit all it needs.
cluster_file nested-test '"lease_ms": 10000' '"concurrency": 1' '"queues": { "tiny": { "max_length": 3 } }'

threads() { ls "/proc/$1/task" 2>/dev/null | wc -l; }
# threads_back PID N SECONDS: until PID has at most N threads, bounded
threads_back() {
	i=0
	while [ "$(threads "$1")" -gt "$2" ] && [ $i -lt $(($3 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(threads "$1")" -le "$2" ]
}
# value FILE: the "value" of a `submit --wait --json` line, as compact JSON
value() {
	python3 -c 'import json, sys
d = json.loads(open(sys.argv[1]).readline())
print(json.dumps(d.get("value"), separators=(",", ":")))' "$1" 2>/dev/null
}

start_broker || { fail "broker did not start"; finish; }

# ---- concurrency 1: the tree finishes because waiting tasks lend their slot ----
start_worker W1 w1 --concurrency 1 || finish
# One split first: it opens the worker's connection for sub-tasks (a thread).
timeout 60 "$NODE" submit fibr 16 --wait >"$T/f16" 2>&1
check "fibr(16) with one split returns 987 ($(cat "$T/f16"))" grep -q ': 987$' "$T/f16"
base=$(threads "$PID_w1")
t0=$(now_ms)
timeout 60 "$NODE" submit fibr 20 12 --wait >"$T/f20" 2>&1
t1=$(now_ms)
check "fibr(20, 12) on a worker of concurrency 1 returns 6765 ($(cat "$T/f20"))" grep -q ': 6765$' "$T/f20"
check "within a bounded time ($((t1 - t0)) ms < 20000)" [ $((t1 - t0)) -lt 20000 ]
check "the extra threads end once no task waits ($(threads "$PID_w1") threads, $base before)" threads_back "$PID_w1" "$base" 5
check "no slot had to be kept (no lending limit reached)" sh -c "! grep -q 'no more threads are started' '$T/w1.log'"
stop_pid "$PID_w1"
check "the worker stops cleanly (status $STOP_RC)" [ "$STOP_RC" = 0 ]
check "it ran both trees itself, each task once: 3 + 109 tasks" grep -q "stopped: 112 tasks succeeded, 0 failed" "$T/w1.log"

# ---- a tree too wide for WORKER_LEND_MAX (256) waiting tasks ----
start_worker W4 w4 --queues deep --concurrency 1 || finish
t0=$(now_ms)
timeout 120 "$NODE" submit fibr 32 12 --queue deep --wait >"$T/f32" 2>&1
t1=$(now_ms)
check "fibr(32, 12), 21891 tasks, on a worker of concurrency 1 returns 2178309 ($(cat "$T/f32"))" grep -q ': 2178309$' "$T/f32"
check "in a bounded time ($((t1 - t0)) ms < 60000)" [ $((t1 - t0)) -lt 60000 ]
check "the worker said it reached the lending limit (then sub-tasks run inline)" grep -q 'no more threads are started (at most 256 extra)' "$T/w4.log"
stop_pid "$PID_w4"
check "it stops cleanly (status $STOP_RC)" [ "$STOP_RC" = 0 ]

# ---- concurrency 2 ----
start_worker W2 w2 --concurrency 2 || finish
timeout 60 "$NODE" submit fibr 22 14 --wait >"$T/f22" 2>&1
check "fibr(22, 14) with concurrency 2 returns 17711 ($(cat "$T/f22"))" grep -q ': 17711$' "$T/f22"
timeout 60 "$NODE" submit fibr 15 --wait >"$T/f15" 2>&1
check "fibr(15) is computed at once (cutoff 15 by default): 610" grep -q ': 610$' "$T/f15"

# ---- failures ----
timeout 20 "$NODE" submit fibr 91 --wait >"$T/f91" 2>&1
check "fibr(91) is refused up front ($(cat "$T/f91"))" grep -q 'failed: fibr: n must be an integer from 0 to 90, got 91' "$T/f91"
start_worker W3 w3 --queues tiny --concurrency 1 || finish
timeout 60 "$NODE" submit fibr 20 12 --queue tiny --wait >"$T/ftiny" 2>&1
check "a sub-task that fails makes its parent fail, naming it ($(cat "$T/ftiny"))" \
	grep -q 'failed: fibr(20, 12): sub-task fibr(1[89], 12) ([^)]*) failed: .*queue tiny is full' "$T/ftiny"

# ---- chunk ----
echo '{"name": "chunk", "args": ["add", [[1, 2], [3, 4], [5, "x"]]], "id": "c-1"}' >"$T/c1.json"
timeout 20 "$NODE" submit "$T/c1.json" --wait --json >"$T/c1" 2>&1
value "$T/c1" >"$T/c1v"
check "chunk add [[1,2],[3,4],[5,\"x\"]]: one value per item, the failed one null and its error under \"2\" ($(cat "$T/c1v"))" \
	grep -q '^{"v":\[3,7,null\],"e":{"2":"add: b must be a number, got the string \\"x\\""}}$' "$T/c1v"
timeout 20 "$NODE" submit chunk add '[[10,5],null,[1]]' --kwargs '{"b": 100}' --wait >"$T/c2" 2>&1
check "from the command line, with kwargs for every item ($(cat "$T/c2"))" grep -q ': {"v":\[15,null,101\],"e":{"1":"add: missing argument a' "$T/c2"
timeout 20 "$NODE" submit chunk chunk '[]' --wait >"$T/c3" 2>&1
check "chunks do not nest ($(cat "$T/c3"))" grep -q 'failed: chunk: cannot run chunk itself' "$T/c3"
timeout 20 "$NODE" submit chunk nope '[[1]]' --wait >"$T/c4" 2>&1
check "an unknown task is a bad request ($(cat "$T/c4"))" grep -q 'failed: chunk: unknown task "nope"' "$T/c4"

stop_cluster $PID_w2 $PID_w3 $PID_broker
check_no_sanitizer
finish
