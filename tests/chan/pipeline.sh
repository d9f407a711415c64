# Streams: `seq 1 100000 | node chan write jobs --retire` into two readers
# and into one: every line arrives exactly once (no loss, no duplicate);
# a rendezvous and a buffered channel; typed lines flow at once.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/common.sh"
start_chanhost

N=100000
t0=$(now_ms)
seq 1 $N | "$NODE" chan write jobs --retire &
W=$!
"$NODE" chan read jobs >"$T/one.out"; rc=$?
wait $W; wrc=$?
t1=$(now_ms)
check "one reader: exit 0 after retire" [ "$rc" = 0 ] && [ "$wrc" = 0 ]
check "one reader: exactly $N lines" [ "$(wc -l <"$T/one.out")" = $N ]
check "one reader: in order" sh -c "seq 1 $N | cmp -s - '$T/one.out'"
echo "rendezvous pipeline: $N lines in $((t1 - t0)) ms"

"$NODE" chan create jobs2 --capacity 1000 >/dev/null
seq 1 $N | "$NODE" chan write jobs2 --retire &
W=$!
"$NODE" chan read jobs2 >"$T/a.out" &
A=$!
"$NODE" chan read jobs2 >"$T/b.out" &
B=$!
wait $W; wait $A; ra=$?; wait $B; rb=$?
check "two readers: both exit 0" [ "$ra" = 0 ] && [ "$rb" = 0 ]
check "two readers: $N lines together" [ "$(cat "$T/a.out" "$T/b.out" | wc -l)" = $N ]
check "two readers: no duplicate" [ -z "$(sort "$T/a.out" "$T/b.out" | uniq -d)" ]
seq 1 $N >"$T/want"
check "two readers: no loss" sh -c "sort -n '$T/a.out' '$T/b.out' | cmp -s - '$T/want'"

# a line typed on a terminal (stdin that pauses) is sent at once
mkfifo "$T/fifo"
"$NODE" chan write typed <"$T/fifo" &
W=$!
exec 3>"$T/fifo"
echo first >&3
out=$(timeout 10 "$NODE" chan read typed --count 1)
check "a typed line flows before stdin ends" [ "$out" = first ]
echo second >&3
out=$(timeout 10 "$NODE" chan read typed --count 1)
check "the next typed line too" [ "$out" = second ]
exec 3>&-
wait $W
check "writer exits 0 at the end of stdin" [ $? = 0 ]
finish
