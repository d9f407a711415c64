#!/bin/sh
# Runs the whole suite: C unit tests, man page lint, integration tests.
# Each integration script exits 0 (pass), 77 (skip) or anything else (fail).
# Ends with the line "N passed, N failed".
NODE_BUILD=${NODE_BUILD:-build}
export NODE_BUILD
# Sanitizer builds: fail on the first report; see tests/lsan.supp for nng's reaper.
export LSAN_OPTIONS="suppressions=$(cd "$(dirname "$0")" && pwd)/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
cd "$(dirname "$0")/.." || exit 1
pass=0; failn=0; skip=0; failed=""
run() { # run NAME CMD...
	name=$1; shift
	start=$(date +%s)
	out=$(timeout -k 10 "${TEST_TIMEOUT:-300}" "$@" 2>&1); rc=$?
	[ $rc = 124 ] && out="$out
(killed after ${TEST_TIMEOUT:-300} s: a test must never hang)"
	secs=$(( $(date +%s) - start ))
	if [ $rc = 0 ]; then pass=$((pass + 1)); echo "PASS $name (${secs}s)"
	elif [ $rc = 77 ]; then skip=$((skip + 1)); echo "SKIP $name: $(echo "$out" | tail -1)"
	else failn=$((failn + 1)); failed="$failed $name"; echo "FAIL $name (${secs}s)"; echo "$out" | tail -40 | sed 's/^/    /'; fi
}
for t in "$NODE_BUILD"/tests/*_test; do
	[ -x "$t" ] && run "unit/$(basename "$t")" "$t"
done
if command -v mandoc >/dev/null; then
	for m in man/*.[1-9]; do
		[ -f "$m" ] && run "man/$(basename "$m")" mandoc -Tlint -Wwarning "$m"
	done
fi
for t in tests/*/*.sh; do
	case "$t" in tests/bench/*|tests/lib.sh) continue ;; esac
	[ -f "$t" ] && run "$t" sh "$t"
done
[ -n "$failed" ] && echo "failed:$failed"
[ $skip -gt 0 ] && echo "$skip skipped"
echo "$pass passed, $failn failed"
[ $failn = 0 ]
