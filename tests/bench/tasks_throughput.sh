#!/bin/sh
# Task queue throughput: BENCH_TASKS (default 100,000) `add` tasks submitted by
# one client in batches of 1000 (8 in flight; `loadgen bench`), one broker,
# one worker with 2 threads, all on 127.0.0.1; tasks/s from the first submit
# to the last result. Separate broker and worker processes for fsync off,
# batch and always, then `node up` (both roles in one process) with fsync off.
# Every run gets a fresh data dir: loadgen bench always uses ids bench-N.
. "$(dirname "$0")/lib.sh"
need "$TOOLS/loadgen"
N=${BENCH_TASKS:-100000}
status=0

# report LABEL TARGET LOG: loadgen's summary line, or all of it on failure
report() {
	if [ "$4" -eq 0 ]; then
		printf '%-26s %s%s\n' "$1" "$(tail -1 "$3")" "$2"
	else
		printf '%-26s loadgen failed (status %s):\n' "$1" "$4"
		sed 's/^/    /' "$3"
		status=1
	fi
}

worker_stats() { # the worker's own count of fetch and report calls
	sed -n 's/.*stopped: \([0-9]*\) tasks\{0,1\} succeeded.*(\(.*\))$/\1 tasks, \2/p' "$1" | sed 's/^/    worker: /'
}

echo "$N add tasks, 1 client (batches of 1000, 8 in flight), 1 broker, 1 worker --concurrency 2"
for policy in off batch always; do
	case $policy in
	off) target="   (target >= 50000/s)" ;;
	batch) target="   (target >= 20000/s)" ;;
	*) target="" ;;
	esac
	d=$T/$policy
	mkdir -p "$d"
	url=tcp://127.0.0.1:$(free_port)
	config "$d/c.json" "$url" "$policy" 2
	start broker "$NODE" --config "$d/c.json" --name n1 --data-dir "$d/data" broker --fsync "$policy"
	wait_for "$T/broker.log" 'listening on' 20 || exit 1
	start worker "$NODE" --config "$d/c.json" --name n1 --data-dir "$d/data" worker --concurrency 2
	wait_for "$T/worker.log" 'consuming' 20 || exit 1
	"$TOOLS/loadgen" bench "$url" "$N" >"$d/loadgen.log" 2>&1
	report "broker+worker fsync $policy" "$target" "$d/loadgen.log" $?
	stop_pid "$PID_worker"
	stop_pid "$PID_broker"
	worker_stats "$T/worker.log"
	mv "$T/broker.log" "$d/"; mv "$T/worker.log" "$d/"
done

d=$T/up
mkdir -p "$d"
url=tcp://127.0.0.1:$(free_port)
config "$d/c.json" "$url" off 2
start up "$NODE" --config "$d/c.json" --name n1 --data-dir "$d/data" up
wait_for "$T/up.log" 'listening on' 20 && wait_for "$T/up.log" 'consuming' 20 || exit 1
"$TOOLS/loadgen" bench "$url" "$N" >"$d/loadgen.log" 2>&1
report "node up fsync off" "   (target >= 50000/s)" "$d/loadgen.log" $?
stop_pid "$PID_up"
worker_stats "$T/up.log"
exit $status
