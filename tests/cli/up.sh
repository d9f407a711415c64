# node up: starts with the embedded default, logs what it runs, stops
# cleanly on SIGTERM and on SIGINT.
. "$(dirname "$0")/../lib.sh"
cd "$T"
PORT=$(free_port)
# The embedded default's roles, on a free port so a running node up does not collide.
cat >"$T/node.json" <<JSON
{"nodes": {"local": {"host": "127.0.0.1", "roles": {"broker": {"listen": "tcp://127.0.0.1:$PORT"}, "worker": {}}}}}
JSON
for sig in TERM INT; do
	start up$sig "$NODE" up --data-dir "$T/data-$sig"
	wait_for "$T/up$sig.log" 'consuming' || { fail "node up did not start its roles"; continue; }
	kill -$sig "$(eval echo \$PID_up$sig)"
	i=0
	while kill -0 "$(eval echo \$PID_up$sig)" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	wait "$(eval echo \$PID_up$sig)"; rc=$?
	check "node up stops on SIG$sig with status 0" [ "$rc" = 0 ]
	check "node up logs that it stopped" grep -q 'up: stopped' "$T/up$sig.log"
	check "node up ran the broker and the worker" sh -c "grep -q 'listening on tcp://127.0.0.1:$PORT' '$T/up$sig.log' && grep -q 'consuming' '$T/up$sig.log'"
done
"$NODE" up --log-format json --data-dir "$T/d" >"$T/j.log" 2>&1 &
JP=$!; PIDS="$PIDS $JP"
wait_for "$T/j.log" 'SIGINT or SIGTERM stops' && kill -TERM $JP && wait $JP
check "--log-format json writes JSON lines" python3 -c "
import json; [json.loads(l) for l in open('$T/j.log') if l.strip()]"
# SIGHUP reopens the log file named by NODE_LOG_FILE (log rotation).
NODE_LOG_FILE="$T/a.log" "$NODE" broker --data-dir "$T/hup" >/dev/null 2>&1 &
HP=$!; PIDS="$PIDS $HP"
if wait_for "$T/a.log" 'listening on'; then
	mv "$T/a.log" "$T/a.log.1"
	kill -HUP $HP
	check "SIGHUP reopens NODE_LOG_FILE (rotation)" wait_for "$T/a.log" 'log reopened'
	stop_pid $HP
	check "the broker still stops cleanly after SIGHUP" [ "$STOP_RC" = 0 ]
else
	fail "broker with NODE_LOG_FILE did not start"
fi
finish
