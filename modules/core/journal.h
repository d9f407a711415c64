/* The durable log: an append-only journal of checksummed records in segment
 * files, with group commit and snapshots for compaction. A write that fails
 * (full disk) fails every commit waiting on it and is cut back off the file,
 * so nothing is acknowledged that is not on disk. */
#ifndef NODE_JOURNAL_H
#define NODE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct node_journal node_journal;

enum node_fsync { NODE_FSYNC_ALWAYS, NODE_FSYNC_BATCH, NODE_FSYNC_OFF };

typedef struct node_journal_cfg {
	const char *dir;        /* created if missing; locked while open */
	int fsync;              /* NODE_FSYNC_* */
	int batch_ms;           /* NODE_FSYNC_BATCH: at most one sync per batch_ms */
	size_t segment_bytes;   /* a new segment starts once this many are written */
} node_journal_cfg;

/* Replay: called for each record, snapshot first, then segments in order. */
typedef int (*node_journal_replay_fn)(const void *rec, size_t len, void *arg);
/* Commit callback: rc 0 when everything appended before the sync request is
 * as durable as the policy promises. Runs on the journal's writer thread. */
typedef void (*node_journal_done_fn)(int rc, const node_err *err, void *arg);
/* Snapshot: write the whole live state with node_journal_snapshot_put. */
typedef int (*node_journal_snapshot_fn)(node_journal *j, void *arg);

typedef struct node_journal_stats {
	uint64_t bytes;          /* on disk, all segments and the snapshot */
	uint64_t records;        /* appended since open */
	uint64_t syncs;          /* fsync calls */
	uint64_t sync_us_total;  /* time spent in fsync */
	uint64_t sync_us_max;
	uint64_t compactions;
	uint64_t recovered;      /* records replayed at open */
	uint64_t cut_bytes;      /* bytes of torn or corrupt tail cut at open */
} node_journal_stats;

int node_journal_open(node_journal **out, const node_journal_cfg *cfg, node_journal_replay_fn replay, void *arg, node_err *err);
/* Flushes, syncs and closes. */
void node_journal_close(node_journal *j);
/* Buffer one record (at most 64 MiB). NODE_ELIMIT with code "disk_full" while
 * the last write failed for lack of space. Thread-safe. */
int node_journal_append(node_journal *j, const void *rec, size_t len, node_err *err);
/* Ask for a callback once all records appended so far are durable. */
void node_journal_sync(node_journal *j, node_journal_done_fn cb, void *arg);
/* Ask the writer thread to compact: it rotates to a fresh segment, calls fn
 * (which dumps the live state through node_journal_snapshot_put), then
 * deletes what the snapshot replaces. Records must be idempotent. */
void node_journal_compact(node_journal *j, node_journal_snapshot_fn fn, void *arg);
int node_journal_snapshot_put(node_journal *j, const void *rec, size_t len, node_err *err);
void node_journal_stats_get(node_journal *j, node_journal_stats *out);
/* Test hook: make writes fail with ENOSPC as if the disk were full. */
void node_journal_fail_writes(node_journal *j, int fail);

#endif
