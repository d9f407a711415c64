#!/bin/sh
# EXAMPLES.md "Remote objects": the chain. Three servers register
# example.chainTopology.1, .2 and .3; each forwards to the next (3 to 1),
# and the call that comes back to 1 closes the chain. The calls between
# servers wait in callbacks, not threads: no deadlock.
#   sh conf/examples/chain.sh ./node
. "$(dirname "$0")/rpc-env.sh"
for i in 1 2 3; do
	next=$((i % 3 + 1))
	say "node rpc --object example.chainTopology.$i=chain:this=$i,next=$next &"
	rpc chain$i --object "example.chainTopology.$i=chain:this=$i,next=$next"
done
say "node call --json example.chainTopology.1 process '[\"hello\"]'"
"$NODE" call --json example.chainTopology.1 process '["hello"]'
say "the servers' logs"
cat "$D/chain1.log" "$D/chain2.log" "$D/chain3.log" | grep -e forwarding -e 'chain is closed' | sed 's/^.*rpc: //'
