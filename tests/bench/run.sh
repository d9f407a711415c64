#!/bin/sh
# Run node's benchmarks: programs under $NODE_BUILD/tools that print numbers
# (they are not pass/fail tests). `make bench` runs this with NODE_BUILD=build.
# To add a benchmark, add a `bench NAME [ARGS...]` line at the end.
# Exits with the status of the last benchmark that failed (0 if none did).
set -u

build=${NODE_BUILD:-build}
status=0

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

# The list. Durations: BENCH_SECONDS (see each program's header comment).
bench bench_transport

exit "$status"
