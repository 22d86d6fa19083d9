/* test-pushwire.c - the agents' protobuf push: batches encoded and framed
 * decode to the same values (NaN and infinities, labels, monitors with and
 * without an error, the dropped count); a batch too big keeps the most
 * series that fit and counts the rest; and the decoder refuses, naming the
 * field, a NUL inside a string, a missing value, too many batches, bytes
 * that are no Push, and a body that would allocate past its budget. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "push.pb-c.h"
#include "pushwire.h"

static const struct pushwire_label lab_a[] = { { "scope", "machine" }, { "mode", "user" } };
static const struct pushwire_label lab_b[] = { { "mount", "/" } };
static const struct pushwire_series ser1[] = {
	{ "cpu_busy_pct", 12.5, lab_a, 1 },
	{ "cpu_mode_pct", 8.25, lab_a, 2 },
	{ "disk_used_bytes", 17785647104.0, lab_b, 1 },
	{ "pods", NAN, NULL, 0 },
};
static const struct pushwire_series ser2[] = {
	{ "load1", INFINITY, NULL, 0 },
	{ "load5", -INFINITY, lab_b, 1 },
};
static const struct pushwire_monitor mon1[] = { { "busy", "ok", NULL },
						{ "k8s", "failed", "exit status 3" } };

static void
same_value(double want, double got)
{
	if (isnan(want))
		assert_true(isnan(got));
	else
		assert_true(want == got);
}

static void
same_batch(const struct pushwire_batch *want, const struct pushwire_batch *got)
{
	assert_true(got->has_ts);
	assert_int_equal(got->ts_ms, want->ts_ms);
	assert_int_equal(got->nseries, want->nseries);
	assert_int_equal(got->nmonitors, want->nmonitors);
	for (size_t i = 0; i < want->nseries; i++) {
		const struct pushwire_series *w = &want->series[i], *g = &got->series[i];

		assert_string_equal(g->name, w->name);
		same_value(w->value, g->value);
		assert_int_equal(g->nlabels, w->nlabels);
		for (size_t k = 0; k < w->nlabels; k++) {
			assert_string_equal(g->labels[k].name, w->labels[k].name);
			assert_string_equal(g->labels[k].value, w->labels[k].value);
		}
	}
	for (size_t i = 0; i < want->nmonitors; i++) {
		assert_string_equal(got->monitors[i].name, want->monitors[i].name);
		assert_string_equal(got->monitors[i].state, want->monitors[i].state);
		if (want->monitors[i].error)
			assert_string_equal(got->monitors[i].error, want->monitors[i].error);
		else
			assert_null(got->monitors[i].error);
	}
}

static void
round_trip(void **state)
{
	const struct pushwire_batch in[] = {
		{ .ts_ms = 1795541845200, .series = ser1, .nseries = 4, .monitors = mon1, .nmonitors = 2 },
		{ .ts_ms = INT64_MAX, .series = ser2, .nseries = 2 },
	};
	uint8_t b0[1024], b1[1024], body[4096];
	struct pushwire_blob blobs[2];
	struct pushwire_arena *a = malloc(sizeof(*a));
	struct pushwire_push p;
	struct herr err = HERR_INIT;
	size_t cut = 99, len;

	blobs[0] = (struct pushwire_blob){ b0, pushwire_encode_batch(&in[0], b0, sizeof(b0), &cut) };
	assert_int_equal(cut, 0);
	blobs[1] = (struct pushwire_blob){ b1, pushwire_encode_batch(&in[1], b1, sizeof(b1), &cut) };
	assert_int_equal(cut, 0);
	assert_true(blobs[0].len > 0 && blobs[1].len > 0);
	len = pushwire_frame(blobs, 2, true, 7, body, sizeof(body));
	assert_true(len > blobs[0].len + blobs[1].len);
	assert_true(len <= blobs[0].len + blobs[1].len + 2 * PUSHWIRE_BATCH_OVERHEAD +
				   PUSHWIRE_DROPPED_MAX);

	assert_int_equal(pushwire_decode(body, len, 100, a, &p, &err), 0);
	assert_int_equal(p.nbatches, 2);
	assert_true(p.has_dropped);
	assert_int_equal(p.dropped, 7);
	same_batch(&in[0], &p.batches[0]);
	same_batch(&in[1], &p.batches[1]);
	pushwire_arena_release(a);

	/* without the dropped count, it is absent, not 0 */
	len = pushwire_frame(blobs, 1, false, 0, body, sizeof(body));
	assert_int_equal(pushwire_decode(body, len, 100, a, &p, &err), 0);
	assert_false(p.has_dropped);
	assert_int_equal(p.nbatches, 1);
	pushwire_arena_release(a);

	/* a body one byte too small for the frame: nothing */
	assert_int_equal(pushwire_frame(blobs, 2, true, 7, body,
					 blobs[0].len + blobs[1].len + 4),
			 0);
	free(a);
}

/* An empty body is a Push of no batches, as {"batches":[]} is. */
static void
empty_body(void **state)
{
	struct pushwire_arena *a = malloc(sizeof(*a));
	struct pushwire_push p;
	struct herr err = HERR_INIT;

	assert_int_equal(pushwire_decode("", 0, 100, a, &p, &err), 0);
	assert_int_equal(p.nbatches, 0);
	assert_false(p.has_dropped);
	pushwire_arena_release(a);
	free(a);
}

/* Too big for outsz: the most series that fit, the rest counted. */
static void
cut_series(void **state)
{
	enum { N = 200 };
	struct pushwire_series s[N];
	char names[N][16];
	struct pushwire_batch b = { .ts_ms = 1700000000000, .series = s, .nseries = N,
				    .monitors = mon1, .nmonitors = 2 };
	uint8_t out[8192];
	size_t cut, len, len1, kept;
	struct pushwire_arena *a = malloc(sizeof(*a));
	struct pushwire_push p;
	struct herr err = HERR_INIT;

	for (size_t i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "series_%zu", i);
		s[i] = (struct pushwire_series){ names[i], (double)i, lab_a, 2 };
	}
	len = pushwire_encode_batch(&b, out, 1000, &cut);
	assert_true(len > 0 && len <= 1000);
	assert_true(cut > 0 && cut < N);
	kept = N - cut;
	/* one series more would not have fitted */
	b.nseries = kept + 1;
	len1 = pushwire_encode_batch(&b, out, sizeof(out), NULL);
	assert_true(len1 > 1000);
	b.nseries = N;
	len = pushwire_encode_batch(&b, out, 1000, &cut);
	{
		uint8_t body[1100];
		struct pushwire_blob blob = { out, len };
		size_t blen = pushwire_frame(&blob, 1, false, 0, body, sizeof(body));

		assert_int_equal(pushwire_decode(body, blen, 1, a, &p, &err), 0);
		assert_int_equal(p.batches[0].nseries, kept);
		assert_int_equal(p.batches[0].nmonitors, 2);
		assert_string_equal(p.batches[0].series[kept - 1].name, names[kept - 1]);
		pushwire_arena_release(a);
	}
	/* not even the monitors fit: nothing, every series counted */
	assert_int_equal(pushwire_encode_batch(&b, out, 10, &cut), 0);
	assert_int_equal(cut, N);
	free(a);
}

/* A body written by protobuf-c directly, to send what the encoder never
 * writes. */
static size_t
pack_push(Herd__Push *m, uint8_t **out)
{
	size_t n = herd__push__get_packed_size(m);

	*out = malloc(n + 1);
	return herd__push__pack(m, *out);
}

/* m packed, less its last cut bytes, is refused by the decoder (at most
 * max_batches) as HERR_INVALID naming field. */
static void
decode_refused(Herd__Push *m, size_t max_batches, size_t cut, const char *field)
{
	struct pushwire_arena *a = malloc(sizeof(*a));
	struct pushwire_push p;
	struct herr err = HERR_INIT;
	uint8_t *body;
	size_t len = pack_push(m, &body);

	assert_int_equal(pushwire_decode(body, len - cut, max_batches, a, &p, &err), HERR_INVALID);
	assert_string_equal(err.field, field);
	pushwire_arena_release(a);
	free(body);
	free(a);
}

static void
refused(void **state)
{
	Herd__PushLabel l = HERD__PUSH_LABEL__INIT, *lp = &l;
	Herd__PushSeries s = HERD__PUSH_SERIES__INIT, *sp = &s;
	Herd__PushMonitor mo = HERD__PUSH_MONITOR__INIT, *mop = &mo;
	Herd__PushBatch b = HERD__PUSH_BATCH__INIT, *bp[3] = { &b, &b, &b };
	Herd__Push m = HERD__PUSH__INIT;
	struct pushwire_arena *a = malloc(sizeof(*a));
	struct pushwire_push p;
	struct herr err = HERR_INIT;
	uint8_t *body;
	size_t len;

	s.has_name = l.has_name = l.has_value = 1;
	s.name = (ProtobufCBinaryData){ 4, (uint8_t *)"load" };
	s.has_value = 1;
	s.value = 1;
	s.n_labels = 1;
	s.labels = &lp;
	l.name = (ProtobufCBinaryData){ 5, (uint8_t *)"scope" };
	l.value = (ProtobufCBinaryData){ 3, (uint8_t *)"a\0b" };
	b.has_ts_ms = 1;
	b.ts_ms = 1700000000000;
	b.n_series = 1;
	b.series = &sp;
	m.n_batches = 1;
	m.batches = bp;

	/* a NUL inside a label value */
	decode_refused(&m, 100, 0, "batches[0].series[0].labels[0].value");

	/* ... inside a monitor's error */
	l.value = (ProtobufCBinaryData){ 1, (uint8_t *)"a" };
	b.n_monitors = 1;
	b.monitors = &mop;
	mo.has_name = mo.has_state = mo.has_error = 1;
	mo.name = (ProtobufCBinaryData){ 4, (uint8_t *)"busy" };
	mo.state = (ProtobufCBinaryData){ 6, (uint8_t *)"failed" };
	mo.error = (ProtobufCBinaryData){ 2, (uint8_t *)"\0x" };
	decode_refused(&m, 100, 0, "batches[0].monitors[0].error");
	b.n_monitors = 0;

	/* a series without a value */
	s.has_value = 0;
	decode_refused(&m, 100, 0, "batches[0].series[0].value");
	s.has_value = 1;

	/* more batches than allowed; the same body allowed them */
	m.n_batches = 3;
	decode_refused(&m, 2, 0, "batches");
	len = pack_push(&m, &body);
	assert_int_equal(pushwire_decode(body, len, 3, a, &p, &err), 0);
	assert_int_equal(p.nbatches, 3);
	pushwire_arena_release(a);
	free(body);

	/* bytes that are no Push (JSON, a truncated message) */
	err = (struct herr)HERR_INIT;
	assert_int_equal(pushwire_decode("{\"batches\":[]}", 14, 100, a, &p, &err), HERR_INVALID);
	assert_string_equal(err.field, "body");
	pushwire_arena_release(a);
	m.n_batches = 1;
	decode_refused(&m, 100, 1, "body");
	free(a);
}

/* Many empty series cost the decoder far more than their 2 bytes each:
 * refused for the budget, not allocated. A real push as large decodes
 * (and spills from the arena's own bytes to heap chunks). */
static void
budget(void **state)
{
	enum { N = 200000 };
	Herd__PushSeries e = HERD__PUSH_SERIES__INIT, **sp = malloc(N * sizeof(*sp));
	Herd__PushBatch b = HERD__PUSH_BATCH__INIT, *bp = &b;
	Herd__Push m = HERD__PUSH__INIT;
	struct pushwire_arena *a = malloc(sizeof(*a));
	struct pushwire_push p;
	struct herr err = HERR_INIT;
	uint8_t *body;
	size_t len;

	for (size_t i = 0; i < N; i++)
		sp[i] = &e;
	b.n_series = N;
	b.series = sp;
	m.n_batches = 1;
	m.batches = &bp;
	len = pack_push(&m, &body);
	assert_int_equal(pushwire_decode(body, len, 100, a, &p, &err), HERR_TOOBIG);
	assert_string_equal(err.field, "body");
	pushwire_arena_release(a);
	free(body);
	free(sp);

	/* 50 batches of 200 series with 2 labels: past the arena's own bytes */
	{
		enum { NB = 50, NS = 200 };
		struct pushwire_series s[NS];
		struct pushwire_batch pb = { .ts_ms = 1700000000000, .series = s, .nseries = NS };
		struct pushwire_blob blobs[NB];
		size_t cap = 64u << 10, total = 0;
		uint8_t *enc = malloc(cap * NB), *fr = malloc(cap * NB);

		for (size_t i = 0; i < NS; i++)
			s[i] = (struct pushwire_series){ "cpu_mode_pct", (double)i, lab_a, 2 };
		for (size_t i = 0; i < NB; i++) {
			pb.ts_ms = 1700000000000 + (int64_t)i * 1000;
			blobs[i].data = enc + i * cap;
			blobs[i].len = pushwire_encode_batch(&pb, enc + i * cap, cap, NULL);
			total += blobs[i].len;
		}
		len = pushwire_frame(blobs, NB, true, 0, fr, cap * NB);
		assert_true(len > total);
		err = (struct herr)HERR_INIT;
		assert_int_equal(pushwire_decode(fr, len, 100, a, &p, &err), 0);
		assert_non_null(a->chunks);
		assert_int_equal(p.nbatches, NB);
		assert_int_equal(p.batches[NB - 1].ts_ms, 1700000000000 + (NB - 1) * 1000);
		assert_int_equal(p.batches[NB - 1].nseries, NS);
		same_value(NS - 1, p.batches[NB - 1].series[NS - 1].value);
		assert_string_equal(p.batches[NB - 1].series[NS - 1].labels[1].value, "user");
		pushwire_arena_release(a);
		assert_null(a->chunks);
		free(enc);
		free(fr);
	}
	free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip),
		cmocka_unit_test(empty_body),
		cmocka_unit_test(cut_series),
		cmocka_unit_test(refused),
		cmocka_unit_test(budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
