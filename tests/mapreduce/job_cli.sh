#!/bin/sh
# node job against tests/tools/fake_master, a canned master (node job's
# half of node-protocol(7) MAPREDUCE MASTER): submit, --wait with progress,
# status, list, results (from the output dir, and through job.read), kill,
# purge, and every error with its exit status (node-job(1)).
. "$(dirname "$0")/../lib.sh"
FM="$TOOLS/fake_master"
[ -x "$FM" ] || { echo "no $FM: make tools"; exit 77; }

MURL=tcp://127.0.0.1:$(free_port)
cat >"$T/c.json" <<JSON
{
  "cluster": "job-test",
  "defaults": { "timeout_ms": 3000, "discovery": false },
  "nodes": { "m": { "host": "127.0.0.1", "roles": { "mapreduce": { "listen": "$MURL" } } } }
}
JSON
export NODE_CONFIG="$T/c.json"
start master "$FM" "$MURL" 30
wait_for "$T/master.log" '^ready' || { fail "the fake master did not start"; finish; }

W="$T/w"
mkdir -p "$W" && cd "$W" || exit 1
printf 'There are known knowns.\nThese are things we know that we know.\n' >words.txt

# mkjob NAME [MEMBERS]: the job file NAME.json (3 inputs, 2 partitions,
# output in out-NAME) with more top-level MEMBERS
mkjob() {
	cat >"$1.json" <<JSON
{ "name": "$1", "inputs": ["words.txt", {"text": "more words"}, {"text": "x"}],
  "map": "wordcount", "combiner": "sum", "reduce": "sum", "partitions": 2,
  "output": {"dir": "out-$1"}${2:+, $2} }
JSON
}
# nj NAME ARGS...: node job ARGS; stdout $T/NAME.out, stderr $T/NAME.err, status $RC
nj() {
	n=$1; shift
	"$NODE" job "$@" >"$T/$n.out" 2>"$T/$n.err"
	RC=$?
}
has() { grep -q -- "$2" "$T/$1"; }   # has FILE PATTERN
# exits STATUS PATTERN: the last nj exited STATUS with PATTERN on stderr
exits() { rc_is "$1" && grep -q -- "$2" "$T/$n.err" || { echo "stderr: $(cat "$T/$n.err")" >&2; return 1; }; }
rc_is() { [ "$RC" = "$1" ] || { echo "exit status $RC, not $1; stderr: $(cat "$T/$n.err")" >&2; return 1; }; }
# reads ID: how many job.read calls the master had for ID
reads() { grep -c "^job.read.at $1 " "$T/master.log"; }
submits() { grep -c '^job.submit ' "$T/master.log"; }
# json_get FILE EXPR: a Python expression of d, the JSON object in FILE
json_get() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# ---- submit, status, list, results ----

mkjob wordcount
nj sub submit wordcount.json
ID=$(cat "$T/sub.out")
check "submit exits 0" rc_is 0
check "submit prints the id (NAME-YYYYMMDD-HHMMSS-XXXX)" sh -c "echo '$ID' | grep -Eq '^wordcount-[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$'"
check "submit prints nothing else" [ ! -s "$T/sub.err" ]

mkjob wcwait
nj wait submit wcwait.json --wait
check "submit --wait exits 0 when the job is done" rc_is 0
check "--wait is quiet when stderr is not a terminal" [ ! -s "$T/wait.err" ]
WID=$(cat "$T/wait.out")

mkjob wcprog
nj prog submit wcprog.json --progress
check "submit --progress waits and exits 0" rc_is 0
check "--progress: a line while the maps run ('map 0/3, reduce 0/2, 0 s')" has prog.err '^\(queued, \)\{0,1\}map [0-2]/3, reduce 0/2, [0-9]* s$'
check "--progress: the last state before done" has prog.err '^map 3/3, reduce 2/2, [0-9]* s$'
check "--progress: then the end" sh -c "tail -1 '$T/prog.err' | grep -q '^job wcprog-[^ ]* done: 6 records in 2 part files in $W/out-wcprog$'"
check "--progress: nothing but progress lines and the end" sh -c "! grep -Ev '^((queued, )?map [0-3]/3, reduce [0-2]/2, [0-9]+ s|job wcprog-[^ ]* done: .*)$' '$T/prog.err'"
check "--progress: one line per change" sh -c "[ \$(sed 's/, [0-9]* s$//' '$T/prog.err' | sort | uniq -d | wc -l) = 0 ]"
check "--progress: several changes" [ "$(grep -c 'reduce' "$T/prog.err")" -ge 3 ]

if command -v script >/dev/null 2>&1; then
	mkjob wctty
	script -qec "'$NODE' job submit wctty.json --wait" /dev/null >"$T/tty.out" 2>&1
	check "on a terminal the line is redrawn with CR" sh -c "tr '\r' '\n' <'$T/tty.out' | grep -q '^map 3/3, reduce 2/2, [0-9]* s'"
	check "on a terminal the end comes on a line of its own" grep -q '^job wctty-.* done: 6 records' "$T/tty.out"
fi

mkjob wcjson
nj js submit wcjson.json --wait --json
check "submit --wait --json: the id line, then the final status" sh -c "head -1 '$T/js.out' | grep -q '^{\"id\":\"wcjson-' && tail -1 '$T/js.out' | grep -q '\"state\":\"done\"'"

nj st status "$ID"
check "status exits 0" rc_is 0
check "status: the state" has st.out '^state: *done$'
check "status: maps done/total" has st.out '^maps: *3/3 done, 0 running, 0 failed attempts, 0 backups$'
check "status: reduces" has st.out '^reduces: *2/2 done'
check "status: records in and out" has st.out '^records: *30 in, 6 out$'
check "status: times" has st.out '^finished: *20[0-9-]*T.*Z (.* after starting)$'
check "status: the output files in order" sh -c "grep -A2 '^output: *$W/out-wordcount (tsv)$' '$T/st.out' | tail -1 | grep -q 'out-wordcount/part-00001.tsv'"
nj stj status "$ID" --json
check "status --json: the raw status object" [ "$(json_get "$T/stj.out" 'd["state"], d["id"], len(d["output"]["files"]), d["version"] > 1')" = "('done', '$ID', 2, True)" ]

nj ls list
check "list: a table of ID NAME STATE MAPS REDUCES AGE" has ls.out '^ID  *NAME  *STATE  *MAPS  *REDUCES  *AGE$'
check "list: a row per job" sh -c "grep -q '^$ID  *wordcount  *done  *3/3  *2/2  *[0-9.]* [a-z]*' '$T/ls.out'"
check "list: newest first" sh -c "[ \"\$(sed -n 2p '$T/ls.out' | cut -d' ' -f1)\" != '$ID' ] && tail -1 '$T/ls.out' | grep -q '^$ID '"
nj lsj list --json
check "list --json: one status per line" sh -c "[ \$(wc -l <'$T/lsj.out') -ge 5 ] && python3 -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1])]' '$T/lsj.out' && grep -q '\"id\":\"$ID\"' '$T/lsj.out'"

cat out-wordcount/part-00000.tsv out-wordcount/part-00001.tsv >"$T/expect-local"
nj res results "$ID"
check "results exits 0" rc_is 0
check "results: every part file in order" cmp "$T/res.out" "$T/expect-local"
check "results: read from the output dir, not through the master" [ "$(reads "$ID")" = 0 ]

# ---- results through job.read ----

mkjob hidebig '"params": {"lines": 20000}'
HID=$("$NODE" job submit hidebig.json --wait)
cat out-hidebig/part-00000.tsv out-hidebig/part-00001.tsv >"$T/expect-hide"
nj hres results "$HID"
check "results of an output dir this machine does not see" rc_is 0
check "...come through job.read, exact" cmp "$T/hres.out" "$T/expect-hide"
check "...in several reads (the master sends 64 KiB at most)" [ "$(reads "$HID")" -ge 6 ]

mkjob stale
SID=$("$NODE" job submit stale.json --wait)
cat out-stale/part-00000.tsv out-stale/part-00001.tsv >"$T/expect-stale"
nj sres results "$SID"
check "a manifest of another job is not trusted: job.read" sh -c "cmp -s '$T/sres.out' '$T/expect-stale' && [ \$(grep -c '^job.read.at $SID ' '$T/master.log') -ge 2 ]"

cat >wcjl.json <<JSON
{ "name": "wcjl", "inputs": ["words.txt"], "map": "wordcount", "reduce": "sum", "partitions": 2,
  "output": {"dir": "out-wcjl", "format": "jsonl"}, "params": {"lines": 2} }
JSON
JID=$("$NODE" job submit wcjl.json --wait)
nj jres results "$JID"
check "results of a jsonl job" sh -c "[ \$(grep -c '^{\"key\":' '$T/jres.out') = 4 ]"

mkjob bigloc '"params": {"lines": 200000}'
BID=$("$NODE" job submit bigloc.json --wait)
("$NODE" job results "$BID"; echo $? >"$T/pipe.rc") 2>"$T/pipe.err" | head -1 >/dev/null
check "results into a closed pipe: 141 and no message" sh -c "[ \"\$(cat '$T/pipe.rc')\" = 141 ] && [ ! -s '$T/pipe.err' ]"

# ---- failed, timed out, killed, purged ----

mkjob failing
nj fl submit failing.json --wait
check "a failed job: --wait exits 1 with the job's error" exits 1 "^node job: job failing-.* failed: map task 1 failed 4 times: map program awk exited with status 3: boom$"
FID=$(cat "$T/fl.out")
nj fst status "$FID"
check "status of a failed job shows its error and retries" sh -c "grep -q '^error: *map task 1 failed 4 times' '$T/fst.out' && grep -q '4 failed attempts' '$T/fst.out'"
nj fres results "$FID"
check "results of a failed job: exit 1, why" exits 1 'failed, it has no results: map task 1' 

mkjob slow
t0=$(now_ms)
nj to submit slow.json --wait --timeout 1
t1=$(now_ms)
check "--timeout S ran out: exit 124" rc_is 124
check "...saying so" has to.err "is not finished after 1 s (--timeout); it goes on running"
check "...after about S seconds" [ $((t1 - t0)) -lt 4000 ]
SLOW=$(cat "$T/to.out")
nj early results "$SLOW"
check "results of a running job: exit 1, not done yet" exits 1 'is map, not done yet' 

bycount() { # the by-count chain of node-job(5) reading job $1
	cat >byc.json <<JSON
{ "name": "wordcount-by-count", "inputs": ["job:$1"], "map": "identity", "reduce": "identity",
  "sort": "value-desc", "output": {"dir": "wc-by-count"} }
JSON
}
bycount "$SLOW"
nj chain1 submit byc.json
check "a job reading a running job: the master's message, exit 2" exits 2 "inputs\[0\]: job $SLOW is map, not done"
bycount "$ID"
nj chain2 submit byc.json
check "a job reading a done job is accepted" rc_is 0

nj pr purge "$SLOW"
check "purge of a running job: exit 1, the master's message" exits 1 'is map (node job kill' 

# a waiting submit learns of the kill at once
mkjob slow2
"$NODE" job submit slow2.json --progress >"$T/w2.out" 2>"$T/w2.err" &
WP=$!
wait_for "$T/w2.err" '^map 0/3' 10
nj kl kill "$(cat "$T/w2.out")"
check "kill exits 0 and says killed" sh -c "[ $RC = 0 ] && grep -q ': killed$' '$T/kl.out'"
i=0; while kill -0 $WP 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
wait $WP; WRC=$?
check "the waiting submit exits 1: the job was killed" sh -c "[ $WRC = 1 ] && grep -q 'was killed$' '$T/w2.err'"
nj kl2 kill "$(cat "$T/w2.out")"
check "kill of a finished job: exit 1, the master's message" exits 1 'is killed already' 
nj kj kill "$SLOW" --json
check "kill --json: the status" sh -c "[ $RC = 0 ] && grep -q '\"state\":\"killed\"' '$T/kj.out'"

nj pg purge "$ID"
check "purge of a done job: its files go" sh -c "[ $RC = 0 ] && grep -q 'purged, 3 files removed' '$T/pg.out' && [ ! -e out-wordcount/part-00000.tsv ] && [ ! -e out-wordcount/manifest.json ]"
nj gone status "$ID"
check "a purged job is unknown: the master's message" exits 1 "^node job: no job $ID"
nj unk status nope-1
check "an unknown id: exit 1, the master's message" exits 1 '^node job: no job nope-1' 

# SIGTERM while waiting: exit 130, the job goes on
mkjob slow3
"$NODE" job submit slow3.json --progress >"$T/w3.out" 2>"$T/w3.err" &
WP=$!
wait_for "$T/w3.err" '^map 0/3' 10
kill -TERM $WP; wait $WP; WRC=$?
check "SIGTERM while waiting: 130, the job goes on" sh -c "[ $WRC = 130 ] && grep -q 'interrupted; job slow3-.* goes on running' '$T/w3.err'"

# ---- bad job files: exit 2 with the JSON path, nothing sent ----

n0=$(submits)
bad() { # bad DESCRIPTION PATTERN FILE
	nj bad submit "$3"
	check "$1: exit 2, $2" exits 2 "$2"
}
mkjob b1 && sed -i 's/"words.txt"/"nope.txt"/' b1.json
bad "missing input" "b1.json: inputs\[0\]: cannot read $W/nope.txt: No such file or directory" b1.json
mkjob b2 && sed -i 's/"map": "wordcount"/"map": "wordcont"/' b2.json
bad "unknown function" 'b2.json: map: unknown function "wordcont"' b2.json
bad "no such job file" "cannot open $W/none.json: No such file or directory" "$W/none.json"
bad "a directory as the job file" "cannot read $W: Is a directory" "$W"
mkdir -p ro && chmod 555 ro
RO="$W/ro/sub"
[ -w ro ] && RO=/proc/sys/kernel # root writes anywhere else
mkjob b3 && sed -i "s|\"dir\": \"out-b3\"|\"dir\": \"$RO\"|" b3.json
bad "output dir not writable" "b3.json: output.dir: cannot " b3.json
mkjob b4 && sed -i 's/"name": "b4"/"name": "..\/x"/' b4.json
bad "a name with a path" 'b4.json: name: expected 1 to 100 of A-Z a-z 0-9 . _ - (not starting with . or -), got "../x"' b4.json
printf '{"name": "x",\n "inputs": [}\n' >b5.json
bad "malformed JSON" 'b5.json: malformed JSON at line 2, column' b5.json
check "no bad job reached the master" [ "$(submits)" = "$n0" ]
mkjob refuse
nj lim submit refuse.json
check "the master's refusal: exit 1, its message" exits 1 'too many jobs' 

# ---- no master, usage ----

DEAD=tcp://127.0.0.1:$(free_port)
nj dead list --master "$DEAD" --timeout 500
check "master not running: exit 3, naming the URL" exits 3 "mapreduce master $DEAD did not answer" 
nj dead2 submit wcwait.json --master "$DEAD" --timeout 500
check "submit to a master not running: exit 3" rc_is 3
cat >"$T/nomr.json" <<JSON
{ "cluster": "x", "defaults": { "discovery": false },
  "nodes": { "b": { "roles": { "broker": { "listen": "tcp://127.0.0.1:1" } } } } }
JSON
NODE_CONFIG="$T/nomr.json" "$NODE" job list >/dev/null 2>"$T/nomr.err"; RC=$?
check "no mapreduce role in the cluster file: exit 3, what to do" sh -c "[ $RC = 3 ] && grep -q 'runs the mapreduce role.*--master URL' '$T/nomr.err'"
nj u1 frob; check "unknown subcommand: 2" rc_is 2
nj u2; check "no subcommand: 2" rc_is 2
nj u3 status; check "status without an ID: 2" rc_is 2
nj u4 status ../x; check "an id that cannot be one: 2" rc_is 2
nj u5 list --wait; check "--wait of another subcommand: 2" rc_is 2
nj u6 submit; check "submit without a file: 2" rc_is 2
nj u7 list --master foo://x; check "a URL nng cannot dial: 2" rc_is 2

stop_pid "$PID_master"
check "the fake master stops cleanly" [ "$STOP_RC" = 0 ]
check_no_sanitizer
finish
