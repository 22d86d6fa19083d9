/* httpc-mini.c - src/lib/httpc.h on plain sockets and mbedTLS, for the
 * static herd-agent (the herd binary's is httpc.c on libcurl). HTTP/1.1 with
 * one kept-alive connection per struct httpc: a request on a reused idle
 * connection that the server had closed is sent once more on a new one, only
 * when no byte of an answer came back. Content-Length, chunked and
 * until-close bodies; the response cap (max_response); a whole-request
 * deadline (poll) and a 5 s connect timeout. A request's head and body (up
 * to HM_COALESCE_MAX) go out in one send; the request, response head and
 * response body buffers live with the connection and are reused, so a
 * steady push allocates nothing in the client (musl's malloc maps and
 * unmaps a page group for each 0.5-1 KiB buffer freed otherwise).
 *
 * Names: a numeric address needs no file at all; a name goes through the C
 * library's getaddrinfo: musl's (herd-agent) reads /etc/hosts and
 * /etc/resolv.conf itself, with no NSS modules to load, so a rootfs without
 * those files can only use numeric addresses. (The sanitizer build links
 * glibc dynamically, whose NSS is there.)
 *
 * TLS (mbedTLS 2.28): the system store /etc/ssl/certs/ca-certificates.crt,
 * a cafile or one CA in memory; names are checked against DNS names and, as
 * mbedTLS 2.28 does not, against IP address subjectAltNames too. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "buf.h"
#include "httpc-mini.h"
#include "httpc.h"
#include "tlsfp.h"
#include "util.h"
#include "xalloc.h"

#define HM_SYSTEM_CA     "/etc/ssl/certs/ca-certificates.crt"
#define HM_CONNECT_MS    5000
#define HM_HEAD_MAX      (64u << 10) /* a response head larger than this is refused */
#define HM_CA_MAX        (64u << 10) /* GET /v1/tls/ca */
#define HM_REQ_HEAD_MAX  8192        /* our own request head */
#define HM_COALESCE_MAX  (64u << 10) /* a body up to this is copied after the head */
#define HM_KEEP_MAX      (16u << 10) /* a kept buffer larger than this is freed after use */

/* One connection and its TLS state; c->impl. */
struct hm_conn {
	int fd;                 /* -1 = none */
	bool tls;
	mbedtls_ssl_context ssl;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt ca;
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	bool seeded;
	unsigned char ip[16];   /* the host as an address, for IP SAN checks */
	size_t ip_len;          /* 0 = the host is a name */
	int64_t deadline;       /* mono_ms of the current request's end */
	char rbuf[16384];
	size_t rpos, rlen;
	struct buf req, head, resp;     /* reused by every request */
};

/* ---- pure pieces (httpc-mini.h) ---- */

int
hm_url_parse(const char *base, struct hm_url *u)
{
	const char *p, *end, *colon;
	size_t n;

	memset(u, 0, sizeof(*u));
	if (strncmp(base, "http://", 7) == 0) {
		p = base + 7;
	} else if (strncmp(base, "https://", 8) == 0) {
		p = base + 8;
		u->tls = true;
	} else {
		return -1;
	}
	end = p + strcspn(p, "/?#");
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(end - p));

		if (rb == NULL)
			return -1;
		n = (size_t)(rb - p - 1);
		if (n == 0 || n >= sizeof(u->host))
			return -1;
		memcpy(u->host, p + 1, n);
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
		if (colon == NULL && rb + 1 != end)
			return -1;
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		n = (size_t)((colon ? colon : end) - p);
		if (n == 0 || n >= sizeof(u->host))
			return -1;
		memcpy(u->host, p, n);
	}
	if (colon) {
		n = (size_t)(end - colon - 1);
		if (n == 0 || n >= sizeof(u->port) || strspn(colon + 1, "0123456789") < n)
			return -1;
		memcpy(u->port, colon + 1, n);
		if (strtol(u->port, NULL, 10) < 1 || strtol(u->port, NULL, 10) > 65535)
			return -1;
	} else {
		snprintf(u->port, sizeof(u->port), "%s", u->tls ? "443" : "80");
	}
	return *end == '\0' || *end == '/' ? 0 : -1;
}

/* The value of header line `line` (len bytes, no CRLF) if its name is
 * `name`, trimmed; NULL if not. */
static const char *
hm_header_value(const char *line, size_t len, const char *name, size_t *vlen)
{
	size_t n = strlen(name);
	const char *v, *e = line + len;

	if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
		return NULL;
	v = line + n + 1;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*vlen = (size_t)(e - v);
	return v;
}

static bool
hm_has_token(const char *v, size_t n, const char *tok)
{
	size_t t = strlen(tok), i;

	for (i = 0; i + t <= n; i++)
		if (strncasecmp(v + i, tok, t) == 0 && (i == 0 || v[i - 1] == ' ' || v[i - 1] == ',')
		    && (i + t == n || v[i + t] == ' ' || v[i + t] == ','))
			return true;
	return false;
}

int
hm_head_parse(const char *head, size_t len, struct hm_head *h)
{
	const char *p = head, *e = head + len, *nl, *v;
	bool http10, keepalive = false;
	size_t ll, vl;

	memset(h, 0, sizeof(*h));
	h->content_length = -1;
	if (len < 12 || strncmp(head, "HTTP/1.", 7) != 0 || (head[7] != '0' && head[7] != '1')
	    || head[8] != ' ')
		return -1;
	http10 = head[7] == '0';
	if (head[9] < '1' || head[9] > '5' || head[10] < '0' || head[10] > '9' || head[11] < '0'
	    || head[11] > '9')
		return -1;
	h->status = (head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0');
	for (;;) {
		nl = memchr(p, '\n', (size_t)(e - p));
		if (nl == NULL)
			return -1;
		ll = (size_t)(nl - p);
		if (ll > 0 && p[ll - 1] == '\r')
			ll--;
		if (ll == 0 && p != head)
			break;
		if (p != head) {
			if ((v = hm_header_value(p, ll, "Content-Length", &vl)) != NULL) {
				long long cl = 0;
				size_t i;

				if (vl == 0 || vl > 18)
					return -1;
				for (i = 0; i < vl; i++) {
					if (v[i] < '0' || v[i] > '9')
						return -1;
					cl = cl * 10 + (v[i] - '0');
				}
				if (h->content_length >= 0 && h->content_length != cl)
					return -1;
				h->content_length = cl;
			} else if ((v = hm_header_value(p, ll, "Transfer-Encoding", &vl)) != NULL) {
				if (hm_has_token(v, vl, "chunked"))
					h->chunked = true;
			} else if ((v = hm_header_value(p, ll, "Connection", &vl)) != NULL) {
				if (hm_has_token(v, vl, "close"))
					h->close = true;
				if (hm_has_token(v, vl, "keep-alive"))
					keepalive = true;
			}
		}
		p = nl + 1;
	}
	if (http10 && !keepalive)
		h->close = true;
	return 0;
}

enum { HM_CH_SIZE, HM_CH_EXT, HM_CH_DATA, HM_CH_DATA_END, HM_CH_TRAILER };

static int
hm_hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

long
hm_chunk_feed(struct hm_chunk *ch, const char *in, size_t n, bool *done,
	      int (*out)(void *arg, const char *p, size_t k), void *arg)
{
	size_t i = 0, k;
	int v, rc;

	*done = false;
	BUG_ON(n > LONG_MAX);
	while (i < n) {
		char c = in[i];

		switch (ch->state) {
		case HM_CH_SIZE:
		case HM_CH_EXT:
			i++;
			if (c == '\r')
				break;
			if (c == '\n') {
				if (ch->linelen == 0)
					return -1;
				ch->linelen = 0;
				ch->state = ch->left == 0 ? HM_CH_TRAILER : HM_CH_DATA;
				break;
			}
			if (ch->state == HM_CH_EXT)
				break;
			if (c == ';' && ch->linelen > 0) {
				ch->state = HM_CH_EXT;
				break;
			}
			if ((v = hm_hexval(c)) < 0 || ch->left > (ULLONG_MAX >> 4))
				return -1;
			ch->left = ch->left * 16 + (unsigned)v;
			ch->linelen++;
			break;
		case HM_CH_DATA:
			k = n - i;
			if (k > ch->left)
				k = (size_t)ch->left;
			if ((rc = out(arg, in + i, k)) != 0)
				return rc;
			i += k;
			ch->left -= k;
			if (ch->left == 0)
				ch->state = HM_CH_DATA_END;
			break;
		case HM_CH_DATA_END:
			i++;
			if (c == '\r')
				break;
			if (c != '\n')
				return -1;
			ch->state = HM_CH_SIZE;
			break;
		default: /* HM_CH_TRAILER */
			i++;
			if (c == '\r')
				break;
			if (c == '\n') {
				if (ch->linelen == 0) {
					*done = true;
					return (long)i;
				}
				ch->linelen = 0;
			} else {
				ch->linelen++;
			}
			break;
		}
	}
	return (long)i;
}

int
hm_request_build(struct buf *req, const char *method, const char *path, const struct hm_url *u,
		 const char *auth, const char *ctype, const char *body, size_t blen, bool with_body)
{
	bool v6 = strchr(u->host, ':') != NULL;
	char num[24], *q = num + sizeof(num) - 1;
	int rc = 0;

	buf_reset(req);
	rc |= buf_adds(req, method);
	rc |= buf_adds(req, " ");
	rc |= buf_adds(req, path);
	rc |= buf_adds(req, " HTTP/1.1\r\nHost: ");
	rc |= buf_adds(req, v6 ? "[" : "");
	rc |= buf_adds(req, u->host);
	rc |= buf_adds(req, v6 ? "]:" : ":");
	rc |= buf_adds(req, u->port);
	rc |= buf_adds(req, "\r\nUser-Agent: herd-agent\r\nAccept: */*\r\n");
	if (auth[0]) {
		rc |= buf_adds(req, auth);
		rc |= buf_adds(req, "\r\n");
	}
	if (body) {
		rc |= buf_adds(req, "Content-Type: ");
		rc |= buf_adds(req, ctype);
		rc |= buf_adds(req, "\r\n");
	}
	if (body || (strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0)) {
		size_t v = blen;

		*q = '\0';
		do {            /* no printf on every push */
			*--q = (char)('0' + v % 10);
			v /= 10;
		} while (v);
		rc |= buf_adds(req, "Content-Length: ");
		rc |= buf_adds(req, q);
		rc |= buf_adds(req, "\r\n");
	}
	rc |= buf_adds(req, "\r\n");
	if (body && with_body)
		rc |= buf_add(req, body, blen);
	return rc ? HERR_TOOBIG : 0;
}

/* ---- the connection ---- */

static struct hm_conn *
hm_conn(struct httpc *c)
{
	struct hm_conn *k = c->impl;

	if (k == NULL) {
		k = xcalloc(1, sizeof(*k));
		k->fd = -1;
		buf_init(&k->req, HM_REQ_HEAD_MAX + HM_COALESCE_MAX);
		buf_init(&k->head, HM_HEAD_MAX);
		buf_init(&k->resp, 0);
		c->impl = k;
	}
	return k;
}

/* After a request: a buffer that grew past HM_KEEP_MAX (a backlog, a large
 * answer) is given back rather than held for good. */
static void
hm_trim(struct buf *b)
{
	size_t max = b->max;

	if (b->cap > HM_KEEP_MAX) {
		buf_release(b);
		b->max = max;
	}
}

static void
hm_close(struct hm_conn *k)
{
	if (k->fd < 0)
		return;
	if (k->tls) {
		mbedtls_ssl_free(&k->ssl);
		mbedtls_ssl_config_free(&k->conf);
		mbedtls_x509_crt_free(&k->ca);
	}
	close(k->fd);
	k->fd = -1;
	k->tls = false;
	k->rpos = k->rlen = 0;
}

/* Waits for ev on the socket until the deadline: 0, or HERR_TIMEOUT. */
static int
hm_wait(struct hm_conn *k, short ev, int64_t deadline)
{
	struct pollfd pfd = { k->fd, ev, 0 };
	int64_t left;
	int r;

	for (;;) {
		left = deadline - mono_ms();
		if (left <= 0)
			return HERR_TIMEOUT;
		r = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return HERR_UNAVAIL;
	}
}

/* mbedTLS's I/O: blocking until the request's deadline on a non-blocking
 * socket. */
static int
hm_bio_send(void *ctx, const unsigned char *p, size_t n)
{
	struct hm_conn *k = ctx;
	ssize_t r;

	for (;;) {
		r = send(k->fd, p, n, MSG_NOSIGNAL);
		if (r >= 0)
			return (int)r;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return errno == EPIPE || errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
								     : MBEDTLS_ERR_NET_SEND_FAILED;
		if (hm_wait(k, POLLOUT, k->deadline) != 0)
			return MBEDTLS_ERR_SSL_TIMEOUT;
	}
}

static int
hm_bio_recv(void *ctx, unsigned char *p, size_t n)
{
	struct hm_conn *k = ctx;
	ssize_t r;

	for (;;) {
		r = recv(k->fd, p, n, 0);
		if (r >= 0)
			return (int)r;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
						   : MBEDTLS_ERR_NET_RECV_FAILED;
		if (hm_wait(k, POLLIN, k->deadline) != 0)
			return MBEDTLS_ERR_SSL_TIMEOUT;
	}
}

static int
hm_tls_code(int r)
{
	return r == MBEDTLS_ERR_SSL_TIMEOUT ? HERR_TIMEOUT : HERR_UNAVAIL;
}

static int
hm_send_all(struct hm_conn *k, const char *p, size_t n)
{
	int r;

	while (n > 0) {
		if (k->tls)
			r = mbedtls_ssl_write(&k->ssl, (const unsigned char *)p, n);
		else
			r = hm_bio_send(k, (const unsigned char *)p, n);
		if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
			continue;
		if (r < 0)
			return hm_tls_code(r);
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Reads more into k->rbuf (which the caller emptied): bytes read, 0 at the
 * end of the stream, or a HERR code. */
static long
hm_fill(struct hm_conn *k)
{
	int r;

	k->rpos = k->rlen = 0;
	for (;;) {
		if (k->tls)
			r = mbedtls_ssl_read(&k->ssl, (unsigned char *)k->rbuf, sizeof(k->rbuf));
		else
			r = hm_bio_recv(k, (unsigned char *)k->rbuf, sizeof(k->rbuf));
		if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
			continue;
		if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || r == MBEDTLS_ERR_NET_CONN_RESET)
			return 0;
		if (r < 0)
			return hm_tls_code(r);
		k->rlen = (size_t)r;
		return r;
	}
}

/* At depth 0, a name mismatch on a host given as an address is cleared when
 * the certificate has that address as an IP subjectAltName. */
static int
hm_verify(void *arg, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
	struct hm_conn *k = arg;
	const mbedtls_x509_sequence *s;

	if (depth != 0 || k->ip_len == 0 || !(*flags & MBEDTLS_X509_BADCERT_CN_MISMATCH))
		return 0;
	for (s = &crt->subject_alt_names; s != NULL; s = s->next)
		if (s->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && s->buf.len == k->ip_len
		    && memcmp(s->buf.p, k->ip, k->ip_len) == 0) {
			*flags &= ~(uint32_t)MBEDTLS_X509_BADCERT_CN_MISMATCH;
			break;
		}
	return 0;
}

static int
hm_tls_start(struct httpc *c, struct hm_conn *k, const struct hm_url *u, struct herr *err)
{
	const char *cafile = c->cafile[0] ? c->cafile : HM_SYSTEM_CA;
	char info[256];
	uint32_t flags;
	int r;

	if (!k->seeded) {
		mbedtls_entropy_init(&k->entropy);
		mbedtls_ctr_drbg_init(&k->drbg);
		if (mbedtls_ctr_drbg_seed(&k->drbg, mbedtls_entropy_func, &k->entropy,
					  (const unsigned char *)"herd-agent", 10) != 0)
			return herr_set(err, HERR_UNAVAIL, "cannot seed the TLS random generator");
		k->seeded = true;
	}
	mbedtls_ssl_init(&k->ssl);
	mbedtls_ssl_config_init(&k->conf);
	mbedtls_x509_crt_init(&k->ca);
	k->tls = true;
	mbedtls_ssl_config_defaults(&k->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
				    MBEDTLS_SSL_PRESET_DEFAULT);
	mbedtls_ssl_conf_rng(&k->conf, mbedtls_ctr_drbg_random, &k->drbg);
	if (c->insecure) {
		mbedtls_ssl_conf_authmode(&k->conf, MBEDTLS_SSL_VERIFY_NONE);
	} else {
		if (c->ca_pem)
			r = mbedtls_x509_crt_parse(&k->ca, (const unsigned char *)c->ca_pem,
						   strlen(c->ca_pem) + 1);
		else
			r = mbedtls_x509_crt_parse_file(&k->ca, cafile);
		if (r < 0 || k->ca.raw.len == 0)
			return herr_set(err, HERR_UNAVAIL, "no trusted CA for %s: cannot read %s",
					c->base, c->ca_pem ? "the pinned CA" : cafile);
		mbedtls_ssl_conf_ca_chain(&k->conf, &k->ca, NULL);
		mbedtls_ssl_conf_authmode(&k->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
		mbedtls_ssl_conf_verify(&k->conf, hm_verify, k);
	}
	if (mbedtls_ssl_setup(&k->ssl, &k->conf) != 0)
		return herr_set(err, HERR_UNAVAIL, "cannot set up TLS");
	if (!c->insecure && c->verify_host && mbedtls_ssl_set_hostname(&k->ssl, u->host) != 0)
		return herr_set(err, HERR_UNAVAIL, "cannot set TLS host name");
	mbedtls_ssl_set_bio(&k->ssl, k, hm_bio_send, hm_bio_recv, NULL);
	while ((r = mbedtls_ssl_handshake(&k->ssl)) != 0) {
		if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
			continue;
		if (r == MBEDTLS_ERR_SSL_TIMEOUT)
			return herr_set(err, HERR_TIMEOUT, "no answer from %s in time", c->base);
		flags = mbedtls_ssl_get_verify_result(&k->ssl);
		if (r == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && flags != 0) {
			mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
			info[strcspn(info, "\n")] = '\0';
			return herr_set(err, HERR_UNAVAIL,
					"cannot reach herd server at %s: its certificate is not trusted (%s)",
					c->base, info);
		}
		mbedtls_strerror(r, info, sizeof(info));
		return herr_set(err, HERR_UNAVAIL, "cannot reach herd server at %s: TLS: %s",
				c->base, info);
	}
	return 0;
}

/* Connects k to u (and does the TLS handshake): 0 or a HERR code. */
static int
hm_connect(struct httpc *c, struct hm_conn *k, const struct hm_url *u, struct herr *err)
{
	struct addrinfo hints = { 0 }, *res = NULL, *ai;
	int64_t until;
	int r, soerr = 0, one = 1;
	socklen_t sl = sizeof(soerr);

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	k->ip_len = 0;
	if (inet_pton(AF_INET, u->host, k->ip) == 1)
		k->ip_len = 4;
	else if (inet_pton(AF_INET6, u->host, k->ip) == 1)
		k->ip_len = 16;
	else
		hints.ai_flags = AI_NUMERICSERV; /* a name: glibc's resolver */
	r = getaddrinfo(u->host, u->port, &hints, &res);
	if (r != 0)
		return herr_set(err, HERR_UNAVAIL, "cannot reach herd server at %s: cannot resolve '%s': %s",
				c->base, u->host, gai_strerror(r));
	r = HERR_UNAVAIL;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		k->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			       ai->ai_protocol);
		if (k->fd < 0)
			continue;
		until = mono_ms() + HM_CONNECT_MS;
		if (until > k->deadline)
			until = k->deadline;
		if (connect(k->fd, ai->ai_addr, ai->ai_addrlen) == 0
		    || (errno == EINPROGRESS && (r = hm_wait(k, POLLOUT, until)) == 0
			&& getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)) {
			r = 0;
			break;
		}
		if (soerr)
			errno = soerr;
		close(k->fd);
		k->fd = -1;
	}
	freeaddrinfo(res);
	if (k->fd < 0) {
		if (r == HERR_TIMEOUT)
			return herr_set(err, HERR_UNAVAIL, "cannot reach herd server at %s: connect timed out",
					c->base);
		return herr_set(err, HERR_UNAVAIL, "cannot reach herd server at %s: %s", c->base,
				strerror(errno));
	}
	setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	k->rpos = k->rlen = 0;
	if (u->tls && (r = hm_tls_start(c, k, u, err)) != 0) {
		hm_close(k);
		return r;
	}
	return 0;
}

/* ---- requests ---- */

struct sink {
	struct buf b;
	int (*cb)(const char *data, size_t n, void *arg);
	void *arg;
	int stopped;            /* the callback said stop */
	int toobig;
};

static int
hm_sink_out(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;

	if (n == 0)
		return 0;
	if (s->cb) {
		if (s->cb(p, n, s->arg) != 0) {
			s->stopped = 1;
			return 1;
		}
		return 0;
	}
	if (buf_add(&s->b, p, n) < 0) {
		s->toobig = 1;
		return 1;
	}
	return 0;
}

/* Reads the response head into head; 0, HM_EMPTY when the stream ended
 * before any byte of it, or a HERR code. */
#define HM_EMPTY 1
static int
hm_read_head(struct hm_conn *k, struct buf *head)
{
	const char *end;
	size_t take;
	long r;

	buf_reset(head);
	for (;;) {
		if (k->rpos == k->rlen) {
			r = hm_fill(k);
			if (r == 0)
				return head->len == 0 ? HM_EMPTY : HERR_UNAVAIL;
			if (r < 0)
				return head->len == 0 && r == HERR_UNAVAIL ? HM_EMPTY : (int)r;
		}
		/* byte by byte up to the blank line: the body stays in rbuf */
		take = 0;
		while (k->rpos + take < k->rlen) {
			take++;
			if (k->rbuf[k->rpos + take - 1] == '\n') {
				if (buf_add(head, k->rbuf + k->rpos, take) < 0)
					return HERR_TOOBIG;
				k->rpos += take;
				take = 0;
				end = head->p + head->len;
				if ((head->len >= 2 && end[-2] == '\n')
				    || (head->len >= 4 && memcmp(end - 4, "\r\n\r\n", 4) == 0))
					return 0;
			}
		}
		if (take > 0 && buf_add(head, k->rbuf + k->rpos, take) < 0)
			return HERR_TOOBIG;
		k->rpos += take;
	}
}

/* Reads the body described by h into s: 0, or a HERR code (s->stopped and
 * s->toobig say why it stopped early). *eof: the body ran to the stream's end. */
static int
hm_read_body(struct hm_conn *k, const struct hm_head *h, struct sink *s, bool *eof)
{
	struct hm_chunk ch = { 0 };
	unsigned long long left = (unsigned long long)h->content_length;
	bool done = false;
	size_t n;
	long r;

	*eof = false;
	if (!h->chunked && h->content_length == 0)
		return 0;
	for (;;) {
		if (k->rpos == k->rlen) {
			r = hm_fill(k);
			if (r < 0)
				return (int)r;
			if (r == 0) {
				*eof = true;
				return !h->chunked && h->content_length < 0 ? 0 : HERR_UNAVAIL;
			}
		}
		n = k->rlen - k->rpos;
		if (h->chunked) {
			r = hm_chunk_feed(&ch, k->rbuf + k->rpos, n, &done, hm_sink_out, s);
			if (r < 0)
				return HERR_UNAVAIL;
			if (s->stopped || s->toobig)
				return 0;
			k->rpos += (size_t)r;
			if (done)
				return 0;
			continue;
		}
		if (h->content_length >= 0 && n > left)
			n = (size_t)left;
		if (hm_sink_out(s, k->rbuf + k->rpos, n) != 0)
			return 0;
		k->rpos += n;
		if (h->content_length >= 0) {
			left -= n;
			if (left == 0)
				return 0;
		}
	}
}

/* One request; body (blen bytes, of type ctype) may be NULL. */
static int
hm_perform(struct httpc *c, const char *method, const char *path, const char *ctype,
	   const char *body, size_t blen, struct sink *s, long *status, struct herr *err)
{
	struct hm_conn *k = hm_conn(c);
	struct hm_url u;
	struct hm_head h;
	struct buf *head = &k->head;
	bool fresh, eof, nobody, with_body = blen <= HM_COALESCE_MAX;
	int attempt, rc = 0;

	if (hm_url_parse(c->base, &u) < 0)
		return herr_set(err, HERR_INVALID, "server url '%s' is not http[s]://host[:port]", c->base);
	if (strlen(path) > 2048 || path[0] != '/' || strpbrk(path, " \r\n") != NULL)
		return herr_set(err, HERR_INVALID, "bad request path");
	k->deadline = mono_ms() + (c->timeout_ms ? c->timeout_ms : 30000L);
	buf_reset(head);
	if (body && !httpc_ctype_is_valid(ctype))
		return herr_set(err, HERR_INVALID, "bad content type for the request body");
	if (hm_request_build(&k->req, method, path, &u, c->auth, ctype, body, blen, with_body) < 0)
		return herr_set(err, HERR_TOOBIG, "request head too large");
	for (attempt = 0; attempt < 2; attempt++) {
		fresh = k->fd < 0;
		if (fresh && (rc = hm_connect(c, k, &u, err)) != 0)
			goto out;
		rc = hm_send_all(k, k->req.p, k->req.len);
		if (rc == 0 && blen > 0 && !with_body)
			rc = hm_send_all(k, body, blen);
		if (rc == 0)
			rc = hm_read_head(k, head);
		while (rc == 0 && hm_head_parse(head->p, head->len, &h) == 0 && h.status < 200)
			rc = hm_read_head(k, head); /* 1xx: the real answer follows */
		if ((rc == HM_EMPTY || rc == HERR_UNAVAIL) && !fresh && head->len == 0) {
			hm_close(k); /* the idle connection was closed: once more, anew */
			continue;
		}
		break;
	}
	if (rc == HM_EMPTY)
		rc = HERR_UNAVAIL;
	if (rc == 0 && hm_head_parse(head->p, head->len, &h) < 0)
		rc = HERR_UNAVAIL;
	if (rc != 0) {
		hm_close(k);
		if (rc == HERR_TIMEOUT)
			herr_set(err, HERR_TIMEOUT, "no answer from %s in time", c->base);
		else if (rc == HERR_TOOBIG)
			herr_set(err, HERR_TOOBIG, "response from %s is too large", c->base);
		else
			herr_set(err, HERR_UNAVAIL, "cannot reach herd server at %s: %s", c->base,
				 head->len ? "malformed answer" : "connection closed");
		goto out;
	}
	nobody = strcmp(method, "HEAD") == 0 || h.status == 204 || h.status == 304;
	eof = false;
	if (!nobody)
		rc = hm_read_body(k, &h, s, &eof);
	if (rc == 0 && s->toobig)
		rc = herr_set(err, HERR_TOOBIG, "response from %s is too large", c->base);
	else if (rc == HERR_TIMEOUT)
		herr_set(err, HERR_TIMEOUT, "no answer from %s in time", c->base);
	else if (rc != 0)
		herr_set(err, HERR_UNAVAIL, "cannot reach herd server at %s: the answer was cut short",
			 c->base);
	if (rc != 0 || s->stopped || eof || h.close || (!h.chunked && h.content_length < 0 && !nobody))
		hm_close(k);
	if (rc == 0)
		*status = h.status;
out:
	hm_trim(&k->req);
	hm_trim(head);
	return rc;
}

/* ---- src/lib/httpc.h ---- */

void
httpc_init(struct httpc *c, const char *base, const char *token)
{
	size_t n;

	memset(c, 0, sizeof(*c));
	snprintf(c->base, sizeof(c->base), "%s", base ? base : "");
	n = strlen(c->base);
	while (n > 0 && c->base[n - 1] == '/')
		c->base[--n] = '\0';
	if (token && *token)
		snprintf(c->auth, sizeof(c->auth), "Authorization: Bearer %s", token);
	c->verify_host = true;
}

void
httpc_release(struct httpc *c)
{
	struct hm_conn *k = c->impl;

	if (k) {
		hm_close(k);
		if (k->seeded) {
			mbedtls_ctr_drbg_free(&k->drbg);
			mbedtls_entropy_free(&k->entropy);
		}
		buf_release(&k->req);
		buf_release(&k->head);
		buf_release(&k->resp);
		free(k);
	}
	c->impl = NULL;
	free(c->ca_pem);
	c->ca_pem = NULL;
}

/* A TLS setting changed: the next request connects anew under it. */
static void
hm_reset(struct httpc *c)
{
	if (c->impl)
		hm_close(c->impl);
}

void
httpc_trust_cafile(struct httpc *c, const char *path)
{
	snprintf(c->cafile, sizeof(c->cafile), "%s", path ? path : "");
	hm_reset(c);
}

void
httpc_trust_ca_pem(struct httpc *c, const char *pem, size_t len, bool verify_host)
{
	free(c->ca_pem);
	c->ca_pem = xmalloc(len + 1);
	memcpy(c->ca_pem, pem, len);
	c->ca_pem[len] = '\0';
	c->verify_host = verify_host;
	hm_reset(c);
}

void
httpc_insecure(struct httpc *c)
{
	c->insecure = true;
	hm_reset(c);
}

int
httpc_pin_ca(struct httpc *c, const char *fingerprint, struct herr *err)
{
	struct sink s = { 0 };
	unsigned char wantfp[TLSFP_LEN], gotfp[TLSFP_LEN];
	char want[TLSFP_HEX], got[TLSFP_HEX];
	bool saved = c->insecure;
	long status = 0;
	int rc;

	if (tlsfp_parse(fingerprint, wantfp) < 0)
		return herr_set(err, HERR_INVALID, "CA fingerprint '%s' is not 64 hex digits", fingerprint);
	tlsfp_hex(wantfp, want);
	/* the CA is fetched unverified: what makes it trusted is its hash */
	buf_init(&s.b, HM_CA_MAX);
	c->insecure = true;
	hm_reset(c);
	rc = hm_perform(c, "GET", "/v1/tls/ca", NULL, NULL, 0, &s, &status, err);
	c->insecure = saved;
	hm_reset(c);
	if (rc == 0 && status != 200)
		rc = herr_set(err, HERR_UNAVAIL, "server at %s answered HTTP %ld for its CA", c->base,
			      status);
	if (rc != 0) {
		buf_release(&s.b);
		return rc == HERR_TOOBIG || rc == HERR_TIMEOUT ? HERR_UNAVAIL : rc;
	}
	if (s.b.len == 0 || tlsfp_of_pem(s.b.p, s.b.len, gotfp) < 0) {
		buf_release(&s.b);
		return herr_set(err, HERR_FORBIDDEN, "server at %s sent no PEM certificate as its CA",
				c->base);
	}
	tlsfp_hex(gotfp, got);
	if (strcmp(got, want) != 0) {
		buf_release(&s.b);
		return herr_set(err, HERR_FORBIDDEN,
				"server at %s presents CA sha256 %s, not the pinned %s", c->base, got,
				want);
	}
	httpc_trust_ca_pem(c, s.b.p, s.b.len, false);
	buf_release(&s.b);
	return 0;
}

int
httpc_json_text(struct httpc *c, const char *method, const char *path, const char *body,
		long *status, json_t **resp, struct herr *err)
{
	struct hm_conn *k = hm_conn(c);
	struct sink s = { 0 };
	int rc;

	*resp = NULL;
	s.b = k->resp;          /* the connection's, kept between requests */
	buf_reset(&s.b);
	s.b.max = c->max_response ? c->max_response : 16u << 20;
	rc = hm_perform(c, method, path, "application/json", body, body ? strlen(body) : 0, &s,
			status, err);
	if (rc == 0 && s.b.len > 0)
		*resp = json_loadb(s.b.p, s.b.len, 0, NULL);
	hm_trim(&s.b);
	k->resp = s.b;
	return rc;
}

int
httpc_text(struct httpc *c, const char *method, const char *path, const char *body,
	   long *status, struct buf *resp, struct herr *err)
{
	return httpc_send(c, method, path, "application/json", body, body ? strlen(body) : 0,
			  status, resp, err);
}

int
httpc_send(struct httpc *c, const char *method, const char *path, const char *ctype,
	   const void *body, size_t len, long *status, struct buf *resp, struct herr *err)
{
	struct sink s = { 0 };
	int rc;

	s.b = *resp;
	rc = hm_perform(c, method, path, ctype, body, len, &s, status, err);
	*resp = s.b;
	return rc;
}

int
httpc_stream(struct httpc *c, const char *path, int (*cb)(const char *data, size_t n, void *arg),
	     void *arg, long *status, struct herr *err)
{
	struct sink s = { 0 };
	long saved = c->timeout_ms;
	int rc;

	s.cb = cb;
	s.arg = arg;
	c->timeout_ms = 24L * 3600 * 1000;
	rc = hm_perform(c, "GET", path, NULL, NULL, 0, &s, status, err);
	c->timeout_ms = saved;
	return rc;
}

char *
httpc_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s), i, o = 0;
	char *out = xmalloc(3 * n + 1);

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')
		    || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
	return out;
}
