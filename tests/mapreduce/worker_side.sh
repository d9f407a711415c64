#!/bin/sh
# The worker side of MapReduce by hand, without the master: a real broker
# and two workers (w runs job programs, mr_exec true; v does not), mr.map
# and mr.reduce tasks sent with `node submit`, the part files checked
# against a word count done here; the map output server (mr.get, mr.clean)
# asked directly: path traversal, absolute paths and planted symbolic links
# refused; a reduce whose map outputs are gone fails with "lost map output:
# 0,1:"; the MapReduce directory of a dead worker is removed at start.
# NODE_BIN=path runs another node binary (a sanitizer build) with this build's tools.
. "$(dirname "$0")/../lib.sh"
[ -n "${NODE_BIN:-}" ] && NODE=$NODE_BIN
need() { for f in "$@"; do [ -x "$f" ] || { echo "missing $f (make tools)"; exit 77; }; done; }
need "$NODE" "$TOOLS/rawcall"
command -v python3 >/dev/null || { echo "python3 is needed"; exit 77; }

PORT=$(free_port)
URL=tcp://127.0.0.1:$PORT
cat >"$T/c.json" <<JSON
{
  "cluster": "mr-worker",
  "defaults": { "timeout_ms": 5000 },
  "nodes": {
    "b": { "host": "127.0.0.1", "roles": { "broker": { "listen": "$URL" } } },
    "w": { "host": "127.0.0.1", "roles": { "worker": { "queues": ["mapreduce"], "concurrency": 2, "mr_exec": true } } },
    "v": { "host": "127.0.0.1", "roles": { "worker": { "queues": ["mrv"], "mr_sort_mb": 1 } } },
    "u": { "host": "127.0.0.1", "roles": { "worker": { "queues": ["mru"], "mr_listen": "$URL" } } }
  }
}
JSON
export NODE_CONFIG="$T/c.json"
BROKER_DIR="$T/data-b"
start_broker || { fail "the broker did not start"; finish; }

# a dead worker of node w left its files: removed when the next one starts
dead=$(sh -c 'echo $$')
mkdir -p "$T/data-w/mr/w-$dead/j0/map-00000-a1" "$T/data-w/mr/other-$dead"
start w "$NODE" --name w --data-dir "$T/data-w" worker
wait_for "$T/w.log" 'map output server listening on' || { fail "worker w did not start"; finish; }
wait_for "$T/w.log" 'consuming' || { fail "worker w did not register"; finish; }
start v "$NODE" --name v --data-dir "$T/data-v" worker
wait_for "$T/v.log" 'consuming' || { fail "worker v did not start"; finish; }
MRURL=$(sed -n 's/.*map output server listening on \([^ ]*\) (MapReduce files in \([^;)]*\).*/\1/p' "$T/w.log" | head -1)
MRDIR=$(sed -n 's/.*map output server listening on \([^ ]*\) (MapReduce files in \([^;)]*\).*/\2/p' "$T/w.log" | head -1)
check "the map output server listens on a free port of the node's host" sh -c "echo '$MRURL' | grep -Eq '^tcp://127.0.0.1:[0-9]+$'"
check "MRDIR is DATA/mr/<node>-<pid>" [ "$MRDIR" = "$T/data-w/mr/w-$PID_w" ]
check "the directory of a dead worker of this node is removed" [ ! -d "$T/data-w/mr/w-$dead" ]
check "directories of other nodes are left alone" [ -d "$T/data-w/mr/other-$dead" ]
check "the log says job programs are allowed" grep -q 'job programs and plugins allowed' "$T/w.log"

# ---- the input: two chunks of one file, split in the middle of a line ----
python3 - "$T/in.txt" <<'PY'
import random, sys
random.seed(7)
words = "There are known knowns These are things we know that we know Don't stop-words naive café".split()
with open(sys.argv[1], "w") as f:
    for i in range(3000):
        f.write(" ".join(random.choice(words) for _ in range(random.randint(0, 12))) + ("\r\n" if i % 17 == 0 else "\n"))
PY
SIZE=$(wc -c <"$T/in.txt")
HALF=$((SIZE / 2))
python3 - "$T/in.txt" >"$T/want.tsv" <<'PY'
import re, sys, collections
c = collections.Counter(w.lower() for w in re.findall(rb"[A-Za-z]+", open(sys.argv[1], "rb").read()))
for w in sorted(c): print("%s\t%d" % (w.decode(), c[w]))
PY

# job JOB_ID MAP COMBINER REDUCE PARTITIONS: the normalised job, on stdout
job() {
	printf '{"name":"t","inputs":[{"file":"%s"}],"chunk_bytes":67108864,"map":%s,%s"reduce":%s,"partitions":%s,"partitioner":"hash","sort":"key","output":{"dir":"%s/out","format":"tsv"},"params":{}}' \
		"$T/in.txt" "$2" "${3:+\"combiner\":$3,}" "$4" "$5" "$T"
}
# map JOB_JSON ID TASK OFFSET LENGTH [QUEUE]: run mr.map, its result JSON in $T/map-ID-TASK.json
map() {
	printf '{"job_id":"%s","job":%s,"task":%s,"attempt":1,"input":{"file":"%s","offset":%s,"length":%s}}' \
		"$2" "$1" "$3" "$T/in.txt" "$4" "$5" >"$T/args"
	"$NODE" submit -q "${6:-mapreduce}" --wait --json --timeout 60 mr.map "$(cat "$T/args")" >"$T/map-$2-$3.out" 2>"$T/map-$2-$3.err"
}
# value FILE: the task's value of a `submit --wait --json` line
value() {
	python3 -c 'import json, sys; print(json.dumps(json.loads(open(sys.argv[1]).readline())["value"]))' "$1"
}
# sources ID HOST: the sources of both maps of job ID (HOST "" keeps theirs)
sources() {
	python3 - "$T/map-$1-0.out" "$T/map-$1-1.out" "$2" <<'PY'
import json, sys
out = []
for i, f in enumerate(sys.argv[1:3]):
    v = json.loads(open(f).readline())["value"]
    out.append({"task": i, "url": v["url"], "host": sys.argv[3] or v["host"], "path": v["path"], "dir": v["dir"]})
print(json.dumps(out))
PY
}
# reduce JOB_JSON ID PARTITION ATTEMPT HOST [QUEUE]: run mr.reduce into $T/red-ID-P-A.out
reduce() {
	printf '{"job_id":"%s","job":%s,"partition":%s,"attempt":%s,"sources":%s}' "$2" "$1" "$3" "$4" "$(sources "$2" "$5")" >"$T/args"
	"$NODE" submit -q "${6:-mapreduce}" --wait --json --timeout 60 mr.reduce "$(cat "$T/args")" >"$T/red-$2-$3-$4.out" 2>"$T/red-$2-$3-$4.err"
}
# part ID P A: the part file a reduce wrote
part() { python3 -c 'import json, sys; print(json.loads(open(sys.argv[1]).readline())["value"]["path"])' "$T/red-$1-$2-$3.out"; }

# ---- word count: built-in map and combiner, two partitions ----
J=$(job wc '"wordcount"' '"sum"' '"sum"' 2)
check "mr.map of chunk 0 succeeds" map "$J" wc 0 0 "$HALF"
check "mr.map of chunk 1 succeeds" map "$J" wc 1 "$HALF" "$((SIZE - HALF))"
check "a map result has dir, path, url, host, worker, parts, records and bytes" python3 - "$T/map-wc-0.out" "$MRURL" "$MRDIR" <<'PY'
import json, sys
v = json.loads(open(sys.argv[1]).readline())["value"]
assert v["dir"] == "wc/map-00000-a1" and v["path"] == sys.argv[3] + "/wc/map-00000-a1", v
assert v["url"] == sys.argv[2] and v["host"] and v["worker"].startswith("w-"), v
assert len(v["parts"]) == 2 and all(p > 0 for p in v["parts"]), v
assert v["records_in"] > 1000 and v["bytes_in"] > 1000 and v["records_out"] > 10, v
PY
check "the two chunks' bytes add up to the file" python3 - "$T/map-wc-0.out" "$T/map-wc-1.out" "$SIZE" <<'PY'
import json, sys
b = [json.loads(open(f).readline())["value"]["bytes_in"] for f in sys.argv[1:3]]
r = [json.loads(open(f).readline())["value"]["records_in"] for f in sys.argv[1:3]]
assert sum(b) == int(sys.argv[3]) and sum(r) == 3000, (b, r)
PY
check "mr.reduce of partition 0 (in place) succeeds" reduce "$J" wc 0 1 ""
check "mr.reduce of partition 1 (in place) succeeds" reduce "$J" wc 1 1 ""
cat "$(part wc 0 1)" "$(part wc 1 1)" | LC_ALL=C sort >"$T/got.tsv"
check "the part files hold the word count" cmp -s "$T/got.tsv" "$T/want.tsv"
check "a reduce result has file, path, url, host, worker, records and bytes" python3 - "$T/red-wc-0-1.out" "$MRDIR" <<'PY'
import json, os, sys
v = json.loads(open(sys.argv[1]).readline())["value"]
assert v["file"] == "wc/reduce-00000-a1/part-00000.tsv" and v["path"] == sys.argv[2] + "/" + v["file"], v
assert v["bytes"] == os.path.getsize(v["path"]) and v["records"] > 0 and v["worker"].startswith("w-"), v
PY
# the same sources as from another machine: fetched over mr.get
check "mr.reduce fetching over mr.get succeeds" reduce "$J" wc 0 2 elsewhere
check "and writes the same part file" cmp -s "$(part wc 0 1)" "$(part wc 0 2)"
check "fetched runs are removed once merged" [ ! -d "$MRDIR/wc/reduce-00000-a2/in" ]

# ---- URL inputs: Content-Length, chunked, a redirect, an error status ----
HPORT=$(free_port)
cat >"$T/httpd.py" <<'PY'
import http.server, sys
body = open(sys.argv[2], "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path == "/plain":
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body)
        elif self.path == "/chunked":
            self.send_response(200); self.send_header("Transfer-Encoding", "chunked"); self.end_headers()
            for i in range(0, len(body), 7777):
                c = body[i:i + 7777]
                self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(c), c))
            self.wfile.write(b"0\r\nX-Trailer: 1\r\n\r\n")
        elif self.path == "/redirect":
            self.send_response(302); self.send_header("Location", "/chunked"); self.send_header("Content-Length", "0"); self.end_headers()
        else:
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers()
s = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
print("ready", flush=True)
s.serve_forever()
PY
start httpd python3 "$T/httpd.py" "$HPORT" "$T/in.txt"
wait_for "$T/httpd.log" ready || fail "the test's HTTP server did not start"
# umap NAME PATH: mr.map of a URL input into $T/map-u-NAME.out
umap() {
	printf '{"job_id":"u","job":%s,"task":0,"attempt":1,"input":{"url":"http://127.0.0.1:%s%s"}}' "$J" "$HPORT" "$2" >"$T/args"
	"$NODE" submit -q mapreduce --wait --json --timeout 60 mr.map "$(cat "$T/args")" >"$T/map-u-$1.out" 2>&1
}
for u in plain chunked redirect; do
	umap "$u" "/$u"
	check "mr.map of a URL ($u) reads the whole body" python3 - "$T/map-u-$u.out" "$SIZE" <<'PY'
import json, sys
v = json.loads(open(sys.argv[1]).readline())["value"]
assert v["bytes_in"] == int(sys.argv[2]) and v["records_in"] == 3000, v
PY
done
umap missing /missing
check "a URL that answers 404 fails the map, naming the URL" grep -q "http://127.0.0.1:$HPORT/missing: HTTP 404" "$T/map-u-missing.out"
kill "$PID_httpd" 2>/dev/null

# ---- the map output server ----
get() { "$TOOLS/rawcall" "$MRURL" "$1" 5000 >"$T/get.out" 2>&1; }
check "mr.get of a part file answers with base64 data" sh -c "$TOOLS/rawcall '$MRURL' '{\"op\":\"mr.get\",\"path\":\"wc/reduce-00000-a1/part-00000.tsv\",\"max\":30}' 5000 | grep -q '\"eof\":false'"
for p in "../../../etc/passwd" "/etc/passwd" "wc/../../etc/passwd" "wc/map-00000-a1/../../../../etc/passwd" \
	"wc/map-00000-a1/part-00000.tsv" "wc/reduce-00000-a2/in/part-00000.run"; do
	get "{\"op\":\"mr.get\",\"path\":\"$p\"}"
	check "mr.get refuses $p" grep -q '"code":"invalid"' "$T/get.out"
done
mkdir -p "$MRDIR/wc/map-00099-a1"
ln -s /etc/passwd "$MRDIR/wc/map-00099-a1/part-00000.run"
get '{"op":"mr.get","path":"wc/map-00099-a1/part-00000.run"}'
check "mr.get does not follow a planted symbolic link" sh -c "grep -q '\"ok\":false' '$T/get.out' && ! grep -q root '$T/get.out'"
get '{"op":"mr.get","path":"wc/map-00042-a1/part-00000.run"}'
check "mr.get of a missing file: not_found" grep -q '"code":"not_found"' "$T/get.out"
get '{"op":"mr.clean","job":"../wc"}'
check "mr.clean refuses a bad job id" grep -q '"code":"invalid"' "$T/get.out"
get '{"op":"mr.clean","job":"wc"}'
check "mr.clean removes a job's files" sh -c "grep -q '\"removed\":true' '$T/get.out' && [ ! -d '$MRDIR/wc' ]"
get '{"op":"ping"}'
check "the map output server answers ping" grep -q '"ok":true' "$T/get.out"

# ---- the map outputs are gone: lost ----
reduce "$J" wc 0 3 elsewhere
check "a reduce without its map outputs fails with lost map output: 0,1:" grep -q '"error":"lost map output: 0,1: worker tcp://' "$T/red-wc-0-3.out"

# ---- streaming programs (w) and their refusal (v) ----
AWK='{"exec":["awk","{ for (i = 1; i <= NF; i++) print tolower($i) \"\\t1\" }"]}'
S=$(job st "$AWK" "" '{"exec":["awk","-F","\\t","{ n[$1] += $2 } END { for (k in n) print k \"\\t\" n[k] }"]}' 1)
check "a streaming mr.map succeeds" map "$S" st 0 0 "$HALF"
check "the second one too" map "$S" st 1 "$HALF" "$((SIZE - HALF))"
check "a streaming mr.reduce succeeds" reduce "$S" st 0 1 ""
LC_ALL=C sort "$(part st 0 1)" >"$T/st.got"
python3 - "$T/in.txt" <<'PY' | LC_ALL=C sort >"$T/st.want"
import collections, re, sys
# awk's fields: runs of blanks and tabs split a line; a '\r' stays in its word
c = collections.Counter(w.lower() for l in open(sys.argv[1], "rb").read().split(b"\n") for w in re.split(rb"[ \t]+", l) if w)
for w in c: sys.stdout.buffer.write(b"%s\t%d\n" % (w, c[w]))
PY
check "it counts the program's words" cmp -s "$T/st.got" "$T/st.want"
map "$S" st 0 0 "$HALF" mrv
check "a worker with mr_exec false refuses programs" grep -q 'roles.worker.mr_exec is false' "$T/map-st-0.out"
F=$(job fl '{"exec":["sh","-c","echo cannot parse line 1 >&2; exit 3"]}' "" '"count"' 1)
map "$F" fl 0 0 100
check "a failing program names itself, its status and its stderr" grep -q 'map program sh exited with status 3: cannot parse line 1' "$T/map-fl-0.out"

# ---- the built-ins on v (mr_exec false is no obstacle), one partition ----
J1=$(job one '"wordcount"' '"sum"' '"sum"' 1)
check "mr.map on v succeeds" map "$J1" one 0 0 "$HALF" mrv
check "and its second chunk" map "$J1" one 1 "$HALF" "$((SIZE - HALF))" mrv
check "mr.reduce on v succeeds" reduce "$J1" one 0 1 "" mrv
check "its one part file is the whole word count, sorted" cmp -s "$(part one 0 1)" "$T/want.tsv"

# ---- a worker whose map output server cannot listen: other tasks still run ----
start u "$NODE" --name u --data-dir "$T/data-u" worker
wait_for "$T/u.log" 'consuming' || fail "worker u did not start"
check "it warns that MapReduce tasks cannot run there" grep -q 'MapReduce tasks cannot run on this worker: map output server' "$T/u.log"
check "it runs other tasks" sh -c "'$NODE' submit -q mru --wait --timeout 30 add 2 3 | grep -q ': 5\$'"
map "$J" wc 0 0 100 mru
check "and fails MapReduce tasks saying why" grep -q 'this worker cannot run MapReduce tasks: map output server' "$T/map-wc-0.out"
stop_pid "$PID_u"
check "worker u stops cleanly" [ "$STOP_RC" = 0 ]

stop_pid "$PID_v"
check "worker v stops cleanly" [ "$STOP_RC" = 0 ]
stop_pid "$PID_w"
check "worker w stops cleanly" [ "$STOP_RC" = 0 ]
stop_cluster "$PID_broker"
check_no_sanitizer
finish
