#!/bin/sh
# Run node's benchmarks: programs under $NODE_BUILD/tools and scripts under
# tests/bench/ that print numbers (they are not pass/fail tests). `make bench`
# runs this with NODE_BUILD=build. To add a benchmark, add a
# `bench NAME [ARGS...]` (a tool) or `script NAME.sh [ARGS...]` (a script
# here, run with sh and NODE_BUILD in its environment) line at the end.
# Exits with the status of the last benchmark that failed (0 if none did).
set -u

build=${NODE_BUILD:-build}
here=$(dirname "$0")
status=0
export NODE_BUILD="$build"

bench() {
	name=$1
	shift
	prog=$build/tools/$name
	if [ ! -x "$prog" ]; then
		echo "tests/bench/run.sh: $prog is missing (make tools)" >&2
		status=127
		return
	fi
	set -- "$prog" "$@"
	echo "==== $*"
	"$@" </dev/null
	rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "tests/bench/run.sh: $name failed with status $rc" >&2
		status=$rc
	fi
	echo
}

script() {
	name=$1
	shift
	echo "==== tests/bench/$name $*"
	sh "$here/$name" "$@" </dev/null
	rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "tests/bench/run.sh: $name failed with status $rc" >&2
		status=$rc
	fi
	echo
}

echo "cores: $(nproc), $(uname -sr), started $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo

# The list. Durations: BENCH_SECONDS and the other variables in README and
# each program's or script's header comment.
bench bench_transport
bench bench_journal
script tasks_throughput.sh
script tasks_latency.sh
script tasks_memory.sh
script tasks_overhead.sh
script map.sh
script rpc.sh
bench bench_csp
script chan.sh
script wordcount.sh

exit "$status"
