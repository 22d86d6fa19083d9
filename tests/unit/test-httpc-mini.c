/* test-httpc-mini.c - herd-agent's HTTP client (src/hostbin/httpc-mini.c):
 * its pure pieces (URL bases, request heads with the body in the same
 * buffer, response heads, chunked bodies at every split, fingerprints,
 * escaping) and the client against a scripted HTTP server on
 * 127.0.0.1 in a thread: keep-alive reuse, the one retry when a reused idle
 * connection was closed (and none once an answer began), chunked and
 * Content-Length bodies, the response cap and the deadline.
 *
 * With --get BASE PATH [--pin FP | --cafile F | --ca-pem F | --insecure] it
 * is a client for e2e 0420's TLS cases against openssl s_server: prints
 * "status N" and the body, or "error: MESSAGE" (exit 1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "buf.h"
#include "httpc-mini.h"
#include "tlsfp.h"
#include "httpc.h"

/* ---- pure pieces ---- */

static void
test_url(void **state)
{
	struct hm_url u;

	assert_int_equal(hm_url_parse("http://127.0.0.1:7171", &u), 0);
	assert_false(u.tls);
	assert_string_equal(u.host, "127.0.0.1");
	assert_string_equal(u.port, "7171");
	assert_int_equal(hm_url_parse("https://herd.example", &u), 0);
	assert_true(u.tls);
	assert_string_equal(u.port, "443");
	assert_int_equal(hm_url_parse("http://[::1]:80/", &u), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(hm_url_parse("ftp://x", &u), -1);
	assert_int_equal(hm_url_parse("http://", &u), -1);
	assert_int_equal(hm_url_parse("http://h:0", &u), -1);
	assert_int_equal(hm_url_parse("http://h:99999", &u), -1);
	assert_int_equal(hm_url_parse("http://h:8a", &u), -1);
	assert_int_equal(hm_url_parse("http://[::1", &u), -1);
}

/* The request as one buffer: head and (small) body go out in one send, so
 * one TCP segment instead of two per push. */
static void
test_request(void **state)
{
	struct hm_url u;
	struct buf b;

	buf_init(&b, 1024);
	assert_int_equal(hm_url_parse("http://127.0.0.1:8080", &u), 0);
	assert_int_equal(hm_request_build(&b, "POST", "/v1/agent/metrics", &u,
					  "Authorization: Bearer t", "application/json",
					  "{\"x\":1}", 7, true), 0);
	assert_string_equal(b.p, "POST /v1/agent/metrics HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
			    "User-Agent: herd-agent\r\nAccept: */*\r\nAuthorization: Bearer t\r\n"
			    "Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"x\":1}");
	/* a body left out (too large to copy): the head still announces it */
	assert_int_equal(hm_request_build(&b, "POST", "/p", &u, "", "application/json", "{\"x\":1}", 7,
					  false), 0);
	assert_string_equal(b.p, "POST /p HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
			    "User-Agent: herd-agent\r\nAccept: */*\r\n"
			    "Content-Type: application/json\r\nContent-Length: 7\r\n\r\n");
	assert_int_equal(hm_url_parse("https://[::1]:443", &u), 0);
	assert_int_equal(hm_request_build(&b, "GET", "/v1/x", &u, "", NULL, NULL, 0, true), 0);
	assert_string_equal(b.p, "GET /v1/x HTTP/1.1\r\nHost: [::1]:443\r\n"
			    "User-Agent: herd-agent\r\nAccept: */*\r\n\r\n");
	assert_int_equal(hm_request_build(&b, "DELETE", "/v1/x", &u, "", NULL, NULL, 0, true), 0);
	assert_null(strstr(b.p, "Content-Length"));
	assert_int_equal(hm_request_build(&b, "PUT", "/v1/x", &u, "", NULL, NULL, 0, true), 0);
	assert_non_null(strstr(b.p, "\r\nContent-Length: 0\r\n\r\n"));
	/* a body of another type, with a NUL inside: sent by its length */
	assert_int_equal(hm_request_build(&b, "POST", "/p", &u, "", "application/x-protobuf",
					  "a\0b", 3, true), 0);
	assert_int_equal(b.len, strlen(b.p) + 3 - 1);
	assert_string_equal(b.p, "POST /p HTTP/1.1\r\nHost: [::1]:443\r\n"
			    "User-Agent: herd-agent\r\nAccept: */*\r\n"
			    "Content-Type: application/x-protobuf\r\nContent-Length: 3\r\n\r\na");
	assert_memory_equal(b.p + b.len - 3, "a\0b", 3);
	/* past the buffer's max: an error, not a cut request */
	b.max = 64;
	assert_int_equal(hm_request_build(&b, "GET", "/v1/x", &u, "", NULL, NULL, 0, true), HERR_TOOBIG);
	buf_release(&b);
}

static void
test_head(void **state)
{
	struct hm_head h;
	const char *a = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\ncontent-type: x\r\n\r\n";
	const char *b = "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: gzip, chunked\r\n"
			"Connection: close\r\n\r\n";
	const char *c = "HTTP/1.0 200 OK\n\n";
	const char *d = "HTTP/1.0 204 x\r\nConnection: keep-alive\r\n\r\n";

	assert_int_equal(hm_head_parse(a, strlen(a), &h), 0);
	assert_int_equal(h.status, 200);
	assert_int_equal(h.content_length, 12);
	assert_false(h.chunked);
	assert_false(h.close);
	assert_int_equal(hm_head_parse(b, strlen(b), &h), 0);
	assert_int_equal(h.status, 404);
	assert_true(h.chunked);
	assert_true(h.close);
	assert_int_equal(h.content_length, -1);
	assert_int_equal(hm_head_parse(c, strlen(c), &h), 0);
	assert_true(h.close);
	assert_int_equal(hm_head_parse(d, strlen(d), &h), 0);
	assert_false(h.close);
	assert_int_equal(hm_head_parse("HTTP/2 200\r\n\r\n", 14, &h), -1);
	assert_int_equal(hm_head_parse("HTTP/1.1 2x0 OK\r\n\r\n", 19, &h), -1);
	a = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
	assert_int_equal(hm_head_parse(a, strlen(a), &h), -1);
	a = "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n";
	assert_int_equal(hm_head_parse(a, strlen(a), &h), -1);
}

static int
chunk_out(void *arg, const char *p, size_t k)
{
	return buf_add(arg, p, k) < 0 ? 1 : 0;
}

/* Feeds body in pieces of `step` bytes: the decoded data, or NULL if bad. */
static char *
chunk_decode(const char *body, size_t step, size_t *used)
{
	struct hm_chunk ch = { 0 };
	struct buf b;
	size_t n = strlen(body), off = 0, k;
	bool done = false;
	long r;

	buf_init(&b, 1 << 20);
	while (off < n && !done) {
		k = n - off < step ? n - off : step;
		r = hm_chunk_feed(&ch, body + off, k, &done, chunk_out, &b);
		if (r < 0) {
			buf_release(&b);
			return NULL;
		}
		off += (size_t)r;
		if (!done && (size_t)r != k) {
			buf_release(&b);
			return NULL;
		}
	}
	*used = off;
	if (!done) {
		buf_release(&b);
		return NULL;
	}
	buf_add(&b, "", 0);
	return buf_steal(&b);
}

static void
test_chunked(void **state)
{
	const char *ok = "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\nNEXT";
	size_t step, used;
	char *got;

	for (step = 1; step <= strlen(ok); step++) {
		got = chunk_decode(ok, step, &used);
		assert_non_null(got);
		assert_string_equal(got, "Wikipedia in\r\n\r\nchunks.");
		assert_int_equal(used, strlen(ok) - 4); /* NEXT is the next answer's */
		free(got);
	}
	assert_null(chunk_decode("x\r\n", 1, &used));
	assert_null(chunk_decode("\r\n", 1, &used));
	assert_null(chunk_decode("2\r\nabX\r\n0\r\n\r\n", 3, &used));
	assert_null(chunk_decode("fffffffffffffffff\r\n", 4, &used));
	assert_null(chunk_decode("3\r\nab", 2, &used)); /* cut short: never done */
}

/* the certificate and fingerprint of test-tls.c: the two builds of
 * tlsfp_of_pem must agree */
static const char unit_pem[] =
	"junk before it is skipped\n"
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBcjCCARmgAwIBAgIUUquQfEd9N4ssjclyAHs+I2GZUD0wCgYIKoZIzj0EAwIw\n"
	"DzENMAsGA1UEAwwEdW5pdDAeFw0yNjEyMDQxNjM2NTBaFw0zNjEyMDExNjM2NTBa\n"
	"MA8xDTALBgNVBAMMBHVuaXQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQmlhh9\n"
	"3bqSm/gtXukufvybyRQZb5EZbmS/ougfi2/UGliXIxp3ZXxC8o7q11Vz5gKqaZmR\n"
	"Kat7jatpzslju6Wio1MwUTAdBgNVHQ4EFgQUla3AsQznykpfj9ocSFbDoHeR7kww\n"
	"HwYDVR0jBBgwFoAUla3AsQznykpfj9ocSFbDoHeR7kwwDwYDVR0TAQH/BAUwAwEB\n"
	"/zAKBggqhkjOPQQDAgNHADBEAiAemDkcQL7ZKZVBkiCJliia6F7zxiWqLZjMBqLQ\n"
	"AIH+kgIgIGp75NPjmvEPovuHDgIqbEpBXYaQZr0y73Jn7LOd0AQ=\n"
	"-----END CERTIFICATE-----\n";
static const char unit_fp[] =
	"BD:4B:D5:D2:21:D2:2C:C9:4E:73:61:D8:B0:CE:D8:04:49:1C:75:52:81:9C:66:71:E8:2E:D8:C8:30:C0:93:3B";

static void
test_fingerprint(void **state)
{
	unsigned char want[TLSFP_LEN], got[TLSFP_LEN];

	/* herd-agent's twin (crypto-mbed.c, mbedTLS) of tlsfp-pem.c */
	assert_int_equal(tlsfp_parse(unit_fp, want), 0);
	assert_int_equal(tlsfp_of_pem(unit_pem, strlen(unit_pem), got), 0);
	assert_memory_equal(want, got, TLSFP_LEN);
	assert_int_equal(tlsfp_of_pem("hello", 5, got), -1);
	assert_int_equal(tlsfp_of_pem(unit_pem, strlen(unit_pem) - 40, got), -1);
}

static void
esc_is(const char *in, const char *want)
{
	char *got = httpc_escape(in);

	assert_string_equal(got, want);
	free(got);
}

static void
test_escape(void **state)
{
	esc_is("", "");
	esc_is("AZaz09-._~", "AZaz09-._~");
	esc_is("a b/c?d&e=f#g%h+i", "a%20b%2Fc%3Fd%26e%3Df%23g%25h%2Bi");
	esc_is("\xc3\xa9\x01\x7f\xff", "%C3%A9%01%7F%FF");
}

/* ---- a scripted server ---- */

enum { KEEP, CLOSE, SILENT };

struct step {
	const char *resp;       /* sent after the request is read */
	int then;               /* KEEP the connection, CLOSE it, or SILENT: no answer */
};

struct srv {
	int lfd;
	int port;
	const struct step *steps;
	int nsteps;
	int accepts;
	char last[4096];        /* the last request read (head + body) */
	size_t lastlen;         /* its bytes (a binary body may hold NULs) */
	pthread_t th;
};

/* Reads one request into s->last: 1, or 0 at the end of the stream. */
static int
srv_read_req(struct srv *s, int fd)
{
	size_t n = 0;
	ssize_t r;
	char *e, *cl;
	size_t want;

	for (;;) {
		r = read(fd, s->last + n, sizeof(s->last) - 1 - n);
		if (r <= 0)
			return 0;
		n += (size_t)r;
		s->last[n] = '\0';
		if ((e = strstr(s->last, "\r\n\r\n")) == NULL)
			continue;
		cl = strstr(s->last, "Content-Length: ");
		want = (size_t)(e + 4 - s->last) + (cl ? strtoul(cl + 16, NULL, 10) : 0);
		if (n >= want) {
			s->lastlen = n;
			return 1;
		}
	}
}

static void *
srv_main(void *arg)
{
	struct srv *s = arg;
	int i = 0, fd = -1;
	char sink[256];

	while (i < s->nsteps) {
		if (fd < 0) {
			fd = accept(s->lfd, NULL, NULL);
			if (fd < 0)
				break;
			s->accepts++;
		}
		if (!srv_read_req(s, fd)) {
			close(fd);
			fd = -1;
			continue;
		}
		if (s->steps[i].then == SILENT) {
			while (read(fd, sink, sizeof(sink)) > 0)
				;
		} else if (write(fd, s->steps[i].resp, strlen(s->steps[i].resp)) < 0) {
			break;
		}
		if (s->steps[i].then != KEEP) {
			close(fd);
			fd = -1;
		}
		i++;
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void
srv_start(struct srv *s, const struct step *steps, int n)
{
	struct sockaddr_in a = { 0 };
	socklen_t al = sizeof(a);
	int one = 1;

	memset(s, 0, sizeof(*s));
	s->steps = steps;
	s->nsteps = n;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 8), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void
srv_stop(struct srv *s)
{
	shutdown(s->lfd, SHUT_RDWR);
	pthread_join(s->th, NULL);
	close(s->lfd);
}

static void
client(struct httpc *c, const struct srv *s)
{
	char base[64];

	snprintf(base, sizeof(base), "http://127.0.0.1:%d", s->port);
	httpc_init(c, base, "tok_1");
}

#define OK_JSON(body) "HTTP/1.1 200 OK\r\nContent-Length: " #body "\r\n\r\n"

static void
test_keepalive(void **state)
{
	static const struct step steps[] = {
		{ "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"a\":1}\n", KEEP },
		{ "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "3\r\n{\"b\r\n4\r\n\":2}\r\n0\r\n\r\n", KEEP },
	};
	struct herr err = HERR_INIT;
	struct httpc c;
	struct srv s;
	json_t *r, *body = json_pack("{s:s}", "x", "y");
	long st = 0;

	srv_start(&s, steps, 2);
	client(&c, &s);
	assert_int_equal(httpc_json(&c, "GET", "/v1/one", NULL, &st, &r, &err), 0);
	assert_int_equal(st, 200);
	assert_int_equal(json_integer_value(json_object_get(r, "a")), 1);
	json_decref(r);
	assert_int_equal(httpc_json(&c, "POST", "/v1/two", body, &st, &r, &err), 0);
	assert_int_equal(st, 201);
	assert_int_equal(json_integer_value(json_object_get(r, "b")), 2);
	json_decref(r);
	json_decref(body);
	httpc_release(&c);
	srv_stop(&s);
	assert_int_equal(s.accepts, 1);         /* one connection for both */
	assert_non_null(strstr(s.last, "POST /v1/two HTTP/1.1\r\n"));
	assert_non_null(strstr(s.last, "Authorization: Bearer tok_1\r\n"));
	assert_non_null(strstr(s.last, "Content-Length: 9\r\n"));
	assert_non_null(strstr(s.last, "\r\n\r\n{\"x\":\"y\"}"));
}

static void
test_retry_once_when_idle_closed(void **state)
{
	/* the server closes after its answer without saying so */
	static const struct step steps[] = {
		{ OK_JSON(2) "{}", CLOSE },
		{ OK_JSON(7) "{\"c\":3}", KEEP },
	};
	struct herr err = HERR_INIT;
	struct httpc c;
	struct srv s;
	json_t *r;
	long st = 0;

	srv_start(&s, steps, 2);
	client(&c, &s);
	assert_int_equal(httpc_json(&c, "GET", "/a", NULL, &st, &r, &err), 0);
	json_decref(r);
	usleep(50 * 1000); /* let the close arrive: either way the retry hides it */
	assert_int_equal(httpc_json(&c, "GET", "/b", NULL, &st, &r, &err), 0);
	assert_int_equal(json_integer_value(json_object_get(r, "c")), 3);
	json_decref(r);
	httpc_release(&c);
	srv_stop(&s);
	assert_int_equal(s.accepts, 2);
}

static void
test_no_retry_once_answered(void **state)
{
	/* the second answer starts, then the connection ends: not sent again */
	static const struct step steps[] = {
		{ OK_JSON(2) "{}", KEEP },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"partial", CLOSE },
		{ OK_JSON(2) "{}", KEEP },
	};
	struct herr err = HERR_INIT;
	struct httpc c;
	struct srv s;
	json_t *r;
	long st = 0;

	srv_start(&s, steps, 3);
	client(&c, &s);
	assert_int_equal(httpc_json(&c, "GET", "/a", NULL, &st, &r, &err), 0);
	json_decref(r);
	assert_int_equal(httpc_json(&c, "POST", "/once", NULL, &st, &r, &err), HERR_UNAVAIL);
	assert_null(r);
	assert_non_null(strstr(err.msg, "cut short"));
	/* the next request connects anew */
	assert_int_equal(httpc_json(&c, "GET", "/c", NULL, &st, &r, &err), 0);
	json_decref(r);
	httpc_release(&c);
	srv_stop(&s);
	assert_int_equal(s.accepts, 2);
	assert_non_null(strstr(s.last, "GET /c "));
}

static void
test_cap_and_deadline(void **state)
{
	static const struct step steps[] = {
		{ "HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n[0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8]", KEEP },
		{ "", SILENT },
	};
	struct herr err = HERR_INIT;
	struct httpc c;
	struct srv s;
	json_t *r;
	long st = 0;

	srv_start(&s, steps, 2);
	client(&c, &s);
	c.max_response = 16;
	assert_int_equal(httpc_json(&c, "GET", "/big", NULL, &st, &r, &err), HERR_TOOBIG);
	assert_null(r);
	c.timeout_ms = 200;
	assert_int_equal(httpc_json(&c, "GET", "/slow", NULL, &st, &r, &err), HERR_TIMEOUT);
	assert_non_null(strstr(err.msg, "in time"));
	httpc_release(&c);
	srv_stop(&s);
}

static int
collect(const char *data, size_t n, void *arg)
{
	buf_add(arg, data, n);
	return strstr(((struct buf *)arg)->p, "stop") != NULL;
}

static void
test_stream_and_until_close(void **state)
{
	static const struct step steps[] = {
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "3\r\nab \r\n5\r\nstop \r\n5\r\nnever\r\n0\r\n\r\n", KEEP },
		{ "HTTP/1.0 200 OK\r\n\r\n{\"till\":\"close\"}", CLOSE },
	};
	struct herr err = HERR_INIT;
	struct httpc c;
	struct srv s;
	struct buf b;
	json_t *r;
	long st = 0;

	srv_start(&s, steps, 2);
	client(&c, &s);
	buf_init(&b, 1024);
	assert_int_equal(httpc_stream(&c, "/follow", collect, &b, &st, &err), 0);
	assert_int_equal(st, 200);
	assert_string_equal(b.p, "ab stop ");
	buf_release(&b);
	assert_int_equal(httpc_json(&c, "GET", "/x", NULL, &st, &r, &err), 0);
	assert_string_equal(json_string_value(json_object_get(r, "till")), "close");
	json_decref(r);
	httpc_release(&c);
	srv_stop(&s);
	assert_int_equal(s.accepts, 2); /* a stopped stream's connection is not reused */
}

/* httpc_send: a binary body of its own type, NULs and all; the answer's
 * bytes as they came. A content type that would add a header is refused. */
static void
test_send_binary(void **state)
{
	static const struct step steps[] = {
		{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", KEEP },
	};
	static const char body[] = { 0x0a, 0x00, 0x12, 0x00, 0x7f };
	struct herr err = HERR_INIT;
	struct httpc c;
	struct srv s;
	struct buf b;
	long st = 0;

	srv_start(&s, steps, 1);
	client(&c, &s);
	buf_init(&b, 1024);
	assert_int_equal(httpc_send(&c, "POST", "/v1/agent/metrics", "evil\r\nX-A: b", body,
				    sizeof(body), &st, &b, &err), HERR_INVALID);
	assert_int_equal(httpc_send(&c, "POST", "/v1/agent/metrics", "application/x-protobuf", body,
				    sizeof(body), &st, &b, &err), 0);
	assert_int_equal(st, 200);
	assert_int_equal(b.len, 2);
	assert_memory_equal(b.p, "ok", 2);
	buf_release(&b);
	httpc_release(&c);
	srv_stop(&s);
	assert_non_null(strstr(s.last, "Content-Type: application/x-protobuf\r\n"));
	assert_non_null(strstr(s.last, "Content-Length: 5\r\n\r\n"));
	assert_null(strstr(s.last, "X-A"));
	assert_true(s.lastlen >= sizeof(body));
	assert_memory_equal(s.last + s.lastlen - sizeof(body), body, sizeof(body));
}

static void
test_refused(void **state)
{
	struct herr err = HERR_INIT;
	struct httpc c;
	json_t *r;
	long st = 0;

	httpc_init(&c, "http://127.0.0.1:1", NULL);
	assert_int_equal(httpc_json(&c, "GET", "/", NULL, &st, &r, &err), HERR_UNAVAIL);
	assert_non_null(strstr(err.msg, "cannot reach herd server at http://127.0.0.1:1"));
	httpc_release(&c);
	httpc_init(&c, "gopher://x", NULL);
	assert_int_equal(httpc_json(&c, "GET", "/", NULL, &st, &r, &err), HERR_INVALID);
	httpc_release(&c);
}

/* ---- --get: a client for e2e 0420 ---- */

static int
get_main(int argc, char **argv)
{
	struct herr err = HERR_INIT;
	struct httpc c;
	json_t *r = NULL;
	long st = 0;
	int i, rc = 0;

	httpc_init(&c, argv[2], NULL);
	for (i = 4; i + 1 < argc || (i < argc && strcmp(argv[i], "--insecure") == 0); i += 2) {
		if (strcmp(argv[i], "--insecure") == 0) {
			httpc_insecure(&c);
			i--;
		} else if (strcmp(argv[i], "--cafile") == 0) {
			httpc_trust_cafile(&c, argv[i + 1]);
		} else if (strcmp(argv[i], "--ca-pem") == 0) {
			FILE *f = fopen(argv[i + 1], "r");
			char pem[16384];
			size_t n = f ? fread(pem, 1, sizeof(pem), f) : 0;

			if (f)
				fclose(f);
			httpc_trust_ca_pem(&c, pem, n, false);
		} else if (strcmp(argv[i], "--pin") == 0) {
			rc = httpc_pin_ca(&c, argv[i + 1], &err);
		}
	}
	if (rc == 0)
		rc = httpc_json(&c, "GET", argv[3], NULL, &st, &r, &err);
	if (rc != 0) {
		printf("error: %s\n", err.msg);
		httpc_release(&c);
		return 1;
	}
	printf("status %ld\n", st);
	if (r)
		json_dumpf(r, stdout, JSON_COMPACT);
	printf("\n");
	json_decref(r);
	httpc_release(&c);
	return 0;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_head),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_retry_once_when_idle_closed),
		cmocka_unit_test(test_no_retry_once_answered),
		cmocka_unit_test(test_cap_and_deadline),
		cmocka_unit_test(test_stream_and_until_close),
		cmocka_unit_test(test_send_binary),
		cmocka_unit_test(test_refused),
	};

	if (argc >= 4 && strcmp(argv[1], "--get") == 0)
		return get_main(argc, argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
