/* httpd.c - the HTTP/1.1 front of the server on libmicrohttpd: a thread pool
 * polling with poll() (epoll-internal mode stalls past 256 connections),
 * bounded request bodies, keep-alive (answers are queued on the handler's
 * last call, never the first, unless the request is refused outright), and
 * long-polls parked with suspend/resume so they never hold a pool thread.
 * A parked request is resumed (its handler runs again) only by a kick that
 * can concern it: a host's command long-poll by a command kick naming that
 * host (or every host), any other by every kick; each also at its deadline.
 * Refusals come before the body: authentication and role checks run on the
 * headers, and a refused request with a body is answered at once and its
 * connection closed. Connections are limited per client address and in all;
 * one that has not authenticated must not stay idle for long. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api/api.h"
#include "api/writer.h"
#include "log.h"
#include "server.h"
#include "tls.h"
#include "util.h"
#include "xalloc.h"

#define HTTPD_MAX_DAEMONS 64
#define HTTPD_DISCARD_MAX ((size_t)256 << 20)  /* bytes dropped before cutting off */
#define HTTPD_FIRST_TIMEOUT_S 10u   /* idle limit until a request authenticates */
#define HTTPD_AUTHED_TIMEOUT_S 120u /* idle limit after (keep-alive between calls) */
#define HTTPD_LOG_BURST 20u         /* libmicrohttpd messages logged per minute */
/* What libmicrohttpd keeps per connection (its default is 32 KB, most of
 * an idle keep-alive connection's cost): the request line and headers
 * (herd's are under 1 KB, a browser's a few KB; past what fits, 431), the
 * answer's headers, and the read buffer a body passes through on its way
 * to rq->body (herd's own, bounded by --body-max). */
#define HTTPD_CONN_MEMORY ((size_t)16 * 1024)
#define HTTPD_CONN_MEMORY_STEP ((size_t)1024)  /* read buffer growth step */
/* Request line and headers past this are answered 431 by herd: the rest of
 * the connection's memory is the room its answer's headers need (with less,
 * libmicrohttpd closes the connection without an answer). */
#define HTTPD_HEADERS_MAX (HTTPD_CONN_MEMORY - (size_t)4096)
#define HTTPD_KEYS 4096u            /* slots of the kicked-hosts table (half used at most) */

struct waiter {
	struct req *rq;
	struct waiter *next;
};

/* A host whose commands a kick concerned: the generation that kick made. */
struct kicked {
	uint64_t key;                  /* wait_key_of(host id); 0 = a free slot */
	uint64_t gen;
};

struct httpd {
	struct MHD_Daemon *d[HTTPD_MAX_DAEMONS];
	char addr[HTTPD_MAX_DAEMONS][64];
	int port[HTTPD_MAX_DAEMONS];
	bool tls[HTTPD_MAX_DAEMONS];   /* serves HTTPS (tls_for_addr) */
	int nd;
	pthread_mutex_t lock;          /* guards d/addr/nd and waiters */
	struct waiter *waiters;
	pthread_t waker;
	bool waker_started;
	uint64_t woken_kick;           /* parked requests resumed by a kick (or stop) */
	uint64_t woken_deadline;       /* ... at their deadline */
	/* guarded by lock: the command kicks keyed waiters have not all seen */
	struct kicked keys[HTTPD_KEYS];  /* open addressing, linear probing */
	unsigned nkeys;
	uint64_t keys_floor;           /* a command kick for every host made this
				        * generation (0: none yet) */
	uint64_t keys_oldest;          /* the lowest gen in keys (when nkeys > 0) */
};

static enum MHD_Result
send_answer(struct req *rq)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *text;
	size_t n;

	if (rq->stream) {
		/* the response owns the stream from here */
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024,
						      rq->stream,
						      rq->stream_cls, rq->stream_free);
		rq->stream = NULL;
		rq->stream_free = NULL;
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rq->ctype);
	} else if (rq->raw) {
		r = MHD_create_response_from_buffer(rq->raw_len, rq->raw,
			rq->raw_static ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_FREE);
		rq->raw = NULL;
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rq->ctype);
	} else {
		if (rq->resp == NULL)
			rq->resp = json_object();
		text = json_dumps(rq->resp, JSON_COMPACT | JSON_REAL_PRECISION(15));
		n = strlen(text);
		text = xrealloc(text, n + 2);
		text[n++] = '\n';
		text[n] = '\0';
		r = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	}
	if (rq->cache_control)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, rq->cache_control);
	else
		MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	api_add_headers(rq, r);
	ret = MHD_queue_response(rq->conn, (unsigned)rq->status, r);
	MHD_destroy_response(r);
	return ret;
}

static void
req_free(struct req *rq)
{
	for (int i = 0; i < rq->nparams; i++)
		free(rq->params[i]);
	buf_release(&rq->body);
	json_decref(rq->json);
	json_decref(rq->resp);
	if (!rq->raw_static)
		free(rq->raw);
	if (rq->state && rq->state_free)
		rq->state_free(rq->state);
	if (rq->stream_free)
		rq->stream_free(rq->stream_cls);
	free(rq);
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
	struct req *rq = *con_cls;

	if (rq == NULL)
		return;
	log_debug("http: %s %s -> %d (termination %d)", rq->method, rq->path, rq->status, (int)t);
	req_free(rq);
	*con_cls = NULL;
}

void
req_wait(struct req *rq, int64_t timeout_ms)
{
	rq->suspended = true;
	rq->wait_key = 0;
	if (rq->wait_deadline_ms == 0)
		rq->wait_deadline_ms = mono_ms() + timeout_ms;
}

/* FNV-1a of a host id, never 0 (0 = not keyed): a collision only wakes
 * a poll that was not concerned, which looks and parks again. */
static uint64_t
wait_key_of(const char *host_id)
{
	uint64_t k = fnv1a_str(FNV1A_INIT, host_id);

	return k ? k : 1;
}

void
req_wait_commands(struct req *rq, const char *host_id, int64_t timeout_ms)
{
	req_wait(rq, timeout_ms);
	rq->wait_key = wait_key_of(host_id);
}

static struct kicked *
keys_slot(struct httpd *h, uint64_t key)
{
	unsigned i = (unsigned)(key & (HTTPD_KEYS - 1));

	while (h->keys[i].key != 0 && h->keys[i].key != key)
		i = (i + 1) & (HTTPD_KEYS - 1);
	return &h->keys[i];
}

/* Records that generation gen concerned key's polls. A full table becomes
 * a kick for every host (a floor): extra wakes, never a missed one. */
static void
keys_put(struct httpd *h, uint64_t key, uint64_t gen)
{
	struct kicked *k = keys_slot(h, key);

	if (k->key == 0 && h->nkeys >= HTTPD_KEYS / 2) {
		memset(h->keys, 0, sizeof(h->keys));
		h->nkeys = 0;
		h->keys_floor = gen;
		return;
	}
	if (k->key == 0) {
		k->key = key;
		if (h->nkeys++ == 0 || gen < h->keys_oldest)
			h->keys_oldest = gen;
	}
	k->gen = gen;
}

void
httpd_kicked(struct server *s, const char *const *host_ids, size_t n, uint64_t gen)
{
	struct httpd *h = s->httpd;

	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	if (n == 0 || host_ids == NULL)
		h->keys_floor = gen;
	for (size_t i = 0; host_ids && i < n; i++)
		if (host_ids[i] && host_ids[i][0])
			keys_put(h, wait_key_of(host_ids[i]), gen);
	pthread_mutex_unlock(&h->lock);
}

/* Whether a command kick since rq's handler looked concerns it. ">=": the
 * kick may have come inside a transaction the handler could not see yet;
 * the kick after its commit (writer.c) then finds it again. */
static bool
kicked_for(struct httpd *h, const struct req *rq)
{
	const struct kicked *k;

	if (h->keys_floor != 0 && h->keys_floor >= rq->gen_seen)
		return true;
	if (h->nkeys == 0)
		return false;
	k = keys_slot(h, rq->wait_key);
	return k->key != 0 && k->gen >= rq->gen_seen;
}

/* Drops the kicks no parked keyed request can still need: older than the
 * oldest generation one of them looked at (min, at most the generation
 * now). A request not parked yet that looked before such a kick finds the
 * generation moved when it parks, and looks again (park). */
static void
keys_prune(struct httpd *h, uint64_t min)
{
	struct kicked old[HTTPD_KEYS / 2];
	unsigned n = 0;

	if (h->nkeys == 0 || h->keys_oldest >= min)
		return;
	for (unsigned i = 0; i < HTTPD_KEYS; i++)
		if (h->keys[i].key != 0 && h->keys[i].gen >= min && n < HTTPD_KEYS / 2)
			old[n++] = h->keys[i];
	memset(h->keys, 0, sizeof(h->keys));
	h->nkeys = 0;
	for (unsigned i = 0; i < n; i++)
		keys_put(h, old[i].key, old[i].gen);
}

/* Parks rq unless the server changed since its handler looked (then the
 * caller runs the handler again). Holding s->lock while parking orders us
 * before any kick: the waker reads the generation under that lock. A server
 * that is stopping parks nothing (MHD_stop_daemon aborts the process if a
 * connection is still suspended): rq gets a 503, which clients retry. */
static bool
park(struct httpd *h, struct req *rq)
{
	struct waiter *w;

	pthread_mutex_lock(&rq->srv->lock);
	if (rq->srv->stopping) {
		pthread_mutex_unlock(&rq->srv->lock);
		rq->suspended = false;
		reply_errf(rq, HERR_UNAVAIL, "", "the server is stopping");
		return false;
	}
	if (rq->srv->generation != rq->gen_seen && mono_ms() < rq->wait_deadline_ms) {
		pthread_mutex_unlock(&rq->srv->lock);
		return false;
	}
	w = xcalloc(1, sizeof(*w));
	w->rq = rq;
	pthread_mutex_lock(&h->lock);
	MHD_suspend_connection(rq->conn);
	w->next = h->waiters;
	h->waiters = w;
	pthread_mutex_unlock(&h->lock);
	pthread_mutex_unlock(&rq->srv->lock);
	return true;
}

/* Counts (and at debug level logs) one parked request resumed; each
 * resume runs its handler again. Called with h->lock held. */
static void
woke(struct httpd *h, const struct req *rq, bool by_kick)
{
	if (by_kick)
		h->woken_kick++;
	else
		h->woken_deadline++;
	log_debug("http: woke %s %s of '%s' (%s)", rq->method, rq->path, rq->who.name,
		  by_kick ? "kick" : "deadline");
}

/* Resumes the parked requests a kick concerns (changed: the generation
 * moved to gen since the last pass), those past their deadline, or all. */
static void
resume(struct httpd *h, bool changed, uint64_t gen, bool all)
{
	struct waiter **pp, *w;
	int64_t now = mono_ms();
	uint64_t min = gen;

	pthread_mutex_lock(&h->lock);
	for (pp = &h->waiters; (w = *pp) != NULL;) {
		struct req *rq = w->rq;
		bool deadline = now >= rq->wait_deadline_ms;
		bool kicked = changed && (rq->wait_key == 0 || kicked_for(h, rq));

		if (all || deadline || kicked) {
			woke(h, rq, !deadline);
			*pp = w->next;
			MHD_resume_connection(rq->conn);
			free(w);
		} else {
			if (rq->wait_key != 0 && rq->gen_seen < min)
				min = rq->gen_seen;
			pp = &w->next;
		}
	}
	if (!all)
		keys_prune(h, min);
	pthread_mutex_unlock(&h->lock);
}

void
httpd_resume_waiters(struct server *s)
{
	if (s->httpd)
		resume(s->httpd, true, 0, true);
}

void
httpd_wakeups(struct server *s, uint64_t *by_kick, uint64_t *at_deadline)
{
	struct httpd *h = s->httpd;

	*by_kick = *at_deadline = 0;
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	*by_kick = h->woken_kick;
	*at_deadline = h->woken_deadline;
	pthread_mutex_unlock(&h->lock);
}

static void *
waker_main(void *arg)
{
	struct server *s = arg;
	struct httpd *h = s->httpd;
	uint64_t seen;

	pthread_mutex_lock(&s->lock);
	seen = s->generation;
	while (!s->stopping) {
		struct timespec ts;
		bool changed;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->kick, &s->lock, &ts);
		changed = s->generation != seen;
		seen = s->generation;
		pthread_mutex_unlock(&s->lock);
		resume(h, changed, seen, false);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	resume(h, false, 0, true);
	return NULL;
}

/* libmicrohttpd's own messages ("Server reached connection limit", once per
 * refused connection) are logged at most HTTPD_LOG_BURST a minute: a flood
 * of connections must not become a flood of log lines. */
__attribute__((format(printf, 2, 0)))
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static int64_t window_ms;
	static unsigned logged, dropped;
	int64_t now = mono_ms();
	char msg[512];
	size_t n;

	pthread_mutex_lock(&mu);
	if (window_ms == 0 || now - window_ms >= 60000) {
		if (dropped)
			log_warn("http: %u more messages like these not logged", dropped);
		window_ms = now;
		logged = dropped = 0;
	}
	if (logged >= HTTPD_LOG_BURST) {
		dropped++;
		pthread_mutex_unlock(&mu);
		return;
	}
	logged++;
	pthread_mutex_unlock(&mu);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_warn("http: %s", msg);
}

static enum MHD_Result
count_bytes(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	size_t *n = cls, add = strlen(key) + (value ? strlen(value) : 0) + 4;

	*n = *n > SIZE_MAX - add ? SIZE_MAX : *n + add;   /* saturates */
	return MHD_YES;
}

/* The bytes of the request line and headers, as received (about). */
static size_t
head_bytes(struct MHD_Connection *c, const char *url, const char *method)
{
	size_t n = strlen(url) + strlen(method) + 16;

	MHD_get_connection_values(c, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND, count_bytes, &n);
	return n;
}

/* 431 with the fewest header bytes (the connection's memory is nearly
 * spent on the request's own): the status says it all. */
static enum MHD_Result
answer_431(struct MHD_Connection *c)
{
	static char body[] = "{\"error\":{\"code\":\"too_big\",\"message\":"
			     "\"request line and headers are too large\"}}\n";
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(sizeof(body) - 1, body, MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(c, 431, r);
	MHD_destroy_response(r);
	return ret;
}

/* Whether the request announces a body (a length above 0, or chunks). */
static bool
has_body(struct MHD_Connection *c)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);

	if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
		return true;
	return cl != NULL && strtoull(cl, NULL, 10) > 0;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
	   const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct server *s = cls;
	struct req *rq = *con_cls;

	if (rq == NULL) {
		const char *cl;
		bool mismatch = false;

		log_debug("http: %s %s", method, url);
		rq = xcalloc(1, sizeof(*rq));
		rq->srv = s;
		rq->conn = c;
		rq->method = method;
		snprintf(rq->path, sizeof(rq->path), "%s", url);
		buf_init(&rq->body, s->body_max);
		*con_cls = rq;
		if (head_bytes(c, url, method) > HTTPD_HEADERS_MAX) {
			rq->status = 431;
			rq->answered_early = true;
			return answer_431(c);
		}
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > s->body_max) {
			/* Refuse before reading: answering now makes MHD close the
			 * connection instead of swallowing the body. */
			reply_errf(rq, HERR_TOOBIG, "", "request body is larger than %zu bytes",
				   s->body_max);
			rq->answered_early = true;
			return send_answer(rq);
		}
		rq->route = route_match(method, url, rq->params, &rq->nparams, &mismatch);
		if (rq->route == NULL) {
			if (mismatch)
				reply_errf(rq, -ENOTSUP, "", "method %s not allowed on %s", method, url);
			else
				api_not_found(rq);
			if (mismatch)
				rq->status = 405;
		} else if (api_authorize(rq)) {
			/* a client known to us may keep its connection */
			if (rq->who.role != ROLE_NONE)
				MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT,
							  HTTPD_AUTHED_TIMEOUT_S);
		}
		if (rq->status != 0 && has_body(c)) {
			/* Refused on its headers (401, 403, 404, 405): the body
			 * is never read, the connection closes after the answer. */
			rq->answered_early = true;
			return send_answer(rq);
		}
		return MHD_YES;
	}
	if (*upload_size > 0) {
		/* A body without Content-Length that passes the limit: its bytes
		 * are dropped as they come (memory stays flat) and the 413 goes
		 * out at its end; MHD cannot answer in the middle of an upload.
		 * One that never ends is cut off after HTTPD_DISCARD_MAX. */
		if (rq->body_too_big) {
			rq->discarded += *upload_size;
			*upload_size = 0;
			return rq->discarded > HTTPD_DISCARD_MAX ? MHD_NO : MHD_YES;
		}
		if (buf_add(&rq->body, upload_data, *upload_size) < 0) {
			rq->body_too_big = true;
			buf_release(&rq->body);
			reply_errf(rq, HERR_TOOBIG, "", "request body is larger than %zu bytes",
				   s->body_max);
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (rq->answered_early)
		return MHD_YES;
	if (rq->body_too_big)
		return send_answer(rq);
	if (rq->status == 0 && api_runs_in_tx(rq)) {
		/* a change: the writer runs it and resumes us once it is
		 * durable (rq->status set); this thread goes on serving */
		if (writer_submit(s, rq))
			return MHD_YES;
		return send_answer(rq);
	}
	if (rq->status == 0) {
		do {
			rq->suspended = false;
			rq->gen_seen = __atomic_load_n(&s->generation, __ATOMIC_ACQUIRE);
			api_handle(rq);
			if (rq->suspended && park(s->httpd, rq))
				return MHD_YES;
		} while (rq->suspended);
	}
	return send_answer(rq);
}

/* One worker per core (at least 2): handlers do not block (long-polls
 * are parked), so more threads would only contend. */
static unsigned
pool_size(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 2 ? 2u : n > 16 ? 16u : (unsigned)n;
}

/* How each worker watches its connections (--http-mode): epoll costs per
 * ready connection, poll() per open one (docs/scale.md, "Connections"). */
static unsigned
watch_flag(const struct server *s)
{
	return s->http_epoll ? MHD_USE_EPOLL_INTERNAL_THREAD : MHD_USE_POLL_INTERNAL_THREAD;
}

static struct MHD_Daemon *
start_one(struct server *s, const char *ip, int port, bool tls, struct herr *err)
{
	const struct tls *t = s->tls;
	struct sockaddr_in sa = { 0 };
	struct MHD_OptionItem tlsopts[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, t ? t->cert_pem : NULL },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, t ? t->key_pem : NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	struct MHD_Daemon *d;

	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
		herr_set(err, HERR_INVALID, "invalid listen address '%s'", ip);
		return NULL;
	}
	if (tls && (t == NULL || t->cert_pem == NULL)) {
		herr_set(err, HERR_INVALID, "%s:%d must serve HTTPS but there is no certificate", ip, port);
		return NULL;
	}
	if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		herr_set(err, HERR_UNAVAIL, "%s:%d must serve HTTPS but this libmicrohttpd has no TLS "
			 "(--tls never serves plain HTTP, insecurely)", ip, port);
		return NULL;
	}
	d = MHD_start_daemon(watch_flag(s) | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME |
			     (tls ? MHD_USE_TLS : 0),
			     (uint16_t)port, NULL, NULL, on_request, s,
			     /* first: libmicrohttpd logs to stderr until it is set */
			     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
			     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
			     MHD_OPTION_THREAD_POOL_SIZE, pool_size(),
			     MHD_OPTION_CONNECTION_TIMEOUT, HTTPD_FIRST_TIMEOUT_S,
			     MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTPD_CONN_MEMORY,
			     MHD_OPTION_CONNECTION_MEMORY_INCREMENT, HTTPD_CONN_MEMORY_STEP,
			     MHD_OPTION_CONNECTION_LIMIT, s->max_conns,
			     MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->max_conns_per_addr,
			     MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
			     /* the certificate only on TLS listeners */
			     MHD_OPTION_ARRAY, tls ? tlsopts : tlsopts + 2,
			     MHD_OPTION_END);
	if (d == NULL)
		herr_set(err, HERR_UNAVAIL, "cannot listen on %s:%d: %s", ip, port, strerror(errno));
	else if (!tls && t && t->mode == TLS_NEVER && strncmp(ip, "127.", 4) != 0)
		log_warn("INSECURE: %s:%d serves plain HTTP (--tls never): tokens and host "
			 "credentials cross the network in clear text", ip, port);
	return d;
}

/* Splits "IP:PORT" into ip (an IPv4 address, checked by start_one) and
 * port (1..65535). */
static int
addr_split(const char *addr, char *ip, size_t ipsz, int *port, struct herr *err)
{
	const char *colon = strrchr(addr, ':');

	if (colon == NULL || colon == addr || (size_t)(colon - addr) >= ipsz)
		return herr_set(err, HERR_INVALID, "invalid listen address '%s' (want IP:PORT)", addr);
	memcpy(ip, addr, (size_t)(colon - addr));
	ip[colon - addr] = '\0';
	*port = (int)str_long_or(colon + 1, 1, 65535, 0);
	if (*port == 0)
		return herr_set(err, HERR_INVALID, "invalid port in '%s'", addr);
	return 0;
}

static int listen_add(struct server *s, const char *ip, int port, bool bridge, struct herr *err);

static bool
is_any(const char *addr)
{
	return strncmp(addr, "0.0.0.0:", 8) == 0;
}

int
httpd_start(struct server *s, const char *addr, const char *const *more, int nmore,
	    struct herr *err)
{
	struct httpd *h;
	char ip[64];
	int port, i, pass;

	if (addr_split(addr, ip, sizeof(ip), &port, err) < 0)
		return err->code;
	for (i = 0; i < nmore; i++) {
		char mip[64];
		int mport;

		if (addr_split(more[i], mip, sizeof(mip), &mport, err) < 0)
			return err->code;
	}
	h = xcalloc(1, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
	s->httpd = h;
	s->port = port;
	if (writer_start(s, err) < 0)
		goto fail;
	/* wildcards first (pass 0), then the rest: httpd_listen_extra skips
	 * an address a wildcard on its port already covers */
	for (pass = 0; pass < 2; pass++) {
		if ((is_any(addr) ? 0 : 1) == pass && listen_add(s, ip, port, false, err) < 0)
			goto fail;
		for (i = 0; i < nmore; i++) {
			char mip[64];
			int mport;

			if ((is_any(more[i]) ? 0 : 1) != pass)
				continue;
			addr_split(more[i], mip, sizeof(mip), &mport, err);
			if (listen_add(s, mip, mport, false, err) < 0)
				goto fail;
		}
	}
	log_info("http: %s, %u workers per listen address, at most %u connections each",
		 s->http_epoll ? "epoll" : "poll", pool_size(), s->max_conns);
	if (pthread_create(&h->waker, NULL, waker_main, s) == 0)
		h->waker_started = true;
	return 0;
fail:
	for (i = 0; i < h->nd; i++)
		MHD_stop_daemon(h->d[i]);
	writer_free(s);
	s->httpd = NULL;
	free(h);
	return err->code;
}

/* Adds a listener on ip:port unless one (or 0.0.0.0:port) is there;
 * bridge: a local network's gateway (tls_for_addr). */
static int
listen_add(struct server *s, const char *ip, int port, bool bridge, struct herr *err)
{
	struct httpd *h = s->httpd;
	const struct tls *t = s->tls;
	bool tls = tls_for_addr(t ? t->mode : TLS_AUTO, ip, bridge);
	struct MHD_Daemon *d;

	pthread_mutex_lock(&h->lock);
	for (int i = 0; i < h->nd; i++) {
		/* 0.0.0.0:PORT (a repeated --listen) already takes every
		 * address's PORT, a gateway's included */
		if (h->port[i] == port &&
		    (strcmp(h->addr[i], ip) == 0 || strcmp(h->addr[i], "0.0.0.0") == 0)) {
			pthread_mutex_unlock(&h->lock);
			return 0;
		}
	}
	if (h->nd == HTTPD_MAX_DAEMONS) {
		pthread_mutex_unlock(&h->lock);
		return herr_set(err, HERR_TOOBIG, "too many listen addresses");
	}
	d = start_one(s, ip, port, tls, err);
	if (d) {
		h->d[h->nd] = d;
		snprintf(h->addr[h->nd], sizeof(h->addr[0]), "%s", ip);
		h->port[h->nd] = port;
		h->tls[h->nd] = tls;
		h->nd++;
		log_info("listening on %s://%s:%d", tls ? "https" : "http", ip, port);
	}
	pthread_mutex_unlock(&h->lock);
	return d ? 0 : err->code;
}

int
httpd_listen_extra(struct server *s, const char *ip, int port, struct herr *err)
{
	return listen_add(s, ip, port, true, err);
}

bool
httpd_is_tls(struct server *s, const char *ip, int port)
{
	struct httpd *h = s->httpd;
	bool tls = false;

	if (h == NULL)
		return false;
	pthread_mutex_lock(&h->lock);
	for (int i = 0; i < h->nd; i++)
		if (h->port[i] == port &&
		    (strcmp(h->addr[i], ip) == 0 || strcmp(h->addr[i], "0.0.0.0") == 0))
			tls = h->tls[i];
	pthread_mutex_unlock(&h->lock);
	return tls;
}

void
httpd_stop(struct server *s)
{
	struct httpd *h = s->httpd;

	if (h == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = 1;
	pthread_cond_broadcast(&s->kick);
	pthread_mutex_unlock(&s->lock);
	if (h->waker_started)
		pthread_join(h->waker, NULL);
	writer_stop(s);     /* its connections resumed before the daemons stop */
	for (int i = 0; i < h->nd; i++)
		MHD_stop_daemon(h->d[i]);
	writer_free(s);
	s->httpd = NULL;
	free(h);
}
