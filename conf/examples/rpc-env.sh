# Sourced by the RPC examples (greeting.sh, chain.sh, shop.sh, add.sh): a
# private name server and cluster file in a temp directory, so an example
# runs anywhere without touching a cluster that is already up. Every
# server listens on port 0 (the system picks one) and says where in its log.
set -u
NODE=${1:-${NODE:-node}}
D=$(mktemp -d /tmp/node-rpc-example.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
# wait_log FILE PATTERN: until a line matches (at most 10 s)
wait_log() {
	i=0
	until grep -q -- "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 200 ] && { echo "gave up waiting for '$2' in $1:" >&2; cat "$1" >&2; exit 1; }
		sleep 0.05
	done
}
# bg NAME CMD...: run in the background, stderr to $D/NAME.log
bg() {
	n=$1; shift
	"$@" 2>"$D/$n.log" &
	PIDS="$PIDS $!"
}
echo '{"defaults": {"discovery": false}, "nodes": {"example": {}}}' >"$D/c.json"
bg ns "$NODE" -c "$D/c.json" --data-dir "$D/ns" nameserver --listen tcp://127.0.0.1:0
wait_log "$D/ns.log" 'listening on'
NS_URL=$(sed -n 's/.*listening on \(tcp:[^ ]*\).*/\1/p' "$D/ns.log" | head -1)
cat >"$D/c.json" <<JSON
{ "cluster": "rpc-example", "defaults": { "discovery": false },
  "nodes": { "example": { "roles": { "nameserver": { "listen": "$NS_URL" } } } } }
JSON
export NODE_CONFIG="$D/c.json"
# rpc NAME ARGS...: a `node rpc` on a free port, registered at our name server
rpc() {
	n=$1; shift
	bg "$n" "$NODE" --name example rpc --listen tcp://127.0.0.1:0 --http '' --register-as "rpc.$n" "$@"
	wait_log "$D/$n.log" 'registered rpc'
}
