#!/bin/sh
# EXAMPLES.md "Futures" from the command line, against a running cluster
# (node up, or the cluster file in $NODE_CONFIG): Monte Carlo pi, SCOOP's
# mapReduce, map in order and as completed, 10 ms sleeps over the worker
# slots, and Parallel Python's job statistics. The same in C: pi.c,
# mapreduce.c and pp_callbacks.c here.  NODE=./node sh conf/examples/futures.sh
set -u
NODE=${NODE:-node}
D=$(mktemp -d /tmp/node-futures.XXXXXX)
trap 'rm -rf "$D"' EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

seq 1000 | awk '{ print "[1000, " $1 "]" }' >"$D/pi.in"
say "node map pi --input pi.in --reduce add   (1000 tasks x 1000 points, seeds 1..1000)"
"$NODE" map pi --input "$D/pi.in" --reduce add | tee "$D/pi.out"
awk -F'[:,}]' '{ printf "pi is about %.5f\n", 4 * $2 / $4 }' "$D/pi.out"

awk 'BEGIN { for (a = 0; a < 1000; a++) { printf "[["; for (k = 0; k < a; k++) printf (k ? ",%d" : "%d"), a; print "]]" } }' >"$D/lists.in"
say "node map sum --input lists.in --reduce add   (sum of [a]*a for a in 0..999)"
"$NODE" map sum --input "$D/lists.in" --reduce add

printf '[900]\n[300]\n[0]\n' >"$D/sleeps.in"
say "node map sleep --input sleeps.in   (in input order)"
"$NODE" map sleep --input "$D/sleeps.in" --chunk 1
say "node map sleep --input sleeps.in --as-completed   (INDEX, RESULT as they arrive)"
"$NODE" map sleep --input "$D/sleeps.in" --chunk 1 --as-completed

for i in $(seq 200); do echo '[10]'; done >"$D/ten.in"
say "node map sleep --input ten.in --reduce count --stats   (200 x 10 ms: serially 2 s)"
start=$(date +%s%N)
"$NODE" map sleep --input "$D/ten.in" --reduce count --stats
echo "took $(( ($(date +%s%N) - start) / 1000000 )) ms"
