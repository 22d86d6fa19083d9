/* test-push-format.c - the agent's protobuf push (src/agent/push-wire.c and
 * the format-aware push buffer): a batch encoded as a PushBatch holds what
 * the JSON batch holds (unpacked here with protobuf-c's generated code and
 * compared), the buffer takes the longest run of one format from its head
 * and frames it as that format (drops and in-flight batches counted as
 * for JSON), the config's push_formats, and the choice of format with its
 * fallback to JSON after a 415. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent/col.h"
#include "agent/monitor.h"
#include "agent/push.h"
#include "push.pb-c.h"
#include "pushwire.h"

static char *
bin_str(const ProtobufCBinaryData *b)
{
	static char s[4][256];
	static int k;
	char *o = s[k++ % 4];

	assert_true(b->len < sizeof(s[0]));
	memcpy(o, b->data, b->len);
	o[b->len] = '\0';
	return o;
}

/* --- the batch --- */

static void
test_encode_batch_pb(void **state)
{
	static struct col_batch b;
	static struct mon_snapshot snap;
	static struct push_wire w;
	static uint8_t out[8192];
	Herd__PushBatch *pb;
	size_t len, cut, all;

	b.ts_ms = 1700000000123;
	b.n = 0;
	col_add(&b, "cpu_busy_pct", 12.5, "scope", "machine", NULL, NULL);
	col_add(&b, "disk_used_pct", 0.1 + 0.2, "scope", "machine", "mount", "/mnt/a \"q\"");
	col_add(&b, "procs", 82, NULL, NULL, NULL, NULL);
	col_add_labels(&b, "pods", 31, (const char *const[]){ "monitor", "team", "tier" },
		       (const char *const[]){ "k8s", "q", "web" }, 3);
	snap.n = 3;
	snprintf(snap.m[0].name, MON_NAME_MAX, "busy");
	snap.m[0].r.state = MON_OK;
	snprintf(snap.m[1].name, MON_NAME_MAX, "slow");
	snap.m[1].r.state = MON_TIMEOUT;
	snprintf(snap.m[1].r.error, MON_ERROR_MAX, "timed out after 300ms");
	snprintf(snap.m[2].name, MON_NAME_MAX, "new");
	snap.m[2].r.state = MON_PENDING;

	len = push_encode_batch_pb(&b, &snap, &w, out, sizeof(out), &cut);
	assert_true(len > 0);
	assert_int_equal(cut, 0);
	pb = herd__push_batch__unpack(NULL, len, out);
	assert_non_null(pb);
	assert_true(pb->has_ts_ms);
	assert_int_equal(pb->ts_ms, 1700000000123);
	assert_int_equal(pb->n_series, 4);
	assert_string_equal(bin_str(&pb->series[0]->name), "cpu_busy_pct");
	assert_true(pb->series[0]->value == 12.5);
	assert_int_equal(pb->series[0]->n_labels, 1);
	assert_string_equal(bin_str(&pb->series[0]->labels[0]->name), "scope");
	assert_string_equal(bin_str(&pb->series[0]->labels[0]->value), "machine");
	assert_true(pb->series[1]->value == 0.1 + 0.2);        /* the double itself */
	assert_string_equal(bin_str(&pb->series[1]->labels[1]->value), "/mnt/a \"q\"");
	assert_int_equal(pb->series[2]->n_labels, 0);
	assert_int_equal(pb->series[3]->n_labels, 3);
	assert_string_equal(bin_str(&pb->series[3]->labels[2]->name), "tier");
	assert_string_equal(bin_str(&pb->series[3]->labels[2]->value), "web");
	/* monitors: pending is not told; an error only when not ok */
	assert_int_equal(pb->n_monitors, 2);
	assert_string_equal(bin_str(&pb->monitors[0]->name), "busy");
	assert_string_equal(bin_str(&pb->monitors[0]->state), "ok");
	assert_false(pb->monitors[0]->has_error);
	assert_string_equal(bin_str(&pb->monitors[1]->state), "timeout");
	assert_true(pb->monitors[1]->has_error);
	assert_string_equal(bin_str(&pb->monitors[1]->error), "timed out after 300ms");
	herd__push_batch__free_unpacked(pb, NULL);

	/* too small for every series: the last ones are cut and counted */
	all = len;
	len = push_encode_batch_pb(&b, &snap, &w, out, all - 5, &cut);
	assert_true(len > 0 && len <= all - 5);
	assert_true(cut > 0);
	pb = herd__push_batch__unpack(NULL, len, out);
	assert_non_null(pb);
	assert_int_equal(pb->n_series, 4 - cut);
	assert_int_equal(pb->n_monitors, 2);
	herd__push_batch__free_unpacked(pb, NULL);
	assert_int_equal(push_encode_batch_pb(&b, &snap, &w, out, 10, &cut), 0);
}

/* --- the buffer, formats mixed --- */

/* A PushBatch of no series with ts_ms = ts, into out; its length. */
static size_t
pb_batch(int64_t ts, uint8_t *out, size_t outsz)
{
	struct pushwire_batch b = { .ts_ms = ts };

	return pushwire_encode_batch(&b, out, outsz, NULL);
}

static void
add_pb(struct push_buf *b, int64_t ts, int want_dropped)
{
	uint8_t blob[64];
	size_t len = pb_batch(ts, blob, sizeof(blob));

	assert_true(len > 0);
	assert_int_equal(push_buf_add(b, PUSH_FMT_PROTOBUF, (const char *)blob, len), want_dropped);
}

static void
add_json(struct push_buf *b, int v, int want_dropped)
{
	char s[32];

	snprintf(s, sizeof(s), "{\"b\":%d}", v);
	assert_int_equal(push_buf_add(b, PUSH_FMT_JSON, s, strlen(s)), want_dropped);
}

/* Takes a protobuf run: *n batches, their ts_ms into ts[], the dropped
 * count told. */
static uint64_t
take_pb(struct push_buf *b, size_t outsz, size_t max, size_t *n, int64_t *ts)
{
	static char body[4096];
	enum push_format fmt = PUSH_FMT_JSON;
	size_t len = push_buf_take(b, body, outsz, max, n, &fmt);
	Herd__Push *p;
	uint64_t dropped;

	assert_true(len > 0 && len <= outsz);
	assert_int_equal(fmt, PUSH_FMT_PROTOBUF);
	p = herd__push__unpack(NULL, len, (const uint8_t *)body);
	assert_non_null(p);
	assert_int_equal(p->n_batches, *n);
	for (size_t i = 0; i < p->n_batches; i++)
		ts[i] = p->batches[i]->ts_ms;
	assert_true(p->has_dropped);
	dropped = p->dropped;
	herd__push__free_unpacked(p, NULL);
	return dropped;
}

static json_t *
take_json(struct push_buf *b, size_t max, size_t *n)
{
	static char body[4096];
	enum push_format fmt = PUSH_FMT_PROTOBUF;
	size_t len = push_buf_take(b, body, sizeof(body), max, n, &fmt);
	json_t *j;

	assert_true(len > 0);
	assert_int_equal(fmt, PUSH_FMT_JSON);
	assert_int_equal(strlen(body), len);
	j = json_loads(body, 0, NULL);
	assert_non_null(j);
	return j;
}

static void
test_buf_runs(void **state)
{
	struct push_buf b;
	int64_t ts[8];
	json_t *j;
	size_t n;

	push_buf_init(&b, 8, 4096);
	add_json(&b, 1, 0);
	add_json(&b, 2, 0);
	add_pb(&b, 3, 0);
	add_pb(&b, 4, 0);
	add_json(&b, 5, 0);
	/* the JSON run at the head, and only it */
	j = take_json(&b, 100, &n);
	assert_int_equal(n, 2);
	assert_int_equal(json_array_size(json_object_get(j, "batches")), 2);
	json_decref(j);
	push_buf_done(&b, PUSH_SENT);
	assert_int_equal(b.count, 3);
	/* then the protobuf run, framed as a Push */
	assert_int_equal(take_pb(&b, 4096, 100, &n, ts), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ts[0], 3);
	assert_int_equal(ts[1], 4);
	/* failed: kept, taken again the same */
	push_buf_done(&b, PUSH_FAILED);
	assert_int_equal(b.count, 3);
	assert_int_equal(take_pb(&b, 4096, 1, &n, ts), 0);     /* at most max_batches */
	assert_int_equal(n, 1);
	assert_int_equal(ts[0], 3);
	push_buf_done(&b, PUSH_SENT);
	assert_int_equal(take_pb(&b, 4096, 100, &n, ts), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ts[0], 4);
	push_buf_done(&b, PUSH_SENT);
	j = take_json(&b, 100, &n);
	assert_int_equal(n, 1);
	json_decref(j);
	push_buf_done(&b, PUSH_SENT);
	assert_int_equal(b.count, 0);
	assert_int_equal(b.dropped_total, 0);
	push_buf_release(&b);
}

static void
test_buf_pb_drops(void **state)
{
	struct push_buf b;
	int64_t ts[8];
	size_t n;

	/* the count bound drops the oldest, of whatever format; a protobuf
	 * request tells the drops as a JSON one does */
	push_buf_init(&b, 3, 4096);
	add_json(&b, 1, 0);
	add_pb(&b, 2, 0);
	add_pb(&b, 3, 0);
	add_pb(&b, 4, 1);
	add_pb(&b, 5, 1);
	assert_int_equal(b.dropped, 2);
	assert_int_equal(take_pb(&b, 4096, 100, &n, ts), 2);
	assert_int_equal(n, 3);
	assert_int_equal(ts[0], 3);
	/* dropped while in flight: lost only if the request fails */
	add_pb(&b, 6, 1);
	push_buf_done(&b, PUSH_FAILED);
	assert_int_equal(b.dropped, 3);
	assert_int_equal(b.dropped_total, 3);
	assert_int_equal(take_pb(&b, 4096, 100, &n, ts), 3);
	assert_int_equal(n, 3);
	add_pb(&b, 7, 1);                       /* drops 4, in flight */
	push_buf_done(&b, PUSH_SENT);           /* 4 arrived after all */
	assert_int_equal(b.dropped, 0);
	assert_int_equal(b.dropped_total, 3);
	assert_int_equal(b.count, 1);
	/* refused: removed and counted */
	assert_int_equal(take_pb(&b, 4096, 100, &n, ts), 0);
	push_buf_done(&b, PUSH_REJECTED);
	assert_int_equal(b.count, 0);
	assert_int_equal(b.dropped, 1);
	assert_int_equal(b.dropped_total, 4);
	push_buf_release(&b);
}

static void
test_buf_pb_fit(void **state)
{
	struct push_buf b;
	uint8_t big[600];
	int64_t ts[8];
	size_t n, one;
	uint8_t blob[64];

	push_buf_init(&b, 8, 4096);
	one = pb_batch(1, blob, sizeof(blob));
	/* a batch too big for any request is given up and counted */
	memset(big, 0, sizeof(big));
	assert_int_equal(push_buf_add(&b, PUSH_FMT_PROTOBUF, (const char *)big, sizeof(big)), 0);
	add_pb(&b, 1, 0);
	add_pb(&b, 2, 0);
	add_pb(&b, 3, 0);
	/* room for exactly two batches with the overheads */
	assert_int_equal(take_pb(&b, 2 * (one + PUSHWIRE_BATCH_OVERHEAD) + PUSHWIRE_DROPPED_MAX,
				 100, &n, ts), 1);
	assert_int_equal(n, 2);
	assert_int_equal(ts[0], 1);
	assert_int_equal(ts[1], 2);
	assert_int_equal(b.dropped_total, 1);
	push_buf_done(&b, PUSH_SENT);
	assert_int_equal(b.count, 1);
	assert_int_equal(b.dropped, 0);
	push_buf_release(&b);
}

/* --- the config and the choice --- */

static void
test_config_formats(void **state)
{
	static const char *const cases[][2] = {
		{ "{\"version\":1}", "0" },
		{ "{\"version\":1,\"push_formats\":[\"json\"]}", "0" },
		{ "{\"version\":1,\"push_formats\":[\"json\",\"protobuf\"]}", "1" },
		{ "{\"version\":1,\"push_formats\":[\"protobuf\"]}", "1" },
		{ "{\"version\":1,\"push_formats\":\"protobuf\"}", "0" },
		{ "{\"version\":1,\"push_formats\":[1,\"x\"]}", "0" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct herr err = HERR_INIT;
		struct push_config c;
		json_t *j = json_loads(cases[i][0], 0, NULL);

		assert_non_null(j);
		assert_int_equal(push_config_parse(j, &c, &err), 0);
		assert_int_equal(c.protobuf, cases[i][1][0] == '1');
		push_config_release(&c);
		json_decref(j);
	}
}

static void
test_format_decide(void **state)
{
	char field[64];

	/* an older server (no push_formats): JSON; offered: protobuf until
	 * a protobuf body is refused, then JSON until the next config */
	assert_int_equal(push_format_decide(false, false), PUSH_FMT_JSON);
	assert_int_equal(push_format_decide(true, false), PUSH_FMT_PROTOBUF);
	assert_int_equal(push_format_decide(true, true), PUSH_FMT_JSON);
	assert_int_equal(push_format_decide(false, true), PUSH_FMT_JSON);

	/* what refuses the format: 415, or 400 naming the body or no field (a
	 * server from before the protobuf push: "invalid JSON"), to protobuf */
	assert_true(push_format_refused(PUSH_FMT_PROTOBUF, 415, NULL));
	assert_true(push_format_refused(PUSH_FMT_PROTOBUF, 400, "body"));
	/* not: a JSON push's answer, success, no answer, a server error, or a
	 * 400 naming a field inside the push (those batches, not the format) */
	assert_false(push_format_refused(PUSH_FMT_JSON, 400, NULL));
	assert_false(push_format_refused(PUSH_FMT_JSON, 415, NULL));
	assert_false(push_format_refused(PUSH_FMT_JSON, 400, "body"));
	assert_false(push_format_refused(PUSH_FMT_PROTOBUF, 200, NULL));
	assert_false(push_format_refused(PUSH_FMT_PROTOBUF, 0, NULL));
	assert_false(push_format_refused(PUSH_FMT_PROTOBUF, 503, NULL));
	assert_true(push_format_refused(PUSH_FMT_PROTOBUF, 400, NULL));
	assert_true(push_format_refused(PUSH_FMT_PROTOBUF, 400, ""));
	assert_false(push_format_refused(PUSH_FMT_PROTOBUF, 400, "batches[0].series[2].name"));

	/* the answer's field, as an older server's 400 to a protobuf body
	 * names it; none in a push's answer or in text that is not JSON */
	assert_true(push_answer_error_field(
		"{\"error\":{\"code\":\"invalid\",\"field\":\"body\",\"message\":\"x\"}}", 57,
		field, sizeof(field)));
	assert_string_equal(field, "body");
	assert_false(push_answer_error_field("{\"config_version\":3,\"accepted\":1}", 33, field,
					     sizeof(field)));
	assert_false(push_answer_error_field("<html>", 6, field, sizeof(field)));
	assert_false(push_answer_error_field("{\"error\":{\"field\":\"0123456789\"}}", 32, field,
					     4));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_batch_pb),
		cmocka_unit_test(test_buf_runs),
		cmocka_unit_test(test_buf_pb_drops),
		cmocka_unit_test(test_buf_pb_fit),
		cmocka_unit_test(test_config_formats),
		cmocka_unit_test(test_format_decide),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
