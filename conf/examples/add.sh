#!/bin/sh
# EXAMPLES.md "RPC": a server exposes functions; a client calls add(3, 5)
# and gets 8: by the server's registered name, by its URL, and over HTTP
# with curl as any JSON-RPC 2.0 client would.   sh conf/examples/add.sh ./node
. "$(dirname "$0")/rpc-env.sh"
say "node rpc --register-as rpc.calc --http http://127.0.0.1:0 &"
bg calc "$NODE" --name example rpc --listen tcp://127.0.0.1:0 --http http://127.0.0.1:0 --register-as rpc.calc
wait_log "$D/calc.log" 'registered rpc.calc'
URL=$(sed -n 's/.*listening on \(tcp:[^ ]*\).*/\1/p' "$D/calc.log" | head -1)
HTTP=$(sed -n 's/.*over HTTP on \(http:[^ ]*\).*/\1/p' "$D/calc.log" | head -1)
say "node call rpc.calc add 3 5"
"$NODE" call rpc.calc add 3 5
say "node call $URL add 3 5"
"$NODE" call "$URL" add 3 5
say "curl -d '{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":[3,5],\"id\":1}' $HTTP/rpc"
curl -s -d '{"jsonrpc":"2.0","method":"add","params":[3,5],"id":1}' "$HTTP/rpc"
echo
