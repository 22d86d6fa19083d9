/* test-push.c - the send side against a real HTTP server (libmicrohttpd,
 * in-process, on a free loopback port) standing in for herd's endpoints:
 * batches buffered while nothing listens (oldest dropped first, counted in
 * `dropped`), the backlog sent once the server is up (several batches per
 * request, in order, none twice), the config fetched when the answer's
 * config_version changes and applied (monitor, push interval), a 400
 * dropping what it refused; protobuf pushes once the config offers them,
 * and JSON again after a 415 or an older server's 400. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <microhttpd.h>

#include "agent/exec.h"
#include "agent/push.h"
#include "buf.h"
#include "push.pb-c.h"
#include "pushwire.h"
#include "util.h"
#include "xalloc.h"

#define MAX_REQS 256

static char tdir[256];
static char *test_env[] = { (char *)"PATH=/usr/bin:/bin", NULL };

/* What the fake server saw. */
struct fake {
	pthread_mutex_t lock;
	int status;                 /* answer to POST metrics */
	int config_version;         /* in answers */
	int config_gets;
	size_t nreq;
	json_t *req[MAX_REQS];      /* bodies of POST /v1/agent/metrics */
	char auth[128];
	bool offer_pb;              /* the config lists push_formats with protobuf */
	int refuse_pb;              /* answer a protobuf push this (415, or 400 as an
				     * older server's "invalid JSON"); 0 = take it */
	size_t npb;                 /* protobuf pushes seen */
	size_t npb_batches;         /* their batches, each decoded */
	size_t npb_bad;             /* protobuf bodies that are no Push */
	size_t npb_refused;         /* answered 415 */
};

static struct fake fake;

struct conn {
	struct buf body;
};

static enum MHD_Result
answer(struct MHD_Connection *c, int status, const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
								 MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;

	MHD_add_response_header(r, "Content-Type", "application/json");
	rc = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
	const char *version, const char *data, size_t *size, void **ctx)
{
	struct conn *k = *ctx;
	const char *auth;
	char text[512];

	if (k == NULL) {
		k = xcalloc(1, sizeof(*k));
		buf_init(&k->body, 4u << 20);
		*ctx = k;
		return MHD_YES;
	}
	if (*size > 0) {
		buf_add(&k->body, data, *size);
		*size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&fake.lock);
	auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	snprintf(fake.auth, sizeof(fake.auth), "%s", auth ? auth : "");
	if (strcmp(method, "GET") == 0 && strcmp(url, "/v1/agent/config") == 0) {
		fake.config_gets++;
		snprintf(text, sizeof(text),
			 "{\"version\":%d,\"push_interval_s\":1,\"monitors\":[{\"name\":\"m\","
			 "\"command\":\"echo 5\",\"interval_s\":0.2,\"timeout_s\":1}]%s}",
			 fake.config_version,
			 fake.offer_pb ? ",\"push_formats\":[\"json\",\"protobuf\"]" : "");
		pthread_mutex_unlock(&fake.lock);
		return answer(c, 200, text);
	}
	if (strcmp(method, "POST") == 0 && strcmp(url, "/v1/agent/metrics") == 0 &&
	    strcmp(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type") ?: "",
		   PUSHWIRE_CONTENT_TYPE) == 0) {
		Herd__Push *pb = herd__push__unpack(NULL, k->body.len, (const uint8_t *)k->body.p);
		int refuse = fake.refuse_pb;

		fake.npb++;
		if (pb == NULL || pb->n_batches == 0)
			fake.npb_bad++;
		for (size_t i = 0; pb && i < pb->n_batches; i++)
			fake.npb_batches += pb->batches[i]->has_ts_ms && pb->batches[i]->n_series > 0;
		if (pb)
			herd__push__free_unpacked(pb, NULL);
		fake.npb_refused += refuse != 0;
		snprintf(text, sizeof(text), "{\"config_version\":%d}", fake.config_version);
		pthread_mutex_unlock(&fake.lock);
		if (refuse == 415)
			return answer(c, 415, "{\"error\":{\"code\":\"unsupported\",\"message\":\"no\"}}");
		if (refuse)   /* what a server from before the protobuf push says */
			return answer(c, refuse, "{\"error\":{\"code\":\"invalid\",\"message\":"
					       "\"invalid JSON at line 1 column 1: '[' or '{' expected near"
					       " '\\n'\"}}");
		return answer(c, 200, text);
	}
	if (strcmp(method, "POST") == 0 && strcmp(url, "/v1/agent/metrics") == 0) {
		int status = fake.status;

		if (fake.nreq < MAX_REQS)
			fake.req[fake.nreq++] = json_loadb(k->body.p ? k->body.p : "", k->body.len, 0,
							   NULL);
		snprintf(text, sizeof(text), "{\"config_version\":%d}", fake.config_version);
		pthread_mutex_unlock(&fake.lock);
		if (status != 200)
			return answer(c, status, "{\"error\":{\"code\":\"invalid\",\"message\":\"no\"}}");
		return answer(c, 200, text);
	}
	pthread_mutex_unlock(&fake.lock);
	return answer(c, 404, "{}");
}

static void
completed(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode t)
{
	struct conn *k = *ctx;

	if (k) {
		buf_release(&k->body);
		free(k);
	}
	*ctx = NULL;
}

static int
free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		port = -1;
	else
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static struct MHD_Daemon *
fake_start(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
				(uint16_t)port, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &a,
				MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
}

static int
setup(void **state)
{
	snprintf(tdir, sizeof(tdir), "/tmp/herd-test-push.XXXXXX");
	if (mkdtemp(tdir) == NULL)
		return -1;
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	exec_set_reap_all(true);
	pthread_mutex_init(&fake.lock, NULL);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	for (size_t i = 0; i < fake.nreq; i++)
		json_decref(fake.req[i]);
	exec_reap();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Waits up to ms for cond() to hold. */
static bool
wait_for(bool (*cond)(void), int64_t ms)
{
	int64_t end = mono_ms() + ms;

	while (mono_ms() < end) {
		bool ok;

		pthread_mutex_lock(&fake.lock);
		ok = cond();
		pthread_mutex_unlock(&fake.lock);
		if (ok)
			return true;
		sleep_ms(20);
	}
	return false;
}

static bool
has_request(void)
{
	return fake.nreq > 0;
}

/* The config applied: a batch with the monitor's value 5, and two batches
 * one second apart (the new push interval). */
static bool
config_applied(void)
{
	bool monitor = false, interval = false;
	int64_t prev = 0;

	for (size_t i = 0; i < fake.nreq; i++) {
		size_t k;
		json_t *b, *s;

		json_array_foreach(json_object_get(fake.req[i], "batches"), k, b) {
			int64_t ts = json_integer_value(json_object_get(b, "ts_ms"));
			size_t q;

			json_array_foreach(json_object_get(b, "series"), q, s)
				if (strcmp(json_string_value(json_object_get(s, "name")), "m") == 0 &&
				    json_number_value(json_object_get(s, "value")) == 5)
					monitor = true;
			if (prev && ts - prev == 1000)
				interval = true;
			prev = ts;
		}
	}
	return monitor && interval;
}

static void
test_backlog_and_config(void **state)
{
	struct push_opts o = { 0 };
	struct MHD_Daemon *d;
	struct push *p;
	char url[64];
	int port = free_port();
	int64_t last_ts = 0;
	uint64_t dropped = 0;
	size_t batches = 0, multi = 0;

	assert_true(port > 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	fake.status = 200;
	fake.config_version = 4;
	o.server = url;
	o.credential = "hc_test";
	o.interval_ms = 100;
	o.monitor_dir = tdir;
	o.env = test_env;
	o.max_batches = 5;
	p = push_new(&o);
	assert_int_equal(push_start(p), 0);
	/* nothing listens until the buffer (5) has dropped 5: 10 batches made */
	for (int64_t end = mono_ms() + 30000; push_dropped_total(p) < 5 && mono_ms() < end;)
		sleep_ms(20);
	assert_true(push_dropped_total(p) >= 5);
	d = fake_start(port);
	assert_non_null(d);
	assert_true(wait_for(has_request, 30000));
	assert_true(wait_for(config_applied, 30000));
	assert_true(push_stop(p));
	push_free(p);
	MHD_stop_daemon(d);

	assert_string_equal(fake.auth, "Bearer hc_test");
	assert_true(fake.config_gets >= 1);
	/* every batch once, in order; the drops told once */
	for (size_t i = 0; i < fake.nreq; i++) {
		json_t *r = fake.req[i], *bs = json_object_get(r, "batches"), *b;
		size_t k;

		assert_non_null(r);
		assert_true(json_array_size(bs) >= 1 && json_array_size(bs) <= 100);
		if (json_array_size(bs) > 1)
			multi++;
		dropped += (uint64_t)json_integer_value(json_object_get(r, "dropped"));
		json_array_foreach(bs, k, b) {
			int64_t ts = json_integer_value(json_object_get(b, "ts_ms"));

			assert_true(ts > last_ts);
			last_ts = ts;
			batches++;
		}
	}
	/* the first request carried the backlog of 5 (or 5 and one more) */
	assert_true(multi >= 1);
	assert_true(json_array_size(json_object_get(fake.req[0], "batches")) >= 5);
	assert_true(json_integer_value(json_object_get(fake.req[0], "dropped")) >= 5);
	assert_true(dropped >= 5);
	assert_true(batches >= 6);
}

static bool
two_requests(void)
{
	return fake.nreq >= 2;
}

static void
test_refused_batches_are_dropped(void **state)
{
	struct push_opts o = { 0 };
	struct MHD_Daemon *d;
	struct push *p;
	char url[64];
	int port = free_port();
	json_t *r;

	for (size_t i = 0; i < fake.nreq; i++)
		json_decref(fake.req[i]);
	fake.nreq = 0;
	fake.status = 400;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	d = fake_start(port);
	assert_non_null(d);
	o.server = url;
	o.credential = "hc_test";
	o.interval_ms = 150;
	o.monitor_dir = tdir;
	o.env = test_env;
	p = push_new(&o);
	assert_int_equal(push_start(p), 0);
	assert_true(wait_for(two_requests, 30000));
	assert_true(push_stop(p));
	push_free(p);
	MHD_stop_daemon(d);
	/* the second request tells of the batches the first one lost */
	r = fake.req[1];
	assert_int_equal(json_integer_value(json_object_get(r, "dropped")),
			 json_array_size(json_object_get(fake.req[0], "batches")));
	assert_true(json_array_size(json_object_get(r, "batches")) >= 1);
}

static size_t json_before;

static bool
two_pb_pushes(void)
{
	return fake.npb >= 2;
}

static bool
json_again(void)
{
	return fake.nreq > json_before + 1;
}

/* A config offering protobuf: the pushes that follow are protobuf (each
 * body a Push of PushBatches with series); a refusal of the body (status:
 * 415, or 400 with no field as an older server answers) to one: JSON from
 * then on, the refused batches counted as dropped. */
static void
protobuf_then_json(int status)
{
	struct push_opts o = { 0 };
	struct MHD_Daemon *d;
	struct push *p;
	char url[64];
	int port = free_port();
	size_t refused;

	for (size_t i = 0; i < fake.nreq; i++)
		json_decref(fake.req[i]);
	fake.nreq = 0;
	fake.status = 200;
	fake.offer_pb = true;
	fake.npb = fake.npb_batches = fake.npb_bad = fake.npb_refused = 0;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	d = fake_start(port);
	assert_non_null(d);
	o.server = url;
	o.credential = "hc_test";
	o.interval_ms = 150;
	o.monitor_dir = tdir;
	o.env = test_env;
	p = push_new(&o);
	assert_int_equal(push_start(p), 0);
	assert_true(wait_for(two_pb_pushes, 30000));
	pthread_mutex_lock(&fake.lock);
	assert_int_equal(fake.npb_bad, 0);
	assert_true(fake.npb_batches >= 2);
	assert_int_equal(push_dropped_total(p), 0);
	json_before = fake.nreq;
	fake.refuse_pb = status;
	pthread_mutex_unlock(&fake.lock);
	assert_true(wait_for(json_again, 30000));
	assert_true(push_stop(p));
	MHD_stop_daemon(d);
	refused = fake.npb_refused;
	/* refused (the batches of one request, or of two when one more was
	 * made before the answer), then JSON: the refused ones are lost */
	assert_true(refused >= 1);
	assert_true(push_dropped_total(p) >= refused);
	push_free(p);
	fake.offer_pb = false;
	fake.refuse_pb = 0;
}

static void
test_protobuf_then_json_after_415(void **state)
{
	protobuf_then_json(415);
}

static void
test_protobuf_then_json_after_400(void **state)
{
	protobuf_then_json(400);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backlog_and_config),
		cmocka_unit_test(test_refused_batches_are_dropped),
		cmocka_unit_test(test_protobuf_then_json_after_415),
		cmocka_unit_test(test_protobuf_then_json_after_400),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
