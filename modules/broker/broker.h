/* The broker role's shared state, for the files of modules/broker/:
 * ops.c (the protocol), records.c (journal records and replay) and
 * modules/broker.c (start, timers, stop). */
#ifndef NODE_BROKER_H
#define NODE_BROKER_H

#include <pthread.h>

#include "core/cmd.h"
#include "core/journal.h"
#include "core/transport.h"
#include "store.h"

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

int64_t broker_now_ms(void);

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
int broker_rec_simple(broker *b, char type, const broker_task *t, node_err *err);
int broker_replay(const void *rec, size_t len, void *arg);
int broker_snapshot(node_journal *j, void *arg);

#endif
