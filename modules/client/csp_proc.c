/* CSP processes: csp_parallel runs each as a thread and waits for all,
 * csp_sequence one after the other here, csp_spawn/csp_join one at a time.
 * The running process's name lives in a thread-local, for traces and for
 * the "proc" of networked requests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/csp_int.h"

struct csp_proc {
	char name[CSP_PROC_MAX + 1];
	csp_fn fn;
	void *arg;
	pthread_t thread;
	/* csp_parallel: start only when every thread of the group exists */
	struct group *group;
};

/* A csp_parallel: all of its threads are made before any runs, so a failed
 * pthread_create leaves no process waiting for a partner that never starts. */
struct group {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int state; /* 0 starting, 1 go, -1 give up */
};

static _Thread_local csp_proc *current;
static atomic_uint counter;

const char *csp_current_proc(void)
{
	return current != NULL ? current->name : NULL;
}

const char *csp_proc_name(const csp_proc *p)
{
	return p != NULL ? p->name : NULL;
}

static void proc_init(csp_proc *p, const csp_spec *s)
{
	memset(p, 0, sizeof *p);
	if (s->name != NULL && *s->name != '\0')
		snprintf(p->name, sizeof p->name, "%s", s->name);
	else
		snprintf(p->name, sizeof p->name, "proc%u", atomic_fetch_add(&counter, 1) + 1);
	p->fn = s->fn;
	p->arg = s->arg;
}

/* Run p in this thread as the current process. */
static void proc_run(csp_proc *p)
{
	csp_proc *outer = current;
	current = p;
	csp_trace("process_start", NULL, -1, -1);
	p->fn(p, p->arg);
	csp_trace("process_quit", NULL, -1, -1);
	current = outer;
}

static int group_wait(struct group *g)
{
	pthread_mutex_lock(&g->lock);
	while (g->state == 0)
		pthread_cond_wait(&g->cond, &g->lock);
	int go = g->state > 0;
	pthread_mutex_unlock(&g->lock);
	return go;
}

static void group_set(struct group *g, int state)
{
	pthread_mutex_lock(&g->lock);
	g->state = state;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void *thread_main(void *arg)
{
	csp_proc *p = arg;
	if (p->group == NULL || group_wait(p->group))
		proc_run(p);
	return NULL;
}

static int check_specs(const csp_spec *s, int n, const char *fn, ncl_err *err)
{
	if (n < 0 || (n > 0 && s == NULL))
		return ncl_set(err, NCL_EINVAL, "%s: %d processes", fn, n);
	for (int i = 0; i < n; i++)
		if (s[i].fn == NULL)
			return ncl_set(err, NCL_EINVAL, "%s: process %d ('%s') has no function", fn, i,
			    s[i].name ? s[i].name : "");
	return 0;
}

int csp_parallel(const csp_spec *procs, int n, ncl_err *err)
{
	int rc = check_specs(procs, n, "csp_parallel", err), started = 0;
	if (rc != 0 || n == 0)
		return rc;
	csp_proc *ps = calloc((size_t)n, sizeof *ps);
	if (ps == NULL)
		return ncl_set(err, NCL_ENOMEM, "csp_parallel: out of memory for %d processes", n);
	struct group g = {.state = 0};
	pthread_mutex_init(&g.lock, NULL);
	pthread_cond_init(&g.cond, NULL);
	csp_trace_env();
	csp_trace("parallel_start", NULL, -1, n);
	for (; started < n; started++) {
		proc_init(&ps[started], &procs[started]);
		ps[started].group = &g;
		int e = pthread_create(&ps[started].thread, NULL, thread_main, &ps[started]);
		if (e != 0) {
			rc = ncl_set(err, NCL_ENOMEM, "csp_parallel: could not start process %d of %d ('%s'): %s", started + 1,
			    n, ps[started].name, strerror(e));
			break;
		}
	}
	group_set(&g, rc == 0 ? 1 : -1);
	for (int i = 0; i < started; i++)
		pthread_join(ps[i].thread, NULL);
	csp_trace("parallel_done", NULL, -1, n);
	pthread_cond_destroy(&g.cond);
	pthread_mutex_destroy(&g.lock);
	free(ps);
	return rc;
}

int csp_sequence(const csp_spec *procs, int n, ncl_err *err)
{
	int rc = check_specs(procs, n, "csp_sequence", err);
	if (rc != 0)
		return rc;
	csp_trace_env();
	for (int i = 0; i < n; i++) {
		csp_proc p;
		proc_init(&p, &procs[i]);
		proc_run(&p);
	}
	return 0;
}

int csp_spawn(const csp_spec *proc, csp_proc **out, ncl_err *err)
{
	int rc = check_specs(proc, 1, "csp_spawn", err);
	if (rc != 0)
		return rc;
	if (out == NULL)
		return ncl_set(err, NCL_EINVAL, "csp_spawn: out is NULL");
	csp_proc *p = malloc(sizeof *p);
	if (p == NULL)
		return ncl_set(err, NCL_ENOMEM, "csp_spawn: out of memory");
	proc_init(p, proc);
	csp_trace_env();
	int e = pthread_create(&p->thread, NULL, thread_main, p);
	if (e != 0) {
		rc = ncl_set(err, NCL_ENOMEM, "csp_spawn: could not start process '%s': %s", p->name, strerror(e));
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

void csp_join(csp_proc *p)
{
	if (p == NULL)
		return;
	pthread_join(p->thread, NULL);
	free(p);
}
