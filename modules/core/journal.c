/* The durable log (see journal.h). Appenders copy records into a buffer
 * under a lock; one writer thread writes the buffer, syncs as the policy
 * says, then answers every commit waiting on that batch: a group commit.
 * On disk: segment files journal-N.log of records [len u32][crc32c u32][bytes],
 * and at most one snapshot-N.log that replaces every segment below N. */
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "log.h"

#define REC_HDR 8
#define REC_MAX (64u << 20)

typedef struct waiter {
	node_journal_done_fn cb;
	void *arg;
	struct waiter *next;
} waiter;

struct node_journal {
	uint64_t last_write_us; /* when the writer last started a batch (monotonic) */
	int was_idle;           /* the writer found nothing to do since its last batch */
	node_journal_cfg cfg;
	char *dir;
	int lock_fd;
	int fd;                /* current segment */
	uint64_t seq;          /* its number */
	uint64_t off;          /* bytes written to it */
	pthread_mutex_t lock;
	pthread_cond_t wake;   /* writer: work arrived */
	unsigned char *buf;    /* records not yet written */
	size_t len, cap;
	waiter *wait_head, *wait_tail;
	int stopping;
	int full;              /* the last write failed: refuse appends until one succeeds */
	int fail_writes;       /* test hook */
	node_journal_snapshot_fn compact_fn;
	void *compact_arg;
	int snap_fd;           /* during compaction */
	pthread_t writer;
	node_journal_stats st;
};

/* CRC-32C (Castagnoli), table driven; none of our libraries exports one. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32c(const void *data, size_t n)
{
	const unsigned char *p = data;
	uint32_t c = 0xFFFFFFFFu;
	while (n--)
		c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8), p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void seg_path(const node_journal *j, const char *kind, uint64_t seq, char *out, size_t n)
{
	snprintf(out, n, "%s/%s-%012llu.log", j->dir, kind, (unsigned long long)seq);
}

/* ---- recovery ---- */

typedef struct seglist {
	uint64_t *seq;
	size_t n;
	uint64_t snap; /* 0: none */
} seglist;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int list_segments(node_journal *j, seglist *sl, node_err *err)
{
	DIR *d = opendir(j->dir);
	if (d == NULL)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot read %s: %s", j->dir, strerror(errno));
	size_t cap = 0;
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		unsigned long long s;
		int end = 0; /* whole name only: not snapshot-N.log.tmp or journal-N.log.damaged */
		if (sscanf(e->d_name, "snapshot-%llu.log%n", &s, &end) == 1 && end > 0 && e->d_name[end] == '\0') {
			if (s > sl->snap)
				sl->snap = s;
		} else if ((end = 0, sscanf(e->d_name, "journal-%llu.log%n", &s, &end) == 1) && end > 0 && e->d_name[end] == '\0') {
			if (sl->n == cap) {
				cap = cap ? cap * 2 : 16;
				uint64_t *ns = realloc(sl->seq, cap * sizeof *ns);
				if (ns == NULL) {
					rc = node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
					break;
				}
				sl->seq = ns;
			}
			sl->seq[sl->n++] = s;
		}
	}
	closedir(d);
	if (rc == 0 && sl->n)
		qsort(sl->seq, sl->n, sizeof *sl->seq, cmp_u64);
	return rc;
}

/* Replay one file. *good receives the offset after the last good record. */
static int replay_file(node_journal *j, const char *path, node_journal_replay_fn fn, void *arg, uint64_t *good, int *torn, node_err *err)
{
	char *data = NULL;
	size_t len = 0;
	int rc = node_file_read(path, (size_t)1 << 40, &data, &len, err);
	if (rc != 0)
		return rc;
	size_t off = 0;
	*torn = 0;
	while (off < len) {
		if (len - off < REC_HDR) {
			*torn = 1;
			break;
		}
		uint32_t n = get32((unsigned char *)data + off), crc = get32((unsigned char *)data + off + 4);
		/* n == 0 is never written (appends refuse it) but zeros pass the crc. */
		if (n == 0 || n > REC_MAX || n > len - off - REC_HDR || crc32c(data + off + REC_HDR, n) != crc) {
			*torn = 1;
			break;
		}
		if ((rc = fn(data + off + REC_HDR, n, arg)) != 0) {
			node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "%s: record at byte %zu cannot be applied", path, off);
			break;
		}
		j->st.recovered++;
		off += REC_HDR + n;
	}
	free(data);
	*good = off;
	if (*torn)
		j->st.cut_bytes += len - off;
	return rc;
}

static int recover(node_journal *j, node_journal_replay_fn fn, void *arg, node_err *err)
{
	seglist sl = {0};
	int rc = list_segments(j, &sl, err);
	char path[4096];
	uint64_t good = 0;
	int torn = 0;
	if (rc == 0 && sl.snap) {
		seg_path(j, "snapshot", sl.snap, path, sizeof path);
		rc = replay_file(j, path, fn, arg, &good, &torn, err);
		if (rc == 0 && torn)
			rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "snapshot %s is damaged at byte %llu; restore it or remove the data directory",
			    path, (unsigned long long)good);
	}
	j->seq = sl.snap ? sl.snap : 1;
	for (size_t i = 0; rc == 0 && i < sl.n; i++) {
		if (sl.seq[i] < sl.snap)
			continue; /* replaced by the snapshot; a crash interrupted the cleanup */
		seg_path(j, "journal", sl.seq[i], path, sizeof path);
		rc = replay_file(j, path, fn, arg, &good, &torn, err);
		if (rc == 0 && torn) {
			node_warn("journal %s: cut a torn or corrupt tail after byte %llu (crash during a write); everything before it is kept",
			    path, (unsigned long long)good);
			if (truncate(path, (off_t)good) != 0)
				rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot cut %s: %s", path, strerror(errno));
			/* Later segments (none expected) would follow a hole: keep them out. */
			for (size_t k = i + 1; rc == 0 && k < sl.n; k++) {
				char later[4096];
				seg_path(j, "journal", sl.seq[k], later, sizeof later);
				node_warn("journal %s follows a damaged segment; moved aside to %s.damaged", later, later);
				char aside[4200];
				snprintf(aside, sizeof aside, "%s.damaged", later);
				rename(later, aside);
			}
			sl.n = i + 1;
		}
		j->seq = sl.seq[i];
		j->off = good;
	}
	free(sl.seq);
	return rc;
}

/* ---- writing ---- */

static int open_segment(node_journal *j, uint64_t seq, node_err *err)
{
	char path[4096];
	seg_path(j, "journal", seq, path, sizeof path);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot open %s: %s", path, strerror(errno));
	struct stat sb;
	fstat(fd, &sb);
	j->fd = fd;
	j->seq = seq;
	j->off = (uint64_t)sb.st_size;
	return 0;
}

static void sync_dir(const node_journal *j)
{
	int d = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d >= 0) {
		fsync(d);
		close(d);
	}
}

static int write_all(node_journal *j, int fd, const unsigned char *p, size_t n, uint64_t at)
{
	if (j->fail_writes) {
		errno = ENOSPC;
		return -1;
	}
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)at);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
		at += (uint64_t)w;
	}
	return 0;
}

static int do_sync(node_journal *j, int fd)
{
	uint64_t t0 = now_us();
	int r = fdatasync(fd);
	uint64_t dt = now_us() - t0;
	pthread_mutex_lock(&j->lock); /* stats are read under the lock */
	j->st.syncs++;
	j->st.sync_us_total += dt;
	if (dt > j->st.sync_us_max)
		j->st.sync_us_max = dt;
	pthread_mutex_unlock(&j->lock);
	return r;
}

/* Write one batch; on failure cut the file back so no partial record stays. */
static int write_batch(node_journal *j, const unsigned char *b, size_t n, node_err *err)
{
	if (n == 0)
		return 0;
	int r = write_all(j, j->fd, b, n, j->off);
	if (r == 0 && j->cfg.fsync != NODE_FSYNC_OFF)
		r = do_sync(j, j->fd);
	if (r != 0) {
		int e = errno;
		if (ftruncate(j->fd, (off_t)j->off) != 0)
			node_error("cannot cut a failed write back off segment %llu: %s", (unsigned long long)j->seq, strerror(errno));
		if (e == ENOSPC || e == EDQUOT)
			return node_err_set(err, NODE_ELIMIT, NODE_ERR_DISK_FULL, "the broker's disk is full (%s); free space in %s", strerror(e), j->dir);
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "journal write failed in %s: %s", j->dir, strerror(e));
	}
	j->off += n;
	pthread_mutex_lock(&j->lock);
	j->st.bytes += n;
	pthread_mutex_unlock(&j->lock);
	return 0;
}

static void rotate(node_journal *j)
{
	node_err err = {0};
	int old = j->fd;
	if (open_segment(j, j->seq + 1, &err) != 0) {
		node_error("%s; staying on the current segment", err.msg);
		return;
	}
	close(old);
	sync_dir(j);
}

static void remove_below(node_journal *j, uint64_t seq)
{
	seglist sl = {0};
	node_err err = {0};
	if (list_segments(j, &sl, &err) != 0)
		return;
	char path[4096];
	for (size_t i = 0; i < sl.n; i++) {
		if (sl.seq[i] >= seq)
			continue;
		seg_path(j, "journal", sl.seq[i], path, sizeof path);
		unlink(path);
	}
	free(sl.seq);
	DIR *d = opendir(j->dir);
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		unsigned long long s;
		if (sscanf(e->d_name, "snapshot-%llu.log", &s) == 1 && s < seq) {
			snprintf(path, sizeof path, "%s/%s", j->dir, e->d_name);
			unlink(path);
		}
	}
	if (d)
		closedir(d);
}

static void compact(node_journal *j, node_journal_snapshot_fn fn, void *arg)
{
	rotate(j);
	uint64_t base = j->seq;
	char tmp[4200], path[4096];
	seg_path(j, "snapshot", base, path, sizeof path);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	j->snap_fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (j->snap_fd < 0) {
		node_error("cannot write snapshot %s: %s", tmp, strerror(errno));
		return;
	}
	int rc = fn(j, arg);
	if (rc == 0 && do_sync(j, j->snap_fd) != 0)
		rc = -1;
	close(j->snap_fd);
	j->snap_fd = -1;
	if (rc != 0 || rename(tmp, path) != 0) {
		node_error("snapshot failed; the log keeps growing until the next try");
		unlink(tmp);
		return;
	}
	sync_dir(j);
	remove_below(j, base);
	struct stat sb;
	pthread_mutex_lock(&j->lock);
	j->st.compactions++;
	if (stat(path, &sb) == 0)
		j->st.bytes = (uint64_t)sb.st_size + j->off;
	pthread_mutex_unlock(&j->lock);
	node_info("journal compacted: snapshot of %lld bytes replaces every segment below %llu",
	    (long long)sb.st_size, (unsigned long long)base);
}

int node_journal_snapshot_put(node_journal *j, const void *rec, size_t len, node_err *err)
{
	unsigned char hdr[REC_HDR];
	put32(hdr, (uint32_t)len);
	put32(hdr + 4, crc32c(rec, len));
	if (write(j->snap_fd, hdr, REC_HDR) != REC_HDR || write(j->snap_fd, rec, len) != (ssize_t)len)
		return node_err_set(err, NODE_EIO, NODE_ERR_DISK_FULL, "cannot write the snapshot: %s", strerror(errno));
	return 0;
}

static void finish_waiters(waiter *w, int rc, const node_err *err)
{
	while (w) {
		waiter *next = w->next;
		w->cb(rc, err, w->arg);
		free(w);
		w = next;
	}
}

/* When the batch window that began with the last write closes, as a
 * monotonic deadline; 0 when it has closed already. */
static int batch_due(const node_journal *j, struct timespec *until)
{
	uint64_t due = j->last_write_us + (uint64_t)j->cfg.batch_ms * 1000u, now = now_us();
	if (now >= due)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, until);
	uint64_t ns = (uint64_t)until->tv_nsec + (due - now) * 1000u;
	until->tv_sec += (time_t)(ns / 1000000000u);
	until->tv_nsec = (long)(ns % 1000000000u);
	return 1;
}

/* Group commit: after an idle spell or a batch with a single commit the
 * writer writes at once (one client alone waits one sync, not a window);
 * under load it writes at most once per batch_ms, and everything that
 * arrived meanwhile shares the sync. */
static void wait_for_batch(node_journal *j)
{
	if (j->cfg.fsync != NODE_FSYNC_BATCH || j->stopping || j->was_idle)
		return;
	struct timespec until;
	if (j->last_write_us == 0 || !batch_due(j, &until))
		return;
	while (!j->stopping && pthread_cond_timedwait(&j->wake, &j->lock, &until) != ETIMEDOUT)
		;
}

/* After a full disk, accept appends again once there is room to breathe. */
static void check_space(node_journal *j)
{
	struct statvfs sv;
	if (!j->full || j->fail_writes || statvfs(j->dir, &sv) != 0)
		return;
	if ((uint64_t)sv.f_bavail * sv.f_frsize >= (8u << 20)) {
		j->full = 0;
		node_info("%s has free space again; accepting writes", j->dir);
	}
}

/* Records nobody waits for (batch policy) are written within batch_ms but
 * do not make the writer busy: the next commit still goes out at once. */
static void wait_lazy_records(node_journal *j)
{
	while (j->cfg.fsync == NODE_FSYNC_BATCH && !j->stopping && j->len > 0 && j->wait_head == NULL && j->compact_fn == NULL) {
		j->was_idle = 1;
		struct timespec until;
		if (!batch_due(j, &until))
			return;
		pthread_cond_timedwait(&j->wake, &j->lock, &until);
	}
}

static void wait_for_work(node_journal *j)
{
	for (;;) {
		wait_lazy_records(j);
		if (j->stopping || j->len > 0 || j->wait_head != NULL || j->compact_fn != NULL)
			return;
		j->was_idle = 1;
		if (!j->full) {
			pthread_cond_wait(&j->wake, &j->lock);
			continue;
		}
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&j->wake, &j->lock, &until);
		check_space(j);
	}
}

static void *writer_main(void *arg)
{
	node_journal *j = arg;
	node_log_set_role("journal");
	unsigned char *mine = NULL;
	size_t mine_cap = 0;
	pthread_mutex_lock(&j->lock);
	for (;;) {
		wait_for_work(j);
		if (j->stopping && j->len == 0 && j->wait_head == NULL)
			break;
		wait_for_batch(j);
		j->last_write_us = now_us();
		int nwait = 0;
		for (waiter *x = j->wait_head; x && nwait < 2; x = x->next)
			nwait++;
		/* One commit at a time is not load: only batches that several commits
		 * share make the next one wait for its window. */
		j->was_idle = nwait <= 1;
		/* Swap buffers: appenders continue while this batch is written. */
		unsigned char *b = j->buf;
		size_t n = j->len, cap = j->cap;
		j->buf = mine, j->cap = mine_cap, j->len = 0;
		mine = b, mine_cap = cap;
		waiter *w = j->wait_head;
		j->wait_head = j->wait_tail = NULL;
		node_journal_snapshot_fn cfn = j->compact_fn;
		void *carg = j->compact_arg;
		j->compact_fn = NULL;
		pthread_mutex_unlock(&j->lock);

		node_err err = {0};
		int rc = write_batch(j, mine, n, &err);
		if (rc != 0)
			node_error("%s", err.msg);
		pthread_mutex_lock(&j->lock);
		if (n > 0)
			j->full = rc == NODE_ELIMIT; /* only a write ends (or starts) the full state */
		if (rc != 0) {
			/* Commits asked for while this batch was being written cover its records too. */
			waiter **t = &w;
			while (*t)
				t = &(*t)->next;
			*t = j->wait_head;
			j->wait_head = j->wait_tail = NULL;
		} else if (n == 0 && w != NULL && j->full) {
			/* Records accepted before the disk filled up were lost: confirm nothing while full. */
			rc = node_err_set(&err, NODE_ELIMIT, NODE_ERR_DISK_FULL, "the broker's disk is full; free space in %s", j->dir);
		}
		pthread_mutex_unlock(&j->lock);
		finish_waiters(w, rc, &err);
		if (rc == 0 && j->off >= j->cfg.segment_bytes)
			rotate(j);
		if (cfn)
			compact(j, cfn, carg);
		pthread_mutex_lock(&j->lock);
	}
	pthread_mutex_unlock(&j->lock);
	free(mine);
	return NULL;
}

/* ---- public ---- */

static int lock_dir(node_journal *j, node_err *err)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/LOCK", j->dir);
	j->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (j->lock_fd < 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot open %s: %s", path, strerror(errno));
	if (flock(j->lock_fd, LOCK_EX | LOCK_NB) != 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_BUSY, "data directory %s is in use by another process", j->dir);
	return 0;
}

static void journal_free(node_journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	if (j->lock_fd >= 0)
		close(j->lock_fd);
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->wake);
	free(j->buf);
	free(j->dir);
	free(j);
}

int node_journal_open(node_journal **out, const node_journal_cfg *cfg, node_journal_replay_fn replay, void *arg, node_err *err)
{
	pthread_once(&crc_once, crc_init);
	node_journal *j = calloc(1, sizeof *j);
	if (j == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	j->cfg = *cfg;
	if (j->cfg.segment_bytes == 0)
		j->cfg.segment_bytes = 64u << 20;
	if (j->cfg.batch_ms <= 0)
		j->cfg.batch_ms = 2;
	j->fd = j->lock_fd = j->snap_fd = -1;
	j->dir = strdup(cfg->dir);
	pthread_mutex_init(&j->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->wake, &ca);
	pthread_condattr_destroy(&ca);
	int rc = j->dir ? node_file_mkdirs(j->dir, err) : node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	if (rc == 0)
		rc = lock_dir(j, err);
	if (rc == 0)
		rc = recover(j, replay, arg, err);
	if (rc == 0)
		rc = open_segment(j, j->seq, err);
	if (rc == 0) {
		struct stat sb;
		char path[4096];
		seg_path(j, "snapshot", j->seq, path, sizeof path);
		j->st.bytes = j->off + (stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0);
		if (pthread_create(&j->writer, NULL, writer_main, j) != 0)
			rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot start the journal writer");
	}
	if (rc != 0) {
		journal_free(j);
		return rc;
	}
	*out = j;
	return 0;
}

void node_journal_close(node_journal *j)
{
	if (j == NULL)
		return;
	pthread_mutex_lock(&j->lock);
	j->stopping = 1;
	pthread_cond_signal(&j->wake);
	pthread_mutex_unlock(&j->lock);
	pthread_join(j->writer, NULL);
	if (j->fd >= 0)
		fdatasync(j->fd);
	journal_free(j);
}

int node_journal_append(node_journal *j, const void *rec, size_t len, node_err *err)
{
	if (len == 0 || len > REC_MAX)
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_TOO_LARGE, "journal record of %zu bytes (limit %u)", len, REC_MAX);
	pthread_mutex_lock(&j->lock);
	if (j->full) {
		pthread_mutex_unlock(&j->lock);
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_DISK_FULL, "the broker's disk is full; free space in %s", j->dir);
	}
	if (j->len + REC_HDR + len > j->cap) {
		size_t ncap = j->cap ? j->cap : 65536;
		while (ncap < j->len + REC_HDR + len)
			ncap *= 2;
		unsigned char *nb = realloc(j->buf, ncap);
		if (nb == NULL) {
			pthread_mutex_unlock(&j->lock);
			return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
		}
		j->buf = nb;
		j->cap = ncap;
	}
	unsigned char *p = j->buf + j->len;
	put32(p, (uint32_t)len);
	put32(p + 4, crc32c(rec, len));
	memcpy(p + REC_HDR, rec, len);
	int first = j->len == 0;
	j->len += REC_HDR + len;
	j->st.records++;
	if (j->cfg.fsync != NODE_FSYNC_BATCH || first) /* batch: the writer times the first one */
		pthread_cond_signal(&j->wake);
	pthread_mutex_unlock(&j->lock);
	return 0;
}

void node_journal_sync(node_journal *j, node_journal_done_fn cb, void *arg)
{
	waiter *w = malloc(sizeof *w);
	if (w == NULL) {
		node_err err;
		node_err_set(&err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
		cb(NODE_ENOMEM, &err, arg);
		return;
	}
	w->cb = cb;
	w->arg = arg;
	w->next = NULL;
	pthread_mutex_lock(&j->lock);
	if (j->wait_tail)
		j->wait_tail->next = w;
	else
		j->wait_head = w;
	j->wait_tail = w;
	pthread_cond_signal(&j->wake);
	pthread_mutex_unlock(&j->lock);
}

void node_journal_compact(node_journal *j, node_journal_snapshot_fn fn, void *arg)
{
	pthread_mutex_lock(&j->lock);
	j->compact_fn = fn;
	j->compact_arg = arg;
	pthread_cond_signal(&j->wake);
	pthread_mutex_unlock(&j->lock);
}

void node_journal_stats_get(node_journal *j, node_journal_stats *out)
{
	pthread_mutex_lock(&j->lock);
	*out = j->st;
	pthread_mutex_unlock(&j->lock);
}

void node_journal_fail_writes(node_journal *j, int fail)
{
	pthread_mutex_lock(&j->lock);
	j->fail_writes = fail;
	j->full = 0;
	pthread_mutex_unlock(&j->lock);
}
