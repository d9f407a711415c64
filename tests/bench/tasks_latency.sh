#!/bin/sh
# Task queue latency: one task at a time, submit then wait for its result
# (`loadgen latency`: a submit call, then a parked get), BENCH_LATENCY_TASKS
# (default 5000) `add` tasks; p50/p90/p99 in microseconds for fsync off and
# batch (batch_ms 5, the default), and always. One broker and one worker --concurrency 2,
# separate processes on 127.0.0.1.
. "$(dirname "$0")/lib.sh"
need "$TOOLS/loadgen"
N=${BENCH_LATENCY_TASKS:-5000}
status=0

echo "submit then wait, one at a time, $N add tasks, 1 broker, 1 worker --concurrency 2 (target p50 < 500 us, p99 < 2000 us)"
for policy in off batch always; do
	d=$T/$policy
	mkdir -p "$d"
	url=tcp://127.0.0.1:$(free_port)
	config "$d/c.json" "$url" "$policy" 2
	start broker "$NODE" --config "$d/c.json" --name n1 --data-dir "$d/data" broker --fsync "$policy"
	wait_for "$T/broker.log" 'listening on' 20 || exit 1
	start worker "$NODE" --config "$d/c.json" --name n1 --data-dir "$d/data" worker --concurrency 2
	wait_for "$T/worker.log" 'consuming' 20 || exit 1
	if "$TOOLS/loadgen" latency "$url" "$N" >"$d/loadgen.log" 2>&1; then
		printf 'fsync %-6s %s\n' "$policy" "$(tail -1 "$d/loadgen.log" | sed 's/^submit+wait one at a time, [0-9]* tasks: //')"
	else
		printf 'fsync %-6s loadgen failed:\n' "$policy"
		sed 's/^/    /' "$d/loadgen.log"
		status=1
	fi
	stop_pid "$PID_worker"
	stop_pid "$PID_broker"
	mv "$T/broker.log" "$T/worker.log" "$d/"
done
exit $status
