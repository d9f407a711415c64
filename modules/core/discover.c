/* Broadcast discovery (see discover.h). This is the one place node opens a
 * raw POSIX socket: nng has no UDP and no broadcast, and "where is the name
 * server?" must be answerable before a client knows any address to dial.
 * Queries and answers are single JSON datagrams of at most 1500 bytes:
 *   query  {"q":"node-discover","role":"nameserver","cluster":NAME,"v":1}
 *   answer {"role":"nameserver","url":URL,"cluster":NAME,"node":NODE,"v":1}
 * Nothing here is signed: an answer only says where to dial, and with a
 * cluster secret every message after it is signed, so a forged answer leads
 * a client to a server whose replies it refuses. */
#include "discover.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define DISC_PEERS 32            /* peers remembered for rate-limited logging */
#define DISC_LOG_EVERY_MS 60000  /* one debug line per peer per minute at most */
#define DISC_DESTS 64            /* broadcast addresses a finder sends to at most */
#define DISC_FIRST_RETRY_MS 100  /* then doubling, up to DISC_MAX_RETRY_MS */
#define DISC_MAX_RETRY_MS 500

typedef struct disc_peer {
	uint32_t addr;     /* network order */
	int64_t logged_ms; /* monotonic */
} disc_peer;

struct node_discover {
	int fd;
	int wake[2];       /* stop writes a byte: the thread never sleeps in a timeout loop */
	int port;
	int local_only;    /* url is loopback, ipc or inproc: answer this machine only */
	char role[64];
	char *url, *cluster, *node;
	pthread_t thread;
	int started;
	pthread_mutex_t lock; /* guards st */
	node_discover_stats st;
	disc_peer peers[DISC_PEERS]; /* the thread's alone */
};

/* ---- URLs ---- */

/* The host of scheme://host:port as [*hs, *he) ("[::]" with its brackets);
 * 0 for addresses without one (ipc://, inproc://). */
static int url_host(const char *url, size_t *hs, size_t *he)
{
	const char *sep = strstr(url, "://");
	if (sep == NULL || strncmp(url, "ipc:", 4) == 0 || strncmp(url, "inproc:", 7) == 0)
		return 0;
	const char *h = sep + 3, *end;
	if (*h == '[') {
		end = strchr(h, ']');
		end = end ? end + 1 : h + strlen(h);
	} else {
		end = strrchr(h, ':');
		if (end == NULL)
			end = h + strlen(h);
	}
	*hs = (size_t)(h - url);
	*he = (size_t)(end - url);
	return 1;
}

static int host_is(const char *url, size_t hs, size_t he, const char *const *names)
{
	for (; *names; names++)
		if (strlen(*names) == he - hs && strncmp(url + hs, *names, he - hs) == 0)
			return 1;
	return 0;
}

static int url_wildcard(const char *url)
{
	static const char *const any[] = {"", "*", "0.0.0.0", "[::]", "::", NULL};
	size_t hs, he;
	return url_host(url, &hs, &he) && host_is(url, hs, he, any);
}

/* An address only this machine can dial. */
static int url_local_only(const char *url)
{
	static const char *const lo[] = {"localhost", "[::1]", NULL};
	size_t hs, he;
	if (!url_host(url, &hs, &he))
		return 1;
	return host_is(url, hs, he, lo) || strncmp(url + hs, "127.", 4) == 0;
}

/* ---- the responder ---- */

static void disc_count(node_discover *d, uint64_t *field)
{
	pthread_mutex_lock(&d->lock);
	(*field)++;
	pthread_mutex_unlock(&d->lock);
}

/* 1 when peer has not been logged about in the last minute (and remember it now). */
static int disc_may_log(node_discover *d, uint32_t addr)
{
	int64_t now = node_clock_mono_ms();
	disc_peer *oldest = &d->peers[0];
	for (int i = 0; i < DISC_PEERS; i++) {
		disc_peer *p = &d->peers[i];
		if (p->logged_ms != 0 && p->addr == addr) {
			if (now - p->logged_ms < DISC_LOG_EVERY_MS)
				return 0;
			p->logged_ms = now;
			return 1;
		}
		if (p->logged_ms < oldest->logged_ms)
			oldest = p;
	}
	oldest->addr = addr;
	oldest->logged_ms = now;
	return 1;
}

static void disc_ignore(node_discover *d, const struct sockaddr_in *peer, const char *why)
{
	disc_count(d, &d->st.ignored);
	if (!node_log_enabled(NODE_LOG_DEBUG) || !disc_may_log(d, peer->sin_addr.s_addr))
		return;
	char a[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &peer->sin_addr, a, sizeof a);
	node_debug("discovery: ignored a datagram from %s:%d: %s (more from it are not logged for a minute)", a,
	    ntohs(peer->sin_port), why);
}

static const char *json_str(const cJSON *o, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* NULL when q is a well-formed query; else why not. */
static const char *disc_check_query(const cJSON *q)
{
	if (!cJSON_IsObject(q))
		return "not a JSON object";
	const char *tag = json_str(q, "q");
	if (tag == NULL || strcmp(tag, NODE_DISCOVER_Q) != 0)
		return "q is not \"" NODE_DISCOVER_Q "\"";
	/* Newer clients are answered too: a version 1 answer is all we know. */
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(q, "v");
	if (!cJSON_IsNumber(v) || v->valuedouble < NODE_DISCOVER_V || v->valuedouble > 1000000 ||
	    v->valuedouble != (double)(int)v->valuedouble)
		return "v is not a version number";
	if (json_str(q, "role") == NULL || json_str(q, "cluster") == NULL)
		return "role or cluster is not a string";
	return NULL;
}

/* Send the answer to peer; the URL's wildcard host becomes `here`. */
static void disc_answer(node_discover *d, const struct sockaddr_in *peer, const struct in_addr *here)
{
	char url[1024], a[INET_ADDRSTRLEN];
	size_t hs, he;
	if (here != NULL && url_wildcard(d->url) && url_host(d->url, &hs, &he) &&
	    inet_ntop(AF_INET, here, a, sizeof a) != NULL)
		snprintf(url, sizeof url, "%.*s%s%s", (int)hs, d->url, a, d->url + he);
	else
		snprintf(url, sizeof url, "%s", d->url);
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "role", d->role);
	cJSON_AddStringToObject(r, "url", url);
	cJSON_AddStringToObject(r, "cluster", d->cluster);
	if (d->node)
		cJSON_AddStringToObject(r, "node", d->node);
	cJSON_AddNumberToObject(r, "v", NODE_DISCOVER_V);
	char *text = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	if (text == NULL)
		return;
	size_t len = strlen(text);
	if (len > NODE_DISCOVER_MAX)
		node_warn("discovery: the answer would be %zu bytes, more than %d; not sent", len, NODE_DISCOVER_MAX);
	else if (sendto(d->fd, text, len, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)peer, sizeof *peer) < 0)
		node_debug("discovery: cannot answer %s:%d: %s", inet_ntop(AF_INET, &peer->sin_addr, a, sizeof a),
		    ntohs(peer->sin_port), strerror(errno));
	else
		disc_count(d, &d->st.answered);
	cJSON_free(text);
}

/* Read one datagram (the socket is non-blocking) and answer it if it asks for us. */
static void disc_serve_one(node_discover *d)
{
	char buf[NODE_DISCOVER_MAX + 1];
	union {
		char b[CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct cmsghdr align;
	} ctl;
	struct sockaddr_in peer;
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf - 1};
	struct msghdr m = {.msg_name = &peer, .msg_namelen = sizeof peer, .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
	memset(&peer, 0, sizeof peer);
	ssize_t n = recvmsg(d->fd, &m, MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0)
		return; /* EAGAIN, or an ICMP error left by an earlier answer */
	if ((m.msg_flags & MSG_TRUNC) || n > NODE_DISCOVER_MAX) {
		disc_ignore(d, &peer, "larger than 1500 bytes");
		return;
	}
	buf[n] = '\0';
	if (memchr(buf, '\0', (size_t)n) != NULL) {
		disc_ignore(d, &peer, "a NUL byte in the text");
		return;
	}
	struct in_addr here, *herep = NULL;
	int from_lo = (ntohl(peer.sin_addr.s_addr) >> 24) == 127;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof pi);
			here = pi.ipi_spec_dst; /* our address on the interface it came in on */
			herep = &here;
			from_lo = from_lo || (ntohl(here.s_addr) >> 24) == 127;
		}
	}
	cJSON *q = cJSON_ParseWithOpts(buf, NULL, 1);
	const char *why = q ? disc_check_query(q) : "not JSON";
	if (why != NULL) {
		disc_ignore(d, &peer, why);
	} else if (strcmp(json_str(q, "role"), d->role) != 0 || strcmp(json_str(q, "cluster"), d->cluster) != 0) {
		disc_count(d, &d->st.other); /* another cluster's client, or a role we do not serve: not ours to answer */
	} else if (d->local_only && !from_lo) {
		disc_count(d, &d->st.unreachable);
		char a[INET_ADDRSTRLEN];
		if (node_log_enabled(NODE_LOG_DEBUG) && disc_may_log(d, peer.sin_addr.s_addr))
			node_debug("discovery: not answering %s: %s cannot be dialled from another machine",
			    inet_ntop(AF_INET, &peer.sin_addr, a, sizeof a), d->url);
	} else {
		disc_answer(d, &peer, herep);
	}
	cJSON_Delete(q);
}

static void *disc_thread(void *arg)
{
	node_discover *d = arg;
	node_log_set_role(d->role);
	for (;;) {
		struct pollfd p[2] = {{.fd = d->fd, .events = POLLIN}, {.fd = d->wake[0], .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			node_error("discovery: poll failed, no longer answering: %s", strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		if (p[0].revents)
			disc_serve_one(d); /* also reads (and so clears) a pending socket error */
	}
	return NULL;
}

static void disc_free(node_discover *d)
{
	if (d->fd >= 0)
		close(d->fd);
	for (int i = 0; i < 2; i++)
		if (d->wake[i] >= 0)
			close(d->wake[i]);
	pthread_mutex_destroy(&d->lock);
	free(d->url);
	free(d->cluster);
	free(d->node);
	free(d);
}

static int disc_open(node_discover *d, node_err *err)
{
	int one = 1;
	d->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (d->fd < 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot open a UDP socket for discovery: %s", strerror(errno));
	/* REUSEADDR: several name servers of different clusters on one machine
	 * can share the port; broadcasts reach each of them. */
	if (setsockopt(d->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    setsockopt(d->fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) != 0 ||
	    setsockopt(d->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) != 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot set up the discovery socket: %s", strerror(errno));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)d->port), .sin_addr.s_addr = htonl(INADDR_ANY)};
	if (bind(d->fd, (struct sockaddr *)&a, sizeof a) != 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot answer discovery on UDP port %d: %s", d->port,
		    errno == EADDRINUSE ? "address in use by a program that does not share it" : strerror(errno));
	if (pipe2(d->wake, O_CLOEXEC | O_NONBLOCK) != 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot make a pipe for discovery: %s", strerror(errno));
	return 0;
}

int node_discover_start(node_discover **out, const node_discover_cfg *cfg, node_err *err)
{
	*out = NULL;
	if (cfg->url == NULL || cfg->cluster == NULL)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "discovery needs the role's URL and the cluster name");
	if (cfg->port < 0 || cfg->port > 65535)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "discovery port %d: expected 1 to 65535", cfg->port);
	node_discover *d = calloc(1, sizeof *d);
	if (d == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	d->fd = d->wake[0] = d->wake[1] = -1;
	pthread_mutex_init(&d->lock, NULL);
	d->port = cfg->port ? cfg->port : NODE_DISCOVER_PORT;
	snprintf(d->role, sizeof d->role, "%s", cfg->role ? cfg->role : "nameserver");
	d->url = strdup(cfg->url);
	d->cluster = strdup(cfg->cluster);
	d->node = cfg->node ? strdup(cfg->node) : NULL;
	if (d->url == NULL || d->cluster == NULL || (cfg->node && d->node == NULL)) {
		disc_free(d);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	d->local_only = url_local_only(d->url);
	int rc = disc_open(d, err);
	if (rc == 0 && pthread_create(&d->thread, NULL, disc_thread, d) != 0)
		rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot start the discovery thread");
	if (rc != 0) {
		disc_free(d);
		return rc;
	}
	d->started = 1;
	if (d->local_only)
		node_info("discovery: %s can only be dialled from this machine, so only its broadcasts are answered", d->url);
	*out = d;
	return 0;
}

void node_discover_stop(node_discover *d)
{
	if (d == NULL)
		return;
	if (d->started) {
		char b = 1;
		while (write(d->wake[1], &b, 1) < 0 && errno == EINTR)
			;
		pthread_join(d->thread, NULL);
	}
	disc_free(d);
}

void node_discover_stats_get(const node_discover *d, node_discover_stats *st)
{
	node_discover *m = (node_discover *)d; /* the lock is not part of what const promises */
	pthread_mutex_lock(&m->lock);
	*st = d->st;
	pthread_mutex_unlock(&m->lock);
}

int node_discover_port(const node_discover *d)
{
	return d->port;
}

/* ---- the finder ---- */

static void dest_add(struct in_addr *v, int *n, struct in_addr a)
{
	for (int i = 0; i < *n; i++)
		if (v[i].s_addr == a.s_addr)
			return;
	if (*n < DISC_DESTS)
		v[(*n)++] = a;
}

/* Every up IPv4 interface's broadcast address, the limited broadcast, and
 * loopback: 127.0.0.1 and 127.255.255.255, because a unicast datagram reaches
 * only one of several sockets sharing a port and loopback's broadcast all. */
static int dests_collect(struct in_addr *v)
{
	int n = 0;
	struct ifaddrs *ifs = NULL;
	if (getifaddrs(&ifs) == 0) {
		for (struct ifaddrs *i = ifs; i != NULL; i = i->ifa_next) {
			if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP) ||
			    !(i->ifa_flags & IFF_BROADCAST) || i->ifa_broadaddr == NULL)
				continue;
			struct sockaddr_in b;
			memcpy(&b, i->ifa_broadaddr, sizeof b);
			if (b.sin_addr.s_addr != 0)
				dest_add(v, &n, b.sin_addr);
		}
		freeifaddrs(ifs);
	}
	static const char *const fixed[] = {"255.255.255.255", "127.0.0.1", "127.255.255.255", NULL};
	for (const char *const *f = fixed; *f; f++) {
		struct in_addr a;
		inet_pton(AF_INET, *f, &a);
		dest_add(v, &n, a);
	}
	return n;
}

/* 1 when text is an answer from cluster's name server; its URL in *url. */
static int answer_ok(const char *text, const char *cluster, const char **url, cJSON **parsed)
{
	cJSON *r = cJSON_ParseWithOpts(text, NULL, 1);
	*parsed = r;
	const char *role = json_str(r, "role"), *c = json_str(r, "cluster");
	*url = json_str(r, "url");
	return role && c && *url && **url && strcmp(role, "nameserver") == 0 && strcmp(c, cluster) == 0;
}

/* Read what has arrived; *found is set once an answer's URL is in url.
 * 0, or NODE_ELIMIT when that URL does not fit. */
static int find_read(int fd, const char *cluster, char *url, size_t n, int *found, node_err *err)
{
	char buf[NODE_DISCOVER_MAX + 1];
	for (;;) {
		ssize_t got = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT | MSG_TRUNC);
		if (got < 0)
			return 0;
		if (got > NODE_DISCOVER_MAX || memchr(buf, '\0', (size_t)got) != NULL)
			continue;
		buf[got] = '\0';
		const char *u;
		cJSON *r;
		int ok = answer_ok(buf, cluster, &u, &r), rc = 0;
		if (ok && strlen(u) >= n) {
			rc = node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "the name server's address is longer than %zu bytes", n - 1);
		} else if (ok) {
			snprintf(url, n, "%s", u);
			*found = 1;
		}
		cJSON_Delete(r);
		if (rc != 0 || *found)
			return rc;
	}
}

static char *find_query(const char *cluster)
{
	cJSON *q = cJSON_CreateObject();
	cJSON_AddStringToObject(q, "q", NODE_DISCOVER_Q);
	cJSON_AddStringToObject(q, "role", "nameserver");
	cJSON_AddStringToObject(q, "cluster", cluster);
	cJSON_AddNumberToObject(q, "v", NODE_DISCOVER_V);
	char *text = cJSON_PrintUnformatted(q);
	cJSON_Delete(q);
	return text;
}

/* One query to every destination; how many were sent (errno of a failure in *why). */
static int find_send(int fd, const char *q, const struct in_addr *dests, int nd, int port, int *why)
{
	int sent = 0;
	for (int i = 0; i < nd; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = dests[i]};
		/* 255.255.255.255 fails without a default route; the others still go. */
		if (sendto(fd, q, strlen(q), MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a, sizeof a) >= 0)
			sent++;
		else
			*why = errno;
	}
	return sent;
}

int node_discover_find(const char *cluster, int port, int timeout_ms, char *url, size_t n, node_err *err)
{
	if (port <= 0 || port > 65535)
		port = NODE_DISCOVER_PORT;
	if (timeout_ms <= 0)
		timeout_ms = NODE_DISCOVER_TIMEOUT_MS;
	if (cluster == NULL)
		cluster = "local";
	if (n == 0)
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "no room for the name server's address");
	int one = 1, fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot open a UDP socket for discovery: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
	char *q = find_query(cluster);
	if (q == NULL) {
		close(fd);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	struct in_addr dests[DISC_DESTS];
	int nd = dests_collect(dests), sent = 0, why = 0, rc = 0, found = 0;
	int64_t start = node_clock_mono_ms(), deadline = start + timeout_ms, next = start, gap = DISC_FIRST_RETRY_MS;
	for (int64_t now = start; rc == 0 && !found && now < deadline; now = node_clock_mono_ms()) {
		if (now >= next) {
			sent += find_send(fd, q, dests, nd, port, &why);
			next = now + gap;
			gap = gap * 2 > DISC_MAX_RETRY_MS ? DISC_MAX_RETRY_MS : gap * 2;
		}
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t wait = (next < deadline ? next : deadline) - now;
		if (poll(&p, 1, (int)(wait > 0 ? wait : 0)) > 0)
			rc = find_read(fd, cluster, url, n, &found, err);
	}
	free(q);
	close(fd);
	if (rc != 0 || found)
		return rc;
	if (sent == 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot send a discovery broadcast on UDP port %d: %s", port,
		    strerror(why));
	return node_err_set(err, NODE_ETIMEDOUT, NODE_ERR_TIMEOUT,
	    "no name server of cluster \"%s\" answered a broadcast on UDP port %d within %d ms (start `node nameserver`, "
	    "or give --nameserver URL or roles.nameserver.listen in the cluster file)", cluster, port, timeout_ms);
}

/* ---- choosing the name server ---- */

static int copy_url(const char *u, char *out, size_t n, node_err *err)
{
	if (strlen(u) >= n)
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "name server address longer than %zu bytes: %.64s...", n - 1, u);
	memcpy(out, u, strlen(u) + 1);
	return 0;
}

int node_nameserver_url(const node_conf *c, const char *flag_url, char *out, size_t n, node_err *err)
{
	int force = flag_url != NULL && strcmp(flag_url, "auto") == 0;
	if (flag_url != NULL && flag_url[0] != '\0' && !force)
		return copy_url(flag_url, out, n, err);
	if (!force) {
		const char *u;
		node_err none = {0};
		if (node_conf_role_url(c, "nameserver", "listen", &u, &none) == 0)
			return copy_url(u, out, n, err);
		if (!node_conf_bool(c, "defaults.discovery", 1))
			return node_err_set(err, NODE_ENOTFOUND, NODE_ERR_NOT_FOUND,
			    "%s, and defaults.discovery is false so no broadcast was tried; or give --nameserver URL", none.msg);
	}
	return node_discover_find(node_conf_str(c, "cluster", "local"), (int)node_conf_int(c, "defaults.discovery_port", NODE_DISCOVER_PORT),
	    (int)node_conf_int(c, "defaults.discovery_timeout_ms", NODE_DISCOVER_TIMEOUT_MS), out, n, err);
}
