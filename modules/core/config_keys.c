/* The cluster file's keys: one table of typed rows (path, type, bounds,
 * default, doc) that validation, defaults, `node config keys` and node.json(5)
 * all read, the embedded default file, and finding rows by path. */
#include "config_int.h"

#include <stdio.h>
#include <string.h>

/* Rows are in the order `config keys` and node.json(5) list them; a parent
 * comes before its children because defaults are filled in table order.
 * INT/NUMBER bounds use NODE_CONF_NOMIN/NODE_CONF_NOMAX for "unbounded";
 * STRING lengths apply only when max > 0. An OBJECT whose def is "{}" always
 * exists in the effective tree. */
const node_conf_key node_conf_keys[] = {
	{ "cluster", NODE_CT_STRING, 1, 255, NULL, "\"local\"",
	  "name of the cluster, shown in logs and events" },
	{ "secret", NODE_CT_STRING, NODE_CONF_SECRET_MIN, 4096, NULL, NULL,
	  "shared secret: every message is signed with HMAC-SHA256 (at least 16 characters)" },
	{ "secret_file", NODE_CT_STRING, 1, 4095, NULL, NULL,
	  "file holding the secret (trailing newline ignored; relative to the cluster file); read when a role starts" },
	{ "auth_window_ms", NODE_CT_INT, 1000, 3600000, NULL, "30000",
	  "clock skew allowed between signed messages, milliseconds" },

	{ "tls", NODE_CT_OBJECT, 0, 0, NULL, NULL,
	  "TLS files for tls+tcp:// addresses (paths relative to the cluster file)" },
	{ "tls.cert", NODE_CT_STRING, 1, 4095, NULL, NULL, "PEM certificate of this node" },
	{ "tls.key", NODE_CT_STRING, 1, 4095, NULL, NULL, "PEM private key of the certificate" },
	{ "tls.ca", NODE_CT_STRING, 1, 4095, NULL, NULL, "PEM certificate of the CA that signs peers" },
	{ "tls.server_name", NODE_CT_STRING, 1, 255, NULL, NULL, "name clients expect in the server's certificate" },
	{ "tls.require_client_cert", NODE_CT_BOOL, 0, 0, NULL, "false",
	  "servers refuse clients without a certificate signed by tls.ca" },

	{ "limits", NODE_CT_OBJECT, 0, 0, NULL, "{}", "hard limits on every message" },
	{ "limits.max_message", NODE_CT_INT, 1024, 1073741824, NULL, "16777216",
	  "largest message in bytes, on the wire and after decompression" },
	{ "limits.max_depth", NODE_CT_INT, 4, 1000, NULL, "64", "deepest nesting of objects and arrays" },
	{ "limits.max_string", NODE_CT_INT, 64, 1073741824, NULL, "4194304", "longest JSON string in bytes" },
	{ "limits.compress_above", NODE_CT_INT, 0, 1073741824, NULL, "16384",
	  "compress message bodies larger than this many bytes with lz4; 0 never compresses" },

	{ "defaults", NODE_CT_OBJECT, 0, 0, NULL, "{}", "settings every node uses unless it says otherwise" },
	{ "defaults.log_level", NODE_CT_ENUM, 0, 0, "debug|info|warn|error", "\"info\"", "least severe message logged" },
	{ "defaults.log_format", NODE_CT_ENUM, 0, 0, "text|json", "\"text\"", "stderr log lines as text or JSON" },
	{ "defaults.data_dir", NODE_CT_STRING, 1, 4095, NULL, NULL,
	  "state directory (default $XDG_STATE_HOME/node, ~/.local/state/node or /var/lib/node)" },
	{ "defaults.timeout_ms", NODE_CT_INT, 1, 86400000, NULL, "5000", "how long a client waits for an answer, milliseconds" },
	{ "defaults.discovery", NODE_CT_BOOL, 0, 0, NULL, "true",
	  "clients that know no name server address find one by UDP broadcast" },
	{ "defaults.discovery_port", NODE_CT_INT, 1, 65535, NULL, "7111", "UDP port discovery broadcasts go to" },
	{ "defaults.discovery_timeout_ms", NODE_CT_INT, 10, 600000, NULL, "1500",
	  "how long a client waits for a name server to answer its broadcast, milliseconds" },

	{ "queues", NODE_CT_MAP, 0, 0, NULL, NULL, "queues declared with settings (others are created on first use with the defaults)" },
	{ "queues.*", NODE_CT_OBJECT, 0, 0, NULL, NULL, "one queue's settings" },
	{ "queues.*.max_length", NODE_CT_INT, 1, 1000000000, NULL, "10000000", "tasks queued or running at most; submits beyond are refused" },
	{ "queues.*.priority", NODE_CT_INT, 0, 9, NULL, "0", "priority of tasks submitted without one (0-9, higher first)" },
	{ "queues.*.result_ttl_s", NODE_CT_INT, 1, 31536000, NULL, "86400", "how long results are kept, seconds" },
	{ "queues.*.max_deliveries", NODE_CT_INT, 1, 1000, NULL, "5",
	  "deliveries without a result before a task goes to dead letters" },

	{ "nodes", NODE_CT_MAP, 0, 0, NULL, NULL, "the machines of the cluster, by name (at least one)" },
	{ "nodes.*", NODE_CT_OBJECT, 0, 0, NULL, NULL, "one node: where it is and which roles it runs" },
	{ "nodes.*.host", NODE_CT_STRING, 1, 255, NULL, NULL,
	  "address of the machine; default listen addresses use it (127.0.0.1 when unset)" },
	{ "nodes.*.data_dir", NODE_CT_STRING, 1, 4095, NULL, NULL, "state directory of this node (overrides defaults.data_dir)" },
	{ "nodes.*.roles", NODE_CT_OBJECT, 0, 0, NULL, NULL, "roles this node runs, each with its settings" },
	{ "nodes.*.roles.broker", NODE_CT_OBJECT, 0, 0, NULL, NULL, "queues, leases, durable log and results" },
	{ "nodes.*.roles.broker.listen", NODE_CT_URL, 0, 0, NULL, "\"tcp://127.0.0.1:7100\"",
	  "address the broker listens on (default port 7100 on the node's host)" },
	{ "nodes.*.roles.broker.fsync", NODE_CT_ENUM, 0, 0, "always|batch|off", "\"batch\"",
	  "when the journal is synced: every commit, every batch_ms (group commit), or never (survives kill -9, not power loss)" },
	{ "nodes.*.roles.broker.batch_ms", NODE_CT_INT, 1, 1000, NULL, "5", "group commit interval for fsync batch, milliseconds" },
	{ "nodes.*.roles.broker.lease_ms", NODE_CT_INT, 500, 3600000, NULL, "30000",
	  "a worker silent this long loses its tasks to other workers; workers heartbeat every third of it" },
	{ "nodes.*.roles.broker.segment_mb", NODE_CT_INT, 1, 4096, NULL, "64", "journal segment size in MiB" },
	{ "nodes.*.roles.broker.compact_mb", NODE_CT_INT, 1, 1048576, NULL, "256",
	  "compact the journal once it is larger than this many MiB and twice the live state" },
	{ "nodes.*.roles.nameserver", NODE_CT_OBJECT, 0, 0, NULL, NULL, "name -> address registry for discovery (Pyro4 name server)" },
	{ "nodes.*.roles.nameserver.listen", NODE_CT_URL, 0, 0, NULL, "\"tcp://127.0.0.1:7110\"",
	  "address the name server listens on (default port 7110 on the node's host)" },
	{ "nodes.*.roles.nameserver.default_ttl_s", NODE_CT_INT, 0, 31536000, NULL, "30",
	  "seconds a registered name lives unless renewed, when register gives no ttl_s; 0 never expires" },
	{ "nodes.*.roles.nameserver.discovery", NODE_CT_BOOL, 0, 0, NULL, "true",
	  "answer discovery broadcasts of this cluster's clients with the name server's address" },
	{ "nodes.*.roles.nameserver.discovery_port", NODE_CT_INT, 1, 65535, NULL, "7111", "UDP port discovery is answered on" },
	{ "nodes.*.roles.rpc", NODE_CT_OBJECT, 0, 0, NULL, NULL,
	  "remote objects and functions over JSON-RPC 2.0 (Pyro4 daemon, RPyC server); node-rpc(1)" },
	{ "nodes.*.roles.rpc.listen", NODE_CT_URL, 0, 0, NULL, "\"tcp://127.0.0.1:7120\"",
	  "address the RPC server listens on (default port 7120 on the node's host)" },
	{ "nodes.*.roles.rpc.http", NODE_CT_HTTP, 0, 0, NULL, "\"http://127.0.0.1:7121\"",
	  "HTTP address for JSON-RPC over HTTP POST; \"\" for none" },
	{ "nodes.*.roles.rpc.name", NODE_CT_STRING, 1, 200, NULL, NULL,
	  "name of the server (its functions and exec) at the name server (default rpc.NODE)" },
	{ "nodes.*.roles.rpc.nameserver", NODE_CT_STRING, 0, 1024, NULL, NULL,
	  "name server to register at: a URL, \"auto\" (broadcast discovery) or \"\" (none); default: the cluster's nameserver role, else discovery" },
	{ "nodes.*.roles.rpc.functions", NODE_CT_BOOL, 0, 0, NULL, "true", "serve the functions add, echo, time and sleep" },
	{ "nodes.*.roles.rpc.objects", NODE_CT_ANY, 0, 0, NULL, NULL,
	  "objects to serve: a list of {name, kind, mode, concurrency, ...the kind's settings}, checked when the role starts" },
	{ "nodes.*.roles.rpc.plugins", NODE_CT_STRLIST, 0, 0, NULL, NULL, "shared objects whose kinds the objects may use" },
	{ "nodes.*.roles.rpc.ttl_s", NODE_CT_INT, 3, 86400, NULL, "10",
	  "registrations expire this long after the server stops renewing them (it renews every third)" },
	{ "nodes.*.roles.rpc.replace", NODE_CT_BOOL, 0, 0, NULL, "false", "take over names that another server registered" },
	{ "nodes.*.roles.rpc.call_timeout_ms", NODE_CT_INT, 1, 3600000, NULL, "30000",
	  "the time a call may take, including the calls it makes to other objects" },
	{ "nodes.*.roles.rpc.max_threads", NODE_CT_INT, 1, 4096, NULL, "64", "threads for methods that block, at most" },
	{ "nodes.*.roles.rpc.session_idle_s", NODE_CT_INT, 1, 86400, NULL, "600",
	  "a session's instances are freed after this long without a call (and when its connection closes)" },
	{ "nodes.*.roles.rpc.exec", NODE_CT_OBJECT, 0, 0, NULL, NULL,
	  "remote execution (exec.start, exec.read, exec.kill), off unless allow lists commands; node-exec(1)" },
	{ "nodes.*.roles.rpc.exec.allow", NODE_CT_STRLIST, 0, 0, NULL, NULL,
	  "the only commands that run: absolute paths, or bare names looked up in PATH at start; argv[0] must equal one. "
	  "A shell or interpreter here allows everything" },
	{ "nodes.*.roles.rpc.exec.max_seconds", NODE_CT_INT, 1, 86400, NULL, "300",
	  "a command still running after this many seconds is killed with its process group (SIGKILL)" },
	{ "nodes.*.roles.rpc.exec.max_running", NODE_CT_INT, 1, 1024, NULL, "16",
	  "commands running or holding output nobody has read yet, at most; exec.start beyond is refused" },
	{ "nodes.*.roles.rpc.exec.dir", NODE_CT_STRING, 1, 4095, NULL, NULL,
	  "working directory of the commands (default: DATA_DIR/exec)" },
	{ "nodes.*.roles.rpc.exec.max_output_buffer", NODE_CT_INT, 4096, 268435456, NULL, "1048576",
	  "bytes of stdout (and of stderr) held for the client; beyond, the command waits until it reads" },
	{ "nodes.*.roles.chanhost", NODE_CT_OBJECT, 0, 0, NULL, NULL,
	  "named CSP channels and pub/sub topics (PyCSP networked channels); node-chanhost(1)" },
	{ "nodes.*.roles.chanhost.listen", NODE_CT_URL, 0, 0, NULL, "\"tcp://127.0.0.1:7130\"",
	  "address the channel host listens on (default port 7130 on the node's host)" },
	{ "nodes.*.roles.chanhost.channels", NODE_CT_ANY, 0, 0, NULL, NULL,
	  "channels declared at start: a list of {name, kind (any2any|one2one|one2any|any2one), capacity (0: rendezvous)}" },
	{ "nodes.*.roles.chanhost.create", NODE_CT_BOOL, 0, 0, NULL, "true",
	  "create a channel a client names on first use (any2any rendezvous); false: only declared channels" },
	{ "nodes.*.roles.chanhost.trace", NODE_CT_STRING, 0, 4095, NULL, NULL, "file to append channel events to, one JSON line each" },
	{ "nodes.*.roles.chanhost.max_channels", NODE_CT_INT, 1, 10000000, NULL, "100000", "channels at most" },
	{ "nodes.*.roles.chanhost.max_clients", NODE_CT_INT, 1, 10000000, NULL, "100000",
	  "client ids (channel ends' owners) and subscribers at most" },
	{ "nodes.*.roles.chanhost.sub_buffer", NODE_CT_INT, 1, 10000000, NULL, "10000",
	  "values kept for a subscriber that has not fetched them; past it the oldest is dropped and counted" },
	{ "nodes.*.roles.chanhost.max_park_ms", NODE_CT_INT, 100, 3600000, NULL, "20000",
	  "a read or write parked this long is answered \"again\" so clients hear from the host; they ask again" },
	{ "nodes.*.roles.chanhost.max_parked", NODE_CT_INT, 1, 10000000, NULL, "100000",
	  "reads, writes, alternations and pub.next waiting at once, at most; beyond, code limit" },
	{ "nodes.*.roles.chanhost.idle_s", NODE_CT_INT, 1, 86400, NULL, "60",
	  "a client id silent this long is forgotten: its ends leave (not retire) and its cached reply goes" },
	{ "nodes.*.roles.chanhost.nameserver", NODE_CT_STRING, 0, 1024, NULL, NULL,
	  "name server to register channel/NAME at: a URL, \"auto\" or \"\" (none); default: the cluster's nameserver role, else discovery" },
	{ "nodes.*.roles.chanhost.ttl_s", NODE_CT_INT, 3, 86400, NULL, "10",
	  "channel registrations expire this long after the host stops renewing them" },
	{ "nodes.*.roles.chanhost.replace", NODE_CT_BOOL, 0, 0, NULL, "false",
	  "take over channel names another host registered" },
	{ "nodes.*.roles.worker", NODE_CT_OBJECT, 0, 0, NULL, NULL, "runs tasks from queues" },
	{ "nodes.*.roles.worker.queues", NODE_CT_STRLIST, 0, 0, NULL, "[\"default\"]", "queues this worker consumes" },
	{ "nodes.*.roles.worker.concurrency", NODE_CT_INT, 1, NODE_CONF_NOMAX, NULL, NULL,
	  "tasks run at once (default: the number of cores)" },
	{ "nodes.*.roles.worker.mr_listen", NODE_CT_URL, 0, 0, NULL, NULL,
	  "address this worker serves its MapReduce map outputs on (default: tcp://HOST:0, a free port); node-mapreduce(1)" },
	{ "nodes.*.roles.worker.mr_sort_mb", NODE_CT_INT, 1, 1048576, NULL, "256",
	  "MiB of map output a MapReduce task sorts in memory before it spills a run to disk" },
	{ "nodes.*.roles.worker.mr_exec", NODE_CT_BOOL, 0, 0, NULL, "false",
	  "run the programs ({\"exec\": [...]}) and plugins MapReduce jobs name: remote code execution, off by default" },
	{ "nodes.*.roles.worker.mr_local_read", NODE_CT_BOOL, 0, 0, NULL, "true",
	  "a reduce task reads map outputs of the same machine straight from disk; false: always over the transport" },
	{ "nodes.*.roles.mapreduce", NODE_CT_OBJECT, 0, 0, NULL, NULL,
	  "the MapReduce master: jobs, their map and reduce tasks, results (Disco); node-mapreduce(1)" },
	{ "nodes.*.roles.mapreduce.listen", NODE_CT_URL, 0, 0, NULL, "\"tcp://127.0.0.1:7140\"",
	  "address the master listens on for node job (default port 7140 on the node's host)" },
	{ "nodes.*.roles.mapreduce.broker", NODE_CT_STRING, 0, 1024, NULL, NULL,
	  "broker the map and reduce tasks go through (default: the cluster's broker role)" },
	{ "nodes.*.roles.mapreduce.queue", NODE_CT_STRING, 1, 128, NULL, "\"mapreduce\"",
	  "queue of the map and reduce tasks; workers must consume it" },
	{ "nodes.*.roles.mapreduce.max_attempts", NODE_CT_INT, 1, 100, NULL, "4",
	  "attempts of one map or reduce task before the job fails" },
	{ "nodes.*.roles.mapreduce.speculative", NODE_CT_BOOL, 0, 0, NULL, "true",
	  "near the end of a phase, give slow tasks a backup copy; the first to finish wins" },
	{ "nodes.*.roles.mapreduce.backup_after_ms", NODE_CT_INT, 100, 86400000, NULL, "2000",
	  "a task is slow when it has run this long and twice the median of the phase's finished tasks" },
	{ "nodes.*.roles.mapreduce.max_jobs", NODE_CT_INT, 1, 1000000, NULL, "1000",
	  "jobs kept (running or finished, until purged); beyond, submit is refused" },
	{ "nodes.*.roles.mapreduce.max_running", NODE_CT_INT, 1, 10000, NULL, "4",
	  "jobs running at once; later ones wait in submission order" },
	{ NULL, 0, 0, 0, NULL, NULL, NULL },
};

const char node_conf_default_text[] =
	"{\n"
	"  \"cluster\": \"local\",\n"
	"  \"nodes\": {\n"
	"    \"local\": {\n"
	"      \"host\": \"127.0.0.1\",\n"
	"      \"roles\": {\n"
	"        \"broker\": { \"listen\": \"tcp://127.0.0.1:7100\" },\n"
	"        \"nameserver\": { \"listen\": \"tcp://127.0.0.1:7110\" },\n"
	"        \"rpc\": { \"listen\": \"tcp://127.0.0.1:7120\", \"objects\": [ { \"name\": \"server\", \"kind\": \"greeting\" } ] },\n"
	"        \"chanhost\": { \"listen\": \"tcp://127.0.0.1:7130\" },\n"
	"        \"mapreduce\": { \"listen\": \"tcp://127.0.0.1:7140\" },\n"
	"        \"worker\": { \"queues\": [\"default\", \"fibo\", \"sqrt\", \"webcrawler\", \"mapreduce\"] }\n"
	"      }\n"
	"    }\n"
	"  }\n"
	"}\n";

/* The document root is an object of fixed keys, like any OBJECT row. */
const node_conf_key node_conf_root_row = { "", NODE_CT_OBJECT, 0, 0, NULL, NULL, "the cluster file" };

/* ---- finding rows ---- */

const node_conf_key *node_conf_find_row(const char *schema)
{
	if (schema[0] == '\0')
		return &node_conf_root_row;
	for (const node_conf_key *k = node_conf_keys; k->path; k++)
		if (strcmp(k->path, schema) == 0)
			return k;
	return NULL;
}

/* Over-long paths are cut short: they only appear in messages. */
int node_conf_path_join(char *out, size_t n, const char *parent, const char *key)
{
	int w = parent[0] == '\0' ? snprintf(out, n, "%s", key) : snprintf(out, n, "%s.%s", parent, key);
	return w >= 0 && (size_t)w < n;
}

/* The table path of a child: a MAP's children are all "*". */
int node_conf_schema_child(char *out, size_t n, const char *schema, const char *key)
{
	const node_conf_key *row = node_conf_find_row(schema);
	return node_conf_path_join(out, n, schema, row && row->type == NODE_CT_MAP ? "*" : key);
}

const node_conf_key *node_conf_key_find(const char *path)
{
	char schema[NODE_CONF_PATH_LEN] = "", next[NODE_CONF_PATH_LEN], seg[NODE_CONF_PATH_LEN];
	const char *p = path;
	while (*p) {
		size_t len = strcspn(p, ".");
		if (len == 0 || len >= sizeof seg)
			return NULL;
		memcpy(seg, p, len);
		seg[len] = '\0';
		if (!node_conf_schema_child(next, sizeof next, schema, seg))
			return NULL;
		memcpy(schema, next, sizeof schema);
		p += len;
		if (*p == '.')
			p++;
	}
	return schema[0] ? node_conf_find_row(schema) : NULL;
}

/* "a, b, c": the keys the table allows directly under schema. */
void node_conf_known_keys(const char *schema, char *out, size_t n)
{
	size_t plen = strlen(schema), used = 0;
	out[0] = '\0';
	for (const node_conf_key *k = node_conf_keys; k->path; k++) {
		const char *rest = k->path;
		if (plen > 0) {
			if (strncmp(k->path, schema, plen) != 0 || k->path[plen] != '.')
				continue;
			rest = k->path + plen + 1;
		}
		if (strchr(rest, '.') != NULL || used + 1 >= n)
			continue;
		int w = snprintf(out + used, n - used, "%s%s", used ? ", " : "", rest);
		used = w < 0 || (size_t)w >= n - used ? n - 1 : used + (size_t)w;
	}
}
