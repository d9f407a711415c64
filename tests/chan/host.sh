# The channel host's promises at the protocol level (rawcall: one
# connection per request, so each ends with a disconnect): a request
# repeated after its connection dropped is done once; an answer never
# exceeds the message limit and loses no value; an alternation's guard
# keeps its end; limits answer "limit"; a stop answers parked calls.
. "$(dirname "$0")/../lib.sh"
PORT=$(free_port)
U=tcp://127.0.0.1:$PORT
cat >"$T/c.json" <<JSON
{
  "cluster": "chan-host",
  "defaults": { "timeout_ms": 3000, "discovery": false },
  "limits": { "max_message": 4096 },
  "nodes": { "h": { "roles": { "chanhost": { "listen": "$U", "idle_s": 1, "max_parked": 50, "trace": "$T/trace.jl" } } } }
}
JSON
export NODE_CONFIG="$T/c.json"
start host "$NODE" --name h chanhost
wait_for "$T/host.log" 'listening on' 10 || { fail "chanhost did not start"; finish; }
R="$TOOLS/rawcall"
call() { "$R" "$U" "$1" "${2:-3000}" 2>/dev/null; }

# 1. A read whose connection dropped while parked, asked again with the same seq, gets a value.
call '{"op":"chan.create","chan":"r","capacity":1}' >/dev/null
call '{"op":"chan.read","chan":"r","cid":"rd1","seq":1}' 300 >/dev/null
call '{"op":"chan.write","chan":"r","cid":"wr1","seq":1,"values":["v1"]}' >/dev/null
out=$(call '{"op":"chan.read","chan":"r","cid":"rd1","seq":1}')
check "a read retried after its connection dropped gets the value" [ "$out" = '{"ok":true,"values":["v1"]}' ]
out=$(call '{"op":"chan.read","chan":"r","cid":"rd1","seq":1}')
check "... and asked once more, the same answer, not a second value" [ "$out" = '{"ok":true,"values":["v1"]}' ]

# 2. A write cut off after 2 of 3 values were buffered: its retry says n=2, again.
call '{"op":"chan.create","chan":"p","capacity":2}' >/dev/null
call '{"op":"chan.write","chan":"p","cid":"wp","seq":1,"values":["a","b","c"]}' 300 >/dev/null
out=$(call '{"op":"chan.write","chan":"p","cid":"wp","seq":1,"values":["a","b","c"]}')
check "a cut-off write's retry: n 2 and again" [ "$out" = '{"ok":true,"n":2,"again":true}' ]
out=$(call '{"op":"chan.read","chan":"p","cid":"rp","seq":1,"max":10}')
check "nothing of it was written twice" [ "$out" = '{"ok":true,"values":["a","b"]}' ]

# 3. Answers stay within limits.max_message (4096): three 900-byte values come in two answers.
big=$(head -c 900 /dev/zero | tr '\0' x)
call '{"op":"chan.create","chan":"big","capacity":5}' >/dev/null
for i in 1 2 3; do call "{\"op\":\"chan.write\",\"chan\":\"big\",\"cid\":\"wb$i\",\"seq\":1,\"values\":[\"$i$big\"]}" >/dev/null; done
a=$(call '{"op":"chan.read","chan":"big","cid":"rb","seq":1,"max":3}' | grep -o '"[123]xxx' | tr -d '"x' | tr '\n' ' ')
b=$(call '{"op":"chan.read","chan":"big","cid":"rb","seq":2,"max":3}' | grep -o '"[123]xxx' | tr -d '"x' | tr '\n' ' ')
check "big values split over answers, none lost: [$a] then [$b]" [ "$a|$b" = "1 2 |3 " ]
nums=$(python3 -c 'print(",".join(["1e300"]*150))')
out=$(call "{\"op\":\"chan.write\",\"chan\":\"big\",\"cid\":\"wb9\",\"seq\":1,\"values\":[[$nums]]}")
check "a value that would not fit an answer is refused when written" sh -c "echo '$out' | grep -q '\"code\":\"too_large\"'"

# 4. A parked alternation's guard keeps its end (cid g2) past idle_s: one2one stays one2one.
call '{"op":"chan.create","chan":"o","kind":"one2one"}' >/dev/null
"$R" "$U" '{"op":"chan.alt","cid":"g1","seq":1,"guards":[{"chan":"o","cid":"g2","read":true}],"timeout_ms":4000}' 6000 >"$T/alt" 2>&1 &
ALT=$!
sleep 2.5 # > idle_s and two sweeps
out=$(call '{"op":"chan.read","chan":"o","cid":"intruder","seq":1,"timeout_ms":0}')
check "a second reader of one2one is refused while the guard waits" sh -c "echo '$out' | grep -q '\"code\":\"conflict\"'"
call '{"op":"chan.write","chan":"o","cid":"ow","seq":1,"values":[42]}' >/dev/null
wait $ALT
check "the alternation got the value" grep -q '"index":0,"chan":"o","value":42' "$T/alt"

# A poisoned channel for the trace: a parked reader, then poison.
"$R" "$U" '{"op":"chan.read","chan":"pz","cid":"pr","seq":1,"proc":"printer"}' 5000 >"$T/pz" 2>&1 &
PZ=$!
n=0; while [ $n -lt 100 ] && ! call '{"op":"chan.list","prefix":"pz"}' | grep -q '"readers_waiting":1'; do sleep 0.05; n=$((n + 1)); done
call '{"op":"chan.poison","chan":"pz","proc":"counter"}' >/dev/null
wait $PZ
check "poison answers the parked reader poisoned" grep -q '"code":"poisoned"' "$T/pz"
out=$(call '{"op":"chan.retire","chan":"r","cid":"wr1","dir":"write"}')
check "the last writer of r retires" [ "$out" = '{"ok":true}' ]
out=$(call '{"op":"chan.read","chan":"r","cid":"rd2","seq":1}')
check "then readers of r get retired" sh -c "echo '$out' | grep -q '\"code\":\"retired\"'"

# 5. max_parked 50: the 51st parked read is refused with limit; the host serves on.
i=0; P=""
while [ $i -lt 50 ]; do "$R" "$U" "{\"op\":\"chan.read\",\"chan\":\"many\",\"cid\":\"m$i\",\"seq\":1}" 8000 >/dev/null 2>&1 & P="$P $!"; i=$((i + 1)); done
n=0; while [ $n -lt 100 ] && ! call '{"op":"chan.list"}' | grep -q '"parked":50'; do sleep 0.05; n=$((n + 1)); done
out=$(call '{"op":"chan.read","chan":"many","cid":"m99","seq":1}')
check "past max_parked: code limit" sh -c "echo '$out' | grep -q '\"code\":\"limit\"'"
check "and the host still answers" sh -c "'$R' '$U' '{\"op\":\"ping\"}' 2000 | grep -q chanhost"

# 6. A stop answers every parked call (shutting_down), then exits 0.
stop_pid "$PID_host"
for p in $P; do wait $p; done
check "the host stopped cleanly" grep -q 'stopped' "$T/host.log"
check "the trace is JSON lines with increasing seq, every host event, trace_end last" python3 -c "
import json
ev = [json.loads(l) for l in open('$T/trace.jl')]
assert [e['seq'] for e in ev] == list(range(1, len(ev) + 1))
kinds = {e['event'] for e in ev}
need = {'channel_created', 'end_created', 'block_read', 'block_write', 'done_read', 'done_write', 'poison', 'retire', 'trace_end'}
assert need <= kinds, need - kinds
assert ev[-1]['event'] == 'trace_end'
assert any(e['event'] == 'poison' and e.get('proc') == 'counter' and e.get('chan') == 'pz' for e in ev)
assert any(e['event'] == 'block_read' and e.get('proc') == 'printer' for e in ev)
assert all('t' in e for e in ev)"
check_no_sanitizer
finish
