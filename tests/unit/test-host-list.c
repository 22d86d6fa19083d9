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
 * walked to the end, an empty result, a cursor that is not one, cursors of
 * other queries. host_page_json() reads with one query for all (its
 * filters as (? = '' OR cluster = ?)), host_page_write() with the query of
 * the shape (host_page_sql()): the bytes being the same checks the two
 * return the same rows. And that each shape's plan seeks into its index. */
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
	static const char *const bad[] = { "zz", "6", "00", "616263", "61" "1f" "62" "1f" "78" "1f" "69",
					   "ff" "1f" "62" "1f" "33" "1f" "69" };
	struct host_page q = { .limit = 2 };
	char next[HOST_CURSOR_MAX];
	int n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		q.after = bad[i];
		check_page(&q, next, &n);
	}
}

/* Cursors of pages of other queries: the rows after them are the same on
 * both paths (the page's query compares the cursor's keys its own way when
 * they are not of its cluster and group). */
static void
test_other_cursors(void **state)
{
	static const struct host_page qs[] = {
		{ .cluster = "c2", .limit = 4 },
		{ .cluster = "c1", .grp = "g2", .limit = 2 },
		{ .grp = "g2", .limit = 3, .all = true },
		{ .cluster = "c\"3", .state = "ready", .limit = 2 },
	};
	char next[HOST_CURSOR_MAX], after[HOST_CURSOR_MAX], unused[HOST_CURSOR_MAX];
	struct host_page all = { .limit = 1, .all = true };
	int n, pages = 0;

	do {
		check_page(&all, next, &n);
		snprintf(after, sizeof(after), "%s", next);
		all.after = after;
		for (size_t i = 0; next[0] && i < sizeof(qs) / sizeof(qs[0]); i++) {
			struct host_page q = qs[i];

			q.after = after;
			check_page(&q, unused, &n);
		}
		assert_true(++pages < 100);
	} while (next[0]);
}

/* cursor keys as the list writes them: hex of cluster, grp, seq, id */
static void
hex_cursor(const char *raw, char out[HOST_CURSOR_MAX])
{
	size_t i;

	for (i = 0; raw[i]; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i] == '|' ? 0x1f : (unsigned char)raw[i]);
	out[2 * i] = '\0';
}

/* True when the plan's rows of sql (params p) all read hosts through an
 * index named idx, with no sort, and (search) seek into it. */
static bool
plan_uses(const char *sql, json_t *p, const char *idx, bool search, char *plan, size_t n)
{
	struct herr err = HERR_INIT;
	char q[HOST_PAGE_SQL_MAX + 32], by[64], covering[64];
	json_t *rows = NULL, *row;
	size_t i, len = 0;
	bool ok = true;

	snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
	snprintf(by, sizeof(by), "USING INDEX %s", idx);
	snprintf(covering, sizeof(covering), "USING COVERING INDEX %s", idx);
	if (store_q(st, &rows, NULL, &err, q, "O", p) < 0)
		fail_msg("%s: %s", q, err.msg);
	plan[0] = '\0';
	json_array_foreach(rows, i, row) {
		const char *d = json_string_value(json_object_get(row, "detail"));

		len += (size_t)snprintf(plan + len, n - len, "%s; ", d ? d : "?");
		if (d == NULL || strstr(d, "TEMP B-TREE") ||
		    (!strstr(d, by) && !strstr(d, covering)) ||
		    (search && strncmp(d, "SEARCH", 6) != 0))
			ok = false;
	}
	json_decref(rows);
	return ok && i > 0;
}

/* Every shape of the list's query reads the hosts in the order of the
 * index hosts_page, seeking into it by each filter it can (a cluster, a
 * cluster and group, a cursor), never sorting: a late page costs what the
 * first does. Its count seeks into an index by cluster (and group). */
static void
test_plans(void **state)
{
	static const char *const clusters[] = { NULL, "c1" };
	static const char *const grps[] = { NULL, "g2" };
	static const char *const states[] = { NULL, "ready" };
	static const char *const afters[] = { NULL, "c1|g2|3|h-12", "c1|g1|3|h-12", "c2|g2|3|h-12" };
	char sql[HOST_PAGE_SQL_MAX], after[HOST_CURSOR_MAX], plan[1024];
	int shapes = 0;

	for (int m = 0; m < 2 * 2 * 2 * 2 * 4; m++) {
		struct herr err = HERR_INIT;
		struct host_page q = {
			.cluster = clusters[m & 1], .grp = grps[(m >> 1) & 1],
			.state = states[(m >> 2) & 1], .all = (m >> 3) & 1, .limit = 50,
		};
		json_t *p = NULL;

		if (afters[m >> 4]) {
			hex_cursor(afters[m >> 4], after);
			q.after = after;
		}
		assert_int_equal(host_page_sql(&q, false, sql, sizeof(sql), &p, &err), 0);
		if (!plan_uses(sql, p, "hosts_page", q.cluster || q.after, plan, sizeof(plan)))
			fail_msg("cluster=%s group=%s state=%s all=%d after=%s:\n%s\nplan: %s",
				 q.cluster, q.grp, q.state, q.all, afters[m >> 4], sql, plan);
		json_decref(p);
		assert_int_equal(host_page_sql(&q, true, sql, sizeof(sql), &p, &err), 0);
		if (q.cluster && !plan_uses(sql, p, "hosts_", true, plan, sizeof(plan)))
			fail_msg("count: cluster=%s group=%s state=%s all=%d:\n%s\nplan: %s",
				 q.cluster, q.grp, q.state, q.all, sql, plan);
		json_decref(p);
		shapes++;
	}
	assert_int_equal(shapes, 64);
}

/* The shape of a query: its filters, and the columns its cursor is
 * compared on (fewer when the cursor is of its cluster, and group). */
static void
test_decide(void **state)
{
	static const char *const of_c1g2[4] = { "c1", "g2", "3", "h-1" };
	static const char *const of_c1g1[4] = { "c1", "g1", "3", "h-1" };
	static const char *const of_c2[4] = { "c2", "g2", "3", "h-1" };
	struct host_page q = { .cluster = "c1", .grp = "g2", .limit = 1 };
	struct host_page_shape s;

	s = host_page_decide(&q, of_c1g2);
	assert_true(s.cluster && s.grp && s.live && !s.state);
	assert_int_equal(s.after, 0);
	q.after = "x";
	assert_int_equal(host_page_decide(&q, of_c1g2).after, 2);
	assert_int_equal(host_page_decide(&q, of_c1g1).after, 3);
	assert_int_equal(host_page_decide(&q, of_c2).after, 4);
	q.grp = "";
	assert_false(host_page_decide(&q, of_c1g2).grp);
	assert_int_equal(host_page_decide(&q, of_c1g2).after, 3);
	q.cluster = NULL;
	q.grp = "g2";
	q.state = "ready";
	q.all = true;
	s = host_page_decide(&q, of_c1g2);
	assert_true(!s.cluster && s.grp && s.state && !s.live);
	assert_int_equal(s.after, 4);
}

/* A filter that is not UTF-8 is refused naming its field (no query has it). */
static void
test_not_utf8(void **state)
{
	static const struct host_page qs[] = {
		{ .cluster = "c\xff", .limit = 1 },
		{ .grp = "\xc3", .limit = 1 },
		{ .state = "re" "\xff" "ady", .limit = 1 },
	};
	static const char *const fields[] = { "cluster", "group", "state" };
	struct buf b;

	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		struct herr err = HERR_INIT;

		buf_init(&b, 1 << 20);
		assert_int_equal(host_page_write(st, &qs[i], &b, &err), HERR_INVALID);
		assert_string_equal(err.field, fields[i]);
		buf_release(&b);
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
		cmocka_unit_test(test_other_cursors),
		cmocka_unit_test(test_plans),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_not_utf8),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
