/* test-push-wire.c - the agents' push in protobuf (proto/push.proto) read
 * by the server: a push written as JSON and the same push encoded by
 * pushwire (as an agent does) decode to the same struct metrics_push
 * (samples, labels, batches, monitors, dropped), and a mistake is refused
 * with the same field and message both ways (labels named by their index
 * in the protobuf body); what only the protobuf body can get wrong (a NUL
 * inside a string, a missing value or time, bytes that are no Push, a body
 * announcing more than its budget) is refused naming its field, and an
 * empty body is a push of no batches. No store: decoding is pure. */
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

#include "agent-contract.h"
#include "model/metrics.h"
#include "push.pb-c.h"
#include "pushwire.h"
#include "util.h"

#define MAX_BATCHES 128
#define MAX_SERIES 20000
#define MAX_LABELS 20000
#define MAX_MONITORS 1000
#define BODY_MAX (8u << 20)

/* A JSON push as plain C batches, then encoded and framed by pushwire. */
static struct pushwire_batch cb[MAX_BATCHES];
static struct pushwire_series cs[MAX_SERIES];
static struct pushwire_label cl[MAX_LABELS];
static struct pushwire_monitor cm[MAX_MONITORS];
static uint8_t blobs[BODY_MAX], body[BODY_MAX];
static struct pushwire_arena arena;

/* The protobuf body of the JSON push text (well typed: numbers or "NaN",
 * "+Inf", "-Inf" as values, strings elsewhere); its length. */
static size_t
wire_of(const json_t *push)
{
	struct pushwire_blob bl[MAX_BATCHES];
	json_t *batches = json_object_get(push, "batches"), *d = json_object_get(push, "dropped");
	size_t nb = json_array_size(batches), ns = 0, nl = 0, nm = 0, used = 0, len;

	assert_true(nb <= MAX_BATCHES);
	for (size_t i = 0; i < nb; i++) {
		json_t *b = json_array_get(batches, i), *series = json_object_get(b, "series");
		json_t *mons = json_object_get(b, "monitors"), *x, *lv;
		struct pushwire_batch *pb = &cb[i];
		const char *lk;
		size_t j, cut;

		*pb = (struct pushwire_batch){ .has_ts = true,
					       .ts_ms = json_integer_value(json_object_get(b, "ts_ms")),
					       .series = &cs[ns], .nseries = json_array_size(series),
					       .monitors = &cm[nm], .nmonitors = json_array_size(mons) };
		json_array_foreach(series, j, x) {
			struct pushwire_series *s = &cs[ns++];

			assert_true(ns <= MAX_SERIES);
			*s = (struct pushwire_series){ .name = json_string_value(json_object_get(x, "name")),
						       .labels = &cl[nl] };
			assert_true(metrics_value_parse(json_object_get(x, "value"), &s->value));
			json_object_foreach(json_object_get(x, "labels"), lk, lv) {
				assert_true(nl < MAX_LABELS);
				cl[nl++] = (struct pushwire_label){ lk, json_string_value(lv) };
				s->nlabels++;
			}
		}
		json_array_foreach(mons, j, x) {
			assert_true(nm < MAX_MONITORS);
			cm[nm++] = (struct pushwire_monitor){
				json_string_value(json_object_get(x, "name")),
				json_string_value(json_object_get(x, "state")),
				json_string_value(json_object_get(x, "error")) };
		}
		len = pushwire_encode_batch(pb, blobs + used, sizeof(blobs) - used, &cut);
		assert_true(len > 0);
		assert_int_equal(cut, 0);
		bl[i] = (struct pushwire_blob){ blobs + used, len };
		used += len;
	}
	len = pushwire_frame(bl, nb, d != NULL, (uint64_t)json_integer_value(d), body, sizeof(body));
	assert_true(len > 0 || (nb == 0 && d == NULL));
	return len;
}

static json_t *
parse(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);

	if (j == NULL)
		fail_msg("bad test JSON: %s: %s", je.text, text);
	return j;
}

/* The body as the handler reads it: pushwire_decode, then the model. */
static int
wire_decode(const void *b, size_t len, int64_t now, struct metrics_push *p, struct herr *err)
{
	struct pushwire_push w;
	int rc = pushwire_decode(b, len, PUSH_MAX_BATCHES_PER_REQUEST, &arena, &w, err);

	if (rc == 0)
		rc = metrics_push_decode_wire(&w, now, p, err);
	else
		memset(p, 0, sizeof(*p));   /* nothing to release */
	return rc;
}

static void
release(struct metrics_push *p)
{
	if (p->batches)
		metrics_push_release(p);
}

static void
assert_same(const struct metrics_push *a, const struct metrics_push *b)
{
	assert_int_equal(a->nbatches, b->nbatches);
	assert_int_equal(a->nsamples, b->nsamples);
	assert_int_equal(a->nlabels, b->nlabels);
	assert_int_equal(a->nmonitors, b->nmonitors);
	assert_int_equal(a->has_dropped, b->has_dropped);
	assert_int_equal(a->dropped, b->dropped);
	for (size_t i = 0; i < a->nbatches; i++) {
		const struct metrics_push_batch *x = &a->batches[i], *y = &b->batches[i];

		assert_int_equal(x->ts_ms, y->ts_ms);
		assert_int_equal(x->smp0, y->smp0);
		assert_int_equal(x->nsmp, y->nsmp);
		assert_int_equal(x->nseries, y->nseries);
		assert_int_equal(x->mon0, y->mon0);
		assert_int_equal(x->nmon, y->nmon);
	}
	for (size_t i = 0; i < a->nsamples; i++) {
		const struct tsdb_sample *x = &a->samples[i], *y = &b->samples[i];

		assert_string_equal(x->metric, y->metric);
		assert_memory_equal(&x->value, &y->value, sizeof(double));   /* NaN too */
		assert_int_equal(x->nlabels, y->nlabels);
		assert_ptr_equal(x->labels - a->labels, y->labels - b->labels);
		for (size_t k = 3; k < x->nlabels; k++) {   /* 0..2: host, group, cluster */
			assert_string_equal(x->labels[k].name, y->labels[k].name);
			assert_string_equal(x->labels[k].value, y->labels[k].value);
		}
	}
	for (size_t i = 0; i < a->nmonitors; i++) {
		const struct metrics_push_monitor *x = &a->monitors[i], *y = &b->monitors[i];

		assert_string_equal(x->name, y->name);
		assert_string_equal(x->state, y->state);
		if (x->error || y->error) {
			assert_non_null(x->error);
			assert_non_null(y->error);
			assert_string_equal(x->error, y->error);
		}
	}
}

/* Decodes the push text as JSON and as protobuf: both accepted, the same. */
static void
same_both_ways(const char *text)
{
	struct herr ej = HERR_INIT, ew = HERR_INIT;
	struct metrics_push pj, pw;
	json_t *push = parse(text);
	size_t len = wire_of(push);
	int64_t now = now_ms();

	assert_int_equal(metrics_push_decode(json_object_get(push, "batches"),
					     json_object_get(push, "dropped"), now, &pj, &ej), 0);
	if (wire_decode(body, len, now, &pw, &ew) != 0)
		fail_msg("protobuf refused: %s: %s", ew.field, ew.msg);
	assert_same(&pj, &pw);
	metrics_push_release(&pj);
	release(&pw);
	pushwire_arena_release(&arena);
	json_decref(push);
}

static void
test_same_push(void **state)
{
	char text[4096];
	int64_t t = now_ms() - 60000;

	snprintf(text, sizeof(text),
		 "{\"batches\":["
		 "{\"ts_ms\":%lld,\"series\":["
		 "{\"name\":\"cpu_busy_pct\",\"labels\":{\"scope\":\"machine\"},\"value\":12.5},"
		 "{\"name\":\"a\",\"value\":\"NaN\"},"
		 "{\"name\":\"b\",\"labels\":{\"x\":\"1\",\"y\":\"\",\"z\":\"three\"},\"value\":\"+Inf\"},"
		 "{\"name\":\"c\",\"value\":\"-Inf\"},{\"name\":\"d\",\"value\":-0.25}],"
		 "\"monitors\":[{\"name\":\"busy\",\"state\":\"ok\"},"
		 "{\"name\":\"web\",\"state\":\"failed\",\"error\":\"exit 2: no\"},"
		 "{\"name\":\"slow\",\"state\":\"timeout\",\"error\":\"\"}]},"
		 "{\"ts_ms\":%lld,\"series\":[{\"name\":\"e\",\"value\":1e300}]},"
		 "{\"ts_ms\":%lld}],"
		 "\"dropped\":3}",
		 (long long)t, (long long)t + 5000, (long long)t + 10000);
	same_both_ways(text);
	/* no dropped; one batch of monitors only */
	snprintf(text, sizeof(text),
		 "{\"batches\":[{\"ts_ms\":%lld,\"monitors\":[{\"name\":\"m\",\"state\":\"ok\"}]}]}",
		 (long long)t);
	same_both_ways(text);
	same_both_ways("{\"batches\":[],\"dropped\":7}");
}

/* The JSON text push with its one "@TS@" replaced by ts. */
static char *
batch_text(const char *push, int64_t ts)
{
	const char *at = strstr(push, "@TS@");
	char *t = NULL;

	assert_non_null(at);
	if (asprintf(&t, "%.*s%lld%s", (int)(at - push), push, (long long)ts, at + 4) < 0)
		fail();
	return t;
}

/* A string of n x. */
static char *
xs(size_t n)
{
	char *s = malloc(n + 1);

	memset(s, 'x', n);
	s[n] = '\0';
	return s;
}

/* Refused both ways with the same message; the fields as given. */
static void
refused_both_ways(const json_t *push, const char *jfield, const char *wfield, int64_t now)
{
	struct herr ej = HERR_INIT, ew = HERR_INIT;
	struct metrics_push pj, pw;
	size_t len = wire_of(push);

	assert_int_equal(metrics_push_decode(json_object_get(push, "batches"),
					     json_object_get(push, "dropped"), now, &pj, &ej),
			 HERR_INVALID);
	assert_int_equal(wire_decode(body, len, now, &pw, &ew), HERR_INVALID);
	assert_string_equal(ej.field, jfield);
	assert_string_equal(ew.field, wfield);
	assert_string_equal(ej.msg, ew.msg);
	metrics_push_release(&pj);
	release(&pw);
	pushwire_arena_release(&arena);
}

static void
test_same_refusals(void **state)
{
	static const struct {
		const char *batch, *jfield, *wfield;
	} bad[] = {
		{ "{\"batches\":[{\"ts_ms\":@TS@,\"series\":[{\"name\":\"ok\",\"value\":1},"
		  "{\"name\":\"9bad\",\"value\":1}]}]}",
		  "batches[0].series[1].name", NULL },
		{ "{\"batches\":[{\"ts_ms\":@TS@,\"series\":[{\"name\":\"\",\"value\":1}]}]}",
		  "batches[0].series[0].name", NULL },
		{ "{\"batches\":[{\"ts_ms\":@TS@,\"series\":[{\"name\":\"a\",\"value\":1,"
		  "\"labels\":{\"x\":\"1\",\"host\":\"x\"}}]}]}",
		  "batches[0].series[0].labels.host", "batches[0].series[0].labels[1].name" },
		{ "{\"batches\":[{\"ts_ms\":@TS@,\"series\":[{\"name\":\"a\",\"value\":1,"
		  "\"labels\":{\"__name__\":\"x\"}}]}]}",
		  "batches[0].series[0].labels.__name__", "batches[0].series[0].labels[0].name" },
		{ "{\"batches\":[{\"ts_ms\":@TS@,\"series\":[{\"name\":\"a\",\"value\":1},"
		  "{\"name\":\"a\",\"value\":1,\"labels\":{\"ok\":\"1\",\"a-b\":\"x\"}}]}]}",
		  "batches[0].series[1].labels.a-b", "batches[0].series[1].labels[1].name" },
		{ "{\"batches\":[{\"ts_ms\":@TS@,\"series\":[{\"name\":\"a\",\"value\":1,"
		  "\"labels\":{\"\":\"x\"}}]}]}",
		  "batches[0].series[0].labels.", "batches[0].series[0].labels[0].name" },
		{ "{\"batches\":[{\"ts_ms\":@TS@,\"series\":[{\"name\":\"a\",\"value\":1,"
		  "\"labels\":{\"a\":\"1\",\"b\":\"1\",\"c\":\"1\",\"d\":\"1\",\"e\":\"1\",\"f\":\"1\","
		  "\"g\":\"1\",\"h\":\"1\",\"i\":\"1\"}}]}]}",
		  "batches[0].series[0].labels", NULL },
		{ "{\"batches\":[{\"ts_ms\":@TS@,\"monitors\":[{\"name\":\"m\",\"state\":\"odd\"}]}]}",
		  "batches[0].monitors[0].state", NULL },
		{ "{\"batches\":[{\"ts_ms\":@TS@,\"monitors\":[{\"name\":\"m\",\"state\":\"\"}]}]}",
		  "batches[0].monitors[0].state", NULL },
		{ "{\"batches\":[{\"ts_ms\":@TS@,\"monitors\":[{\"name\":\"m\",\"state\":\"ok\"},"
		  "{\"name\":\"\",\"state\":\"ok\"}]}]}",
		  "batches[0].monitors[1].name", NULL },
		{ "{\"batches\":[{\"ts_ms\":@TS@},{\"ts_ms\":-1}]}", "batches[1].ts_ms", NULL },
		{ "{\"batches\":[{\"ts_ms\":@TS@},{\"ts_ms\":0}]}", "batches[1].ts_ms", NULL },
	};
	int64_t now = now_ms(), ts = now - 60000;
	char *t, *big;
	json_t *push, *x;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = batch_text(bad[i].batch, ts);
		push = parse(t);
		refused_both_ways(push, bad[i].jfield, bad[i].wfield ? bad[i].wfield : bad[i].jfield,
				  now);
		json_decref(push);
		free(t);
	}
	/* in the future, by the same clock: the same seconds in the message */
	t = batch_text("{\"batches\":[{\"ts_ms\":@TS@}]}", now + PUSH_FUTURE_MS + 60000);
	push = parse(t);
	refused_both_ways(push, "batches[0].ts_ms", "batches[0].ts_ms", now);
	json_decref(push);
	free(t);
	/* a label value and a monitor error one byte too long */
	big = xs(PUSH_LABEL_MAX + 1);
	push = json_pack("{s:[{s:I,s:[{s:s,s:i,s:{s:s}}]}]}", "batches", "ts_ms", (json_int_t)ts,
			 "series", "name", "a", "value", 1, "labels", "k", big);
	refused_both_ways(push, "batches[0].series[0].labels.k",
			  "batches[0].series[0].labels[0].value", now);
	json_decref(push);
	free(big);
	big = xs(PUSH_ERROR_MAX + 1);
	push = json_pack("{s:[{s:I,s:[{s:s,s:s,s:s}]}]}", "batches", "ts_ms", (json_int_t)ts,
			 "monitors", "name", "m", "state", "failed", "error", big);
	refused_both_ways(push, "batches[0].monitors[0].error", "batches[0].monitors[0].error",
			  now);
	json_decref(push);
	free(big);
	/* one series, one monitor and one batch too many */
	x = json_array();
	for (int i = 0; i <= PUSH_MAX_SERIES; i++)
		json_array_append_new(x, json_pack("{s:s,s:i}", "name", "s", "value", i));
	push = json_pack("{s:[{s:I,s:o}]}", "batches", "ts_ms", (json_int_t)ts, "series", x);
	refused_both_ways(push, "batches[0].series", "batches[0].series", now);
	json_decref(push);
	x = json_array();
	for (int i = 0; i <= PUSH_MAX_MONITORS; i++)
		json_array_append_new(x, json_pack("{s:s,s:s}", "name", "m", "state", "ok"));
	push = json_pack("{s:[{s:I,s:o}]}", "batches", "ts_ms", (json_int_t)ts, "monitors", x);
	refused_both_ways(push, "batches[0].monitors", "batches[0].monitors", now);
	json_decref(push);
	x = json_array();
	for (int i = 0; i <= PUSH_MAX_BATCHES_PER_REQUEST; i++)
		json_array_append_new(x, json_pack("{s:I}", "ts_ms", (json_int_t)ts + i));
	push = json_pack("{s:o}", "batches", x);
	refused_both_ways(push, "batches", "batches", now);
	json_decref(push);
}

/* --- what only the protobuf body can get wrong: written with protobuf-c
 * directly (pushwire's encoder always writes a time and a value) --- */

static Herd__PushLabel pl;
static Herd__PushLabel *plp[1] = { &pl };
static Herd__PushSeries ps;
static Herd__PushSeries *psp[1] = { &ps };
static Herd__PushBatch pb;
static Herd__PushBatch *pbp[1] = { &pb };
static Herd__Push push_msg;

/* One batch of one series "a" = 1 of one label k="v", at now - 1 min. */
static void
raw_reset(void)
{
	herd__push_label__init(&pl);
	pl.has_name = pl.has_value = 1;
	pl.name = (ProtobufCBinaryData){ 1, (uint8_t *)"k" };
	pl.value = (ProtobufCBinaryData){ 1, (uint8_t *)"v" };
	herd__push_series__init(&ps);
	ps.has_name = ps.has_value = 1;
	ps.name = (ProtobufCBinaryData){ 1, (uint8_t *)"a" };
	ps.value = 1;
	ps.n_labels = 1;
	ps.labels = plp;
	herd__push_batch__init(&pb);
	pb.has_ts_ms = 1;
	pb.ts_ms = now_ms() - 60000;
	pb.n_series = 1;
	pb.series = psp;
	herd__push__init(&push_msg);
	push_msg.n_batches = 1;
	push_msg.batches = pbp;
}

/* The raw message packed and read as the handler does: its code, *err. */
static int
raw_decode(struct herr *err)
{
	struct metrics_push p;
	size_t len = herd__push__pack(&push_msg, body);
	int rc = wire_decode(body, len, now_ms(), &p, err);

	release(&p);
	pushwire_arena_release(&arena);
	return rc;
}

static void
test_wire_only(void **state)
{
	struct herr err = HERR_INIT;
	struct metrics_push p;

	raw_reset();
	assert_int_equal(raw_decode(&err), 0);
	/* a NUL inside a label value, a label name, a series name */
	pl.value = (ProtobufCBinaryData){ 3, (uint8_t *)"a\0b" };
	assert_int_equal(raw_decode(&err), HERR_INVALID);
	assert_string_equal(err.field, "batches[0].series[0].labels[0].value");
	raw_reset();
	pl.name = (ProtobufCBinaryData){ 2, (uint8_t *)"k\0" };
	assert_int_equal(raw_decode(&err), HERR_INVALID);
	assert_string_equal(err.field, "batches[0].series[0].labels[0].name");
	raw_reset();
	ps.name = (ProtobufCBinaryData){ 2, (uint8_t *)"\0a" };
	assert_int_equal(raw_decode(&err), HERR_INVALID);
	assert_string_equal(err.field, "batches[0].series[0].name");
	/* no value: the field JSON names for a value that is no number */
	raw_reset();
	ps.has_value = 0;
	assert_int_equal(raw_decode(&err), HERR_INVALID);
	assert_string_equal(err.field, "batches[0].series[0].value");
	/* no time: as JSON without ts_ms, same message */
	raw_reset();
	pb.has_ts_ms = 0;
	assert_int_equal(raw_decode(&err), HERR_INVALID);
	assert_string_equal(err.field, "batches[0].ts_ms");
	{
		struct herr ej = HERR_INIT;
		struct metrics_push pj;
		json_t *j = parse("[{\"series\":[]}]");

		assert_int_equal(metrics_push_decode(j, NULL, now_ms(), &pj, &ej), HERR_INVALID);
		assert_string_equal(ej.msg, err.msg);
		metrics_push_release(&pj);
		json_decref(j);
	}
	/* a dropped count past JSON's integers */
	raw_reset();
	push_msg.has_dropped = 1;
	push_msg.dropped = (uint64_t)INT64_MAX + 1;
	assert_int_equal(raw_decode(&err), HERR_INVALID);
	assert_string_equal(err.field, "dropped");
	/* bytes that are no Push */
	assert_int_equal(wire_decode("\xff\xff\xff\xff", 4, now_ms(), &p, &err), HERR_INVALID);
	assert_string_equal(err.field, "body");
	release(&p);
	pushwire_arena_release(&arena);
}

/* An empty body is {"batches":[]}. */
static void
test_empty_body(void **state)
{
	struct herr ej = HERR_INIT, ew = HERR_INIT;
	struct metrics_push pj, pw;
	json_t *push = parse("{\"batches\":[]}");

	assert_int_equal(metrics_push_decode(json_object_get(push, "batches"), NULL, now_ms(), &pj,
					     &ej), 0);
	assert_int_equal(wire_decode("", 0, now_ms(), &pw, &ew), 0);
	assert_non_null(pw.batches);
	assert_same(&pj, &pw);
	metrics_push_release(&pj);
	release(&pw);
	pushwire_arena_release(&arena);
	json_decref(push);
}

/* A small body announcing more than its budget: 2 bytes per empty series
 * on the wire, ~100 decoded. */
static void
test_budget(void **state)
{
	enum { N = 200000 };
	static Herd__PushSeries *many[N];
	static Herd__PushSeries empty;
	struct herr err = HERR_INIT;

	raw_reset();
	herd__push_series__init(&empty);
	for (size_t i = 0; i < N; i++)
		many[i] = &empty;
	pb.n_series = N;
	pb.series = many;
	assert_true(herd__push__get_packed_size(&push_msg) < sizeof(body));
	assert_int_equal(raw_decode(&err), HERR_TOOBIG);
	assert_string_equal(err.field, "body");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_push),
		cmocka_unit_test(test_same_refusals),
		cmocka_unit_test(test_wire_only),
		cmocka_unit_test(test_empty_body),
		cmocka_unit_test(test_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
