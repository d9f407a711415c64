#!/bin/sh
# The "Channels" scenarios of EXAMPLES.md from the shell, on the channel
# host of `node up` (or the cluster file's): counter/printer with poison,
# a pipeline that ends with retire, and publish/subscribe.
# Usage: conf/examples/channels.sh [NODE]   (NODE defaults to ./node)
set -u
NODE=${1:-${NODE:-./node}}
C=demo$$ # fresh channel names: poison and retire last until a delete

echo "counter writes 0..4 to $C.A and poisons it; the printer reads until poisoned:"
( seq 0 4 | "$NODE" chan write $C.A && "$NODE" chan poison $C.A ) &
"$NODE" chan read $C.A | tr '\n' ' '
echo
wait

echo "a pipeline: producer | node chan write --retire, node chan read | consumer:"
seq 1 1000 | "$NODE" chan write $C.jobs --retire &
"$NODE" chan read $C.jobs | awk '{ s += $1 } END { print "sum of 1..1000 =", s }'
wait

echo "publish/subscribe: two subscribers, one publisher:"
"$NODE" sub $C.news --count 2 | sed 's/^/  first subscriber: /' &
S1=$!
"$NODE" sub $C.news --count 2 | sed 's/^/  second subscriber: /' &
S2=$!
i=0
until [ "$("$NODE" chan list --json 2>/dev/null | grep -c "\"topic\":\"$C.news\",\"subscribers\":2")" = 1 ] || [ $i -ge 100 ]; do
	sleep 0.05; i=$((i + 1))
done
"$NODE" pub $C.news "hello" "world"
wait $S1 $S2
echo "node chan list:"
"$NODE" chan list
"$NODE" chan delete $C.A >/dev/null 2>&1
"$NODE" chan delete $C.jobs >/dev/null 2>&1
exit 0
