/* Internals of node chanhost: named CSP channels (rendezvous, buffered,
 * one2one...), parked reads, writes and alternations, and pub/sub topics.
 * One lock guards everything; replies are collected under it and sent
 * after it (encoding and signing a reply is the slow part). The protocol is
 * in node-protocol(7), section CHANNEL HOST. */
#ifndef NODE_CHANHOST_H
#define NODE_CHANHOST_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "core/transport.h"

#define CH_NAME_MAX 192 /* "channel/NAME" fits the name server's 200 */
#define CH_CID_MAX 64
#define CH_PROC_MAX 100
#define CH_GUARDS_MAX 64
#define CH_READ_MAX 10000

typedef struct ch_table ch_table;
ch_table *ch_table_new(void);
void ch_table_free(ch_table *t);
void *ch_table_get(const ch_table *t, const char *key);
int ch_table_put(ch_table *t, const char *key, void *val); /* key must live as long as the entry */
void ch_table_del(ch_table *t, const char *key);
size_t ch_table_count(const ch_table *t);
/* fn may delete its own entry, no other. */
void ch_table_each(const ch_table *t, void (*fn)(void *val, void *arg), void *arg);

typedef enum ch_kind { CH_ANY2ANY, CH_ONE2ONE, CH_ONE2ANY, CH_ANY2ONE } ch_kind;
enum { CH_READ = 0, CH_WRITE = 1 };

typedef struct ch_waiter ch_waiter;
typedef struct ch_chan ch_chan;
typedef struct ch_client ch_client;

/* A parked guard in a channel's queue of readers or writers. */
typedef struct ch_link {
	ch_waiter *w;
	int guard;
	struct ch_link *prev, *next;
} ch_link;

typedef struct ch_queue {
	ch_link *head, *tail;
	int n;
} ch_queue;

typedef struct ch_guard {
	ch_chan *ch;
	int dir;          /* CH_READ or CH_WRITE */
	ch_client *owner; /* the end's client when it is not the waiter's (an alt guard's cid) */
	ch_link link;     /* in ch->readers or ch->writers while parked */
	int queued;
} ch_guard;

enum { CH_W_READ, CH_W_WRITE, CH_W_ALT, CH_W_SUB };

/* One parked call. */
struct ch_waiter {
	int type;
	node_call *call;
	uint32_t pipe;
	ch_client *cl;            /* NULL for pub.next */
	uint64_t seq;
	int max;                  /* read: values at most */
	cJSON *values;            /* write: still to give (owned); read: taken so far */
	int given;                /* write: values taken so far */
	cJSON *alt_vals;          /* alt: output guards' values, by guard (owned array) */
	int nguards;
	ch_guard *guards;         /* read/write: one; alt: one per guard */
	int64_t deadline_ms;      /* explicit time limit (timeout_ms), 0 none */
	int64_t park_until_ms;    /* answered "again" at this time */
	struct ch_sub *sub;       /* pub.next */
	ch_waiter *prev, *next;   /* host->parked */
	char proc[CH_PROC_MAX + 1];
};

struct ch_chan {
	char name[CH_NAME_MAX + 1];
	ch_kind kind;
	int capacity;
	cJSON *buf;               /* array of buffered values */
	int nbuf;
	ch_queue readers, writers;
	int live[2], retired[2];  /* ends by direction */
	int poisoned;
	int closed[2];            /* closed[CH_READ]: readers get "retired" (after the buffer) */
	uint64_t written, taken;
	int declared;
};

/* A channel end of a client: what one2one counts and retire ends. */
typedef struct ch_end {
	ch_chan *ch;
	int dir;
	struct ch_end *next;
} ch_end;

struct ch_client {
	char cid[CH_CID_MAX + 1];
	uint64_t last_seq;
	cJSON *last_reply;        /* answer to last_seq, for a retry */
	int64_t last_ms;
	ch_waiter *parked;        /* at most one at a time */
	ch_end *ends;
	unsigned rotor;           /* fair alternation: where to start looking */
	uint32_t pipe;            /* connection of its latest request */
	int detached;             /* that connection closed: its ends may be taken over */
	int guard_refs;           /* parked alt guards of other clients using its ends: keep it */
};

typedef struct ch_sub {
	char id[CH_CID_MAX + 1];
	struct ch_topic *topic;
	cJSON *buf;
	int nbuf;
	uint64_t dropped;
	uint32_t pipe;
	ch_waiter *parked;
	struct ch_sub *prev, *next; /* in topic */
} ch_sub;

typedef struct ch_topic {
	char name[CH_NAME_MAX + 1];
	ch_sub *subs;
	int nsubs;
	uint64_t published, dropped;
} ch_topic;

/* A reply decided under the lock, sent after it. */
typedef struct ch_out {
	node_call *call;
	cJSON *reply;
	struct ch_out *next;
} ch_out;

typedef struct ch_limits {
	int max_channels, max_clients, sub_buffer, max_park_ms, idle_s, create, max_parked;
	size_t max_reply;         /* bytes of values in one answer (the message limit less room for the rest) */
} ch_limits;

#define CH_CLOSED_PIPES 256

typedef struct ch_host {
	pthread_mutex_t lock;
	ch_table *chans, *clients, *topics, *subs;
	ch_waiter *parked;
	int nparked;
	ch_limits lim;
	ch_out *out;              /* replies waiting for the lock to be released */
	uint32_t closed_pipes[CH_CLOSED_PIPES]; /* recently closed connections: never park on one */
	int closed_next;
	int stopping;             /* answer shutting_down instead of parking */
	FILE *trace;
	uint64_t trace_seq;
	void (*on_create)(const ch_chan *ch, void *arg); /* under the lock: must not block */
	void (*on_delete)(const ch_chan *ch, void *arg);
	void *hook_arg;
} ch_host;

/* host.c: lifetime, replies, clients, sweeps */
int ch_host_init(ch_host *h, const ch_limits *lim, node_err *err);
void ch_host_fini(ch_host *h);
void ch_lock(ch_host *h);
void ch_unlock(ch_host *h);          /* sends the replies collected */
void ch_answer(ch_host *h, node_call *c, cJSON *reply);
void ch_answer_error(ch_host *h, node_call *c, const char *code, const char *fmt, ...) NODE_PRINTF(4, 5);
/* Answer a parked waiter (caching the reply for its client) and free it. */
void ch_waiter_finish(ch_host *h, ch_waiter *w, cJSON *reply);
void ch_waiter_fail(ch_host *h, ch_waiter *w, const char *code, const char *fmt, ...) NODE_PRINTF(4, 5);
/* Park w, or answer it at once when it cannot wait (the host is stopping,
 * max_parked reached, its connection closed already): w may be gone after. */
void ch_park(ch_host *h, ch_waiter *w);
ch_waiter *ch_waiter_new(int type, node_call *c, int nguards);
void ch_disconnect(ch_host *h, uint32_t pipe);
void ch_sweep(ch_host *h, int64_t now_ms, int full);
int ch_client_get(ch_host *h, const char *cid, ch_client **out, node_err *err);
int ch_end_join(ch_host *h, ch_client *cl, ch_chan *ch, int dir, const char *proc, node_err *err);
void ch_end_leave(ch_host *h, ch_client *cl, ch_chan *ch, int dir, int retire, const char *proc);

/* chan.c: channels and matching */
const char *ch_kind_name(ch_kind k);
int ch_kind_parse(const char *s, ch_kind *out);
int ch_chan_get(ch_host *h, const char *name, int create, ch_chan **out, node_err *err);
int ch_chan_create(ch_host *h, const char *name, ch_kind kind, int capacity, int declared, ch_chan **out, int *created,
    node_err *err);
void ch_chan_delete(ch_host *h, ch_chan *ch);
void ch_chan_poison(ch_host *h, ch_chan *ch, const char *proc);
/* Re-check parked ends after the channel closed a side. */
void ch_chan_settle(ch_host *h, ch_chan *ch);
/* Try to complete a new waiter at once; 1 when it was answered. */
int ch_write_try(ch_host *h, ch_waiter *w);
int ch_read_try(ch_host *h, ch_waiter *w);
int ch_alt_try(ch_host *h, ch_waiter *w, int priority);
void ch_waiter_unlink(ch_waiter *w);
cJSON *ch_chan_json(const ch_chan *ch);
/* An upper bound of the bytes v takes printed as JSON, without printing it. */
size_t ch_value_size(const cJSON *v);
/* Refuse a batch holding a value that could not be answered alone. */
int ch_values_fit(const ch_host *h, const cJSON *values, node_err *err);

/* topic.c: publish/subscribe */
int ch_publish(ch_host *h, const char *topic, const cJSON *values, int *subscribers, node_err *err);
int ch_subscribe(ch_host *h, const char *topic, const char *sub, uint32_t pipe, node_err *err);
void ch_unsubscribe(ch_host *h, ch_sub *s);
int ch_sub_next(ch_host *h, ch_waiter *w, const char *sub, node_err *err); /* 1 answered, 0 parked */
void ch_topics_json(ch_host *h, cJSON *arr);
void ch_subs_disconnect(ch_host *h, uint32_t pipe);

/* trace.c */
void ch_trace(ch_host *h, const char *event, const char *chan, const char *proc, int dir, int n);
void ch_trace_flush(ch_host *h);

/* ops.c */
extern const node_op ch_ops[];
int ch_name_ok(const char *s);

#endif
