# Channels by name alone: two channel hosts register their channels as
# channel/NAME at the name server (declared ones at start, others when
# first used); a client that names only the channel reaches the host that
# has it; a stopped host removes its names; a declared channel held by
# another host fails the start (exit 3) unless --replace.
. "$(dirname "$0")/../lib.sh"
NSURL=tcp://127.0.0.1:$(free_port)
H1=tcp://127.0.0.1:$(free_port)
H2=tcp://127.0.0.1:$(free_port)
cat >"$T/c.json" <<JSON
{
  "cluster": "chan-names",
  "defaults": { "timeout_ms": 3000, "discovery": false },
  "nodes": {
    "a": { "roles": { "nameserver": { "listen": "$NSURL", "discovery": false }, "chanhost": { "listen": "$H1" } } },
    "b": { "roles": { "chanhost": { "listen": "$H2", "channels": [ { "name": "jobs", "kind": "any2one", "capacity": 4 } ] } } }
  }
}
JSON
export NODE_CONFIG="$T/c.json"
start ns "$NODE" --name a --data-dir "$T/ns" nameserver
wait_for "$T/ns.log" 'listening on' 10 || { fail "name server did not start"; finish; }
start h1 "$NODE" --name a chanhost
start h2 "$NODE" --name b chanhost
wait_for "$T/h1.log" 'listening on' 10 && wait_for "$T/h2.log" 'listening on' 10 || { fail "hosts did not start"; finish; }
H2PID=$PID_h2

lookup() { "$NODE" --name a ns lookup "$1" 2>/dev/null; }
until_found() { i=0; while [ $i -lt 100 ]; do lookup "$1" | grep -q "$2" && return 0; sleep 0.05; i=$((i + 1)); done; return 1; }
check "a declared channel is registered at start: channel/jobs -> host b" until_found channel/jobs "$H2"

# The client runs as node a, whose own chanhost is H1: the name finds H2.
"$NODE" --name a chan write jobs one two
check "a write by name alone went to host b" [ "$("$NODE" chan list --host "$H2" --json | grep -c '"name":"jobs".*"buffered":2')" = 1 ]
out=$("$NODE" --name a chan read jobs --count 2)
check "a read by name alone takes them" [ "$(echo $out)" = "one two" ]

# A channel made on first use on host b is registered too and then found by name.
"$NODE" chan create fresh --host "$H2" --capacity 1 >/dev/null
check "a channel made on b later is registered" until_found channel/fresh "$H2"
"$NODE" --name a chan write fresh hello
check "and reached by name from a" [ "$("$NODE" --name a chan read fresh --count 1)" = hello ]
"$NODE" chan delete fresh --host "$H2" >/dev/null
i=0; while [ $i -lt 100 ] && lookup channel/fresh | grep -q "$H2"; do sleep 0.05; i=$((i + 1)); done
check "a deleted channel's name is removed" sh -c "! '$NODE' --name a ns lookup channel/fresh >/dev/null 2>&1"

# A second host declaring jobs at another address cannot take the name.
H3=tcp://127.0.0.1:$(free_port)
"$NODE" --name b chanhost --listen "$H3" >"$T/h3.log" 2>&1 &
P3=$!
i=0; while [ $i -lt 200 ] && kill -0 $P3 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
wait $P3; rc=$?
check "a declared channel held by another host: exit 3" [ "$rc" = 3 ]
check "... saying who holds it" grep -q "channel/jobs" "$T/h3.log"

# A clean stop removes the host's names.
kill -TERM "$H2PID"
i=0; while [ $i -lt 100 ] && kill -0 "$H2PID" 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
check "stopped host b removed channel/jobs" sh -c "! '$NODE' --name a ns lookup channel/jobs >/dev/null 2>&1"
finish
