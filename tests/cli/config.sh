# node config check / show: every error with its JSON path; effective config.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT"

for f in conf/one-machine.json conf/three-machines.json; do
	"$NODE" config check "$f" >"$T/o" 2>&1
	check "config check $f is valid" [ $? = 0 ]
done
"$NODE" config check conf/bad-example.json >"$T/bad" 2>&1
check "config check of a bad file exits 3" [ $? = 3 ]
check "errors carry the JSON path and what was expected" grep -q 'concurrency: expected an integer >= 1, got "four"' "$T/bad"
check "all errors are reported" [ "$(grep -c 'conf/bad-example.json: ' "$T/bad")" -ge 3 ]
printf '{"nodes": {"a": {}},' >"$T/trunc.json"
"$NODE" config check "$T/trunc.json" >"$T/o" 2>&1
check "malformed JSON exits 3 with a position" sh -c "[ $? = 3 ] && grep -qi 'line' '$T/o'"
"$NODE" config check "$T/missing.json" >"$T/o" 2>&1
check "a missing file exits 3 and names it" sh -c "[ $? = 3 ] && grep -q 'missing.json' '$T/o'"

(cd "$T" && "$NODE" config show) >"$T/show" 2>&1
check "config show without a file prints the embedded default" grep -q '"local"' "$T/show"
check "config show fills defaults" grep -q '"max_depth":[[:space:]]*64' "$T/show"
(cd "$T" && "$NODE" --data-dir /tmp/xyz --name local config show) >"$T/show2" 2>&1
check "flags override the file in config show" grep -q '/tmp/xyz' "$T/show2"
printf 'a-secret-long-enough-for-node\n' >"$T/secret"
sed "s|/etc/node/secret|$T/secret|" conf/three-machines.json >"$T/three.json"
NODE_CONFIG="$T/three.json" "$NODE" config show >"$T/show3" 2>&1
check "NODE_CONFIG selects the file" grep -q '"gamma"' "$T/show3"
NODE_CONFIG="$ROOT/conf/three-machines.json" "$NODE" ping tcp://127.0.0.1:1 >"$T/show5" 2>&1
check "an unreadable secret_file is named when a command needs it" grep -q 'secret_file: cannot open /etc/node/secret' "$T/show5"
NODE_CONFIG="$ROOT/conf/three-machines.json" "$NODE" config show >"$T/show6" 2>&1
check "config show needs no secret file" grep -q '"alpha"' "$T/show6"
printf '{"secret":"a-secret-long-enough-for-node","nodes":{"a":{}}}' >"$T/sec.json"
"$NODE" --config "$T/sec.json" config show >"$T/show7" 2>&1
check "config show hides an inline secret" sh -c "grep -q '(hidden)' '$T/show7' && ! grep -q 'a-secret-long' '$T/show7'"
printf '{"cluster":"from-node-json","nodes":{"here":{}}}' >"$T/node.json"
(cd "$T" && "$NODE" config show) >"$T/show4" 2>&1
check "./node.json is used when present" grep -q from-node-json "$T/show4"
finish
