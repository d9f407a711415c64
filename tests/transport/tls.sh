# TLS: a tls+tcp:// URL plus certificate paths in the cluster file just works;
# a client that does not trust the CA is refused. The CA is made here.
. "$(dirname "$0")/../lib.sh"
command -v openssl >/dev/null || { echo "openssl missing"; exit 77; }
cd "$T"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=node-test-ca -keyout ca.key -out ca.pem >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout srv.key -out srv.csr >/dev/null 2>&1
printf 'subjectAltName=DNS:localhost\n' >ext
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out srv.pem >/dev/null 2>&1
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout other.key -out other.pem >/dev/null 2>&1
[ -f srv.pem ] || { fail "could not make test certificates"; finish; }

start srv "$TOOLS/echo_server" tls+tcp://127.0.0.1:0 "" "$T/srv.pem" "$T/srv.key"
wait_for "$T/srv.log" '^ready ' || { fail "TLS echo server did not start"; finish; }
URL=$(sed -n 's/^ready //p' "$T/srv.log")
printf '{"tls":{"ca":"%s","server_name":"localhost"},"nodes":{"t":{}}}' "$T/ca.pem" >good.json
printf '{"tls":{"ca":"%s","server_name":"localhost"},"nodes":{"t":{}}}' "$T/other.pem" >bad.json

"$NODE" --config good.json ping "$URL" >o 2>&1
check "ping over TLS with the right CA works" grep -q 'role echo' o
"$NODE" --config bad.json --timeout 1000 ping "$URL" >o2 2>&1
check "a client that does not trust the server's CA gets no answer" sh -c "[ $? != 0 ] && ! grep -q 'role echo' o2"
"$NODE" --timeout 1000 ping "$URL" >o3 2>&1
check "tls+tcp:// without tls.ca is a clear error" grep -q 'needs tls.ca' o3
finish
