/* test-promwire.c - remote write bodies: a round trip keeps every label and
 * sample (NaN and 64-bit timestamps intact), the snappy framing is the block
 * format the spec names, and every limit and malformed body is refused with
 * a message naming what is wrong, before the callback sees anything. */
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
#include <snappy-c.h>

#include "promwire.h"

struct seen {
	size_t series, samples;
	char first_name[64];
	double last_value;
	int64_t last_ts;
	bool saw_nan;
};

static int
count_series(const struct pw_series *s, void *arg)
{
	struct seen *v = arg;
	if (v->series == 0)
		for (size_t i = 0; i < s->nlabels; i++)
			if (strcmp(s->labels[i].name, "__name__") == 0)
				snprintf(v->first_name, sizeof(v->first_name), "%s", s->labels[i].value);
	v->series++;
	v->samples += s->nsamples;
	for (size_t i = 0; i < s->nsamples; i++) {
		if (isnan(s->samples[i].value))
			v->saw_nan = true;
		else
			v->last_value = s->samples[i].value;
		v->last_ts = s->samples[i].ts_ms;
	}
	return 0;
}

static void
round_trip(void **state)
{
	struct pw_label l1[] = { { "__name__", "cpu_busy_pct" }, { "group", "nodes" }, { "host", "h-1" } };
	struct pw_label l2[] = { { "__name__", "load1" }, { "host", "h-2" } };
	struct pw_sample s1[] = { { 12.5, 1700000000000 }, { NAN, 1700000001000 } };
	struct pw_sample s2[] = { { -3.25, INT64_MAX } };
	struct pw_series ser[] = { { l1, 3, s1, 2 }, { l2, 2, s2, 1 } };
	struct herr err = HERR_INIT;
	char *body;
	size_t len;

	assert_int_equal(promwire_encode(ser, 2, &body, &len, &err), 0);
	/* The body is a snappy block whose content is a WriteRequest. */
	size_t raw = 0;
	assert_int_equal(snappy_uncompressed_length(body, len, &raw), SNAPPY_OK);
	assert_true(raw > 0);

	struct seen v = { 0 };
	assert_int_equal(promwire_decode(body, len, NULL, count_series, &v, &err), 0);
	assert_int_equal(v.series, 2);
	assert_int_equal(v.samples, 3);
	assert_string_equal(v.first_name, "cpu_busy_pct");
	assert_true(v.saw_nan);
	assert_true(v.last_value == -3.25);
	assert_true(v.last_ts == INT64_MAX);
	free(body);
}

static void
empty_request(void **state)
{
	struct herr err = HERR_INIT;
	char *body;
	size_t len;
	struct seen v = { 0 };

	assert_int_equal(promwire_encode(NULL, 0, &body, &len, &err), 0);
	assert_int_equal(promwire_decode(body, len, NULL, count_series, &v, &err), 0);
	assert_int_equal(v.series, 0);
	free(body);
}

static int
decode_err(const struct pw_series *ser, size_t n, const struct pw_limits *lim, struct herr *err,
	   size_t *called)
{
	char *body;
	size_t len;
	struct seen v = { 0 };
	struct herr e2 = HERR_INIT;

	assert_int_equal(promwire_encode(ser, n, &body, &len, &e2), 0);
	int rc = promwire_decode(body, len, lim, count_series, &v, err);
	*called = v.series;
	free(body);
	return rc;
}

static void
refuses_bad_series(void **state)
{
	struct pw_sample s[] = { { 1, 1 } };
	struct pw_label noname[] = { { "host", "h" } };
	struct pw_label badname[] = { { "__name__", "m" }, { "1host", "h" } };
	struct pw_label twice[] = { { "__name__", "m" }, { "host", "a" }, { "host", "b" } };
	struct pw_label emptyname[] = { { "__name__", "" } };
	struct pw_label ok[] = { { "__name__", "m" } };
	struct herr err = HERR_INIT;
	size_t called;

	/* A good series before the bad one: nothing is passed on. */
	struct pw_series a[] = { { ok, 1, s, 1 }, { noname, 1, s, 1 } };
	assert_int_equal(decode_err(a, 2, NULL, &err, &called), HERR_INVALID);
	assert_non_null(strstr(err.msg, "series 1 has no __name__"));
	assert_int_equal(called, 0);

	struct pw_series b[] = { { badname, 2, s, 1 } };
	assert_int_equal(decode_err(b, 1, NULL, &err, &called), HERR_INVALID);
	assert_non_null(strstr(err.msg, "'1host' is not valid"));

	struct pw_series c[] = { { twice, 3, s, 1 } };
	assert_int_equal(decode_err(c, 1, NULL, &err, &called), HERR_INVALID);
	assert_non_null(strstr(err.msg, "'host' appears twice"));

	struct pw_series d[] = { { emptyname, 1, s, 1 } };
	assert_int_equal(decode_err(d, 1, NULL, &err, &called), HERR_INVALID);
}

static void
limits(void **state)
{
	struct pw_sample s[] = { { 1, 1 }, { 2, 2 }, { 3, 3 } };
	struct pw_label l[] = { { "__name__", "m" }, { "a", "1" }, { "b", "1234567890" } };
	struct pw_series ser[] = { { l, 3, s, 3 }, { l, 3, s, 3 } };
	struct herr err = HERR_INIT;
	size_t called;

	struct pw_limits series = { .max_series = 1 };
	assert_int_equal(decode_err(ser, 2, &series, &err, &called), HERR_TOOBIG);
	assert_non_null(strstr(err.msg, "2 series, over 1"));
	struct pw_limits labels = { .max_labels = 2 };
	assert_int_equal(decode_err(ser, 2, &labels, &err, &called), HERR_TOOBIG);
	assert_non_null(strstr(err.msg, "3 labels, over 2"));
	struct pw_limits samples = { .max_samples = 5 };
	assert_int_equal(decode_err(ser, 2, &samples, &err, &called), HERR_TOOBIG);
	assert_non_null(strstr(err.msg, "6 samples, over 5"));
	struct pw_limits label = { .max_label = 8 };
	assert_int_equal(decode_err(ser, 2, &label, &err, &called), HERR_TOOBIG);
	struct pw_limits body = { .max_body = 4 };
	assert_int_equal(decode_err(ser, 2, &body, &err, &called), HERR_TOOBIG);
	assert_non_null(strstr(err.msg, "over 4"));
	struct pw_limits decoded = { .max_decoded = 16 };
	assert_int_equal(decode_err(ser, 2, &decoded, &err, &called), HERR_TOOBIG);
	assert_non_null(strstr(err.msg, "decompresses to"));
	assert_int_equal(called, 0);
	struct pw_limits fits = { .max_series = 2, .max_labels = 3, .max_samples = 6 };
	assert_int_equal(decode_err(ser, 2, &fits, &err, &called), 0);
	assert_int_equal(called, 2);
}

static void
refuses_malformed(void **state)
{
	struct herr err = HERR_INIT;
	struct seen v = { 0 };

	/* Not snappy at all. */
	assert_int_equal(promwire_decode("\xff\xff\xff\xff\xff\xff", 6, NULL, count_series, &v, &err),
			 HERR_INVALID);
	/* Snappy of bytes that are not a WriteRequest (a truncated field). */
	const char junk[] = { 0x0a, 0x7f, 0x01 };
	char z[64];
	size_t zlen = sizeof(z);
	assert_int_equal(snappy_compress(junk, sizeof(junk), z, &zlen), SNAPPY_OK);
	assert_int_equal(promwire_decode(z, zlen, NULL, count_series, &v, &err), HERR_INVALID);
	assert_non_null(strstr(err.msg, "not a remote write request"));
	/* A snappy header announcing 256 MiB in a 6-byte body. */
	const char huge[] = { (char)0x80, (char)0x80, (char)0x80, (char)0x80, 0x01, 0x00 };
	assert_int_equal(promwire_decode(huge, sizeof(huge), NULL, count_series, &v, &err),
			 HERR_TOOBIG);
	assert_int_equal(v.series, 0);
}

static int
stop_at_first(const struct pw_series *s, void *arg)
{
	(*(int *)arg)++;
	return HERR_CONFLICT;
}

static void
callback_stops(void **state)
{
	struct pw_sample s[] = { { 1, 1 } };
	struct pw_label l[] = { { "__name__", "m" } };
	struct pw_series ser[] = { { l, 1, s, 1 }, { l, 1, s, 1 } };
	struct herr err = HERR_INIT;
	char *body;
	size_t len;
	int calls = 0;

	assert_int_equal(promwire_encode(ser, 2, &body, &len, &err), 0);
	assert_int_equal(promwire_decode(body, len, NULL, stop_at_first, &calls, &err), HERR_CONFLICT);
	assert_int_equal(calls, 1);
	free(body);
}

static void
encode_refuses_null(void **state)
{
	struct pw_sample s[] = { { 1, 1 } };
	struct pw_label l[] = { { "__name__", NULL } };
	struct pw_series ser[] = { { l, 1, s, 1 } };
	struct herr err = HERR_INIT;
	char *body = (char *)1;
	size_t len;

	assert_int_equal(promwire_encode(ser, 1, &body, &len, &err), HERR_INVALID);
	assert_null(body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip),      cmocka_unit_test(empty_request),
		cmocka_unit_test(refuses_bad_series), cmocka_unit_test(limits),
		cmocka_unit_test(refuses_malformed), cmocka_unit_test(callback_stops),
		cmocka_unit_test(encode_refuses_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
