#!/bin/sh
# make demo: start `node up` with the embedded default, show it working,
# stop it cleanly. Usage: conf/examples/demo.sh ./node
set -u
NODE=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
D=$(mktemp -d /tmp/node-demo.XXXXXX)
trap 'kill -TERM $UP 2>/dev/null; rm -rf "$D"' EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

say node --version
"$NODE" --version
say node help
"$NODE" help
say node config check conf/three-machines.json
"$NODE" config check "$(dirname "$0")/../three-machines.json"
say "node up &   (every role of the embedded one-machine cluster, one process)"
"$NODE" up --data-dir "$D/data" 2>"$D/up.log" &
UP=$!
i=0
until grep -q 'SIGINT or SIGTERM stops' "$D/up.log" 2>/dev/null || [ $i -ge 100 ]; do sleep 0.05; i=$((i + 1)); done
sed 's/^/  | /' "$D/up.log"
for url in $(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$D/up.log"); do
	say node ping --count 3 "$url"
	"$NODE" ping --count 3 "$url"
done
EX=$(dirname "$0")
say node submit add 5 5 --wait
"$NODE" submit add 5 5 --wait
say node submit sqrt 4 --queue sqrt --wait
"$NODE" submit sqrt 4 --queue sqrt --wait
say "conf/examples/fibo.sh   (fibo 4 3 8 6 10 on queue fibo)"
NODE="$NODE" sh "$EX/fibo.sh"
say "node submit pi 1000000 42 --wait   (Monte Carlo: 10^6 points, seed 42)"
"$NODE" submit pi 1000000 42 --wait
say "node submit fibo 300 --wait   (exact big integers)"
"$NODE" submit fibo 300 --wait
say "conf/examples/futures.sh   (node map: pi, mapReduce, order, statistics)"
NODE="$NODE" sh "$EX/futures.sh"
i=0 # the RPC server registers its objects once the name server answers
until "$NODE" ns lookup server >/dev/null 2>&1 || [ $i -ge 100 ]; do sleep 0.05; i=$((i + 1)); done
say "node ns list   (the name server: what node up's RPC server registered)"
"$NODE" ns list | cut -c1-110
say node call server welcomeMessage Rashmi
"$NODE" call server welcomeMessage Rashmi
say node call rpc.local add 3 5
"$NODE" call rpc.local add 3 5
say "curl -d '{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":[3,5],\"id\":1}' http://127.0.0.1:7121/rpc"
curl -s -d '{"jsonrpc":"2.0","method":"add","params":[3,5],"id":1}' http://127.0.0.1:7121/rpc; echo
say "conf/examples/shop.sh   (Pyro's shop, its own name server and RPC server)"
sh "$EX/shop.sh" "$NODE"
say "conf/examples/chain.sh   (three servers, a call around the cycle)"
sh "$EX/chain.sh" "$NODE"
say "conf/examples/exec.sh   (remote execution, allow-listed)"
sh "$EX/exec.sh" "$NODE"
say "conf/examples/channels.sh   (PyCSP: counter/printer, a pipeline, pub/sub)"
sh "$EX/channels.sh" "$NODE"
say "conf/examples/wordcount.sh   (Disco: word count, then the same counts by count)"
sh "$EX/wordcount.sh" "$NODE"
say node queues
"$NODE" queues
say node workers
"$NODE" workers
say "kill -TERM $UP   (node up drains and stops)"
kill -TERM $UP
wait $UP
echo "node up exited with status $?"
sed 's/^/  | /' "$D/up.log" | tail -3
