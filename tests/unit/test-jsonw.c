/* test-jsonw.c - the JSON writer (lib/jsonw.c) prints what jansson prints:
 * strings with quotes, backslashes, every control character, UTF-8 of 2 to
 * 4 bytes (and invalid UTF-8 refused, as json_dumps refuses it), integers
 * to both ends of int64; the canonical check accepts what json_dumps
 * printed and refuses what jansson would print differently (reals,
 * whitespace, \u escapes jansson does not write, "-0", reserved keys);
 * fmt_time's digits are printf's. Then on a real store: every resource's
 * API form from res_write / res_list_write equals json_dumps(res_to_json())
 * for specs on both paths (copied as stored, and through jansson). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "jsonw.h"
#include "model/res.h"
#include "store/store.h"
#include "util.h"

/* jansson's compact print of the string s (n bytes), or NULL if it refuses */
static char *
jansson_str(const char *s, size_t n)
{
	json_t *v = json_stringn_nocheck(s, n);
	char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	json_decref(v);
	return t;
}

static void
check_str(const char *s, size_t n)
{
	struct buf b;
	char *want = jansson_str(s, n);
	int rc;

	buf_init(&b, 1 << 20);
	rc = jsonw_str(&b, s, n);
	if (want == NULL) {
		assert_int_not_equal(rc, 0);
		assert_int_equal(b.len, 0);
	} else {
		assert_int_equal(rc, 0);
		assert_int_equal(b.len, strlen(want));
		assert_memory_equal(b.p, want, b.len);
	}
	free(want);
	buf_release(&b);
}

static void
test_strings(void **state)
{
	static const char *const cases[] = {
		"", "plain", "q\"uote", "back\\slash", "/slash", "tab\there\nnl\rcr\bbs\fff",
		"\x01\x02\x1f\x7f", "é", "✓ check", "😀 four bytes", "mixed \"é\"\x01 end",
		"\xc3", "\xc3\x28", "\xa0\xa1", "\xe2\x28\xa1", "\xf0\x28\x8c\xbc",
		"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80", "ok\xff",
	};
	char all[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_str(cases[i], strlen(cases[i]));
	for (int c = 0; c < 32; c++)
		all[c] = (char)c;   /* NUL included: \u0000 */
	check_str(all, sizeof(all));
	/* around the short plain text's one-append path (126 bytes): plain, an
	 * escape or UTF-8 as its last byte, and past it */
	for (size_t n = 124; n <= 130; n++) {
		char t[131];

		memset(t, 'a', n);
		check_str(t, n);
		t[n - 1] = '"';
		check_str(t, n);
		t[n - 1] = '\xc3';
		check_str(t, n);
		t[n - 2] = '\xc3', t[n - 1] = '\xa9';
		check_str(t, n);
	}
}

static void
test_integers(void **state)
{
	static const int64_t cases[] = { 0, 1, -1, 9, 10, 12345, -987654321, INT64_MAX, INT64_MIN,
					 INT64_MIN + 1, 1700000000000 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *v = json_integer(cases[i]);
		char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		struct buf b;

		buf_init(&b, 64);
		assert_int_equal(jsonw_int(&b, cases[i]), 0);
		assert_string_equal(b.p, want);
		buf_release(&b);
		free(want);
		json_decref(v);
	}
}

static const char *const reserved[] = { "name", "version", NULL };

/* text is canonical iff expected; when it is, jansson prints it back the same */
static void
check_canon(const char *text, bool expected)
{
	assert_int_equal(jsonw_is_canonical(text, strlen(text), reserved), expected);
	if (expected) {
		json_t *v = json_loads(text, 0, NULL);
		char *back = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(15));
		assert_non_null(v);
		assert_string_equal(back, text);
		free(back);
		json_decref(v);
	}
}

static void
test_canonical(void **state)
{
	/* whatever json_dumps prints compactly with sorted keys, no reals */
	const char *printed[] = {
		"{}", "{\"a\":1}", "{\"a\":[1,2,{\"b\":null}],\"c\":true,\"d\":false}",
		"{\"s\":\"q\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001F é 😀\"}",
		"{\"n\":-5,\"z\":0,\"big\":123456789012345678}", "{\"e\":[],\"o\":{}}",
		"{\"x\":{\"name\":\"nested is fine\"}}",
	};
	for (size_t i = 0; i < sizeof(printed) / sizeof(printed[0]); i++) {
		json_t *v = json_loads(printed[i], 0, NULL);
		char *t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
		check_canon(t, true);
		free(t);
		json_decref(v);
	}
	check_canon("{ \"a\":1}", false);          /* whitespace */
	check_canon("{\"a\":1.0}", false);         /* a real */
	check_canon("{\"a\":1e3}", false);
	check_canon("{\"a\":-0}", false);          /* printed back as 0 */
	check_canon("{\"a\":01}", false);
	check_canon("{\"a\":1234567890123456789}", false);
	check_canon("{\"a\":\"\\u00e9\"}", false); /* printed back as é */
	check_canon("{\"a\":\"\\u001f\"}", false); /* lower-case hex */
	check_canon("{\"a\":\"\\u000A\"}", false); /* printed back as \n */
	check_canon("{\"a\":\"\\/\"}", false);
	check_canon("{\"a\":\"\x01\"}", false);    /* a raw control character */
	check_canon("{\"a\":\"\xc3\x28\"}", false);
	check_canon("{\"name\":\"x\"}", false);    /* a reserved top-level key */
	check_canon("{\"a\":1,\"version\":2}", false);
	check_canon("[1]", false);
	check_canon("{\"a\":1}x", false);
	check_canon("{\"a\":1", false);
	check_canon("{\"a\":tru}", false);
	check_canon("", false);
}

static void
test_deep(void **state)
{
	char deep[300];
	size_t n = 0;

	n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"a\":");
	for (int i = 0; i < 70; i++)
		deep[n++] = '[';
	for (int i = 0; i < 70; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	deep[n] = '\0';
	assert_false(jsonw_is_canonical(deep, n, NULL));   /* past JSON_W_DEPTH: jansson's path */
}

static void
test_fmt_time(void **state)
{
	static const int64_t cases[] = { 1, 999, 1000, 86399999, 951782400000 /* 2000-02-29 */,
					 1700000000123, 253402300799999 /* 9999-12-31 */ };
	char got[40], want[40];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t ms = cases[i];
		time_t t = (time_t)(ms / 1000);
		struct tm tm;
		gmtime_r(&t, &tm);
		snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
		assert_string_equal(fmt_time(ms, got, sizeof(got)), want);
	}
	assert_string_equal(fmt_time(0, got, sizeof(got)), "-");
}

/* --- on a store: res_write / res_list_write against res_to_json --- */

static char dir[64], path[128];

static char *
jansson_form(const struct kind *k, struct res *r)
{
	json_t *o = res_to_json(k, r);
	char *t = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));

	json_decref(o);
	return t;
}

static void
put(struct store *st, const struct kind *k, const char *scope, const char *name, const char *spec)
{
	struct herr err = HERR_INIT;
	json_t *v = json_loads(spec, 0, NULL);
	bool created;

	assert_non_null(v);
	assert_int_equal(res_put(st, k, scope, name, v, "", &created, &err), 0);
	json_decref(v);
}

static void
test_res_forms(void **state)
{
	struct herr err = HERR_INIT;
	struct store *st;
	struct buf b, list;
	struct res_key key, last;
	json_t *items;
	char *want, *joined;
	int count;

	snprintf(dir, sizeof(dir), "/tmp/test-jsonw.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/herd.db", dir);
	st = store_open(path, &err);
	assert_non_null(st);
	put(st, &kind_cluster, "", "c", "{}");
	put(st, &kind_cluster, "", "d", "{\"note\":\"q\\\"uote \\\\ \\u0001 é 😀\",\"n\":-9007199254740993}");
	put(st, &kind_cluster, "", "e", "{\"ratio\":0.65,\"x\":[1.5,{\"y\":2}]}");
	/* rewritten in place (as a migration's json_remove would): spaces, \u */
	assert_int_equal(store_q(st, NULL, NULL, &err,
				 "INSERT INTO resources (kind, scope, name, spec, version, created_ms,"
				 " updated_ms) VALUES ('cluster', '', 'f', ?, 3, 1, 1700000000123)",
				 "[s]", "{ \"b\": \"\\u00e9\", \"a\" : 1 }"), 0);
	assert_int_equal(store_q(st, NULL, NULL, &err,
				 "INSERT INTO resources (kind, scope, name, spec, version, created_ms,"
				 " updated_ms) VALUES ('cluster', '', 'g', ?, 1, 0, 0)",
				 "[s]", "{\"name\":\"shadow\",\"z\":1}"), 0);
	assert_int_equal(res_list(st, &kind_cluster, NULL, NULL, 100, &items, &err), 0);
	assert_int_equal(json_array_size(items), 5);
	joined = json_dumps(items, JSON_COMPACT | JSON_REAL_PRECISION(15));
	buf_init(&list, 1 << 20);
	assert_int_equal(res_list_write(st, &kind_cluster, NULL, NULL, 100, &list, &count, &last,
					&err), 0);
	assert_int_equal(count, 5);
	assert_string_equal(last.name, "g");
	assert_string_equal(list.p, joined);
	free(joined);
	json_decref(items);
	buf_release(&list);
	for (const char *n = "cdefg"; *n; n++) {
		char name[2] = { *n, 0 };
		struct res r;
		assert_int_equal(res_get(st, &kind_cluster, "", name, &r, &err), 0);
		want = jansson_form(&kind_cluster, &r);
		res_release(&r);
		buf_init(&b, 1 << 20);
		assert_int_equal(res_write(st, &kind_cluster, "", name, false, &b, &key, &err), 0);
		assert_string_equal(b.p, want);
		assert_string_equal(key.name, name);
		buf_reset(&b);
		assert_int_equal(res_write(st, &kind_cluster, NULL, name, true, &b, NULL, &err), 0);
		assert_int_equal(b.len, strlen(want) - 1);   /* open: without its '}' */
		assert_memory_equal(b.p, want, b.len);
		buf_release(&b);
		free(want);
	}
	buf_init(&b, 1 << 20);
	assert_int_equal(res_write(st, &kind_cluster, "", "nope", false, &b, NULL, &err),
			 HERR_NOTFOUND);
	buf_release(&b);
	store_close(st);
	unlink(path);
	{
		char p2[160];
		snprintf(p2, sizeof(p2), "%s-wal", path);
		unlink(p2);
		snprintf(p2, sizeof(p2), "%s-shm", path);
		unlink(p2);
	}
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_canonical),
		cmocka_unit_test(test_deep),
		cmocka_unit_test(test_fmt_time),
		cmocka_unit_test(test_res_forms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
