# Shared helpers for integration tests (sourced). Tests start real processes
# on free loopback ports, wait for readiness lines, bound every wait, and kill
# only the pids they started.
set -u
NODE_BUILD=${NODE_BUILD:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NODE="$ROOT/$NODE_BUILD/node"
TOOLS="$ROOT/$NODE_BUILD/tools"
T=$(mktemp -d "${TMPDIR:-/tmp}/node-test.XXXXXX")
PIDS=""
FAILS=0

cleanup() {
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
	for p in $PIDS; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }
check() { # check DESCRIPTION COMMAND...
	d=$1; shift
	if "$@"; then ok "$d"; else fail "$d"; fi
}
finish() { [ "$FAILS" = 0 ] || exit 1; exit 0; }

# start NAME CMD... : run in background, stdout+stderr to $T/NAME.log
start() {
	n=$1; shift
	"$@" >"$T/$n.log" 2>&1 &
	PIDS="$PIDS $!"
	eval "PID_$n=$!"
}

# wait_for FILE PATTERN [SECONDS]: until a line matches, bounded
wait_for() {
	i=0; lim=$(( ${3:-10} * 20 ))
	while [ $i -lt $lim ]; do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05; i=$((i + 1))
	done
	echo "timed out waiting for '$2' in $1:" >&2; cat "$1" >&2 2>/dev/null
	return 1
}

# stop_pid PID: TERM, wait (bounded), report exit status in $STOP_RC
stop_pid() {
	kill -TERM "$1" 2>/dev/null
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	if kill -0 "$1" 2>/dev/null; then kill -KILL "$1"; STOP_RC=137; return 1; fi
	wait "$1" 2>/dev/null; STOP_RC=$?
	return 0
}

# free_port: a port nothing listens on right now (the kernel picks it)
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# ---- one broker, workers, tasks (tests/broker/*.sh) ----

# cluster_file NAME BROKER [WORKER] [TOP]: pick a free port ($PORT, $URL) and
# write the cluster file $T/c.json, used from then on (NODE_CONFIG). Node b
# runs a broker on $URL with the role members BROKER ('"lease_ms": 1500');
# node w, when WORKER is given, a worker with the members WORKER. TOP adds
# top-level members ('"queues": {...}'). The broker's data directory is
# $BROKER_DIR (a test may change it before start_broker), its journal $DATA.
cluster_file() {
	PORT=$(free_port)
	URL=tcp://127.0.0.1:$PORT
	cf_top="" cf_worker=""
	[ -n "${4:-}" ] && cf_top="
  $4,"
	[ -n "${3:-}" ] && cf_worker=",
    \"w\": { \"host\": \"127.0.0.1\", \"roles\": { \"worker\": { $3 } } }"
	cat >"$T/c.json" <<JSON
{
  "cluster": "$1",
  "defaults": { "timeout_ms": 5000 },$cf_top
  "nodes": {
    "b": { "host": "127.0.0.1", "roles": { "broker": { "listen": "$URL", $2 } } }$cf_worker
  }
}
JSON
	export NODE_CONFIG="$T/c.json"
	BROKER_DIR="$T/data-b"
	DATA="$BROKER_DIR/broker"
}

# start_broker [SECONDS]: start node b's broker (log $T/broker.log, pid
# $PID_broker) and wait until it listens, at most SECONDS (default 10)
start_broker() {
	start broker "$NODE" --name b --data-dir "$BROKER_DIR" broker
	wait_for "$T/broker.log" 'listening on' "${1:-10}"
}

# start_worker VAR LOGNAME ARGS...: start a worker of node w (log
# $T/LOGNAME.log, data $T/data-LOGNAME, pid $PID_LOGNAME), wait for
# "consuming", put its name in VAR
start_worker() {
	var=$1 lname=$2; shift 2
	start "$lname" "$NODE" --name w --data-dir "$T/data-$lname" worker "$@"
	wait_for "$T/$lname.log" 'consuming' || { fail "worker $lname did not start"; return 1; }
	eval "$var=\$(sed -n 's/.*worker \([^ ]*\) consuming.*/\1/p' \"\$T/\$lname.log\" | head -1)"
}

# stop_cluster PID...: stop each (the broker last), check the broker exits 0
stop_cluster() {
	for p in "$@"; do stop_pid "$p"; done
	check "the broker stops cleanly" [ "$STOP_RC" = 0 ]
}

check_no_sanitizer() {
	check "no sanitizer report in any log or output" sh -c "! grep -rlE '(Address|Leak|Undefined)Sanitizer|runtime error:' '$T'"
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

kill9() { # kill9 PID: SIGKILL one of ours and reap it
	kill -KILL "$1" 2>/dev/null; wait "$1" 2>/dev/null
}

# st ID: `node status ID --json` into $T/st-ID.json; field ID KEY prints one member
st() { "$NODE" status "$1" --json >"$T/st-$1.json" 2>/dev/null; }
field() {
	python3 -c 'import json, sys
try: d = json.load(open(sys.argv[1]))
except Exception: d = {}
v = d.get(sys.argv[2])
print("" if v is None else v)' "$T/st-$1.json" "$2"
}

# wait_state ID STATE [WORKER] [SECONDS]: until the task is in STATE (run by WORKER), bounded
wait_state() {
	i=0; lim=$(( ${4:-10} * 10 ))
	while [ $i -lt $lim ]; do
		st "$1"
		grep -q "\"state\":\"$2\"" "$T/st-$1.json" && { [ -z "${3:-}" ] || grep -q "\"worker\":\"$3\"" "$T/st-$1.json"; } && return 0
		sleep 0.1; i=$((i + 1))
	done
	echo "task $1 is not $2${3:+ on $3} after ${4:-10} s: $(cat "$T/st-$1.json" 2>/dev/null)" >&2
	return 1
}

# finishes ID: how many result records ("t":"f") the broker's journal holds for ID
finishes() {
	cat "$DATA"/*.log 2>/dev/null | grep -a -o "\"t\":\"f\",\"id\":\"$1\"" | wc -l
}
