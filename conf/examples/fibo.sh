#!/bin/sh
# The Fibonacci scenario (../shared EXAMPLES.md, "Task queue"): send fibo for
# 4, 3, 8, 6 and 10 to the queue "fibo" in one submit, then report each
# result with its input and the id of the task that computed it:
#   Value [8] -> 21 (task 6a47e7b2-...)
# Needs a running broker and a worker consuming "fibo" (e.g. `node up` with a
# cluster file whose worker has queues ["default", "fibo"], or
# `node worker --queues fibo`).
# Usage: [NODE=./node] conf/examples/fibo.sh [node options, e.g. --broker URL]
set -u
NODE=${NODE:-./node}
INPUTS="4 3 8 6 10"
WAIT=${FIBO_WAIT:-60} # seconds to wait for each result

tasks=""
for n in $INPUTS; do
	tasks="$tasks${tasks:+,}{\"name\":\"fibo\",\"args\":[$n],\"queue\":\"fibo\"}"
done
# One id per line, in the order of the tasks.
ids=$(printf '[%s]\n' "$tasks" | "$NODE" submit - "$@") || exit $?

status=0
i=0
for id in $ids; do
	i=$((i + 1))
	n=$(echo $INPUTS | cut -d' ' -f$i)
	if value=$("$NODE" result "$id" --wait --timeout "$WAIT" "$@"); then
		echo "Value [$n] -> $value (task $id)"
	else
		rc=$?
		echo "Value [$n] -> no result (task $id)" >&2
		[ $status = 0 ] && status=$rc
	fi
done
exit $status
