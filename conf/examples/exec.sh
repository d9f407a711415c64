#!/bin/sh
# EXAMPLES.md "RPC": a remote execution service, off unless allowed, runs a
# command on the server and the command's standard output is shown on the
# client. The server allows uname and echo and nothing else, so rm -rf / is
# refused.   sh conf/examples/exec.sh ./node
. "$(dirname "$0")/rpc-env.sh"
# rpc-env.sh's cluster file, plus this node's exec allow-list; the commands
# run in $D/data/exec, nothing outside $D is touched.
cat >"$D/c.json" <<JSON
{ "cluster": "rpc-example", "defaults": { "discovery": false },
  "nodes": { "example": { "data_dir": "$D/data", "roles": {
    "nameserver": { "listen": "$NS_URL" },
    "rpc": { "exec": { "allow": ["uname", "echo"], "max_seconds": 10 } } } } } }
JSON
say "node rpc --register-as rpc.remote &   (roles.rpc.exec.allow: [\"uname\", \"echo\"])"
rpc remote
URL=$(sed -n 's/.*listening on \(tcp:[^ ]*\).*/\1/p' "$D/remote.log" | head -1)
say "node exec $URL -- uname -a"
"$NODE" exec "$URL" -- uname -a
echo "exit status $?"
say "node exec rpc.remote -- echo hello from the server   (by name, through the name server)"
"$NODE" exec rpc.remote -- echo hello from the server
echo "exit status $?"
say "node exec $URL -- rm -rf /   (not on the allow-list)"
"$NODE" exec "$URL" -- rm -rf /
echo "exit status $?"
