/* Surveys: ask every connected node at once and gather the answers that
 * arrive within a deadline (discovery, remote control). Respondents answer
 * one survey at a time on a single aio; answers are short. */
#include <nng/nng.h>
#include <nng/protocol/survey0/respond.h>
#include <nng/protocol/survey0/survey.h>
#include <nng/supplemental/util/platform.h>
#include <stdlib.h>

#include "log.h"
#include "transport.h"

struct node_respondent {
	nng_socket sock;
	nng_aio *aio;
	int sending;
	node_wire *wire;
	node_survey_fn fn;
	void *arg;
};

static void resp_cb(void *arg)
{
	node_respondent *r = arg;
	int rv = nng_aio_result(r->aio);
	if (r->sending) {
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(r->aio));
			nng_aio_set_msg(r->aio, NULL);
		}
	} else if (rv == 0) {
		nng_msg *m = nng_aio_get_msg(r->aio), *out = NULL;
		cJSON *q = NULL;
		node_err err = {0};
		int rc = node_msg_decode(r->wire, nng_msg_body(m), nng_msg_len(m), 1, &q, &err);
		nng_msg_free(m);
		cJSON *a = rc == 0 ? r->fn(q, r->arg) : NULL;
		cJSON_Delete(q);
		if (a != NULL && node_msg_encode(r->wire, a, &out, &err) == 0) {
			cJSON_Delete(a);
			r->sending = 1;
			nng_aio_set_msg(r->aio, out);
			nng_send_aio(r->sock, r->aio);
			return;
		}
		cJSON_Delete(a);
	}
	if (rv == NNG_ECLOSED)
		return;
	r->sending = 0;
	nng_recv_aio(r->sock, r->aio);
}

int node_respondent_start(node_respondent **out, const char *url, int do_listen, node_wire *w,
    node_survey_fn fn, void *arg, node_err *err)
{
	node_respondent *r = calloc(1, sizeof *r);
	if (r == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	r->wire = w;
	r->fn = fn;
	r->arg = arg;
	int rv = nng_respondent0_open(&r->sock);
	if (rv == 0 && (rv = nng_aio_alloc(&r->aio, resp_cb, r)) != 0)
		nng_close(r->sock);
	if (rv != 0) {
		free(r);
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot open a respondent socket: %s", nng_strerror(rv));
	}
	int rc = do_listen ? node_listen(r->sock, url, w, NULL, 0, err) : node_dial(r->sock, url, w, err);
	if (rc != 0) {
		nng_close(r->sock);
		nng_aio_free(r->aio);
		free(r);
		return rc;
	}
	nng_recv_aio(r->sock, r->aio);
	*out = r;
	return 0;
}

void node_respondent_stop(node_respondent *r)
{
	if (r == NULL)
		return;
	nng_close(r->sock);
	nng_aio_free(r->aio);
	free(r);
}

int node_survey(const char *url, int do_listen, node_wire *w, const cJSON *question, int timeout_ms,
    int settle_ms, node_answer_fn cb, void *arg, int *answers, node_err *err)
{
	nng_socket s;
	int rv = nng_surveyor0_open(&s);
	if (rv != 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot open a surveyor socket: %s", nng_strerror(rv));
	nng_socket_set_ms(s, NNG_OPT_SURVEYOR_SURVEYTIME, timeout_ms);
	nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, node_wire_recv_max(w));
	int rc = do_listen ? node_listen(s, url, w, NULL, 0, err) : node_dial(s, url, w, err);
	nng_msg *m = NULL;
	if (rc == 0 && settle_ms > 0)
		nng_msleep((nng_duration)settle_ms); /* let respondents connect: surveys go only to live pipes */
	if (rc == 0)
		rc = node_msg_encode(w, question, &m, err);
	if (rc == 0 && (rv = nng_sendmsg(s, m, 0)) != 0) {
		nng_msg_free(m);
		rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot send the survey: %s", nng_strerror(rv));
	}
	int n = 0;
	while (rc == 0) {
		if (nng_recvmsg(s, &m, 0) != 0)
			break; /* the survey time ran out */
		cJSON *a = NULL;
		node_err derr = {0};
		if (node_msg_decode(w, nng_msg_body(m), nng_msg_len(m), 0, &a, &derr) == 0) {
			n++;
			cb(a, arg);
		} else {
			node_debug("survey: ignored an answer: %s", derr.msg);
		}
		nng_msg_free(m);
	}
	nng_close(s);
	if (answers)
		*answers = n;
	return rc;
}
