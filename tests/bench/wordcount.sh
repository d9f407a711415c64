#!/bin/sh
# Word count figures (issue 7): BENCH_MB (default 1024) MB of text from
# gentext (seed BENCH_SEED, default 1), counted in the same run by
#   (a) the coreutils pipeline of the issue, in the C locale, and
#   (b) wc_baseline, the single-threaded C word count,
# MB/s each (MB = 2^20 bytes), then (a) and (b) must give the same counts
# (exit 1 otherwise). Targets for node mapreduce with 2 workers on 2 cores:
# >= 1.5x (b) and >= 5x (a). BENCH_WC_RUNS (default 3) runs of (b), median
# printed; (a) runs once (minutes for 1 GB). WORDCOUNT_TEXT=FILE uses (and
# keeps) that file instead, generated there first when it is missing.
. "$(dirname "$0")/lib.sh"
need "$TOOLS/gentext" "$TOOLS/wc_baseline"
MB=${BENCH_MB:-1024}
SEED=${BENCH_SEED:-1}
RUNS=${BENCH_WC_RUNS:-3}
BYTES=$((MB * 1048576))
TEXT=${WORDCOUNT_TEXT:-$T/text}

# seconds since T0 (set with t0=$(now_ms)), 3 decimals
since() { awk "BEGIN { printf \"%.3f\", ($(now_ms) - $1) / 1000 }"; }
mbs() { awk "BEGIN { printf \"%.1f\", $MB / $1 }"; }
row() { printf '%-52s %8s s  %8s MB/s\n' "$1" "$2" "$(mbs "$2")"; }

echo "cores: $(nproc); text: $MB MB from gentext (seed $SEED), MB = 2^20 bytes"
# The text once per run (or once for good with WORDCOUNT_TEXT); every row
# below reads the same file, from the page cache after the first.
if [ ! -f "$TEXT" ] || [ "$(wc -c <"$TEXT")" -ne "$BYTES" ]; then
	t0=$(now_ms)
	"$TOOLS/gentext" "$BYTES" "$SEED" >"$TEXT" || die "gentext failed"
	row "gentext (writing the file)" "$(since "$t0")"
fi
cat "$TEXT" >/dev/null # into the page cache, so that no row pays the disk

# (a) exactly the issue's pipeline; LC_ALL=C for every command of it (as
# quoted it would only reach the first tr, and sort in a UTF-8 locale is
# both slower and in another order).
t0=$(now_ms)
(
	LC_ALL=C
	export LC_ALL
	tr -cs A-Za-z '\n' <"$TEXT" | tr A-Z a-z | sort | uniq -c >"$T/a.out"
) || die "the coreutils pipeline failed"
secs_a=$(since "$t0")
row "(a) tr | tr | sort | uniq -c (LC_ALL=C)" "$secs_a"

# (b) wc_baseline, RUNS times, the median
i=0
: >"$T/b.times"
while [ $i -lt "$RUNS" ]; do
	t0=$(now_ms)
	"$TOOLS/wc_baseline" "$TEXT" >"$T/b.out" || die "wc_baseline failed"
	echo "$(since "$t0")" >>"$T/b.times"
	i=$((i + 1))
done
secs_b=$(sort -n "$T/b.times" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
row "(b) wc_baseline, 1 thread (median of $RUNS)" "$secs_b"

# (c) node mapreduce: a broker, the master and two workers (one task each)
# on this machine, timed from `node job submit --wait` to the end of
# `node job results`, whose records must equal (b)'s.
BPORT=$(free_port) MPORT=$(free_port)
cat >"$T/c.json" <<JSON
{ "cluster": "bench-wc", "defaults": { "timeout_ms": 10000, "discovery": false },
  "nodes": {
    "m": { "host": "127.0.0.1", "roles": {
      "broker": { "listen": "tcp://127.0.0.1:$BPORT", "fsync": "batch" },
      "mapreduce": { "listen": "tcp://127.0.0.1:$MPORT" } } },
    "w": { "host": "127.0.0.1", "roles": {
      "worker": { "queues": ["mapreduce"], "concurrency": 1 } } } } }
JSON
export NODE_CONFIG="$T/c.json"
start broker "$NODE" --name m --data-dir "$T/data-m" broker
wait_for "$T/broker.log" 'listening on' || die "the broker did not start"
start master "$NODE" --name m --data-dir "$T/data-m" mapreduce
wait_for "$T/master.log" 'listening on' || die "the master did not start"
start w1 "$NODE" --name w --data-dir "$T/data-w" worker
start w2 "$NODE" --name w --data-dir "$T/data-w" worker
wait_for "$T/w1.log" consuming && wait_for "$T/w2.log" consuming || die "the workers did not start"
CHUNK_MB=${BENCH_CHUNK_MB:-64}
cat >"$T/wc.json" <<JSON
{ "name": "bench-wc", "inputs": ["$TEXT"], "chunk_bytes": $((CHUNK_MB * 1048576)),
  "map": "wordcount", "combiner": "sum", "reduce": "sum", "partitions": 2,
  "output": {"dir": "$T/wc-out"} }
JSON
t0=$(now_ms)
ID=$("$NODE" job submit --wait "$T/wc.json") || die "the node job failed"
"$NODE" job results "$ID" | LC_ALL=C sort >"$T/c.out" || die "node job results failed"
secs_c=$(since "$t0")
row "(c) node mapreduce, 2 workers, $CHUNK_MB MB chunks" "$secs_c"
"$NODE" job status "$ID" | sed 's/^/    /'
cmp -s "$T/c.out" "$T/b.out" || { echo "MISMATCH: (c) and (b) differ:" >&2; diff "$T/c.out" "$T/b.out" | head -5 >&2; exit 1; }
printf '(c) is %sx (b) (target 1.5x) and %sx (a) (target 5x)\n' \
	"$(awk "BEGIN { printf \"%.2f\", $secs_b / $secs_c }")" "$(awk "BEGIN { printf \"%.1f\", $secs_a / $secs_c }")"

# (a) and (b) must agree: uniq -c prints "  COUNT WORD"; a text that starts
# with a separator gives tr's output an empty first line (NF == 1), no word.
awk 'NF == 2 { printf "%s\t%s\n", $2, $1 }' "$T/a.out" >"$T/a.tsv"
if ! cmp -s "$T/a.tsv" "$T/b.out"; then
	echo "MISMATCH: (a) and (b) differ:" >&2
	diff "$T/a.tsv" "$T/b.out" | head -10 >&2
	exit 1
fi
awk -F'\t' '{ w += $2 } END { printf "(a) and (b) agree: %d distinct words, %d words\n", NR, w }' "$T/b.out"
printf '(b) is %sx (a)\n' "$(awk "BEGIN { printf \"%.1f\", $secs_a / $secs_b }")"
