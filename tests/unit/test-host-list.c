/* test-host-list.c - the host list GET /v1/hosts answers (model/host.c
 * host_page_write, printed straight from the store's columns) is byte for
 * byte what the jansson path printed: host_page_json()'s rows through
 * host_to_json(), packed as {"items","next","total"} and dumped as httpd.c
 * dumps an answer. On a real SQLite store, for generated rows: names with
 * quotes, backslashes, control characters and UTF-8; text longer than its
 * struct host field (a cut inside a character); NULL and empty addresses;
 * labels that are {}, other JSON (reals, arrays) and not JSON; every state
 * and an unknown one; bytes that are not UTF-8 and embedded NULs; times
 * unset, set and negative; heartbeats held in memory. Every query of the
 * API's: all hosts, a cluster, a group, a state, all=1, pages of 1..7
 * walked to the end, an empty result, a cursor that is not one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "buf.h"
#include "model/host.h"
#include "store/store.h"
#include "tmpdb.h"

static char dir[64], path[128];
static struct store *st;

/* Inserts one host; text values are SQL expressions (a literal, NULL, or
 * CAST(X'..' AS TEXT) for bytes jansson cannot bind). */
static void
put_host(int i, const char *id, const char *name, const char *cluster, const char *grp,
	 const char *state, const char *reason, const char *ip, const char *labels,
	 int64_t created, int64_t launched, int64_t ready, int64_t term)
{
	struct herr err = HERR_INIT;
	char sql[4096];

	snprintf(sql, sizeof(sql),
		 "INSERT INTO hosts (id, name, cluster, grp, seq, template, account, network, state,"
		 " reason, private_ip, instance_id, client_token, labels, protected, created_ms,"
		 " updated_ms, launched_ms, joined_ms, ready_ms, heartbeat_ms, terminated_ms)"
		 " VALUES (%s, %s || '-%d', %s, %s, %d, 'tmpl', 'acct', 'net-%d', %s, %s, %s, 'i-%d', 'ct-%d',"
		 " %s, %d, %lld, %lld, %lld, %lld, %lld, %lld, %lld)",
		 id, name, i, cluster, grp, i % 5, i, state, reason, ip, i, i, labels, i % 3,
		 (long long)created, (long long)created, (long long)launched,
		 (long long)(launched ? launched + 7 : 0), (long long)ready,
		 (long long)(i % 2 ? ready : 0), (long long)term);
	if (store_q(st, NULL, NULL, &err, sql, NULL) < 0)
		fail_msg("insert host %d: %s\n%s", i, err.msg, sql);
}

static int
setup(void **state)
{
	struct herr err = HERR_INIT;
	static const char *const names[] = {
		"'n-plain'", "'q\"uote'", "'back\\slash'", "'ctl' || char(1) || char(9) || char(10)",
		"'h\xc3\xb6st-\xe6\x97\xa5\xe6\x9c\xac-\xf0\x9f\x98\x80'", "'/slash'",
		/* 63 bytes of 'x', then a 2-byte character: the field cuts it */
		"'" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxx" "'",
		"'" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" "\xc3\xa9" "'",
		"CAST(X'6162c3' AS TEXT)", "CAST(X'610062' AS TEXT)", "'\xe2\x80\xa8sep'",
	};
	static const char *const states[] = {
		"'launching'", "'booting'", "'initializing'", "'ready'", "'unhealthy'",
		"'failed'", "'draining'", "'terminating'", "'terminated'", "'ready'",
		"'bogus'", "CAST(X'ff' AS TEXT)", "'ready'", "'terminated'",
	};
	static const char *const reasons[] = {
		"''", "'launch failed: \"quota\" \\ exceeded'", "printf('%.600c', 'r')",
		"printf('%.510c', 'r') || '\xe6\x97\xa5'", "CAST(X'72c328' AS TEXT)",
		"'tab' || char(9) || 'end' || char(127)",
	};
	static const char *const ips[] = {
		"NULL", "''", "'198.18.0.5'", "'198.18.0.6'", "CAST(X'fe' AS TEXT)",
	};
	static const char *const labels[] = {
		"'{}'", "'{}'", "'{\"b\":1.5,\"a\":[1,2,{\"z\":null}]}'", "'[1]'", "'nope'", "''",
		"'{\"k\":\"v\\u0001\", \"e\":1e3}'", "'{}'", "CAST(X'7b22ff223a317d' AS TEXT)",
	};
	static const char *const clusters[] = { "'c1'", "'c2'", "'c\"3'" };
	static const char *const grps[] = { "'g1'", "'g2'", "'web'" };
	char id[64];

	if (tmpdb_make("test-host-list", dir, sizeof(dir), path, sizeof(path)) < 0)
		return -1;
	if ((st = store_open(path, &err)) == NULL)
		return -1;
	for (int i = 0; i < 60; i++) {
		snprintf(id, sizeof(id), "'h-%02d'", i);
		put_host(i, id, names[i % 11], clusters[i % 3], grps[(i / 3) % 3], states[i % 14],
			 reasons[i % 6], ips[i % 5], labels[i % 9],
			 i % 4 ? 1764800000000LL + i * 1000 : 0, i % 3 ? 1764800000500LL + i : 0,
			 i % 7 ? 1764800009000LL - i : -5, i % 8 == 0 ? 1764800099000LL : 0);
	}
	/* ids of their own: too long for the field, not UTF-8, with a NUL */
	put_host(60, "'" "iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii" "\xc3\xa9" "'",
		 "'long-id'", "'cx'", "'g1'", "'ready'", "''", "NULL", "'{}'", 5, 6, 7, 0);
	put_host(61, "CAST(X'68ff' AS TEXT)", "'bad-id'", "'cx'", "'g1'", "'ready'", "''", "NULL",
		 "'{}'", 5, 6, 7, 0);
	put_host(62, "CAST(X'680031' AS TEXT)", "'nul-id'", "'cx'", "'g1'", "'ready'", "''", "NULL",
		 "'{}'", 5, 6, 7, 0);
	/* heartbeats held in memory, newer than the stored ones */
	for (int i = 0; i < 60; i += 4) {
		snprintf(id, sizeof(id), "h-%02d", i);
		if (host_heartbeat(st, id, 1764800123000LL + i, NULL, &err) < 0)
			fail_msg("heartbeat %s: %s", id, err.msg);
	}
	return 0;
}

static int
teardown(void **state)
{
	store_close(st);
	tmpdb_remove(dir, path);
	return 0;
}

/* The old answer: host_page_json's rows through host_to_json, dumped as
 * httpd.c dumps; *next gets its cursor. NULL on error (*code set). */
static char *
old_answer(const struct host_page *q, char next[HOST_CURSOR_MAX], int *code)
{
	struct herr err = HERR_INIT;
	json_t *rows = NULL, *items, *row, *o;
	int64_t total;
	size_t i;
	char *text;

	if (host_page_json(st, q, &rows, next, &total, &err) < 0) {
		*code = err.code;
		return NULL;
	}
	items = json_array();
	json_array_foreach(rows, i, row)
		json_array_append_new(items, host_to_json(row));
	json_decref(rows);
	o = json_pack("{s:o, s:o, s:I}", "items", items, "next",
		      next[0] ? json_string(next) : json_null(), "total", (json_int_t)total);
	text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(o);
	*code = 0;
	return text;
}

/* Both paths answer q the same; returns the cursor of the next page. */
static void
check_page(const struct host_page *q, char next[HOST_CURSOR_MAX], int *items)
{
	struct herr err = HERR_INIT;
	struct buf b;
	int code, rc;
	char *want = old_answer(q, next, &code);
	json_t *o;

	buf_init(&b, (size_t)16 << 20);
	rc = host_page_write(st, q, &b, &err);
	if (want == NULL) {
		assert_int_equal(rc, code);
		assert_int_equal(err.code, code);
		next[0] = '\0';
		buf_release(&b);
		return;
	}
	assert_int_equal(rc, 0);
	if (strcmp(want, b.p) != 0)
		fail_msg("cluster=%s group=%s state=%s all=%d limit=%d after=%s:\nold %s\nnew %s",
			 q->cluster, q->grp, q->state, q->all, q->limit, q->after, want, b.p);
	o = json_loads(b.p, 0, NULL);
	*items = (int)json_array_size(json_object_get(o, "items"));
	json_decref(o);
	free(want);
	buf_release(&b);
}

/* q page by page (limit hosts a page) to the end; the pages' hosts, in all */
static int
walk(struct host_page q, int limit)
{
	char next[HOST_CURSOR_MAX], after[HOST_CURSOR_MAX];
	int seen = 0, n = 0, pages = 0;

	q.limit = limit;
	q.after = NULL;
	do {
		check_page(&q, next, &n);
		seen += n;
		snprintf(after, sizeof(after), "%s", next);
		q.after = after;
		assert_true(++pages < 200);
	} while (next[0]);
	return seen;
}

static void
test_same_bytes(void **state)
{
	static const struct host_page qs[] = {
		{ .limit = HOST_PAGE_MAX },
		{ .limit = HOST_PAGE_MAX, .all = true },
		{ .cluster = "c1", .limit = HOST_PAGE_MAX },
		{ .cluster = "c\"3", .grp = "web", .limit = HOST_PAGE_MAX, .all = true },
		{ .grp = "g2", .limit = HOST_PAGE_MAX },
		{ .state = "ready", .limit = HOST_PAGE_MAX },
		{ .state = "terminated", .all = true, .limit = HOST_PAGE_MAX },
		{ .state = "terminated", .limit = HOST_PAGE_MAX },   /* live only: none */
		{ .cluster = "nope", .limit = HOST_PAGE_MAX },
		{ .cluster = "c2", .grp = "nope", .limit = 3 },
	};
	int all_hosts = walk(qs[1], HOST_PAGE_MAX);

	assert_int_equal(all_hosts, 63);
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		int whole = walk(qs[i], qs[i].limit);
		/* pages add up to the list, but for cluster cx: the cursor of an id
		 * that is not UTF-8 (or has a NUL) is not one, on both paths */
		for (int limit = 1; limit <= 7; limit++)
			if (walk(qs[i], limit) != whole && qs[i].cluster)
				fail_msg("query %zu: pages of %d do not add up to %d", i, limit, whole);
	}
}

static void
test_bad_cursor(void **state)
{
	static const char *const bad[] = { "zz", "6", "00", "616263", "61" "1f" "62" "1f" "78" "1f" "69" };
	struct host_page q = { .limit = 2 };
	char next[HOST_CURSOR_MAX];
	int n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		q.after = bad[i];
		check_page(&q, next, &n);
	}
}

/* A page that does not fit its buffer is refused, not cut. */
static void
test_too_big(void **state)
{
	struct herr err = HERR_INIT;
	struct host_page q = { .limit = HOST_PAGE_MAX, .all = true };
	struct buf b;

	buf_init(&b, 1000);
	assert_int_equal(host_page_write(st, &q, &b, &err), HERR_TOOBIG);
	assert_int_equal(err.code, HERR_TOOBIG);
	buf_release(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_bytes),
		cmocka_unit_test(test_bad_cursor),
		cmocka_unit_test(test_too_big),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
