/* Threads for methods that may block (sleep, plugins' methods), so they
 * never hold nng's own threads. The pool grows when every thread is busy,
 * up to its limit, and threads idle for a while exit; past the limit,
 * jobs wait in a bounded queue. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "core/log.h"
#include "rpc/rpc.h"

#define POOL_IDLE_S 10      /* an idle thread exits after this long */
#define POOL_QUEUE_MAX 10000

typedef struct pool_job {
	void (*fn)(void *);
	void (*cancel)(void *); /* instead of fn when the pool stops first */
	void *arg;
	struct pool_job *next;
} pool_job;

struct rpc_pool {
	pthread_mutex_t lock;
	pthread_cond_t work, gone;
	pool_job *head, *tail;
	int queued;
	int threads, idle, max;
	int stopping;
};

static void *pool_thread(void *arg)
{
	rpc_pool *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->head == NULL && !p->stopping) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += POOL_IDLE_S;
			p->idle++;
			int rc = pthread_cond_timedwait(&p->work, &p->lock, &ts);
			p->idle--;
			if (rc == ETIMEDOUT && p->head == NULL)
				goto out;
		}
		if (p->head == NULL) /* stopping and nothing left */
			break;
		pool_job *j = p->head;
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		p->queued--;
		pthread_mutex_unlock(&p->lock);
		j->fn(j->arg);
		free(j);
		pthread_mutex_lock(&p->lock);
	}
out:
	p->threads--;
	pthread_cond_broadcast(&p->gone);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int rpc_pool_start(rpc_pool **out, int max_threads, node_err *err)
{
	rpc_pool *p = calloc(1, sizeof *p);
	if (p == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->gone, NULL);
	p->max = max_threads > 0 ? max_threads : 1;
	*out = p;
	return 0;
}

/* A new thread when none is idle (lock held). */
static void pool_grow(rpc_pool *p)
{
	if (p->idle >= p->queued || p->threads >= p->max)
		return;
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, pool_thread, p) == 0)
		p->threads++;
	else if (p->threads == 0)
		node_warn("cannot start a thread for blocking methods; they wait for one");
	pthread_attr_destroy(&at);
}

int rpc_pool_run(rpc_pool *p, void (*fn)(void *), void (*cancel)(void *), void *arg, node_err *err)
{
	pool_job *j = malloc(sizeof *j);
	if (j == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	*j = (pool_job){.fn = fn, .cancel = cancel, .arg = arg};
	pthread_mutex_lock(&p->lock);
	if (p->stopping || p->queued >= POOL_QUEUE_MAX) {
		int stopping = p->stopping;
		pthread_mutex_unlock(&p->lock);
		free(j);
		return stopping ? node_err_set(err, NODE_ECLOSED, NODE_ERR_SHUTDOWN, "the server is stopping")
		                : node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT,
		                      "overloaded: %d calls wait for one of %d threads", POOL_QUEUE_MAX, p->max);
	}
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->queued++;
	pool_grow(p);
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

void rpc_pool_cancel_queued(rpc_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1; /* and no new jobs */
	pool_job *j = p->head;
	p->head = p->tail = NULL;
	p->queued = 0;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	while (j) {
		pool_job *next = j->next;
		j->cancel(j->arg);
		free(j);
		j = next;
	}
}

void rpc_pool_stop(rpc_pool *p)
{
	if (p == NULL)
		return;
	/* Jobs still queued are cancelled, not run: a stop must not wait for a
	 * queue of sleeps; the running ones finish within their time limit. */
	rpc_pool_cancel_queued(p);
	pthread_mutex_lock(&p->lock);
	while (p->threads > 0)
		pthread_cond_wait(&p->gone, &p->lock);
	pthread_mutex_unlock(&p->lock);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->gone);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
