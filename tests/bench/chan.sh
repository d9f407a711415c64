#!/bin/sh
# Channel figures (issue 6), on 127.0.0.1: one `node chanhost`; bench_chan
# measures a bare nng REQ/REP pair next to rendezvous writes through the host
# (taking turns) and a buffered channel streamed in batches; then the
# command line as a user runs it: BENCH_PIPE_LINES (1000000) 100-byte lines
# through `node chan write buf --retire < file` and `node chan read buf | wc -l`
# at once (the count must be exact). Targets (2 cores): rendezvous >= 80% of
# the bare pair; buffered >= 500,000 values/s.
. "$(dirname "$0")/lib.sh"
need "$NODE" "$TOOLS/bench_chan"
CH=tcp://127.0.0.1:$(free_port)
cat >"$T/c.json" <<JSON
{ "cluster": "bench-chan", "defaults": { "discovery": false },
  "nodes": { "n": { "roles": { "chanhost": { "listen": "$CH" } } } } }
JSON
# start records the pid of the node process itself.
start host "$NODE" --config "$T/c.json" --name n --log-level warn chanhost --listen "$CH"
i=0
until "$NODE" --config "$T/c.json" chan list --host "$CH" >/dev/null 2>&1 || [ $i -ge 200 ]; do
	sleep 0.05; i=$((i + 1))
done
[ $i -lt 200 ] || { tail -20 "$T/host.log" >&2; die "the chanhost did not answer"; }

"$TOOLS/bench_chan" "$CH" || exit 1

# ---- the command line ----
N=${BENCH_PIPE_LINES:-1000000}
python3 -c '
import sys
n = int(sys.argv[1])
with open(sys.argv[2], "w") as f:
    for i in range(n):
        f.write("line %09d " % i + "x" * 84 + "\n")  # 99 bytes + newline
' "$N" "$T/lines"
BYTES=$(wc -c <"$T/lines")
CHAN="$NODE --config $T/c.json chan"
$CHAN create buf --capacity 10000 --host "$CH" >/dev/null || die "chan create failed"
t0=$(now_ms)
# bounded: a broken run ends at the timeouts instead of hanging the bench
timeout 300 $CHAN read buf --host "$CH" | wc -l >"$T/count" &
RPID=$!
timeout 300 $CHAN write buf --retire --host "$CH" <"$T/lines" || echo "chan.sh: node chan write failed" >&2
wait $RPID
t1=$(now_ms)
got=$(tr -d ' ' <"$T/count")
ms=$((t1 - t0))
[ "$ms" -gt 0 ] || ms=1
awk -v n="$N" -v got="$got" -v ms="$ms" -v b="$BYTES" 'BEGIN {
	printf "%-58s %9.0f lines/s  %6.1f MB/s  (%d lines in %.2f s, read %d: %s)\n",
	    "node chan write --retire < file | node chan read | wc -l", n / (ms / 1000), b / (ms / 1000) / 1e6,
	    n, ms / 1000, got, got == n ? "exact" : "WRONG COUNT"
}'
[ "$got" = "$N" ] || exit 1
