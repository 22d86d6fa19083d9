/* hostpage-sql.c - SQLite time of a host list page (issue 15), built by
 * bench/hostpage.sh against build/libherd.a. A store of herd's schema with
 * N hosts in one group bench/big (seq 1..N) and 60 in four others; for a
 * page of 50 (the first, and the one after the host of seq 9N/10) and its
 * count: the generic query (every filter as (? = '' OR col = ?), the
 * cursor as nested ORs: host_page_json()'s, what host_page_write() ran
 * before) beside host_page_sql()'s query for the page's shape. Each is
 * prepared once; a run binds, steps every row reading every column (as
 * the printer does) and resets. Prints the median of 7 batches of 2000
 * runs, in us a page. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "log.h"
#include "model/host.h"
#include "store/store.h"

#define OLD_WHERE                                                              \
	" WHERE (? = '' OR cluster = ?) AND (? = '' OR grp = ?)"               \
	" AND (? <> 0 OR state <> 'terminated') AND (? = '' OR state = ?)"
#define OLD_AFTER                                                              \
	" AND (? = 0 OR cluster > ? OR (cluster = ? AND (grp > ? OR (grp = ? AND"   \
	" (seq > ? OR (seq = ? AND id > ?))))))"
#define COLS                                                                   \
	"id, name, cluster, grp, seq, template, account, network, state, reason, private_ip," \
	" instance_id, labels, protected, attempt, created_ms, launched_ms, joined_ms,"      \
	" ready_ms, heartbeat_ms, terminated_ms, template_version"
#define RUNS 2000
#define BATCHES 7

static sqlite3 *db;

static void
bind_params(sqlite3_stmt *s, json_t *p)
{
	size_t i;
	json_t *v;

	json_array_foreach(p, i, v) {
		if (json_is_string(v))
			sqlite3_bind_text(s, (int)i + 1, json_string_value(v), -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(s, (int)i + 1, json_integer_value(v));
	}
}

static double
now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median us a run of sql with params p; *rows: the rows of one. */
static double
time_query(const char *sql, json_t *p, int *rows)
{
	double us[BATCHES];
	sqlite3_stmt *s;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
		fprintf(stderr, "hostpage-sql: %s: %s\n", sql, sqlite3_errmsg(db));
		exit(1);
	}
	for (int b = 0; b < BATCHES; b++) {
		double t0 = now_us();

		for (int r = 0; r < RUNS; r++) {
			bind_params(s, p);
			*rows = 0;
			while (sqlite3_step(s) == SQLITE_ROW) {
				for (int c = 0; c < sqlite3_column_count(s); c++) {
					sqlite3_column_text(s, c);
					sqlite3_column_bytes(s, c);
				}
				(*rows)++;
			}
			sqlite3_reset(s);
		}
		us[b] = (now_us() - t0) / RUNS;
	}
	sqlite3_finalize(s);
	qsort(us, BATCHES, sizeof(us[0]), cmp_double);
	return us[BATCHES / 2];
}

/* One line: the page q (cursor keys k, seq) and its count, before and after. */
static void
row(const char *label, const struct host_page *q, const char *const k[4], long long seq)
{
	const char *cl = q->cluster ? q->cluster : "", *g = q->grp ? q->grp : "";
	struct herr err = HERR_INIT;
	char sql[HOST_PAGE_SQL_MAX], csql[HOST_PAGE_SQL_MAX];
	json_t *op = json_pack("[ssssississssIIsi]", cl, cl, g, g, q->all ? 1 : 0, "", "",
			       q->after ? 1 : 0, k[0], k[0], k[1], k[1], (json_int_t)seq,
			       (json_int_t)seq, k[3], q->limit + 1);
	json_t *ocp = json_pack("[ssssiss]", cl, cl, g, g, q->all ? 1 : 0, "", "");
	json_t *np, *ncp;
	double op_us, oc_us, np_us, nc_us;
	int orows, nrows, n;

	if (host_page_sql(q, false, sql, sizeof(sql), &np, &err) < 0 ||
	    host_page_sql(q, true, csql, sizeof(csql), &ncp, &err) < 0) {
		fprintf(stderr, "hostpage-sql: %s\n", err.msg);
		exit(1);
	}
	op_us = time_query("SELECT " COLS " FROM hosts" OLD_WHERE OLD_AFTER
			   " ORDER BY cluster, grp, seq, id LIMIT ?", op, &orows);
	oc_us = time_query("SELECT COUNT(*) AS n FROM hosts" OLD_WHERE, ocp, &n);
	np_us = time_query(sql, np, &nrows);
	nc_us = time_query(csql, ncp, &n);
	if (orows != nrows) {
		fprintf(stderr, "hostpage-sql: %s: %d rows before, %d after\n", label, orows, nrows);
		exit(1);
	}
	printf("%-34s | %6.1f + %5.1f = %6.1f | %6.1f + %5.1f = %6.1f\n", label, op_us, oc_us,
	       op_us + oc_us, np_us, nc_us, np_us + nc_us);
	json_decref(op);
	json_decref(ocp);
	json_decref(np);
	json_decref(ncp);
}

int
main(int argc, char **argv)
{
	static const char *const none[4] = { "", "", "", "" };
	struct herr err = HERR_INIT;
	char path[4200], after[HOST_CURSOR_MAX], raw[HOST_CURSOR_MAX / 2], id[32];
	const char *k[4];
	struct store *st;
	struct host_page q;
	int hosts, late;
	size_t i;

	if (argc != 3 || (hosts = atoi(argv[2])) < 100) {
		fprintf(stderr, "usage: hostpage-sql DIR HOSTS (>= 100)\n");
		return 2;
	}
	log_set_level(LOG_WARN);   /* not the store's migrations */
	snprintf(path, sizeof(path), "%s/herd.db", argv[1]);
	if ((st = store_open(path, &err)) == NULL) {
		fprintf(stderr, "hostpage-sql: %s\n", err.msg);
		return 1;
	}
	/* ids in no order of seq's (as herd's random ones) */
	if (store_q(st, NULL, NULL, &err,
		    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?)"
		    " INSERT INTO hosts (id, name, cluster, grp, seq, template, account, network,"
		    " state, private_ip, instance_id, client_token, created_ms, updated_ms,"
		    " launched_ms, joined_ms, ready_ms, heartbeat_ms)"
		    " SELECT printf('%08x', (i * 2654435761) % 4294967296), 'big-' || i, 'bench',"
		    " 'big', i, 'tmpl', 'acct', 'net', 'ready', '198.18.' || (i / 250) || '.' || (i % 250),"
		    " 'i-' || i, 'ct-' || i, 1764800000000 + i, 1764800000000 + i, 1764800001000 + i,"
		    " 1764800002000 + i, 1764800003000 + i, 1764800004000 + i FROM c",
		    "[i]", hosts) < 0 ||
	    store_q(st, NULL, NULL, &err,
		    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 60)"
		    " INSERT INTO hosts (id, name, cluster, grp, seq, template, account, network,"
		    " state, instance_id, client_token, created_ms, updated_ms)"
		    " SELECT 'o-' || i, 'o-' || i, CASE WHEN i % 2 THEN 'bench' ELSE 'other' END,"
		    " CASE WHEN i % 4 < 2 THEN 'a' ELSE 'web' END, i, 'tmpl', 'acct', 'net2',"
		    " CASE WHEN i % 7 THEN 'ready' ELSE 'terminated' END, 'i-o' || i, 'cto-' || i,"
		    " 1764800000000, 1764800000000 FROM c",
		    NULL) < 0) {
		fprintf(stderr, "hostpage-sql: %s\n", err.msg);
		return 1;
	}
	store_close(st);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return 1;
	/* the cursor of the page that ends at seq late (9/10 of the group) */
	late = hosts * 9 / 10;
	snprintf(id, sizeof(id), "%08llx", ((long long)late * 2654435761LL) % 4294967296LL);
	snprintf(raw, sizeof(raw), "bench\x1f" "big\x1f" "%d\x1f%s", late, id);
	for (i = 0; raw[i]; i++)
		snprintf(after + 2 * i, 3, "%02x", (unsigned char)raw[i]);
	k[0] = "bench", k[1] = "big", k[2] = "", k[3] = id;
	printf("%d hosts in bench/big; us a page of 50: its query + its count\n", hosts);
	printf("%-34s | %-22s | %s\n", "GET /v1/hosts?limit=50&...", "before (generic query)",
	       "after (the shape's query)");
	q = (struct host_page){ .cluster = "bench", .grp = "big", .limit = 50 };
	row("cluster=bench&group=big", &q, none, -1);
	q.after = after;
	row("cluster=bench&group=big&after", &q, k, late);
	q = (struct host_page){ .grp = "big", .limit = 50, .after = after };
	row("group=big&after", &q, k, late);
	q = (struct host_page){ .cluster = "bench", .limit = 50, .after = after };
	row("cluster=bench&after", &q, k, late);
	q = (struct host_page){ .limit = 50, .after = after };
	row("after (all hosts)", &q, k, late);
	sqlite3_close(db);
	return 0;
}
