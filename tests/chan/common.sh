# Shared by tests/chan/*.sh (sourced after ../lib.sh): a cluster file with
# one chanhost on a free loopback port ($CH, $NODE_CONFIG), started as
# `start_chanhost [EXTRA ROLE MEMBERS]`, and small helpers. tests/run.sh
# also runs it by itself, where it does nothing.
command -v free_port >/dev/null 2>&1 || exit 0
CHPORT=$(free_port)
CH=tcp://127.0.0.1:$CHPORT
chan_cluster() { # chan_cluster [EXTRA ROLE MEMBERS, e.g. '"sub_buffer": 5,']
	cat >"$T/c.json" <<JSON
{
  "cluster": "chan-test",
  "defaults": { "timeout_ms": 3000, "discovery": false },
  "nodes": { "h": { "roles": { "chanhost": { ${1:-} "listen": "$CH" } } } }
}
JSON
	export NODE_CONFIG="$T/c.json"
}
start_chanhost() {
	chan_cluster "${1:-}"
	start host "$NODE" --name h chanhost
	wait_for "$T/host.log" 'listening on' || { fail "chanhost did not start"; finish; }
}
# wait_until SECONDS COMMAND...: until COMMAND succeeds, bounded
# (bounded in tries and in wall time: a loaded machine makes each try slow)
wait_until() {
	lim=$(( $1 * 20 )); end=$(( $(date +%s) + $1 )); shift; i=0
	while [ $i -lt $lim ] && [ "$(date +%s)" -le $end ]; do "$@" && return 0; sleep 0.05; i=$((i + 1)); done
	return 1
}
# field of channel $1 in `node chan list --json`: chan_field NAME KEY
chan_field() {
	"$NODE" chan list --json 2>/dev/null | python3 -c '
import json, sys
for l in sys.stdin:
    o = json.loads(l)
    if o.get("name") == sys.argv[1]:
        print(o.get(sys.argv[2])); break' "$1" "$2"
}
# waiting readers (or writers) of a channel reach N
waiting_is() { [ "$(chan_field "$1" "$2")" = "$3" ]; }
