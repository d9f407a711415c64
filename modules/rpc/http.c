/* JSON-RPC 2.0 over HTTP POST with nng's HTTP server, so curl and any
 * JSON-RPC client can call the objects: POST / or /rpc with a request or a
 * batch; 200 with the response(s), 204 when all were notifications. GET /
 * lists the objects. With a cluster secret every request needs
 * "Authorization: Bearer TOKEN" (`node token` prints it). */
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "rpc/rpc.h"

#define HTTP_SESSION_MAX 64 /* bytes of an X-Node-Session value */

struct rpc_http {
	nng_http_server *srv;
	nng_url *url;
};

static void http_send(nng_aio *aio, uint16_t status, const cJSON *body)
{
	nng_http_res *res;
	if (nng_http_res_alloc(&res) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	nng_http_res_set_status(res, status);
	char *text = body ? cJSON_PrintUnformatted(body) : NULL;
	if (text) {
		nng_http_res_set_header(res, "Content-Type", "application/json");
		nng_http_res_copy_data(res, text, strlen(text));
		cJSON_free(text);
	}
	if (status == 401)
		nng_http_res_set_header(res, "WWW-Authenticate", "Bearer realm=\"node\"");
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static void http_done(cJSON *reply, void *arg)
{
	http_send(arg, reply ? 200 : 204, reply);
	cJSON_Delete(reply);
}

static rpc_server *http_server_of(nng_aio *aio)
{
	return nng_http_handler_get_data(nng_aio_get_input(aio, 1));
}

/* 1 when the request may go on; otherwise it was answered with 401. */
static int http_authorized(rpc_server *s, nng_aio *aio, nng_http_req *req)
{
	if (s->ctx->wire.auth == NULL || node_auth_http_check(s->ctx->wire.auth, nng_http_req_get_header(req, "Authorization")))
		return 1;
	cJSON *e = rpc_error_response(RPC_DENIED, "unauthorized: this cluster has a secret; send \"Authorization: Bearer "
	                                          "TOKEN\" (`node token` prints it)");
	http_send(aio, 401, e);
	cJSON_Delete(e);
	return 0;
}

static void http_post(nng_aio *aio)
{
	rpc_server *s = http_server_of(aio);
	nng_http_req *req = nng_aio_get_input(aio, 0);
	if (!http_authorized(s, aio, req))
		return;
	void *body;
	size_t len;
	nng_http_req_get_data(req, &body, &len);
	cJSON *msg = NULL;
	node_err err = {0};
	if (node_msg_parse_text(&s->ctx->wire, body, len, &msg, &err) != 0) {
		int too_big = err.rc == NODE_ELIMIT;
		char text[600];
		snprintf(text, sizeof text, "%s: %s", too_big ? "too large" : "parse error", err.msg);
		cJSON *e = rpc_error_response(too_big ? RPC_TOO_LARGE : RPC_PARSE_ERROR, text);
		http_send(aio, too_big ? 413 : 200, e);
		cJSON_Delete(e);
		return;
	}
	char session[HTTP_SESSION_MAX + 3] = "";
	const char *hs = nng_http_req_get_header(req, "X-Node-Session");
	if (hs && hs[0] && strlen(hs) <= HTTP_SESSION_MAX)
		snprintf(session, sizeof session, "h:%s", hs);
	rpc_serve(s, msg, session, http_done, aio);
	cJSON_Delete(msg);
}

static void http_index(nng_aio *aio)
{
	rpc_server *s = http_server_of(aio);
	if (!http_authorized(s, aio, nng_aio_get_input(aio, 0)))
		return;
	cJSON *o = cJSON_CreateObject();
	if (o) {
		cJSON_AddStringToObject(o, "server", s->name);
		cJSON_AddStringToObject(o, "node", s->node);
		cJSON_AddStringToObject(o, "protocol", "JSON-RPC 2.0: POST a request or a batch to / or /rpc");
		cJSON_AddItemToObject(o, "objects", rpc_objects_json(s));
	}
	http_send(aio, o ? 200 : 500, o);
	cJSON_Delete(o);
}

static int http_route(rpc_http *h, rpc_server *s, const char *path, const char *method, void (*fn)(nng_aio *))
{
	nng_http_handler *hd;
	int rv = nng_http_handler_alloc(&hd, path, fn);
	if (rv != 0)
		return rv;
	if ((rv = nng_http_handler_set_method(hd, method)) == 0 &&
	    (rv = nng_http_handler_collect_body(hd, true, node_wire_recv_max(&s->ctx->wire))) == 0 &&
	    (rv = nng_http_handler_set_data(hd, s, NULL)) == 0 && (rv = nng_http_server_add_handler(h->srv, hd)) == 0)
		return 0;
	nng_http_handler_free(hd);
	return rv;
}

/* The URL with the port the system chose (for http://host:0). */
static void http_bound_url(rpc_http *h, rpc_server *s)
{
	nng_sockaddr sa;
	if (nng_http_server_get_addr(h->srv, &sa) == 0 && sa.s_family == NNG_AF_INET)
		snprintf(s->http_url, sizeof s->http_url, "http://%s:%u", h->url->u_hostname, (unsigned)ntohs(sa.s_in.sa_port));
}

int rpc_http_start(rpc_server *s, const char *url, node_err *err)
{
	rpc_http *h = calloc(1, sizeof *h);
	if (h == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	s->http = h;
	snprintf(s->http_url, sizeof s->http_url, "%s", url);
	int rv = nng_url_parse(&h->url, url);
	if (rv != 0 || strcmp(h->url->u_scheme, "http") != 0)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "HTTP address %s: expected http://host:port", url);
	if ((rv = nng_http_server_hold(&h->srv, h->url)) == 0 && (rv = http_route(h, s, "/", "POST", http_post)) == 0 &&
	    (rv = http_route(h, s, "/rpc", "POST", http_post)) == 0 && (rv = http_route(h, s, "/", "GET", http_index)) == 0)
		rv = nng_http_server_start(h->srv);
	if (rv != 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot serve HTTP on %s: %s", url, nng_strerror(rv));
	http_bound_url(h, s);
	node_info("serving JSON-RPC over HTTP on %s", s->http_url);
	return 0;
}

void rpc_http_stop(rpc_server *s)
{
	rpc_http *h = s->http;
	if (h == NULL)
		return;
	if (h->srv) {
		nng_http_server_stop(h->srv);
		nng_http_server_release(h->srv);
	}
	if (h->url)
		nng_url_free(h->url);
	free(h);
	s->http = NULL;
}
