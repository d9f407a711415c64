# The C client library, libnodeclient (modules/client), against a real broker
# and two workers: tests/tools/client_test (futures, callbacks, waits, map in
# order and as completed, map-reduce, errors), a broker that is not there,
# the examples of conf/examples (EXAMPLES.md "Futures": pi, mapReduce,
# Parallel Python's callbacks and statistics), the shared library, a worker
# killed with -9 in the middle of a map, and figures (printed, not timed).
. "$(dirname "$0")/../lib.sh"
CT="$TOOLS/client_test"
EX="$ROOT/$NODE_BUILD/examples"
SO="$ROOT/$NODE_BUILD/libnodeclient.so"
for f in "$CT" "$EX/pi" "$EX/mapreduce" "$EX/pp_callbacks" "$SO"; do
	[ -e "$f" ] || { fail "$f is not built (make tools)"; finish; }
done

# relay FILE: the program's "ok:" and "FAIL:" lines count as our checks;
# "figure:" lines are shown
relay() {
	while IFS= read -r line; do
		case "$line" in
		ok:* | figure:*) echo "$line" ;;
		FAIL:*) fail "${line#FAIL: }" ;;
		esac
	done <"$1"
}

cluster_file client-lib '"lease_ms": 1000' '"concurrency": 4'
start_broker || { fail "broker did not start"; finish; }
start_worker W1 w1 || finish
start_worker W2 w2 || finish

# ---- the library's own checks ----
"$CT" "$URL" all >"$T/all.out" 2>&1
rc=$?
relay "$T/all.out"
check "client_test all exits 0" [ $rc = 0 ]
[ $rc = 0 ] || tail -5 "$T/all.out" >&2

"$CT" "$(free_port)" down >"$T/down.out" 2>&1
rc=$?
relay "$T/down.out"
check "client_test down (no broker, bad URL, bad file) exits 0" [ $rc = 0 ]
[ $rc = 0 ] || { echo "exit status $rc; the last lines:"; tail -20 "$T/down.out"; } >&2

# ---- the examples, with the broker from the cluster file ($NODE_CONFIG) ----
"$EX/pi" >"$T/pi.out" 2>&1
check "pi: 1000 tasks x 1000 points, within 0.5% of pi ($(cat "$T/pi.out"))" python3 -c "
import math, re
m = re.search(r'^pi is about ([0-9.]+) \(1000000 points in 1000 tasks', open('$T/pi.out').read())
assert m and abs(float(m.group(1)) - math.pi) / math.pi < 0.005"
"$EX/mapreduce" >"$T/mr.out" 2>&1
check "mapreduce: sum of [a]*a for a in 0..999, add = 332833500" grep -q '^sum of \[a\]\*a for a in 0..999 = 332833500 ' "$T/mr.out"
"$EX/pp_callbacks" >"$T/pp.out" 2>&1
rc=$?
n=0
for pair in 4:3 3:2 8:21 6:8 10:55; do
	grep -q "^For input ${pair%%:*}, the fibonacci calculated by w-[0-9]* was ${pair#*:}\$" "$T/pp.out" && n=$((n + 1))
done
check "pp_callbacks: a callback line per input, with its worker (For input 8 ... was 21)" [ $rc = 0 ] && [ $n = 5 ]
check "pp_callbacks: the statistics table counts 5 jobs, 100% over the workers" python3 -c "
lines = open('$T/pp.out').read().splitlines()
i = lines.index(' job count | % of all jobs | job time sum | time per job | worker')
rows = [l.split('|') for l in lines[i + 1:] if l.count('|') == 4]
assert sum(int(r[0]) for r in rows) == 5 and abs(sum(float(r[1]) for r in rows) - 100) < 0.1, rows
assert all(r[4].strip().startswith('w-') for r in rows), rows
assert any(l.startswith('Time elapsed since start: ') for l in lines)"

# ---- the shared library: self-contained, exports only ncl_* and csp_* ----
check "libnodeclient.so exports only ncl_* and csp_* functions" sh -c \
	"nm -D --defined-only '$SO' | awk '\$2 ~ /^[TDBRW]\$/ { print \$3 }' | grep -v '^ncl_' | grep -v '^csp_' | grep -q . && exit 1; exit 0"
if [ "$NODE_BUILD" != build-san ]; then # an ASan library cannot be loaded by python
	check "libnodeclient.so loaded on its own opens, pings and closes" python3 -c "
import ctypes
lib = ctypes.CDLL('$SO')
conn, err = ctypes.c_void_p(), ctypes.create_string_buffer(600)
assert lib.ncl_open(ctypes.byref(conn), b'$URL', None, err) == 0, err.raw
assert lib.ncl_ping(conn, 5000, err) == 0, err.raw
lib.ncl_close(conn)"
fi

# ---- figures (printed only) ----
N=100000
[ "$NODE_BUILD" = build-san ] && N=20000
"$CT" "$URL" bench $N >"$T/bench.out" 2>&1
relay "$T/bench.out"
"$EX/mapreduce" --sleep 10 >"$T/mrs.out" 2>&1
echo "figure: mapreduce --sleep 10 (1000 items, 2 workers x 4 slots): $(cat "$T/mrs.out")"

# ---- a worker killed with -9 in the middle of a map ----
# busiest: the pid and name of the worker (of W1 and W2) running most tasks
busiest() {
	"$NODE" workers --json --broker "$URL" >"$T/workers.json" 2>/dev/null
	python3 -c "
import json, sys
best = max((json.loads(l) for l in open('$T/workers.json') if l.strip()), key=lambda w: w.get('running', 0) if w.get('online') else -1)
print(best['name'])"
}
killmap() { # killmap NAME CHUNK: kill the busiest worker in the middle of a map
	start "$1" "$CT" "$URL" killmap 400 "$2"
	if ! wait_for "$T/$1.log" '^progress' 30; then
		fail "the map of the kill test ($1) made no progress"
		return 1
	fi
	VICTIM=$(busiest)
	if [ "$VICTIM" = "$W1" ]; then kill9 "$PID_w1"; ALIVE=$PID_w2; else kill9 "$PID_w2"; ALIVE=$PID_w1; fi
	i=0
	while kill -0 "$(eval echo "\$PID_$1")" 2>/dev/null && [ $i -lt 900 ]; do sleep 0.1; i=$((i + 1)); done
	wait "$(eval echo "\$PID_$1")"
	rc=$?
	relay "$T/$1.log"
	check "killmap ($1, chunk $2) exits 0" [ $rc = 0 ]
}
if killmap km 1; then
	check "the killed worker held tasks, which went back to the queue" grep -q "worker $VICTIM is gone: [1-9][0-9]* tasks\\? back" "$T/broker.log"
fi
stop_pid "$ALIVE"
start_worker W1 w3 || finish
start_worker W2 w4 || finish
PID_w1=$PID_w3 PID_w2=$PID_w4
killmap kmc 4 # in chunks: a chunk is redelivered whole, its items still come once
stop_cluster "$ALIVE" "$PID_broker"
check_no_sanitizer
finish
