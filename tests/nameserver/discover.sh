# Finding the name server by UDP broadcast: (1) over loopback, a client whose
# cluster file names no name server registers and looks up through discovery;
# bad, foreign and oversized queries get no answer; discovery off on either
# side fails clearly. (2) Across a veth pair between two network namespaces
# this test creates, a client finds a name server listening on 0.0.0.0 by
# broadcast, and is given the address it can dial. Part (1) runs in a
# namespace of its own too when namespaces can be made, so no broadcast
# leaves the machine; without them part (2) is skipped, saying why.
. "$(dirname "$0")/../lib.sh"

NETNS=""
netns_down() {
	for n in $NETNS; do ip netns del "$n" 2>/dev/null; done
	NETNS=""
}
# lib.sh's cleanup kills our processes first, then the namespaces go.
trap 'cleanup; netns_down' EXIT
trap 'exit 1' INT TERM

# netns_add NAME: create NAME with its loopback up; 1 (reason in $T/netns.err) on failure
netns_add() {
	ip netns add "$1" 2>"$T/netns.err" || return 1
	NETNS="$NETNS $1"
	ip -n "$1" link set lo up 2>"$T/netns.err"
}

HAVE_NETNS=0 WHY=""
if ! command -v ip >/dev/null 2>&1; then
	WHY="ip (iproute2) is not installed"
elif netns_add "nd$$l"; then
	HAVE_NETNS=1
else
	WHY=$(head -1 "$T/netns.err")
	netns_down
fi
[ $HAVE_NETNS = 1 ] || echo "skip: cannot create network namespaces: ${WHY:-unknown reason} (the namespace part is skipped; loopback runs in the host's namespace)"

# One raw datagram: q.py PORT TEXT [DEST]; TEXT "big:N" is N bytes of x.
# Prints the answer, or "none" when nothing came within 0.5 s.
cat >"$T/q.py" <<'PY'
import socket, sys
port, text = int(sys.argv[1]), sys.argv[2]
dest = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
if text.startswith("big:"):
    text = "x" * int(text[4:])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.settimeout(0.5)
s.sendto(text.encode(), (dest, port))
try:
    print(s.recv(4096).decode())
except socket.timeout:
    print("none")
PY

# ---- (1) loopback ----
IN=""
[ $HAVE_NETNS = 1 ] && IN="ip netns exec nd$$l"
CL=disc-$$
PORT=$(free_port)
UPORT=$(free_port)
URL=tcp://127.0.0.1:$PORT
server_file() { # server_file FILE DISCOVERY LISTEN UPORT
	cat >"$1" <<JSON
{
  "cluster": "$CL",
  "nodes": {
    "n": { "host": "127.0.0.1", "roles": { "nameserver": { "listen": "$3", "default_ttl_s": 0,
           "discovery": $2, "discovery_port": $4 } } }
  }
}
JSON
}
client_file() { # client_file FILE CLUSTER DISCOVERY TIMEOUT_MS UPORT [ROLES]
	cat >"$1" <<JSON
{
  "cluster": "$2",
  "defaults": { "timeout_ms": 5000, "discovery": $3, "discovery_port": $5, "discovery_timeout_ms": $4 },
  "nodes": { "c": { "host": "127.0.0.1", "roles": { ${6:-} } } }
}
JSON
}
server_file "$T/s.json" true "$URL" "$UPORT"
server_file "$T/s-off.json" false "$URL" "$UPORT"
client_file "$T/c.json" "$CL" true 1500 "$UPORT"
client_file "$T/c-other.json" "other-$CL" true 600 "$UPORT"
client_file "$T/c-nodisc.json" "$CL" false 600 "$UPORT"
client_file "$T/c-short.json" "$CL" true 600 "$UPORT"
DEAD=$(free_port)
client_file "$T/c-dead.json" "$CL" true 1500 "$UPORT" "\"nameserver\": { \"listen\": \"tcp://127.0.0.1:$DEAD\" }"

"$NODE" config keys >"$T/keys" 2>&1
check "config keys lists the discovery keys" sh -c "for k in roles.nameserver.discovery roles.nameserver.discovery_port \
defaults.discovery defaults.discovery_port defaults.discovery_timeout_ms; do grep -q \"\$k\" '$T/keys' || exit 1; done"
"$NODE" --config "$T/c.json" config show >"$T/show" 2>&1
check "the defaults are filled: discovery on, port, timeout" python3 -c "
import json; d = json.load(open('$T/show'))['defaults']
assert d['discovery'] is True and d['discovery_port'] == $UPORT and d['discovery_timeout_ms'] == 1500, d"
"$NODE" config check "$T/s.json" >/dev/null 2>&1
check "a server file with discovery keys is valid" [ $? = 0 ]
echo '{"nodes":{"n":{"roles":{"nameserver":{"discovery_port":70000}}}}}' >"$T/bad.json"
"$NODE" config check "$T/bad.json" >"$T/bad" 2>&1; rc=$?
check "discovery_port 70000 is refused with its path" sh -c "[ $rc = 3 ] && grep -q 'nodes.n.roles.nameserver.discovery_port' '$T/bad'"

start_ns() { # start_ns LOGNAME CONFIG
	start "$1" $IN "$NODE" --config "$2" --name n --data-dir "$T/data-n" --log-level debug nameserver
	wait_for "$T/$1.log" 'listening on' 10
}
start_ns ns "$T/s.json" || { fail "name server did not start"; finish; }
check "the name server says it answers broadcasts on its port" wait_for "$T/ns.log" "answering discovery broadcasts on UDP port $UPORT" 5
check "and that only this machine can dial its loopback address" grep -q 'can only be dialled from this machine' "$T/ns.log"

cli() { $IN "$NODE" --config "$@"; }
cli "$T/c.json" ns register svc.disc tcp://10.9.9.9:9 >"$T/r1" 2>&1; rc=$?
check "register through discovery (no name server in the client's file)" sh -c "[ $rc = 0 ] && grep -q '^svc.disc -> tcp://10.9.9.9:9' '$T/r1'"
check "lookup through discovery" sh -c "[ \"\$($IN '$NODE' --config '$T/c.json' ns lookup svc.disc)\" = tcp://10.9.9.9:9 ]"
cli "$T/c-dead.json" ns lookup svc.disc --nameserver auto >"$T/auto" 2>&1; rc=$?
check "--nameserver auto broadcasts even when the file names a (dead) name server" \
	sh -c "[ $rc = 0 ] && [ \"\$(cat '$T/auto')\" = tcp://10.9.9.9:9 ]"

q() { $IN python3 "$T/q.py" "$UPORT" "$@"; }
q '{"q":"node-discover","role":"nameserver","cluster":"'"$CL"'","v":1}' >"$T/a1"
check "a raw query is answered with role, url, cluster and node" python3 -c "
import json; d = json.load(open('$T/a1'))
assert d == {'role': 'nameserver', 'url': '$URL', 'cluster': '$CL', 'node': 'n', 'v': 1}, d"
q '{"q":"node-discover","role":"nameserver","cluster":"'"$CL"'","v":2}' >"$T/a2"
check "a newer version is answered too" grep -q '"url"' "$T/a2"
q '{"q":"node-discover","role":"nameserver","cluster":"someone-else","v":1}' >"$T/n1"
check "a query for another cluster gets no answer" grep -qx none "$T/n1"
q '{"q":"node-discover","role":"broker","cluster":"'"$CL"'","v":1}' >"$T/n2"
check "a query for another role gets no answer" grep -qx none "$T/n2"
q 'not json at all' >"$T/n3"
check "garbage gets no answer" grep -qx none "$T/n3"
q '{"q":"node-discover","role":"nameserver","cluster":"'"$CL"'"}' >"$T/n4"
check "a query without v gets no answer" grep -qx none "$T/n4"
q '{"q":"node-discover","role":"nameserver","cluster":"'"$CL"'","v":1e308}' >"$T/n5"
check "a query with an absurd v gets no answer" grep -qx none "$T/n5"
q big:2000 >"$T/n6"
check "a 2000-byte datagram gets no answer" grep -qx none "$T/n6"
check "garbage is logged at debug" grep -q 'discovery: ignored a datagram from 127.0.0.1' "$T/ns.log"
q '{"q":"node-discover","role":"nameserver","cluster":"'"$CL"'","v":1}' 127.255.255.255 >"$T/a3"
check "after all that it still answers, also to loopback's broadcast address" grep -q "\"url\":\"$URL\"" "$T/a3"

t0=$(now_ms)
cli "$T/c-other.json" ns lookup svc.disc >"$T/o1" 2>&1; rc=$?
el=$(( $(now_ms) - t0 ))
check "a client of another cluster: exit 5" [ $rc = 5 ]
check "with a message naming its cluster, the port and the way out" \
	grep -q "no name server of cluster \"other-$CL\" answered a broadcast on UDP port $UPORT within 600 ms (start \`node nameserver\`, or give --nameserver URL" "$T/o1"
check "and it gave up after its timeout, not long after (${el} ms)" sh -c "[ $el -ge 550 ] && [ $el -lt 4000 ]"
cli "$T/c-nodisc.json" ns lookup svc.disc >"$T/o2" 2>&1; rc=$?
check "defaults.discovery false and no name server in the file: exit 3, saying so" \
	sh -c "[ $rc = 3 ] && grep -q 'runs the nameserver role' '$T/o2' && grep -q 'defaults.discovery is false' '$T/o2'"

t0=$(now_ms)
stop_pid "$PID_ns"
el=$(( $(now_ms) - t0 ))
check "SIGTERM stops the name server (and its discovery thread) promptly, exit 0 (${el} ms)" sh -c "[ '$STOP_RC' = 0 ] && [ $el -lt 2000 ]"
check "it logs how many datagrams it ignored" grep -q 'discovery: [1-9][0-9]* answers; 4 datagrams ignored' "$T/ns.log"

start_ns nsoff "$T/s-off.json" || { fail "name server without discovery did not start"; finish; }
check "with discovery off it says nothing about broadcasts" sh -c "! grep -q 'answering discovery' '$T/nsoff.log'"
cli "$T/c-short.json" ns lookup svc.disc >"$T/f1" 2>&1; rc=$?
check "a name server with discovery off is not found: exit 5 and the message" \
	sh -c "[ $rc = 5 ] && grep -q 'answered a broadcast on UDP port $UPORT within 600 ms' '$T/f1'"
check "it is there all the same for clients that know its address" \
	sh -c "[ \"\$($IN '$NODE' --config '$T/c.json' ns lookup svc.disc --nameserver '$URL')\" = tcp://10.9.9.9:9 ]"
stop_pid "$PID_nsoff"
check "stops cleanly" [ "$STOP_RC" = 0 ]

# ---- (2) two network namespaces joined by a veth pair ----
if [ $HAVE_NETNS = 1 ]; then
	NA=nd$$a NB=nd$$b X=$(( $$ % 250 + 1 ))
	A_IP=10.213.$X.1 B_IP=10.213.$X.2 BRD=10.213.$X.255
	if netns_add "$NA" && netns_add "$NB" &&
		ip link add "vd$$a" netns "$NA" type veth peer name "vd$$b" netns "$NB" 2>"$T/netns.err" &&
		ip -n "$NA" addr add "$A_IP/24" brd + dev "vd$$a" 2>>"$T/netns.err" &&
		ip -n "$NB" addr add "$B_IP/24" brd + dev "vd$$b" 2>>"$T/netns.err" &&
		ip -n "$NA" link set "vd$$a" up 2>>"$T/netns.err" &&
		ip -n "$NB" link set "vd$$b" up 2>>"$T/netns.err"; then
		ok "namespaces $NA ($A_IP) and $NB ($B_IP) joined by a veth pair"
	else
		fail "cannot set up the namespace pair: $(cat "$T/netns.err")"
		finish
	fi
	P2=$(free_port) U2=$(free_port)
	server_file "$T/a.json" true "tcp://0.0.0.0:$P2" "$U2"
	server_file "$T/a-lo.json" true "tcp://127.0.0.1:$P2" "$U2"
	client_file "$T/b.json" "$CL" true 3000 "$U2"
	client_file "$T/b-short.json" "$CL" true 600 "$U2"
	sed -i "s/\"host\": \"127.0.0.1\"/\"host\": \"$B_IP\"/" "$T/b.json" "$T/b-short.json"

	start nsA ip netns exec "$NA" "$NODE" --config "$T/a.json" --name n --data-dir "$T/data-a" --log-level debug nameserver
	wait_for "$T/nsA.log" "answering discovery broadcasts on UDP port $U2" 10 || { fail "name server in $NA did not start"; finish; }
	ip netns exec "$NB" python3 "$T/q.py" "$U2" '{"q":"node-discover","role":"nameserver","cluster":"'"$CL"'","v":1}' "$BRD" >"$T/x1"
	check "a broadcast from $NB is answered with the address of $NA's interface, not 0.0.0.0" \
		grep -q "\"url\":\"tcp://$A_IP:$P2\"" "$T/x1"
	ip netns exec "$NB" "$NODE" --config "$T/b.json" ns register svc.far "tcp://$B_IP:7000" >"$T/x2" 2>&1; rc=$?
	check "a client in $NB registers through discovery" sh -c "[ $rc = 0 ] && grep -q '^svc.far -> tcp://$B_IP:7000' '$T/x2'"
	ip netns exec "$NB" "$NODE" --config "$T/b.json" ns lookup svc.far >"$T/x3" 2>&1; rc=$?
	check "and looks the name up" sh -c "[ $rc = 0 ] && [ \"\$(cat '$T/x3')\" = tcp://$B_IP:7000 ]"
	ip netns exec "$NA" "$NODE" --config "$T/a.json" --name n ns lookup svc.far --nameserver "tcp://127.0.0.1:$P2" >"$T/x4" 2>&1
	check "the name is in $NA's name server" grep -qx "tcp://$B_IP:7000" "$T/x4"
	stop_pid "$PID_nsA"
	check "the name server in $NA stops cleanly" [ "$STOP_RC" = 0 ]

	start nsAlo ip netns exec "$NA" "$NODE" --config "$T/a-lo.json" --name n --data-dir "$T/data-a" --log-level debug nameserver
	wait_for "$T/nsAlo.log" "answering discovery broadcasts" 10 || { fail "loopback name server in $NA did not start"; finish; }
	ip netns exec "$NB" "$NODE" --config "$T/b-short.json" ns lookup svc.far >"$T/x5" 2>&1; rc=$?
	check "a name server listening on 127.0.0.1 does not answer another machine: exit 5" \
		sh -c "[ $rc = 5 ] && grep -q 'no name server of cluster' '$T/x5'"
	check "it logs why at debug" grep -q "not answering $B_IP: tcp://127.0.0.1:$P2 cannot be dialled from another machine" "$T/nsAlo.log"
	stop_pid "$PID_nsAlo"
	check "and stops cleanly" [ "$STOP_RC" = 0 ]
fi

check_no_sanitizer
finish
