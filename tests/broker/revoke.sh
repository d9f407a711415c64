# Revoke: a queued task is cancelled before it starts. It finishes at once
# as revoked (status, result, a parked get wakes), stays revoked across a
# kill -9 of the broker and a compaction, and never runs when a worker comes
# for its queue; its result expires like any other. Started, finished and
# unknown tasks are not revoked, with the reason; revoking twice is fine; bad
# requests get bad_args. Every get entry of a finished task says which
# worker ran it and when.
. "$(dirname "$0")/../lib.sh"
cluster_file revoke-test '"lease_ms": 1500, "batch_ms": 50, "compact_mb": 1, "segment_mb": 1' \
	'"concurrency": 2' '"queues": { "scratch": { "result_ttl_s": 1 } }'

# req NAME JSON|@FILE [TIMEOUT_MS]: one call; reply or error in $T/NAME, exit status in $RC
req() {
	"$TOOLS/call" "$URL" "$2" "${3:-5000}" >"$T/$1" 2>&1
	RC=$?
}
code_is() { grep -q "\"ok\":false,\"error\":{\"code\":\"$2\"" "$T/$1"; }
alive() { "$TOOLS/call" "$URL" '{"op":"ping"}' 3000 2>/dev/null | grep -q '"role":"broker"'; }
# revoke NAME ID...: node revoke; output in $T/NAME, exit status in $RC
revoke() {
	n=$1; shift
	"$NODE" revoke "$@" >"$T/$n" 2>&1
	RC=$?
}
# queue_count QUEUE KEY: a member of the queue's entry in `node queues --json`
queue_count() {
	"$NODE" queues --json 2>/dev/null | python3 -c 'import json, sys
for l in sys.stdin:
    q = json.loads(l)
    if q["name"] == sys.argv[1]: print(q.get(sys.argv[2]))' "$1" "$2"
}
revokes() { # revokes ID: how many revoke records ("t":"v") the journal and snapshot hold for ID
	cat "$DATA"/*.log 2>/dev/null | grep -a -o "\"t\":\"v\",\"id\":\"$1\"" | wc -l
}

start_broker 20 || { fail "broker did not start"; finish; }

# ---- a task on a queue nobody consumes is revoked, and finishes at once ----
"$NODE" submit echo never --queue idle --id rv-1 >/dev/null 2>&1
"$NODE" submit echo later --queue idle --id rv-2 >/dev/null 2>&1
start getter "$TOOLS/call" "$URL" '{"op":"get","ids":["rv-1"],"wait_ms":20000}' 25000
sleep 0.3 # (the get parks; if it has not yet, it answers at once after the revoke)
revoke r1 rv-1
check "node revoke of a queued task exits 0 ($RC) and says revoked" sh -c "[ $RC = 0 ] && grep -qx 'rv-1: revoked' '$T/r1'"
i=0
while [ $i -lt 50 ] && kill -0 "$PID_getter" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
check "a get parked on the task is answered once it is revoked" sh -c "! kill -0 $PID_getter 2>/dev/null"
check "with state revoked and the error" \
	grep -q '"id":"rv-1","state":"revoked","error":"revoked before it started"' "$T/getter.log"
st rv-1
check "status says revoked ($(field rv-1 state)) with the error, finished_ms set, never delivered" python3 -c "
import json; d = json.load(open('$T/st-rv-1.json'))
assert d['state'] == 'revoked' and d['error'] == 'revoked before it started', d
assert d['finished_ms'] >= d['submitted_ms'] > 0 and d['deliveries'] == 0, d
assert 'worker' not in d and 'started_ms' not in d, d"
"$NODE" status rv-1 >"$T/st-text" 2>&1
check "node status prints state revoked and the error" \
	sh -c "grep -q '^state  *revoked' '$T/st-text' && grep -q '^error  *revoked before it started' '$T/st-text'"
t0=$(now_ms)
"$NODE" result rv-1 --json >"$T/res" 2>&1
rc=$? el=$(( $(now_ms) - t0 ))
check "node result --json answers at once ($el ms, exit $rc) with the revoked error" \
	sh -c "[ $rc = 1 ] && [ $el -lt 3000 ] && grep -q '\"state\":\"revoked\",\"error\":\"revoked before it started\"' '$T/res'"
t0=$(now_ms)
timeout 20 "$NODE" result rv-1 --wait >"$T/resw" 2>&1
rc=$? el=$(( $(now_ms) - t0 ))
check "node result --wait ends at once ($el ms, exit $rc): revoked is finished" \
	sh -c "[ $rc = 1 ] && [ $el -lt 3000 ] && grep -q 'rv-1: revoked: revoked before it started' '$T/resw'"
t0=$(now_ms)
req g1 '{"op":"get","ids":["rv-1"],"wait_ms":10000}' 15000
el=$(( $(now_ms) - t0 ))
check "a get with wait_ms 10000 returns at once ($el ms): revoked is finished" \
	sh -c "[ $el -lt 3000 ] && grep -q '\"state\":\"revoked\"' '$T/g1'"
revoke r2 rv-1
check "revoking it again is fine: exit 0, revoked" sh -c "[ $RC = 0 ] && grep -qx 'rv-1: revoked' '$T/r2'"
check "the queue counts 1 revoked ($(queue_count idle revoked)) and rv-2 still waits (depth $(queue_count idle depth))" \
	[ "$(queue_count idle revoked)" = 1 -a "$(queue_count idle depth)" = 1 ]
check "node queues shows a REVOKED column: 1 for idle" sh -c \
	"'$NODE' queues | awk 'NR == 1 { for (i = 1; i <= NF; i++) if (\$i == \"REVOKED\") c = i } \$1 == \"idle\" { print \$c }' | grep -qx 1"
check "the journal holds one revoke record for rv-1 ($(revokes rv-1)): a second revoke writes none" [ "$(revokes rv-1)" = 1 ]
check "the broker logs the revoke" grep -q 'task rv-1 revoked before it started' "$T/broker.log"

# ---- kill -9 and restart: still revoked ----
sleep 0.2
kill9 "$PID_broker"
mv "$T/broker.log" "$T/broker-1.log"
start_broker 20 || { fail "broker did not restart after kill -9"; finish; }
check "no record was skipped on replay" sh -c "! grep -q 'skipped a record' '$T/broker.log'"
st rv-1
check "after kill -9 rv-1 is still revoked ($(field rv-1 state)) with its error" \
	sh -c "[ '$(field rv-1 state)' = revoked ] && [ '$(field rv-1 error)' = 'revoked before it started' ]"
st rv-2
check "rv-2 is still queued after the restart ($(field rv-2 state))" [ "$(field rv-2 state)" = queued ]
check "the replayed queue counts 1 revoked ($(queue_count idle revoked))" [ "$(queue_count idle revoked)" = 1 ]
req r3 '{"op":"revoke","ids":["rv-1"]}'
check "revoke after the restart: revoked true (idempotent)" \
	grep -q '^{"ok":true,"results":\[{"id":"rv-1","revoked":true,"state":"revoked"}\]}$' "$T/r3"

# ---- a worker for that queue runs the later task, never the revoked one ----
start_worker W w --queues idle || finish
"$NODE" result rv-2 --wait --timeout 20 >"$T/rv2" 2>&1
check "the later task on the same queue runs" grep -qx later "$T/rv2"
sleep 0.5
st rv-1
check "the revoked task never ran: still revoked, 0 deliveries, no worker" \
	sh -c "[ '$(field rv-1 state)' = revoked ] && [ '$(field rv-1 deliveries)' = 0 ] && [ -z '$(field rv-1 worker)' ]"
check "and has no result record ($(finishes rv-1))" [ "$(finishes rv-1)" = 0 ]

# ---- what is not revoked, and why ----
"$NODE" submit sleep 2000 --queue idle --id rv-s >/dev/null 2>&1
check "rv-s (sleep 2000) starts on $W" wait_state rv-s started "$W" 10
revoke r4 rv-s
check "revoking a started task exits 1: not revoked, it has started" \
	sh -c "[ $RC = 1 ] && grep -qx 'rv-s: not revoked: the task has started' '$T/r4'"
"$NODE" result rv-s --wait --timeout 20 >"$T/rvs" 2>&1
check "the started task runs to its end" grep -qx 2000 "$T/rvs"
revoke r5 rv-2
check "revoking a finished task: not revoked, already finished (succeeded)" \
	sh -c "[ $RC = 1 ] && grep -qx 'rv-2: not revoked: already finished (succeeded)' '$T/r5'"
revoke r6 no-such-1
check "revoking an unknown id: not revoked, no such task" \
	sh -c "[ $RC = 1 ] && grep -qx 'no-such-1: not revoked: no such task' '$T/r6'"
"$NODE" revoke --json rv-1 rv-s no-such-1 >"$T/r7" 2>&1
rc=$?
check "node revoke --json: one entry per id in order, exit 1 when some were not revoked" python3 -c "
import json; lines = open('$T/r7').read().splitlines()
assert [json.loads(l) for l in lines] == [{'id': 'rv-1', 'revoked': True, 'state': 'revoked'},
    {'id': 'rv-s', 'revoked': False, 'state': 'succeeded'}, {'id': 'no-such-1', 'revoked': False, 'state': 'unknown'}], lines
assert $rc == 1"
req r8 '{"op":"revoke","ids":["rv-1","rv-2","x"]}'
check "the wire format: results in request order with id, revoked, state" \
	grep -qx '{"ok":true,"results":\[{"id":"rv-1","revoked":true,"state":"revoked"},{"id":"rv-2","revoked":false,"state":"succeeded"},{"id":"x","revoked":false,"state":"unknown"}\]}' "$T/r8"

# ---- get entries of finished tasks: worker, started_ms, finished_ms ----
"$NODE" submit fail "it broke" --queue idle --id rv-f --wait --timeout 20 >/dev/null 2>&1
req g2 '{"op":"get","ids":["rv-2","rv-s","rv-f","rv-1","nope"]}'
check "get entries of tasks that ran carry the worker and their start and finish times" python3 -c "
import json; r = json.load(open('$T/g2'))['results']
for e in r[:3]:
    assert e['worker'] == '$W', e
    assert isinstance(e['started_ms'], (int, float)) and isinstance(e['finished_ms'], (int, float)), e
    assert e['finished_ms'] >= e['started_ms'] > 1700000000000, e
assert r[1]['finished_ms'] - r[1]['started_ms'] >= 1900, r[1]
assert r[2]['state'] == 'failed' and r[2]['error'] == 'it broke', r[2]
assert r[3]['state'] == 'revoked' and r[3]['finished_ms'] > 0 and 'worker' not in r[3] and 'started_ms' not in r[3], r[3]
assert r[4] == {'id': 'nope', 'state': 'pending'}, r[4]"
"$NODE" submit echo waiting --queue idle2 --id rv-q >/dev/null 2>&1
req g3 '{"op":"get","ids":["rv-q"]}'
check "an unfinished task's entry has none of them" grep -qx '{"ok":true,"results":\[{"id":"rv-q","state":"queued"}\]}' "$T/g3"

# ---- bad input: bad_args, and the broker keeps serving ----
req b1 '{"op":"revoke"}'
check "revoke without ids: bad_args" code_is b1 bad_args
req b2 '{"op":"revoke","ids":"rv-q"}'
check "revoke with ids not an array: bad_args" code_is b2 bad_args
req b3 '{"op":"revoke","ids":[]}'
check "revoke with 0 ids: bad_args naming the limit" sh -c "grep -q '\"code\":\"bad_args\"' '$T/b3' && grep -q '1 to 10000' '$T/b3'"
python3 -c "
import json
json.dump({'op': 'revoke', 'ids': ['rv-q'] * 10001}, open('$T/many.json', 'w'), separators=(',', ':'))"
req b4 "@$T/many.json" 10000
check "revoke with 10001 ids: bad_args" code_is b4 bad_args
req b5 '{"op":"revoke","ids":["rv-q",7]}'
check "revoke with an id that is not a string: bad_args" code_is b5 bad_args
if command -v nngcat >/dev/null; then
	nngcat --req --dial "$URL" --raw --recv-timeout 3 --data '{"op":"revoke","ids":[null]}' >"$T/b6" 2>&1
	check "revoke with a null id (nngcat): bad_args" grep -q '"code":"bad_args"' "$T/b6"
fi
st rv-q
check "a refused revoke changed nothing: rv-q is still queued" [ "$(field rv-q state)" = queued ]
check "the broker answers ping after bad revokes" alive
"$NODE" revoke >"$T/b7" 2>&1
check "node revoke without ids is a usage error (exit 2)" [ $? = 2 ]

# ---- many at once; revoked results expire; the snapshot keeps rv-1 ----
python3 -c "
import json
json.dump([{'id': 'sc-%d' % i, 'name': 'echo', 'args': ['y' * 10000], 'queue': 'scratch'} for i in range(150)], open('$T/scratch.json', 'w'))
json.dump({'op': 'revoke', 'ids': ['sc-%d' % i for i in range(150)]}, open('$T/rvall.json', 'w'))"
"$NODE" submit "$T/scratch.json" >/dev/null 2>&1
req r9 "@$T/rvall.json"
check "150 queued tasks revoked in one call" python3 -c "
import json; r = json.load(open('$T/r9'))['results']
assert len(r) == 150 and all(e['revoked'] and e['state'] == 'revoked' for e in r), r[:3]
assert [e['id'] for e in r] == ['sc-%d' % i for i in range(150)]"
i=0
while [ $i -lt 50 ] && ! "$NODE" result sc-0 2>&1 | grep -q 'state pending'; do sleep 0.1; i=$((i + 1)); done
check "a revoked task is forgotten after its queue's result_ttl_s (1 s)" sh -c "'$NODE' result sc-149 2>&1 | grep -q 'state pending'"
check "the journal is compacted" wait_for "$T/broker.log" 'journal compacted' 20
i=0
while [ $i -lt 100 ] && ls "$DATA"/*.tmp >/dev/null 2>&1; do sleep 0.1; i=$((i + 1)); done
check "the snapshot holds rv-1's revoke record" sh -c "grep -a -q '\"t\":\"v\",\"id\":\"rv-1\"' '$DATA'/snapshot-*.log"
kill9 "$PID_broker"
mv "$T/broker.log" "$T/broker-2.log"
start_broker 20 || { fail "broker did not restart after the compaction"; finish; }
st rv-1
check "after compaction and kill -9 rv-1 is still revoked ($(field rv-1 state))" [ "$(field rv-1 state)" = revoked ]
"$NODE" result sc-3 >"$T/sc3" 2>&1
check "and the expired revoked tasks stay forgotten" grep -q 'state pending' "$T/sc3"
check "no recovery skipped a record" sh -c "! grep -q 'skipped a record\|cut a torn' '$T'/broker*.log"

stop_cluster $PID_w $PID_broker
"$NODE" --timeout 1000 revoke rv-1 >"$T/r10" 2>&1
rc=$?
check "node revoke exits 5 when the broker does not answer ($rc)" sh -c "[ $rc = 5 ] && grep -q 'did not answer' '$T/r10'"
check_no_sanitizer
finish
