# conf/examples/channels.sh (run by make demo) gives the results EXAMPLES.md
# asks for: 0 1 2 3 4, the pipeline's sum, both subscribers get both values.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/common.sh"
start_chanhost
out=$(timeout 60 sh conf/examples/channels.sh "$NODE" 2>&1); rc=$?
echo "$out"
check "channels.sh exits 0" [ "$rc" = 0 ]
check "counter/printer: 0 1 2 3 4" sh -c "echo '$out' | grep -qx '0 1 2 3 4 *'"
check "pipeline: sum of 1..1000 = 500500" sh -c "echo '$out' | grep -q 'sum of 1..1000 = 500500'"
check "both subscribers got hello and world" [ "$(echo "$out" | grep -c 'subscriber: \(hello\|world\)')" = 4 ]
finish
