# Shared-secret authentication end to end: signed calls work; unsigned,
# wrongly signed and replayed messages are refused and counted.
. "$(dirname "$0")/../lib.sh"
SECRET=correct-horse-battery-staple-42
start srv "$TOOLS/echo_server" tcp://127.0.0.1:0 "$SECRET"
wait_for "$T/srv.log" '^ready ' || { fail "echo server did not start"; finish; }
URL=$(sed -n 's/^ready //p' "$T/srv.log")
printf '{"secret":"%s","nodes":{"t":{}}}' "$SECRET" >"$T/good.json"
printf '{"secret":"%s","nodes":{"t":{}}}' "wrong-secret-of-enough-length" >"$T/bad.json"

"$NODE" --config "$T/good.json" ping "$URL" >"$T/o" 2>&1
check "ping with the cluster secret works" grep -q 'role echo' "$T/o"
"$NODE" ping "$URL" >"$T/o" 2>&1
check "ping without a secret fails with an actionable message" sh -c "[ $? != 0 ] && grep -q 'no cluster secret is configured here' '$T/o'"
"$NODE" --config "$T/bad.json" ping "$URL" >"$T/o" 2>&1
check "ping with the wrong secret fails on the signature" sh -c "[ $? != 0 ] && grep -q 'signature does not match' '$T/o'"
nngcat --req --dial "$URL" --data '{"op":"ping"}' --recv-timeout 5 --raw >"$T/nc" 2>&1
check "unsigned JSON from nngcat is refused, not executed" sh -c "grep -aq unauthenticated '$T/nc' && ! grep -aq '\"role\"' '$T/nc'"

"$TOOLS/sign" "$SECRET" '{"op":"echo","v":7}' >"$T/signed.bin"
nngcat --req --dial "$URL" --file "$T/signed.bin" --recv-timeout 5 --raw >"$T/r1" 2>&1
check "a signed message is accepted once" grep -aq '"v":7' "$T/r1"
nngcat --req --dial "$URL" --file "$T/signed.bin" --recv-timeout 5 --raw >"$T/r2" 2>&1
check "the same bytes replayed are refused" grep -aq replayed "$T/r2"
python3 - "$T/signed.bin" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[-3] ^= 0x20
open(p + ".tampered", "wb").write(b)
PY
nngcat --req --dial "$URL" --file "$T/signed.bin.tampered" --recv-timeout 5 --raw >"$T/r3" 2>&1
check "a tampered message is refused" grep -aq bad_signature "$T/r3"

"$TOOLS/call" "$URL" '{"op":"info"}' 5000 "$SECRET" >"$T/info" 2>&1
check "refusals are counted by kind" python3 -c "
import json,sys; s=json.load(open('$T/info'))['stats']['auth_refused']
sys.exit(0 if s['unsigned']>=1 and s['bad_signature']>=2 and s['replayed']>=1 else 1)"
finish
