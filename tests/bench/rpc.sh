#!/bin/sh
# RPC figures (issue 5), on 127.0.0.1: a name server, one `node rpc` for
# `add` (transport and HTTP) and three more for the chain 1 -> 2 -> 3 -> 1,
# each its own process; bench_rpc measures them next to a bare nng REQ/REP
# pair answering the same bytes in the same run (BENCH_CALLS, BENCH_SECONDS).
# Targets (2 cores): sequential >= 90% of the bare pair, >= 40,000 calls/s
# with 64 in flight, chain median < 700 us.
. "$(dirname "$0")/lib.sh"
need "$TOOLS/bench_rpc"
NS=tcp://127.0.0.1:$(free_port)
U=tcp://127.0.0.1:$(free_port)
H=http://127.0.0.1:$(free_port)
cat >"$T/c.json" <<JSON
{ "cluster": "bench-rpc", "defaults": { "discovery": false },
  "nodes": { "n": { "roles": { "nameserver": { "listen": "$NS", "discovery": false } } } } }
JSON
start ns "$NODE" --config "$T/c.json" --name n --data-dir "$T/ns" nameserver
wait_for "$T/ns.log" 'listening on' 20 || exit 1
# start records the pid of what it runs: the node process itself, never a
# shell function around it (that would leave node running at the exit).
RPC="--config $T/c.json --name n --log-level warn rpc --nameserver $NS"
start add "$NODE" $RPC --listen "$U" --http "$H"
for k in 1 2 3; do
	next=$((k % 3 + 1))
	start chain$k "$NODE" $RPC --listen tcp://127.0.0.1:$(free_port) --http '' --register-as bench.rpc$k --no-functions \
		--object example.chainTopology.$k=chain:this=$k,next=$next
done
# Ready when every name answers.
i=0
until "$NODE" --config "$T/c.json" ns lookup example.chainTopology.3 --nameserver "$NS" >/dev/null 2>&1 &&
	"$NODE" --config "$T/c.json" ns lookup example.chainTopology.1 --nameserver "$NS" >/dev/null 2>&1 &&
	"$TOOLS/rawcall" "$U" '{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1}' 1000 >/dev/null 2>&1 || [ $i -ge 200 ]; do
	sleep 0.05; i=$((i + 1))
done
C1=$("$NODE" --config "$T/c.json" ns lookup example.chainTopology.1 --nameserver "$NS")
"$TOOLS/bench_rpc" "$U" "$H" "$C1" example.chainTopology.1 | grep -v warm-up || exit 1
