# node map from the shell, against a real broker and a worker with two slots:
# EXAMPLES.md "Futures" (pi within 0.5%, mapReduce = 332833500 with a
# client-side and a worker-side tree reduce, input order vs as completed,
# 10 ms sleeps in about half the serial time), chunks, failed items with and
# without --keep-going, --json, --stats, the progress bar on a terminal and
# none in a pipe, bad input, and an interrupted map.
. "$(dirname "$0")/../lib.sh"

cluster_file map-cli '"lease_ms": 2000' '"concurrency": 2'
start_broker || { fail "broker did not start"; finish; }
start_worker W1 w1 --concurrency 2 || finish
map() { "$NODE" map "$@"; }

# ---- pi: 1000 tasks of 1000 points, seeds 1..1000, reduced with add ----
seq 1 1000 | awk '{ print "[1000, " $1 "]" }' >"$T/pi.in"
map pi --input "$T/pi.in" --reduce add >"$T/pi.out" 2>"$T/pi.err"
check "pi: 10^6 points reduce to within 0.5% of pi ($(cat "$T/pi.out"))" python3 -c "
import json, math
v = json.load(open('$T/pi.out'))
assert v['points'] == 1000000, v
assert abs(4 * v['inside'] / v['points'] - math.pi) / math.pi < 0.005, v"

# ---- SCOOP's mapReduce: sum of [a]*a for a in 0..999 ----
python3 -c "
for a in range(1000): print('[' + str([a] * a) + ']')" >"$T/lists.in"
check "mapReduce with add (on the client) = 332833500" \
	sh -c "'$NODE' map sum --input '$T/lists.in' --reduce add | grep -qx 332833500"
check "mapReduce with the sum task as a tree on the workers = 332833500" \
	sh -c "'$NODE' map sum --input '$T/lists.in' --reduce sum --fanin 8 | grep -qx 332833500"
check "--reduce count counts the items" sh -c "'$NODE' map sum --input '$T/lists.in' --reduce count | grep -qx 1000"

# ---- order ----
printf '[900]\n[300]\n[200]\n[0]\n' >"$T/sleeps.in"
map sleep --input "$T/sleeps.in" --chunk 1 >"$T/ord.out"
check "ordered: results in input order" [ "$(tr '\n' ' ' <"$T/ord.out")" = "900 300 200 0 " ]
map sleep --input "$T/sleeps.in" --chunk 1 --as-completed >"$T/asc.out"
check "as completed: INDEX<TAB>RESULT, each once" [ "$(cut -f1 "$T/asc.out" | sort | tr '\n' ' ')" = "0 1 2 3 " ]
check "as completed: sleep 0 (index 3) arrives before sleep 900 (index 0)" \
	[ "$(grep -n '^3	0$' "$T/asc.out" | cut -d: -f1)" -lt "$(grep -n '^0	900$' "$T/asc.out" | cut -d: -f1)" ]

# ---- two slots: 200 sleeps of 10 ms in about half of the serial 2 s ----
for i in $(seq 200); do echo '[10]'; done >"$T/ten.in"
t0=$(now_ms)
map sleep --input "$T/ten.in" --reduce count >"$T/ten.out"
took=$(( $(now_ms) - t0 ))
echo "figure: 200 x 10 ms sleeps on 2 slots: $took ms (serial: 2000 ms)"
check "200 x 10 ms sleeps on two slots: $took ms, under 1500 (serial 2000)" [ "$(cat "$T/ten.out")" = 200 ] && [ $took -lt 1500 ]

# ---- chunks: many tiny items, each result once and in order ----
seq 0 4999 | awk '{ print "[" $1 ", 1]" }' >"$T/adds.in"
map add --input "$T/adds.in" >"$T/adds.out"
check "5000 add items (automatic chunks): every result right, in order" \
	sh -c "seq 1 5000 | cmp -s - '$T/adds.out'"
map add --input "$T/adds.in" --chunk 333 --as-completed | sort -n >"$T/adds-ac.out"
check "5000 add items in chunks of 333, as completed: each index once with its value" \
	sh -c "seq 0 4999 | awk '{ print \$1 \"\t\" \$1 + 1 }' | cmp -s - '$T/adds-ac.out'"
printf '5\n' >"$T/one.in"
check "a line with one value is that one argument (fibo 5 = 5)" sh -c "'$NODE' map fibo --input '$T/one.in' | grep -qx 5"

# ---- failed items ----
printf '[1, 1]\n[2, 2]\n[3, "x"]\n[4, 4]\n[5, 5]\n' >"$T/mixed.in"
map add --input "$T/mixed.in" --chunk 1 >"$T/kg.out" 2>"$T/kg.err" --keep-going
rc=$?
check "--keep-going: exit 1, the others printed in order" [ $rc = 1 ] && [ "$(tr '\n' ' ' <"$T/kg.out")" = "2 4 8 10 " ]
check "--keep-going: the failed item named with its index and error" grep -q '^node map: item 2 failed: .*' "$T/kg.err"
check "--keep-going: a summary of the failures" grep -q '1 of 5 items failed' "$T/kg.err"
map add --input "$T/mixed.in" --chunk 1 >"$T/stop.out" 2>"$T/stop.err"
rc=$?
check "without --keep-going: exit 1 at the first failed item, the items before it printed" \
	[ $rc = 1 ] && [ "$(tr '\n' ' ' <"$T/stop.out")" = "2 4 " ] && grep -q 'item 2 failed' "$T/stop.err"
map add --input "$T/mixed.in" --chunk 2 --keep-going --json >"$T/json.out" 2>/dev/null
check "--json: {index, value|error} per item, also inside chunks" python3 -c "
import json
rows = [json.loads(l) for l in open('$T/json.out')]
assert [r['index'] for r in rows] == [0, 1, 2, 3, 4], rows
assert rows[1]['value'] == 4 and 'error' in rows[2] and rows[4]['value'] == 10, rows"

# ---- statistics ----
map add --input "$T/adds.in" --chunk 50 --stats >/dev/null 2>"$T/stats.err"
check "--stats: Parallel Python's table, 5000 jobs on our worker, 100%" python3 -c "
lines = open('$T/stats.err').read().splitlines()
i = lines.index(' job count | % of all jobs | job time sum | time per job | worker')
rows = [l.split('|') for l in lines[i + 1:] if l.count('|') == 4]
assert sum(int(r[0]) for r in rows) == 5000 and abs(sum(float(r[1]) for r in rows) - 100) < 0.1, rows
assert rows[0][4].strip() == '$W1', rows
assert lines[-1].startswith('Time elapsed since start: ')"

map sleep --input "$T/ten.in" --reduce count --stats >/dev/null 2>"$T/stats10.err"
check "--stats counts run time, not the wait in a worker's prefetch queue: 200 x 10 ms sum to about 2 s" python3 -c "
lines = open('$T/stats10.err').read().splitlines()
i = lines.index(' job count | % of all jobs | job time sum | time per job | worker')
rows = [l.split('|') for l in lines[i + 1:] if l.count('|') == 4]
total = sum(float(r[2]) for r in rows)
assert sum(int(r[0]) for r in rows) == 200 and 1.9 <= total <= 2.6, (total, rows)"

# ---- progress: a bar on a terminal, nothing in a pipe ----
check "piped: no progress bar on stderr" sh -c "! grep -q 'items/s' '$T/stats.err'"
if command -v script >/dev/null; then
	script -qec "'$NODE' map sleep --input '$T/ten.in' --chunk 1 >/dev/null" "$T/tty.out" >/dev/null 2>&1
	check "on a terminal: a progress bar with rate and ETA" grep -q 'items/s  ETA' "$T/tty.out"
else
	echo "skip: no script(1) to give the map a terminal"
fi

# ---- bad input ----
printf '[1, 2]\n\n[1, oops]\n' >"$T/bad.in"
map add --input "$T/bad.in" 2>"$T/bad.err"
rc=$?
check "a line that is not JSON: exit 2, FILE:LINE named" [ $rc = 2 ] && grep -q "bad.in:3: not JSON" "$T/bad.err"
map add 2>"$T/noin.err"
check "no --input: exit 2 with a hint" [ $? = 2 ] && grep -q -- '--input FILE' "$T/noin.err"
map add --input "$T/nope.in" 2>"$T/nofile.err"
check "a missing input file: exit 1, named" [ $? = 1 ] && grep -q 'nope.in' "$T/nofile.err"
map add --input "$T/adds.in" --chunk 0 2>/dev/null
check "--chunk 0: exit 2" [ $? = 2 ]
map add --input "$T/adds.in" --reduce add --as-completed 2>/dev/null
check "--reduce with --as-completed: exit 2" [ $? = 2 ]
check "stdin as input (-)" sh -c "printf '[2, 3]\n' | '$NODE' map add --input - | grep -qx 5"
map add --input "$T/adds.in" --broker "tcp://127.0.0.1:$(free_port)" --timeout 500 >/dev/null 2>"$T/down.err"
check "no broker: exit 5 within the --timeout" [ $? = 5 ] && grep -q 'not finished after 500 ms' "$T/down.err"

printf '["\\udc00"]\n' >"$T/sur.in"
map echo --input "$T/sur.in" 2>"$T/sur.err"
check "a lone surrogate (cJSON and the broker refuse it): exit 2 before anything is sent" \
	[ $? = 2 ] && grep -q 'sur.in:1: not strict JSON' "$T/sur.err"
timeout 20 "$NODE" map add --input "$T/adds.in" --queue "" 2>/dev/null
check "--queue with an empty name: exit 2" [ $? = 2 ]
t0=$(now_ms)
timeout 30 "$NODE" map add --input "$T/mixed.in" --broker "tcp://127.0.0.1:$(free_port)" >/dev/null 2>"$T/down2.err"
rc=$? took=$(( $(now_ms) - t0 ))
check "no broker and no --timeout: exit 5 after one call's time limit ($took ms), not a silent wait" \
	[ $rc = 5 ] && [ $took -lt 15000 ] && grep -q 'did not answer' "$T/down2.err"
map sum --input "$T/lists.in" --reduce fail >/dev/null 2>"$T/rfail.err"
check "--reduce TASK that fails: exit 1, the level and the error named" \
	[ $? = 1 ] && grep -q 'reduce level 1 .*failed' "$T/rfail.err"
map sum --input "$T/lists.in" --reduce sum --keep-going 2>/dev/null
check "--reduce TASK with --keep-going: exit 2" [ $? = 2 ]

# ---- interrupted: SIGINT ends the map at once ----
for i in $(seq 50); do echo '[1000]'; done >"$T/long.in"
start int "$NODE" map sleep --input "$T/long.in" --chunk 1
sleep 0.5
kill -INT "$PID_int"
t0=$(now_ms)
wait "$PID_int"
rc=$?
took=$(( $(now_ms) - t0 ))
check "SIGINT: exit 1 in $took ms, says interrupted" [ $rc = 1 ] && [ $took -lt 3000 ] && grep -q interrupted "$T/int.log"

stop_cluster "$PID_w1" "$PID_broker"
check_no_sanitizer
finish
