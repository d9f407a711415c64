/* Parallel Python's job server with callbacks, on a node cluster, with the C
 * client library: submit fibo for 4, 3, 8, 6 and 10; a completion callback
 * prints, as each finishes,
 *   For input 8, the fibonacci calculated by w-4242 was 21
 * and at the end comes pp's table of jobs per worker (ncl_stats_print):
 *   Job execution statistics:
 *    job count | % of all jobs | job time sum | time per job | worker
 *            3 |         60.00 |       0.0010 |     0.000333 | w-4242
 *   Time elapsed since start: 0.0510 s
 * The callback asks the broker which worker ran the task (ncl_task_info).
 *
 *   pp_callbacks [-u BROKER_URL] [-c CLUSTER_FILE] [-q QUEUE]
 * Build: make examples, or cc pp_callbacks.c $(pkg-config --cflags --libs nodeclient) */
#define _POSIX_C_SOURCE 200809L
#include <node/client.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define JOBS 5

typedef struct stats {
	ncl_conn *conn;
	pthread_mutex_t lock;
	pthread_cond_t done;
	int finished;
} stats;

typedef struct job {
	int input;
	stats *st;
} job;

/* Runs once per job, on the library's thread, when the job has finished. */
static void finished(ncl_future *f, void *arg)
{
	job *j = arg;
	stats *st = j->st;
	ncl_info info;
	ncl_err e;
	if (ncl_task_info(st->conn, ncl_future_id(f), 5000, &info, &e) != 0)
		snprintf(info.worker, sizeof info.worker, "(unknown: %.100s)", e.msg);
	pthread_mutex_lock(&st->lock);
	if (ncl_future_result(f))
		printf("For input %d, the fibonacci calculated by %s was %s\n", j->input, info.worker, ncl_future_result(f));
	else
		printf("For input %d, the job failed: %s\n", j->input, ncl_future_error(f));
	fflush(stdout);
	st->finished++;
	pthread_cond_signal(&st->done);
	pthread_mutex_unlock(&st->lock);
}

static void print_stats(ncl_conn *c)
{
	ncl_stats s;
	ncl_err e;
	if (ncl_stats_get(c, &s, &e) != 0) {
		fprintf(stderr, "pp_callbacks: %s\n", e.msg);
		return;
	}
	ncl_stats_print(&s, stdout);
	ncl_stats_free(&s);
}

int main(int argc, char **argv)
{
	const char *url = NULL, *file = NULL, *queue = NULL;
	for (int i = 1; i < argc; i++) {
		const char **dst = NULL;
		if (strcmp(argv[i], "-u") == 0)
			dst = &url;
		else if (strcmp(argv[i], "-c") == 0)
			dst = &file;
		else if (strcmp(argv[i], "-q") == 0)
			dst = &queue;
		if (dst == NULL || i + 1 >= argc) {
			fprintf(stderr, "usage: pp_callbacks [-u BROKER_URL] [-c CLUSTER_FILE] [-q QUEUE]\n");
			return 2;
		}
		*dst = argv[++i];
	}
	stats st = {.finished = 0};
	pthread_mutex_init(&st.lock, NULL);
	pthread_cond_init(&st.done, NULL);
	ncl_err e;
	if (ncl_open(&st.conn, url, file, &e) != 0) {
		fprintf(stderr, "pp_callbacks: %s\n", e.msg);
		return 1;
	}
	const int inputs[JOBS] = {4, 3, 8, 6, 10};
	job jobs[JOBS];
	ncl_future *fs[JOBS];
	ncl_opts opts = {.queue = queue};
	int submitted = 0, rc = 0;
	for (; submitted < JOBS; submitted++) {
		char args[32];
		snprintf(args, sizeof args, "[%d]", inputs[submitted]);
		jobs[submitted] = (job){inputs[submitted], &st};
		if ((rc = ncl_submit(st.conn, "fibo", args, &opts, 5000, &fs[submitted], &e)) != 0)
			break;
		ncl_future_on_done(fs[submitted], finished, &jobs[submitted]);
	}
	/* Wait for the callbacks themselves, not only for the results. */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 60;
	pthread_mutex_lock(&st.lock);
	while (st.finished < submitted && pthread_cond_timedwait(&st.done, &st.lock, &until) == 0)
		;
	int all = st.finished == submitted;
	pthread_mutex_unlock(&st.lock);
	if (rc != 0)
		fprintf(stderr, "pp_callbacks: %s\n", e.msg);
	else if (!all)
		fprintf(stderr, "pp_callbacks: %d of %d jobs finished in 60 s\n", st.finished, submitted);
	else
		print_stats(st.conn);
	for (int i = 0; i < submitted; i++)
		ncl_future_free(fs[i]);
	ncl_close(st.conn);
	return rc == 0 && all ? 0 : 1;
}
