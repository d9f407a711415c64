/* The name server role's shared state, for the files of modules/nameserver/:
 * registry.c (the entries, sorted by name, and their journal records) and
 * ops.c (the protocol), with modules/nameserver.c (start, sweep, stop). */
#ifndef NODE_NAMESERVER_H
#define NODE_NAMESERVER_H

#include <pthread.h>
#include <stdint.h>

#include "core/cmd.h"
#include "core/journal.h"
#include "core/transport.h"

#define NS_NAME_MAX 200      /* bytes in a name: A-Z a-z 0-9 . _ : / - */
#define NS_ADDRESS_MAX 512   /* bytes in an address */
#define NS_TTL_MAX 31536000  /* seconds: one year */
#define NS_RENEW_MAX 10000   /* names in one renew */
#define NS_ERR_EXISTS "exists"

typedef struct ns_entry {
	char *name;
	char *address;
	char *meta;          /* compact JSON object text, or NULL */
	int64_t ttl_s;       /* 0: never expires */
	int64_t expires_ms;  /* wall clock; 0: never */
	int64_t registered_ms;
} ns_entry;

typedef struct nameserver {
	node_ctx *ctx;
	pthread_mutex_t lock;  /* guards everything below */
	ns_entry **v;          /* sorted by name */
	size_t n, cap;
	node_journal *journal;
	node_server *srv;
	int64_t default_ttl_s;
	uint64_t records;      /* appended since the last snapshot */
	int compacting;
	int stopping;
	uint64_t dropped;      /* expired entries skipped at replay */
} nameserver;

/* registry.c (lock held for all of them) */
int ns_name_ok(const char *s);
/* The live entry called name (an expired one is removed first), or NULL. */
ns_entry *ns_find(nameserver *ns, const char *name, int64_t now_ms);
/* Insert or overwrite; takes ownership of e. NODE_ENOMEM on failure. */
int ns_put(nameserver *ns, ns_entry *e);
void ns_remove(nameserver *ns, const char *name);
/* Drop expired entries; returns how many. */
size_t ns_sweep(nameserver *ns, int64_t now_ms);
void ns_entry_free(ns_entry *e);
void ns_free_all(nameserver *ns);
/* The entry as a reply object {name, address, meta?, ttl_s, expires_ms?, registered_ms}. */
cJSON *ns_entry_json(const ns_entry *e);
/* Append a register/renew ('r') or remove ('x') record. */
int ns_rec_put(nameserver *ns, const ns_entry *e, node_err *err);
int ns_rec_remove(nameserver *ns, const char *name, node_err *err);
int ns_replay(const void *rec, size_t len, void *arg);
int ns_snapshot(node_journal *j, void *arg);

/* ops.c */
extern const node_op ns_ops[];

#endif
