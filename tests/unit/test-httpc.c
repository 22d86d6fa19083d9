/* test-httpc.c - the libcurl client (httpc.c): the CLI's URL escaping
 * (httpc_escape, curl_easy_escape underneath): names and query values keep
 * only RFC 3986's unreserved characters, everything else becomes %XX with
 * upper-case hex, byte by byte; and httpc_send's binary body with its own
 * content type, against a one-request server on 127.0.0.1 in a thread. */
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

#include "httpc.h"

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
	esc_is("node-1", "node-1");
	esc_is("AZaz09-._~", "AZaz09-._~");
	esc_is("a b/c?d&e=f#g%h+i", "a%20b%2Fc%3Fd%26e%3Df%23g%25h%2Bi");
	esc_is("demo/node", "demo%2Fnode");
	esc_is("\xc3\xa9\x01\x7f\xff", "%C3%A9%01%7F%FF");
	esc_is("..", "..");
}

/* One request read whole (head + Content-Length bytes), one answer. */
struct srv {
	int lfd, port;
	char req[4096];
	size_t len;
	pthread_t th;
};

static void *
srv_main(void *arg)
{
	static const char ans[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
	struct srv *s = arg;
	int fd = accept(s->lfd, NULL, NULL);
	char *e, *cl;
	ssize_t r;

	if (fd < 0)
		return NULL;
	while (s->len < sizeof(s->req) - 1 &&
	       (r = read(fd, s->req + s->len, sizeof(s->req) - 1 - s->len)) > 0) {
		s->len += (size_t)r;
		s->req[s->len] = '\0';
		if ((e = strstr(s->req, "\r\n\r\n")) == NULL)
			continue;
		cl = strcasestr(s->req, "Content-Length: ");
		if (s->len >= (size_t)(e + 4 - s->req) + (cl ? strtoul(cl + 16, NULL, 10) : 0))
			break;
	}
	if (write(fd, ans, sizeof(ans) - 1) < 0)
		s->len = 0;
	close(fd);
	return NULL;
}

static void
test_send_binary(void **state)
{
	static const char body[] = { 0x0a, 0x00, 0x12, 0x00, 0x7f };
	struct sockaddr_in a = { 0 };
	socklen_t al = sizeof(a);
	struct herr err = HERR_INIT;
	struct httpc c;
	struct srv s = { 0 };
	struct buf b;
	char base[64];
	long st = 0;

	s.lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s.lfd >= 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s.lfd, 4), 0);
	assert_int_equal(getsockname(s.lfd, (struct sockaddr *)&a, &al), 0);
	assert_int_equal(pthread_create(&s.th, NULL, srv_main, &s), 0);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", ntohs(a.sin_port));
	httpc_init(&c, base, "tok_1");
	buf_init(&b, 1024);
	/* a content type that would add a header: refused, nothing sent */
	assert_int_equal(httpc_send(&c, "POST", "/v1/agent/metrics", "x\r\nX-A: b", body,
				    sizeof(body), &st, &b, &err), HERR_INVALID);
	assert_int_equal(httpc_send(&c, "POST", "/v1/agent/metrics", "application/x-protobuf", body,
				    sizeof(body), &st, &b, &err), 0);
	assert_int_equal(st, 200);
	assert_int_equal(b.len, 2);
	assert_memory_equal(b.p, "ok", 2);
	buf_release(&b);
	httpc_release(&c);
	pthread_join(s.th, NULL);
	close(s.lfd);
	assert_non_null(strstr(s.req, "POST /v1/agent/metrics HTTP/1.1\r\n"));
	assert_non_null(strstr(s.req, "Content-Type: application/x-protobuf\r\n"));
	assert_non_null(strstr(s.req, "Content-Length: 5\r\n"));
	assert_null(strstr(s.req, "X-A"));
	assert_true(s.len >= sizeof(body));
	assert_memory_equal(s.req + s.len - sizeof(body), body, sizeof(body));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_send_binary),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
