#!/bin/sh
# Per-task overhead of the whole path (submit, queue, lease, run, result):
# K tasks of fibo(90) (BENCH_FIBO_TASKS, default 20,000) and of pi(100000
# points, seed i) (BENCH_PI_TASKS, default 2,000) end to end through one
# broker (fsync off) and one worker with --concurrency 1 and 2, compared with
# the same task functions called in a plain loop (build/tools/taskloop plain).
# overhead per task = (end-to-end time x concurrency - plain loop time) / K:
# the worker-thread time each task costs beyond its computation, if the C
# threads were busy all along (see tests/bench/README).
. "$(dirname "$0")/lib.sh"
need "$TOOLS/taskloop"
status=0

run() { # run TASK K ARG
	"$TOOLS/taskloop" plain "$1" "$2" "$3" >"$T/plain.log" 2>&1 || { cat "$T/plain.log"; status=1; return; }
	cat "$T/plain.log"
	plain_s=$(sed -n 's/.* plain loop: \([0-9.]*\) s.*/\1/p' "$T/plain.log")
	for c in 1 2; do
		d=$T/$1-$c
		mkdir -p "$d"
		url=tcp://127.0.0.1:$(free_port)
		config "$d/c.json" "$url" off "$c"
		start broker "$NODE" --config "$d/c.json" --name n1 --data-dir "$d/data" broker --fsync off
		wait_for "$T/broker.log" 'listening on' 20 || exit 1
		start worker "$NODE" --config "$d/c.json" --name n1 --data-dir "$d/data" worker --concurrency "$c"
		wait_for "$T/worker.log" 'consuming' 20 || exit 1
		"$TOOLS/taskloop" remote "$url" "$1" "$2" "$3" "$c" "$plain_s" >"$d/remote.log" 2>&1 || status=1
		cat "$d/remote.log"
		stop_pid "$PID_worker"
		stop_pid "$PID_broker"
		mv "$T/broker.log" "$T/worker.log" "$d/"
	done
}

echo "per-task overhead = (end-to-end s x concurrency - plain loop s) / K; 1 broker (fsync off), 1 worker"
run fibo "${BENCH_FIBO_TASKS:-20000}" 90
run pi "${BENCH_PI_TASKS:-2000}" 100000
exit $status
