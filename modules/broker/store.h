/* The broker's in-memory state: tasks by id, queues with priority lanes,
 * workers and their leases, dead letters. No locking and no I/O here: the
 * broker holds one lock around every call and journals what changes. */
#ifndef NODE_BROKER_STORE_H
#define NODE_BROKER_STORE_H

#include <stddef.h>
#include <stdint.h>

#define BROKER_PRIORITIES 10
#define BROKER_ID_MAX 128
#define BROKER_NAME_MAX 128

enum broker_state {
	BROKER_COMMITTING, /* submitted, not yet durable: invisible to workers */
	BROKER_QUEUED,
	BROKER_STARTED,
	BROKER_SUCCEEDED,
	BROKER_FAILED,
	BROKER_DEAD,
	BROKER_REVOKED,    /* cancelled while queued: finished without running */
};

typedef struct broker_queue broker_queue;
typedef struct broker_worker broker_worker;
typedef struct broker_watch broker_watch;

typedef struct broker_task {
	struct broker_task *prev, *next; /* queue lane, worker's lease list, or finished list */
	struct broker_task *hnext;       /* id hash chain */
	broker_queue *queue;
	broker_worker *worker;           /* while started */
	broker_worker *ran_by;           /* the last worker it was handed to (workers are never freed) */
	broker_watch *watchers;          /* parked gets waiting for this task */
	char *result;                    /* JSON text of the value, or the error message */
	int64_t submitted_ms, started_ms, finished_ms;
	uint16_t deliveries;
	uint8_t priority;
	uint8_t state;                   /* enum broker_state */
	uint8_t pending;                 /* finished in memory, result not yet durable: shown as started */
	uint32_t hash;
	/* id, name, args, kwargs, options: NUL-terminated strings in one block */
	char *name, *args, *kwargs, *options;
	char id[];
} broker_task;

typedef struct broker_lane {
	broker_task *head, *tail;
} broker_lane;

struct broker_queue {
	char *name;
	broker_lane lane[BROKER_PRIORITIES];
	broker_lane finished;            /* succeeded/failed/revoked, oldest first, for result TTL */
	broker_lane dead;
	uint64_t depth, leased, consumers;
	uint64_t submitted, succeeded, failed, dead_count, revoked;
	uint64_t max_length;
	uint32_t max_deliveries;
	int64_t result_ttl_ms;
	uint8_t default_priority;
	uint64_t rate_in[10], rate_out[10]; /* per-second buckets, ring by second */
	int64_t rate_sec;
	broker_queue *next;
};

struct broker_worker {
	char *name;
	char *queues;                    /* comma-separated, as registered */
	char *host;
	char *tasks;                     /* JSON array text of task names it runs */
	int concurrency;
	int pid;
	int online;
	int registered;                  /* said register since this broker started */
	int64_t seen_ms;                 /* any message from it renews its leases */
	broker_lane leased;              /* tasks it runs */
	uint64_t running;
	broker_worker *next;
};

typedef struct broker_store {
	broker_task **slots;             /* id hash, chained */
	size_t nslots, ntasks;
	broker_queue *queues;
	broker_worker *workers;
	uint64_t default_max_length;
	uint32_t default_max_deliveries;
	int64_t default_result_ttl_ms;
} broker_store;

void broker_store_init(broker_store *s);
void broker_store_free(broker_store *s);

broker_task *broker_store_find(broker_store *s, const char *id);
/* Create a task in state COMMITTING (or as given); strings are copied. */
broker_task *broker_store_add(broker_store *s, const char *id, const char *name, const char *args,
    const char *kwargs, const char *options, broker_queue *q, int priority, int64_t now_ms);
/* Forget a task entirely (purge, expired result, failed commit). */
void broker_store_remove(broker_store *s, broker_task *t);

broker_queue *broker_store_queue(broker_store *s, const char *name, int create);
/* Put a task at the back of its lane (state QUEUED). */
void broker_store_enqueue(broker_store *s, broker_task *t);
/* Take the next task of q (highest priority first), or NULL. */
broker_task *broker_store_dequeue(broker_store *s, broker_queue *q);
/* Detach t from whatever list holds it (lane, lease, finished, dead). */
void broker_store_unlink(broker_store *s, broker_task *t);
void broker_store_lease(broker_store *s, broker_task *t, broker_worker *w, int64_t now_ms);
void broker_store_finish(broker_store *s, broker_task *t, int ok, char *result, int64_t now_ms);
/* Undo a finish or revoke that could not be journaled: back to its queue. */
void broker_store_unfinish(broker_store *s, broker_task *t);
/* Cancel a queued task: it finishes as REVOKED without running. */
void broker_store_revoke(broker_store *s, broker_task *t, int64_t now_ms);
void broker_store_bury(broker_store *s, broker_task *t, int64_t now_ms);

broker_worker *broker_store_worker(broker_store *s, const char *name, int create);

void broker_queue_count(broker_queue *q, int in, int64_t now_ms);
double broker_queue_rate(const broker_queue *q, int in, int64_t now_ms);

const char *broker_state_name(int state);

#endif
