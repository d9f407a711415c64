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
