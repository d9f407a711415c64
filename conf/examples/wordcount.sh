#!/bin/sh
# The "MapReduce" scenario of EXAMPLES.md on the master of `node up` (or the
# cluster file's): count the words of conf/jobs/words.txt, then a second job
# reads the first one's output and sorts it by count, highest first.
# Usage: conf/examples/wordcount.sh [NODE]   (NODE defaults to ./node)
set -u
NODE=${1:-${NODE:-./node}}
JOBS=$(cd "$(dirname "$0")/../jobs" && pwd)
W=$(mktemp -d /tmp/node-wordcount.XXXXXX)
trap 'rm -rf "$W"' EXIT
cp "$JOBS/words.txt" "$JOBS/wordcount.json" "$JOBS/by-count.json" "$W/"

ID=$("$NODE" job submit --wait "$W/wordcount.json") || exit 1
"$NODE" job status "$ID"
echo "alphabetical ($W/out/wordcount/part-00000.tsv):"
"$NODE" job results "$ID" | tr '\t' ' ' | paste -sd ' ' | fold -s -w 76 | sed 's/^/  /'
sed "s/job:ID/job:$ID/" "$JOBS/by-count.json" >"$W/by-count.json"
ID2=$("$NODE" job submit --wait "$W/by-count.json") || exit 1
echo "by count, ties alphabetical (job $ID2):"
"$NODE" job results "$ID2" | tr '\t' ' ' | paste -sd ' ' | fold -s -w 76 | sed 's/^/  /'
"$NODE" job purge "$ID2" >/dev/null
"$NODE" job purge "$ID" >/dev/null
exit 0
