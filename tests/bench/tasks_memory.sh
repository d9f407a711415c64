#!/bin/sh
# Broker memory per queued task and restart time. One broker (fsync off), no
# worker: RSS (VmRSS of /proc/PID/status) before and after `loadgen submit`
# of BENCH_QUEUED (default 1,000,000) `add` tasks in batches of 1000, one
# batch at a time; (after - before) / N in bytes. Then SIGTERM the broker,
# start it again on the same data dir and time from exec to its "listening
# on" line (both ends in ms: the shell's clock before exec, the log line's
# timestamp), with the broker's own "journal ...: N tasks from M records in
# X ms" line and the RSS after recovery.
. "$(dirname "$0")/lib.sh"
need "$TOOLS/loadgen"
N=${BENCH_QUEUED:-1000000}

url=tcp://127.0.0.1:$(free_port)
config "$T/c.json" "$url" off
start broker "$NODE" --config "$T/c.json" --name n1 --data-dir "$T/data" broker --fsync off
wait_for "$T/broker.log" 'listening on' 20 || exit 1
before=$(rss_kb "$PID_broker")
t0=$(now_ms)
"$TOOLS/loadgen" submit "$url" "$N" q >"$T/submit.log" 2>&1 || { cat "$T/submit.log" >&2; die "loadgen submit failed"; }
t1=$(now_ms)
after=$(rss_kb "$PID_broker")
echo "$N add tasks queued, no worker, fsync off (targets: < 512 bytes per task, restart < 3 s)"
echo "submit: $N tasks in batches of 1000, one at a time: $((t1 - t0)) ms, $((N * 1000 / (t1 - t0 + 1))) tasks/s"
echo "broker RSS: $before KiB before, $after KiB after: $(( (after - before) * 1024 / N )) bytes per queued task"
jbytes=$(du -sk "$T/data/broker" | cut -f1)
echo "journal on disk: $jbytes KiB, $((jbytes * 1024 / N)) bytes per task"

t0=$(now_ms)
stop_pid "$PID_broker" 120
t1=$(now_ms)
echo "stop (SIGTERM to exit): $((t1 - t0)) ms"
mv "$T/broker.log" "$T/broker-1.log"

t0=$(now_ms)
start broker "$NODE" --config "$T/c.json" --name n1 --data-dir "$T/data" broker --fsync off
wait_for "$T/broker.log" 'listening on' 120 || exit 1
t1=$(log_ms "$T/broker.log" 'listening on')
echo "restart: exec to 'listening on' $((t1 - t0)) ms; broker says: $(grep -m1 'journal ' "$T/broker.log" | sed 's/^.*info  broker: //')"
echo "broker RSS after recovery: $(rss_kb "$PID_broker") KiB"
"$TOOLS/loadgen" check "$url" 1 q 0 >"$T/check.log" 2>&1
grep -q 'unfinished 1 of 1' "$T/check.log" || { echo "after restart, task q-0 is not queued:"; cat "$T/check.log"; exit 1; }
stop_pid "$PID_broker" 120
