#!/bin/sh
# EXAMPLES.md "Remote objects": the greeting. A name server runs; a
# greeting object registers as `server`; a client that knows only the name
# calls welcomeMessage("Rashmi").   sh conf/examples/greeting.sh ./node
. "$(dirname "$0")/rpc-env.sh"
say "node rpc --object server=greeting &"
rpc greet --object server=greeting
say "node call server welcomeMessage Rashmi"
"$NODE" call server welcomeMessage Rashmi
