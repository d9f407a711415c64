# Parked ends and failures: poison wakes every parked reader and writer; a
# reader killed (kill -9) while parked loses nothing (the value goes to the
# next reader); a writer killed while parked leaves no phantom value; 1000
# parked readers on one channel with bounded host memory; parked calls
# outlive the host's park bound (max_park_ms 500: again:true, re-issued).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/common.sh"
start_chanhost '"max_park_ms": 500,'

# poison wakes 3 parked readers and 3 parked writers
for i in 1 2 3; do
	"$NODE" chan read pr >"$T/r$i.out" 2>&1 & eval "R$i=\$!"
	"$NODE" chan write pw v$i >"$T/w$i.out" 2>&1 & eval "W$i=\$!"
done
check "3 readers parked" wait_until 10 waiting_is pr readers_waiting 3
check "3 writers parked" wait_until 10 waiting_is pw writers_waiting 3
sleep 1.2 # past max_park_ms twice: they are parked again after again:true
check "still parked after the park bound" waiting_is pr readers_waiting 3
"$NODE" chan poison pr; "$NODE" chan poison pw
for i in 1 2 3; do
	eval "wait \$R$i"; rr=$?; eval "wait \$W$i"; wr=$?
	check "poison: reader $i exits 0" [ "$rr" = 0 ]
	check "poison: writer $i exits 1 with the message" [ "$wr" = 1 ] && grep -q "channel pw is poisoned" "$T/w$i.out"
done

# a reader killed while parked: the value goes to the next reader
"$NODE" chan read kr --count 1 >"$T/k1.out" 2>&1 &
K=$!
wait_until 10 waiting_is kr readers_waiting 1
kill -9 $K; wait $K 2>/dev/null
check "killed reader leaves the queue" wait_until 10 waiting_is kr readers_waiting 0
"$NODE" chan write kr precious &
W=$!
out=$(timeout 10 "$NODE" chan read kr --count 1)
wait $W; rc=$?
check "value goes to the next reader" [ "$out" = precious ] && [ "$rc" = 0 ]

# a writer killed while parked: no phantom value
"$NODE" chan write kw phantom >/dev/null 2>&1 &
K=$!
wait_until 10 waiting_is kw writers_waiting 1
kill -9 $K; wait $K 2>/dev/null
check "killed writer leaves the queue" wait_until 10 waiting_is kw writers_waiting 0
timeout 10 "$NODE" chan read kw --timeout 1 >"$T/kw.out" 2>&1; rc=$?
check "no phantom value after the writer died" [ "$rc" = 124 ] && ! grep -q phantom "$T/kw.out"

# 1000 parked readers: all parked, host memory bounded, all answered. Under
# ASan each reader process takes tens of MB, and 1000 of them exhaust the
# machine: the sanitizer pass parks 200 (the plain pass checks 1000).
N=1000
[ -n "${SAN:-}" ] && N=200
rss() { awk '/VmRSS/ {print $2}' /proc/$PID_host/status; }
before=$(rss)
RP=""
i=0
while [ $i -lt $N ]; do
	"$NODE" chan read many --count 1 >>"$T/many.out" 2>>"$T/many.err" &
	RP="$RP $!"; i=$((i + 1))
done
check "$N readers parked" wait_until 120 waiting_is many readers_waiting $N
after=$(rss)
echo "host RSS: $before KB before, $after KB with $N parked readers"
check "host RSS grows by less than 64 MB for $N parked readers" [ $((after - before)) -lt 65536 ]
sleep 1.1 # they all go through again:true at least once
seq 1 $N | timeout 120 "$NODE" chan write many || {
	fail "writing $N values to the parked readers did not finish in 120 s"
	for p in $RP; do kill -TERM "$p" 2>/dev/null; done
}
for p in $RP; do wait $p; done
check "$N readers got $N distinct values" [ "$(sort -u "$T/many.out" | wc -l)" = $N ]
check "no reader failed" [ ! -s "$T/many.err" ]
finish
