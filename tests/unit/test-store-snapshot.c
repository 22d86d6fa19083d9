/* test-store-snapshot.c - the SQLite store's held read snapshots
 * (store-sqlite.h): a read outside a transaction keeps its snapshot for the
 * thread's next reads, and yet
 *   - a commit of this process (another thread's, the thread's own; in a
 *     transaction or autocommit) is seen by the very next read;
 *   - a commit of another process is seen by every read begun more than
 *     2 * SQ_SNAPSHOT_MS after it;
 *   - a thread that read and then sleeps does not hold checkpoints back:
 *     its snapshot is ended by the sweeper, and a checkpoint then copies
 *     every frame of the WAL;
 * and the pure decider's table. On a real SQLite store in a temporary
 * directory. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "store/store.h"
#include "store/store-sqlite.h"
#include "tmpdb.h"

static char dir[64], path[128];
static struct store *st;

static int
setup(void **state)
{
	struct herr err = HERR_INIT;

	if (tmpdb_make("test-store-snapshot", dir, sizeof(dir), path, sizeof(path)) < 0)
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

static void
put(const char *k, const char *v)
{
	struct herr err = HERR_INIT;

	assert_int_equal(store_meta_set(st, k, v, &err), 0);
}

/* The value of k (owned by a static buffer), "" when absent. */
static const char *
get(const char *k)
{
	static char out[64];
	char *v = store_meta_get(st, k);

	snprintf(out, sizeof(out), "%s", v ? v : "");
	free(v);
	return out;
}

static void
test_decide(void **state)
{
	const int64_t quiet = -1000;   /* the last write long ago */

	/* none held: take one, pinned or not */
	assert_int_equal(sq_snapshot_decide(false, false, false, 0, 0, 0, 0, quiet), SQ_SNAP_TAKE);
	assert_int_equal(sq_snapshot_decide(false, true, false, 0, 0, 0, 0, quiet), SQ_SNAP_TAKE);
	/* kept while young and no commit came */
	assert_int_equal(sq_snapshot_decide(true, false, false, 7, 1000, 7, 1000, quiet),
			 SQ_SNAP_KEEP);
	assert_int_equal(sq_snapshot_decide(true, false, false, 7, 1000, 7,
					    1000 + SQ_SNAPSHOT_MS - 1, quiet), SQ_SNAP_KEEP);
	/* renewed at the bound, after a commit, on a clock that went back */
	assert_int_equal(sq_snapshot_decide(true, false, false, 7, 1000, 7, 1000 + SQ_SNAPSHOT_MS,
					    quiet), SQ_SNAP_RENEW);
	assert_int_equal(sq_snapshot_decide(true, false, false, 7, 1000, 8, 1000, quiet),
			 SQ_SNAP_RENEW);
	assert_int_equal(sq_snapshot_decide(true, false, false, 7, 1000, 7, 999, quiet),
			 SQ_SNAP_RENEW);
	/* pinned (store_read_begin .. end): kept whatever happened */
	assert_int_equal(sq_snapshot_decide(true, true, false, 7, 1000, 8,
					    1000 + 10 * SQ_SNAPSHOT_MS, 1000 + 10 * SQ_SNAPSHOT_MS),
			 SQ_SNAP_KEEP);
	/* writes under way (one less than SQ_SNAPSHOT_MS ago): none held */
	assert_int_equal(sq_snapshot_decide(true, false, false, 7, 1000, 7, 1001, 1000),
			 SQ_SNAP_NONE);
	assert_int_equal(sq_snapshot_decide(false, false, false, 0, 0, 7, 1001, 1000),
			 SQ_SNAP_NONE);
	assert_int_equal(sq_snapshot_decide(false, false, false, 0, 0, 7, 1000 + SQ_SNAPSHOT_MS,
					    1000), SQ_SNAP_TAKE);
	assert_true(sq_writing(1005, 1000));
	assert_false(sq_writing(1000 + SQ_SNAPSHOT_MS, 1000));
	/* under a running statement: the held one, or none */
	assert_int_equal(sq_snapshot_decide(true, false, true, 7, 1000, 8, 5000, quiet),
			 SQ_SNAP_KEEP);
	assert_int_equal(sq_snapshot_decide(false, false, true, 0, 0, 8, 5000, quiet),
			 SQ_SNAP_NONE);
	/* the sweeper's test */
	assert_false(sq_snapshot_stale(3, 50, 3, 50 + SQ_SNAPSHOT_MS - 1));
	assert_true(sq_snapshot_stale(3, 50, 3, 50 + SQ_SNAPSHOT_MS));
	assert_true(sq_snapshot_stale(3, 50, 4, 50));
}

static void *
put_thread(void *arg)
{
	const char **kv = arg;

	put(kv[0], kv[1]);
	return NULL;
}

static void *
put_tx_thread(void *arg)
{
	struct herr err = HERR_INIT;
	const char **kv = arg;

	assert_int_equal(store_begin(st, &err), 0);
	put(kv[0], kv[1]);
	assert_int_equal(store_commit(st, &err), 0);
	return NULL;
}

static void
put_from(void *(*fn)(void *), const char *k, const char *v)
{
	const char *kv[2] = { k, v };
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, fn, kv), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
}

/* Reads right after a commit of this process, with no pause anywhere: each
 * one must see it, although the reading thread holds a snapshot from just
 * before. 200 rounds of each kind of write. */
static void
test_own_commits_seen(void **state)
{
	char v[16];

	for (int i = 0; i < 200; i++) {
		snprintf(v, sizeof(v), "a%d", i);
		(void)get("own");                      /* a snapshot held */
		put_from(put_thread, "own", v);        /* another thread, autocommit */
		assert_string_equal(get("own"), v);
		snprintf(v, sizeof(v), "b%d", i);
		put_from(put_tx_thread, "own", v);     /* another thread, a transaction */
		assert_string_equal(get("own"), v);
		snprintf(v, sizeof(v), "c%d", i);
		put("own", v);                         /* this thread */
		assert_string_equal(get("own"), v);
	}
}

/* A commit of another process (no store_generation of ours moves): a read
 * begun more than 2 * SQ_SNAPSHOT_MS later sees it, every time. */
static void
test_other_process_bound(void **state)
{
	char v[16], sql[128];

	for (int i = 0; i < 20; i++) {
		pid_t pid;
		int status;

		snprintf(v, sizeof(v), "p%d", i);
		(void)get("proc");                     /* a snapshot held */
		snprintf(sql, sizeof(sql),
			 "INSERT OR REPLACE INTO meta (key, value) VALUES ('proc', '%s')", v);
		/* a process of its own (this binary again): SQLite is not to
		 * be used across a fork */
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			execl("/proc/self/exe", "test-store-snapshot", "--write", path, sql,
			      (char *)NULL);
			_exit(127);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		usleep((2 * SQ_SNAPSHOT_MS + 1) * 1000);
		assert_string_equal(get("proc"), v);
	}
}

/* A thread that read and then sleeps (an idle HTTP thread). */
struct sleeper {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool read, done;
};

static void *
read_then_sleep(void *arg)
{
	struct sleeper *s = arg;

	(void)get("ckpt");
	pthread_mutex_lock(&s->lock);
	s->read = true;
	pthread_cond_broadcast(&s->cond);
	while (!s->done)
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* With a thread idle on a snapshot taken before 300 writes, a passive
 * checkpoint begun later than the sweeper's bound copies every frame of
 * the WAL (a snapshot held on would stop it at the frames before them). */
static void
test_checkpoint_not_starved(void **state)
{
	struct sleeper s = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false };
	struct herr err = HERR_INIT;
	json_t *rows = NULL, *r;
	pthread_t t;
	char k[32];

	put("ckpt", "0");
	usleep((SQ_SNAPSHOT_MS + 1) * 1000);   /* no write under way: it holds one */
	assert_int_equal(pthread_create(&t, NULL, read_then_sleep, &s), 0);
	pthread_mutex_lock(&s.lock);
	while (!s.read)
		pthread_cond_wait(&s.cond, &s.lock);
	pthread_mutex_unlock(&s.lock);
	for (int i = 0; i < 300; i++) {
		snprintf(k, sizeof(k), "ckpt%d", i);
		put(k, "some value to fill the pages of the write-ahead log with");
	}
	usleep((2 * SQ_SNAPSHOT_MS + 1) * 1000);
	assert_int_equal(store_q(st, &rows, NULL, &err, "PRAGMA wal_checkpoint(PASSIVE)", NULL), 0);
	r = json_array_get(rows, 0);
	assert_non_null(r);
	assert_int_equal(json_integer_value(json_object_get(r, "busy")), 0);
	assert_true(json_integer_value(json_object_get(r, "log")) > 0);
	assert_int_equal(json_integer_value(json_object_get(r, "checkpointed")),
			 json_integer_value(json_object_get(r, "log")));
	json_decref(rows);
	pthread_mutex_lock(&s.lock);
	s.done = true;
	pthread_cond_broadcast(&s.cond);
	pthread_mutex_unlock(&s.lock);
	assert_int_equal(pthread_join(t, NULL), 0);
}

static uint64_t
sweeps(void)
{
	struct store_lock_stats ls = { 0 };

	store_lock_stats(st, &ls, 0);
	return ls.sweeps;
}

/* The sweeper passes only while a snapshot is held: once this thread's
 * (idle) one is ended, a stretch of 50 ms sees no pass (before, it passed
 * every SQ_SNAPSHOT_MS whatever was held: about 100 wake-ups a second of
 * an idle server). A new snapshot wakes it again, and it ends that one
 * too. Looked at up to 100 times: a loaded machine may delay a pass, never
 * make one. */
static void
test_sweeper_idle(void **state)
{
	uint64_t a = 0, b = 1;
	int tries;

	put("idle", "1");
	usleep((SQ_SNAPSHOT_MS + 1) * 1000);   /* no write under way: it holds one */
	assert_string_equal(get("idle"), "1");
	for (tries = 0; tries < 100 && a != b; tries++) {
		a = sweeps();
		usleep(50 * 1000);
		b = sweeps();
	}
	assert_int_equal(a, b);
	assert_true(a > 0);     /* it did pass: it ended the snapshot */
	/* a read takes a snapshot: the sweeper wakes for it */
	assert_string_equal(get("idle"), "1");
	for (tries = 0; tries < 1000 && sweeps() == b; tries++)
		usleep(10 * 1000);
	assert_true(sweeps() > b);
}

/* store_read_begin .. end pins the snapshot: a commit of this process in
 * between is not seen before the end, and is right after it. */
static void
test_pinned(void **state)
{
	struct herr err = HERR_INIT;

	put("pin", "1");
	assert_int_equal(store_read_begin(st, &err), 0);
	assert_string_equal(get("pin"), "1");
	put_from(put_thread, "pin", "2");
	assert_string_equal(get("pin"), "1");
	store_read_end(st);
	assert_string_equal(get("pin"), "2");
	assert_int_equal(store_tx_depth(st), 0);
	assert_false(store_in_tx(st));
}

/* The other process: runs sql on the database at db_path. */
static int
write_other(const char *db_path, const char *sql)
{
	sqlite3 *db;
	int ok;

	ok = sqlite3_open(db_path, &db) == SQLITE_OK &&
	     sqlite3_busy_timeout(db, 10000) == SQLITE_OK &&
	     sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
	sqlite3_close(db);
	return ok ? 0 : 1;
}

static int
write_in_row(const struct store_cols *c, void *arg)
{
	put("inner", "written");
	assert_string_equal(get("inner"), "written");   /* a query under a query */
	return 0;
}

static void *
get_thread(void *arg)
{
	snprintf(arg, 64, "%s", get("inner"));
	return NULL;
}

/* A write made inside a row callback (under a statement still running in
 * the thread's snapshot) is committed once that statement is done: another
 * thread sees it right after store_each returns. */
static void
test_write_under_statement(void **state)
{
	struct herr err = HERR_INIT;
	char seen[64] = "";
	pthread_t t;

	put("outer", "1");
	usleep((SQ_SNAPSHOT_MS + 1) * 1000);   /* no write under way: in a snapshot */
	assert_int_equal(store_each(st, &err, write_in_row, NULL,
				    "SELECT key FROM meta WHERE key = ?", "[s]", "outer"), 0);
	assert_int_equal(pthread_create(&t, NULL, get_thread, seen), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_string_equal(seen, "written");
	assert_false(store_in_tx(st));
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_own_commits_seen),
		cmocka_unit_test(test_other_process_bound),
		cmocka_unit_test(test_checkpoint_not_starved),
		cmocka_unit_test(test_pinned),
		cmocka_unit_test(test_write_under_statement),
		cmocka_unit_test(test_sweeper_idle),
	};

	if (argc == 4 && strcmp(argv[1], "--write") == 0)
		return write_other(argv[2], argv[3]);

	return cmocka_run_group_tests(tests, setup, teardown);
}
