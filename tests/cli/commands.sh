# The command line: help, --help, --version, usage errors, busybox symlinks.
. "$(dirname "$0")/../lib.sh"

"$NODE" help >"$T/help" 2>&1
check "node help exits 0" [ $? = 0 ]
for c in help version up ping config; do
	check "node help lists $c" grep -q "^  $c " "$T/help"
done
"$NODE" ping --help >"$T/ph" 2>&1
check "node ping --help exits 0 with usage" sh -c "[ $? = 0 ] && grep -q 'usage: node ping' '$T/ph'"
"$NODE" help ping >"$T/hp" 2>&1
check "node help ping = node ping --help" cmp -s "$T/ph" "$T/hp"
"$NODE" --version >"$T/v" 2>&1
check "--version names node nng cJSON lz4 mbedtls" sh -c "grep -q '^node ' '$T/v' && grep -q '^nng ' '$T/v' && grep -q '^cJSON ' '$T/v' && grep -q '^lz4 ' '$T/v' && grep -q '^mbedtls ' '$T/v'"
"$NODE" frobnicate >"$T/u" 2>&1
check "unknown command exits 2" [ $? = 2 ]
check "unknown command says so and shows usage" sh -c "grep -q 'unknown command \"frobnicate\"' '$T/u' && grep -q usage '$T/u'"
"$NODE" ping --bogus tcp://127.0.0.1:1 >"$T/o" 2>&1
check "unknown option exits 2" [ $? = 2 ]
check "unknown option shows the command usage" sh -c "grep -q 'unknown option --bogus' '$T/o' && grep -q 'usage: node ping' '$T/o'"
"$NODE" ping >"$T/o" 2>&1
check "missing argument exits 2" [ $? = 2 ]
"$NODE" --log-level loud help >"$T/o" 2>&1
check "bad --log-level exits 2" [ $? = 2 ]
ln -s "$NODE" "$T/ping"
"$T/ping" --help >"$T/bb" 2>&1
check "busybox: a symlink named ping runs node ping" grep -q 'usage: node ping' "$T/bb"
ln -s "$NODE" "$T/version"
"$T/version" >"$T/bv" 2>&1
check "busybox: a symlink named version runs node version" grep -q '^node ' "$T/bv"
finish
