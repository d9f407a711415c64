/* The broker role's shared state, for the files of modules/broker/:
 * ops.c (the op table) with submit.c, lease.c, results.c, revoke.c and
 * admin.c (the ops), store.c (the state), records.c (journal records and
 * replay), and modules/broker.c (start, timers, stop). */
#ifndef NODE_BROKER_H
#define NODE_BROKER_H

#include <pthread.h>

#include "core/cmd.h"
#include "core/journal.h"
#include "core/transport.h"
#include "store.h"

#define BROKER_SUBMIT_MAX 10000 /* tasks in one submit */
#define BROKER_FETCH_MAX 10000  /* tasks asked for in one fetch, results in one report */
#define BROKER_GET_MAX 10000    /* ids in one get or revoke */

typedef struct broker_fetch broker_fetch;
typedef struct broker_get broker_get;

typedef struct broker {
	node_ctx *ctx;
	pthread_mutex_t lock;   /* guards everything below */
	broker_store st;
	node_journal *journal;
	node_server *srv;
	broker_fetch *fetches;  /* parked fetches, oldest first */
	broker_get *gets;       /* parked gets */
	int64_t lease_ms;
	int64_t compact_floor;  /* bytes of journal before compaction is considered */
	int compacting;
	int64_t compacted_ms;   /* when the last snapshot finished */
	int stopping;
} broker;

struct broker_watch {
	broker_get *get;
	broker_watch *next;
};


struct broker_fetch {
	node_call *call;
	broker_worker *w;
	broker_queue **qs;
	int nq, slots;
	int64_t deadline;
	uint32_t pipe;
	broker_fetch *next;
};

struct broker_get {
	node_call *call;
	char **ids;
	int n, pending;
	int64_t deadline;
	uint32_t pipe;
	broker_get *prev, *next;
};

/* ops.c: shared checks (names: 1 to 128 of A-Z a-z 0-9 . _ : - / @) */
int broker_name_ok(const char *s);
const char *broker_json_str(const cJSON *o, const char *k);
/* An integer field within bounds, or def when absent; -1 on a bad value. */
int broker_json_int(const cJSON *o, const char *k, long long lo, long long hi, long long def, long long *out);

/* The ops (submit.c, lease.c, results.c, revoke.c, admin.c) */
void broker_op_submit(node_call *c, const cJSON *req, void *arg);
void broker_op_register(node_call *c, const cJSON *req, void *arg);
void broker_op_fetch(node_call *c, const cJSON *req, void *arg);
void broker_op_report(node_call *c, const cJSON *req, void *arg);
void broker_op_heartbeat(node_call *c, const cJSON *req, void *arg);
void broker_op_giveback(node_call *c, const cJSON *req, void *arg);
void broker_op_bye(node_call *c, const cJSON *req, void *arg);
void broker_op_get(node_call *c, const cJSON *req, void *arg);
void broker_op_status(node_call *c, const cJSON *req, void *arg);
void broker_op_queues(node_call *c, const cJSON *req, void *arg);
void broker_op_workers(node_call *c, const cJSON *req, void *arg);
void broker_op_dead(node_call *c, const cJSON *req, void *arg);
void broker_op_revoke(node_call *c, const cJSON *req, void *arg);
/* Answer a parked fetch with these tasks (NULL: none) / free it. */
void broker_fetch_answer(broker_fetch *f, cJSON *list);
void broker_fetch_free(broker_fetch *f);
/* Answer a parked get with the state of its tasks and forget it (lock held). */
void broker_get_answer(broker *b, broker_get *g);

/* ops.c */
extern const node_op broker_ops[];
void broker_on_disconnect(uint32_t pipe, void *arg);
/* Hand queued tasks to parked fetches (lock held). */
void broker_feed(broker *b);
/* A task reached a final state or vanished: wake the gets watching it (lock held). */
void broker_notify(broker *b, broker_task *t);
/* The worker is gone or silent: its tasks move on (lock held). */
void broker_worker_lost(broker *b, broker_worker *w, int64_t now_ms);
/* Time out parked fetches and gets (lock held). */
void broker_expire_parked(broker *b, int64_t now_ms, int all);

/* records.c */
int broker_rec_submit(broker *b, const broker_task *t, node_err *err);
int broker_rec_delivery(broker *b, const broker_task *t, node_err *err);
int broker_rec_finish(broker *b, const broker_task *t, node_err *err);
int broker_rec_revoke(broker *b, const broker_task *t, int64_t ts, node_err *err);
int broker_rec_simple(broker *b, char type, const broker_task *t, node_err *err);
int broker_replay(const void *rec, size_t len, void *arg);
int broker_snapshot(node_journal *j, void *arg);

#endif
