# The transport layer against a real server process: ping, plain JSON over
# nngcat, parked requests that do not block others, limits, bad input.
. "$(dirname "$0")/../lib.sh"

start srv "$TOOLS/echo_server" tcp://127.0.0.1:0
wait_for "$T/srv.log" '^ready ' || { fail "echo server did not start"; finish; }
URL=$(sed -n 's/^ready //p' "$T/srv.log")

"$NODE" ping "$URL" >"$T/p" 2>&1
check "node ping prints role, node, version and time" grep -q "role echo, node test, version .*, time [0-9]* us" "$T/p"
"$NODE" ping --count 3 --json "$URL" >"$T/pj" 2>&1
check "node ping --json --count 3 prints 3 JSON lines" [ "$(grep -c '"rtt_us"' "$T/pj")" = 3 ]

if command -v nngcat >/dev/null; then
	nngcat --req --dial "$URL" --data '{"op":"ping"}' --recv-timeout 5 --raw >"$T/nc" 2>&1
	check "nngcat gets a plain JSON reply" grep -q '"ok":true' "$T/nc"
	nngcat --req --dial "$URL" --data '{"op":"nope"}' --recv-timeout 5 --raw >"$T/nc2" 2>&1
	check "unknown op gets an error reply with a stable code" grep -q '"code":"unknown_op"' "$T/nc2"
	nngcat --req --dial "$URL" --data '{"op":' --recv-timeout 5 --raw >"$T/nc3" 2>&1
	check "malformed JSON gets bad_request" grep -q '"code":"bad_request"' "$T/nc3"
	nngcat --req --dial "$URL" --data '[1,2]' --recv-timeout 5 --raw >"$T/nc4" 2>&1
	check "a non-object gets bad_request" grep -q '"code":"bad_request"' "$T/nc4"
	deep=$(python3 -c 'print("{\"op\":\"echo\",\"x\":" + "["*200 + "]"*200 + "}")')
	nngcat --req --dial "$URL" --data "$deep" --recv-timeout 5 --raw >"$T/nc5" 2>&1
	check "deep nesting gets a limit error" grep -q '"code":"limit"' "$T/nc5"
	nngcat --req --dial "$URL" --data '{"op":"echo","v":1}' --recv-timeout 5 --raw >"$T/nc6" 2>&1
	check "the server still serves after bad input" grep -q '"v":1' "$T/nc6"
else
	fail "nngcat is missing (vendor/deps.sh install-test installs nng-utils)"
fi

# A parked request must not block others: park for 1.5 s, ping meanwhile.
"$TOOLS/call" "$URL" '{"op":"park","ms":1500}' 5000 >"$T/park" 2>&1 &
PARK=$!
sleep 0.2
"$NODE" ping --count 5 "$URL" >"$T/p2" 2>&1
check "pings are answered while a request is parked" [ "$(grep -c 'role echo' "$T/p2")" = 5 ]
wait $PARK
check "the parked request is answered later" grep -q '"slept_ms":1500' "$T/park"

"$TOOLS/call" "$URL" '{"op":"park","ms":3000}' 300 >"$T/to" 2>&1
rc=$?
check "a call that runs out of time names the address and the time" sh -c "[ $rc != 0 ] && grep -q 'did not answer in 300 ms' '$T/to'"

port=$(free_port)
"$NODE" --timeout 300 ping "tcp://127.0.0.1:$port" >"$T/dead" 2>&1
rc=$?
check "ping to nothing exits 5 with the address" sh -c "[ $rc = 5 ] && grep -q \"tcp://127.0.0.1:$port did not answer\" '$T/dead'"

# A message above the limit is refused (nng drops it at recvmaxsz or we reply).
python3 -c 'import sys; sys.stdout.write("{\"op\":\"echo\",\"s\":\"" + "a"*(17<<20) + "\"}")' >"$T/huge.json"
"$TOOLS/call" "$URL" "@$T/huge.json" 2000 >"$T/huge" 2>&1
check "an oversize message is refused" sh -c "! grep -q '\"ok\":true' '$T/huge'"
"$NODE" ping "$URL" >"$T/p3" 2>&1
check "the server still serves after an oversize message" grep -q 'role echo' "$T/p3"

stop_pid "$PID_srv"
check "the server stops cleanly on SIGTERM" [ "$STOP_RC" = 0 ]
finish
