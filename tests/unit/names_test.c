/* core/names.c against a small name server in this process (the ops and
 * answers of node-nameserver(1), with hooks to lose or steal names): adds
 * from many threads, meta, drops, restarts, names held by others, the
 * heartbeat (missing, foreign, renews split at 10000), limits, an
 * unreachable name server and the removal at close. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/names.h"
#include "core/transport.h"
#include "unit.h"

#define OURS "tcp://127.0.0.1:1"
#define THEIRS "tcp://127.0.0.1:2"

static node_wire wire;

/* ---- the fake name server ---- */

typedef struct fake_entry {
	char *name, *address;
	cJSON *meta;
} fake_entry;

static struct {
	pthread_mutex_t lock;
	fake_entry *v;
	int n, cap;
	int registers, renews, removes, lookups;
	int renew_max; /* the most names one renew carried */
} ns = {.lock = PTHREAD_MUTEX_INITIALIZER};

static fake_entry *fake_find(const char *name)
{
	for (int i = 0; i < ns.n; i++)
		if (strcmp(ns.v[i].name, name) == 0)
			return &ns.v[i];
	return NULL;
}

static void fake_put(const char *name, const char *address, const cJSON *meta)
{
	fake_entry *e = fake_find(name);
	if (e == NULL) {
		if (ns.n == ns.cap) {
			ns.cap = ns.cap ? ns.cap * 2 : 64;
			ns.v = realloc(ns.v, ns.cap * sizeof *ns.v);
		}
		e = &ns.v[ns.n++];
		e->name = strdup(name);
	} else {
		free(e->address);
		cJSON_Delete(e->meta);
	}
	e->address = strdup(address);
	e->meta = meta ? cJSON_Duplicate(meta, 1) : NULL;
}

static void fake_del(fake_entry *e)
{
	free(e->name);
	free(e->address);
	cJSON_Delete(e->meta);
	*e = ns.v[--ns.n];
}

static void fake_clear(void)
{
	pthread_mutex_lock(&ns.lock);
	while (ns.n > 0)
		fake_del(&ns.v[0]);
	ns.registers = ns.renews = ns.removes = ns.lookups = ns.renew_max = 0;
	pthread_mutex_unlock(&ns.lock);
}

static const char *str_of(const cJSON *req, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, key));
}

static void op_register(node_call *c, const cJSON *req, void *arg)
{
	const char *name = str_of(req, "name"), *addr = str_of(req, "address");
	if (name == NULL || addr == NULL || strlen(name) > 200) {
		node_call_error(c, NODE_ERR_BAD_ARGS, "name: expected 1 to 200 characters");
		return;
	}
	pthread_mutex_lock(&ns.lock);
	ns.registers++;
	fake_entry *e = fake_find(name);
	if (e && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "replace"))) {
		pthread_mutex_unlock(&ns.lock);
		node_call_error(c, "exists", "%s is registered already", name);
		return;
	}
	fake_put(name, addr, cJSON_GetObjectItemCaseSensitive(req, "meta"));
	pthread_mutex_unlock(&ns.lock);
	node_call_reply(c, node_reply_ok());
}

static void op_renew(node_call *c, const cJSON *req, void *arg)
{
	const cJSON *names = cJSON_GetObjectItemCaseSensitive(req, "names"), *v;
	const char *owner = str_of(req, "address");
	int n = cJSON_GetArraySize(names);
	if (n < 1 || n > 10000) {
		node_call_error(c, NODE_ERR_BAD_ARGS, "names: expected an array of 1 to 10000 names");
		return;
	}
	cJSON *reply = node_reply_ok();
	cJSON *missing = cJSON_AddArrayToObject(reply, "missing");
	cJSON *foreign = cJSON_AddArrayToObject(reply, "foreign");
	pthread_mutex_lock(&ns.lock);
	ns.renews++;
	if (n > ns.renew_max)
		ns.renew_max = n;
	cJSON_ArrayForEach(v, names) {
		fake_entry *e = fake_find(v->valuestring);
		if (e == NULL)
			cJSON_AddItemToArray(missing, cJSON_CreateString(v->valuestring));
		else if (owner && strcmp(owner, e->address) != 0)
			cJSON_AddItemToArray(foreign, cJSON_CreateString(v->valuestring));
	}
	pthread_mutex_unlock(&ns.lock);
	node_call_reply(c, reply);
}

static void op_lookup(node_call *c, const cJSON *req, void *arg)
{
	pthread_mutex_lock(&ns.lock);
	ns.lookups++;
	fake_entry *e = fake_find(str_of(req, "name"));
	cJSON *reply = e ? node_reply_ok() : NULL;
	if (e)
		cJSON_AddStringToObject(reply, "address", e->address);
	pthread_mutex_unlock(&ns.lock);
	if (reply)
		node_call_reply(c, reply);
	else
		node_call_error(c, NODE_ERR_NOT_FOUND, "no such name");
}

static void op_remove(node_call *c, const cJSON *req, void *arg)
{
	const char *owner = str_of(req, "address");
	pthread_mutex_lock(&ns.lock);
	ns.removes++;
	fake_entry *e = fake_find(str_of(req, "name"));
	if (e && owner && strcmp(owner, e->address) != 0) {
		pthread_mutex_unlock(&ns.lock);
		node_call_error(c, "exists", "registered by another");
		return;
	}
	if (e)
		fake_del(e);
	pthread_mutex_unlock(&ns.lock);
	if (e)
		node_call_reply(c, node_reply_ok());
	else
		node_call_error(c, NODE_ERR_NOT_FOUND, "no such name");
}

static const node_op fake_ops[] = {
	{"register", op_register}, {"renew", op_renew}, {"lookup", op_lookup}, {"remove", op_remove}, {NULL, NULL}};

/* The address a name has at the fake, "" when it has none. */
static const char *addr_of(const char *name)
{
	static char buf[128];
	pthread_mutex_lock(&ns.lock);
	fake_entry *e = fake_find(name);
	snprintf(buf, sizeof buf, "%s", e ? e->address : "");
	pthread_mutex_unlock(&ns.lock);
	return buf;
}

static int fake_count(void)
{
	pthread_mutex_lock(&ns.lock);
	int n = ns.n;
	pthread_mutex_unlock(&ns.lock);
	return n;
}

/* ---- helpers ---- */

static node_server *srv;

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int lost_count;
static char lost_last[256];

static void on_lost(const char *name, const node_err *why, void *arg)
{
	lost_count++;
	snprintf(lost_last, sizeof lost_last, "%s", name);
}

static cJSON *meta_of(const char *name, void *arg)
{
	cJSON *m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "from", "callback");
	cJSON_AddStringToObject(m, "name", name);
	return m;
}

static node_names *open_names(int ttl_s, size_t max, int replace)
{
	node_names_cfg cfg = {.nameserver = node_server_url(srv), .wire = &wire, .address = OURS, .ttl_s = ttl_s,
	    .replace = replace, .timeout_ms = 2000, .max_names = max, .quiet = 1, .meta = meta_of, .lost = on_lost};
	node_names *n = NULL;
	node_err err = {0};
	UNIT_CHECK(node_names_open(&n, &cfg, &err) == 0);
	lost_count = 0;
	lost_last[0] = '\0';
	return n;
}

/* ---- tests ---- */

typedef struct adder {
	node_names *n;
	int base, count, failed;
} adder;

static void *add_many(void *arg)
{
	adder *a = arg;
	char name[64];
	node_err err = {0};
	for (int i = 0; i < a->count; i++) {
		snprintf(name, sizeof name, "channel/t%d", a->base + i);
		if (node_names_add(a->n, name, NULL, &err) != 0)
			a->failed++;
	}
	return NULL;
}

UNIT_TEST(test_add_from_threads_and_drop)
{
	fake_clear();
	node_names *n = open_names(60, 5000, 0);
	pthread_t th[4];
	adder ad[4];
	for (int i = 0; i < 4; i++) {
		ad[i] = (adder){.n = n, .base = i * 500, .count = 500};
		pthread_create(&th[i], NULL, add_many, &ad[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		UNIT_CHECK(ad[i].failed == 0);
	}
	UNIT_CHECK(node_names_count(n) == 2000);
	UNIT_CHECK(fake_count() == 0); /* add never talks to the name server */
	node_err err = {0};
	UNIT_CHECK(node_names_tick(n, &err) == 0);
	UNIT_CHECK(fake_count() == 2000);
	UNIT_CHECK(strcmp(addr_of("channel/t1999"), OURS) == 0);

	/* meta: given, or the callback's */
	cJSON *m = cJSON_Parse("{\"kind\":\"channel\"}");
	UNIT_CHECK(node_names_add(n, "given", m, &err) == 0);
	cJSON_Delete(m);
	UNIT_CHECK(node_names_tick(n, &err) == 0);
	pthread_mutex_lock(&ns.lock);
	UNIT_CHECK(strcmp(str_of(fake_find("given")->meta, "kind"), "channel") == 0);
	UNIT_CHECK(strcmp(str_of(fake_find("channel/t7")->meta, "from"), "callback") == 0);
	int regs = ns.registers;
	pthread_mutex_unlock(&ns.lock);

	/* drop: removed at the next tick; dropped before registering: never sent */
	node_names_drop(n, "channel/t7");
	node_names_drop(n, "not-added");
	UNIT_CHECK(node_names_add(n, "brief", NULL, &err) == 0);
	node_names_drop(n, "brief");
	UNIT_CHECK(strcmp(addr_of("channel/t7"), OURS) == 0);
	UNIT_CHECK(node_names_tick(n, &err) == 0);
	UNIT_CHECK(addr_of("channel/t7")[0] == '\0');
	pthread_mutex_lock(&ns.lock);
	UNIT_CHECK(ns.registers == regs);
	pthread_mutex_unlock(&ns.lock);
	UNIT_CHECK(node_names_count(n) == 2000);

	/* dropped and added again before a tick: kept */
	node_names_drop(n, "channel/t8");
	UNIT_CHECK(node_names_add(n, "channel/t8", NULL, &err) == 0);
	UNIT_CHECK(node_names_tick(n, &err) == 0);
	UNIT_CHECK(strcmp(addr_of("channel/t8"), OURS) == 0);

	/* close removes every name */
	node_names_close(n);
	UNIT_CHECK(fake_count() == 0);
}

UNIT_TEST(test_exists_ours_and_theirs)
{
	fake_clear();
	pthread_mutex_lock(&ns.lock);
	fake_put("mine", OURS, NULL);     /* left by us before a restart */
	fake_put("taken", THEIRS, NULL);  /* another server's */
	pthread_mutex_unlock(&ns.lock);
	node_names *n = open_names(60, 0, 0);
	node_err err = {0};
	UNIT_CHECK(node_names_add(n, "mine", NULL, &err) == 0);
	UNIT_CHECK(node_names_add(n, "taken", NULL, &err) == 0);
	UNIT_CHECK(node_names_add(n, "after", NULL, &err) == 0);
	int rc = node_names_tick(n, &err);
	UNIT_CHECK(rc == NODE_EEXIST);
	UNIT_CHECK(strstr(err.msg, "taken is registered already by " THEIRS " at the name server") != NULL);
	UNIT_CHECK(strstr(err.msg, "--replace") != NULL);
	UNIT_CHECK(lost_count == 1 && strcmp(lost_last, "taken") == 0);
	UNIT_CHECK(strcmp(addr_of("mine"), OURS) == 0);
	UNIT_CHECK(addr_of("after")[0] == '\0'); /* the rest waits for the next call */
	UNIT_CHECK(node_names_tick(n, &err) == 0);
	UNIT_CHECK(strcmp(addr_of("after"), OURS) == 0);
	UNIT_CHECK(strcmp(addr_of("taken"), THEIRS) == 0);
	/* at close: ours removed, theirs left alone */
	node_names_close(n);
	UNIT_CHECK(addr_of("mine")[0] == '\0');
	UNIT_CHECK(strcmp(addr_of("taken"), THEIRS) == 0);

	/* with replace it is taken over */
	n = open_names(60, 0, 1);
	UNIT_CHECK(node_names_add(n, "taken", NULL, &err) == 0);
	UNIT_CHECK(node_names_tick(n, &err) == 0);
	UNIT_CHECK(strcmp(addr_of("taken"), OURS) == 0);
	node_names_close(n);
}

UNIT_TEST(test_heartbeat_missing_foreign_refused)
{
	fake_clear();
	node_names *n = open_names(1, 0, 0); /* heartbeat every 333 ms */
	node_err err = {0};
	UNIT_CHECK(node_names_add(n, "a", NULL, &err) == 0);
	UNIT_CHECK(node_names_add(n, "b", NULL, &err) == 0);
	UNIT_CHECK(node_names_add(n, "c", NULL, &err) == 0);
	char longname[230];
	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	UNIT_CHECK(node_names_add(n, longname, NULL, &err) == 0); /* ours takes 255, the server 200 */
	UNIT_CHECK(node_names_tick(n, &err) == 0);
	UNIT_CHECK(fake_count() == 3);
	UNIT_CHECK(lost_count == 1); /* refused: given up */
	/* the name server lost "a" and another took "b" */
	pthread_mutex_lock(&ns.lock);
	fake_del(fake_find("a"));
	fake_put("b", THEIRS, NULL);
	int renews = ns.renews;
	pthread_mutex_unlock(&ns.lock);
	UNIT_CHECK(node_names_tick(n, &err) == 0); /* not due yet */
	UNIT_CHECK(addr_of("a")[0] == '\0');
	sleep_ms(400);
	UNIT_CHECK(node_names_tick(n, &err) == 0);
	pthread_mutex_lock(&ns.lock);
	UNIT_CHECK(ns.renews == renews + 1);
	pthread_mutex_unlock(&ns.lock);
	UNIT_CHECK(strcmp(addr_of("a"), OURS) == 0);
	UNIT_CHECK(strcmp(addr_of("b"), THEIRS) == 0);
	UNIT_CHECK(lost_count == 2 && strcmp(lost_last, "b") == 0);
	sleep_ms(400);
	UNIT_CHECK(node_names_tick(n, &err) == 0);
	UNIT_CHECK(strcmp(addr_of("b"), THEIRS) == 0); /* given up for good */
	/* unless added again (with replace off: theirs, an error) */
	UNIT_CHECK(node_names_add(n, "b", NULL, &err) == 0);
	UNIT_CHECK(node_names_tick(n, &err) == NODE_EEXIST);
	node_names_close(n);
	UNIT_CHECK(fake_count() == 1 && strcmp(addr_of("b"), THEIRS) == 0);
}

UNIT_TEST(test_limits_and_leave)
{
	fake_clear();
	node_names *n = open_names(60, 3, 0);
	node_err err = {0};
	char big[300];
	memset(big, 'y', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	UNIT_CHECK(node_names_add(n, big, NULL, &err) == NODE_EINVAL);
	UNIT_CHECK(node_names_add(n, "", NULL, &err) == NODE_EINVAL);
	UNIT_CHECK(node_names_add(n, "1", NULL, &err) == 0);
	UNIT_CHECK(node_names_add(n, "2", NULL, &err) == 0);
	UNIT_CHECK(node_names_add(n, "3", NULL, &err) == 0);
	UNIT_CHECK(node_names_add(n, "3", NULL, &err) == 0); /* again: no new name */
	UNIT_CHECK(node_names_add(n, "4", NULL, &err) == NODE_ELIMIT);
	UNIT_CHECK(strstr(err.msg, "more than 3 names") != NULL);
	node_names_drop(n, "3");
	UNIT_CHECK(node_names_add(n, "4", NULL, &err) == 0);
	UNIT_CHECK(node_names_tick(n, &err) == 0);
	UNIT_CHECK(fake_count() == 3);
	node_names_leave(n);
	UNIT_CHECK(fake_count() == 0);
	UNIT_CHECK(node_names_add(n, "5", NULL, &err) == NODE_ECLOSED);
	node_names_drop(n, "1");
	node_names_close(n);
}

UNIT_TEST(test_renew_split)
{
	fake_clear();
	node_names *n = open_names(1, 20000, 0);
	node_err err = {0};
	char name[32];
	for (int i = 0; i < 12000; i++) {
		snprintf(name, sizeof name, "n%d", i);
		UNIT_CHECK(node_names_add(n, name, NULL, &err) == 0);
	}
	UNIT_CHECK(node_names_tick(n, &err) == 0);
	UNIT_CHECK(fake_count() == 12000);
	sleep_ms(400);
	UNIT_CHECK(node_names_tick(n, &err) == 0);
	pthread_mutex_lock(&ns.lock);
	UNIT_CHECK(ns.renews == 2 && ns.renew_max == 10000);
	pthread_mutex_unlock(&ns.lock);
	UNIT_CHECK(lost_count == 0);
	node_names_close(n);
	UNIT_CHECK(fake_count() == 0);
}

UNIT_TEST(test_unreachable)
{
	/* A port nobody listens on: calls time out; the queue waits a heartbeat. */
	node_names_cfg cfg = {.nameserver = "tcp://127.0.0.1:1", .wire = &wire, .address = OURS, .ttl_s = 3,
	    .timeout_ms = 200, .quiet = 1};
	node_names *n = NULL;
	node_err err = {0};
	UNIT_CHECK(node_names_open(&n, &cfg, &err) == 0);
	UNIT_CHECK(node_names_add(n, "x", NULL, &err) == 0);
	int64_t t0 = node_clock_mono_ms();
	UNIT_CHECK(node_names_tick(n, &err) == 0);
	int64_t t1 = node_clock_mono_ms();
	UNIT_CHECK(node_names_tick(n, &err) == 0);
	int64_t t2 = node_clock_mono_ms();
	UNIT_CHECK(t1 - t0 < 1000);
	UNIT_CHECK(t2 - t1 < 50); /* waits for the retry instead of calling again */
	node_names_close(n);      /* nothing registered: nothing to remove */
	UNIT_CHECK(node_clock_mono_ms() - t2 < 500);
}

int main(void)
{
	node_wire_init(&wire);
	node_err err = {0};
	node_log_configure("error", NULL, &err);
	node_server_cfg sc = {.url = "tcp://127.0.0.1:0", .role = "nameserver", .node = "n", .ops = fake_ops,
	    .wire = &wire};
	if (node_server_start(&srv, &sc, &err) != 0) {
		fprintf(stderr, "cannot start the fake name server: %s\n", err.msg);
		return 1;
	}
	UNIT_RUN(test_add_from_threads_and_drop);
	UNIT_RUN(test_exists_ours_and_theirs);
	UNIT_RUN(test_heartbeat_missing_foreign_refused);
	UNIT_RUN(test_limits_and_leave);
	UNIT_RUN(test_renew_split);
	UNIT_RUN(test_unreachable);
	fake_clear();
	node_server_stop(srv);
	free(ns.v);
	node_wire_fini(&wire);
	return unit_finish("names");
}
