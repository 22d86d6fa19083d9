/* test-retain.c - retention (ctl/retain.c and the model's *_prune) on a real
 * SQLite store in a temporary directory, with an injected clock: each
 * table's prune deletes exactly what is older than its cut-off and nothing
 * still in use (a running run, a drain's run, a host a run waits on, the
 * newest seq of a group, the last hour's policy scales), in bounded
 * batches; and a simulated week at 50 hosts keeps the file's size flat. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ctl/ctl.h"
#include "log.h"
#include "model/activity.h"
#include "model/audit.h"
#include "model/host.h"
#include "model/run.h"
#include "store/store.h"
#include "tmpdb.h"

#define MIN_MS (60LL * 1000)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)
#define T0 (1700000000000LL)   /* the simulated week starts here */

static char dir[64], path[128];
static struct store *st;

static int
setup(void **state)
{
	struct herr err = HERR_INIT;

	if (tmpdb_make("test-retain", dir, sizeof(dir), path, sizeof(path)) < 0)
		return -1;
	st = store_open(path, &err);
	return st ? 0 : -1;
}

static int
teardown(void **state)
{
	store_close(st);
	tmpdb_remove(dir, path);
	return 0;
}

static int64_t
count(const char *sql)
{
	struct herr err = HERR_INIT;
	json_t *row = store_row(st, &err, sql, NULL);
	int64_t n;

	if (row == NULL)
		fail_msg("%s: %s", sql, err.msg);
	n = json_integer_value(json_object_get(row, "n"));
	json_decref(row);
	return n;
}

static void
put_activity(int64_t ts, const char *grp, const char *kind, const char *cause)
{
	struct herr err = HERR_INIT;

	if (store_q(st, NULL, NULL, &err,
		    "INSERT INTO activities (ts_ms, cluster, grp, kind, cause, reason, inputs)"
		    " VALUES (?, 'c', ?, ?, ?, 'a reason long enough to look like one', '{\"x\":1}')",
		    "[Isss]", (json_int_t)ts, grp, kind, cause) < 0)
		fail_msg("insert activity: %s", err.msg);
}

static void
put_audit(int64_t ts)
{
	struct audit_entry e = { .ts_ms = ts, .who = "admin", .role = "admin", .method = "POST",
				 .path = "/v1/clusters/c/groups/g/scale", .status = 200 };
	struct herr err = HERR_INIT;

	if (audit_add(st, &e, &err) < 0)
		fail_msg("insert audit: %s", err.msg);
}

/* A run in state s created at created, ended at ended (0 = not), on
 * host_ids[0..n) in run state hs, with nout output chunks per host. */
static int64_t
put_run(const char *s, int64_t created, int64_t ended, const char *const *host_ids, int n,
	const char *hs, int nout)
{
	struct herr err = HERR_INIT;
	json_t *ret = NULL;
	int64_t id;
	char delivery[64];

	if (store_q(st, &ret, NULL, &err,
		    "INSERT INTO runs (script, version, hash, target_kind, target, timeout_ms,"
		    " created_by, created_ms, ended_ms, state) VALUES ('s', 1, 'h', 'group', 'c/g',"
		    " 60000, 'admin', ?, ?, ?) RETURNING id",
		    "[IIs]", (json_int_t)created, (json_int_t)ended, s) < 0)
		fail_msg("insert run: %s", err.msg);
	id = json_integer_value(json_object_get(json_array_get(ret, 0), "id"));
	json_decref(ret);
	for (int i = 0; i < n; i++) {
		snprintf(delivery, sizeof(delivery), "%lld-%s", (long long)id, host_ids[i]);
		if (store_q(st, NULL, NULL, &err,
			    "INSERT INTO run_hosts (run_id, seq, host_id, host, cluster, grp, state,"
			    " delivery, stdout) VALUES (?, ?, ?, ?, 'c', 'g', ?, ?, 'output of the"
			    " script, a line or two of it')",
			    "[Iissss]", (json_int_t)id, i, host_ids[i], host_ids[i], hs, delivery) < 0)
			fail_msg("insert run host: %s", err.msg);
		for (int k = 0; k < nout; k++)
			if (store_q(st, NULL, NULL, &err,
				    "INSERT INTO run_output (run_id, host_id, stream, data) VALUES"
				    " (?, ?, 1, 'a chunk of live output, some forty bytes')",
				    "[Is]", (json_int_t)id, host_ids[i]) < 0)
				fail_msg("insert run output: %s", err.msg);
	}
	return id;
}

static void
put_host(const char *id, const char *grp, int seq, const char *s, int64_t terminated,
	 int64_t drain_run)
{
	struct herr err = HERR_INIT;

	if (store_q(st, NULL, NULL, &err,
		    "INSERT INTO hosts (id, name, cluster, grp, seq, template, account, network,"
		    " state, client_token, private_ip, created_ms, updated_ms, terminated_ms,"
		    " drain_run_id) VALUES (?, ?, 'c', ?, ?, 't', 'a', 'n', ?, ?, NULL, 1, 1, ?, ?)",
		    "[sssissII]", id, id, grp, seq, s, id, (json_int_t)terminated,
		    (json_int_t)drain_run) < 0 ||
	    store_q(st, NULL, NULL, &err,
		    "INSERT INTO init_results (host_id, idx, script, version, exit_code, stdout,"
		    " stderr, started_ms, ended_ms) VALUES (?, 0, 'init', 1, 0, 'ok', '', 1, 2)",
		    "[s]", id) < 0)
		fail_msg("insert host %s: %s", id, err.msg);
}

static bool
host_exists(const char *id)
{
	struct herr err = HERR_INIT;
	json_t *row = store_row(st, &err, "SELECT id FROM hosts WHERE id = ?", "[s]", id);
	bool yes = row != NULL;

	json_decref(row);
	return yes;
}

static bool
run_exists(int64_t id)
{
	struct herr err = HERR_INIT;
	json_t *row = store_row(st, &err, "SELECT id FROM runs WHERE id = ?", "[I]", (json_int_t)id);
	bool yes = row != NULL;

	json_decref(row);
	return yes;
}

/* --- the pure part --- */

static void
test_cutoffs_and_due(void **state)
{
	struct retain_opts o = { 30 * DAY_MS, 90 * DAY_MS, 14 * DAY_MS, 7 * DAY_MS };
	struct retain_opts shrt = { 2000, 90 * DAY_MS, 14 * DAY_MS, 7 * DAY_MS };
	struct retain_opts huge = { 1000000000000000LL, 1000, 1000, 1000 };
	struct retain_cut c;

	retain_cutoffs(&o, T0, &c);
	assert_int_equal(c.activities_ms, T0 - 30 * DAY_MS);
	assert_int_equal(c.audit_ms, T0 - 90 * DAY_MS);
	assert_int_equal(c.runs_ms, T0 - 14 * DAY_MS);
	assert_int_equal(c.hosts_ms, T0 - 7 * DAY_MS);
	assert_int_equal(c.policy_keep_ms, T0 - HOUR_MS);
	/* a retention longer than the epoch: nothing is that old, no overflow */
	retain_cutoffs(&huge, T0, &c);
	assert_int_equal(c.activities_ms, 0);
	/* once a minute; the first pass at once; a clock stepped back too */
	assert_true(retain_due(&o, 0, T0));
	assert_false(retain_due(&o, T0, T0 + 59999));
	assert_true(retain_due(&o, T0, T0 + 60000));
	assert_true(retain_due(&o, T0, T0 - 1));
	/* a retention of seconds is kept to seconds */
	assert_false(retain_due(&shrt, T0, T0 + 1999));
	assert_true(retain_due(&shrt, T0, T0 + 2000));
}

/* --- each table --- */

static void
test_activity_prune(void **state)
{
	struct herr err = HERR_INIT;
	int64_t now = T0 + 7 * DAY_MS, d = -1;

	/* a week at 50 hosts: one activity per host per hour */
	assert_int_equal(store_begin(st, &err), 0);
	for (int64_t t = T0; t < now; t += HOUR_MS)
		for (int h = 0; h < 50; h++)
			put_activity(t, h % 2 ? "g1" : "g2", "launch", "scale_out");
	assert_int_equal(store_commit(st, &err), 0);
	/* the last hour: a policy scale and a manual one, 30 min old */
	put_activity(now - 30 * MIN_MS, "g1", "scale_out", "policy:busy");
	put_activity(now - 30 * MIN_MS, "g1", "scale_out", "manual");
	assert_int_equal(count("SELECT COUNT(*) AS n FROM activities"), 7 * 24 * 50 + 2);

	/* a batch is bounded */
	assert_int_equal(activity_prune(st, now - 2 * DAY_MS, now - HOUR_MS, 5000, &d, &err), 0);
	assert_int_equal(d, 5000);
	while (d == 5000)
		assert_int_equal(activity_prune(st, now - 2 * DAY_MS, now - HOUR_MS, 5000, &d, &err),
				 0);
	/* exactly the last two days are left (and the two recent ones) */
	assert_int_equal(count("SELECT COUNT(*) AS n FROM activities"), 2 * 24 * 50 + 2);
	assert_int_equal(count("SELECT COUNT(*) AS n FROM activities WHERE ts_ms < "
			       "1700000000000 + 5 * 86400000"), 0);

	/* a 10-minute retention: the policy scale stays (the hourly cap counts
	 * it), the manual one goes */
	assert_int_equal(activity_prune(st, now - 10 * MIN_MS, now - HOUR_MS, 5000, &d, &err), 0);
	assert_int_equal(d, 2 * 24 * 50 + 1);
	assert_int_equal(count("SELECT COUNT(*) AS n FROM activities WHERE cause = 'policy:busy'"),
			 1);
	assert_int_equal(count("SELECT COUNT(*) AS n FROM activities"), 1);
	/* an hour later it goes too */
	assert_int_equal(activity_prune(st, now + HOUR_MS, now, 5000, &d, &err), 0);
	assert_int_equal(d, 1);
}

static void
test_audit_prune(void **state)
{
	struct herr err = HERR_INIT;
	int64_t d = -1;

	for (int i = 0; i < 10; i++)
		put_audit(T0 + i * DAY_MS);
	put_audit(T0);    /* written after the clock stepped back 9 days */
	assert_int_equal(audit_prune(st, T0 + 7 * DAY_MS, 3, &d, &err), 0);
	assert_int_equal(d, 3);
	assert_int_equal(audit_prune(st, T0 + 7 * DAY_MS, 5000, &d, &err), 0);
	assert_int_equal(d, 4);
	/* days 7-9 stay, and so does the stepped-back entry behind them: the
	 * scan stops at the first entry young enough to stay */
	assert_int_equal(count("SELECT COUNT(*) AS n FROM audit"), 4);
	assert_int_equal(count("SELECT COUNT(*) AS n FROM audit WHERE ts_ms < 1700000000000 + 7 * 86400000"), 1);
	/* nothing is that old: nothing goes, and the scan is one row */
	assert_int_equal(audit_prune(st, T0 + 7 * DAY_MS, 5000, &d, &err), 0);
	assert_int_equal(d, 0);
	/* once all are old, all go */
	assert_int_equal(audit_prune(st, T0 + 10 * DAY_MS, 5000, &d, &err), 0);
	assert_int_equal(d, 4);
	assert_int_equal(count("SELECT COUNT(*) AS n FROM audit"), 0);
}

static void
test_run_prune(void **state)
{
	static const char *const hs[] = { "h1", "h2", "h3" };
	struct herr err = HERR_INIT;
	int64_t now = T0 + 30 * DAY_MS, d = -1, old, running, recent, drain, total = 0;

	old = put_run("succeeded", T0, T0 + 1000, hs, 3, "succeeded", 4);
	/* started a month ago and still going (a long script): untouched */
	running = put_run("running", T0, 0, hs, 3, "running", 4);
	recent = put_run("failed", now - DAY_MS, now - DAY_MS, hs, 3, "failed", 4);
	/* ended long ago, but it is the run draining h9, still draining */
	drain = put_run("succeeded", T0, T0 + 1000, hs + 2, 1, "succeeded", 1);
	put_host("h9", "g", 1, "draining", 0, drain);

	/* tiny batches: the children go first, the run last */
	do {
		assert_int_equal(run_prune(st, now - 14 * DAY_MS, 5, &d, &err), 0);
		total += d;
	} while (d > 0);
	assert_int_equal(total, 12 + 3 + 1);
	assert_false(run_exists(old));
	assert_true(run_exists(running));
	assert_true(run_exists(recent));
	assert_true(run_exists(drain));
	assert_int_equal(count("SELECT COUNT(*) AS n FROM run_hosts"), 3 + 3 + 1);
	assert_int_equal(count("SELECT COUNT(*) AS n FROM run_output"), 12 + 12 + 1);

	/* the drain ended (host terminated): now its run goes */
	assert_int_equal(store_q(st, NULL, NULL, &err,
				 "UPDATE hosts SET state = 'terminated' WHERE id = 'h9'", NULL), 0);
	assert_int_equal(run_prune(st, now - 14 * DAY_MS, 5000, &d, &err), 0);
	assert_int_equal(d, 3);
	assert_false(run_exists(drain));
}

static void
test_host_prune(void **state)
{
	static const char *const waits[] = { "t-waited" };
	struct herr err = HERR_INIT;
	int64_t now = T0 + 30 * DAY_MS, d = -1;

	put_host("t-old", "g", 1, "terminated", T0, 0);
	put_host("t-waited", "g", 2, "terminated", T0, 0);
	put_host("ready-old", "g", 3, "ready", 0, 0);
	put_host("t-recent", "g", 4, "terminated", now - DAY_MS, 0);
	put_host("t-newest", "g", 5, "terminated", T0, 0);      /* the group's highest seq */
	put_host("t-other", "g2", 1, "terminated", T0, 0);      /* alone in its group: kept */
	put_host("t-other2", "g2", 0, "terminated", T0, 0);
	put_run("running", now, 0, waits, 1, "queued", 0);

	assert_int_equal(host_prune_terminated(st, now - 7 * DAY_MS, 5000, &d, &err), 0);
	assert_int_equal(d, 2);
	assert_false(host_exists("t-old"));
	assert_false(host_exists("t-other2"));
	assert_true(host_exists("t-waited"));
	assert_true(host_exists("ready-old"));
	assert_true(host_exists("t-recent"));
	assert_true(host_exists("t-newest"));
	assert_true(host_exists("t-other"));
	/* the init results went with them */
	assert_int_equal(count("SELECT COUNT(*) AS n FROM init_results"), 5);
	/* names are not reused: the next seq is still after the newest */
	{
		int64_t seq;
		assert_int_equal(host_next_seq(st, "c", "g", &seq, &err), 0);
		assert_int_equal(seq, 6);
	}
}

/* --- a simulated week at 50 hosts through retain_pass --- */

static int64_t
db_bytes(void)
{
	return count("SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()");
}

/* One simulated hour of a 50-host fleet: activities, audit entries, a run
 * on every host with its output, and one host replaced. */
static void
fleet_hour(int64_t t, int hour)
{
	const char *ids[50];
	char names[50][16];
	struct herr err = HERR_INIT;
	char id[32];

	assert_int_equal(store_begin(st, &err), 0);    /* one fsync an hour, not 151 */
	for (int h = 0; h < 50; h++) {
		snprintf(names[h], sizeof(names[h]), "h%02d", h);
		ids[h] = names[h];
		put_activity(t, "g", "heartbeat_lost", "health");
		put_audit(t);
	}
	put_run("succeeded", t, t + 1000, ids, 50, "succeeded", 2);
	snprintf(id, sizeof(id), "x%06d", hour);
	put_host(id, "g", hour + 1, "terminated", t, 0);
	assert_int_equal(store_commit(st, &err), 0);
}

static void
test_week_flat(void **state)
{
	struct server s;
	int64_t t = T0, day3 = 0, day7, peak = 0;
	struct stat sb;

	memset(&s, 0, sizeof(s));
	s.store = st;
	s.retain_activities_ms = 2 * DAY_MS;
	s.retain_audit_ms = 2 * DAY_MS;
	s.retain_runs_ms = 2 * DAY_MS;
	s.retain_hosts_ms = 2 * DAY_MS;
	for (int hour = 0; hour < 7 * 24; hour++, t += HOUR_MS) {
		fleet_hour(t, hour);
		retain_pass(&s, t);     /* due every simulated hour (> 1 min) */
		if (hour == 3 * 24 - 1)
			day3 = db_bytes();
		if (db_bytes() > peak)
			peak = db_bytes();
	}
	day7 = db_bytes();
	print_message("# db bytes: after day 3 %lld, after day 7 %lld, peak %lld\n",
		      (long long)day3, (long long)day7, (long long)peak);
	if (stat(path, &sb) == 0)
		print_message("# file bytes after day 7: %lld\n", (long long)sb.st_size);
	/* what is left is two days' worth */
	assert_int_equal(count("SELECT COUNT(*) AS n FROM activities"), 49 * 50);
	assert_int_equal(count("SELECT COUNT(*) AS n FROM audit"), 49 * 50);
	assert_int_equal(count("SELECT COUNT(*) AS n FROM runs"), 49);
	assert_int_equal(count("SELECT COUNT(*) AS n FROM run_hosts"), 49 * 50);
	/* flat: the freed pages were reused (fragmentation: a few % at most) */
	assert_true(day7 <= day3 + day3 / 20);
}

int
main(void)
{
	log_set_level(LOG_WARN);   /* a line per table per simulated hour otherwise */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cutoffs_and_due),
		cmocka_unit_test_setup_teardown(test_activity_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_week_flat, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
