# The CSP C API (<node/csp.h>): tests/tools/csp_test drives the local
# channels hard (its "ok:"/"FAIL:" lines are our checks); counter_printer
# prints "0 1 2 3 4" with a local channel and writes a trace with every
# event kind ($NODE_CSP_TRACE); pipeline's sum is exact locally and over two
# channel hosts; counter_printer over a host by URL and by the cluster file;
# the shared library exports the csp_* API and nothing of its inside.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/common.sh"
EX="$ROOT/$NODE_BUILD/examples"
for f in "$TOOLS/csp_test" "$EX/counter_printer" "$EX/pipeline"; do
	[ -x "$f" ] || { fail "$f is not built (make tools)"; finish; }
done

# ---- local ----
"$TOOLS/csp_test" "$T/test.trace" >"$T/test.out" 2>&1
rc=$?
while IFS= read -r line; do
	case "$line" in
	ok:*) echo "$line" ;;
	FAIL:*) fail "${line#FAIL: }" ;;
	esac
done <"$T/test.out"
check "csp_test exits 0" [ $rc = 0 ]
[ $rc = 0 ] || tail -20 "$T/test.out" >&2

NODE_CSP_TRACE="$T/cp.trace" "$EX/counter_printer" >"$T/cp.out" 2>"$T/cp.err"
check "counter_printer (local channel) prints exactly '0 1 2 3 4' and exits 0" \
	[ $? = 0 ] && [ "$(cat "$T/cp.out")" = "0 1 2 3 4" ] && [ ! -s "$T/cp.err" ]
check "its trace (\$NODE_CSP_TRACE) has every event kind, JSON lines, seq 1..N, trace_end last" python3 -c "
import json, sys
lines = [json.loads(l) for l in open('$T/cp.trace')]
kinds = '''channel_created end_created parallel_start process_start block_write block_read done_read
done_write poison retire process_quit parallel_done trace_end'''.split()
missing = set(kinds) - {l['event'] for l in lines}
assert not missing, missing
assert [l['seq'] for l in lines] == list(range(1, len(lines) + 1))
assert lines[-1]['event'] == 'trace_end'
assert all(isinstance(l['t'], float) for l in lines)
w = [l for l in lines if l['event'] == 'done_write']
assert len(w) == 5 and all(l['chan'] == 'A' and l['proc'] == 'counter' and l['dir'] == 'write' and l['n'] == 1 for l in w)
assert [l for l in lines if l['event'] == 'poison'][0]['proc'] == 'counter'
"
"$EX/pipeline" 1000 >"$T/pl.out" 2>&1
check "pipeline (local): sum of squares of 1..1000 = 333833500" grep -qx 'sum of squares of 1..1000 = 333833500' "$T/pl.out"

# ---- over channel hosts ----
start_chanhost
CH2=tcp://127.0.0.1:$(free_port)
start host2 "$NODE" chanhost --listen "$CH2"
wait_for "$T/host2.log" 'listening on' || { fail "second chanhost did not start"; finish; }

"$TOOLS/csp_test" "$T/net.trace" "$CH" >"$T/net.out" 2>&1
rc=$?
grep '^ok: network\|^ok: an alt mixing' "$T/net.out"
grep '^FAIL' "$T/net.out" | while IFS= read -r line; do echo "$line" >&2; done
check "csp_test with a host: networked alt and the mixed-alt refusal pass" [ $rc = 0 ] && [ "$(grep -c '^ok: network\|^ok: an alt mixing' "$T/net.out")" = 3 ]

timeout 30 "$EX/counter_printer" --host "$CH" --trace "$T/cpn.trace" >"$T/cpn.out" 2>"$T/cpn.err"
check "counter_printer --host $CH prints '0 1 2 3 4'" [ $? = 0 ] && [ "$(cat "$T/cpn.out")" = "0 1 2 3 4" ]
[ -s "$T/cpn.err" ] && cat "$T/cpn.err" >&2
check "... and traces its networked ops (5 done_write, 5 done_read, poison)" python3 -c "
import json
ev = [json.loads(l)['event'] for l in open('$T/cpn.trace')]
assert ev.count('done_write') == 5 and ev.count('done_read') == 5 and 'poison' in ev and ev[-1] == 'trace_end'
"
timeout 30 "$EX/counter_printer" --config "$NODE_CONFIG" >"$T/cpc.out" 2>&1
check "counter_printer --config (the cluster file's chanhost) prints '0 1 2 3 4'" \
	[ $? = 0 ] && [ "$(cat "$T/cpc.out")" = "0 1 2 3 4" ]
timeout 60 "$EX/pipeline" "$CH" "$CH2" 5000 >"$T/pln.out" 2>&1
check "pipeline over two hosts: sum of squares of 1..5000 = 41679167500" \
	grep -qx 'sum of squares of 1..5000 = 41679167500' "$T/pln.out"
grep -q '^sum of squares' "$T/pln.out" || head -5 "$T/pln.out" >&2
check "numbers was on the first host, squares on the second" sh -c "
	'$NODE' chan list pipeline. --host '$CH' | grep -q 'pipeline\\.[0-9]*\\.numbers' &&
	'$NODE' chan list pipeline. --host '$CH2' | grep -q 'pipeline\\.[0-9]*\\.squares' &&
	! '$NODE' chan list pipeline. --host '$CH' | grep -q squares"

# ---- the shared library ----
SO="$ROOT/$NODE_BUILD/libnodeclient.so"
if command -v nm >/dev/null && [ -e "$SO" ]; then
	nm -D --defined-only "$SO" | awk '{print $3}' | sed 's/@.*//' >"$T/syms"
	check "libnodeclient.so exports the CSP API (csp_alt, csp_parallel, csp_trace_start...)" \
		sh -c "grep -qx csp_alt '$T/syms' && grep -qx csp_parallel '$T/syms' && grep -qx csp_trace_start '$T/syms'"
	check "... and not its inside (csp_local_*, csp_net_*, csp_trace_event)" \
		sh -c "! grep -q -e '^csp_local_' -e '^csp_net_' -e '^csp_trace_event' '$T/syms'"
fi
finish
