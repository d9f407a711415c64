#!/bin/sh
# The task-queue basics (EXAMPLES.md, "Task queue"): add(5, 5) is 10,
# sqrt(4) is 2.0 (JSON prints 2), and a client that asks whether a result is
# ready without blocking, or waits for it with a time limit.
# Needs a running broker and a worker on the queue "default" (e.g. `node up`).
# Usage: [NODE=./node] conf/examples/tasks.sh [node options, e.g. --broker URL]
set -u
NODE=${NODE:-./node}
status=0
say() { printf '$ %s\n' "$*"; }
expect() { # expect WHAT GOT WANTED...
	what=$1 got=$2; shift 2
	for want in "$@"; do [ "$got" = "$want" ] && return 0; done
	echo "unexpected: $what gave '$got', expected $*" >&2
	status=1
}

say node submit add 5 5 --wait
out=$("$NODE" submit add 5 5 --wait --timeout 30 "$@") || status=1
echo "$out"
expect "add 5 5" "${out#*: }" 10

say node submit sqrt 4 --wait
out=$("$NODE" submit sqrt 4 --wait --timeout 30 "$@") || status=1
echo "$out"
expect "sqrt 4" "${out#*: }" 2 2.0

# A task that takes 3 s: ask without blocking, then wait 1 s (not enough),
# then wait for it.
say node submit sleep 3000
id=$("$NODE" submit sleep 3000 "$@") || exit $?
echo "$id"
say node result "$id"
"$NODE" result "$id" "$@" 2>&1
rc=$?
echo "(exit status $rc: not ready yet)"
expect "node result without --wait" "$rc" 1
say node result "$id" --wait --timeout 1
"$NODE" result "$id" --wait --timeout 1 "$@" 2>&1
rc=$?
echo "(exit status $rc: timed out)"
expect "node result --wait --timeout 1" "$rc" 5
say node result "$id" --wait --timeout 30
"$NODE" result "$id" --wait --timeout 30 "$@" 2>&1
rc=$?
expect "node result --wait --timeout 30" "$rc" 0
exit $status
