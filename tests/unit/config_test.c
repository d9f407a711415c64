/* The cluster file: examples are valid, errors read exactly as documented,
 * defaults are filled, nodes are chosen and overrides apply. Run from the
 * repository root (the example files are found by relative path). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "unit.h"

static int parse(node_conf *c, const char *text, cJSON **errs, node_err *err)
{
	return node_conf_parse(c, text, "t.json", errs, err);
}

static const char *err_at(const cJSON *errs, int i)
{
	return cJSON_GetStringValue(cJSON_GetArrayItem(errs, i));
}

/* The only error text of an invalid document (NULL when it was valid). */
static char *only_error(const char *text)
{
	node_conf c;
	node_err err;
	cJSON *errs = NULL;
	char *out = NULL;
	if (parse(&c, text, &errs, &err) != 0) {
		if (cJSON_GetArraySize(errs) == 1)
			out = strdup(err_at(errs, 0));
		else
			out = strdup("(several errors)");
	}
	cJSON_Delete(errs);
	node_conf_free(&c);
	return out;
}

static int error_is(const char *text, const char *want)
{
	char *got = only_error(text);
	int ok = got != NULL && strcmp(got, want) == 0;
	if (!ok)
		fprintf(stderr, "  want: %s\n  got:  %s\n", want, got ? got : "(valid)");
	free(got);
	return ok;
}

UNIT_TEST(embedded_default_is_valid)
{
	node_conf c;
	node_err err;
	cJSON *errs = NULL;
	unsetenv("NODE_NAME");
	UNIT_CHECK(node_conf_parse(&c, node_conf_default_text, "(embedded default)", &errs, &err) == 0);
	UNIT_CHECK(errs == NULL);
	UNIT_CHECK(node_conf_select(&c, NULL, &err) == 0);
	UNIT_CHECK(c.node != NULL && strcmp(c.node, "local") == 0);
	const char *url = NULL;
	UNIT_CHECK(node_conf_role_url(&c, "broker", "listen", &url, &err) == 0);
	UNIT_CHECK(url != NULL && strcmp(url, "tcp://127.0.0.1:7100") == 0);
	const cJSON *q = node_conf_mine(&c, "roles.worker.queues");
	UNIT_CHECK(cJSON_GetArraySize(q) == 5 && strcmp(err_at(q, 0), "default") == 0 && strcmp(err_at(q, 3), "webcrawler") == 0);
	UNIT_CHECK(strcmp(c.source, "(embedded default)") == 0);
	node_conf_free(&c);
}

UNIT_TEST(load_without_path)
{
	node_conf c;
	node_err err;
	unsetenv("NODE_CONFIG");
	int has_local = access("node.json", F_OK) == 0;
	UNIT_CHECK(node_conf_load(&c, NULL, NULL, &err) == 0);
	UNIT_CHECK(strcmp(c.source, has_local ? "node.json" : "(embedded default)") == 0);
	node_conf_free(&c);

	setenv("NODE_CONFIG", "conf/three-machines.json", 1);
	UNIT_CHECK(node_conf_load(&c, NULL, NULL, &err) == 0);
	UNIT_CHECK(c.source && strcmp(c.source, "conf/three-machines.json") == 0);
	node_conf_free(&c);
	unsetenv("NODE_CONFIG");

	cJSON *errs = NULL;
	UNIT_CHECK(node_conf_load(&c, "conf/no-such-file.json", &errs, &err) != 0);
	UNIT_CHECK(strstr(err.msg, "conf/no-such-file.json") != NULL);
	UNIT_CHECK(cJSON_GetArraySize(errs) == 1);
	cJSON_Delete(errs);
	node_conf_free(&c);
}

UNIT_TEST(example_files_are_valid)
{
	node_conf c;
	node_err err;
	cJSON *errs = NULL;
	unsetenv("NODE_NAME");
	UNIT_CHECK(node_conf_load(&c, "conf/one-machine.json", &errs, &err) == 0);
	UNIT_CHECK(errs == NULL);
	UNIT_CHECK(node_conf_select(&c, NULL, &err) == 0 && strcmp(c.node, "local") == 0);
	node_conf_free(&c);

	UNIT_CHECK(node_conf_load(&c, "conf/three-machines.json", &errs, &err) == 0);
	UNIT_CHECK(errs == NULL);
	UNIT_CHECK(node_conf_select(&c, "beta", &err) == 0);
	UNIT_CHECK(node_conf_int(&c, "nodes.beta.roles.worker.concurrency", 0) == 4);
	UNIT_CHECK(cJSON_GetArraySize(node_conf_mine(&c, "roles.worker.queues")) == 2);
	UNIT_CHECK(node_conf_mine(&c, "roles.broker") == NULL);
	node_conf_free(&c);
}

UNIT_TEST(bad_example_reports_every_error_in_order)
{
	node_conf c;
	node_err err;
	cJSON *errs = NULL;
	UNIT_CHECK(node_conf_load(&c, "conf/bad-example.json", &errs, &err) == NODE_EINVAL);
	UNIT_CHECK(c.root == NULL);
	UNIT_CHECK(err.rc == NODE_EINVAL && strcmp(err.code, "bad_config") == 0);
	UNIT_CHECK(cJSON_GetArraySize(errs) == 4);
	const char *want[] = {
		"defaults.log_level: expected one of debug, info, warn, error, got \"loud\"",
		"nodes.a.roles.broker.listen: expected a URL (tcp://host:port, tls+tcp://host:port, ipc:///path or inproc://name), got \"7100\"",
		"nodes.beta.hots: unknown key (known keys here: host, data_dir, roles)",
		"nodes.beta.roles.worker.concurrency: expected an integer >= 1, got \"four\"",
	};
	for (int i = 0; i < 4; i++) {
		const char *got = err_at(errs, i);
		UNIT_CHECK(got != NULL && strcmp(got, want[i]) == 0);
		if (got && strcmp(got, want[i]) != 0)
			fprintf(stderr, "  want: %s\n  got:  %s\n", want[i], got);
	}
	UNIT_CHECK(strcmp(err.msg, "conf/bad-example.json: defaults.log_level: expected one of debug, info, warn, error, got \"loud\"") == 0);
	cJSON_Delete(errs);
	node_conf_free(&c);
}

UNIT_TEST(type_errors)
{
	UNIT_CHECK(error_is("{\"nodes\":{\"beta\":{\"roles\":{\"worker\":{\"concurrency\":\"four\"}}}}}",
	    "nodes.beta.roles.worker.concurrency: expected an integer >= 1, got \"four\""));
	UNIT_CHECK(error_is("{\"limits\":{\"max_depth\":5000},\"nodes\":{\"a\":{}}}",
	    "limits.max_depth: expected an integer from 4 to 1000, got 5000"));
	UNIT_CHECK(error_is("{\"limits\":{\"max_depth\":6.5},\"nodes\":{\"a\":{}}}",
	    "limits.max_depth: expected an integer from 4 to 1000, got 6.5"));
	UNIT_CHECK(error_is("{\"defaults\":{\"log_level\":\"loud\"},\"nodes\":{\"a\":{}}}",
	    "defaults.log_level: expected one of debug, info, warn, error, got \"loud\""));
	UNIT_CHECK(error_is("{\"nodes\":{\"a\":{\"roles\":{\"broker\":{\"listen\":\"7100\"}}}}}",
	    "nodes.a.roles.broker.listen: expected a URL (tcp://host:port, tls+tcp://host:port, ipc:///path or inproc://name), got \"7100\""));
	UNIT_CHECK(error_is("{\"nodes\":{\"a\":{\"roles\":{\"broker\":{\"listen\":\"tcp://:7100\"}}}}}",
	    "nodes.a.roles.broker.listen: expected a URL (tcp://host:port, tls+tcp://host:port, ipc:///path or inproc://name), got \"tcp://:7100\""));
	UNIT_CHECK(error_is("{\"tls\":{\"require_client_cert\":\"yes\"},\"nodes\":{\"a\":{}}}",
	    "tls.require_client_cert: expected true or false, got \"yes\""));
	UNIT_CHECK(error_is("{\"cluster\":7,\"nodes\":{\"a\":{}}}",
	    "cluster: expected a non-empty string of at most 255 characters, got 7"));
	UNIT_CHECK(error_is("{\"nodes\":{\"a\":{\"roles\":{\"worker\":{\"queues\":[\"x\",\"\"]}}}}}",
	    "nodes.a.roles.worker.queues: expected a list of non-empty strings (an array, or \"a,b,c\"), got [\"x\",\"\"]"));
	UNIT_CHECK(error_is("{\"nodes\":{\"a\":{\"roles\":[]}}}", "nodes.a.roles: expected an object, got []"));
	UNIT_CHECK(error_is("{\"nodes\":{\"a\":{},\"clusterx\":{}},\"bogus\":1}",
	    "bogus: unknown key (known keys here: cluster, secret, secret_file, auth_window_ms, tls, limits, defaults, queues, nodes)"));
	UNIT_CHECK(error_is("{\"nodes\":{\"a\":{\"roles\":{\"brokr\":{}}}}}",
	    "nodes.a.roles.brokr: unknown key (known keys here: broker, nameserver, rpc, chanhost, worker, mapreduce)"));
	UNIT_CHECK(error_is("{\"nodes\":{\"a\":{},\"a\":{}}}", "nodes.a: duplicate key"));
	UNIT_CHECK(error_is("{\"nodes\":{\"a.b\":{}}}",
	    "nodes: \"a.b\" is not a usable name (names are non-empty and contain no '.')"));
	UNIT_CHECK(error_is("[1,2]", "expected a JSON object at the top level, got [1,2]"));
	UNIT_CHECK(error_is("{}", "nodes: required: describe at least one node (\"nodes\": {\"local\": {}})"));
	UNIT_CHECK(error_is("{\"nodes\":{}}", "nodes: describe at least one node (\"nodes\": {\"local\": {}})"));
	UNIT_CHECK(error_is("   \n", "empty file (expected a JSON object)"));
}

UNIT_TEST(long_values_are_cut_short)
{
	char text[512];
	snprintf(text, sizeof text, "{\"defaults\":{\"log_level\":\"%0100d\"},\"nodes\":{\"a\":{}}}", 0);
	char *got = only_error(text);
	UNIT_CHECK(got != NULL && strstr(got, "...") != NULL);
	UNIT_CHECK(got != NULL && strlen(strstr(got, ", got ") + 6) <= 60);
	free(got);
}

UNIT_TEST(urls)
{
	const char *good[] = { "tcp://127.0.0.1:7100", "tcp://[::1]:7100", "tls+tcp://alpha.lan:443",
		"ipc:///tmp/node.sock", "inproc://broker", "tcp://*:0" };
	const char *bad[] = { "tcp://127.0.0.1", "tcp://h:99999", "tcp://h:7a", "http://h:80", "ipc://", "inproc://", "" };
	char text[256];
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		snprintf(text, sizeof text, "{\"nodes\":{\"a\":{\"roles\":{\"broker\":{\"listen\":\"%s\"}}}}}", good[i]);
		char *e = only_error(text);
		UNIT_CHECK(e == NULL);
		free(e);
	}
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		snprintf(text, sizeof text, "{\"nodes\":{\"a\":{\"roles\":{\"broker\":{\"listen\":\"%s\"}}}}}", bad[i]);
		char *e = only_error(text);
		UNIT_CHECK(e != NULL && strstr(e, "expected a URL") != NULL);
		free(e);
	}
}

UNIT_TEST(several_errors_in_document_order)
{
	node_conf c;
	node_err err;
	cJSON *errs = NULL;
	const char *text = "{\"limits\":{\"max_depth\":1,\"max_string\":\"x\"},\"nope\":true,"
			   "\"nodes\":{\"a\":{\"roles\":{\"worker\":{\"concurrency\":0}}}}}";
	UNIT_CHECK(parse(&c, text, &errs, &err) == NODE_EINVAL);
	UNIT_CHECK(cJSON_GetArraySize(errs) == 4);
	UNIT_CHECK(strncmp(err_at(errs, 0), "limits.max_depth:", 17) == 0);
	UNIT_CHECK(strncmp(err_at(errs, 1), "limits.max_string:", 18) == 0);
	UNIT_CHECK(strncmp(err_at(errs, 2), "nope: unknown key", 17) == 0);
	UNIT_CHECK(strncmp(err_at(errs, 3), "nodes.a.roles.worker.concurrency:", 33) == 0);
	UNIT_CHECK(strncmp(err.msg, "t.json: limits.max_depth: expected an integer from 4 to 1000, got 1", 200) == 0);
	cJSON_Delete(errs);
	node_conf_free(&c);
}

UNIT_TEST(malformed_json)
{
	node_conf c;
	node_err err;
	cJSON *errs = NULL;
	UNIT_CHECK(parse(&c, "{\n  \"nodes\": {},\n  oops\n}\n", &errs, &err) == NODE_EINVAL);
	UNIT_CHECK(cJSON_GetArraySize(errs) == 1);
	UNIT_CHECK(strncmp(err.msg, "t.json: malformed JSON at line 3, column ", 41) == 0);
	cJSON_Delete(errs);
	UNIT_CHECK(parse(&c, "{\"nodes\":{\"a\":{}}} trailing", NULL, &err) == NODE_EINVAL);
	UNIT_CHECK(strstr(err.msg, "malformed JSON at line 1") != NULL);
	node_conf_free(&c);
}

UNIT_TEST(secrets)
{
	UNIT_CHECK(error_is("{\"secret\":\"short\",\"nodes\":{\"a\":{}}}",
	    "secret: expected a string of 16 to 4096 characters, got 5 characters"));
	UNIT_CHECK(error_is("{\"secret\":\"0123456789abcdef\",\"secret_file\":\"/s\",\"nodes\":{\"a\":{}}}",
	    "secret_file: set either secret or secret_file, not both"));

	node_conf c;
	node_err err;
	node_wire w;
	UNIT_CHECK(parse(&c, "{\"secret\":\"0123456789abcdef\",\"auth_window_ms\":2000,\"nodes\":{\"a\":{}}}", NULL, &err) == 0);
	node_wire_init(&w);
	UNIT_CHECK(node_conf_wire(&c, &w, &err) == 0);
	UNIT_CHECK(w.auth != NULL);
	UNIT_CHECK(w.limits.max_depth == 64 && w.limits.max_message == 16u << 20);
	node_wire_fini(&w);
	node_conf_free(&c);

	/* A missing secret file is fine for `config check`, not for running. */
	UNIT_CHECK(parse(&c, "{\"secret_file\":\"/nonexistent/node-secret\",\"nodes\":{\"a\":{}}}", NULL, &err) == 0);
	node_wire_init(&w);
	UNIT_CHECK(node_conf_wire(&c, &w, &err) != 0);
	UNIT_CHECK(strstr(err.msg, "/nonexistent/node-secret") != NULL);
	UNIT_CHECK(w.auth == NULL);
	node_wire_fini(&w);
	node_conf_free(&c);
}

/* A directory with node.json and a secret file beside it. */
static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f);
}

UNIT_TEST(secret_file_beside_the_cluster_file)
{
	char dir[] = "/tmp/node-config-test-XXXXXX", conf[128], secret[128];
	UNIT_CHECK(mkdtemp(dir) != NULL);
	snprintf(conf, sizeof conf, "%s/node.json", dir);
	snprintf(secret, sizeof secret, "%s/secret", dir);
	UNIT_CHECK(write_file(conf, "{\"secret_file\":\"secret\",\"tls\":{\"ca\":\"ca.pem\"},\"nodes\":{\"a\":{}}}") == 0);
	UNIT_CHECK(write_file(secret, "0123456789abcdef\n") == 0);

	node_conf c;
	node_err err;
	node_wire w;
	UNIT_CHECK(node_conf_load(&c, conf, NULL, &err) == 0);
	node_wire_init(&w);
	UNIT_CHECK(node_conf_wire(&c, &w, &err) == 0);
	UNIT_CHECK(w.auth != NULL);
	UNIT_CHECK(w.tls_ca != NULL && strncmp(w.tls_ca, dir, strlen(dir)) == 0 && strstr(w.tls_ca, "/ca.pem") != NULL);
	UNIT_CHECK(w.tls_require_client_cert == 0);
	node_wire_fini(&w);

	UNIT_CHECK(write_file(secret, "tooshort\n") == 0);
	node_wire_init(&w);
	UNIT_CHECK(node_conf_wire(&c, &w, &err) == NODE_EINVAL);
	UNIT_CHECK(strstr(err.msg, secret) != NULL && strstr(err.msg, "8 characters") != NULL);
	node_wire_fini(&w);
	node_conf_free(&c);
	unlink(conf);
	unlink(secret);
	rmdir(dir);
}

UNIT_TEST(defaults_are_filled)
{
	node_conf c;
	node_err err;
	UNIT_CHECK(parse(&c, "{\"nodes\":{\"a\":{}}}", NULL, &err) == 0);
	UNIT_CHECK(node_conf_int(&c, "limits.max_depth", 0) == 64);
	UNIT_CHECK(node_conf_int(&c, "limits.max_message", 0) == 16777216);
	UNIT_CHECK(strcmp(node_conf_str(&c, "defaults.log_level", ""), "info") == 0);
	UNIT_CHECK(node_conf_int(&c, "defaults.timeout_ms", 0) == 5000);
	UNIT_CHECK(node_conf_int(&c, "auth_window_ms", 0) == 30000);
	UNIT_CHECK(strcmp(node_conf_str(&c, "cluster", ""), "local") == 0);
	UNIT_CHECK(node_conf_get(&c, "tls") == NULL);
	UNIT_CHECK(node_conf_get(&c, "defaults.data_dir") == NULL);
	UNIT_CHECK(node_conf_get(&c, "nodes.a.roles") == NULL);
	UNIT_CHECK(node_conf_bool(&c, "tls.require_client_cert", 7) == 7);
	node_conf_free(&c);

	UNIT_CHECK(parse(&c, "{\"tls\":{},\"nodes\":{\"a\":{\"host\":\"10.1.2.3\",\"roles\":{\"broker\":{},"
			     "\"worker\":{\"queues\":\"fibo, sqrt\"}}},\"b\":{\"roles\":{\"broker\":{}}}}}", NULL, &err) == 0);
	UNIT_CHECK(node_conf_bool(&c, "tls.require_client_cert", 7) == 0);
	UNIT_CHECK(strcmp(node_conf_str(&c, "nodes.a.roles.broker.listen", ""), "tcp://10.1.2.3:7100") == 0);
	UNIT_CHECK(strcmp(node_conf_str(&c, "nodes.b.roles.broker.listen", ""), "tcp://127.0.0.1:7100") == 0);
	const cJSON *q = node_conf_get(&c, "nodes.a.roles.worker.queues");
	UNIT_CHECK(cJSON_IsArray(q) && cJSON_GetArraySize(q) == 2 && strcmp(err_at(q, 1), "sqrt") == 0);
	UNIT_CHECK(node_conf_get(&c, "nodes.a.roles.worker.concurrency") == NULL);
	node_conf_free(&c);
}

UNIT_TEST(select_nodes)
{
	node_conf c;
	node_err err;
	unsetenv("NODE_NAME");
	UNIT_CHECK(parse(&c, "{\"nodes\":{\"zz-a\":{},\"zz-b\":{},\"zz-c\":{}}}", NULL, &err) == 0);
	UNIT_CHECK(node_conf_select(&c, NULL, &err) == NODE_EINVAL);
	UNIT_CHECK(strcmp(err.msg, "t.json describes several nodes (zz-a, zz-b, zz-c); say which one this is with --name") == 0);
	UNIT_CHECK(c.node == NULL);
	UNIT_CHECK(node_conf_select(&c, "x", &err) == NODE_ENOTFOUND);
	UNIT_CHECK(strcmp(err.msg, "no node \"x\" in t.json (nodes: zz-a, zz-b, zz-c)") == 0);
	UNIT_CHECK(node_conf_select(&c, "zz-b", &err) == 0 && strcmp(c.node, "zz-b") == 0);
	setenv("NODE_NAME", "zz-c", 1);
	UNIT_CHECK(node_conf_select(&c, NULL, &err) == 0 && strcmp(c.node, "zz-c") == 0);
	UNIT_CHECK(node_conf_select(&c, "zz-a", &err) == 0 && strcmp(c.node, "zz-a") == 0);
	unsetenv("NODE_NAME");
	node_conf_free(&c);
}

UNIT_TEST(role_urls_across_nodes)
{
	node_conf c;
	node_err err;
	const char *url = NULL;
	UNIT_CHECK(node_conf_load(&c, "conf/three-machines.json", NULL, &err) == 0);
	UNIT_CHECK(node_conf_role_url(&c, "broker", "listen", &url, &err) == 0);
	UNIT_CHECK(url && strcmp(url, "tcp://10.0.0.1:7100") == 0);
	UNIT_CHECK(node_conf_select(&c, "gamma", &err) == 0);
	url = NULL;
	UNIT_CHECK(node_conf_role_url(&c, "broker", NULL, &url, &err) == 0);
	UNIT_CHECK(url && strcmp(url, "tcp://10.0.0.1:7100") == 0);
	UNIT_CHECK(node_conf_role_url(&c, "nameserver", "listen", &url, &err) == NODE_ENOTFOUND);
	UNIT_CHECK(strcmp(err.msg, "no node in conf/three-machines.json runs the nameserver role (add nodes.gamma.roles.nameserver)") == 0);
	node_conf_free(&c);

	/* This node's own setting wins over the first node's. */
	UNIT_CHECK(parse(&c, "{\"nodes\":{\"a\":{\"roles\":{\"broker\":{\"listen\":\"tcp://127.0.0.1:7001\"}}},"
			     "\"b\":{\"roles\":{\"broker\":{\"listen\":\"tcp://127.0.0.1:7002\"}}}}}", NULL, &err) == 0);
	UNIT_CHECK(node_conf_select(&c, "b", &err) == 0);
	UNIT_CHECK(node_conf_role_url(&c, "broker", "listen", &url, &err) == 0 && strcmp(url, "tcp://127.0.0.1:7002") == 0);
	node_conf_free(&c);
}

UNIT_TEST(set_overrides)
{
	node_conf c;
	node_err err;
	UNIT_CHECK(parse(&c, "{\"nodes\":{\"a\":{}}}", NULL, &err) == 0);
	UNIT_CHECK(node_conf_set(&c, "defaults.log_level", cJSON_CreateString("debug"), &err) == 0);
	UNIT_CHECK(strcmp(node_conf_str(&c, "defaults.log_level", ""), "debug") == 0);
	UNIT_CHECK(node_conf_set(&c, "defaults.log_level", cJSON_CreateString("loud"), &err) == NODE_EINVAL);
	UNIT_CHECK(strcmp(err.msg, "defaults.log_level: expected one of debug, info, warn, error, got \"loud\"") == 0);
	UNIT_CHECK(strcmp(node_conf_str(&c, "defaults.log_level", ""), "debug") == 0);
	UNIT_CHECK(node_conf_set(&c, "defaults.colour", cJSON_CreateTrue(), &err) == NODE_EINVAL);
	UNIT_CHECK(strncmp(err.msg, "defaults.colour: unknown key (known keys here: log_level,", 56) == 0);
	UNIT_CHECK(node_conf_set(&c, "limits.max_depth", cJSON_CreateNumber(10), &err) == 0);
	UNIT_CHECK(node_conf_int(&c, "limits.max_depth", 0) == 10);

	/* New objects on the way, and the role's defaults with them. */
	UNIT_CHECK(node_conf_set(&c, "nodes.b.roles.worker.queues", cJSON_CreateString("x,y"), &err) == 0);
	UNIT_CHECK(cJSON_GetArraySize(node_conf_get(&c, "nodes.b.roles.worker.queues")) == 2);
	UNIT_CHECK(node_conf_set(&c, "nodes.b.roles.broker", cJSON_CreateObject(), &err) == 0);
	UNIT_CHECK(strcmp(node_conf_str(&c, "nodes.b.roles.broker.listen", ""), "tcp://127.0.0.1:7100") == 0);

	UNIT_CHECK(node_conf_select(&c, "b", &err) == 0);
	UNIT_CHECK(cJSON_IsObject(node_conf_mine(&c, "roles.broker")));
	UNIT_CHECK(node_conf_set(&c, "nodes.b.roles", NULL, &err) == 0);
	UNIT_CHECK(node_conf_mine(&c, "roles") == NULL);
	UNIT_CHECK(node_conf_set(&c, "defaults.log_level.x", cJSON_CreateTrue(), &err) == NODE_EINVAL);
	node_conf_free(&c);
}

UNIT_TEST(data_dirs)
{
	char dir[] = "/tmp/node-config-test-XXXXXX", want[256], got[256];
	UNIT_CHECK(mkdtemp(dir) != NULL);
	node_conf c;
	node_err err;
	struct stat st;
	UNIT_CHECK(parse(&c, "{\"nodes\":{\"a\":{}}}", NULL, &err) == 0);
	UNIT_CHECK(node_conf_select(&c, "a", &err) == 0);

	snprintf(want, sizeof want, "%s/shared", dir);
	UNIT_CHECK(node_conf_set(&c, "defaults.data_dir", cJSON_CreateString(want), &err) == 0);
	UNIT_CHECK(node_conf_data_dir(&c, "broker", got, sizeof got, &err) == 0);
	strcat(want, "/broker");
	UNIT_CHECK(strcmp(got, want) == 0 && stat(got, &st) == 0 && S_ISDIR(st.st_mode));

	snprintf(want, sizeof want, "%s/mine", dir);
	UNIT_CHECK(node_conf_set(&c, "nodes.a.data_dir", cJSON_CreateString(want), &err) == 0);
	UNIT_CHECK(node_conf_data_dir(&c, "worker", got, sizeof got, &err) == 0);
	strcat(want, "/worker");
	UNIT_CHECK(strcmp(got, want) == 0 && stat(got, &st) == 0);
	UNIT_CHECK(node_conf_data_dir(&c, "worker", got, 8, &err) == NODE_EINVAL);
	node_conf_free(&c);

	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	UNIT_CHECK(system(cmd) == 0);
}

int main(void)
{
	UNIT_RUN(embedded_default_is_valid);
	UNIT_RUN(load_without_path);
	UNIT_RUN(example_files_are_valid);
	UNIT_RUN(bad_example_reports_every_error_in_order);
	UNIT_RUN(type_errors);
	UNIT_RUN(long_values_are_cut_short);
	UNIT_RUN(urls);
	UNIT_RUN(several_errors_in_document_order);
	UNIT_RUN(malformed_json);
	UNIT_RUN(secrets);
	UNIT_RUN(secret_file_beside_the_cluster_file);
	UNIT_RUN(defaults_are_filled);
	UNIT_RUN(select_nodes);
	UNIT_RUN(role_urls_across_nodes);
	UNIT_RUN(set_overrides);
	UNIT_RUN(data_dirs);
	return unit_finish("config");
}
