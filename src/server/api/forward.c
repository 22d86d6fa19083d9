/* forward.c - metrics on a follower (issue 19, docs/ha.md "Metrics with
 * several servers"): the TSDB that matters is the leader's (the autoscaler
 * and alert evaluation read it), so a server that does not lead sends the
 * agents' pushes, remote writes and metric reads it gets to the leader, as
 * they came (method, path, query, body, Authorization), and answers with
 * the leader's answer. No leader, or none reachable within FORWARD_TIMEOUT:
 * 503 with Retry-After, so an agent keeps its buffer and sends again. A
 * forwarded request carries X-Herd-Forwarded with the store's forward key
 * (server.c, ensure_forward_key) and is never sent on again (two servers
 * that each believe the other leads answer it themselves); the header from
 * a client, without that key, is ignored: it cannot keep a push from the
 * leader. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <microhttpd.h>
#include <sodium.h>

#include "api.h"
#include "buf.h"
#include "ctl/lease.h"
#include "log.h"
#include "store/store.h"
#include "tls.h"
#include "util.h"
#include "xalloc.h"

#define FORWARD_HEADER "X-Herd-Forwarded"
#define FORWARD_TIMEOUT_MS 3000L          /* the whole exchange with the leader */
#define FORWARD_CONNECT_MS 1000L
#define FORWARD_ANSWER_MAX ((size_t)64 << 20)   /* a metric read's answer, at most */
#define FORWARD_CACHE_MS 1000             /* the leader's address is looked up this often */
#define FORWARD_URL_MAX 8192

/* The leader's address, looked up at most every FORWARD_CACHE_MS (each
 * lookup is two store reads; pushes come every second from every agent). */
static struct {
	pthread_mutex_t lock;
	int64_t at_ms;        /* mono ms of the lookup; 0 = none */
	int rc;               /* its outcome */
	bool self;
	char addr[128];
	char msg[200];
} leader_cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int
leader_lookup(struct server *s, char *addr, size_t n, bool *self, char *msg, size_t mn)
{
	struct herr err = HERR_INIT;
	int64_t now = mono_ms();
	int rc;

	pthread_mutex_lock(&leader_cache.lock);
	if (leader_cache.at_ms == 0 || now - leader_cache.at_ms >= FORWARD_CACHE_MS) {
		leader_cache.rc = leader_address(s, leader_cache.addr, sizeof(leader_cache.addr),
						 &leader_cache.self, &err);
		snprintf(leader_cache.msg, sizeof(leader_cache.msg), "%s", err.msg);
		leader_cache.at_ms = now;
	}
	rc = leader_cache.rc;
	snprintf(addr, n, "%s", leader_cache.addr);
	snprintf(msg, mn, "%s", leader_cache.msg);
	*self = leader_cache.self;
	pthread_mutex_unlock(&leader_cache.lock);
	return rc;
}

/* Forgets the address (the leader did not answer: look again next time). */
static void
leader_forget(void)
{
	pthread_mutex_lock(&leader_cache.lock);
	leader_cache.at_ms = 0;
	pthread_mutex_unlock(&leader_cache.lock);
}

struct qs {
	CURL *curl;
	struct buf *b;
	bool first;
};

/* Appends one query argument, escaped again, to the URL. */
static enum MHD_Result
add_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct qs *q = cls;
	char *k = curl_easy_escape(q->curl, key, 0);
	char *v = value ? curl_easy_escape(q->curl, value, 0) : NULL;

	buf_addf(q->b, "%c%s%s%s", q->first ? '?' : '&', k ? k : "", v ? "=" : "", v ? v : "");
	q->first = false;
	curl_free(k);
	curl_free(v);
	return MHD_YES;
}

static size_t
take_answer(char *data, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t n = size * nmemb;

	return buf_add(b, data, n) < 0 ? 0 : n;   /* past b->max: CURLE_WRITE_ERROR */
}

/* Adds "Name: value" of rq's header name, when it has one. */
static struct curl_slist *
copy_header(struct req *rq, struct curl_slist *h, const char *name)
{
	const char *v = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
	char line[1024];

	if (v == NULL || strlen(v) + strlen(name) + 3 > sizeof(line))
		return h;
	snprintf(line, sizeof(line), "%s: %s", name, v);
	return curl_slist_append(h, line);
}

/* 503, to be tried again in a second: no leader to reach (yet). */
static void
reply_unavail(struct req *rq, const char *why)
{
	rq->retry_after_s = 1;
	reply_errf(rq, HERR_UNAVAIL, "", "%s: retry", why);
}

/* The leader's content type, among those herd answers with (the string
 * must outlive the handler). */
static const char *
answer_ctype(const char *t)
{
	if (t == NULL || strncmp(t, "application/json", 16) == 0)
		return "application/json";
	if (strcmp(t, "text/plain; version=0.0.4; charset=utf-8") == 0)
		return "text/plain; version=0.0.4; charset=utf-8";
	if (strncmp(t, "text/plain", 10) == 0)
		return "text/plain; charset=utf-8";
	return "application/octet-stream";
}

/* Sends rq to the leader at addr and answers with what it says. */
static void
forward(struct req *rq, const char *addr)
{
	struct server *s = rq->srv;
	struct tls *t = s->tls;
	struct buf url, answer;
	struct qs q;
	struct curl_slist *h = NULL;
	char ip[64], self_hdr[96], *ctype = NULL;
	long status = 0;
	CURLcode rc;
	CURL *c = curl_easy_init();
	bool https;

	char why[300], *data;

	if (c == NULL)
		return reply_unavail(rq, "cannot forward to the leader: out of memory");
	snprintf(ip, sizeof(ip), "%.*s", (int)strcspn(addr, ":"), addr);
	https = t && tls_for_addr(t->mode, ip, false);
	buf_init(&url, FORWARD_URL_MAX);
	buf_init(&answer, FORWARD_ANSWER_MAX);
	buf_addf(&url, "%s://%s%s", https ? "https" : "http", addr, rq->path);
	q = (struct qs){ c, &url, true };
	MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, add_arg, &q);
	if (buf_add(&url, "", 1) < 0) {
		reply_errf(rq, HERR_TOOBIG, "", "the request's URL is too long to forward");
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_URL, url.p);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, FORWARD_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, FORWARD_CONNECT_MS);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, take_answer);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
	if (https && t->ca_pem) {
		/* the servers share DATA/tls (docs/ha.md): the leader's certificate
		 * is our CA's; its names are the leader's, not ours to check */
		struct curl_blob blob = { t->ca_pem, strlen(t->ca_pem), CURL_BLOB_COPY };
		curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	h = copy_header(rq, h, MHD_HTTP_HEADER_AUTHORIZATION);
	h = copy_header(rq, h, MHD_HTTP_HEADER_CONTENT_TYPE);
	h = copy_header(rq, h, MHD_HTTP_HEADER_CONTENT_ENCODING);
	snprintf(self_hdr, sizeof(self_hdr), FORWARD_HEADER ": %s", s->forward_key);
	h = curl_slist_append(h, self_hdr);
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (strcmp(rq->method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body.len ? rq->body.p : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)rq->body.len);
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK || status < 100) {
		log_warn("cannot forward %s %s to the leader at %s: %s", rq->method, rq->path, addr,
			 curl_easy_strerror(rc));
		leader_forget();
		snprintf(why, sizeof(why), "cannot reach the leader at %s: %s", addr,
			 rc == CURLE_WRITE_ERROR ? "its answer is too large" : curl_easy_strerror(rc));
		reply_unavail(rq, why);
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype);
	data = xmalloc(answer.len + 1);
	memcpy(data, answer.len ? answer.p : "", answer.len);
	data[answer.len] = '\0';
	reply_raw(rq, (int)status, answer_ctype(ctype), data, answer.len, false);
out:
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	buf_release(&url);
	buf_release(&answer);
}

/* The request came from another server of this store (its header carries
 * the store's forward key; compared in constant time). */
static bool
from_a_server(struct req *rq)
{
	const char *v = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, FORWARD_HEADER);
	size_t n = strlen(rq->srv->forward_key);

	return v != NULL && n > 0 && strlen(v) == n &&
	       sodium_memcmp(v, rq->srv->forward_key, n) == 0;
}

bool
api_forward_to_leader(struct req *rq)
{
	struct server *s = rq->srv;
	char addr[128], msg[200];
	bool self = false;
	int rc;

	if (s->store == NULL || s->store->ops->single_process || s->leader == NULL)
		return false;
	if (from_a_server(rq))
		return false;   /* sent on by a follower: answered here, never sent on again */
	rc = leader_lookup(s, addr, sizeof(addr), &self, msg, sizeof(msg));
	if (rc == 0 && self)
		return false;
	if (rc < 0) {
		char why[300];

		snprintf(why, sizeof(why), "no leader to send this to (%s)", msg);
		reply_unavail(rq, why);
		return true;
	}
	forward(rq, addr);
	return true;
}
