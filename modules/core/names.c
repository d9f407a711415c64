/* A role's names at the name server: the wanted set, changed from any
 * thread under a lock, and the loop thread's work that makes the name
 * server match it (register, renew, remove). The rules are in names.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "names.h"
#include "transport.h"

#define NN_HEARTBEAT_MIN_MS 200
#define NN_BUCKETS_MIN 64

/* Every field is guarded by node_names.lock. An entry is freed only by
 * the loop thread, or by drop when it is neither registered nor being
 * worked on (n->busy), so the loop thread may keep pointers to registered
 * entries and to the busy one while it talks to the name server unlocked. */
typedef struct nn_entry {
	struct nn_entry *hnext;        /* hash chain */
	struct nn_entry *prev, *next;  /* every entry, in the order added */
	struct nn_entry *qprev, *qnext; /* the work queue */
	cJSON *meta;                   /* given at add, or NULL (cfg.meta) */
	uint64_t gen;                  /* bumped by each add: that meta is to be registered */
	uint64_t reg_gen;              /* the gen registered */
	int wanted;                    /* added and not dropped */
	int queued;
	int registered;                /* at the name server, at our address */
	int lost;                      /* given up until added again */
	char name[];
} nn_entry;

struct node_names {
	node_names_cfg cfg;           /* its strings point at the copies below */
	char *nameserver, *address;
	node_client *ns;
	int64_t every_ms;             /* the heartbeat */
	pthread_mutex_t lock;         /* guards the entries and the fields below */
	nn_entry **buckets;
	size_t nbuckets, nentries;
	size_t wanted;
	nn_entry *first, *last;
	nn_entry *qhead, *qtail;
	nn_entry *busy;               /* being registered or removed, unlocked */
	int left;
	/* the loop thread's own */
	int64_t renew_ms;             /* next heartbeat */
	int64_t retry_ms;             /* the queue waits for this after a failure */
	int warned;                   /* name server unreachable, said once */
};

/* ---- the table (lock held) ---- */

static size_t nn_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)h;
}

static nn_entry *nn_find(node_names *n, const char *name)
{
	for (nn_entry *e = n->buckets[nn_hash(name) & (n->nbuckets - 1)]; e; e = e->hnext)
		if (strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

/* Doubling keeps chains short at 100000 names; when it cannot allocate,
 * the chains just get longer. */
static void nn_grow(node_names *n)
{
	size_t nb = n->nbuckets * 2;
	nn_entry **b = calloc(nb, sizeof *b);
	if (b == NULL)
		return;
	for (size_t i = 0; i < n->nbuckets; i++) {
		for (nn_entry *e = n->buckets[i], *next; e; e = next) {
			next = e->hnext;
			size_t k = nn_hash(e->name) & (nb - 1);
			e->hnext = b[k];
			b[k] = e;
		}
	}
	free(n->buckets);
	n->buckets = b;
	n->nbuckets = nb;
}

static nn_entry *nn_insert(node_names *n, const char *name, size_t len)
{
	nn_entry *e = calloc(1, sizeof *e + len + 1);
	if (e == NULL)
		return NULL;
	memcpy(e->name, name, len + 1);
	if (n->nentries >= n->nbuckets)
		nn_grow(n);
	size_t k = nn_hash(name) & (n->nbuckets - 1);
	e->hnext = n->buckets[k];
	n->buckets[k] = e;
	e->prev = n->last;
	if (n->last)
		n->last->next = e;
	else
		n->first = e;
	n->last = e;
	n->nentries++;
	return e;
}

static void nn_enqueue(node_names *n, nn_entry *e)
{
	if (e->queued)
		return;
	e->queued = 1;
	e->qnext = NULL;
	e->qprev = n->qtail;
	if (n->qtail)
		n->qtail->qnext = e;
	else
		n->qhead = e;
	n->qtail = e;
}

static void nn_dequeue(node_names *n, nn_entry *e)
{
	if (!e->queued)
		return;
	if (e->qprev)
		e->qprev->qnext = e->qnext;
	else
		n->qhead = e->qnext;
	if (e->qnext)
		e->qnext->qprev = e->qprev;
	else
		n->qtail = e->qprev;
	e->queued = 0;
	e->qprev = e->qnext = NULL;
}

static void nn_free(node_names *n, nn_entry *e)
{
	nn_dequeue(n, e);
	nn_entry **p = &n->buckets[nn_hash(e->name) & (n->nbuckets - 1)];
	while (*p != e)
		p = &(*p)->hnext;
	*p = e->hnext;
	if (e->prev)
		e->prev->next = e->next;
	else
		n->first = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		n->last = e->prev;
	if (e->wanted)
		n->wanted--;
	n->nentries--;
	cJSON_Delete(e->meta);
	free(e);
}

/* ---- open, add, drop ---- */

int node_names_open(node_names **out, const node_names_cfg *cfg, node_err *err)
{
	*out = NULL;
	if (cfg->nameserver == NULL || cfg->address == NULL || cfg->address[0] == '\0')
		return node_err_set(err, NODE_EINVAL, NODE_ERR_INTERNAL, "names: a name server and an address are needed");
	node_names *n = calloc(1, sizeof *n);
	if (n == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	n->cfg = *cfg;
	n->nameserver = strdup(cfg->nameserver);
	n->address = strdup(cfg->address);
	n->buckets = calloc(NN_BUCKETS_MIN, sizeof *n->buckets);
	if (n->nameserver == NULL || n->address == NULL || n->buckets == NULL) {
		free(n->nameserver);
		free(n->address);
		free(n->buckets);
		free(n);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	n->cfg.nameserver = n->nameserver;
	n->cfg.address = n->address;
	if (n->cfg.max_names == 0)
		n->cfg.max_names = NODE_NAMES_DEFAULT_MAX;
	n->nbuckets = NN_BUCKETS_MIN;
	pthread_mutex_init(&n->lock, NULL);
	int rc = node_client_open(&n->ns, n->nameserver, "name server", cfg->wire, err);
	if (rc != 0) {
		node_names_close(n);
		return rc;
	}
	if (n->cfg.timeout_ms <= 0)
		n->cfg.timeout_ms = NODE_NAMES_DEFAULT_TIMEOUT_MS;
	n->every_ms = (int64_t)cfg->ttl_s * 1000 / 3;
	/* The first heartbeat a third of the TTL after the start, as after
	 * every one; a short TTL is not renewed more often than 5 times a second. */
	n->renew_ms = node_clock_mono_ms() + n->every_ms;
	if (n->every_ms < NN_HEARTBEAT_MIN_MS)
		n->every_ms = NN_HEARTBEAT_MIN_MS;
	*out = n;
	return 0;
}

int node_names_add(node_names *n, const char *name, const cJSON *meta, node_err *err)
{
	size_t len = name ? strlen(name) : 0;
	if (len == 0 || len >= NODE_NAMES_NAME_MAX)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "a name must be 1 to %d bytes", NODE_NAMES_NAME_MAX - 1);
	/* Copied before the lock: callers on nng threads wait as little as can be. */
	cJSON *copy = NULL;
	if (meta && (copy = cJSON_Duplicate(meta, 1)) == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	int rc = 0;
	pthread_mutex_lock(&n->lock);
	nn_entry *e = nn_find(n, name);
	if (n->left) {
		rc = node_err_set(err, NODE_ECLOSED, NODE_ERR_SHUTDOWN, "not registering %s: leaving the name server", name);
	} else if ((e == NULL || !e->wanted) && n->wanted >= n->cfg.max_names) {
		rc = node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "more than %zu names to register", n->cfg.max_names);
	} else if (e == NULL && n->nentries >= 2 * n->cfg.max_names) {
		/* Dropped names wait for their removal at the name server; this
		 * bounds them too while it does not answer. */
		rc = node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT,
		    "too many names waiting to be removed at the name server; not registering %s now", name);
	} else if (e == NULL && (e = nn_insert(n, name, len)) == NULL) {
		rc = node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	if (rc == 0) {
		cJSON_Delete(e->meta);
		e->meta = copy;
		copy = NULL;
		if (!e->wanted)
			n->wanted++;
		e->wanted = 1;
		e->lost = 0;
		e->gen++;
		nn_enqueue(n, e);
	}
	pthread_mutex_unlock(&n->lock);
	cJSON_Delete(copy);
	return rc;
}

void node_names_drop(node_names *n, const char *name)
{
	pthread_mutex_lock(&n->lock);
	nn_entry *e = name ? nn_find(n, name) : NULL;
	if (e && e->wanted) {
		e->wanted = 0;
		n->wanted--;
		cJSON_Delete(e->meta);
		e->meta = NULL;
		/* Never registered (or lost): nothing to remove, gone at once. */
		if (!e->registered && e != n->busy)
			nn_free(n, e);
		else
			nn_enqueue(n, e);
	}
	pthread_mutex_unlock(&n->lock);
}

size_t node_names_count(node_names *n)
{
	pthread_mutex_lock(&n->lock);
	size_t c = n->wanted;
	pthread_mutex_unlock(&n->lock);
	return c;
}

/* ---- talking to the name server (loop thread, no lock held) ---- */

static int nn_call(node_names *n, cJSON *req, cJSON **reply, node_err *err)
{
	*reply = NULL;
	if (req == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	int rc = node_client_call(n->ns, req, n->cfg.timeout_ms, reply, err);
	cJSON_Delete(req);
	return rc;
}

/* Register one name; on "exists" a name held at our own address (from
 * before a restart) is taken back, another's is an error. Takes meta. */
static int nn_register(node_names *n, const char *name, cJSON *meta, node_err *err)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		cJSON *req = cJSON_CreateObject(), *reply = NULL;
		if (req) {
			cJSON_AddStringToObject(req, "op", "register");
			cJSON_AddStringToObject(req, "name", name);
			cJSON_AddStringToObject(req, "address", n->address);
			if (meta)
				cJSON_AddItemToObject(req, "meta", cJSON_Duplicate(meta, 1));
			cJSON_AddNumberToObject(req, "ttl_s", n->cfg.ttl_s);
			cJSON_AddBoolToObject(req, "replace", n->cfg.replace || attempt > 0);
		}
		int rc = nn_call(n, req, &reply, err);
		int exists = rc == NODE_EREMOTE && strcmp(err->code, "exists") == 0;
		cJSON_Delete(reply);
		if (!exists) {
			cJSON_Delete(meta);
			return rc;
		}
		req = cJSON_CreateObject();
		cJSON_AddStringToObject(req, "op", "lookup");
		cJSON_AddStringToObject(req, "name", name);
		node_err lerr = {0};
		const char *holder = nn_call(n, req, &reply, &lerr) == 0
		    ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply, "address")) : NULL;
		int ours = holder && strcmp(holder, n->address) == 0;
		if (!ours) {
			node_err_set(err, NODE_EEXIST, "exists",
			    "%s is registered already by %s at the name server %s (stop that server, wait for its registration to expire, "
			    "or start this one with --replace)",
			    name, holder ? holder : "another server", n->nameserver);
			cJSON_Delete(reply);
			cJSON_Delete(meta);
			return NODE_EEXIST;
		}
		cJSON_Delete(reply);
	}
	cJSON_Delete(meta);
	return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "could not register %s", name);
}

/* Remove one name, only while it is at our address. */
static int nn_remove(node_names *n, const char *name, node_err *err)
{
	cJSON *req = cJSON_CreateObject(), *reply = NULL;
	if (req) {
		cJSON_AddStringToObject(req, "op", "remove");
		cJSON_AddStringToObject(req, "name", name);
		cJSON_AddStringToObject(req, "address", n->address);
	}
	int rc = nn_call(n, req, &reply, err);
	cJSON_Delete(reply);
	return rc;
}

static void nn_give_up(node_names *n, const char *name, const node_err *why)
{
	if (n->cfg.lost)
		n->cfg.lost(name, why, n->cfg.arg);
}

/* The registered entries, in order: safe to use unlocked on the loop
 * thread, which alone unregisters and frees them. NULL when none (or no
 * memory: the caller skips the work, the TTL covers it). */
static nn_entry **nn_registered(node_names *n, size_t *count)
{
	pthread_mutex_lock(&n->lock);
	size_t k = 0;
	nn_entry **v = n->nentries ? malloc(n->nentries * sizeof *v) : NULL;
	for (nn_entry *e = n->first; v && e; e = e->next)
		if (e->registered)
			v[k++] = e;
	pthread_mutex_unlock(&n->lock);
	if (k == 0) {
		free(v);
		v = NULL;
	}
	*count = k;
	return v;
}

/* Apply a renew's "missing" (registered again at the next step) and
 * "foreign" (given up) lists. */
static void nn_renew_answer(node_names *n, const cJSON *reply)
{
	const cJSON *v;
	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(reply, "missing")) {
		if (!cJSON_IsString(v))
			continue;
		pthread_mutex_lock(&n->lock);
		nn_entry *e = nn_find(n, v->valuestring);
		if (e && e->registered) {
			e->registered = 0;
			nn_enqueue(n, e);
		}
		pthread_mutex_unlock(&n->lock);
	}
	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(reply, "foreign")) {
		if (!cJSON_IsString(v))
			continue;
		pthread_mutex_lock(&n->lock);
		nn_entry *e = nn_find(n, v->valuestring);
		int gone = e && e->registered && e->wanted;
		if (e && e->registered) {
			e->registered = 0;
			e->lost = 1;
			if (!e->wanted) /* dropped meanwhile: nothing to remove now, only to free */
				nn_enqueue(n, e);
		}
		pthread_mutex_unlock(&n->lock);
		if (gone) {
			node_err why = {0};
			node_err_set(&why, NODE_EEXIST, "exists", "%s was taken over by another server", v->valuestring);
			node_error("%s was taken over by another server; this one no longer registers it", v->valuestring);
			nn_give_up(n, v->valuestring, &why);
		}
	}
}

/* Renew every registered name, NODE_NAMES_RENEW_BATCH at a time; the
 * first batch without an answer ends the heartbeat (the next one tries). */
static void nn_renew(node_names *n)
{
	size_t count;
	nn_entry **v = nn_registered(n, &count);
	for (size_t i = 0; i < count;) {
		cJSON *req = cJSON_CreateObject(), *reply = NULL;
		cJSON *names = req ? cJSON_AddArrayToObject(req, "names") : NULL;
		for (size_t k = 0; names && k < NODE_NAMES_RENEW_BATCH && i < count; k++, i++)
			cJSON_AddItemToArray(names, cJSON_CreateString(v[i]->name));
		if (names == NULL) {
			cJSON_Delete(req);
			break;
		}
		cJSON_AddStringToObject(req, "op", "renew");
		cJSON_AddStringToObject(req, "address", n->address);
		node_err err = {0};
		if (nn_call(n, req, &reply, &err) != 0) {
			if (!n->warned++)
				node_warn("cannot renew at the name server %s: %s; trying again", n->nameserver, err.msg);
			cJSON_Delete(reply);
			break;
		}
		if (n->warned) {
			node_info("the name server %s answers again", n->nameserver);
			n->warned = 0;
		}
		nn_renew_answer(n, reply);
		cJSON_Delete(reply);
	}
	free(v);
}

enum { NN_NONE, NN_REGISTER, NN_REMOVE };

static int nn_action(const nn_entry *e)
{
	if (e->wanted && !e->lost && (!e->registered || e->reg_gen != e->gen))
		return NN_REGISTER;
	if (!e->wanted && e->registered)
		return NN_REMOVE;
	return NN_NONE;
}

static void nn_unreachable(node_names *n, const char *what, const char *name, const node_err *e)
{
	int every_s = n->cfg.ttl_s / 3 > 0 ? n->cfg.ttl_s / 3 : 1;
	if (!n->warned++) {
		if (strcmp(what, "register") == 0)
			node_warn("cannot register at the name server %s: %s; trying again every %d s", n->nameserver, e->msg, every_s);
		else
			node_warn("cannot remove %s at the name server %s: %s; trying again every %d s", name, n->nameserver, e->msg,
			    every_s);
	}
	n->retry_ms = node_clock_mono_ms() + n->every_ms;
}

/* One step of the queue's head: 1 to go on, 0 when the queue is done or
 * waits, NODE_EEXIST with err set for a name another address holds. */
static int nn_step(node_names *n, node_err *err)
{
	pthread_mutex_lock(&n->lock);
	nn_entry *e = n->qhead;
	if (e == NULL || n->left) {
		pthread_mutex_unlock(&n->lock);
		return 0;
	}
	int action = nn_action(e);
	if (action == NN_NONE) {
		nn_dequeue(n, e);
		if (!e->wanted && !e->registered)
			nn_free(n, e);
		pthread_mutex_unlock(&n->lock);
		return 1;
	}
	/* Worked on unlocked: drop keeps it (n->busy) and add only changes its
	 * flags, which are looked at again below. */
	n->busy = e;
	/* Its name outlives the entry, which drop may free once it is not busy. */
	char name[NODE_NAMES_NAME_MAX];
	snprintf(name, sizeof name, "%s", e->name);
	uint64_t gen = e->gen;
	cJSON *meta = e->meta ? cJSON_Duplicate(e->meta, 1) : NULL;
	int has_meta = e->meta != NULL;
	pthread_mutex_unlock(&n->lock);

	node_err e2 = {0};
	int rc;
	if (action == NN_REGISTER) {
		if (!has_meta && n->cfg.meta)
			meta = n->cfg.meta(name, n->cfg.arg);
		rc = nn_register(n, name, meta, &e2);
	} else {
		rc = nn_remove(n, name, &e2);
	}

	pthread_mutex_lock(&n->lock);
	n->busy = NULL;
	int given_up = 0;
	if (action == NN_REGISTER && rc == 0) {
		e->registered = 1;
		e->reg_gen = gen;
	} else if (action == NN_REGISTER && (rc == NODE_EEXIST || rc == NODE_EREMOTE)) {
		e->registered = 0;
		given_up = e->wanted;
		if (e->wanted)
			e->lost = 1;
	} else if (action == NN_REMOVE && (rc == 0 || rc == NODE_EREMOTE)) {
		e->registered = 0; /* removed, or not (any more) ours: done either way */
	}
	/* The entry stays at the head: the next step settles what is left. */
	pthread_mutex_unlock(&n->lock);

	if (rc != 0 && rc != NODE_EEXIST && rc != NODE_EREMOTE) {
		nn_unreachable(n, action == NN_REGISTER ? "register" : "remove", name, &e2);
		return 0;
	}
	if (rc == 0 && n->warned) {
		node_info(action == NN_REGISTER ? "registered at the name server %s again" : "the name server %s answers again",
		    n->nameserver);
		n->warned = 0;
	}
	if (action == NN_REMOVE) {
		node_debug("removed %s from the name server", name);
		return 1;
	}
	if (rc == 0) {
		node_log(n->cfg.quiet ? NODE_LOG_DEBUG : NODE_LOG_INFO, "registered %s -> %s (ttl %d s)", name, n->address,
		    n->cfg.ttl_s);
		return 1;
	}
	if (!given_up)
		return 1;
	if (rc == NODE_EREMOTE)
		node_error("the name server refused the name %s: %s; not registering it", name, e2.msg);
	nn_give_up(n, name, &e2);
	if (rc == NODE_EEXIST) {
		*err = e2;
		return NODE_EEXIST;
	}
	return 1;
}

int node_names_tick(node_names *n, node_err *err)
{
	/* left is written only on this thread: read without the lock. */
	if (n->left)
		return 0;
	int64_t now = node_clock_mono_ms();
	if (now >= n->renew_ms) {
		n->renew_ms = now + n->every_ms;
		nn_renew(n);
	}
	if (now < n->retry_ms)
		return 0;
	int64_t start = node_clock_mono_ms();
	for (;;) {
		int rc = nn_step(n, err);
		if (rc != 1)
			return rc;
		if (n->cfg.budget_ms > 0 && node_clock_mono_ms() - start >= n->cfg.budget_ms)
			return 0;
	}
}

/* ---- leaving ---- */

void node_names_leave(node_names *n)
{
	pthread_mutex_lock(&n->lock);
	int already = n->left;
	n->left = 1;
	pthread_mutex_unlock(&n->lock);
	if (already || n->ns == NULL)
		return;
	/* A clean stop leaves the registry at once instead of at the TTL; only
	 * names still at our address, and no more waiting once the name server
	 * has not answered (the TTL removes the rest). */
	size_t count;
	nn_entry **v = nn_registered(n, &count);
	for (size_t i = 0; i < count; i++) {
		node_err err = {0};
		int rc = nn_remove(n, v[i]->name, &err);
		if (rc != 0 && rc != NODE_EREMOTE) {
			node_warn("could not remove %s at the name server: %s; the names expire in %d s", v[i]->name, err.msg,
			    n->cfg.ttl_s);
			break;
		}
		pthread_mutex_lock(&n->lock);
		v[i]->registered = 0;
		pthread_mutex_unlock(&n->lock);
	}
	free(v);
}

void node_names_close(node_names *n)
{
	if (n == NULL)
		return;
	node_names_leave(n);
	node_client_close(n->ns);
	for (nn_entry *e = n->first, *next; e; e = next) {
		next = e->next;
		cJSON_Delete(e->meta);
		free(e);
	}
	pthread_mutex_destroy(&n->lock);
	free(n->buckets);
	free(n->nameserver);
	free(n->address);
	free(n);
}
