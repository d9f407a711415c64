# The Pyro4 and RPyC scenarios of EXAMPLES.md, run as the scripts in
# conf/examples/ that users read (greeting.sh, chain.sh, shop.sh, add.sh),
# with their exact results. exec.sh is tests/rpc/exec.sh's.
. "$(dirname "$0")/../lib.sh"
run_ex() { timeout 60 sh "$ROOT/conf/examples/$1.sh" "$NODE" >"$T/$1.out" 2>&1; echo $? >"$T/$1.rc"; }
for ex in greeting chain shop add; do run_ex $ex; done
check "greeting.sh: Hi welcome Rashmi" sh -c "[ \$(cat '$T/greeting.rc') = 0 ] && grep -qx 'Hi welcome Rashmi' '$T/greeting.out'"
check "chain.sh: the message went round and came back complete" grep -qx '\["passed on from 1","passed on from 2","passed on from 3","complete at 1"\]' "$T/chain.out"
check "chain.sh: the servers logged forwarding and the closed chain" sh -c "grep -qx '1 forwarding the message to the object 2' '$T/chain.out' && grep -qx '3 forwarding the message to the object 1' '$T/chain.out' && grep -qx 'Back at 1; the chain is closed!' '$T/chain.out'"
check "shop.sh: listing example.shop. shows the shop" grep -q '^example.shop.Shop ' "$T/shop.out"
check "shop.sh: allAccounts is Meeta 100.00 and Rashmi 63.00" sh -c "grep -qx '{\"Meeta\":100,\"Rashmi\":63}' '$T/shop.out' && grep -qx 'Meeta 100.00' '$T/shop.out' && grep -qx 'Rashmi 63.00' '$T/shop.out'"
check "shop.sh: a deposit to an unknown account is an error to the caller" sh -c "grep -q 'unknown account' '$T/shop.out' && grep -qx 'exit status 1' '$T/shop.out'"
check "shop.sh: and the shop keeps serving" grep -qx 'The Shop' "$T/shop.out"
check "add.sh: add(3, 5) is 8 by name, by URL and over HTTP" sh -c "[ \$(grep -cx 8 '$T/add.out') = 2 ] && grep -q '\"result\":8' '$T/add.out'"
for ex in greeting chain shop add; do
	check "$ex.sh exits 0 and leaves no process behind" sh -c "[ \$(cat '$T/$ex.rc') = 0 ]"
done
check "no example server is left running" sh -c "! pgrep -f 'node-rpc-exampl[e]\.' >/dev/null"
finish
