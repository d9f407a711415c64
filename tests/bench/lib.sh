# Shared helpers for the task-queue benchmark scripts (sourced). Like the
# integration tests (tests/lib.sh): every script starts its own processes on
# free loopback ports with fresh data directories under one temp directory,
# waits for their readiness lines (never fixed sleeps), and at exit stops
# only the pids it started. Unlike the tests, nothing here passes or fails:
# a script exits non-zero only when its machinery breaks.
set -u
NODE_BUILD=${NODE_BUILD:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
case $NODE_BUILD in
/*) BUILD_DIR=$NODE_BUILD ;;
*) BUILD_DIR=$ROOT/$NODE_BUILD ;;
esac
NODE="$BUILD_DIR/node"
TOOLS="$BUILD_DIR/tools"
T=$(mktemp -d "${TMPDIR:-/tmp}/node-bench.XXXXXX")
PIDS=""

cleanup() {
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
	for p in $PIDS; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# need PROGRAM...: exit unless each one is built
need() {
	for f; do [ -x "$f" ] || die "$f is missing (make node tools)"; done
}

# start NAME CMD... : run in the background, stdout+stderr to $T/NAME.log;
# the pid is in $PID_NAME and is stopped at exit.
start() {
	n=$1; shift
	"$@" >"$T/$n.log" 2>&1 &
	PIDS="$PIDS $!"
	eval "PID_$n=$!"
}

# wait_for FILE PATTERN [SECONDS]: until a line matches, bounded
wait_for() {
	i=0; lim=$(( ${3:-10} * 50 ))
	while [ $i -lt $lim ]; do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.02; i=$((i + 1))
	done
	echo "$(basename "$0"): timed out waiting for '$2' in $1:" >&2
	tail -20 "$1" >&2 2>/dev/null
	return 1
}

# stop_pid PID [SECONDS]: TERM, wait (bounded, default 30 s), then KILL
stop_pid() {
	kill -TERM "$1" 2>/dev/null
	i=0; lim=$(( ${2:-30} * 20 ))
	while kill -0 "$1" 2>/dev/null && [ $i -lt $lim ]; do sleep 0.05; i=$((i + 1)); done
	if kill -0 "$1" 2>/dev/null; then
		echo "$(basename "$0"): pid $1 ignored SIGTERM for ${2:-30} s; killed" >&2
		kill -KILL "$1" 2>/dev/null
	fi
	wait "$1" 2>/dev/null
	return 0
}

# free_port: a port nothing listens on right now (the kernel picks it)
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# config FILE URL FSYNC [CONCURRENCY]: a one-node cluster file (node "n1")
# whose broker listens on URL with the given fsync policy.
config() {
	cat >"$1" <<JSON
{"nodes": {"n1": {"roles": {"broker": {"listen": "$2", "fsync": "$3"}, "worker": {"concurrency": ${4:-2}}}}}}
JSON
}

# rss_kb PID: resident set size in KiB (VmRSS of /proc/PID/status)
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# now_ms: wall clock in milliseconds (comparable with log timestamps)
now_ms() { date +%s%3N; }

# log_ms FILE PATTERN: the timestamp (ms since the epoch) of the first line
# matching PATTERN; log lines start with an ISO 8601 UTC time.
log_ms() { date -d "$(grep -m1 -- "$2" "$1" | cut -d' ' -f1)" +%s%3N; }
