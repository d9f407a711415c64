# The task-queue client commands against a real broker and real workers:
# the seed scenarios of EXAMPLES.md (add, sqrt, fibo with ids, queues by type
# with a crawl of a loopback page, ready-or-wait with a timeout), bad input,
# dead letters, and the listings (status, queues, workers).
. "$(dirname "$0")/../lib.sh"
PORT=$(free_port)
URL=tcp://127.0.0.1:$PORT
cat >"$T/c.json" <<JSON
{
  "cluster": "client-test",
  "defaults": { "timeout_ms": 5000 },
  "queues": { "poison": { "max_deliveries": 1 } },
  "nodes": {
    "b": { "host": "127.0.0.1", "roles": { "broker": { "listen": "$URL", "lease_ms": 1000 } } },
    "w1": { "host": "127.0.0.1", "roles": { "worker": { "queues": ["default", "fibo", "sqrt"], "concurrency": 2 } } },
    "w2": { "host": "127.0.0.1", "roles": { "worker": { "queues": ["webcrawler"], "concurrency": 1 } } }
  }
}
JSON
export NODE_CONFIG="$T/c.json" # client commands find the broker here
UUID='[0-9a-f]\{8\}-[0-9a-f]\{4\}-[0-9a-f]\{4\}-[0-9a-f]\{4\}-[0-9a-f]\{12\}'
ISO='[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]\{3\}Z'

start broker "$NODE" --name b --data-dir "$T/data-b" broker
wait_for "$T/broker.log" 'listening on' || { fail "broker did not start"; finish; }
start w1 "$NODE" --name w1 --data-dir "$T/data-w1" worker
wait_for "$T/w1.log" 'consuming' || { fail "worker w1 did not start"; finish; }

# ---- add, sqrt, echo ----
"$NODE" submit add 5 5 --wait --timeout 20 >"$T/add" 2>&1
rc=$?
check "submit add 5 5 --wait prints ID: 10 and exits 0" sh -c "[ $rc = 0 ] && grep -q '^$UUID: 10\$' '$T/add'"
"$NODE" submit sqrt 4 --wait --timeout 20 >"$T/sqrt" 2>&1
check "submit sqrt 4 --wait prints 2" grep -q "^$UUID: 2\(\.0\)\?\$" "$T/sqrt"
"$NODE" submit echo hello --wait --timeout 20 >"$T/echo" 2>&1
check "a word that is not JSON is sent as a string" grep -q ": hello\$" "$T/echo"
"$NODE" submit add 1 2 --wait --timeout 20 --json >"$T/addj" 2>&1
check "submit --wait --json prints {id, state, value}" python3 -c "
import json; d = json.loads(open('$T/addj').read())
assert d['state'] == 'succeeded' and d['value'] == 3 and len(d['id']) == 36, d"
id=$("$NODE" submit add 2 3 2>"$T/err")
check "submit prints the task id" sh -c "echo '$id' | grep -q '^$UUID\$'"
"$NODE" result "$id" --wait --timeout 20 >"$T/r1" 2>&1
check "result --wait prints the value" grep -qx 5 "$T/r1"
"$NODE" result "$id" >"$T/r2" 2>&1
check "result without --wait prints a finished value" grep -qx 5 "$T/r2"
"$NODE" result "$id" --json >"$T/r3" 2>&1
check "result --json prints the broker's entry" grep -q '"state":"succeeded","value":5' "$T/r3"
"$NODE" submit add 1 1 --id my-task.1 >"$T/own" 2>&1
check "submit --id uses the given id" grep -qx 'my-task.1' "$T/own"

# ---- status and workers ----
"$NODE" status "$id" >"$T/st" 2>&1
check "status shows the state" grep -q '^state  *succeeded$' "$T/st"
check "status shows name and queue" sh -c "grep -q '^name  *add\$' '$T/st' && grep -q '^queue  *default\$' '$T/st'"
check "status shows ISO-8601 UTC times with ms and durations" sh -c "grep -q '^submitted  *$ISO' '$T/st' && grep -q '^finished  *$ISO  (ran ' '$T/st'"
check "status shows args and result" sh -c "grep -q '^args  *\[2,3\]\$' '$T/st' && grep -q '^result  *5\$' '$T/st'"
"$NODE" status "$id" --json >"$T/stj" 2>&1
check "status --json is the task object" python3 -c "
import json; d = json.loads(open('$T/stj').read())
assert d['id'] == '$id' and d['deliveries'] == 1 and d['finished_ms'] >= d['submitted_ms'], d"
"$NODE" workers >"$T/wk" 2>&1
check "workers lists w1 with its queues, online" grep -q '^w1[^ ]*  *default,fibo,sqrt  *2  *[0-9]*  *[0-9.]* s ago  *yes' "$T/wk"
"$NODE" workers --json >"$T/wkj" 2>&1
check "workers --json prints one object per worker" python3 -c "
import json; ws = [json.loads(l) for l in open('$T/wkj')]
assert any(w['name'].startswith('w1') and w['online'] for w in ws), ws"

# ---- fibo with ids (conf/examples/fibo.sh) ----
NODE="$NODE" FIBO_WAIT=20 sh "$ROOT/conf/examples/fibo.sh" >"$T/fibo" 2>&1
rc=$?
check "fibo.sh exits 0" [ $rc = 0 ]
n=0
for pair in 4:3 3:2 8:21 6:8 10:55; do
	grep -q "^Value \[${pair%%:*}\] -> ${pair#*:} (task $UUID)\$" "$T/fibo" && n=$((n + 1))
done
check "fibo 4 3 8 6 10 -> 3 2 21 8 55, each with its task id" [ $n = 5 ]
fid=$(sed -n 's/^Value \[8\] -> 21 (task \(.*\))$/\1/p' "$T/fibo")
"$NODE" status "$fid" >"$T/fst" 2>&1
check "the fibo tasks ran on the queue fibo" sh -c "grep -q '^queue  *fibo\$' '$T/fst' && grep -q '^args  *\[8\]\$' '$T/fst'"

# ---- ready or wait (conf/examples/tasks.sh) ----
NODE="$NODE" sh "$ROOT/conf/examples/tasks.sh" >"$T/tasks" 2>&1
rc=$?
check "tasks.sh exits 0 (add, sqrt, ready-or-wait as expected)" [ $rc = 0 ]
check "result without --wait says not ready, with the state" grep -q ": not ready (state \(queued\|started\))\$" "$T/tasks"
check "result --wait --timeout 1 says not ready after 1 s" grep -q ": not ready after 1 s\$" "$T/tasks"
sid=$("$NODE" submit sleep 2000)
"$NODE" result "$sid" >"$T/nr" 2>&1
rc=$?
check "result of an unfinished task exits 1" [ $rc = 1 ]
started_wait() { # until `node status` says $1 started (bounded: 5 s)
	i=0
	while [ $i -lt 50 ]; do
		"$NODE" status "$1" >"$T/sst" 2>&1
		grep -q '^state  *started' "$T/sst" && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}
check "status of a running task says started" started_wait "$sid"
check "status of a running task names its worker and how long it runs" sh -c "grep -q '^worker  *w1' '$T/sst' && grep -q 'running for ' '$T/sst'"
"$NODE" result "$sid" --wait --timeout 1 >"$T/nr2" 2>&1
rc=$?
check "result --wait that runs out of time exits 5" sh -c "[ $rc = 5 ] && grep -q '^$sid: not ready after 1 s\$' '$T/nr2'"
"$NODE" submit sleep 1500 --wait --timeout 1 >"$T/nr3" 2>&1
rc=$?
check "submit --wait --timeout 1 on a longer task exits 5, not ready after 1 s" sh -c "[ $rc = 5 ] && grep -q ': not ready after 1 s\$' '$T/nr3'"
"$NODE" result "$sid" --wait --timeout 20 >"$T/nr4" 2>&1
check "the same task then finishes" grep -qx 2000 "$T/nr4"
"$NODE" result no-such-task >"$T/pend" 2>&1
rc=$?
check "an unknown id is pending, not ready" sh -c "[ $rc = 1 ] && grep -q 'not ready (state pending)' '$T/pend'"

# ---- queues by type: webcrawler waits until a worker consumes it ----
mkdir -p "$T/www"
cat >"$T/www/index.html" <<'HTML'
<html><body><a href="/a.html">a</a> <p>text</p> <a class="x" href="http://127.0.0.1/b">b</a></body></html>
HTML
WPORT=$(free_port)
start web python3 -u -m http.server --bind 127.0.0.1 --directory "$T/www" "$WPORT"
wait_for "$T/web.log" 'Serving HTTP' || fail "the loopback web server did not start"
cid=$("$NODE" submit crawl "http://127.0.0.1:$WPORT/" 10 --queue webcrawler)
sleep 0.5
"$NODE" result "$cid" >"$T/c1" 2>&1
check "a task on a queue nobody consumes waits (queued)" grep -q 'not ready (state queued)' "$T/c1"
"$NODE" queues >"$T/q" 2>&1
check "queues shows webcrawler with depth 1 and no consumer" grep -q '^webcrawler  *1  *0  *0 ' "$T/q"
check "queues says the task is waiting with no consumer" grep -q '^queue webcrawler: 1 task waiting, no worker consumes it' "$T/q"
check "queues shows fibo consumed by w1 with 5 succeeded" grep -q '^fibo  *0  *0  *1  *5  *5  *0  *0 ' "$T/q"
"$NODE" queues --json >"$T/qj" 2>&1
check "queues --json prints one object per queue" python3 -c "
import json; qs = {q['name']: q for q in map(json.loads, open('$T/qj'))}
assert qs['webcrawler']['depth'] == 1 and qs['webcrawler']['consumers'] == 0, qs"
start w2 "$NODE" --name w2 --data-dir "$T/data-w2" worker
wait_for "$T/w2.log" 'consuming' || fail "worker w2 did not start"
"$NODE" result "$cid" --wait --timeout 20 >"$T/c2" 2>&1
check "a second worker for webcrawler picks it up: the crawl returns the page's links" python3 -c "
import json; d = json.loads(open('$T/c2').read())
assert d['links'] == ['/a.html', 'http://127.0.0.1/b'], d"
"$NODE" status "$cid" >"$T/cst" 2>&1
check "the crawl ran on the queue webcrawler" grep -q '^queue  *webcrawler$' "$T/cst"

# ---- many tasks: batches, ids in order, resubmitting the same ids ----
python3 -c "
import json
json.dump([{'id': 'm-%d' % i, 'name': 'add', 'args': [i, i]} for i in range(3000)], open('$T/many.json', 'w'))"
"$NODE" submit "$T/many.json" --batch 700 >"$T/mids" 2>&1
check "submit FILE prints the ids in order" python3 -c "
ids = open('$T/mids').read().split()
assert ids == ['m-%d' % i for i in range(3000)], ids[:3]"
"$NODE" queues --json >"$T/qa" 2>&1
"$NODE" submit "$T/many.json" --wait --timeout 60 >"$T/mres" 2>&1
rc=$?
check "submit FILE --wait prints every result, exit 0" sh -c "[ $rc = 0 ] && [ \$(wc -l <'$T/mres') = 3000 ]"
check "each result belongs to its task" python3 -c "
for l in open('$T/mres'):
    i, v = l.split(': ')
    assert int(v) == 2 * int(i[2:]), l"
"$NODE" queues --json >"$T/qb" 2>&1
check "submitting the same ids again creates no new tasks" python3 -c "
import json
a = {q['name']: q for q in map(json.loads, open('$T/qa'))}['default']['submitted']
b = {q['name']: q for q in map(json.loads, open('$T/qb'))}['default']['submitted']
assert a == b, (a, b)"
printf '[{"name":"echo","args":["x"]},{"name":"echo","args":["y"]}]' | "$NODE" submit - --json >"$T/stdin" 2>&1
check "submit - reads tasks from stdin; --json prints {id} lines" sh -c "[ \$(grep -c '^{\"id\":\"$UUID\"}\$' '$T/stdin') = 2 ]"

# ---- bad input ----
printf '[{"name": "add", "args": [1, 2]},\n {"name": "add", "args": [1, 2}]\n' >"$T/bad1.json"
"$NODE" submit "$T/bad1.json" >"$T/b1" 2>&1
rc=$?
check "a malformed task file exits 2 naming the file, line and column" sh -c "[ $rc = 2 ] && grep -q 'bad1.json:2:[0-9]*: invalid JSON' '$T/b1'"
printf '[{"name": "add", "args": [1, 2]},\n {"name": "add", "args": [1, 2], "priority": "high"}]\n' >"$T/bad2.json"
"$NODE" submit "$T/bad2.json" >"$T/b2" 2>&1
rc=$?
check "a wrong type exits 2 naming the file, index and field" sh -c "[ $rc = 2 ] && grep -q 'bad2.json: \[1\]: priority: expected an integer from 0 to 9, got \"high\"' '$T/b2'"
check "nothing of a bad file is submitted" sh -c "! grep -q '$UUID' '$T/b2'"
printf '{"name": "add", "args": 5}' >"$T/bad3.json"
"$NODE" submit "$T/bad3.json" >"$T/b3" 2>&1
check "args that are not an array are refused" sh -c "[ $? = 2 ] && grep -q 'args: expected an array, got 5' '$T/b3'"
printf '{"name": "add", "arg": [5]}' >"$T/bad4.json"
"$NODE" submit "$T/bad4.json" >"$T/b4" 2>&1
check "an unknown key is refused" sh -c "[ $? = 2 ] && grep -q 'unknown key \"arg\"' '$T/b4'"
"$NODE" submit add 1 2 --priority high >"$T/b5" 2>&1
check "--priority high exits 2" sh -c "[ $? = 2 ] && grep -q -- '--priority: expected an integer from 0 to 9' '$T/b5'"
"$NODE" submit add 1 2 --kwargs '[1]' >"$T/b6" 2>&1
check "--kwargs that is not an object exits 2" [ $? = 2 ]
"$NODE" submit "$T/missing.json" >"$T/b7" 2>&1
check "a missing task file is an error naming it" sh -c "[ $? != 0 ] && grep -q 'missing.json' '$T/b7'"
"$NODE" submit no-such-task 1 --wait --timeout 20 >"$T/b8" 2>"$T/b8e"
rc=$?
check "an unknown task name is a failed result: exit 1, message on stderr" sh -c "[ $rc = 1 ] && grep -q '^$UUID: failed: .*no-such-task' '$T/b8e'"
"$NODE" submit fail "it broke" --wait --timeout 20 >"$T/b9" 2>"$T/b9e"
rc=$?
check "a failing task prints ID: failed: MESSAGE on stderr and exits 1" sh -c "[ $rc = 1 ] && grep -q '^$UUID: failed: .*it broke' '$T/b9e'"
"$NODE" submit "bad name" 1 >"$T/b10" 2>&1
rc=$?
check "the broker's refusal exits 1 with its message" sh -c "[ $rc = 1 ] && grep -q 'refused.*tasks\[0\]\.name' '$T/b10'"
python3 -c "
import json; json.dump({'name': 'echo', 'args': ['a' * (5 << 20)]}, open('$T/big.json', 'w'))"
"$NODE" submit "$T/big.json" >"$T/b11" 2>&1
rc=$?
check "oversize args are refused with exit 1" sh -c "[ $rc = 1 ] && grep -q 'longer than\|too large\|exceeds' '$T/b11'"
"$NODE" queues >"$T/b12" 2>&1
check "the broker still serves after bad input" grep -q '^default ' "$T/b12"
"$NODE" status no-such-task >"$T/b13" 2>&1
check "status of an unknown id exits 1 and says so" sh -c "[ $? = 1 ] && grep -q 'no task no-such-task' '$T/b13'"
dport=$(free_port)
"$NODE" --timeout 300 queues --broker "tcp://127.0.0.1:$dport" >"$T/b14" 2>&1
rc=$?
check "a broker that does not answer: exit 5 naming it" sh -c "[ $rc = 5 ] && grep -q 'broker tcp://127.0.0.1:$dport did not answer in 300 ms' '$T/b14'"
"$NODE" --timeout 300 submit add 1 1 --broker "tcp://127.0.0.1:$dport" >"$T/b15" 2>&1
check "submit to a broker that does not answer exits 5" [ $? = 5 ]

# ---- dead letters: a task whose worker vanishes goes dead (max_deliveries 1) ----
ghost_take() { # a worker that registers, takes a task from poison and vanishes
	"$TOOLS/call" "$URL" '{"op":"register","worker":"ghost","queues":["poison"],"concurrency":1,"tasks":["echo"],"host":"127.0.0.1","pid":1}' 5000 >/dev/null 2>&1
	"$TOOLS/call" "$URL" '{"op":"fetch","worker":"ghost","queues":["poison"],"slots":1,"wait_ms":0}' 5000 >"$T/ghost" 2>&1
	grep -q "$1" "$T/ghost"
}
did=$("$NODE" submit echo doomed --queue poison)
check "a ghost worker takes the poison task" ghost_take "$did"
dead_wait() { # until `node dead list` shows $1 (bounded: 10 s)
	i=0
	while [ $i -lt 50 ]; do
		"$NODE" dead list >"$T/dl" 2>&1
		grep -q "^$1 " "$T/dl" && return 0
		sleep 0.2; i=$((i + 1))
	done
	return 1
}
check "after the lease runs out the task is dead" dead_wait "$did"
check "dead list shows id, name, queue and deliveries" grep -q "^$did  *echo  *poison  *1 " "$T/dl"
"$NODE" result "$did" >"$T/dr" 2>&1
check "result of a dead task exits 1 and says dead" sh -c "[ $? = 1 ] && grep -q '^$did: dead' '$T/dr'"
"$NODE" dead list --json >"$T/dlj" 2>&1
check "dead list --json prints one object per task" grep -q "\"id\":\"$did\"" "$T/dlj"
"$NODE" dead requeue "$did" >"$T/rq" 2>&1
check "dead requeue ID puts it back" grep -q '^requeued 1 task$' "$T/rq"
"$NODE" result "$did" >"$T/dr2" 2>&1
check "the requeued task is queued again" grep -q 'not ready (state queued)' "$T/dr2"
"$NODE" dead requeue "$did" >"$T/rq2" 2>&1
check "requeue of a task that is not dead exits 1" [ $? = 1 ]
ghost_take "$did"
check "it goes dead again" dead_wait "$did"
"$NODE" dead requeue --all --json >"$T/rqa" 2>&1
check "dead requeue --all --json" grep -q '^{"requeued":1}$' "$T/rqa"
ghost_take "$did"
dead_wait "$did"
"$NODE" dead purge >"$T/pg" 2>&1
check "dead purge drops them" grep -q '^purged 1 dead task$' "$T/pg"
"$NODE" dead list >"$T/dl2" 2>&1
check "nothing is dead after purge" grep -q '^no dead tasks$' "$T/dl2"
"$NODE" dead requeue >"$T/dru" 2>&1
check "dead requeue without ids or --all exits 2" [ $? = 2 ]

for p in $PID_w2 $PID_w1 $PID_web $PID_broker; do stop_pid "$p"; done
check "the broker stops cleanly" [ "$STOP_RC" = 0 ]
finish
