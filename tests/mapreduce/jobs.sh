#!/bin/sh
# End to end through `node job`: the EXAMPLES word count and its by-count
# chain, a streaming job (awk map, Python reduce), a plugin job, a 200 MB
# input whose map output must spill under a 1 MiB sort limit, and jobs the
# master refuses. A broker, a master and two workers on free loopback ports.
. "$(dirname "$0")/../lib.sh"
JOBS="$ROOT/conf/jobs"
BPORT=$(free_port) MPORT=$(free_port)
cat >"$T/c.json" <<JSON
{
  "cluster": "mr-jobs",
  "defaults": { "timeout_ms": 5000, "discovery": false },
  "nodes": {
    "m": { "host": "127.0.0.1", "roles": {
      "broker": { "listen": "tcp://127.0.0.1:$BPORT" },
      "mapreduce": { "listen": "tcp://127.0.0.1:$MPORT" } } },
    "w": { "host": "127.0.0.1", "roles": {
      "worker": { "queues": ["mapreduce"], "concurrency": 2, "mr_exec": true, "mr_sort_mb": 1 } } }
  }
}
JSON
export NODE_CONFIG="$T/c.json"
start broker "$NODE" --name m --data-dir "$T/data-m" broker
wait_for "$T/broker.log" 'listening on' || finish
start master "$NODE" --name m --data-dir "$T/data-m" mapreduce
wait_for "$T/master.log" 'listening on' || finish
start w1 "$NODE" --name w --data-dir "$T/data-w" worker
start w2 "$NODE" --name w --data-dir "$T/data-w" worker
wait_for "$T/w1.log" 'consuming' && wait_for "$T/w2.log" 'consuming' || finish

# submit_wait FILE: `node job submit --wait`, the id in $ID, status in $RC
submit_wait() {
	ID=$(timeout 120 "$NODE" job submit --wait "$1" 2>"$T/submit.err"); RC=$?
	[ $RC = 0 ] || { echo "job submit $1 exited $RC: $(cat "$T/submit.err")" >&2; }
}
W="$T/wc"; mkdir -p "$W"
cp "$JOBS/words.txt" "$JOBS/wordcount.json" "$JOBS/streaming.json" "$JOBS/sum.py" "$W/"

# ---- the EXAMPLES word count, alphabetical ----
submit_wait "$W/wordcount.json"
check "the word count job finishes" [ "$RC" = 0 ]
WC=$ID
cp "$JOBS/words.counts" "$T/alpha.want"
check "the alphabetical file has the EXAMPLES counts exactly" cmp -s "$W/out/wordcount/part-00000.tsv" "$T/alpha.want"
"$NODE" job results "$WC" >"$T/alpha.got" 2>"$T/results.err"
check "node job results streams the same records" cmp -s "$T/alpha.got" "$T/alpha.want"
check "the output directory has a manifest" grep -q '"part-00000.tsv"' "$W/out/wordcount/manifest.json"

# ---- chained: by count, ties alphabetical ----
sed "s/job:ID/job:$WC/" "$JOBS/by-count.json" >"$W/by-count.json"
submit_wait "$W/by-count.json"
check "the by-count job reading job:$WC finishes" [ "$RC" = 0 ]
cp "$JOBS/words.by-count" "$T/count.want"
check "the by-count file: highest first, ties alphabetical" cmp -s "$W/out/by-count/part-00000.tsv" "$T/count.want"

# ---- streaming: awk map, Python reduce, two partitions, JSON lines ----
submit_wait "$W/streaming.json"
check "the streaming job finishes" [ "$RC" = 0 ]
"$NODE" job results "$ID" | python3 -c '
import json, sys
d = dict((o["key"], o["value"]) for o in map(json.loads, sys.stdin))
print("\n".join("%s\t%s" % (k, d[k]) for k in sorted(d)))' >"$T/stream.got"
check "the streaming job gives the same counts" cmp -s "$T/stream.got" "$T/alpha.want"
check "two part files, JSON lines" test -f "$W/out/streaming/part-00000.jsonl" -a -f "$W/out/streaming/part-00001.jsonl"

# ---- a plugin: first letters of words, then the longest value ----
if [ -f "$ROOT/$NODE_BUILD/plugins/mr_example.so" ]; then
	cat >"$W/plugin.json" <<JSON
{ "name": "letters", "inputs": ["words.txt"],
  "map": {"plugin": "$ROOT/$NODE_BUILD/plugins/mr_example.so", "function": "first_letter"},
  "reduce": "count", "output": {"dir": "out/letters"} }
JSON
	submit_wait "$W/plugin.json"
	check "the plugin job finishes" [ "$RC" = 0 ]
	want=$(tr -cs A-Za-z '\n' <"$W/words.txt" | tr A-Z a-z | grep . | cut -c1 | LC_ALL=C sort | uniq -c | awk '{ printf "%s\t%s\n", $2, $1 }')
	check "the plugin's map counts first letters" [ "$(cat "$W/out/letters/part-00000.tsv")" = "$want" ]
else
	fail "build/plugins/mr_example.so is missing (make plugins)"
fi

# ---- 200 MB, sort memory 1 MiB: the map output spills and merges ----
MB=${MR_BIG_MB:-200}
"$TOOLS/gentext" "${MB}M" 7 >"$T/big.txt"
cat >"$W/big.json" <<JSON
{ "name": "big", "inputs": ["$T/big.txt"], "chunk_bytes": 33554432,
  "map": "wordcount", "combiner": "sum", "reduce": "sum", "partitions": 3,
  "output": {"dir": "out/big"} }
JSON
t0=$(now_ms)
submit_wait "$W/big.json"
check "the ${MB} MB job finishes" [ "$RC" = 0 ]
echo "   ${MB} MB word count: $(( $(now_ms) - t0 )) ms"
"$TOOLS/wc_baseline" "$T/big.txt" >"$T/big.want"
LC_ALL=C sort "$W"/out/big/part-*.tsv >"$T/big.got"
check "its counts equal the single-threaded baseline's" cmp -s "$T/big.got" "$T/big.want"
"$NODE" job status "$ID" --json >"$T/big.status"
check "its maps spilled (mr_sort_mb 1)" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
s = s.get("job", s)
sys.exit(0 if s.get("maps", {}).get("spills", 0) > 0 else 1)' "$T/big.status"
rm -f "$T/big.txt"

# ---- refused by the master ----
cat >"$W/nojob.json" <<JSON
{ "name": "x", "inputs": ["job:nosuchjob-1"], "map": "identity", "reduce": "identity", "output": {"dir": "out/x"} }
JSON
"$NODE" job submit "$W/nojob.json" >/dev/null 2>"$T/nojob.err"; rc=$?
check "job:ID of a job the master does not know is refused (exit $rc)" [ "$rc" = 1 -o "$rc" = 2 ]
check "  naming the input" grep -q 'inputs\[0\]' "$T/nojob.err"

check_no_sanitizer
finish
