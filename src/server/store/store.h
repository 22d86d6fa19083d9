/* store.h - the control-plane store. Backends (SQLite, PostgreSQL)
 * implement a small SQL-level ops struct; everything above (store.c and the
 * callers) is written once in portable SQL with '?' placeholders, values
 * passed as a JSON array and rows returned as JSON objects (64-bit integers
 * intact). Each thread has its own connection; a transaction belongs to the
 * thread that began it. */
#ifndef HERD_STORE_H
#define HERD_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"

struct store;
struct store_cols;

/* How often a statement waited for another connection's write lock, and
 * how many of those waits a transaction of this process ended (the others
 * looked again after a poll: a holder in another process, or a missed
 * wake-up). */
struct store_lock_stats {
	uint64_t waits, woken;
	uint64_t sweeps;   /* SQLite: passes of the read snapshot sweeper */
};

/* Called by store_each for each row; a value below 0 stops it (returned). */
typedef int (*store_row_fn)(const struct store_cols *c, void *arg);

/* Called by a store's listener (store_listen) with each announcement's
 * payload, from the listener's own thread; payload NULL: the listener
 * (re)connected, announcements made meanwhile may have been missed. */
typedef void (*store_notify_fn)(const char *payload, void *arg);

/* PostgreSQL's NOTIFY payload limit is 8000 bytes: announcements stay
 * below this (store_notify refuses longer ones). */
#define STORE_NOTIFY_MAX 7900

struct store_ops {
	const char *name;
	int (*open)(struct store *st, const char *dsn, struct herr *err);
	void (*close)(struct store *st);
	/* Brings the schema to version want (1..store_migrations_n), one
	 * migration per txn; a schema above want is an error. */
	int (*migrate)(struct store *st, int want, struct herr *err);
	int (*begin)(struct store *st, struct herr *err);
	int (*commit)(struct store *st, struct herr *err);
	void (*rollback)(struct store *st);
	/* Whether this thread is inside a transaction. */
	bool (*in_tx)(struct store *st);
	/* How deep: 0 outside, 1 in a transaction, more in savepoints. */
	int (*tx_depth)(struct store *st);
	/* A read snapshot for several queries (optional: without it each
	 * query reads alone). Nothing inside a transaction. */
	int (*read_begin)(struct store *st, struct herr *err);
	void (*read_end)(struct store *st);
	/* Runs one statement. params: JSON array (string, integer, real, true,
	 * false, null) or NULL. rows (optional): set to an owned array of
	 * objects keyed by column name. changes (optional): rows changed.
	 * Constraint violations return HERR_CONFLICT; others HERR_STORE. */
	int (*exec)(struct store *st, const char *sql, json_t *params, json_t **rows,
		    int64_t *changes, struct herr *err);
	/* Runs a query calling fn for each row, no row objects built (hot
	 * reads). Optional: store_each falls back to exec. */
	int (*each)(struct store *st, const char *sql, json_t *params, store_row_fn fn,
		    void *arg, struct herr *err);
	/* A column of the row in hand: text ("" for NULL; *len its bytes), integer. */
	const char *(*col_text)(const struct store_cols *c, int i, size_t *len);
	int64_t (*col_int)(const struct store_cols *c, int i);
	/* Optional: the lock-wait statistics; poll_ms > 0 also sets the
	 * longest single wait (tests make it long to see the wake-ups). */
	void (*lock_stats)(struct store *st, struct store_lock_stats *out, unsigned poll_ms);
	/* Optional: the database's clock (wall ms), the one clock every
	 * server of a shared store agrees on (model/lease.c decides expiry
	 * by it). Without it store_now_ms reads the local wall clock. */
	int64_t (*now_ms)(struct store *st, struct herr *err);
	/* Optional: announces payload on channel to every process listening
	 * on the store (PostgreSQL NOTIFY; delivered when the calling thread's
	 * transaction commits, at once outside one). SQLite has none: one
	 * process per store, nobody else to tell. */
	int (*notify)(struct store *st, const char *channel, const char *payload,
		      struct herr *err);
	/* Optional: starts the store's listener on channel (a thread with its
	 * own connection, made again with a backoff when lost), calling fn for
	 * each announcement, this process's own included. One per store;
	 * close stops it. */
	int (*listen)(struct store *st, const char *channel, store_notify_fn fn, void *arg,
		      struct herr *err);
	/* Only one process ever uses this store (SQLite: the data dir's
	 * flock): a lease held by an earlier process is dead and may be taken
	 * at start without waiting for it to lapse. */
	bool single_process;
};

/* The row in hand during a store_each callback; read it with store_col_*. */
struct store_cols {
	const struct store_ops *ops;
	void *impl;
};
const char *store_col_text(const struct store_cols *c, int i, size_t *len);
int64_t store_col_int(const struct store_cols *c, int i);

struct store {
	const struct store_ops *ops;
	char dsn[1024];
	void *priv;
};

/* Opens the store named by dsn ("sqlite:PATH" or a plain path: SQLite;
 * "postgres://..." or "postgresql://...": PostgreSQL, docs/ha.md) and
 * migrates. */
struct store *store_open(const char *dsn, struct herr *err);
/* For tests and the teardown's fallback, never a server's store: opens the
 * store like store_open but migrates it only up to schema version version
 * (1..the newest: tests make the store an older herd wrote with the real
 * migrations, tests/tools/store-at.c), or, with STORE_SCHEMA_AS_IS, leaves
 * its schema as it is, whatever version (reading what a store that cannot
 * be migrated still holds). A schema above version is an error. */
#define STORE_SCHEMA_AS_IS (-1)
struct store *store_open_at(const char *dsn, int version, struct herr *err);
void store_close(struct store *st);

/* Whether dsn names a store: sqlite:PATH, postgres://... or postgresql://...
 * (a plain path, store_open's other form, is not a DSN). */
bool store_dsn_valid(const char *dsn);

/* dsn for messages and logs, its password (a URL's user:PASSWORD@, a
 * password=... key) replaced with "***"; cut to n bytes. */
void store_dsn_redact(const char *dsn, char *out, size_t n);

/* A begin inside a transaction nests (a savepoint): its commit keeps the
 * work for the outer commit, its rollback undoes only the inner part. */
int store_begin(struct store *st, struct herr *err);
int store_commit(struct store *st, struct herr *err);
void store_rollback(struct store *st);
/* Whether the calling thread is inside a transaction. */
bool store_in_tx(struct store *st);
/* The calling thread's nesting depth: 0 outside a transaction, 1 in one,
 * 2+ in savepoints. A transaction the database rolled back by itself (an
 * I/O error, a full disk) counts as none: 0. */
int store_tx_depth(struct store *st);

/* Several reads that see one snapshot, at the cost of one read lock
 * instead of one per query (a GET answered from two queries): the calling
 * thread's queries between the two see the same committed state. For reads
 * only; inside a transaction both do nothing. store_read_begin returns 0 or
 * a store error; store_read_end may be called after a failed begin.
 * Outside them, SQLite keeps a thread's snapshot for its next reads while
 * no commit of this process came since and for at most SQ_SNAPSHOT_MS
 * (store-sqlite.h), and none while this process writes: a commit of this
 * process is seen by the next read of every thread, another process's by
 * reads begun 2 * SQ_SNAPSHOT_MS after it. */
int store_read_begin(struct store *st, struct herr *err);
void store_read_end(struct store *st);

/* Runs sql with params packed by json_pack(fmt, ...) ("[ssI]"; fmt may be
 * NULL for none). *rows (if rows != NULL) gets the result rows (owned). */
int store_q(struct store *st, json_t **rows, int64_t *changes, struct herr *err,
	    const char *sql, const char *fmt, ...);
/* Runs sql (params as store_q), calling fn for each row in order; the
 * columns are valid during the call only. 0, fn's value below 0, or the
 * store's error. */
int store_each(struct store *st, struct herr *err, store_row_fn fn, void *arg, const char *sql,
	       const char *fmt, ...);
/* The first row of a query (owned), or NULL when none or on error (err set
 * only on error: check err->code). */
json_t *store_row(struct store *st, struct herr *err, const char *sql, const char *fmt, ...);

/* A counter that grows after every committed write (any thread): a value
 * read before a query and unchanged after it means the data it saw is still
 * current. For caches of query results. */
uint64_t store_generation(void);
void store_generation_bump(void);

/* Lock-wait statistics (zeros for a backend without them); poll_ms > 0
 * sets the longest single wait without a wake-up (for tests; 0 keeps it). */
void store_lock_stats(struct store *st, struct store_lock_stats *out, unsigned poll_ms);

/* The store's clock, wall ms (store_ops.now_ms, else the local clock). */
int64_t store_now_ms(struct store *st, struct herr *err);

/* Fencing. Sets the calling thread's fence on st: a statement (sql, params
 * a JSON array, stolen) that must change exactly one row, run first in each
 * of this thread's outermost transactions on st; a write statement run
 * outside a transaction (store_q, store_row) is wrapped in one so it is
 * fenced too. When it changes no row, the transaction is rolled back and
 * the begin (or the write) fails with HERR_FENCED: nothing of it is
 * written. One fence per thread (a new one replaces it); params NULL or sql
 * NULL clears it. Controllers set it with the lease they act under
 * (model/lease.h), so a write recorded by a server that lost the lease is
 * refused in the same transaction, whatever its clock believes. */
void store_fence_set(struct store *st, const char *sql, json_t *params);
/* Whether the calling thread has a fence on st. */
bool store_fenced(const struct store *st);
/* Whether the calling thread's fence on st failed since it was set (then
 * every write of the thread fails at once, never retried). */
bool store_fence_tripped(const struct store *st);

/* Announcements between the processes sharing a store (docs/ha.md, "Long
 * polls on any server"): whether the store has them (PostgreSQL), then
 * store_notify and store_listen as the ops above. channel: lower-case
 * letters and '_', at most 63; payload at most STORE_NOTIFY_MAX bytes.
 * Without them both answer -ENOTSUP. */
bool store_can_notify(const struct store *st);
int store_notify(struct store *st, const char *channel, const char *payload, struct herr *err);
int store_listen(struct store *st, const char *channel, store_notify_fn fn, void *arg,
		 struct herr *err);

/* Small key/value settings (instance id, ...). Owned string or NULL. */
char *store_meta_get(struct store *st, const char *key);
int store_meta_set(struct store *st, const char *key, const char *value, struct herr *err);
/* The value of key, first set to value when the key has none: of servers
 * starting together on one store, every one gets the first one's value.
 * Owned string, or NULL with err set. */
char *store_meta_init(struct store *st, const char *key, const char *value, struct herr *err);

#endif
