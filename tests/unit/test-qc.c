/* test-qc.c - the QingCloud API client (src/server/prov/qc.c): the signature
 * against both published vectors, the canonical query, flattening, backoff,
 * ret_code mapping and DescribeJobs parsing as pure functions; then qc_call
 * and qc_job_wait against a plain HTTP server in a thread that answers
 * canned bytes (no fake QingCloud: it checks nothing, it only records the
 * request lines it got). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "prov/qc.h"
#include "util.h"

/* 2013-08-27T14:30:10Z, the time of both examples, plus 999 ms that the
 * time_stamp must drop */
#define EXAMPLE_TS_MS (1377613810LL * 1000 + 999)

/* The RunInstances example's own parameters, as a caller passes them. */
static json_t *
example_params(void)
{
	return json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:[s]}", "count", 1, "image_id",
			 "centos64x86a", "instance_name", "demo", "instance_type", "small_b",
			 "login_mode", "passwd", "login_passwd", "QingCloud20130712", "vxnets",
			 "vxnet-0");
}

static void
sign_example(const char *zone, char **query, char sig[QC_SIGNATURE_LEN])
{
	struct herr err = HERR_INIT;
	json_t *flat = json_object(), *p = example_params();

	assert_int_equal(qc_flatten(p, flat, &err), 0);
	qc_add_common(flat, "RunInstances", zone, "QYACCESSKEYIDEXAMPLE", EXAMPLE_TS_MS);
	*query = qc_canonical_query(flat, &err);
	assert_non_null(*query);
	qc_sign("GET", "/iaas/", *query, (const unsigned char *)"SECRETACCESSKEY", 15, sig);
	json_decref(flat);
	json_decref(p);
}

/* yunify/qingcloud-sdk-go request/signer_test.go TestSigner1: the URL
 * https://api.qc.dev/iaas/?...&zone=pek1, keys QYACCESSKEYIDEXAMPLE /
 * SECRETACCESSKEY, time 2013-08-27T14:30:10Z. */
static void
test_sign_sdk_vector(void **state)
{
	char sig[QC_SIGNATURE_LEN], *q;

	sign_example("pek1", &q, sig);
	assert_string_equal(
		q, "access_key_id=QYACCESSKEYIDEXAMPLE&action=RunInstances&count=1"
		   "&image_id=centos64x86a&instance_name=demo&instance_type=small_b"
		   "&login_mode=passwd&login_passwd=QingCloud20130712"
		   "&signature_method=HmacSHA256&signature_version=1"
		   "&time_stamp=2013-08-27T14%3A30%3A10Z&version=1&vxnets.1=vxnet-0&zone=pek1");
	assert_string_equal(sig, "32bseYy39DOlatuewpeuW5vpmW51sD1A/JdGynqSpP8=");
	free(q);
}

/* yunify/qingcloud-docs content/development_docs/api/signature.md: the same
 * request in zone pek3a, GET /iaas/. */
static void
test_sign_docs_vector(void **state)
{
	char sig[QC_SIGNATURE_LEN], *q, *esig;

	sign_example("pek3a", &q, sig);
	assert_string_equal(sig, "byjccvWIvAftaq+oublemagH3bYAlDWxxLFAzAsyslw=");
	/* sent URL-encoded, as the page's final URL shows */
	esig = qc_escape(sig);
	assert_string_equal(esig, "byjccvWIvAftaq%2BoublemagH3bYAlDWxxLFAzAsyslw%3D");
	free(esig);
	/* and any change to the signed text changes it */
	qc_sign("POST", "/iaas/", q, (const unsigned char *)"SECRETACCESSKEY", 15, sig);
	assert_string_not_equal(sig, "byjccvWIvAftaq+oublemagH3bYAlDWxxLFAzAsyslw=");
	free(q);
}

static void
esc_is(const char *in, const char *want)
{
	char *got = qc_escape(in);

	assert_string_equal(got, want);
	free(got);
}

static void
test_escape(void **state)
{
	esc_is("", "");
	esc_is("AZaz09-._~", "AZaz09-._~");
	/* space is %20, never '+'; '+' itself is %2B; hex upper case */
	esc_is("a b+c", "a%20b%2Bc");
	esc_is("2013-08-27T14:30:10Z", "2013-08-27T14%3A30%3A10Z");
	esc_is("/=&?#%*'!", "%2F%3D%26%3F%23%25%2A%27%21");
	esc_is("\xe4\xb8\xad\x01\x7f\xff", "%E4%B8%AD%01%7F%FF");
}

static void
test_canonical_order(void **state)
{
	struct herr err = HERR_INIT;
	json_t *flat = json_pack("{s:s, s:s, s:s, s:s, s:s}", "b", "x y", "a.2", "2", "a.10", "10",
				 "_", "u", "A", "+");
	char *q = qc_canonical_query(flat, &err);

	/* byte order: 'A' (65) < '_' (95) < 'a' (97); "a.10" < "a.2" */
	assert_string_equal(q, "A=%2B&_=u&a.10=10&a.2=2&b=x%20y");
	free(q);
	json_object_set_new(flat, "n", json_integer(1));
	assert_null(qc_canonical_query(flat, &err));
	assert_int_equal(err.code, HERR_INVALID);
	assert_string_equal(err.field, "n");
	json_decref(flat);
	flat = json_object();
	q = qc_canonical_query(flat, &err);
	assert_string_equal(q, "");
	free(q);
	json_decref(flat);
}

static void
test_flatten(void **state)
{
	struct herr err = HERR_INIT;
	json_t *p =
		json_pack("{s:[{s:s, s:i, s:[i,i]}, {s:s}], s:b, s:b, s:[s,s], s:I}", "backends",
			  "resource_id", "i-1", "port", 80, "weight", 1, 2, "resource_id", "i-2",
			  "on", 1, "off", 0, "tags", "t1", "t2", "big", (json_int_t)1 << 40);
	json_t *flat = json_object();

	assert_int_equal(qc_flatten(p, flat, &err), 0);
	assert_int_equal(json_object_size(flat), 9);
	assert_string_equal(json_string_value(json_object_get(flat, "backends.1.resource_id")),
			    "i-1");
	assert_string_equal(json_string_value(json_object_get(flat, "backends.1.port")), "80");
	assert_string_equal(json_string_value(json_object_get(flat, "backends.1.weight")), "1,2");
	assert_string_equal(json_string_value(json_object_get(flat, "backends.2.resource_id")),
			    "i-2");
	assert_string_equal(json_string_value(json_object_get(flat, "on")), "1");
	assert_string_equal(json_string_value(json_object_get(flat, "off")), "0");
	assert_string_equal(json_string_value(json_object_get(flat, "tags.2")), "t2");
	assert_string_equal(json_string_value(json_object_get(flat, "big")), "1099511627776");
	json_decref(p);
	json_decref(flat);

	/* refused, naming the parameter */
	static const char *const bad[] = { "{\"cpu\": 1.5}",          "{\"image\": null}",
					   "{\"o\": {\"a\": \"b\"}}", "{\"x\": [[[\"deep\"]]]}",
					   "{\"\": \"empty name\"}",  "{\"l\": [{\"k\": null}]}" };
	static const char *const field[] = { "cpu", "image", "o", "x.1", "", "l.1.k" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		herr_clear(&err);
		p = json_loads(bad[i], 0, NULL);
		flat = json_object();
		assert_non_null(p);
		assert_int_equal(qc_flatten(p, flat, &err), HERR_INVALID);
		assert_string_equal(err.field, field[i]);
		json_decref(p);
		json_decref(flat);
	}
}

static void
test_common_params(void **state)
{
	json_t *flat = json_pack("{s:s}", "zone", "sh1a");
	char ts[QC_TIME_STAMP_LEN];

	qc_add_common(flat, "DescribeZones", "pek3a", "AK", 0);
	/* an explicit zone stays */
	assert_string_equal(json_string_value(json_object_get(flat, "zone")), "sh1a");
	assert_string_equal(json_string_value(json_object_get(flat, "time_stamp")),
			    "1970-01-01T00:00:00Z");
	assert_string_equal(json_string_value(json_object_get(flat, "signature_version")), "1");
	assert_string_equal(json_string_value(json_object_get(flat, "version")), "1");
	assert_int_equal(json_object_size(flat), 7);
	json_decref(flat);
	assert_string_equal(qc_time_stamp(EXAMPLE_TS_MS, ts), "2013-08-27T14:30:10Z");
	assert_string_equal(qc_time_stamp(951782400000LL, ts), "2000-02-29T00:00:00Z");
}

static void
test_backoff(void **state)
{
	/* the pick spans [0, min(cap, base * 2^attempt)] */
	assert_int_equal(qc_backoff_ms(0, 100, 1000, 0), 0);
	assert_int_equal(qc_backoff_ms(0, 100, 1000, UINT32_MAX), 100);
	assert_int_equal(qc_backoff_ms(1, 100, 1000, UINT32_MAX), 200);
	assert_int_equal(qc_backoff_ms(3, 100, 1000, UINT32_MAX), 800);
	assert_int_equal(qc_backoff_ms(4, 100, 1000, UINT32_MAX), 1000);
	assert_int_equal(qc_backoff_ms(2, 100, 1000, 1u << 31), 200);
	/* saturates: huge attempts and bases never overflow */
	assert_int_equal(qc_backoff_ms(1000000, 100, 1000, UINT32_MAX), 1000);
	assert_int_equal(qc_backoff_ms(INT32_MAX, 100, 1000, UINT32_MAX), 1000);
	assert_int_equal(qc_backoff_ms(62, INT64_MAX / 2, INT64_MAX, UINT32_MAX),
			 (int64_t)UINT32_MAX - 1);
	assert_true(qc_backoff_ms(5, INT64_MAX, INT64_MAX, 12345) >= 0);
	/* nothing to wait */
	assert_int_equal(qc_backoff_ms(3, 0, 1000, UINT32_MAX), 0);
	assert_int_equal(qc_backoff_ms(3, -5, 1000, UINT32_MAX), 0);
	assert_int_equal(qc_backoff_ms(-1, 100, 1000, UINT32_MAX), 100);
	/* spread: 1000 draws over [0, 800] are not all the same */
	int64_t lo = INT64_MAX, hi = -1;
	for (uint32_t i = 0; i < 1000; i++) {
		int64_t d = qc_backoff_ms(3, 100, 1000, i * 4294967u);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	assert_true(lo <= 10);
	assert_true(hi >= 790 && hi <= 800);
}

static void
test_endpoint_path(void **state)
{
	struct herr err = HERR_INIT;
	char p[64];

	assert_int_equal(qc_endpoint_path(QC_ENDPOINT_DEFAULT, p, sizeof(p), &err), 0);
	assert_string_equal(p, "/iaas/");
	assert_int_equal(qc_endpoint_path("http://127.0.0.1:7300", p, sizeof(p), &err), 0);
	assert_string_equal(p, "/");
	assert_int_equal(qc_endpoint_path("http://h:1/a/b", p, sizeof(p), &err), 0);
	assert_string_equal(p, "/a/b");
	static const char *const bad[] = { "ftp://h/iaas/",       "api.qingcloud.com/iaas/",
					   "https://h/iaas/?x=1", "https://h/#f",
					   "https:///iaas/",      "https://",
					   "https://h/ a" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		herr_clear(&err);
		assert_int_equal(qc_endpoint_path(bad[i], p, sizeof(p), &err), HERR_INVALID);
		assert_string_equal(err.field, "endpoint");
	}
}

static void
test_ret_codes(void **state)
{
	static const struct {
		int ret, code;
		const char *words;
		bool retry;
	} t[] = {
		{ 0, 0, "ok", false },
		{ 1100, HERR_INVALID, "bad parameters", false },
		{ 1200, HERR_AUTH, "access key or signature rejected", false },
		{ 1300, HERR_AUTH, "request expired: check this server's clock", false },
		{ 1400, HERR_FORBIDDEN, "permission denied", false },
		{ 2100, HERR_NOTFOUND, "resource not found", false },
		{ 2400, HERR_FORBIDDEN, "balance not enough", false },
		{ 2500, QC_ERR_QUOTA, "quota exceeded", false },
		{ 5000, HERR_UNAVAIL, "internal error", true },
		{ 5100, HERR_UNAVAIL, "server busy", true },
		{ 5200, HERR_UNAVAIL, "not enough resources in the zone", false },
		{ 4242, HERR_UNAVAIL, "error", false },
	};
	const char *words;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(qc_ret_code_map(t[i].ret, &words), t[i].code);
		assert_string_equal(words, t[i].words);
		assert_int_equal(qc_ret_code_retryable(t[i].ret), t[i].retry);
	}
	/* the quota code is told apart from every herr code */
	assert_true(QC_ERR_QUOTA != HERR_UNAVAIL && QC_ERR_QUOTA != HERR_FORBIDDEN &&
		    QC_ERR_QUOTA < 0);
}

/* The example answer on api/command_list/job/describe_jobs.md. */
static const char docs_jobs[] =
	"{\"action\":\"DescribeJobsResponse\",\"total_count\":1,\"job_set\":[{"
	"\"job_id\":\"j-37amqany\",\"create_time\":\"2013-08-07T18:16:32Z\","
	"\"resource_ids\":\"eip-1234abcd\",\"owner\":\"usr-1234abcd\",\"error_codes\":\"\","
	"\"status\":\"successful\",\"status_time\":\"2013-08-17T08:16:33Z\"}],\"ret_code\":0}";

static void
job_is(const char *status, enum qc_job_state want)
{
	struct herr err = HERR_INIT;
	json_t *r =
		json_pack("{s:[{s:s, s:s}, {s:s, s:s}], s:i}", "job_set", "job_id", "j-other",
			  "status", "pending", "job_id", "j-1", "status", status, "ret_code", 0);
	enum qc_job_state st = QC_JOB_PENDING;
	char word[8];

	assert_int_equal(qc_job_state_parse(r, "j-1", &st, word, sizeof(word), &err), 0);
	assert_int_equal(st, want);
	assert_true(strncmp(word, status, sizeof(word) - 1) == 0);
	json_decref(r);
}

static void
test_job_parse(void **state)
{
	struct herr err = HERR_INIT;
	enum qc_job_state st = QC_JOB_PENDING;
	char word[32];
	json_t *r = json_loads(docs_jobs, 0, NULL);

	assert_non_null(r);
	assert_int_equal(qc_job_state_parse(r, "j-37amqany", &st, word, sizeof(word), &err), 0);
	assert_int_equal(st, QC_JOB_SUCCESSFUL);
	assert_string_equal(word, "successful");
	assert_int_equal(qc_job_state_parse(r, "j-nothere", &st, word, sizeof(word), &err),
			 HERR_NOTFOUND);
	json_decref(r);
	job_is("pending", QC_JOB_PENDING);
	job_is("working", QC_JOB_WORKING);
	job_is("failed", QC_JOB_FAILED);
	job_is("done with failure", QC_JOB_FAILED); /* word truncated to 7 bytes */
	job_is("successful", QC_JOB_SUCCESSFUL);
	r = json_pack("{s:i}", "ret_code", 0);
	assert_int_equal(qc_job_state_parse(r, "j-1", &st, NULL, 0, &err), HERR_INVALID);
	json_decref(r);
	r = json_pack("{s:[{s:s}]}", "job_set", "job_id", "j-1");
	assert_int_equal(qc_job_state_parse(r, "j-1", &st, NULL, 0, &err), HERR_INVALID);
	json_decref(r);
}

/* ---- transport: a plain HTTP server answering canned bytes ---- */

#define SRV_MAX 8

struct srv {
	int fd;
	int port;
	int n_answers;
	const char *answers[SRV_MAX]; /* JSON bodies, in order; NULL = huge body */
	int got;                      /* connections served */
	char lines[SRV_MAX][4096];    /* request lines seen */
	char bodies[SRV_MAX][4096];   /* request bodies seen (POST) */
	pthread_t th;
};

static void
srv_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void *
srv_main(void *arg)
{
	struct srv *s = arg;

	for (int i = 0; i < s->n_answers; i++) {
		char req[16384], hdr[256];
		size_t n = 0;
		int c = accept(s->fd, NULL, NULL);

		if (c < 0)
			return NULL;
		while (n < sizeof(req) - 1) {
			ssize_t r = read(c, req + n, sizeof(req) - 1 - n);

			if (r <= 0)
				break;
			n += (size_t)r;
			req[n] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		req[n] = '\0';
		/* the body, if any, up to Content-Length */
		const char *cl = strcasestr(req, "\r\nContent-Length: ");
		const char *eoh = strstr(req, "\r\n\r\n");
		if (cl && eoh) {
			size_t want = strtoul(cl + 18, NULL, 10) + (size_t)(eoh + 4 - req);

			while (n < want && n < sizeof(req) - 1) {
				ssize_t r = read(c, req + n, sizeof(req) - 1 - n);

				if (r <= 0)
					break;
				n += (size_t)r;
			}
			req[n] = '\0';
			eoh = strstr(req, "\r\n\r\n");
			snprintf(s->bodies[i], sizeof(s->bodies[i]), "%s", eoh + 4);
		}
		snprintf(s->lines[i], sizeof(s->lines[i]), "%.*s", (int)strcspn(req, "\r"), req);
		if (s->answers[i]) {
			snprintf(hdr, sizeof(hdr),
				 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
				 strlen(s->answers[i]));
			srv_write_all(c, hdr, strlen(hdr));
			srv_write_all(c, s->answers[i], strlen(s->answers[i]));
		} else {
			static char chunk[65536];
			size_t total = QC_RESPONSE_MAX_BYTES + sizeof(chunk);

			memset(chunk, ' ', sizeof(chunk));
			snprintf(
				hdr, sizeof(hdr),
				"HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
				total);
			srv_write_all(c, hdr, strlen(hdr));
			for (size_t sent = 0; sent < total; sent += sizeof(chunk))
				srv_write_all(c, chunk, sizeof(chunk));
		}
		close(c);
		s->got = i + 1;
	}
	return NULL;
}

static void
srv_start(struct srv *s, int n, ...)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	va_list ap;

	memset(s, 0, sizeof(*s));
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		s->answers[i] = va_arg(ap, const char *);
	va_end(ap);
	s->n_answers = n;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->fd, 8), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void
srv_stop(struct srv *s)
{
	/* unblocks a pending accept() when fewer calls came than answers */
	shutdown(s->fd, SHUT_RDWR);
	pthread_join(s->th, NULL);
	close(s->fd);
}

struct fixture {
	char dir[64];
	char secret[96];
};

static int
fx_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/test-qc.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->secret, sizeof(f->secret), "%s/secret", f->dir);
	if (file_write_atomic(f->secret, "SECRETACCESSKEY\n", 16, 0600) < 0)
		return -1;
	*state = f;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->secret);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Points c at a new server's port. */
static void
retarget(struct qc_client *c, int port)
{
	snprintf(c->endpoint, sizeof(c->endpoint), "http://127.0.0.1:%d/iaas/", port);
}

static void
client_for(struct qc_client *c, const struct fixture *f, int port)
{
	struct herr err = HERR_INIT;
	char ep[64];

	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d/iaas/", port);
	assert_int_equal(qc_client_init(c, ep, "pek3a", "AK", f->secret, &err), 0);
	c->backoff_base_ms = 1;
	c->backoff_cap_ms = 5;
	c->timeout_ms = 20000;
}

static const char ok_zones[] = "{\"action\":\"DescribeZonesResponse\",\"ret_code\":0}";
static const char busy[] = "{\"ret_code\":5100,\"message\":\"ServerBusy\"}";

static void
test_call_signed_get(void **state)
{
	struct fixture *f = *state;
	struct herr err = HERR_INIT;
	struct qc_client c;
	struct srv s;
	json_t *resp = NULL, *p = json_pack("{s:[s]}", "zones", "pek3a");
	char sig[QC_SIGNATURE_LEN], *esig, *query, *at;

	srv_start(&s, 1, ok_zones);
	client_for(&c, f, s.port);
	assert_int_equal(qc_call(&c, "DescribeZones", p, 0, &resp, &err), 0);
	srv_stop(&s);
	assert_string_equal(json_string_value(json_object_get(resp, "action")),
			    "DescribeZonesResponse");
	assert_int_equal(c.last.ret_code, 0);
	assert_int_equal(c.last.attempts, 1);
	/* GET /iaas/?<canonical query>&signature=<escaped> HTTP/1.1 */
	assert_true(strncmp(s.lines[0], "GET /iaas/?access_key_id=AK&action=DescribeZones&", 49) ==
		    0);
	/* "zone" sorts before "zones.1" */
	assert_non_null(strstr(s.lines[0], "&zone=pek3a&zones.1=pek3a&signature="));
	query = strdup(s.lines[0] + strlen("GET /iaas/?"));
	at = strstr(query, "&signature=");
	*at = '\0';
	*strchr(at + 1, ' ') = '\0';
	/* the signature sent is the one of the query sent */
	qc_sign("GET", "/iaas/", query, (const unsigned char *)"SECRETACCESSKEY", 15, sig);
	esig = qc_escape(sig);
	assert_string_equal(at + strlen("&signature="), esig);
	free(esig);
	free(query);
	json_decref(resp);
	json_decref(p);
	qc_client_release(&c);
}

static void
test_call_signed_post(void **state)
{
	struct fixture *f = *state;
	struct herr err = HERR_INIT;
	struct qc_client c;
	struct srv s;
	json_t *resp = NULL, *p = json_pack("{s:s}", "user_data_value", "a b+c/d");
	char sig[QC_SIGNATURE_LEN], *esig, *at;

	srv_start(&s, 1, ok_zones);
	client_for(&c, f, s.port);
	assert_int_equal(qc_call(&c, "RunInstances", p, QC_POST, &resp, &err), 0);
	srv_stop(&s);
	/* no parameter in the URL: all of them in the form body, signed "POST" */
	assert_string_equal(s.lines[0], "POST /iaas/ HTTP/1.1");
	assert_non_null(strstr(s.bodies[0], "&user_data_value=a%20b%2Bc%2Fd&"));
	at = strstr(s.bodies[0], "&signature=");
	assert_non_null(at);
	*at = '\0';
	qc_sign("POST", "/iaas/", s.bodies[0], (const unsigned char *)"SECRETACCESSKEY", 15, sig);
	esig = qc_escape(sig);
	assert_string_equal(at + strlen("&signature="), esig);
	free(esig);
	json_decref(resp);
	json_decref(p);
	qc_client_release(&c);
}

static void
test_call_retries(void **state)
{
	struct fixture *f = *state;
	struct herr err = HERR_INIT;
	struct qc_client c;
	struct srv s;
	json_t *resp = NULL;

	/* idempotent: 5100 then 5000 are retried, then it succeeds */
	srv_start(&s, 3, busy, "{\"ret_code\":5000,\"message\":\"x\"}", ok_zones);
	client_for(&c, f, s.port);
	assert_int_equal(qc_call(&c, "DescribeZones", NULL, QC_IDEMPOTENT, &resp, &err), 0);
	srv_stop(&s);
	assert_int_equal(s.got, 3);
	assert_int_equal(c.last.attempts, 3);
	json_decref(resp);

	/* idempotent, busy every time: gives up after max_attempts */
	c.max_attempts = 2;
	srv_start(&s, 2, busy, busy);
	retarget(&c, s.port);
	assert_int_equal(qc_call(&c, "DescribeZones", NULL, QC_IDEMPOTENT, &resp, &err),
			 HERR_UNAVAIL);
	srv_stop(&s);
	assert_null(resp);
	assert_int_equal(c.last.attempts, 2);
	assert_int_equal(c.last.ret_code, 5100);
	assert_string_equal(c.last.message, "ServerBusy");
	assert_non_null(strstr(err.msg, "QingCloud 5100: server busy: ServerBusy (2 attempts)"));

	/* not idempotent: a 5100 leaves the outcome unknown, never resent */
	c.max_attempts = 4;
	srv_start(&s, 2, busy, ok_zones);
	retarget(&c, s.port);
	assert_int_equal(qc_call(&c, "RunInstances", NULL, 0, &resp, &err), HERR_UNAVAIL);
	srv_stop(&s);
	assert_int_equal(s.got, 1);
	assert_true(c.last.outcome_unknown);
	assert_non_null(strstr(err.msg, "RunInstances: outcome unknown"));
	/* QingCloud's answer is kept whole inside (the message was once
	 * formatted into itself and came out garbled) */
	assert_non_null(strstr(err.msg, "(QingCloud 5100: server busy: ServerBusy)"));
	qc_client_release(&c);
}

static void
test_call_errors(void **state)
{
	struct fixture *f = *state;
	struct herr err = HERR_INIT;
	struct qc_client c;
	struct srv s;
	json_t *resp = NULL;

	/* 1xxx and 2xxx are final even for idempotent calls */
	srv_start(&s, 2, "{\"ret_code\":1200,\"message\":\"AuthFailure, bad sig\"}",
		  "{\"ret_code\":2500,\"message\":\"QuotaExceeded, instance\"}");
	client_for(&c, f, s.port);
	assert_int_equal(qc_call(&c, "DescribeZones", NULL, QC_IDEMPOTENT, &resp, &err), HERR_AUTH);
	assert_string_equal(
		err.msg, "QingCloud 1200: access key or signature rejected: AuthFailure, bad sig");
	assert_int_equal(c.last.attempts, 1);
	assert_int_equal(qc_call(&c, "RunInstances", NULL, 0, &resp, &err), QC_ERR_QUOTA);
	assert_int_equal(c.last.ret_code, 2500);
	assert_false(c.last.outcome_unknown);
	assert_string_equal(err.msg, "QingCloud 2500: quota exceeded: QuotaExceeded, instance");
	srv_stop(&s);

	/* an answer over the limit is refused, not buffered */
	srv_start(&s, 1, NULL);
	retarget(&c, s.port);
	assert_int_equal(qc_call(&c, "DescribeInstances", NULL, QC_IDEMPOTENT, &resp, &err),
			 HERR_TOOBIG);
	srv_stop(&s);
	assert_null(resp);

	/* not JSON */
	srv_start(&s, 1, "<html>proxy</html>");
	retarget(&c, s.port);
	assert_int_equal(qc_call(&c, "DescribeZones", NULL, QC_IDEMPOTENT, &resp, &err),
			 HERR_UNAVAIL);
	assert_non_null(strstr(err.msg, "not JSON with a ret_code"));
	srv_stop(&s);

	/* nobody listens: nothing was sent, so even RunInstances is retried */
	c.max_attempts = 3;
	assert_int_equal(qc_call(&c, "RunInstances", NULL, 0, &resp, &err), HERR_UNAVAIL);
	assert_int_equal(c.last.attempts, 3);
	assert_false(c.last.outcome_unknown);
	assert_int_equal(c.last.ret_code, -1);

	/* bad action and parameters: refused before sending */
	assert_int_equal(qc_call(&c, "Run Instances", NULL, 0, &resp, &err), HERR_INVALID);
	assert_string_equal(err.field, "action");
	json_t *p = json_pack("{s:f}", "cpu", 1.5);
	assert_int_equal(qc_call(&c, "RunInstances", p, 0, &resp, &err), HERR_INVALID);
	assert_string_equal(err.field, "cpu");
	assert_int_equal(c.last.attempts, 0);
	json_decref(p);
	qc_client_release(&c);
}

static void
test_secret_file(void **state)
{
	struct fixture *f = *state;
	struct herr err = HERR_INIT;
	struct qc_client c;
	struct srv s;
	json_t *resp = NULL;
	char other[128];

	srv_start(&s, 1, ok_zones);
	client_for(&c, f, s.port);
	/* readable by others: refused, nothing sent */
	assert_int_equal(chmod(f->secret, 0644), 0);
	assert_int_equal(qc_call(&c, "DescribeZones", NULL, QC_IDEMPOTENT, &resp, &err),
			 HERR_FORBIDDEN);
	assert_string_equal(err.field, "secret_file");
	assert_non_null(strstr(err.msg, "chmod 600"));
	assert_int_equal(s.got, 0);
	assert_int_equal(chmod(f->secret, 0400), 0);
	assert_int_equal(qc_call(&c, "DescribeZones", NULL, QC_IDEMPOTENT, &resp, &err), 0);
	json_decref(resp);
	srv_stop(&s);
	assert_int_equal(s.got, 1);
	qc_client_release(&c);

	/* missing file; empty file; bad settings name their field */
	snprintf(other, sizeof(other), "%s/none", f->dir);
	assert_int_equal(qc_client_init(&c, NULL, "pek3a", "AK", other, &err), 0);
	assert_string_equal(c.endpoint, QC_ENDPOINT_DEFAULT);
	c.max_attempts = 1;
	assert_int_equal(qc_call(&c, "DescribeZones", NULL, QC_IDEMPOTENT, &resp, &err),
			 HERR_NOTFOUND);
	assert_string_equal(err.field, "secret_file");
	assert_int_equal(file_write_atomic(other, "  \n", 3, 0600), 0);
	assert_int_equal(qc_call(&c, "DescribeZones", NULL, QC_IDEMPOTENT, &resp, &err),
			 HERR_INVALID);
	assert_non_null(strstr(err.msg, "is empty"));
	unlink(other);
	qc_client_release(&c);
	assert_int_equal(qc_client_init(&c, NULL, "PEK3A", "AK", f->secret, &err), HERR_INVALID);
	assert_string_equal(err.field, "zone");
	assert_int_equal(qc_client_init(&c, NULL, "pek3a", "", f->secret, &err), HERR_INVALID);
	assert_string_equal(err.field, "access_key_id");
	assert_int_equal(qc_client_init(&c, NULL, "pek3a", "AK", "secret", &err), HERR_INVALID);
	assert_string_equal(err.field, "secret_file");
	assert_int_equal(qc_client_init(&c, "file:///x", "pek3a", "AK", f->secret, &err),
			 HERR_INVALID);
	assert_string_equal(err.field, "endpoint");
}

static void
test_job_wait(void **state)
{
	struct fixture *f = *state;
	struct herr err = HERR_INIT;
	enum qc_job_state st = QC_JOB_PENDING;
	struct qc_client c;
	struct srv s;
	char word[32];

	srv_start(&s, 3,
		  "{\"ret_code\":0,\"job_set\":[{\"job_id\":\"j-1\",\"status\":\"working\"}]}",
		  busy,
		  "{\"ret_code\":0,\"job_set\":[{\"job_id\":\"j-1\",\"status\":\"failed\"}]}");
	client_for(&c, f, s.port);
	assert_int_equal(qc_job_wait(&c, "j-1", now_ms() + 60000, &st, word, sizeof(word), &err),
			 0);
	srv_stop(&s);
	assert_int_equal(st, QC_JOB_FAILED);
	assert_string_equal(word, "failed");
	assert_int_equal(s.got, 3);
	assert_non_null(strstr(s.lines[0], "action=DescribeJobs&"));
	assert_non_null(strstr(s.lines[0], "&jobs.1=j-1&"));

	/* the deadline ends the wait */
	srv_start(&s, 1,
		  "{\"ret_code\":0,\"job_set\":[{\"job_id\":\"j-2\",\"status\":\"pending\"}]}");
	retarget(&c, s.port);
	assert_int_equal(qc_job_wait(&c, "j-2", now_ms(), &st, word, sizeof(word), &err),
			 HERR_TIMEOUT);
	srv_stop(&s);
	assert_string_equal(word, "pending");
	qc_client_release(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_sdk_vector),
		cmocka_unit_test(test_sign_docs_vector),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_canonical_order),
		cmocka_unit_test(test_flatten),
		cmocka_unit_test(test_common_params),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_endpoint_path),
		cmocka_unit_test(test_ret_codes),
		cmocka_unit_test(test_job_parse),
		cmocka_unit_test_setup_teardown(test_call_signed_get, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_call_signed_post, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_call_retries, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_call_errors, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_secret_file, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_job_wait, fx_setup, fx_teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
