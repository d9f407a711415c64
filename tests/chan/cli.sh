# node chan: counter/printer, rendezvous blocks the writer, buffered
# capacity, --json values, create/delete/list, alt with timeout and skip,
# one2one conflict, retire.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/common.sh"
start_chanhost

# counter | printer: 0..4 then poison; the reader prints them and exits 0
( seq 0 4 | "$NODE" chan write count; "$NODE" chan poison count ) &
W=$!
out=$(timeout 20 "$NODE" chan read count); rc=$?
wait $W
check "counter/printer prints 0..4" [ "$(echo $out)" = "0 1 2 3 4" ]
check "printer exits 0 on poison" [ "$rc" = 0 ]
"$NODE" chan write count x 2>"$T/e"; rc=$?
check "write to a poisoned channel: exit 1" [ "$rc" = 1 ]
check "poisoned: one clear line" grep -q "^node chan: channel count is poisoned$" "$T/e"

# rendezvous: the writer is parked until a reader takes the value
"$NODE" chan write rv hello >"$T/w.out" 2>&1 &
W=$!
wait_until 10 waiting_is rv writers_waiting 1
sleep 0.3
check "rendezvous write blocks without a reader" kill -0 $W
v=$(timeout 10 "$NODE" chan read rv --count 1)
wait $W; rc=$?
check "reader takes the value" [ "$v" = hello ]
check "writer returns 0 once it was taken" [ "$rc" = 0 ]

# buffered: capacity 3 takes 3 without a reader, the 4th parks
"$NODE" chan create buf --capacity 3 >"$T/cr" 2>&1
check "create prints created" grep -q "buf: created (any2any, capacity 3)" "$T/cr"
check "write 3 into capacity 3 returns" timeout 5 "$NODE" chan write buf a b c
"$NODE" chan write buf d &
W=$!
wait_until 10 waiting_is buf writers_waiting 1
check "4th value waits for room" kill -0 $W
check "list shows 3 buffered" [ "$(chan_field buf buffered)" = 3 ]
out=$(timeout 10 "$NODE" chan read buf --count 4)
wait $W
check "buffered values in order" [ "$(echo $out)" = "a b c d" ]
"$NODE" chan create buf --capacity 5 >/dev/null 2>"$T/e"; rc=$?
check "create with another capacity: conflict, exit 1" [ "$rc" = 1 ]

# --json values both ways; strings print raw without --json
"$NODE" chan create js --capacity 10 >/dev/null
"$NODE" chan write js --json '{"a":1}' '[1,2]' '"s"' 3.5 null
out=$(timeout 5 "$NODE" chan read js --count 5 | tr '\n' ' ')
check "read prints strings raw, others compact JSON" [ "$out" = '{"a":1} [1,2] s 3.5 null ' ]
"$NODE" chan write js 'plain "quoted"'
out=$(timeout 5 "$NODE" chan read js --count 1 --json)
check "read --json quotes strings" [ "$out" = '"plain \"quoted\""' ]

# alt: timeout, skip, a ready guard, a write guard
timeout 10 "$NODE" chan alt a1 a2 --timeout 1 >"$T/alt" 2>&1; rc=$?
check "alt --timeout with nothing ready: exit 124" [ "$rc" = 124 ]
timeout 10 "$NODE" chan alt a1 a2 --skip >"$T/alt" 2>&1; rc=$?
check "alt --skip with nothing ready: exit 1, no output" [ "$rc" = 1 ] && [ ! -s "$T/alt" ]
"$NODE" chan write a2 hi &
W=$!
wait_until 10 waiting_is a2 writers_waiting 1
out=$(timeout 10 "$NODE" chan alt a1 a2); rc=$?
wait $W
check "alt fires the ready guard: CHANNEL VALUE" [ "$out" = "a2 hi" ] && [ "$rc" = 0 ]
timeout 10 "$NODE" chan read a3 --count 1 >"$T/a3" &
R=$!
wait_until 10 waiting_is a3 readers_waiting 1
out=$(timeout 10 "$NODE" chan alt a1 a3=given --priority); rc=$?
wait $R
check "alt output guard writes its value" [ "$out" = a3 ] && [ "$(cat $T/a3)" = given ]
check "alt guards are the command's own ends: none left behind" [ "$(chan_field a2 readers)" = 0 ] && [ "$(chan_field a1 readers)" = 0 ]

# one2one: a second writer end is a conflict
"$NODE" chan create o2o --kind one2one >/dev/null
"$NODE" chan write o2o first &
W=$!
wait_until 10 waiting_is o2o writers_waiting 1
"$NODE" chan write o2o second 2>"$T/e"; rc=$?
check "one2one: second writer exit 1" [ "$rc" = 1 ]
check "one2one: conflict message" grep -q "^node chan: .*o2o" "$T/e"
timeout 5 "$NODE" chan read o2o --count 1 >/dev/null
wait $W

# retire: readers get the buffered values, then end with exit 0
"$NODE" chan create ret --capacity 10 >/dev/null
"$NODE" chan write ret --retire v1 v2
out=$(timeout 10 "$NODE" chan read ret); rc=$?
check "retired channel: values then exit 0" [ "$(echo $out)" = "v1 v2" ] && [ "$rc" = 0 ]
check "list shows retired state" sh -c "\"$NODE\" chan list | grep -q '^ret .*retired'"
"$NODE" chan delete ret >/dev/null
check "deleted channel is gone from the list" sh -c "! \"$NODE\" chan list | grep -q '^ret '"
"$NODE" chan list >"$T/list"
check "list has headings" grep -q "^CHANNEL  *KIND  *CAP  *BUFFERED  *READERS  *WRITERS  *R-WAIT  *W-WAIT  *WRITTEN  *READ  *STATE" "$T/list"
finish
