# A full disk: the broker's data directory on a small tmpfs, filled up by a
# file. Submits are refused with an error saying the disk is full (node
# submit exits 1) while queues, status, results and ping keep working; once
# space is freed submits are accepted again within seconds, and nothing
# acknowledged before is lost across a restart. Needs root (mount -t tmpfs);
# skipped (exit 77) where mounting is not permitted.
. "$(dirname "$0")/../lib.sh"
DISK="$T/disk"
mkdir -p "$DISK"
if ! mount -t tmpfs -o size=24m tmpfs "$DISK" 2>"$T/mount.err"; then
	echo "skipped: cannot mount a tmpfs for the full-disk test ($(cat "$T/mount.err"))"
	exit 77
fi
# Stop our processes before unmounting, unmount before lib.sh removes $T.
disk_cleanup() {
	for p in $PIDS; do
		kill -0 "$p" 2>/dev/null && stop_pid "$p"
	done
	PIDS=""
	umount "$DISK" 2>/dev/null || umount -l "$DISK" 2>/dev/null
	cleanup
}
trap disk_cleanup EXIT INT TERM

cluster_file diskfull-test '"lease_ms": 1500' '"concurrency": 2'
BROKER_DIR="$DISK/data" DATA="$DISK/data/broker"
free_kb() { df -k --output=avail "$DISK" | tail -1 | tr -d ' '; }

start_broker || { fail "broker did not start"; finish; }
start_worker W w || finish
for i in 1 2 3; do "$NODE" submit add "$i" 10 --id "early-$i" --wait --timeout 20 >/dev/null 2>&1; done
"$NODE" submit echo waiting --queue nobody --id early-q >/dev/null 2>&1
"$NODE" result early-3 >"$T/e3" 2>&1
check "before the disk fills, tasks run" grep -qx 13 "$T/e3"

"$NODE" submit sleep 2500 --id run-1 >/dev/null 2>&1
i=0
while [ $i -lt 50 ] && ! "$NODE" status run-1 2>/dev/null | grep -q '^state  *started'; do sleep 0.1; i=$((i + 1)); done

# Fill the disk: dd stops at ENOSPC.
dd if=/dev/zero of="$DISK/filler" bs=64k >/dev/null 2>&1
check "the tmpfs is full (less than 64 KiB free: $(free_kb) KiB)" [ "$(free_kb)" -lt 64 ]
big=$(python3 -c "print('x' * 20000)")
"$NODE" submit echo "$big" --id full-1 >"$T/f1" 2>&1
rc=$?
check "a submit on a full disk exits 1" [ $rc = 1 ]
check "its error says the disk is full" grep -qi 'disk is full' "$T/f1"
"$NODE" submit add 1 1 --id full-2 >"$T/f2" 2>&1
rc=$?
check "a small submit is refused too while full (exit $rc)" sh -c "[ $rc = 1 ] && grep -qi 'disk is full' '$T/f2'"
"$TOOLS/call" "$URL" '{"op":"submit","tasks":[{"id":"full-3","name":"add","args":[1,1]}]}' 5000 >"$T/f3" 2>&1
check "at the protocol level the code is disk_full" grep -q '"code":"disk_full"' "$T/f3"
"$NODE" result full-1 >"$T/f1r" 2>&1
check "the refused task does not exist (pending)" grep -q 'state pending' "$T/f1r"
check "the broker logs the full disk" grep -qi 'disk is full' "$T/broker.log"
"$NODE" queues >"$T/q" 2>&1
rc=$?
check "node queues works while the disk is full" sh -c "[ $rc = 0 ] && grep -q '^default ' '$T/q'"
"$NODE" status early-2 >"$T/st" 2>&1
rc=$?
check "node status of an earlier task works" sh -c "[ $rc = 0 ] && grep -q '^state  *succeeded' '$T/st'"
"$NODE" result early-1 >"$T/r1" 2>&1
check "node result of an earlier task works" grep -qx 11 "$T/r1"
"$NODE" result early-q >"$T/rq" 2>&1
check "a queued earlier task is still queued" grep -q 'state queued' "$T/rq"
"$NODE" workers >"$T/wk" 2>&1
check "node workers works" grep -q '^w-' "$T/wk"
"$NODE" ping "$URL" >/dev/null 2>&1
check "ping works" [ $? = 0 ]
kill -0 "$PID_broker" 2>/dev/null
check "the broker is still running" [ $? = 0 ]

# run-1 finishes while the disk is full: its report cannot be journaled
check "the worker's report of a task finished while the disk is full is refused (worker retries)" \
	wait_for "$T/w.log" 'report: .*disk is full' 8

# Free the space: within a few seconds submits are accepted again.
rm -f "$DISK/filler"
t0=$(date +%s)
ok=0 i=0
while [ $i -lt 40 ]; do
	if "$NODE" submit add 20 22 --id after-1 >"$T/a1" 2>&1; then ok=1; break; fi
	sleep 0.25; i=$((i + 1))
done
check "after the filler is deleted submits are accepted again (after $(( $(date +%s) - t0 )) s)" [ $ok = 1 ]
check "the broker logs that it accepts writes again" grep -q 'free space again' "$T/broker.log"
"$NODE" result after-1 --wait --timeout 20 >"$T/a1r" 2>&1
check "the new task runs" grep -qx 42 "$T/a1r"
for i in 1 2 3; do "$NODE" submit add "$i" 100 --id "after-b$i" --wait --timeout 20 >/dev/null 2>&1; done
"$NODE" result after-b3 >"$T/ab3" 2>&1
check "more tasks run normally" grep -qx 103 "$T/ab3"

"$NODE" result run-1 --wait --timeout 20 >"$T/run1a" 2>&1
check "the task that finished while the disk was full shows its result" grep -qx 2500 "$T/run1a"

# Nothing acknowledged is lost: restart and look.
stop_pid "$PID_broker"
check "the broker stops cleanly" [ "$STOP_RC" = 0 ]
mv "$T/broker.log" "$T/broker-1.log"
start_broker || { fail "broker did not restart"; finish; }
n=0
for pair in early-1:11 early-2:12 early-3:13 after-1:42 after-b1:101 after-b3:103; do
	[ "$("$NODE" result "${pair%%:*}" 2>&1)" = "${pair#*:}" ] && n=$((n + 1))
done
check "after a restart every acknowledged task has its result (6 of 6: $n)" [ $n = 6 ]
"$NODE" result run-1 >"$T/run1" 2>&1
check "a task finished while the disk was full has its result after the restart ($(cat "$T/run1"))" grep -qx 2500 "$T/run1"
check "and exactly one result record ($(cat "$DISK/data/broker"/*.log | grep -a -c '"t":"f","id":"run-1"'))" \
	[ "$(cat "$DISK/data/broker"/*.log | grep -a -o '"t":"f","id":"run-1"' | wc -l)" = 1 ]
"$NODE" result full-1 >"$T/f1b" 2>&1
check "the refused tasks did not come back" grep -q 'state pending' "$T/f1b"
check "recovery found no damage" sh -c "! grep -q 'cut a torn\|skipped a record\|damaged' '$T/broker.log'"
check_no_sanitizer
finish
