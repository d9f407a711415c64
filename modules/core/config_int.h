/* Private to the cluster-file modules: config_keys.c (the table and finding
 * rows in it), config_check.c (validation), config_defaults.c, config_wire.c
 * and config.c (load, select, lookups, set). Not for use outside them. */
#ifndef NODE_CONFIG_INT_H
#define NODE_CONFIG_INT_H

#include <limits.h>
#include <stddef.h>

#include "config.h"

#define NODE_CONF_NOMIN LLONG_MIN /* INT/NUMBER bound: unbounded below */
#define NODE_CONF_NOMAX LLONG_MAX /* INT/NUMBER bound: unbounded above */
#define NODE_CONF_SECRET_MIN 16   /* shortest secret, in the table and for secret_file */
#define NODE_CONF_PATH_LEN 512    /* dotted paths and table paths, in buffers */

/* The document root, an object of fixed keys like any OBJECT row. */
extern const node_conf_key node_conf_root_row;

/* The row of a table path ("nodes.*.host"; "" is the root), or NULL. */
const node_conf_key *node_conf_find_row(const char *schema);
/* parent.key into out (cut short when too long: returns 0). */
int node_conf_path_join(char *out, size_t n, const char *parent, const char *key);
/* The table path of key under schema: a MAP's children are all "*". */
int node_conf_schema_child(char *out, size_t n, const char *schema, const char *key);
/* The row of a document path ("nodes.alpha.host"), or NULL. */
const node_conf_key *node_conf_key_find(const char *path);
/* "a, b, c": the keys the table allows directly under schema. */
void node_conf_known_keys(const char *schema, char *out, size_t n);

/* Parse and validate text into *root, defaults filled. On failure err names
 * source and the first error; *errors (when errors is not NULL) gets all. */
int node_conf_check_text(const char *text, const char *source, cJSON **root, cJSON **errors, node_err *err);
/* Check *value as if the file held it at path (lists become arrays). */
int node_conf_check_value(const char *path, cJSON **value, node_err *err);

/* Give every key of the table that is missing from root its default. */
int node_conf_fill_defaults(cJSON *root, node_err *err);

#endif
