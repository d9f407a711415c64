#!/bin/sh
# The MapReduce master (node mapreduce) with real processes: a broker, the
# master and two workers (queue mapreduce, mr_exec on) from one cluster file
# with a secret, on free loopback ports. Ops go through tests/tools/mr_call.
# Cases: the EXAMPLES word count and its by-count chain; the master killed
# with -9 mid-job and restarted; job.kill cleans the workers' files; purge
# removes only part files and the manifest; a slow first attempt gets a
# backup; workers killed with -9 in the map and in the reduce phase; a map
# output lost with mr_local_read off is computed again.
. "$(dirname "$0")/../lib.sh"
MRCALL="$TOOLS/mr_call"
[ -x "$MRCALL" ] || { echo "needs $MRCALL (make tools)"; exit 77; }
BPORT=$(free_port) MPORT=$(free_port)
MURL=tcp://127.0.0.1:$MPORT
LOCAL_READ=${LOCAL_READ:-true}

write_cluster() { # write_cluster LOCAL_READ
	cat >"$T/c.json" <<JSON
{
  "cluster": "mr-master",
  "secret": "mr-master-test-secret-0123456789abcdef",
  "defaults": { "timeout_ms": 3000, "discovery": false },
  "nodes": {
    "m": { "host": "127.0.0.1", "roles": {
      "broker": { "listen": "tcp://127.0.0.1:$BPORT", "lease_ms": 1500 },
      "mapreduce": { "listen": "$MURL", "backup_after_ms": 1000, "max_attempts": 4 } } },
    "w": { "host": "127.0.0.1", "roles": {
      "worker": { "queues": ["mapreduce"], "concurrency": 2, "mr_exec": true, "mr_local_read": $1 } } }
  }
}
JSON
	export NODE_CONFIG="$T/c.json"
}

start_master() {
	start master "$NODE" --name m --data-dir "$T/data-m" mapreduce
	wait_for "$T/master.log" 'listening on' || { fail "the master did not start"; finish; }
}
# start_w NAME [ARGS]: a worker of node w, data in $T/data-w, pid in PID_NAME
start_w() {
	n=$1; shift
	start "$n" "$NODE" --name w --data-dir "$T/data-w" worker "$@"
	wait_for "$T/$n.log" 'consuming' || { fail "worker $n did not start"; finish; }
}

call() { "$MRCALL" "$T/c.json" "$MURL" "$1" "${2:-10000}"; }
# js FILE EXPR: a Python expression over the JSON object d read from FILE
js() { python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null; }
# submit NAME JOB_JSON: the job id in $ID
submit() {
	printf '{"op":"job.submit","job":%s}' "$2" >"$T/req-$1.json"
	call "@$T/req-$1.json" >"$T/sub-$1.json"
	ID=$(js "$T/sub-$1.json" 'd["id"]')
	[ -n "$ID" ] || { fail "submit $1: $(cat "$T/sub-$1.json")"; return 1; }
}
# status ID: job.status into $T/st.json; sfield EXPR over its job j
status() { call "{\"op\":\"job.status\",\"id\":\"$1\"}" >"$T/st.json"; }
sfield() { js "$T/st.json" "(lambda j: $1)(d['job'])"; }
# wait_job ID [SECONDS]: job.wait until the job is finished, bounded
wait_job() {
	end=$(( $(date +%s) + ${2:-60} )) v=0
	while [ "$(date +%s)" -lt $end ]; do
		call "{\"op\":\"job.wait\",\"id\":\"$1\",\"since\":$v,\"timeout_ms\":2000}" >"$T/st.json"
		v=$(sfield 'j["version"]'); st=$(sfield 'j["state"]')
		case "$st" in done|failed|killed) return 0 ;; "") sleep 0.2; v=0 ;; esac
	done
	echo "job $1 did not finish in ${2:-60} s: $(cat "$T/st.json")" >&2
	return 1
}
# wait_cond SECONDS ID EXPR: until EXPR over the job's status holds, bounded
wait_cond() {
	lim=$(( $1 * 10 )) i=0
	while [ $i -lt $lim ]; do
		status "$2"
		[ "$(sfield "$3")" = True ] && return 0
		sleep 0.1; i=$((i + 1))
	done
	echo "job $2: never $3: $(cat "$T/st.json")" >&2
	return 1
}
# same DESCRIPTION GOT WANT: the files are equal, else the difference is shown
same() {
	if cmp -s "$2" "$3"; then ok "$1"; else fail "$1"; diff "$2" "$3" >&2; fi
}

# ---- the cluster ----
write_cluster "$LOCAL_READ"
start broker "$NODE" --name m --data-dir "$T/data-m" broker
wait_for "$T/broker.log" 'listening on' || finish
start_master
start_w w1
start_w w2

cat >"$T/text.txt" <<'TEXT'
There are known knowns. These are things we know that we know. There are
known unknowns. That is to say, there are things that we know we do not
know. But there are also unknown unknowns. There are things we do not
know we do not know.
TEXT
cat >"$T/want-alpha.tsv" <<'TSV'
also	1
are	6
but	1
do	3
is	1
know	6
known	2
knowns	1
not	3
say	1
that	3
there	5
these	1
things	3
to	1
unknown	1
unknowns	2
we	6
TSV
sort -t "$(printf '\t')" -k2,2nr -k1,1 "$T/want-alpha.tsv" >"$T/want-count.tsv"
wc_job() { # wc_job NAME OUTDIR [EXTRA MEMBERS]
	printf '{"name":"%s","inputs":[{"file":"%s"}],"map":"wordcount","combiner":"sum","reduce":"sum","partitions":1,%s"output":{"dir":"%s","format":"tsv"}}' \
	    "$1" "$T/text.txt" "${3:-}" "$2"
}

# ---- 1. word count, then by count from its output ----
submit wc "$(wc_job wc "$T/out-wc")" && WC=$ID
wait_job "$WC" 30
check "1: the word count is done" [ "$(sfield 'j["state"]')" = done ]
same "1: part-00000.tsv holds the EXAMPLES counts, alphabetically" "$T/out-wc/part-00000.tsv" "$T/want-alpha.tsv"
check "1: manifest.json names the part file and its records" \
    [ "$(js "$T/out-wc/manifest.json" 'd["files"] == ["part-00000.tsv"] and d["records"] == [18] and d["id"] == "'"$WC"'"')" = True ]
check "1: status counts maps, reduces and records" \
    [ "$(sfield 'j["maps"]["done"] == j["maps"]["total"] == 1 and j["reduces"]["done"] == 1 and j["records_out"] == 18 and j["output"]["files"] == ["'"$T"'/out-wc/part-00000.tsv"]')" = True ]
BYCOUNT='{"name":"bycount","inputs":[{"job":"'"$WC"'"}],"map":"identity","reduce":"identity","sort":"value-desc","output":{"dir":"'"$T/out-count"'"}}'
submit bycount "$BYCOUNT" && BC=$ID
wait_job "$BC" 30
check "1: by count is done" [ "$(sfield 'j["state"]')" = done ]
same "1: by count, highest first, ties alphabetical" "$T/out-count/part-00000.tsv" "$T/want-count.tsv"
call '{"op":"job.list"}' >"$T/list.json"
check "1: job.list shows both, newest first" [ "$(js "$T/list.json" '[j["id"] for j in d["jobs"]] == ["'"$BC"'", "'"$WC"'"]')" = True ]

check_no_sanitizer
finish
