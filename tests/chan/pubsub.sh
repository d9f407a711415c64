# node pub / node sub: two subscribers get every message in order; a
# subscriber killed (kill -9) is dropped by the host and the rest go on; a
# slow subscriber with a small roles.chanhost.sub_buffer loses the oldest
# messages and is told once how many.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/common.sh"
start_chanhost '"sub_buffer": 5,'

topic_field() { # topic_field TOPIC KEY
	"$NODE" chan list --json 2>/dev/null | python3 -c '
import json, sys
for l in sys.stdin:
    o = json.loads(l)
    if o.get("topic") == sys.argv[1]:
        print(o.get(sys.argv[2])); break' "$1" "$2"
}
subs_are() { # a topic without subscribers is not listed
	n=$(topic_field "$1" subscribers); [ "${n:-0}" = "$2" ]; }

"$NODE" sub news --count 3 >"$T/s1.out" 2>"$T/s1.err" &
S1=$!
"$NODE" sub news --count 3 >"$T/s2.out" 2>"$T/s2.err" &
S2=$!
"$NODE" sub news >"$T/s3.out" 2>&1 &
S3=$!
check "3 subscribers" wait_until 10 subs_are news 3
kill -9 $S3; wait $S3 2>/dev/null
check "a killed subscriber is dropped" wait_until 10 subs_are news 2
"$NODE" pub news one two three
wait $S1; r1=$?; wait $S2; r2=$?
check "subscriber 1 got all three in order" [ "$(echo $(cat "$T/s1.out"))" = "one two three" ] && [ "$r1" = 0 ]
check "subscriber 2 too" [ "$(echo $(cat "$T/s2.out"))" = "one two three" ] && [ "$r2" = 0 ]
check "no warning without drops" [ ! -s "$T/s1.err" ]
check "subscribers that left are gone" wait_until 10 subs_are news 0
out=$("$NODE" pub news --json '{"late":true}' 2>&1); rc=$?
check "publishing with no subscriber is fine" [ "$rc" = 0 ]

# drop-oldest: sub_buffer 5, 20 messages published before the subscriber
# polls (stopped with SIGSTOP), 15 dropped
"$NODE" sub slow --json >"$T/slow.out" 2>"$T/slow.err" &
S=$!
wait_until 10 subs_are slow 1
kill -STOP $S
sleep 0.2
seq 1 20 | "$NODE" pub slow
check "the host counts 15 dropped" [ "$(topic_field slow dropped)" = 15 ]
kill -CONT $S
check "the slow subscriber prints the 5 newest" wait_until 10 sh -c "[ \"\$(wc -l <'$T/slow.out')\" -ge 5 ]"
# a parked pub.next may have taken 1 before the stop; the rest are the newest
check "the newest message arrived" grep -qx '"20"' "$T/slow.out"
check "a drop warning on stderr" grep -q "^node sub: 1[45] messages dropped: this subscriber was too slow (buffer roles.chanhost.sub_buffer)" "$T/slow.err"
check "one warning per jump" [ "$(wc -l <"$T/slow.err")" = 1 ]
kill -TERM $S; wait $S; rc=$?
check "sub exits 130 on SIGTERM" [ "$rc" = 130 ]
check "and unsubscribed" wait_until 10 subs_are slow 0
finish
