/* A string-keyed hash table for the channel host: channels by name,
 * clients by cid, subscribers by id. Keys are borrowed from the values
 * (each value holds its own name), so the table owns only its slots. */
#include <stdlib.h>
#include <string.h>

#include "chanhost/chanhost.h"

typedef struct ch_slot {
	const char *key;
	void *val;
	struct ch_slot *next;
} ch_slot;

struct ch_table {
	ch_slot **b;
	size_t nb, n;
};

static uint64_t ch_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

ch_table *ch_table_new(void)
{
	ch_table *t = calloc(1, sizeof *t);
	if (t == NULL)
		return NULL;
	t->nb = 64;
	t->b = calloc(t->nb, sizeof *t->b);
	if (t->b == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

void ch_table_free(ch_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nb; i++)
		for (ch_slot *s = t->b[i], *next; s; s = next) {
			next = s->next;
			free(s);
		}
	free(t->b);
	free(t);
}

void *ch_table_get(const ch_table *t, const char *key)
{
	for (ch_slot *s = t->b[ch_hash(key) % t->nb]; s; s = s->next)
		if (strcmp(s->key, key) == 0)
			return s->val;
	return NULL;
}

/* Grow at load 1 so chains stay short; a failed grow only costs speed. */
static void ch_table_grow(ch_table *t)
{
	size_t nb = t->nb * 2;
	ch_slot **b = calloc(nb, sizeof *b);
	if (b == NULL)
		return;
	for (size_t i = 0; i < t->nb; i++)
		for (ch_slot *s = t->b[i], *next; s; s = next) {
			next = s->next;
			size_t j = ch_hash(s->key) % nb;
			s->next = b[j];
			b[j] = s;
		}
	free(t->b);
	t->b = b;
	t->nb = nb;
}

int ch_table_put(ch_table *t, const char *key, void *val)
{
	if (t->n >= t->nb)
		ch_table_grow(t);
	ch_slot *s = malloc(sizeof *s);
	if (s == NULL)
		return -1;
	size_t i = ch_hash(key) % t->nb;
	*s = (ch_slot){key, val, t->b[i]};
	t->b[i] = s;
	t->n++;
	return 0;
}

void ch_table_del(ch_table *t, const char *key)
{
	for (ch_slot **p = &t->b[ch_hash(key) % t->nb]; *p; p = &(*p)->next)
		if (strcmp((*p)->key, key) == 0) {
			ch_slot *s = *p;
			*p = s->next;
			free(s);
			t->n--;
			return;
		}
}

size_t ch_table_count(const ch_table *t)
{
	return t->n;
}

void ch_table_each(const ch_table *t, void (*fn)(void *val, void *arg), void *arg)
{
	for (size_t i = 0; i < t->nb; i++)
		for (ch_slot *s = t->b[i], *next; s; s = next) {
			next = s->next; /* fn may delete s */
			fn(s->val, arg);
		}
}
