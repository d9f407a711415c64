#!/bin/sh
# Futures figures (issue 4), one broker (fsync batch) and one worker with two
# slots on 127.0.0.1, all through `node map`, from reading the input to the
# last result printed:
#   - BENCH_MAP_ITEMS (default 1,000,000) `add` items, chunks chosen
#     automatically (target >= 1,000,000 items/s), and the same through the
#     C library alone (client_test bench);
#   - 10,000 `add` items without chunks (--chunk 1): the per-task path;
#   - pi with BENCH_PI_POINTS (default 10^9) points as 1000 tasks over the
#     two slots, reduced with add, against the same loop on one core
#     (pi_loop; target >= 4x10^8 points/s);
#   - SCOOP's mapReduce: 1000 items of a 10 ms sleep, two slots, reduced
#     (target <= 5.3 s; ideal 5.0).
. "$(dirname "$0")/lib.sh"
need "$TOOLS/pi_loop"
need "$TOOLS/client_test"
N=${BENCH_MAP_ITEMS:-1000000}
P=${BENCH_PI_POINTS:-1000000000}

d=$T/map
mkdir -p "$d"
url=tcp://127.0.0.1:$(free_port)
config "$d/c.json" "$url" batch 2
start broker "$NODE" --config "$d/c.json" --name n1 --data-dir "$d/data" broker
wait_for "$T/broker.log" 'listening on' 20 || exit 1
start worker "$NODE" --config "$d/c.json" --name n1 --data-dir "$d/data" worker --concurrency 2
wait_for "$T/worker.log" 'consuming' 20 || exit 1
map() { "$NODE" --config "$d/c.json" map "$@"; }

# timed LABEL CMD...: run, print the wall time; $secs holds it
timed() {
	label=$1; shift
	t0=$(now_ms)
	"$@" >"$d/out" 2>"$d/err"
	rc=$?
	secs=$(awk "BEGIN { printf \"%.3f\", ($(now_ms) - $t0) / 1000 }")
	if [ $rc -ne 0 ]; then
		printf '%-44s failed (status %s): %s\n' "$label" "$rc" "$(tail -1 "$d/err")"
		return 1
	fi
	return 0
}

echo "cores: $(nproc); 1 broker (fsync batch), 1 worker --concurrency 2, node map from the shell"
seq 0 $((N - 1)) | awk '{ print "[" $1 ", 1]" }' >"$d/adds.in"
if timed "map add" map add --input "$d/adds.in"; then
	ok=$(seq 1 "$N" | cmp -s - "$d/out" && echo "all right" || echo "WRONG RESULTS")
	printf '%-44s %s s, %s items/s (%s)   (target >= 1000000/s)\n' "map add, $N items, automatic chunks" "$secs" \
		"$(awk "BEGIN { printf \"%.0f\", $N / $secs }")" "$ok"
fi
"$TOOLS/client_test" "$url" bench "$N" | sed -n 's/^figure: /C library: /p'

head -10000 "$d/adds.in" >"$d/adds10k.in"
if timed "map add --chunk 1" map add --input "$d/adds10k.in" --chunk 1; then
	printf '%-44s %s s, %s tasks/s\n' "map add, 10000 items, no chunks" "$secs" \
		"$(awk "BEGIN { printf \"%.0f\", 10000 / $secs }")"
fi

seq 1 1000 | awk -v p=$((P / 1000)) '{ print "[" p ", " $1 "]" }' >"$d/pi.in"
if timed "pi" map pi --input "$d/pi.in" --reduce add; then
	node_s=$secs
	printf '%-44s %s s, %s points/s, %s   (target >= 4e8/s)\n' "pi, $P points, 1000 tasks, 2 slots" "$secs" \
		"$(awk "BEGIN { printf \"%.3g\", $P / $secs }")" "$(cat "$d/out")"
	"$TOOLS/pi_loop" "$P" >"$d/loop" 2>&1
	loop_s=$(sed -n 's/.*points: \([0-9.]*\) s on one core.*/\1/p' "$d/loop")
	printf '%-44s %s\n' "the same loop, plain C, one core" "$(cat "$d/loop")"
	printf '%-44s %sx (ideal: about 2x on 2 cores)\n' "node map over the plain loop" \
		"$(awk "BEGIN { printf \"%.2f\", $loop_s / $node_s }")"
fi

for i in $(seq 1000); do echo '[10]'; done >"$d/sleeps.in"
if timed "mapreduce sleep" map sleep --input "$d/sleeps.in" --reduce count; then
	printf '%-44s %s s (ideal 5.0, target <= 5.3)\n' "mapReduce, 1000 x 10 ms sleeps, 2 slots" "$secs"
fi

stop_pid "$PID_worker"
stop_pid "$PID_broker"
