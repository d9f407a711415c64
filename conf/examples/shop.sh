#!/bin/sh
# EXAMPLES.md "Remote objects": the shop. Rashmi (cash 100) logs on,
# deposits 100, buys a book for 37 and logs out; Meeta (cash 50) logs on,
# deposits 50 twice and logs out; then every account, and a deposit to an
# unknown account, which fails while the shop keeps serving.
#   sh conf/examples/shop.sh ./node
. "$(dirname "$0")/rpc-env.sh"
say "node rpc --object example.shop.Shop=shop &"
rpc shop --object example.shop.Shop=shop
say "node ns list example.shop."
"$NODE" ns list example.shop. | cut -c1-60
shop() { echo "> $*"; "$NODE" call example.shop.Shop "$@" >/dev/null; }
say "Rashmi and Meeta shopping"
shop logOn Rashmi && shop deposit Rashmi 100 && shop buy Rashmi book 37 && shop logOut Rashmi
shop logOn Meeta && shop deposit Meeta 50 && shop deposit Meeta 50 && shop logOut Meeta
say "node call example.shop.Shop allAccounts"
"$NODE" call example.shop.Shop allAccounts | tee "$D/all"
tr -d '{}"' <"$D/all" | tr ',' '\n' | awk -F: '{ printf "%s %.2f\n", $1, $2 }'
say "node call example.shop.Shop deposit Nobody 10   (an unknown account)"
"$NODE" call example.shop.Shop deposit Nobody 10
echo "exit status $?"
say "node call example.shop.Shop name   (still serving)"
"$NODE" call example.shop.Shop name
