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

write_cluster() { # write_cluster LOCAL_READ [MASTER MEMBERS]
	cat >"$T/c.json" <<JSON
{
  "cluster": "mr-master",
  "secret": "mr-master-test-secret-0123456789abcdef",
  "defaults": { "timeout_ms": 3000, "discovery": false },
  "nodes": {
    "m": { "host": "127.0.0.1", "roles": {
      "broker": { "listen": "tcp://127.0.0.1:$BPORT", "lease_ms": 1500 },
      "mapreduce": { ${2:-} "listen": "$MURL", "backup_after_ms": 1000, "max_attempts": 4 } } },
    "w": { "host": "127.0.0.1", "roles": {
      "worker": { "queues": ["mapreduce"], "concurrency": 2, "mr_exec": true, "mr_local_read": $1 } } }
  }
}
JSON
	export NODE_CONFIG="$T/c.json"
}

# start_master [HOST_ID]: the master, each start with its own log $MLOG
# (master1.log, master2.log...) and pid $PID_master; another host id makes
# it fetch part files with mr.get
NMASTER=0
start_master() {
	NMASTER=$((NMASTER + 1))
	MLOG="$T/master$NMASTER.log"
	start "master$NMASTER" env NODE_MR_HOST_ID="${1:-}" "$NODE" --name m --data-dir "$T/data-m" mapreduce
	eval "PID_master=\$PID_master$NMASTER"
	wait_for "$MLOG" 'listening on' || { fail "the master did not start"; finish; }
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
# submit NAME JOB_JSON: the job id in $ID; try_submit: the reply in $T/sub-NAME.json
try_submit() {
	printf '{"op":"job.submit","job":%s}' "$2" >"$T/req-$1.json"
	call "@$T/req-$1.json" >"$T/sub-$1.json"
}
submit() {
	try_submit "$@"
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
# wait_until SECONDS COMMAND...: until COMMAND succeeds, bounded
wait_until() {
	lim=$(( $1 * 20 )); shift; i=0
	while [ $i -lt $lim ]; do "$@" && return 0; sleep 0.05; i=$((i + 1)); done
	return 1
}
# same DESCRIPTION GOT WANT: the files are equal, else the difference is shown
same() {
	if cmp -s "$2" "$3"; then ok "$1"; else fail "$1"; diff "$2" "$3" >&2; fi
}

# ---- the cluster: the master first; it waits for the broker ----
write_cluster "$LOCAL_READ"
start_master

cat >"$T/text.txt" <<'TEXT'
There are known knowns. These are things we know that we know. There are
known unknowns. That is to say, there are things that we know we do not
know. But there are also unknown unknowns. There are things we do not
know we do not know.
TEXT
cp "$ROOT/conf/jobs/words.counts" "$T/want-alpha.tsv" # EXAMPLES.md, alphabetical
sort -t "$(printf '\t')" -k2,2nr -k1,1 "$T/want-alpha.tsv" >"$T/want-count.tsv"
wc_job() { # wc_job NAME OUTDIR [EXTRA MEMBERS]
	printf '{"name":"%s","inputs":[{"file":"%s"}],"map":"wordcount","combiner":"sum","reduce":"sum","partitions":1,%s"output":{"dir":"%s","format":"tsv"}}' \
	    "$1" "$T/text.txt" "${3:-}" "$2"
}

# ---- 1. word count, then by count from its output ----
submit wc "$(wc_job wc "$T/out-wc")" && WC=$ID
status "$WC"
check "1: without a broker the job waits, started" [ "$(sfield 'j["state"] == "map" and j["maps"]["done"] == 0')" = True ]
check "1: the master says it cannot submit yet" wait_for "$MLOG" 'cannot submit to the broker' 10
start broker "$NODE" --name m --data-dir "$T/data-m" broker
wait_for "$T/broker.log" 'listening on' || finish
start_w w1
start_w w2
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
check "1: job.list leaves output.files out" [ "$(js "$T/list.json" '"files" in d["jobs"][0]["output"]')" = False ]
call "{\"op\":\"job.read\",\"id\":\"$WC\",\"file\":0,\"offset\":5,\"max\":3}" >"$T/read.json"
check "1: job.read gives bytes 5-7 of the part file, base64" \
    [ "$(js "$T/read.json" '__import__("base64").b64decode(d["data"]).decode() + "|" + str(d["size"]) + str(d["eof"])')" = "$(dd if="$T/out-wc/part-00000.tsv" bs=1 skip=5 count=3 2>/dev/null)|$(wc -c <"$T/out-wc/part-00000.tsv")False" ]
call "{\"op\":\"job.read\",\"id\":\"$WC\",\"offset\":1000000}" >"$T/read.json"
check "1: job.read past the end: no data, eof" [ "$(js "$T/read.json" 'd["data"] == "" and d["eof"]')" = True ]
# refusals
status nosuchjob
check "1: job.status of an unknown id: not_found" [ "$(js "$T/st.json" 'd["error"]["code"]')" = not_found ]
try_submit bad '{"name":"bad","inputs":[{"text":"x"}],"map":"wordcount","reduce":"sum","output":{"dir":"'"$T/o"'"},"colour":1}'
check "1: a job with an unknown key: invalid, naming it" grep -q '"code":"invalid".*colour' "$T/sub-bad.json"
try_submit nofile "$(wc_job nofile "$T/o" | sed "s|$T/text.txt|$T/missing.txt|")"
check "1: an input that cannot be read: invalid, naming it" grep -q '"code":"invalid","message":"inputs\[0\]: cannot read .*missing.txt' "$T/sub-nofile.json"
try_submit baddir "$(wc_job baddir "$T/text.txt/sub")"
check "1: an output.dir that cannot be made: invalid" grep -q '"code":"invalid","message":"output.dir: ' "$T/sub-baddir.json"
check "1: job.list shows both, newest first" [ "$(js "$T/list.json" '[j["id"] for j in d["jobs"]] == ["'"$BC"'", "'"$WC"'"]')" = True ]

# ---- programs and inputs of the slower jobs ----
# map tasks of 4 KiB (the EXAMPLES text 100 times), each map taking a second
python3 -c 'import sys; t = open(sys.argv[1]).read(); open(sys.argv[2], "w").write(t * 100)' "$T/text.txt" "$T/text100.txt"
python3 -c 'import sys
for l in open(sys.argv[1]):
    k, v = l.rstrip("\n").split("\t"); print("%s\t%d" % (k, int(v) * 100))' "$T/want-alpha.tsv" >"$T/want-100.tsv"
cat >"$T/slowmap.sh" <<'SH'
sleep 1
tr -cs 'A-Za-z' '\n' | tr 'A-Z' 'a-z' | awk 'NF { print $0 "\t1" }'
SH
# a streaming reduce: sorted key TAB value lines in, one sum per key out
cat >"$T/slowreduce.sh" <<'SH'
sleep 2
awk -F '\t' 'NR > 1 && $1 != k { print k "\t" s; s = 0 } { k = $1; s += $2 } END { if (NR) print k "\t" s }'
SH
slow_job() { # slow_job NAME OUTDIR [REDUCE]
	printf '{"name":"%s","inputs":[{"file":"%s"}],"chunk_bytes":4096,"map":{"exec":["/bin/sh","%s"]},"combiner":"sum","reduce":%s,"output":{"dir":"%s"}}' \
	    "$1" "$T/text100.txt" "$T/slowmap.sh" "${3:-\"sum\"}" "$2"
}
# workdirs ID: the workers' MRDIR/ID directories that exist
workdirs() { ls -d "$T"/data-w/mr/*/"$1" 2>/dev/null; }

# ---- 2. the master killed with -9 mid-job, then restarted ----
submit restart "$(slow_job restart "$T/out-restart")" && RS=$ID
wait_cond 20 "$RS" 'j["maps"]["done"] >= 1 and j["maps"]["done"] < j["maps"]["total"]'
nchunks=$(( ($(wc -c <"$T/text100.txt") + 4095) / 4096 ))
check "2: the job has one map task per 4 KiB chunk ($nchunks)" [ "$(sfield 'j["maps"]["total"]')" = $nchunks ]
before=$(sfield 'j["maps"]["done"]')
kill9 "$PID_master"
start_master elsewhere
check "2: the restarted master resumes the job" grep -q '1 to resume' "$MLOG"
status "$RS"
check "2: maps done before the kill stay done ($before)" [ "$(sfield 'j["maps"]["done"] >= '"$before")" = True ]
wait_job "$RS" 60
check "2: the job finishes after the restart" [ "$(sfield 'j["state"]')" = done ]
same "2: with the same output" "$T/out-restart/part-00000.tsv" "$T/want-100.tsv"
check "2: on another host id, the master fetched the part file with mr.get" grep -q "job $RS: $RS/reduce-00000-a[0-9]*/part-00000.tsv fetched from tcp://" "$MLOG"

# ---- 3. job.kill revokes the tasks and removes the intermediate files ----
submit kill "$(slow_job kill "$T/out-kill")" && KL=$ID
wait_cond 20 "$KL" 'j["maps"]["done"] >= 1'
check "3: map outputs exist on the workers" [ -n "$(workdirs "$KL")" ]
call "{\"op\":\"job.kill\",\"id\":\"$KL\"}" >"$T/kill.json"
check "3: job.kill answers the killed job" [ "$(js "$T/kill.json" 'd["job"]["state"]')" = killed ]
call "{\"op\":\"job.kill\",\"id\":\"$KL\"}" >"$T/kill2.json"
check "3: killing it again is refused: finished" [ "$(js "$T/kill2.json" 'd["error"]["code"]')" = finished ]
check "3: the workers' MRDIR/$KL directories go, also of attempts still running" wait_until 15 sh -c "! ls -d '$T'/data-w/mr/*/'$KL' >/dev/null 2>&1"
check "3: no part file was written" [ ! -e "$T/out-kill/part-00000.tsv" ]

# ---- 4. purge removes the part files and the manifest, nothing else ----
echo mine >"$T/out-wc/keep.txt"
call "{\"op\":\"job.purge\",\"id\":\"$WC\"}" >"$T/purge.json"
check "4: purge removed 2 files" [ "$(js "$T/purge.json" 'd["removed"]')" = 2 ]
check "4: part file and manifest are gone" [ ! -e "$T/out-wc/part-00000.tsv" ] && [ ! -e "$T/out-wc/manifest.json" ]
check "4: other files of output.dir stay" [ "$(cat "$T/out-wc/keep.txt")" = mine ]
status "$WC"
check "4: the job is forgotten" [ "$(js "$T/st.json" 'd["error"]["code"]')" = not_found ]
try_submit again "$BYCOUNT"
check "4: a job reading it is refused" grep -q '"code":"invalid".*no job' "$T/sub-again.json"

# ---- 5. a slow first attempt gets a backup ----
cat >"$T/stallmap.sh" <<SH
if mkdir "$T/stalled" 2>/dev/null; then echo \$\$ >"$T/stalled/pid"; exec sleep 30; fi
exec sh "$T/slowmap.sh"
SH
t0=$(now_ms)
submit backup '{"name":"backup","inputs":[{"file":"'"$T/text.txt"'"}],"map":{"exec":["/bin/sh","'"$T/stallmap.sh"'"]},"reduce":"sum","output":{"dir":"'"$T/out-backup"'"}}' && BK=$ID
call "{\"op\":\"job.purge\",\"id\":\"$BK\"}" >"$T/purge-run.json"
check "5: purging a running job is refused: running" [ "$(js "$T/purge-run.json" 'd["error"]["code"]')" = running ]
wait_job "$BK" 25
took=$(( $(now_ms) - t0 ))
check "5: the job is done in ${took} ms, well before the first attempt's 30 s" [ "$(sfield 'j["state"]')" = done ] && [ $took -lt 15000 ]
check "5: status shows the backup" [ "$(sfield 'j["maps"]["backups"] >= 1')" = True ]
same "5: with the right output" "$T/out-backup/part-00000.tsv" "$T/want-alpha.tsv"
[ -f "$T/stalled/pid" ] && kill "$(cat "$T/stalled/pid")" 2>/dev/null

# ---- 6. workers killed with -9 in the map phase and in the reduce phase ----
submit wkill "$(slow_job wkill "$T/out-wkill" '{"exec":["/bin/sh","'"$T/slowreduce.sh"'"]}')" && WK=$ID
wait_cond 20 "$WK" 'j["maps"]["done"] >= 2 and j["state"] == "map"'
kill9 "$PID_w1"
start_w w3
wait_cond 40 "$WK" 'j["state"] == "reduce" and j["reduces"]["running"] == 1'
wait_until 10 sh -c "ls -d '$T'/data-w/mr/*/'$WK'/reduce-* >/dev/null 2>&1"
# the worker whose MRDIR holds the running reduce attempt: MRDIR is mr/w-PID
rdir=$(ls -d "$T"/data-w/mr/*/"$WK"/reduce-* 2>/dev/null | head -1)
rpid=$(echo "$rdir" | sed -n 's|.*/mr/w-\([0-9]*\)/.*|\1|p')
victim=""
for n in w2 w3; do eval "p=\$PID_$n"; [ "$p" = "$rpid" ] && victim=$n; done
check "6: the reduce runs on a worker of ours ($rdir)" [ -n "$victim" ]
[ -n "$victim" ] && eval "kill9 \$PID_$victim"
start_w w4
wait_job "$WK" 90
check "6: the job finishes" [ "$(sfield 'j["state"]')" = done ]
same "6: with the same output" "$T/out-wkill/part-00000.tsv" "$T/want-100.tsv"

# ---- 7. mr_local_read off: a map output lost before the reduce is computed again ----
for n in w2 w3 w4; do eval "p=\$PID_$n"; [ -n "$p" ] && stop_pid "$p"; done
write_cluster false
# 3 partitions: three reduces report the one loss
submit lost "$(wc_job lost "$T/out-lost" '"chunk_bytes":4096,' | sed -e "s|$T/text.txt|$T/text100.txt|" -e 's|"partitions":1|"partitions":3|')" && LO=$ID
# queued behind the maps: keeps the only worker busy while the reduce is queued
wait_cond 10 "$LO" 'j["maps"]["running"] == j["maps"]["total"]'
"$NODE" --name m submit --queue mapreduce sleep 3000 >"$T/sleep.id" 2>&1
start_w w5 --concurrency 1 --prefetch 0
wait_cond 30 "$LO" 'j["maps"]["done"] == j["maps"]["total"]'
check "7: no reduce has run yet" [ "$(sfield 'j["reduces"]["done"]')" = 0 ]
kill9 "$PID_w5"
start_w w6
wait_job "$LO" 60
check "7: the job finishes" [ "$(sfield 'j["state"]')" = done ]
check "7: the lost map outputs were computed again, a loss counted once" [ "$(sfield 'j["maps"]["reruns"] == 1 and j["maps"]["done"] == j["maps"]["total"]')" = True ]
cat "$T"/out-lost/part-0000[0-2].tsv | LC_ALL=C sort >"$T/lost-all.tsv"
same "7: with the right output in 3 part files" "$T/lost-all.tsv" "$T/want-100.tsv"
grep -q 'lost map output' "$MLOG" || fail "7: the master log does not mention the lost map output"

# ---- 8. a job without records; the journal read back from its snapshot ----
: >"$T/empty.txt"
submit empty "$(wc_job empty "$T/out-empty" | sed "s|$T/text.txt|$T/empty.txt|")" && EM=$ID
wait_job "$EM" 30
check "8: an empty input still makes one map task, and an empty part file" \
    [ "$(sfield 'j["state"] == "done" and j["maps"]["total"] == 1')" = True ] && [ -f "$T/out-empty/part-00000.tsv" ] && [ ! -s "$T/out-empty/part-00000.tsv" ]
call '{"op":"job.list"}' >"$T/list-before.json"
stop_pid "$PID_master"
check "8: the master stops cleanly" [ "$STOP_RC" = 0 ]
write_cluster false '"max_jobs": 7,'
start_master
call '{"op":"job.list"}' >"$T/list-after.json"
listed() { js "$1" '[(j["id"], j["state"], j["maps"]["done"], j["reduces"]["done"], j["records_out"]) for j in d["jobs"]]'; }
check "8: after a restart job.list is the same" [ "$(listed "$T/list-before.json")" = "$(listed "$T/list-after.json")" ]
check "8: ... with 7 jobs in it" [ "$(js "$T/list-after.json" 'len(d["jobs"])')" = 7 ]
try_submit full "$(wc_job full "$T/out-full")"
check "8: beyond max_jobs a submit is refused: limit" grep -q '"code":"limit"' "$T/sub-full.json"

check_no_sanitizer
finish
