/* test-tsdb-chunk.c - the metric codec: exact round trips (random, constant,
 * NaN payloads, +-Inf, -0.0, huge jumps, out-of-order and duplicate
 * timestamps), the mode it picks (integers and decimals coded as integers,
 * constants nearly free), shared timestamp blocks, and decoders refusing
 * truncated or garbled input without crashing. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "herr.h"
#include "tsdb/chunk.h"

static uint64_t rng = 88172645463325252ULL;

static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t
bits(double v)
{
	uint64_t u;

	memcpy(&u, &v, 8);
	return u;
}

static double
from_bits(uint64_t u)
{
	double v;

	memcpy(&v, &u, 8);
	return v;
}

/* Encodes, decodes, compares bit for bit; returns the encoded size. */
static size_t
roundtrip(const int64_t *ts, const double *v, size_t n)
{
	uint8_t *buf = malloc(chunk_bound(n));
	int64_t *ts2 = malloc((n + 1) * sizeof(*ts2));
	double *v2 = malloc((n + 1) * sizeof(*v2));
	size_t len = chunk_encode(ts, v, n, buf);
	int got;

	assert_true(len <= chunk_bound(n));
	got = chunk_decode(buf, len, ts2, v2, n);
	if (got != (int)n)
		fail_msg("decoded %d samples, want %zu", got, n);
	for (size_t i = 0; i < n; i++) {
		if (ts2[i] != ts[i])
			fail_msg("ts[%zu] = %lld, want %lld", i, (long long)ts2[i], (long long)ts[i]);
		if (bits(v2[i]) != bits(v[i]))
			fail_msg("v[%zu] = %.17g (%016llx), want %.17g (%016llx)", i, v2[i],
				 (unsigned long long)bits(v2[i]), v[i], (unsigned long long)bits(v[i]));
	}
	/* every strict prefix must be refused or decode (never crash) */
	for (size_t cut = 0; cut < len; cut += 1 + len / 64) {
		uint8_t *t = malloc(cut ? cut : 1);
		memcpy(t, buf, cut);
		got = chunk_decode(t, cut, ts2, v2, n);
		assert_true(got < 0 || got == (int)n);
		free(t);
	}
	free(buf);
	free(ts2);
	free(v2);
	return len;
}

static int
val_mode(const double *v, size_t n, int *decimals)
{
	uint8_t *buf = malloc(chunk_val_bound(n));
	size_t len = chunk_val_encode(v, n, buf);
	int m = chunk_val_mode(buf, len, decimals);

	free(buf);
	return m;
}

static void
regular_ts(int64_t *ts, size_t n, int64_t start, int64_t step, int jitter)
{
	for (size_t i = 0; i < n; i++)
		ts[i] = start + (int64_t)i * step + (jitter ? (int64_t)(rnd() % (2 * jitter + 1)) - jitter : 0);
}

static void
test_small_counts(void **state)
{
	int64_t ts[3] = { 1700000000000, 1700000005000, 1700000010003 };
	double v[3] = { 1.5, -2, 1e300 };

	(void)state;
	for (size_t n = 0; n <= 3; n++)
		roundtrip(ts, v, n);
	/* n = 1 and 2 in integer mode (order may equal n) */
	v[0] = 7;
	v[1] = 9;
	roundtrip(ts, v, 1);
	roundtrip(ts, v, 2);
}

static void
test_random(void **state)
{
	enum { N = 1000 };
	int64_t ts[N];
	double v[N];

	(void)state;
	for (int r = 0; r < 50; r++) {
		size_t n = 1 + rnd() % N;
		regular_ts(ts, n, 1700000000000 + (int64_t)(rnd() % 1000000), 1 + (int64_t)(rnd() % 60000),
			   (int)(rnd() % 50));
		for (size_t i = 0; i < n; i++) {
			switch (r % 4) {
			case 0: v[i] = from_bits(rnd()); break;                    /* any bits, NaNs too */
			case 1: v[i] = (double)(rnd() % 1000) / 7.0; break;         /* noisy floats */
			case 2: v[i] = (double)((int64_t)(rnd() % 2000001) - 1000000); break;
			default: v[i] = round((double)(rnd() % 100000) / 3.0) / 100.0; break;
			}
		}
		roundtrip(ts, v, n);
	}
}

static void
test_constant(void **state)
{
	enum { N = 360 };
	int64_t ts[N];
	double v[N];
	size_t len;

	(void)state;
	regular_ts(ts, N, 1700000000000, 5000, 0);
	for (size_t i = 0; i < N; i++)
		v[i] = 42.125;
	len = roundtrip(ts, v, N);
	assert_int_equal(val_mode(v, N, NULL), CHUNK_CONST);
	/* regular timestamps and a constant: a handful of bytes for 360 samples */
	if (len > 24)
		fail_msg("constant chunk takes %zu bytes", len);
	for (size_t i = 0; i < N; i++)
		v[i] = NAN;
	roundtrip(ts, v, N);
	assert_int_equal(val_mode(v, N, NULL), CHUNK_CONST);
}

static void
test_special_values(void **state)
{
	int64_t ts[16];
	double v[16] = {
		NAN, -NAN, INFINITY, -INFINITY, -0.0, 0.0, 1.0, -1.0,
		from_bits(0x7ff0000000000001ULL), from_bits(0x7ff8dead00000000ULL),
		from_bits(0xfff0000000000001ULL), 4.9e-324, -4.9e-324, 1.7976931348623157e308,
		-0.0, 0.0,
	};

	(void)state;
	regular_ts(ts, 16, 0, 1000, 0);
	roundtrip(ts, v, 16);
	/* -0.0 among integers must not be coded as the integer 0 */
	{
		double w[4] = { 1, 2, -0.0, 3 };
		roundtrip(ts, w, 4);
		assert_int_equal(val_mode(w, 4, NULL), CHUNK_XOR);
	}
	/* one NaN in an integer series falls back to XOR, still exact */
	{
		double w[5] = { 1, 2, NAN, 4, 5 };
		roundtrip(ts, w, 5);
	}
}

static void
test_huge_jumps(void **state)
{
	int64_t ts[8] = { INT64_MIN, INT64_MAX, 0, -1, 1LL << 62, -(1LL << 62), 5, INT64_MAX };
	double v[8] = { 9007199254740992.0, -9007199254740992.0, 0, 1, 1e15, -1e15, 3, 2 };
	double w[8] = { 1e308, -1e308, 1e-308, 0, 1e308, 3.14, -2.5, 1 };

	(void)state;
	roundtrip(ts, v, 8);
	roundtrip(ts, w, 8);
	/* integers beyond 2^53 are not NUM-exact: still exact through XOR */
	v[3] = 9007199254740993.0 * 4;
	roundtrip(ts, v, 8);
}

static void
test_out_of_order_and_duplicates(void **state)
{
	/* the codec keeps any order exactly; the store decides what to accept */
	int64_t ts[6] = { 1000, 1000, 900, 5000, 4000, 4000 };
	double v[6] = { 1, 2, 3, 4, 5, 6 };

	(void)state;
	roundtrip(ts, v, 6);
}

static void
test_integer_mode(void **state)
{
	enum { N = 360 };
	int64_t ts[N];
	double v[N], per;
	size_t len;
	int d = -1;

	(void)state;
	regular_ts(ts, N, 1700000000000, 5000, 3);
	/* a byte counter growing at a steady rate with noise */
	v[0] = 123456789;
	for (size_t i = 1; i < N; i++)
		v[i] = v[i - 1] + 50000 + (double)(rnd() % 100);
	len = roundtrip(ts, v, N);
	assert_int_equal(val_mode(v, N, &d), CHUNK_NUM);
	assert_int_equal(d, 0);
	per = (double)len / N;
	if (per > 2.5)
		fail_msg("counter: %.2f bytes/sample", per);
	/* a process count that rarely changes */
	for (size_t i = 0; i < N; i++)
		v[i] = 120 + (i > 100) + (i > 250) * 3;
	len = roundtrip(ts, v, N);
	assert_int_equal(val_mode(v, N, &d), CHUNK_NUM);
	per = (double)len / N;
	if (per > 0.9)
		fail_msg("process count: %.2f bytes/sample", per);
	/* a percentage with 2 decimals */
	for (size_t i = 0; i < N; i++)
		v[i] = round(3000 + (double)(rnd() % 500)) / 100.0;
	roundtrip(ts, v, N);
	assert_int_equal(val_mode(v, N, &d), CHUNK_NUM);
	assert_int_equal(d, 2);
	/* full-precision floats: XOR */
	for (size_t i = 0; i < N; i++)
		v[i] = (double)(rnd() % 100000) / 7.0;
	roundtrip(ts, v, N);
	assert_int_equal(val_mode(v, N, NULL), CHUNK_XOR);
}

static void
test_shared_timestamps(void **state)
{
	enum { N = 200 };
	int64_t ts[N], ts2[N];
	uint8_t a[1024], b[1024];
	size_t la, lb, n, used;

	(void)state;
	regular_ts(ts, N, 1700000000000, 5000, 0);
	la = chunk_ts_encode(ts, N, a);
	/* a regular interval is free beyond the header */
	if (la > 12)
		fail_msg("regular timestamps take %zu bytes", la);
	/* jittered timestamps, as a real agent sends them */
	regular_ts(ts, N, 1700000000000, 5000, 4);
	la = chunk_ts_encode(ts, N, a);
	lb = chunk_ts_encode(ts, N, b);
	/* deterministic: the store shares the block of series cut together */
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	assert_int_equal(chunk_ts_decode(a, la, ts2, N, &n, &used), 0);
	assert_int_equal(n, N);
	assert_int_equal(used, la);
	assert_memory_equal(ts, ts2, sizeof(ts));
	/* the count alone */
	assert_int_equal(chunk_ts_decode(a, la, NULL, 0, &n, NULL), 0);
	assert_int_equal(n, N);
	/* too small a buffer is refused */
	assert_int_equal(chunk_ts_decode(a, la, ts2, N - 1, &n, NULL), HERR_INVALID);
}

static void
test_garbage(void **state)
{
	uint8_t buf[512];
	int64_t ts[64];
	double v[64];

	(void)state;
	for (int r = 0; r < 20000; r++) {
		size_t len = rnd() % sizeof(buf);
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rnd();
		if (len)
			buf[0] = CHUNK_VERSION;
		(void)chunk_decode(buf, len, ts, v, 64);
		(void)chunk_val_decode(buf, len, rnd() % 65, v, NULL);
	}
	/* unknown version, empty */
	buf[0] = 9;
	assert_true(chunk_decode(buf, 10, ts, v, 64) < 0);
	assert_true(chunk_decode(buf, 0, ts, v, 64) < 0);
}

static void
test_varints(void **state)
{
	uint8_t b[10];
	uint64_t vals[] = { 0, 1, 127, 128, 16383, 16384, UINT32_MAX, UINT64_MAX }, got;

	(void)state;
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		size_t n = chunk_put_uvarint(b, vals[i]);
		assert_int_equal(chunk_get_uvarint(b, n, &got), n);
		assert_true(got == vals[i]);
		if (n > 1)
			assert_int_equal(chunk_get_uvarint(b, n - 1, &got), 0);
	}
	/* 11-byte and overflowing encodings are refused */
	memset(b, 0xff, sizeof(b));
	assert_int_equal(chunk_get_uvarint(b, 10, &got), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_counts),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_constant),
		cmocka_unit_test(test_special_values),
		cmocka_unit_test(test_huge_jumps),
		cmocka_unit_test(test_out_of_order_and_duplicates),
		cmocka_unit_test(test_integer_mode),
		cmocka_unit_test(test_shared_timestamps),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_varints),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
