# Remote execution: node exec and the exec kind of node rpc. Output and exit
# status come back, stderr apart; refusals (the allow-list, exec off); live
# streaming; the time limit; exec.kill; Ctrl-C; a closed stdout; binary
# output and input; backpressure; by name through the name server; bad
# params; max_running; a server stopping with a read waiting; bad settings;
# and conf/examples/exec.sh.
. "$(dirname "$0")/../lib.sh"
NSPORT=$(free_port); PX=$(free_port); PT=$(free_port); PO=$(free_port)
NS=tcp://127.0.0.1:$NSPORT; UX=tcp://127.0.0.1:$PX; UT=tcp://127.0.0.1:$PT; UO=tcp://127.0.0.1:$PO
# x: the main server (sh is allowed here, for this test only: it allows
# everything); t: a 2 s time limit and one command at a time; o: exec off.
cat >"$T/c.json" <<JSON
{
  "cluster": "exec-test",
  "defaults": { "timeout_ms": 3000, "discovery": false },
  "nodes": {
    "n": { "roles": { "nameserver": { "listen": "$NS", "discovery": false } } },
    "x": { "roles": { "rpc": { "listen": "$UX", "http": "", "name": "rpc.x",
             "exec": { "allow": ["uname", "echo", "cat", "ls", "sh", "head", "sleep"], "max_seconds": 20,
                       "max_output_buffer": 65536 } } } },
    "t": { "roles": { "rpc": { "listen": "$UT", "http": "", "name": "rpc.t",
             "exec": { "allow": ["sleep"], "max_seconds": 2, "max_running": 1 } } } },
    "o": { "roles": { "rpc": { "listen": "$UO", "http": "", "name": "rpc.o" } } }
  }
}
JSON
export NODE_CONFIG="$T/c.json"
"$NODE" config check "$T/c.json" >"$T/cc" 2>&1
check "a cluster file with roles.rpc.exec is valid" [ $? = 0 ]
"$NODE" config show >"$T/show" 2>&1
check "config show fills in the exec defaults; no exec on o" python3 -c "
import json; d = json.load(open('$T/show'))['nodes']
x = d['x']['roles']['rpc']['exec']; t = d['t']['roles']['rpc']['exec']
assert x['max_running'] == 16 and x['max_output_buffer'] == 65536 and t['max_output_buffer'] == 1048576, (x, t)
assert 'exec' not in d['o']['roles']['rpc'], d['o']"

start ns "$NODE" --name n --data-dir "$T/ns" nameserver
wait_for "$T/ns.log" 'listening on' || { fail "name server did not start"; finish; }
start x "$NODE" --name x --data-dir "$T/dx" rpc
start t "$NODE" --name t --data-dir "$T/dt" rpc
start o "$NODE" --name o --data-dir "$T/do" rpc
for s in x t o; do wait_for "$T/$s.log" "registered rpc.$s" || fail "rpc $s did not register"; done
check "the server warns that sh allows everything" grep -q 'sh is on the allow-list: it runs any command' "$T/x.log"

ex() { "$NODE" exec "$@" >"$T/out" 2>"$T/err"; RC=$?; }
rpc() { "$TOOLS/rawcall" "$1" "$2" "${3:-5000}" >"$T/raw" 2>&1; }
has() { grep -q -- "$1" "$T/raw"; }
result() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["result"][sys.argv[2]])' "$T/raw" "$1"; }

# ---- output, status, stderr ----
ex "$UX" -- uname -a
check "uname -a: the server's output, exit 0" sh -c "[ $RC = 0 ] && [ \"\$(cat '$T/out')\" = \"\$(uname -a)\" ]"
ex "$UX" -- sh -c 'echo to-out; echo to-err >&2; exit 3'
check "stdout and stderr apart, exit status 3 passed through" sh -c "[ $RC = 3 ] && [ \"\$(cat '$T/out')\" = to-out ] && [ \"\$(cat '$T/err')\" = to-err ]"
ex "$UX" -- ls /no/such/dir
check "ls of a missing directory: its exit status (2) and message" sh -c "[ $RC = 2 ] && grep -q 'no/such/dir' '$T/err' && [ ! -s '$T/out' ]"
ex "$UX" -- sh -c 'kill -TERM $$'
check "killed by a signal: exit 128+15" sh -c "[ $RC = 143 ] && grep -q 'SIGTERM' '$T/err'"
echo 'from the client' | "$NODE" exec --stdin - "$UX" -- cat >"$T/out" 2>"$T/err"
check "--stdin - reaches the command" grep -qx 'from the client' "$T/out"

# ---- refused ----
ex "$UX" -- rm -rf /
check "rm is refused: exit 1, says the allow-list" sh -c "[ $RC = 1 ] && grep -q 'node exec: refused: \"rm\" is not on this server.s allow-list (roles.rpc.exec.allow)' '$T/err'"
check "the server logged the refusal" grep -q 'exec refused: "rm"' "$T/x.log"
ex "$UX" -- /bin/echo hi
check "a path to an allowed program is not the program: refused" sh -c "[ $RC = 1 ] && grep -q 'refused' '$T/err'"
rpc "$UX" '{"jsonrpc":"2.0","method":"exec.start","params":[["rm","-rf","/"]],"id":1}'
check "on the wire: -32004 and the message" sh -c "grep -q '\"code\":-32004' '$T/raw' && grep -q 'exec refused: \\\\\"rm\\\\\" is not on this server' '$T/raw'"
ex "$UO" -- echo hi
check "exec off (no allow-list): refused, exit 1, naming the setting" sh -c "[ $RC = 1 ] && grep -q 'roles.rpc.exec.allow' '$T/err'"
rpc "$UO" '{"jsonrpc":"2.0","method":"exec.start","params":[["echo","hi"]],"id":1}'
check "exec off on the wire: method not found" has '"code":-32601'

# ---- streaming ----
start live "$NODE" exec "$UX" -- sh -c 'echo a; sleep 2; echo b'
t0=$(now_ms)
wait_for "$T/live.log" '^a$' 2 >/dev/null; t1=$(now_ms)
check "streaming: a arrives while the command still runs (b not yet there)" sh -c "grep -qx a '$T/live.log' && ! grep -qx b '$T/live.log' && [ $((t1 - t0)) -lt 1700 ]"
wait "$PID_live"; rc=$?
check "then b, and exit 0" sh -c "[ $rc = 0 ] && [ \"\$(cat '$T/live.log')\" = \"\$(printf 'a\nb')\" ]"

# ---- time limit, kill, Ctrl-C, a closed stdout ----
t0=$(now_ms)
ex "$UT" -- sleep 100
t1=$(now_ms)
check "time limit (max_seconds 2): exit 124 after about 2 s" sh -c "[ $RC = 124 ] && [ $((t1 - t0)) -ge 1900 ] && [ $((t1 - t0)) -lt 5000 ] && grep -q 'time limit' '$T/err'"
check "the server logged the time limit" grep -q 'killed by SIGKILL (time limit)' "$T/t.log"
rpc "$UX" '{"jsonrpc":"2.0","method":"exec.start","params":[["sleep","100"]],"id":1}'
ID=$(result id); PID=$(result pid)
rpc "$UX" "{\"jsonrpc\":\"2.0\",\"method\":\"exec.kill\",\"params\":[\"$ID\"],\"id\":2}"
check "exec.kill answers true" has '"result":true'
rpc "$UX" "{\"jsonrpc\":\"2.0\",\"method\":\"exec.read\",\"params\":[\"$ID\",5000],\"id\":3}"
check "then the read ends: done, signal KILL, reason killed, status 137" sh -c "grep -q '\"done\":true,\"status\":137,\"signal\":\"KILL\",\"reason\":\"killed\"' '$T/raw'"
check "and the process is gone" sh -c "! kill -0 $PID 2>/dev/null"
rpc "$UX" "{\"jsonrpc\":\"2.0\",\"method\":\"exec.read\",\"params\":[\"$ID\"],\"id\":4}"
check "its record is freed once the end was read" sh -c "grep -q '\"type\":\"KeyError\"' '$T/raw'"
start cc "$NODE" exec "$UX" -- sleep 30 1
wait_for "$T/x.log" 'started .*sleep (pid [0-9]*, 2 arguments)' 5 >/dev/null
sleep 0.3
PID=$(sed -n 's/.*started [^ ]*sleep (pid \([0-9]*\), 2 arguments).*/\1/p' "$T/x.log" | tail -1)
kill -INT "$PID_cc"; t0=$(now_ms)
wait "$PID_cc"; rc=$?; t1=$(now_ms)
check "Ctrl-C: exit 130 at once, the remote command killed" sh -c "[ $rc = 130 ] && [ $((t1 - t0)) -lt 2000 ] && grep -q 'interrupted: the remote command e[0-9]* was killed' '$T/cc.log'"
check "and its process is gone" sh -c "! kill -0 $PID 2>/dev/null"
kills=$(grep -c 'killed by SIGKILL (exec.kill)' "$T/x.log")
"$NODE" exec "$UX" -- sh -c 'while :; do echo y; done' 2>"$T/err" | head -3 >"$T/out"
sleep 0.3
check "a closed stdout (| head -3): three lines, and the loop was killed" sh -c "[ \$(wc -l <'$T/out') = 3 ] && [ \$(grep -c 'killed by SIGKILL (exec.kill)' '$T/x.log') = $((kills + 1)) ]"

# ---- binary, backpressure ----
head -c 300000 /dev/urandom >"$T/bin.dat"
printf '\000\001\377\n\r' >>"$T/bin.dat"
"$NODE" exec "$UX" -- cat "$T/bin.dat" >"$T/bin.out" 2>"$T/err"
check "binary output round-trips (cat of 300 KB, sha256)" sh -c "[ \"\$(sha256sum <'$T/bin.dat')\" = \"\$(sha256sum <'$T/bin.out')\" ]"
"$NODE" exec --stdin "$T/bin.dat" "$UX" -- cat >"$T/bin.in" 2>"$T/err"
check "binary input round-trips (--stdin FILE, sha256)" sh -c "[ \"\$(sha256sum <'$T/bin.dat')\" = \"\$(sha256sum <'$T/bin.in')\" ]"
"$NODE" exec "$UX" -- sh -c 'head -c 3000000 /dev/zero; echo end >&2' >"$T/big.out" 2>"$T/err"
check "3 MB through a 64 KiB buffer (backpressure): every byte, then stderr" sh -c "[ \$(wc -c <'$T/big.out') = 3000000 ] && grep -qx end '$T/err'"
head -c 1048577 /dev/zero >"$T/toobig"
ex --stdin "$T/toobig" "$UX" -- cat
check "--stdin over 1 MiB: refused on the client, saying the limit" sh -c "[ $RC = 2 ] && grep -q 'larger than 1 MiB' '$T/err'"

# ---- by name ----
ex rpc.x -- echo by name
check "by name through the name server" sh -c "[ $RC = 0 ] && grep -qx 'by name' '$T/out'"
ex rpc.nobody -- echo hi
check "an unknown name: exit 1, no such name" sh -c "[ $RC = 1 ] && grep -q 'no such name' '$T/err'"
ex --timeout 500 "tcp://127.0.0.1:$(free_port)" -- echo hi
check "a server that does not answer within --timeout: exit 5" sh -c "[ $RC = 5 ] && grep -q 'did not answer' '$T/err'"

# ---- bad params ----
bad() { # bad DESCRIPTION PARAMS [METHOD]
	rpc "$UX" "{\"jsonrpc\":\"2.0\",\"method\":\"${3:-exec.start}\",\"params\":$2,\"id\":9}"
	check "$1: -32602" sh -c "grep -q '\"code\":-32602' '$T/raw'"
}
bad "argv not a list" '["echo"]'
bad "an empty argv" '[[]]'
bad "a number in argv" '[["echo", 5]]'
bad "an empty argv[0]" '[[""]]'
bad "no params" '[]'
bad "stdin neither a string nor {base64}" '[["cat"], 5]'
bad "stdin that is not base64" '[["cat"], {"base64": "!!!"}]'
bad "wait_ms above 30000" '["e1", 99999]' exec.read
check "the messages say what is wrong" sh -c "grep -q 'wait_ms of exec.read must be a number from 0 to 30000' '$T/raw'"
rpc "$UX" '{"jsonrpc":"2.0","method":"exec.start","params":[["echo", 5]],"id":9}'
check "a non-string argument is named" grep -q 'argv\[1\] of exec.start must be a string' "$T/raw"
rpc "$UX" '{"jsonrpc":"2.0","method":"exec.read","params":["e999"],"id":9}'
check "an unknown id: -32000 KeyError" sh -c "grep -q '\"code\":-32000' '$T/raw' && grep -q KeyError '$T/raw'"
rpc "$UX" '{"jsonrpc":"2.0","method":"exec.start","params":{"argv":["echo","named"],"stdin":null},"id":9}'
check "params by name work too" has '"result":{"id":"e'

# ---- one read at a time, max_running, a read's wait ----
rpc "$UT" '{"jsonrpc":"2.0","method":"exec.start","params":[["sleep","1.2"]],"id":1}'
ID=$(result id)
"$TOOLS/rawcall" "$UT" "{\"jsonrpc\":\"2.0\",\"method\":\"exec.read\",\"params\":[\"$ID\",5000],\"id\":2}" 8000 >"$T/park1" 2>&1 &
RP=$!
sleep 0.2
rpc "$UT" "{\"jsonrpc\":\"2.0\",\"method\":\"exec.read\",\"params\":[\"$ID\",3000],\"id\":3}"
check "a second read while one waits: BusyError" sh -c "grep -q BusyError '$T/raw'"
rpc "$UT" '{"jsonrpc":"2.0","method":"exec.start","params":[["sleep","1"]],"id":4}'
check "max_running 1: a second command is refused, -32003" sh -c "grep -q '\"code\":-32003' '$T/raw' && grep -q max_running '$T/raw'"
wait $RP
check "the waiting read is answered when the command ends: done, exit 0" grep -q '"done":true,"status":0,"signal":null,"reason":"exited"' "$T/park1"
rpc "$UT" '{"jsonrpc":"2.0","method":"exec.start","params":[["sleep","1"]],"id":5}'
ID=$(result id)
"$TOOLS/rawcall" "$UT" "{\"jsonrpc\":\"2.0\",\"method\":\"exec.read\",\"params\":[\"$ID\",300],\"id\":6}" 5000 >"$T/park2" 2>&1
check "wait_ms passes: an empty chunk, not done" grep -q '"out":"","err":"","done":false}' "$T/park2"

# ---- bad settings ----
sed 's/"sleep"\], "max_seconds": 2/"bin\/sleep"], "max_seconds": 2/' "$T/c.json" >"$T/bad.json"
"$NODE" --config "$T/bad.json" --name t --data-dir "$T/dt" rpc --nameserver '' >"$T/bad.log" 2>&1
check "a relative path in allow fails the start: exit 3, saying why" sh -c "[ $? = 3 ] && grep -q 'must be an absolute path or a bare program name' '$T/bad.log'"
sed 's/"max_seconds": 2,/"max_seconds": 0,/' "$T/c.json" >"$T/bad2.json"
"$NODE" config check "$T/bad2.json" >"$T/bad2.out" 2>&1
check "max_seconds 0: the cluster file is invalid" sh -c "[ $? = 3 ] && grep -q 'roles.rpc.exec.max_seconds' '$T/bad2.out'"

# ---- the example ----
timeout 60 sh "$ROOT/conf/examples/exec.sh" "$NODE" >"$T/example.out" 2>&1; rc=$?
check "conf/examples/exec.sh: uname -a shown on the client" sh -c "[ $rc = 0 ] && grep -qxF \"\$(uname -a)\" '$T/example.out'"
check "conf/examples/exec.sh: by name, and rm -rf / refused" sh -c "grep -qx 'hello from the server' '$T/example.out' && grep -q 'node exec: refused: \"rm\"' '$T/example.out' && grep -qx 'exit status 1' '$T/example.out'"

# ---- a stop with a read waiting ----
rpc "$UX" '{"jsonrpc":"2.0","method":"exec.start","params":[["sleep","100"]],"id":5}'
ID=$(result id); PID=$(result pid)
"$TOOLS/rawcall" "$UX" "{\"jsonrpc\":\"2.0\",\"method\":\"exec.read\",\"params\":[\"$ID\",30000],\"id\":7}" 40000 >"$T/park3" 2>&1 &
RP=$!
sleep 0.3
t0=$(now_ms)
stop_pid "$PID_x"; t1=$(now_ms)
check "a server with a read waiting stops at once and exits 0" sh -c "[ '$STOP_RC' = 0 ] && [ $((t1 - t0)) -lt 3000 ]"
wait $RP
check "the waiting read was answered: server stopping" grep -q '"done":true,"status":137,"signal":"KILL","reason":"server stopping"' "$T/park3"
check "the command died with the server" sh -c "! kill -0 $PID 2>/dev/null"

for p in $PID_t $PID_o $PID_ns; do stop_pid "$p"; check "a server stops cleanly (pid $p)" [ "$STOP_RC" = 0 ]; done
check_no_sanitizer
finish
