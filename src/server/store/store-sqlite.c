/* store-sqlite.c - the SQLite backend of the store: WAL, synchronous=FULL
 * (an acknowledged write survives kill -9 and power loss), foreign keys, a
 * busy wait that is woken by the commit it waits for, one connection per
 * thread with a small prepared-statement cache, and versioned migrations. The database and its -wal and -shm hold
 * token hashes, host credentials' hashes and run parameters: they are 0600
 * whatever the umask and the directory's mode.
 *
 * Reads outside a transaction keep their read snapshot open after the
 * statement and reuse it for the thread's next reads while no commit of
 * this process came since and it is younger than SQ_SNAPSHOT_MS
 * (store-sqlite.h): each read transaction costs a round of fcntl locks on
 * the WAL index and its mutex, fought over by the HTTP threads, which an
 * uncached GET paid per statement (docs/scale.md, "Reads without the
 * cache"). None is held while writes are under way (sq_snapshot_decide).
 * A write ends the thread's snapshot first; a sweeper thread ends
 * the ones idle threads left open, so checkpoints are never held back for
 * longer than that. The sweeper looks every SQ_SNAPSHOT_MS only while some
 * snapshot is held, and sleeps until one is taken otherwise (an idle
 * server does not wake it 100 times a second). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "schema.h"
#include "store.h"
#include "store-sqlite.h"
#include "xalloc.h"

#define SQ_CACHE 48
/* How long a statement waits for another connection's write lock before
 * it fails with "database is locked" (SQLite's busy timeout, as before). */
#define SQ_BUSY_TIMEOUT_MS 10000
/* The longest one wait for it lasts without a wake-up: a holder in this
 * process wakes the waiters when it commits or rolls back (sq_released);
 * one in another process (sqlite3, a backup) is only seen by looking again. */
#define SQ_BUSY_POLL_MS 5

extern const struct store_ops store_sqlite_ops;

struct sq_conn {
	sqlite3 *db;
	const char *sql[SQ_CACHE];        /* cache keys: the caller's SQL text */
	sqlite3_stmt *stmt[SQ_CACHE];
	int next;                          /* round-robin eviction */
	int in_tx;                         /* depth: >1 = nested (savepoints) */
	bool in_read;                      /* inside sq_read_begin's BEGIN */
	struct sq *q;                      /* its store, for the busy handler */
	int64_t busy_since_ms;             /* when the current wait began */
	/* The read snapshot kept open after a statement outside a transaction:
	 * taken at held_ms when store_generation() was held_gen. `use` is held
	 * by the owner while it reads (all along between store_read_begin and
	 * store_read_end) and by the sweeper while it ends an idle one. */
	pthread_mutex_t use;
	int use_depth;                     /* the owner's nesting of use */
	bool end_after;                    /* written into: end at depth 0 */
	bool held;
	uint64_t held_gen;
	int64_t held_ms;
	struct sq_conn *all_next;          /* every connection, for close */
};

/* SQLite's own busy handler sleeps 1, 2, 5, 10 ... 100 ms between looks at
 * a lock that is usually free again within a millisecond: a commit of the
 * writer thread behind a launch worker's commit slept ~10 ms a time (issue
 * 15, docs/scale.md "Launching hosts"). Here a waiter sleeps on a condition
 * that every end of a transaction in this process signals. */
struct sq_busy {
	pthread_mutex_t lock;
	pthread_cond_t done;               /* a transaction ended: look again */
	uint64_t epoch;                    /* ends seen; guarded by lock */
	unsigned waiters;                  /* read unlocked by sq_released */
	unsigned poll_ms;                  /* the longest single wait */
	uint64_t waits, woken;             /* statistics (store_lock_stats) */
};

struct sq {
	char path[1024];
	pthread_key_t key;
	pthread_mutex_t lock;              /* guards all */
	struct sq_conn *all;
	struct sq_busy busy;
	/* the sweeper: ends the held snapshots of idle connections */
	pthread_t sweeper;
	bool sweeping, stop;               /* stop: guarded by lock */
	pthread_cond_t wake;               /* signalled by close and sq_held_set */
	unsigned nheld;                    /* snapshots held (atomic) */
	uint64_t sweeps;                   /* the sweeper's passes (atomic) */
};

static void sq_hold_drop(struct sq_conn *c);
static int64_t sq_mono_ms(void);
static void *sq_sweep(void *arg);

enum sq_snap_act
sq_snapshot_decide(bool held, bool pinned, bool nested, uint64_t taken_gen, int64_t taken_ms,
		   uint64_t gen, int64_t now_ms, int64_t write_ms)
{
	if (nested)
		return held ? SQ_SNAP_KEEP : SQ_SNAP_NONE;
	if (pinned)
		return held ? SQ_SNAP_KEEP : SQ_SNAP_TAKE;
	if (sq_writing(now_ms, write_ms))
		return SQ_SNAP_NONE;
	if (!held)
		return SQ_SNAP_TAKE;
	return sq_snapshot_stale(taken_gen, taken_ms, gen, now_ms) ? SQ_SNAP_RENEW : SQ_SNAP_KEEP;
}

bool
sq_writing(int64_t now_ms, int64_t write_ms)
{
	return now_ms - write_ms < SQ_SNAPSHOT_MS && now_ms >= write_ms;
}

/* When this process last began or committed a write (monotonic ms). */
static int64_t sq_write_ms = INT64_MIN / 2;

static void
sq_wrote(void)
{
	__atomic_store_n(&sq_write_ms, sq_mono_ms(), __ATOMIC_RELAXED);
}

bool
sq_snapshot_stale(uint64_t taken_gen, int64_t taken_ms, uint64_t gen, int64_t now_ms)
{
	/* a clock that went back counts as old: renewing is always safe */
	return gen != taken_gen || now_ms - taken_ms >= SQ_SNAPSHOT_MS || now_ms < taken_ms;
}


static void
sq_conn_free(struct sq_conn *c)
{
	for (int i = 0; i < SQ_CACHE; i++) {
		if (c->stmt[i])
			sqlite3_finalize(c->stmt[i]);
		free((char *)c->sql[i]);
	}
	sqlite3_close(c->db);
	pthread_mutex_destroy(&c->use);
	free(c);
}

static int64_t
sq_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* SQLite's busy handler: 0 = give up (SQLITE_BUSY), 1 = try again. Waits
 * until a transaction of this process ends or poll_ms pass, whichever is
 * first, for at most SQ_BUSY_TIMEOUT_MS in all. A wake-up that came between
 * SQLite's failed try and this wait is missed: it costs one poll_ms. */
static int
sq_busy(void *arg, int count)
{
	struct sq_conn *c = arg;
	struct sq_busy *b = &c->q->busy;
	int64_t now = sq_mono_ms(), left, step;
	struct timespec until;
	uint64_t epoch;
	bool woken = false;

	if (count == 0)
		c->busy_since_ms = now;
	left = SQ_BUSY_TIMEOUT_MS - (now - c->busy_since_ms);
	if (left <= 0)
		return 0;
	pthread_mutex_lock(&b->lock);
	step = b->poll_ms < left ? (int64_t)b->poll_ms : left;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += step / 1000;
	until.tv_nsec += (step % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	epoch = b->epoch;
	b->waits++;
	__atomic_add_fetch(&b->waiters, 1, __ATOMIC_SEQ_CST);
	while (b->epoch == epoch)
		if (pthread_cond_timedwait(&b->done, &b->lock, &until) != 0)
			break;
	woken = b->epoch != epoch;
	if (woken)
		b->woken++;
	__atomic_sub_fetch(&b->waiters, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&b->lock);
	return 1;
}

/* After a statement of c: if it left c outside any transaction, whatever
 * lock c held is free now; wake the connections waiting for one. */
static void
sq_released(struct sq_conn *c)
{
	struct sq_busy *b = &c->q->busy;

	if (__atomic_load_n(&b->waiters, __ATOMIC_SEQ_CST) == 0 ||
	    !sqlite3_get_autocommit(c->db))
		return;
	pthread_mutex_lock(&b->lock);
	b->epoch++;
	pthread_cond_broadcast(&b->done);
	pthread_mutex_unlock(&b->lock);
}

static struct sq_conn *
sq_conn(struct store *st, struct herr *err)
{
	struct sq *q = st->priv;
	struct sq_conn *c = pthread_getspecific(q->key);
	char *msg = NULL;

	if (c)
		return c;
	c = xcalloc(1, sizeof(*c));
	c->q = q;
	pthread_mutex_init(&c->use, NULL);
	if (sqlite3_open_v2(q->path, &c->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		herr_set(err, HERR_STORE, "cannot open store '%s': %s", q->path,
			 c->db ? sqlite3_errmsg(c->db) : "out of memory");
		sqlite3_close(c->db);
		pthread_mutex_destroy(&c->use);
		free(c);
		return NULL;
	}
	sqlite3_busy_handler(c->db, sq_busy, c);
	if (sqlite3_exec(c->db,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
			 NULL, NULL, &msg) != SQLITE_OK) {
		herr_set(err, HERR_STORE, "cannot set up store '%s': %s", q->path, msg ? msg : "?");
		sqlite3_free(msg);
		sqlite3_close(c->db);
		pthread_mutex_destroy(&c->use);
		free(c);
		return NULL;
	}
	pthread_setspecific(q->key, c);
	pthread_mutex_lock(&q->lock);
	c->all_next = q->all;
	q->all = c;
	pthread_mutex_unlock(&q->lock);
	return c;
}

/* Makes `path` 0600, creating it empty if `create` (SQLite then gives its
 * -wal and -shm the same mode). A symlink is refused, not followed: the
 * directory may be writable by others. A file that is not there is fine
 * unless `create`. */
static int
sq_make_private(const char *path, bool create, struct herr *err)
{
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT : 0), 0600);

	if (fd < 0) {
		if (errno == ENOENT && !create)
			return 0;
		return herr_set(err, HERR_STORE, "cannot open store file '%s': %s", path,
				strerror(errno));
	}
	if (fchmod(fd, 0600) < 0) {
		int e = errno;
		close(fd);
		return herr_set(err, HERR_STORE, "cannot make store file '%s' mode 0600: %s", path,
				strerror(e));
	}
	close(fd);
	return 0;
}

static int
sq_open(struct store *st, const char *path, struct herr *err)
{
	struct sq *q;
	char side[sizeof(q->path) + 8];

	/* before SQLite creates anything, and mending files of older versions */
	if (strcmp(path, ":memory:") != 0) {
		if (sq_make_private(path, true, err) < 0)
			return err->code;
		snprintf(side, sizeof(side), "%s-wal", path);
		if (sq_make_private(side, false, err) < 0)
			return err->code;
		snprintf(side, sizeof(side), "%s-shm", path);
		if (sq_make_private(side, false, err) < 0)
			return err->code;
	}
	q = xcalloc(1, sizeof(*q));
	snprintf(q->path, sizeof(q->path), "%s", path);
	/* Each connection is used by one thread: no SQLite mutexes on it, and
	 * no global memory statistics (their mutex is taken on every malloc,
	 * which the API's threads then fight over). Before the first open only;
	 * later calls fail harmlessly. */
	sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	pthread_key_create(&q->key, NULL);
	pthread_mutex_init(&q->lock, NULL);
	pthread_mutex_init(&q->busy.lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&q->busy.done, &ca);
		pthread_condattr_destroy(&ca);
	}
	q->busy.poll_ms = SQ_BUSY_POLL_MS;
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&q->wake, &ca);
		pthread_condattr_destroy(&ca);
	}
	st->priv = q;
	if (sq_conn(st, err) == NULL) {
		pthread_key_delete(q->key);
		free(q);
		st->priv = NULL;
		return err->code;
	}
	q->sweeping = pthread_create(&q->sweeper, NULL, sq_sweep, q) == 0;
	if (!q->sweeping)
		log_warn("store: no snapshot sweeper thread: idle reads may delay checkpoints");
	return 0;
}

static void
sq_close(struct store *st)
{
	struct sq *q = st->priv;
	struct sq_conn *c, *next;

	if (q == NULL)
		return;
	if (q->sweeping) {
		pthread_mutex_lock(&q->lock);
		q->stop = true;
		pthread_cond_signal(&q->wake);
		pthread_mutex_unlock(&q->lock);
		pthread_join(q->sweeper, NULL);
	}
	for (c = q->all; c; c = next) {
		next = c->all_next;
		sq_conn_free(c);
	}
	pthread_key_delete(q->key);
	free(q);
	st->priv = NULL;
}

/* err may be NULL (a cleanup whose failure has nothing to add). */
static int
sq_simple(struct store *st, const char *sql, struct herr *err)
{
	struct herr ignored = HERR_INIT;
	struct sq_conn *c;
	char *msg = NULL;

	if (err == NULL)
		err = &ignored;
	c = sq_conn(st, err);
	if (c == NULL)
		return err->code;
	if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		herr_set(err, HERR_STORE, "store: %s", msg ? msg : "error");
		sqlite3_free(msg);
		sq_released(c);
		return err->code;
	}
	sq_released(c);
	return 0;
}

/* A transaction begun inside another is a savepoint of it: the API runs a
 * change and its audit row in one transaction (one commit, one fdatasync)
 * while the model's functions keep their own begin/commit/rollback. An
 * inner commit releases the savepoint (nothing reaches the disk until the
 * outermost commit); an inner rollback undoes the inner part only. */
static int
sq_begin(struct store *st, struct herr *err)
{
	struct sq_conn *c = sq_conn(st, err);
	int rc;

	if (c == NULL)
		return err->code;
	BUG_ON(c->in_tx < 0 || c->in_tx > 1000);
	if (!c->in_tx) {
		sq_wrote();
		sq_hold_drop(c);
	}
	if (c->in_tx && sqlite3_get_autocommit(c->db))
		/* a SAVEPOINT now would start a new transaction that its
		 * RELEASE commits on its own: the outer one is gone */
		return herr_set(err, HERR_STORE, "the transaction was rolled back by the database");
	rc = sq_simple(st, c->in_tx ? "SAVEPOINT herd_nest" : "BEGIN IMMEDIATE", err);
	if (rc == 0)
		c->in_tx++;
	return rc;
}

static int
sq_commit(struct store *st, struct herr *err)
{
	struct sq_conn *c = sq_conn(st, err);
	int rc;

	if (c == NULL)
		return err->code;
	if (c->in_tx > 1) {
		rc = sq_simple(st, "RELEASE herd_nest", err);
		if (rc < 0)
			sq_simple(st, "ROLLBACK TO herd_nest; RELEASE herd_nest", NULL);
		c->in_tx--;
		return rc;
	}
	rc = sq_simple(st, "COMMIT", err);
	if (rc < 0)
		sq_simple(st, "ROLLBACK", NULL);
	else
		store_generation_bump();
	sq_wrote();
	c->in_tx = 0;
	return rc;
}

static void
sq_rollback(struct store *st)
{
	struct sq_conn *c = sq_conn(st, NULL);
	struct herr e = HERR_INIT;

	if (c == NULL || !c->in_tx)
		return;
	if (c->in_tx > 1) {
		sq_simple(st, "ROLLBACK TO herd_nest; RELEASE herd_nest", &e);
		c->in_tx--;
		return;
	}
	sq_simple(st, "ROLLBACK", &e);
	c->in_tx = 0;
}

static bool
sq_in_tx(struct store *st)
{
	struct sq_conn *c = sq_conn(st, NULL);

	return c && c->in_tx > 0;
}

static int
sq_tx_depth(struct store *st)
{
	struct sq_conn *c = sq_conn(st, NULL);

	if (c == NULL || c->in_tx <= 0 || sqlite3_get_autocommit(c->db))
		return 0;
	return c->in_tx;
}

static sqlite3_stmt *
sq_prepare(struct sq_conn *c, const char *sql, struct herr *err)
{
	sqlite3_stmt *s;
	int i;

	for (i = 0; i < SQ_CACHE; i++)
		if (c->sql[i] && (c->sql[i] == sql || strcmp(c->sql[i], sql) == 0))
			return c->stmt[i];
	if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
		herr_set(err, HERR_STORE, "store: cannot prepare: %s", sqlite3_errmsg(c->db));
		return NULL;
	}
	i = c->next;
	c->next = (c->next + 1) % SQ_CACHE;
	if (c->stmt[i])
		sqlite3_finalize(c->stmt[i]);
	free((char *)c->sql[i]);
	c->sql[i] = xstrdup(sql);
	c->stmt[i] = s;
	return s;
}

/* One step of a cached statement that returns no row (BEGIN, COMMIT). */
static int
sq_step_once(struct sq_conn *c, const char *sql, struct herr *err)
{
	sqlite3_stmt *s = sq_prepare(c, sql, err);
	int rc;

	if (s == NULL)
		return err->code;
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	sq_released(c);
	if (rc != SQLITE_DONE)
		return herr_set(err, HERR_STORE, "store: %s", sqlite3_errmsg(c->db));
	return 0;
}

/* c->held set to on, counted in q->nheld; the first snapshot held wakes
 * the sweeper (a 0 -> 1 count under q->lock, so that a sweeper that has
 * just seen 0 is already waiting when it is signalled). */
static void
sq_held_set(struct sq_conn *c, bool on)
{
	struct sq *q = c->q;

	if (c->held == on)
		return;
	c->held = on;
	if (!on) {
		__atomic_fetch_sub(&q->nheld, 1, __ATOMIC_SEQ_CST);
	} else if (__atomic_fetch_add(&q->nheld, 1, __ATOMIC_SEQ_CST) == 0) {
		pthread_mutex_lock(&q->lock);
		pthread_cond_signal(&q->wake);
		pthread_mutex_unlock(&q->lock);
	}
}

/* Ends c's held snapshot (c->use held by the caller). */
static void
sq_hold_end(struct sq_conn *c)
{
	struct herr e = HERR_INIT;

	if (!c->held)
		return;
	sq_held_set(c, false);
	if (!sqlite3_get_autocommit(c->db) && sq_step_once(c, "COMMIT", &e) < 0 &&
	    !sqlite3_get_autocommit(c->db) && sq_step_once(c, "ROLLBACK", &e) < 0)
		log_warn("store: cannot end a read snapshot: %s", e.msg);
}

/* Whether sql may be read in a held snapshot: a query (SELECT or WITH) that
 * writes nothing. Anything else (a write, BEGIN, a PRAGMA) ends it first
 * and runs as before. */
static bool
sq_is_read(sqlite3_stmt *s, const char *sql)
{
	while (*sql == ' ' || *sql == '\t' || *sql == '\n')
		sql++;
	return sqlite3_stmt_readonly(s) &&
	       (strncasecmp(sql, "SELECT", 6) == 0 || strncasecmp(sql, "WITH", 4) == 0);
}

/* c->use, taken by the owner for as long as it touches its snapshot;
 * nested (a query inside store_read_begin/end, or inside another's row
 * callback) it is taken once. */
static void
sq_use_enter(struct sq_conn *c)
{
	if (c->use_depth++ == 0)
		pthread_mutex_lock(&c->use);
}

/* How many statements of the owner are running on c (its use, less the
 * one store_read_begin holds). */
static int
sq_running(const struct sq_conn *c)
{
	return c->use_depth - (c->in_read ? 1 : 0);
}

static void
sq_use_leave(struct sq_conn *c)
{
	BUG_ON(c->use_depth <= 0);
	if (c->held && sqlite3_get_autocommit(c->db))
		sq_held_set(c, false);   /* the database ended it (an error) */
	if (sq_running(c) == 1 && c->end_after) {
		/* a write made inside the snapshot (it could not be ended
		 * under a statement still running): committed now */
		c->end_after = false;
		sq_hold_end(c);
		store_generation_bump();
		sq_wrote();
	}
	if (--c->use_depth == 0)
		pthread_mutex_unlock(&c->use);
}

/* Before a read outside a transaction: c->use taken and a snapshot to read
 * in, kept or taken now (a deferred BEGIN: the statement's first step
 * takes the WAL read mark). Never renewed under another statement of the
 * thread or inside store_read_begin/end. The generation is read before the
 * BEGIN: a commit racing it can only make the snapshot look older than it
 * is. */
static int
sq_read_enter(struct sq_conn *c, struct herr *err)
{
	uint64_t gen = store_generation();
	int64_t now = sq_mono_ms();

	sq_use_enter(c);
	if (c->held && sqlite3_get_autocommit(c->db))
		sq_held_set(c, false);
	switch (sq_snapshot_decide(c->held, c->in_read, sq_running(c) > 1, c->held_gen, c->held_ms,
				   gen, now, __atomic_load_n(&sq_write_ms, __ATOMIC_RELAXED))) {
	case SQ_SNAP_NONE:
		if (sq_running(c) == 1)
			sq_hold_end(c);
		return 0;
	case SQ_SNAP_KEEP:
		return 0;
	case SQ_SNAP_RENEW:
		sq_hold_end(c);
		break;
	case SQ_SNAP_TAKE:
		break;
	}
	if (sq_step_once(c, "BEGIN", err) < 0) {
		sq_use_leave(c);
		return err->code;
	}
	c->held_gen = gen;
	c->held_ms = now;
	sq_held_set(c, true);
	return 0;
}

/* After a read: while writes are under way, the snapshot is not kept
 * past the statement (nor past store_read_end). */
static void
sq_read_leave(struct sq_conn *c)
{
	if (c->held && !c->in_read && sq_running(c) == 1 &&
	    sq_writing(sq_mono_ms(), __atomic_load_n(&sq_write_ms, __ATOMIC_RELAXED)))
		sq_hold_end(c);
	sq_use_leave(c);
}

/* Before anything but a read outside a transaction: no snapshot held, or,
 * under a statement of the thread still running (a row callback's write),
 * the snapshot ended as soon as that is done. */
static void
sq_hold_drop(struct sq_conn *c)
{
	sq_use_enter(c);
	if (sq_running(c) > 1 && c->held)
		c->end_after = true;
	else
		sq_hold_end(c);
	sq_use_leave(c);
}

/* The sweeper: every SQ_SNAPSHOT_MS while any snapshot is held, ends the
 * snapshots held by connections nobody is using that are stale (older
 * than SQ_SNAPSHOT_MS or than a commit of this process): an idle thread's
 * snapshot would otherwise keep checkpoints from backfilling past it and
 * the WAL from starting over, for as long as the thread sleeps. With none
 * held it sleeps until sq_held_set takes one (or close). */
static void *
sq_sweep(void *arg)
{
	struct sq *q = arg;
	struct timespec until;

	pthread_mutex_lock(&q->lock);
	while (!q->stop) {
		if (__atomic_load_n(&q->nheld, __ATOMIC_SEQ_CST) == 0) {
			pthread_cond_wait(&q->wake, &q->lock);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)SQ_SNAPSHOT_MS * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&q->wake, &q->lock, &until);
		if (q->stop)
			break;
		__atomic_fetch_add(&q->sweeps, 1, __ATOMIC_RELAXED);
		for (struct sq_conn *c = q->all; c; c = c->all_next) {
			if (pthread_mutex_trylock(&c->use) != 0)
				continue;   /* in use: its owner renews it */
			if (c->held && sq_snapshot_stale(c->held_gen, c->held_ms, store_generation(),
							 sq_mono_ms()))
				sq_hold_end(c);
			pthread_mutex_unlock(&c->use);
		}
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* Several queries in one snapshot: the held one, renewed first if stale,
 * and pinned (c->use held) until sq_read_end. Inside a write transaction
 * the reads already share one. */
static int
sq_read_begin(struct store *st, struct herr *err)
{
	struct sq_conn *c = sq_conn(st, err);

	if (c == NULL)
		return err->code;
	if (c->in_tx || c->in_read)
		return 0;
	if (sq_read_enter(c, err) < 0)
		return err->code;
	c->in_read = true;   /* and c->use stays taken until sq_read_end */
	return 0;
}

static void
sq_read_end(struct store *st)
{
	struct sq_conn *c = sq_conn(st, NULL);

	if (c == NULL || !c->in_read)
		return;
	c->in_read = false;
	sq_read_leave(c);
}

static json_t *
sq_column(sqlite3_stmt *s, int i)
{
	switch (sqlite3_column_type(s, i)) {
	case SQLITE_INTEGER:
		return json_integer((json_int_t)sqlite3_column_int64(s, i));
	case SQLITE_FLOAT:
		return json_real(sqlite3_column_double(s, i));
	case SQLITE_NULL:
		return json_null();
	default:
		return json_stringn((const char *)sqlite3_column_text(s, i),
				    (size_t)sqlite3_column_bytes(s, i));
	}
}

/* Binds params (a JSON array, or NULL) to s's placeholders in order. Text
 * is bound without a copy (SQLITE_STATIC): params outlive the statement's
 * use, every caller resets and clears the bindings before it returns. */
static void
sq_bind(sqlite3_stmt *s, json_t *params)
{
	json_t *v;
	size_t i;

	json_array_foreach(params, i, v) {
		int p = (int)i + 1;
		switch (json_typeof(v)) {
		case JSON_STRING:
			sqlite3_bind_text(s, p, json_string_value(v), (int)json_string_length(v),
					  SQLITE_STATIC);
			break;
		case JSON_INTEGER:
			sqlite3_bind_int64(s, p, (sqlite3_int64)json_integer_value(v));
			break;
		case JSON_REAL:
			sqlite3_bind_double(s, p, json_real_value(v));
			break;
		case JSON_TRUE:
			sqlite3_bind_int(s, p, 1);
			break;
		case JSON_FALSE:
			sqlite3_bind_int(s, p, 0);
			break;
		default:
			sqlite3_bind_null(s, p);
			break;
		}
	}
}

static int
sq_exec(struct store *st, const char *sql, json_t *params, json_t **rows, int64_t *changes,
	struct herr *err)
{
	struct sq_conn *c = sq_conn(st, err);
	sqlite3_stmt *s;
	json_t *out = NULL;
	bool snap;
	int rc;

	if (c == NULL)
		return err->code;
	if ((s = sq_prepare(c, sql, err)) == NULL)
		return err->code;
	snap = !c->in_tx && sq_is_read(s, sql);
	if (snap && sq_read_enter(c, err) < 0)
		return err->code;
	if (!snap && !c->in_tx)
		sq_hold_drop(c);
	sq_bind(s, params);
	if (rows)
		out = json_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (out) {
			json_t *row = json_object();
			int n = sqlite3_column_count(s);
			for (int k = 0; k < n; k++)
				json_object_set_new(row, sqlite3_column_name(s, k), sq_column(s, k));
			json_array_append_new(out, row);
		}
	}
	if (rc != SQLITE_DONE) {
		int ext = sqlite3_extended_errcode(c->db);
		if ((ext & 0xff) == SQLITE_CONSTRAINT)
			herr_set(err, HERR_CONFLICT, "%s", sqlite3_errmsg(c->db));
		else
			herr_set(err, HERR_STORE, "store: %s", sqlite3_errmsg(c->db));
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		sq_released(c);
		if (snap)
			sq_read_leave(c);
		json_decref(out);
		return err->code;
	}
	if (!c->in_tx && !sqlite3_stmt_readonly(s)) {
		store_generation_bump();   /* an autocommit write is committed now */
		sq_wrote();
	}
	if (changes)
		*changes = sqlite3_changes64(c->db);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	sq_released(c);
	if (snap)
		sq_read_leave(c);
	if (rows)
		*rows = out;
	return 0;
}

static int
sq_migrate(struct store *st, int want, struct herr *err)
{
	struct sq_conn *c = sq_conn(st, err);
	int have = 0;
	sqlite3_stmt *s;

	if (c == NULL)
		return err->code;
	if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			have = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
	}
	if (have > want)
		return herr_set(err, HERR_STORE, "store '%s' has schema version %d, newer than %s (%d)",
				st->dsn, have,
				want == store_migrations_n ? "this herd" : "the one asked for", want);
	for (int v = have; v < want; v++) {
		char pragma[64];
		if (sq_begin(st, err) < 0)
			return err->code;
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
		if (sq_simple(st, store_migrations[v].sql, err) < 0 || sq_simple(st, pragma, err) < 0) {
			sq_rollback(st);
			return herr_set(err, HERR_STORE, "store migration %d failed: %s", v + 1,
					err->msg);
		}
		if (sq_commit(st, err) < 0)
			return err->code;
		log_info("store: migrated '%s' to schema version %d", st->dsn, v + 1);
	}
	return 0;
}

static const char *
sq_col_text(const struct store_cols *c, int i, size_t *len)
{
	const char *t = (const char *)sqlite3_column_text(c->impl, i);

	*len = t ? (size_t)sqlite3_column_bytes(c->impl, i) : 0;
	return t ? t : "";
}

static int64_t
sq_col_int(const struct store_cols *c, int i)
{
	return (int64_t)sqlite3_column_int64(c->impl, i);
}

static int
sq_each(struct store *st, const char *sql, json_t *params, store_row_fn fn, void *arg,
	struct herr *err)
{
	struct sq_conn *c = sq_conn(st, err);
	struct store_cols cols = { &store_sqlite_ops, NULL };
	sqlite3_stmt *s;
	bool snap;
	int rc, frc = 0;

	if (c == NULL)
		return err->code;
	if ((s = sq_prepare(c, sql, err)) == NULL)
		return err->code;
	snap = !c->in_tx && sq_is_read(s, sql);
	if (snap && sq_read_enter(c, err) < 0)
		return err->code;
	if (!snap && !c->in_tx)
		sq_hold_drop(c);
	sq_bind(s, params);
	cols.impl = s;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if ((frc = fn(&cols, arg)) < 0)
			break;
	if (frc == 0 && rc != SQLITE_DONE)
		frc = herr_set(err, HERR_STORE, "store: %s", sqlite3_errmsg(c->db));
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	sq_released(c);
	if (snap)
		sq_read_leave(c);
	return frc;
}

static void
sq_lock_stats(struct store *st, struct store_lock_stats *out, unsigned poll_ms)
{
	struct sq_busy *b = &((struct sq *)st->priv)->busy;

	pthread_mutex_lock(&b->lock);
	out->waits = b->waits;
	out->woken = b->woken;
	out->sweeps = __atomic_load_n(&((struct sq *)st->priv)->sweeps, __ATOMIC_RELAXED);
	if (poll_ms)
		b->poll_ms = poll_ms;
	pthread_mutex_unlock(&b->lock);
}

const struct store_ops store_sqlite_ops = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.migrate = sq_migrate,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.in_tx = sq_in_tx,
	.tx_depth = sq_tx_depth,
	.read_begin = sq_read_begin,
	.read_end = sq_read_end,
	.exec = sq_exec,
	.each = sq_each,
	.col_text = sq_col_text,
	.col_int = sq_col_int,
	.lock_stats = sq_lock_stats,
	.single_process = true,   /* the data dir's flock: one server at a time */
};
