/* The example MapReduce plugin, to copy (node-tasks(7), MAPREDUCE STREAMING
 * AND PLUGINS): map first_letter emits the first letter of every word,
 * lower-cased, with the value 1; reduce longest emits the longest value of
 * each key. Built by `make plugins` into build/plugins/mr_example.so; a job
 * names it as {"plugin": ".../mr_example.so", "function": "first_letter"}.
 * It includes only <node/mapreduce.h> and links no node library. */
#include <node/mapreduce.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* node checks this when present: a plugin built for another ABI is refused */
int node_mr_abi = NODE_MR_ABI;

static int is_letter(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Words are runs of ASCII letters, as in the built-in wordcount. */
int first_letter(const node_mr_api *api, node_mr_out *o, const char *line, size_t len, unsigned long long lineno,
                 const char *params_json)
{
	(void)lineno;
	(void)params_json;
	for (size_t i = 0; i < len; i++) {
		if (!is_letter(line[i]) || (i > 0 && is_letter(line[i - 1])))
			continue;
		char k = (char)(line[i] | 0x20);
		if (api->emit(o, &k, 1, "1", 1) != 0)
			return -1; /* the task is failing: stop */
	}
	return 0;
}

/* Each key once, its values one by one; the first of the longest wins. A
 * value stays valid only until the next call of next(), so the best one
 * so far is copied. */
int longest(const node_mr_api *api, node_mr_out *o, const char *key, size_t klen, const char *params_json)
{
	(void)params_json;
	const char *v;
	char *best = NULL;
	size_t vlen, blen = 0;
	int r, have = 0;
	while ((r = api->next(o, &v, &vlen)) > 0) {
		if (have && vlen <= blen)
			continue;
		char *b = realloc(best, vlen + 1);
		if (b == NULL) {
			api->fail(o, "longest: out of memory");
			free(best);
			return -1;
		}
		best = b;
		memcpy(best, v, vlen);
		blen = vlen;
		have = 1;
	}
	int rc = r < 0 ? -1 : have ? api->emit(o, key, klen, best, blen) : 0;
	free(best);
	return rc;
}
