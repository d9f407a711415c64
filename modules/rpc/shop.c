/* The shop of Pyro's examples: customers log on, deposit money, buy
 * things and log out; allAccounts shows every balance. Money is kept in
 * whole cents so 100 - 37 is 63.00 exactly. Application errors (unknown
 * account, not logged on, insufficient funds) go back to the caller as
 * JSON-RPC errors; the shop keeps serving. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.h"

#define SHOP_ACCOUNTS_MAX 100000
#define SHOP_NAME_MAX 100
#define SHOP_AMOUNT_MAX 1e12 /* in currency units */
#define SHOP_BALANCE_MAX 1000000000000000LL /* cents: exact in a double, far from overflow */

typedef struct shop_account {
	char *name;
	long long cents;
	int logged_on;
} shop_account;

typedef struct shop {
	pthread_mutex_t lock; /* the shop may be declared concurrent */
	char title[128];
	shop_account *v;      /* sorted by name */
	size_t n, cap;
} shop;

static int shop_create(void **inst, const rpc_obj_cfg *cfg, node_err *err)
{
	shop *s = calloc(1, sizeof *s);
	if (s == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg->opts, "title");
	if (t && !cJSON_IsString(t)) {
		free(s);
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "title must be a string");
	}
	snprintf(s->title, sizeof s->title, "%s", t ? t->valuestring : "The Shop");
	pthread_mutex_init(&s->lock, NULL);
	*inst = s;
	return 0;
}

static void shop_destroy(void *inst, const rpc_kind *kind)
{
	(void)kind;
	shop *s = inst;
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].name);
	free(s->v);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* The index of name, or where it would go (*found 0). */
static size_t shop_find(const shop *s, const char *name, int *found)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(s->v[mid].name, name);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

static cJSON *money(long long cents)
{
	return cJSON_CreateNumber((double)cents / 100.0);
}

/* Lock the shop and find the account of params[0]; on failure the call is
 * answered and the lock released. */
static shop_account *shop_account_of(rpc_req *r, shop *s, const cJSON *params, int need_logon)
{
	const char *name;
	if (rpc_arg_str(r, params, 0, &name) != 0)
		return NULL;
	pthread_mutex_lock(&s->lock);
	int found;
	size_t i = shop_find(s, name, &found);
	if (!found) {
		pthread_mutex_unlock(&s->lock);
		rpc_req_fail(r, "KeyError", "unknown account \"%.100s\" (log on first)", name);
		return NULL;
	}
	if (need_logon && !s->v[i].logged_on) {
		pthread_mutex_unlock(&s->lock);
		rpc_req_fail(r, "PermissionError", "%.100s is not logged on", name);
		return NULL;
	}
	return &s->v[i];
}

static int amount_cents(rpc_req *r, const cJSON *params, int i, long long *out)
{
	double x;
	if (rpc_arg_num(r, params, i, &x) != 0)
		return -1;
	if (!(x > 0 && x <= SHOP_AMOUNT_MAX) || fabs(x * 100 - round(x * 100)) > 1e-6) {
		rpc_req_fail(r, "ValueError", "an amount must be positive, at most %.0f, in whole cents; got %g", SHOP_AMOUNT_MAX, x);
		return -1;
	}
	*out = llround(x * 100);
	return 0;
}

/* A new account at index i (lock held). */
static int shop_open(shop *s, const char *name, size_t i)
{
	if (s->n >= SHOP_ACCOUNTS_MAX)
		return -1;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		shop_account *v = realloc(s->v, cap * sizeof *v);
		if (v == NULL)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	char *copy = strdup(name);
	if (copy == NULL)
		return -1;
	memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof *s->v);
	s->v[i] = (shop_account){.name = copy};
	s->n++;
	return 0;
}

static void shop_logon(rpc_req *r, void *inst, const cJSON *params)
{
	shop *s = inst;
	const char *name;
	if (rpc_arg_str(r, params, 0, &name) != 0)
		return;
	size_t len = strlen(name);
	if (len == 0 || len > SHOP_NAME_MAX) {
		rpc_req_fail(r, "ValueError", "a customer name has 1 to %d bytes", SHOP_NAME_MAX);
		return;
	}
	pthread_mutex_lock(&s->lock);
	int found;
	size_t i = shop_find(s, name, &found);
	if (!found && shop_open(s, name, i) != 0) {
		size_t n = s->n;
		pthread_mutex_unlock(&s->lock);
		rpc_req_fail(r, "ShopFull", "the shop cannot open another account (%zu accounts, limit %d)", n, SHOP_ACCOUNTS_MAX);
		return;
	}
	s->v[i].logged_on = 1;
	long long cents = s->v[i].cents;
	pthread_mutex_unlock(&s->lock);
	rpc_req_result(r, money(cents));
}

static void shop_logout(rpc_req *r, void *inst, const cJSON *params)
{
	shop *s = inst;
	shop_account *a = shop_account_of(r, s, params, 0);
	if (a == NULL)
		return;
	a->logged_on = 0;
	long long cents = a->cents;
	pthread_mutex_unlock(&s->lock);
	rpc_req_result(r, money(cents));
}

static void shop_deposit(rpc_req *r, void *inst, const cJSON *params)
{
	shop *s = inst;
	long long cents;
	if (amount_cents(r, params, 1, &cents) != 0)
		return;
	shop_account *a = shop_account_of(r, s, params, 1);
	if (a == NULL)
		return;
	if (a->cents > SHOP_BALANCE_MAX - cents) {
		pthread_mutex_unlock(&s->lock);
		rpc_req_fail(r, "ValueError", "a balance stays below %.0f", SHOP_BALANCE_MAX / 100.0);
		return;
	}
	a->cents += cents;
	cents = a->cents;
	pthread_mutex_unlock(&s->lock);
	rpc_req_result(r, money(cents));
}

static void shop_buy(rpc_req *r, void *inst, const cJSON *params)
{
	shop *s = inst;
	const char *item;
	long long price;
	if (rpc_arg_str(r, params, 1, &item) != 0 || amount_cents(r, params, 2, &price) != 0)
		return;
	shop_account *a = shop_account_of(r, s, params, 1);
	if (a == NULL)
		return;
	long long have = a->cents;
	if (have < price) {
		pthread_mutex_unlock(&s->lock);
		rpc_req_fail(r, "InsufficientFunds", "insufficient funds: %.100s has %lld.%02lld, %.100s costs %lld.%02lld",
		    cJSON_GetArrayItem(params, 0)->valuestring, have / 100, have % 100, item, price / 100, price % 100);
		return;
	}
	a->cents -= price;
	long long left = a->cents;
	pthread_mutex_unlock(&s->lock);
	rpc_req_result(r, money(left));
}

static void shop_balance(rpc_req *r, void *inst, const cJSON *params)
{
	shop *s = inst;
	shop_account *a = shop_account_of(r, s, params, 0);
	if (a == NULL)
		return;
	long long cents = a->cents;
	pthread_mutex_unlock(&s->lock);
	rpc_req_result(r, money(cents));
}

static void shop_all(rpc_req *r, void *inst, const cJSON *params)
{
	(void)params;
	shop *s = inst;
	cJSON *o = cJSON_CreateObject();
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; o && i < s->n; i++)
		cJSON_AddItemToObject(o, s->v[i].name, money(s->v[i].cents));
	pthread_mutex_unlock(&s->lock);
	rpc_req_result(r, o);
}

static void shop_name(rpc_req *r, void *inst, const cJSON *params)
{
	(void)params;
	rpc_req_result(r, cJSON_CreateString(((shop *)inst)->title));
}

static const rpc_method shop_methods[] = {
	{"logOn", shop_logon, "name", 1, 1, 0, NULL},
	{"logOut", shop_logout, "name", 1, 1, 0, NULL},
	{"deposit", shop_deposit, "name,amount", 2, 2, 0, NULL},
	{"buy", shop_buy, "name,item,price", 3, 3, 0, NULL},
	{"balance", shop_balance, "name", 1, 1, 0, NULL},
	{"allAccounts", shop_all, "", 0, 0, 0, NULL},
	{"name", shop_name, "", 0, 0, 0, NULL},
	{NULL, NULL, NULL, 0, 0, 0, NULL},
};

const rpc_kind rpc_kind_shop = {
	.name = "shop",
	.doc = "logOn(name), logOut(name), deposit(name, amount), buy(name, item, price), balance(name), allAccounts(), name()",
	.methods = shop_methods,
	.create = shop_create,
	.destroy = shop_destroy,
	.concurrent = 0,
};
