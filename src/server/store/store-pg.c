/* store-pg.c - the PostgreSQL backend of the store (libpq), picked by a
 * "postgres://" or "postgresql://" DSN (docs/ha.md). One connection per
 * thread; the callers' portable SQL with its '?' placeholders numbered for
 * libpq and prepared once per connection (a cache of named statements,
 * prepared again when a table's change altered a statement's columns);
 * parameters sent as text and typed by the server from their context; rows
 * typed from the columns' types. Each write transaction takes one advisory
 * lock first, so writers run one at a time as on SQLite (BEGIN IMMEDIATE),
 * here across processes too. A failed statement inside a transaction
 * undoes only itself (a savepoint around it), as on SQLite: PostgreSQL
 * would otherwise abort the whole transaction. A statement goes in one
 * round trip with what it needs first (libpq's pipeline mode): its
 * savepoint and release, its prepare, a nested level's savepoint, a read
 * snapshot's BEGIN. A lost connection fails the statement (HERR_UNAVAIL)
 * and is made again on the thread's next use outside a transaction, never
 * silently inside one. The schema is schema.c's, with the column types
 * translated (pg_schema_sql), its version in the one-row table
 * herd_schema; migrations run under an advisory lock. */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "log.h"
#include "schema.h"
#include "store-pg.h"
#include "store.h"
#include "xalloc.h"

#define PG_CACHE 64
#define PG_MAX_PARAMS 256
/* advisory lock keys: 0x68657264 ("herd") and the one above it */
#define PG_LOCK_WRITE "1751478884"
#define PG_LOCK_MIGRATE "1751478885"
/* how long a statement waits for a lock (the writers' one included) before
 * it fails: SQLite's busy timeout (store-sqlite.c) */
#define PG_LOCK_TIMEOUT "10s"

/* type OIDs (catalog/pg_type_d.h, stable since forever) */
#define PG_BOOLOID 16
#define PG_INT8OID 20
#define PG_INT2OID 21
#define PG_INT4OID 23
#define PG_OIDOID 26
#define PG_FLOAT4OID 700
#define PG_FLOAT8OID 701
#define PG_NUMERICOID 1700

extern const struct store_ops store_pg_ops;

struct pg_conn {
	PGconn *db;
	char *sql[PG_CACHE];               /* cache keys: the caller's SQL text */
	char *text[PG_CACHE];              /* ... numbered for libpq */
	int nparams[PG_CACHE];
	bool prepared[PG_CACHE];           /* as "herd_SLOT" on this connection */
	bool dealloc[PG_CACHE];            /* "herd_SLOT" holds an evicted statement */
	int next;                          /* round-robin eviction */
	int in_tx;                         /* depth: >1 = nested (savepoints) */
	/* Nested levels' savepoint commands not sent yet, sent with the next
	 * statement (pg_pipeline) or the rollback that needs them: first
	 * nest_release RELEASEs, then nest_save SAVEPOINTs (a savepoint begun
	 * and committed with no statement between them is neither). */
	int nest_release, nest_save;
	bool in_read;                      /* inside pg_read_begin's snapshot */
	bool read_pending;                 /* ... whose BEGIN goes with the next statement */
	struct pg_conn *all_next;          /* every connection, for close */
};

/* The listener (pg_listen): its own connection and thread, LISTENing on
 * one channel, woken by the socket or by a byte on stop_pipe. */
struct pg_listener {
	pthread_t thread;
	int stop_pipe[2];
	char channel[64];
	store_notify_fn fn;
	void *arg;
};

struct pg {
	char dsn[1024];                    /* as given: may hold a password */
	char shown[1024];                  /* for messages: redacted */
	pthread_key_t key;
	pthread_mutex_t lock;              /* guards all */
	struct pg_conn *all;
	struct pg_listener *listener;      /* NULL until pg_listen */
};

/* One row of a result in hand (store_each). */
struct pg_row {
	PGresult *res;
	int row;
};

/* The index of the quote that closes the string or identifier opened at
 * sql[i] (its last byte when unclosed). A doubled quote ('' inside a
 * string) closes and reopens: the callers copy both halves as they are. */
static size_t
quoted_end(const char *sql, size_t i, size_t len)
{
	size_t j = i + 1;

	while (j < len && sql[j] != sql[i])
		j++;
	return j < len ? j : len - 1;
}

/* Whether c can be part of an SQL word (a keyword or a name). */
static bool
is_word(char c)
{
	return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

char *
pg_sql_numbered(const char *sql, int *n)
{
	size_t len = strlen(sql), o = 0, cap = len + 1;
	char *out = xmalloc(cap);
	int k = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = sql[i];

		if (ch == '\'' || ch == '"') {
			size_t j = quoted_end(sql, i, len);
			memcpy(out + o, sql + i, j - i + 1);
			o += j - i + 1;
			i = j;
			continue;
		}
		if (ch == '-' && sql[i + 1] == '-') {
			size_t j = i;
			while (j < len && sql[j] != '\n')
				j++;
			memcpy(out + o, sql + i, j - i);
			o += j - i;
			i = j - 1;
			continue;
		}
		if (ch == '/' && sql[i + 1] == '*') {
			const char *end = strstr(sql + i + 2, "*/");
			size_t j = end ? (size_t)(end - sql) + 2 : len;
			memcpy(out + o, sql + i, j - i);
			o += j - i;
			i = j - 1;
			continue;
		}
		if (ch == '?') {
			char num[16];
			int w = snprintf(num, sizeof(num), "$%d", ++k);
			cap += (size_t)w;
			out = xrealloc(out, cap);
			memcpy(out + o, num, (size_t)w);
			o += (size_t)w;
			continue;
		}
		out[o++] = ch;
	}
	out[o] = '\0';
	if (n)
		*n = k;
	return out;
}

static bool
pg_word_at(const char *s, size_t i, size_t len, const char *w)
{
	size_t wl = strlen(w);
	char after;

	if (i + wl > len || strncmp(s + i, w, wl) != 0)
		return false;
	after = s[i + wl];
	return !is_word(after);
}

char *
pg_schema_sql(const char *sql)
{
	static const struct {
		const char *from, *to;
	} map[] = {
		{ "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY" },
		{ "INTEGER PRIMARY KEY", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY" },
		{ "INTEGER", "BIGINT" },
		{ "REAL", "DOUBLE PRECISION" },
		{ "BLOB", "BYTEA" },
	};
	size_t len = strlen(sql), o = 0, cap = len * 3 + 1;
	char *out = xmalloc(cap);

	for (size_t i = 0; i < len; i++) {
		char ch = sql[i];
		bool start = i == 0 || !is_word(sql[i - 1]);
		size_t k;

		if (ch == '\'' || ch == '"') {
			size_t j = quoted_end(sql, i, len);
			memcpy(out + o, sql + i, j - i + 1);
			o += j - i + 1;
			i = j;
			continue;
		}
		for (k = 0; start && k < sizeof(map) / sizeof(map[0]); k++)
			if (pg_word_at(sql, i, len, map[k].from))
				break;
		if (start && k < sizeof(map) / sizeof(map[0])) {
			size_t tl = strlen(map[k].to);
			if (o + tl + (len - i) + 1 > cap) {
				cap = o + tl + (len - i) + 1 + len;
				out = xrealloc(out, cap);
			}
			memcpy(out + o, map[k].to, tl);
			o += tl;
			i += strlen(map[k].from) - 1;
			continue;
		}
		if (o + 2 > cap)
			out = xrealloc(out, cap *= 2);
		out[o++] = ch;
	}
	out[o] = '\0';
	return out;
}

/* libpq's multi-line message on one line: its lines joined with "; ". */
static void
pg_one_line(const char *msg, char *out, size_t n)
{
	size_t o = 0;

	for (const char *p = msg; *p && o + 3 < n; p++) {
		if (*p == '\n' || *p == '\t') {
			if (o > 0 && out[o - 1] != ' ' && p[1] && p[1] != '\n') {
				out[o++] = *p == '\n' ? ';' : ' ';
				out[o++] = ' ';
			}
			continue;
		}
		out[o++] = *p;
	}
	while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == ';'))
		o--;
	out[o] = '\0';
}

static void
pg_notice(void *arg, const char *msg)
{
	log_debug("store: postgresql: %s", msg);
}

static void
pg_conn_free(struct pg_conn *c)
{
	for (int i = 0; i < PG_CACHE; i++) {
		free(c->sql[i]);
		free(c->text[i]);
	}
	PQfinish(c->db);
	free(c);
}

/* Per connection: no notices on stderr, SQLite's lock timeout, UTC. */
static int
pg_setup(struct pg *p, PGconn *db, struct herr *err)
{
	PGresult *r;
	int ok;

	char line[256];

	if (PQstatus(db) != CONNECTION_OK) {
		pg_one_line(PQerrorMessage(db), line, sizeof(line));
		return herr_set(err, HERR_UNAVAIL, "cannot connect to store '%s': %s", p->shown,
				line);
	}
	PQsetNoticeProcessor(db, pg_notice, NULL);
	r = PQexec(db, "SET lock_timeout = '" PG_LOCK_TIMEOUT "'; SET TIME ZONE 'UTC'");
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok)
		return herr_set(err, HERR_STORE, "cannot set up store '%s': %s", p->shown,
				PQerrorMessage(db));
	return 0;
}

/* The calling thread's connection: made on first use, and made again after
 * it was lost when the thread is outside any transaction (inside one the
 * statements fail until the caller rolls back). */
static struct pg_conn *
pg_conn(struct store *st, struct herr *err)
{
	struct herr ignored = HERR_INIT;
	struct pg *p = st->priv;
	struct pg_conn *c = pthread_getspecific(p->key);

	if (err == NULL)
		err = &ignored;
	if (c) {
		if (PQstatus(c->db) == CONNECTION_OK || c->in_tx || c->in_read)
			return c;
		PQreset(c->db);
		/* a new session: nothing of the old one is prepared */
		memset(c->prepared, 0, sizeof(c->prepared));
		memset(c->dealloc, 0, sizeof(c->dealloc));
		if (pg_setup(p, c->db, err) < 0)
			return NULL;
		log_info("store: connected to '%s' again", p->shown);
		return c;
	}
	c = xcalloc(1, sizeof(*c));
	c->db = PQconnectdb(p->dsn);
	if (c->db == NULL || pg_setup(p, c->db, err) < 0) {
		if (c->db == NULL)
			herr_set(err, HERR_STORE, "cannot connect to store '%s': out of memory",
				 p->shown);
		PQfinish(c->db);
		free(c);
		return NULL;
	}
	pthread_setspecific(p->key, c);
	pthread_mutex_lock(&p->lock);
	c->all_next = p->all;
	p->all = c;
	pthread_mutex_unlock(&p->lock);
	return c;
}

/* The error of a failed result (or of the connection when r is NULL):
 * constraint violations (SQLSTATE class 23) are conflicts, a lost
 * connection is HERR_UNAVAIL, the rest HERR_STORE. */
static int
pg_error(struct pg_conn *c, PGresult *r, struct herr *err)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;

	char line[256];

	if (msg == NULL)
		msg = PQerrorMessage(c->db);
	if (PQstatus(c->db) != CONNECTION_OK) {
		pg_one_line(msg, line, sizeof(line));
		return herr_set(err, HERR_UNAVAIL, "store: lost the connection to PostgreSQL: %s",
				line);
	}
	if (state && strncmp(state, "23", 2) == 0)
		return herr_set(err, HERR_CONFLICT, "%s%s%s", msg, detail ? ": " : "",
				detail ? detail : "");
	return herr_set(err, HERR_STORE, "store: %s", msg);
}

/* Runs sql (no parameters, several statements allowed); err may be NULL. */
static int
pg_simple(struct pg_conn *c, const char *sql, struct herr *err)
{
	struct herr ignored = HERR_INIT;
	PGresult *r = PQexec(c->db, sql);
	ExecStatusType s = PQresultStatus(r);
	int rc = 0;

	if (err == NULL)
		err = &ignored;
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
		rc = pg_error(c, r, err);
	PQclear(r);
	return rc;
}

static int
pg_open(struct store *st, const char *dsn, struct herr *err)
{
	struct pg *p = xcalloc(1, sizeof(*p));

	if (strlen(dsn) >= sizeof(p->dsn)) {
		free(p);
		return herr_set(err, HERR_INVALID, "store DSN longer than %zu bytes",
				sizeof(p->dsn) - 1);
	}
	snprintf(p->dsn, sizeof(p->dsn), "%s", dsn);
	store_dsn_redact(dsn, p->shown, sizeof(p->shown));
	pthread_key_create(&p->key, NULL);
	pthread_mutex_init(&p->lock, NULL);
	st->priv = p;
	if (pg_conn(st, err) == NULL) {
		pthread_key_delete(p->key);
		explicit_bzero(p->dsn, sizeof(p->dsn));
		free(p);
		st->priv = NULL;
		return err->code;
	}
	return 0;
}

static void pg_listen_stop(struct pg *p);

static void
pg_close(struct store *st)
{
	struct pg *p = st->priv;
	struct pg_conn *c, *next;

	if (p == NULL)
		return;
	pg_listen_stop(p);
	for (c = p->all; c; c = next) {
		next = c->all_next;
		pg_conn_free(c);
	}
	pthread_key_delete(p->key);
	explicit_bzero(p->dsn, sizeof(p->dsn));
	free(p);
	st->priv = NULL;
}

/* Whether c's server-side transaction is usable. */
static bool
pg_tx_alive(struct pg_conn *c)
{
	PGTransactionStatusType t = PQtransactionStatus(c->db);

	return t == PQTRANS_INTRANS || t == PQTRANS_ACTIVE;
}

/* Nested begin = a savepoint, as on SQLite (store.h). */
static int
pg_begin(struct store *st, struct herr *err)
{
	struct pg_conn *c = pg_conn(st, err);
	int rc;

	if (c == NULL)
		return err->code;
	BUG_ON(c->in_tx < 0 || c->in_tx > 1000);
	if (c->in_read)
		return herr_set(err, HERR_STORE, "store: a transaction inside a read snapshot");
	if (c->in_tx && !pg_tx_alive(c))
		return herr_set(err, HERR_STORE, "the transaction was rolled back by the database");
	if (c->in_tx) {
		c->nest_save++;   /* sent with the next statement */
		rc = 0;
	} else {
		c->nest_release = c->nest_save = 0;
		rc = pg_simple(c, "BEGIN; SELECT pg_advisory_xact_lock(" PG_LOCK_WRITE ")", err);
	}
	if (rc < 0 && !c->in_tx && PQtransactionStatus(c->db) != PQTRANS_IDLE)
		pg_simple(c, "ROLLBACK", NULL);
	if (rc == 0)
		c->in_tx++;
	return rc;
}

static int
pg_commit(struct store *st, struct herr *err)
{
	struct pg_conn *c = pg_conn(st, err);
	PGresult *r;
	int rc = 0;

	if (c == NULL)
		return err->code;
	if (c->in_tx > 1) {
		if (!pg_tx_alive(c))
			rc = PQstatus(c->db) != CONNECTION_OK ?
				pg_error(c, NULL, err) :
				herr_set(err, HERR_STORE,
					 "the transaction was rolled back by the database");
		else if (c->nest_save > 0)
			c->nest_save--;   /* never sent: nothing ran inside it */
		else
			c->nest_release++;   /* sent with the next statement, or dropped by COMMIT */
		c->in_tx--;
		return rc;
	}
	c->nest_release = c->nest_save = 0;   /* COMMIT releases every savepoint */
	if (!pg_tx_alive(c)) {
		rc = PQstatus(c->db) != CONNECTION_OK ?
			pg_error(c, NULL, err) :
			herr_set(err, HERR_STORE, "the transaction was rolled back by the database");
		pg_simple(c, "ROLLBACK", NULL);
		c->in_tx = 0;
		return rc;
	}
	r = PQexec(c->db, "COMMIT");
	/* an aborted transaction's COMMIT answers ROLLBACK, not an error */
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		rc = pg_error(c, r, err);
	else if (strcmp(PQcmdStatus(r), "COMMIT") != 0)
		rc = herr_set(err, HERR_STORE, "store: the transaction was rolled back");
	PQclear(r);
	if (rc < 0 && PQtransactionStatus(c->db) != PQTRANS_IDLE)
		pg_simple(c, "ROLLBACK", NULL);
	else if (rc == 0)
		store_generation_bump();
	c->in_tx = 0;
	return rc;
}

/* Undoes the innermost nested level: nothing when its savepoint was never
 * sent, else ROLLBACK TO it after the releases still owed, in one round
 * trip. */
static void
pg_nest_rollback(struct pg_conn *c)
{
	static const char rel[] = "RELEASE SAVEPOINT herd_nest;";
	static const char undo[] = "ROLLBACK TO SAVEPOINT herd_nest; RELEASE SAVEPOINT herd_nest";
	char *sql;
	size_t o = 0;

	if (c->nest_save > 0) {
		c->nest_save--;
		return;
	}
	sql = xmalloc((size_t)c->nest_release * (sizeof(rel) - 1) + sizeof(undo));
	for (int i = 0; i < c->nest_release; i++, o += sizeof(rel) - 1)
		memcpy(sql + o, rel, sizeof(rel) - 1);
	memcpy(sql + o, undo, sizeof(undo));
	c->nest_release = 0;
	pg_simple(c, sql, NULL);
	free(sql);
}

static void
pg_rollback(struct store *st)
{
	struct pg *p = st->priv;
	struct pg_conn *c = pthread_getspecific(p->key);

	if (c == NULL || !c->in_tx)
		return;
	if (c->in_tx > 1) {
		pg_nest_rollback(c);
		c->in_tx--;
		return;
	}
	c->nest_release = c->nest_save = 0;
	if (PQstatus(c->db) == CONNECTION_OK)
		pg_simple(c, "ROLLBACK", NULL);
	c->in_tx = 0;
}

static bool
pg_in_tx(struct store *st)
{
	struct pg *p = st->priv;
	struct pg_conn *c = pthread_getspecific(p->key);

	return c && c->in_tx > 0;
}

static int
pg_tx_depth(struct store *st)
{
	struct pg *p = st->priv;
	struct pg_conn *c = pthread_getspecific(p->key);

	if (c == NULL || c->in_tx <= 0 || !pg_tx_alive(c))
		return 0;
	return c->in_tx;
}

static int
pg_read_begin(struct store *st, struct herr *err)
{
	struct pg_conn *c = pg_conn(st, err);

	if (c == NULL)
		return err->code;
	if (c->in_tx || c->in_read)
		return 0;
	/* BEGIN goes with the first statement (pg_pipeline): REPEATABLE READ
	 * takes its snapshot at the first statement anyway */
	c->in_read = true;
	c->read_pending = true;
	return 0;
}

static void
pg_read_end(struct store *st)
{
	struct pg *p = st->priv;
	struct pg_conn *c = pthread_getspecific(p->key);

	if (c == NULL || !c->in_read)
		return;
	c->in_read = false;
	if (c->read_pending) {
		c->read_pending = false;   /* no statement ran: nothing began */
		return;
	}
	if (PQstatus(c->db) == CONNECTION_OK && PQtransactionStatus(c->db) != PQTRANS_IDLE &&
	    pg_simple(c, "COMMIT", NULL) < 0)
		pg_simple(c, "ROLLBACK", NULL);
}

/* The slot of sql in c's cache: numbered for libpq, prepared (named
 * "herd_SLOT") on its first run. An evicted slot's statement is dropped
 * (DEALLOCATE) before the slot's next one is prepared. */
static int
pg_stmt(struct pg_conn *c, const char *sql)
{
	int i;

	for (i = 0; i < PG_CACHE; i++)
		if (c->sql[i] && (c->sql[i] == sql || strcmp(c->sql[i], sql) == 0))
			return i;
	i = c->next;
	c->next = (c->next + 1) % PG_CACHE;
	free(c->sql[i]);
	free(c->text[i]);
	c->sql[i] = xstrdup(sql);
	c->text[i] = pg_sql_numbered(sql, &c->nparams[i]);
	if (c->prepared[i])
		c->dealloc[i] = true;
	c->prepared[i] = false;
	return i;
}

/* A JSON parameter as PostgreSQL's text (NULL for null); buf holds numbers. */
static const char *
pg_param(json_t *v, char *buf, size_t n)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		return json_string_value(v);
	case JSON_INTEGER:
		snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return buf;
	case JSON_REAL:
		snprintf(buf, n, "%.17g", json_real_value(v));
		return buf;
	case JSON_TRUE:
		return "1";
	case JSON_FALSE:
		return "0";
	default:
		return NULL;
	}
}

/* The pipeline's next result: a statement's (the NULL that ends it read
 * too) or the sync's; NULL when the connection failed. */
static PGresult *
pg_result(struct pg_conn *c)
{
	PGresult *r = PQgetResult(c->db);

	if (r && PQresultStatus(r) != PGRES_PIPELINE_SYNC)
		PQclear(PQgetResult(c->db));
	return r;
}

/* Whether a part's result is a success. */
static bool
pg_ok(const PGresult *r)
{
	ExecStatusType s = PQresultStatus(r);

	return r && (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK);
}

/* The parts of one statement's pipeline, in the order sent. */
enum pg_part {
	PG_P_BEGIN,                        /* a read snapshot's deferred BEGIN */
	PG_P_NEST,                         /* the nested levels' owed savepoint commands */
	PG_P_SAVE,                         /* SAVEPOINT herd_stmt (in a transaction) */
	PG_P_DEALLOC,                      /* the slot's old statement dropped */
	PG_P_PREPARE,                      /* the slot's statement prepared */
	PG_P_EXEC,
	PG_P_RELEASE,                      /* RELEASE SAVEPOINT herd_stmt */
	PG_P_N
};

static bool
pg_send(struct pg_conn *c, bool *sent, enum pg_part part, const char *sql)
{
	sent[part] = PQsendQueryParams(c->db, sql, 0, NULL, NULL, NULL, NULL, 0) == 1;
	return sent[part];
}

/* Sends slot's statement with what goes around it in one round trip
 * (libpq's pipeline mode): a read snapshot's BEGIN, the savepoint, the
 * prepare. PostgreSQL skips what follows a failed part up to the sync, so
 * RELEASE runs only after a statement that succeeded. res[] gets each
 * part's result (NULL: not sent, or the connection failed). */
static void
pg_pipeline(struct pg_conn *c, int slot, const char *const *vals, PGresult **res)
{
	bool sent[PG_P_N] = { false }, ok;
	char name[16], dealloc[32];
	int nest = 0;

	snprintf(name, sizeof(name), "herd_%d", slot);
	snprintf(dealloc, sizeof(dealloc), "DEALLOCATE %s", name);
	ok = PQenterPipelineMode(c->db) == 1;
	if (ok && c->read_pending)
		ok = pg_send(c, sent, PG_P_BEGIN, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	for (int i = 0; ok && c->in_tx && i < c->nest_release + c->nest_save; i++) {
		ok = pg_send(c, sent, PG_P_NEST, i < c->nest_release ? "RELEASE SAVEPOINT herd_nest"
							       : "SAVEPOINT herd_nest");
		nest += ok;
	}
	if (ok && c->in_tx)
		ok = pg_send(c, sent, PG_P_SAVE, "SAVEPOINT herd_stmt");
	if (ok && c->dealloc[slot])
		ok = pg_send(c, sent, PG_P_DEALLOC, dealloc);
	if (ok && !c->prepared[slot])
		ok = (sent[PG_P_PREPARE] = PQsendPrepare(c->db, name, c->text[slot], c->nparams[slot],
							 NULL) == 1);
	if (ok)
		ok = (sent[PG_P_EXEC] = PQsendQueryPrepared(c->db, name, c->nparams[slot], vals, NULL,
							    NULL, 0) == 1);
	if (ok && c->in_tx)
		pg_send(c, sent, PG_P_RELEASE, "RELEASE SAVEPOINT herd_stmt");
	if (PQpipelineStatus(c->db) == PQ_PIPELINE_OFF)
		return;
	if (PQpipelineSync(c->db) == 1) {
		for (int i = 0; i < PG_P_N; i++) {
			if (i == PG_P_NEST) {
				/* several: the first that failed, else the last */
				for (int k = 0; k < nest; k++) {
					PGresult *r = pg_result(c);
					if (res[i] == NULL || pg_ok(res[i])) {
						PQclear(res[i]);
						res[i] = r;
					} else
						PQclear(r);
				}
			} else if (sent[i])
				res[i] = pg_result(c);
		}
		PQclear(pg_result(c));   /* the sync's */
	}
	if (PQstatus(c->db) == CONNECTION_OK)
		PQexitPipelineMode(c->db);
}

/* Runs slot's statement once (pg_pipeline), keeps the cache's state and
 * the snapshot's, and undoes a failed statement as pg_run says. NULL on
 * error (err set); *replan: it failed as a prepared statement whose result
 * columns changed under it (a table altered), and may be prepared again. */
static PGresult *
pg_run_once(struct pg_conn *c, int slot, const char *const *vals, bool *replan,
	    struct herr *err)
{
	PGresult *res[PG_P_N] = { NULL }, *out = NULL;
	bool was_prepared = c->prepared[slot];
	const char *state;
	int bad = -1;

	pg_pipeline(c, slot, vals, res);
	if (c->in_tx)
		/* sent (a failure there leaves the transaction unusable anyway) */
		c->nest_release = c->nest_save = 0;
	if (c->read_pending && pg_ok(res[PG_P_BEGIN]))
		c->read_pending = false;
	if (res[PG_P_DEALLOC] && (pg_ok(res[PG_P_DEALLOC]) ||
				  PQresultStatus(res[PG_P_DEALLOC]) == PGRES_FATAL_ERROR))
		c->dealloc[slot] = false;   /* dropped, or there was none to drop */
	if (pg_ok(res[PG_P_PREPARE]))
		c->prepared[slot] = true;   /* even if what follows failed: not transactional */
	for (int i = 0; i < PG_P_N && bad < 0; i++)
		if (res[i] && !pg_ok(res[i]))
			bad = i;
	if (bad < 0 && pg_ok(res[PG_P_EXEC]) && (!c->in_tx || pg_ok(res[PG_P_RELEASE]))) {
		out = res[PG_P_EXEC];
		res[PG_P_EXEC] = NULL;
	} else {
		pg_error(c, bad >= 0 ? res[bad] : NULL, err);
		state = bad == PG_P_EXEC ? PQresultErrorField(res[bad], PG_DIAG_SQLSTATE) : NULL;
		/* feature_not_supported: "cached plan must not change result type" */
		*replan = was_prepared && state && strcmp(state, "0A000") == 0;
	}
	for (int i = 0; i < PG_P_N; i++)
		PQclear(res[i]);
	if (out || PQstatus(c->db) != CONNECTION_OK)
		return out;
	if (c->in_tx && bad != PG_P_SAVE && bad != PG_P_NEST)
		pg_simple(c, "ROLLBACK TO SAVEPOINT herd_stmt; RELEASE SAVEPOINT herd_stmt", NULL);
	else if (c->in_read) {
		c->in_read = false;
		if (!c->read_pending)
			pg_simple(c, "ROLLBACK", NULL);
		else if (PQtransactionStatus(c->db) != PQTRANS_IDLE)
			pg_simple(c, "ROLLBACK", NULL);
		c->read_pending = false;
	}
	return NULL;
}

/* Runs one statement, prepared on the connection (pg_stmt), in one round
 * trip (pg_pipeline); a failed one inside a write transaction is undone
 * alone (a savepoint: one more round trip, on failure only), one in a read
 * snapshot ends the snapshot. A prepared statement whose table changed its
 * columns is prepared again and run once more (in a snapshot, after the
 * snapshot ended, as any failure ends it). NULL on error (err set). */
static PGresult *
pg_run(struct pg_conn *c, const char *sql, json_t *params, struct herr *err)
{
	const char *vals[PG_MAX_PARAMS];
	char nums[PG_MAX_PARAMS][32];
	size_t np = json_array_size(params);
	bool replan = false;
	int slot;
	PGresult *r;

	if (c->in_tx && !pg_tx_alive(c)) {
		if (PQstatus(c->db) != CONNECTION_OK)
			return pg_error(c, NULL, err), NULL;
		herr_set(err, HERR_STORE, "the transaction was rolled back by the database");
		return NULL;
	}
	slot = pg_stmt(c, sql);
	if (np > PG_MAX_PARAMS || (size_t)c->nparams[slot] != np) {
		herr_set(err, HERR_STORE, "store: %zu parameters for %d placeholders", np,
			 c->nparams[slot]);
		return NULL;
	}
	for (size_t i = 0; i < np; i++)
		vals[i] = pg_param(json_array_get(params, i), nums[i], sizeof(nums[i]));
	r = pg_run_once(c, slot, vals, &replan, err);
	if (r == NULL && replan) {
		log_debug("store: statement herd_%d prepared again: %s", slot, err->msg);
		c->dealloc[slot] = true;
		c->prepared[slot] = false;
		*err = (struct herr)HERR_INIT;
		r = pg_run_once(c, slot, vals, &replan, err);
	}
	return r;
}

/* A numeric: an integer when integral and within 64 bits, else a real. */
static json_t *
pg_numeric(const char *v)
{
	long long i;
	char *end;
	double d;

	errno = 0;
	i = strtoll(v, &end, 10);
	if (errno == 0 && end != v && (*end == '\0' ||
				       (*end == '.' && strspn(end + 1, "0") == strlen(end + 1))))
		return json_integer((json_int_t)i);
	d = strtod(v, NULL);
	return isfinite(d) ? json_real(d) : json_null();
}

/* A column as JSON: integers (int2/4/8, oid, integral numeric, bool as
 * 0/1) as integers, floats as reals, NULL as null, the rest as text. */
static json_t *
pg_value(PGresult *r, int row, int col)
{
	const char *v = PQgetvalue(r, row, col);

	if (PQgetisnull(r, row, col))
		return json_null();
	switch (PQftype(r, col)) {
	case PG_BOOLOID:
		return json_integer(v[0] == 't');
	case PG_INT2OID:
	case PG_INT4OID:
	case PG_INT8OID:
	case PG_OIDOID:
		return json_integer((json_int_t)strtoll(v, NULL, 10));
	case PG_NUMERICOID:
		return pg_numeric(v);
	case PG_FLOAT4OID:
	case PG_FLOAT8OID: {
		double d = strtod(v, NULL);
		return isfinite(d) ? json_real(d) : json_null();
	}
	default:
		return json_stringn(v, (size_t)PQgetlength(r, row, col));
	}
}

/* After a statement outside a transaction: a write is committed now. */
static void
pg_autocommitted(struct pg_conn *c, PGresult *r)
{
	if (!c->in_tx && !c->in_read && strncmp(PQcmdStatus(r), "SELECT", 6) != 0)
		store_generation_bump();
}

static int
pg_exec(struct store *st, const char *sql, json_t *params, json_t **rows, int64_t *changes,
	struct herr *err)
{
	struct pg_conn *c = pg_conn(st, err);
	PGresult *r;

	if (c == NULL)
		return err->code;
	if ((r = pg_run(c, sql, params, err)) == NULL)
		return err->code;
	if (rows) {
		int nrows = PQntuples(r), ncols = PQnfields(r);
		json_t *out = json_array();
		for (int i = 0; i < nrows; i++) {
			json_t *row = json_object();
			for (int k = 0; k < ncols; k++)
				json_object_set_new(row, PQfname(r, k), pg_value(r, i, k));
			json_array_append_new(out, row);
		}
		*rows = out;
	}
	if (changes)
		*changes = strtoll(PQcmdTuples(r), NULL, 10);
	pg_autocommitted(c, r);
	PQclear(r);
	return 0;
}

static const char *
pg_col_text(const struct store_cols *c, int i, size_t *len)
{
	const struct pg_row *pr = c->impl;

	*len = (size_t)PQgetlength(pr->res, pr->row, i);
	return PQgetvalue(pr->res, pr->row, i);
}

static int64_t
pg_col_int(const struct store_cols *c, int i)
{
	const struct pg_row *pr = c->impl;
	const char *v = PQgetvalue(pr->res, pr->row, i);

	if (PQftype(pr->res, i) == PG_BOOLOID)
		return v[0] == 't';
	return (int64_t)strtoll(v, NULL, 10);
}

static int
pg_each(struct store *st, const char *sql, json_t *params, store_row_fn fn, void *arg,
	struct herr *err)
{
	struct pg_conn *c = pg_conn(st, err);
	struct pg_row pr = { NULL, 0 };
	struct store_cols cols = { &store_pg_ops, &pr };
	int frc = 0;

	if (c == NULL)
		return err->code;
	if ((pr.res = pg_run(c, sql, params, err)) == NULL)
		return err->code;
	for (pr.row = 0; pr.row < PQntuples(pr.res); pr.row++)
		if ((frc = fn(&cols, arg)) < 0)
			break;
	pg_autocommitted(c, pr.res);
	PQclear(pr.res);
	return frc < 0 ? frc : 0;
}

/* The schema version (herd_schema's one row, made at 0); -1 on error. */
static int
pg_schema_version(struct pg_conn *c, struct herr *err)
{
	PGresult *r;
	int v = -1;

	if (pg_simple(c, "CREATE TABLE IF NOT EXISTS herd_schema (version BIGINT NOT NULL);"
			 "INSERT INTO herd_schema (version) SELECT 0"
			 "  WHERE NOT EXISTS (SELECT 1 FROM herd_schema)", err) < 0)
		return -1;
	r = PQexec(c->db, "SELECT version FROM herd_schema");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
	else
		pg_error(c, r, err);
	PQclear(r);
	return v;
}

static int
pg_migrate_locked(struct store *st, struct pg_conn *c, int want, struct herr *err)
{
	struct pg *p = st->priv;
	int have = pg_schema_version(c, err);

	if (have < 0)
		return err->code;
	if (have > want)
		return herr_set(err, HERR_STORE, "store '%s' has schema version %d, newer than %s (%d)",
				p->shown, have,
				want == store_migrations_n ? "this herd" : "the one asked for", want);
	for (int v = have; v < want; v++) {
		const struct store_migration *m = &store_migrations[v];
		char *sql = pg_schema_sql(m->pg ? m->pg : m->sql);
		char setv[64];
		int rc;

		snprintf(setv, sizeof(setv), "UPDATE herd_schema SET version = %d", v + 1);
		if (pg_begin(st, err) < 0) {
			free(sql);
			return err->code;
		}
		rc = pg_simple(c, sql, err);
		free(sql);
		if (rc < 0 || pg_simple(c, setv, err) < 0) {
			pg_rollback(st);
			return herr_set(err, HERR_STORE, "store migration %d failed: %s", v + 1,
					err->msg);
		}
		if (pg_commit(st, err) < 0)
			return err->code;
		log_info("store: migrated '%s' to schema version %d", p->shown, v + 1);
	}
	return 0;
}

/* Under a session advisory lock: servers starting together migrate once. */
static int
pg_migrate(struct store *st, int want, struct herr *err)
{
	struct pg_conn *c = pg_conn(st, err);
	int rc;

	if (c == NULL)
		return err->code;
	if (pg_simple(c, "SET lock_timeout = 0; SELECT pg_advisory_lock(" PG_LOCK_MIGRATE ");"
			 "SET lock_timeout = '" PG_LOCK_TIMEOUT "'", err) < 0)
		return err->code;
	rc = pg_migrate_locked(st, c, want, err);
	pg_simple(c, "SELECT pg_advisory_unlock(" PG_LOCK_MIGRATE ")", NULL);
	return rc;
}

/* The database's clock: every server of a shared store decides the
 * controller lease's expiry by it, whatever its own clock says. */
static int64_t
pg_now_ms(struct store *st, struct herr *err)
{
	json_t *rows = NULL;
	int64_t ms = -1;

	if (pg_exec(st, "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) AS ms",
		    NULL, &rows, NULL, err) == 0)
		ms = json_integer_value(json_object_get(json_array_get(rows, 0), "ms"));
	json_decref(rows);
	return ms;
}

/* --- announcements: NOTIFY and the listener (docs/ha.md) --- */

/* NOTIFY on the calling thread's connection: at its transaction's commit,
 * at once outside one. */
static int
pg_notify(struct store *st, const char *channel, const char *payload, struct herr *err)
{
	json_t *params = json_pack("[ss]", channel, payload);
	int rc = pg_exec(st, "SELECT pg_notify(?, ?)", params, NULL, NULL, err);

	json_decref(params);
	return rc;
}

#define PG_LISTEN_BACKOFF_MIN_MS 100
#define PG_LISTEN_BACKOFF_MAX_MS 5000

/* Waits up to ms for the stop pipe: true when stopping. */
static bool
pg_listen_sleep(struct pg_listener *l, int ms)
{
	struct pollfd pf = { .fd = l->stop_pipe[0], .events = POLLIN };

	return poll(&pf, 1, ms) > 0;
}

/* A connection LISTENing on l's channel, or NULL (logged once per outage
 * by the caller). */
static PGconn *
pg_listen_connect(struct pg *p, struct pg_listener *l, struct herr *err)
{
	PGconn *db = PQconnectdb(p->dsn);
	PGresult *r;
	char sql[96];
	bool ok;

	if (db == NULL) {
		herr_set(err, HERR_STORE, "cannot connect to store '%s': out of memory", p->shown);
		return NULL;
	}
	snprintf(sql, sizeof(sql), "LISTEN %s", l->channel);   /* store_channel_ok's name */
	if (pg_setup(p, db, err) < 0) {
		PQfinish(db);
		return NULL;
	}
	r = PQexec(db, sql);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok) {
		herr_set(err, HERR_STORE, "store '%s': cannot listen: %s", p->shown,
			 PQerrorMessage(db));
		PQfinish(db);
		return NULL;
	}
	return db;
}

/* The listener's thread: LISTEN, then hand every notification to l->fn;
 * a lost connection is made again with a doubling backoff, and then fn
 * (NULL) says what came meanwhile is unknown. */
static void *
pg_listen_main(void *arg)
{
	struct store *st = arg;
	struct pg *p = st->priv;
	struct pg_listener *l = p->listener;
	int backoff = PG_LISTEN_BACKOFF_MIN_MS;
	bool warned = false, first = true;

	for (;;) {
		struct herr err = HERR_INIT;
		PGconn *db = pg_listen_connect(p, l, &err);

		if (db == NULL) {
			if (!warned)
				log_warn("store: announcements: %s (retrying)", err.msg);
			warned = true;
			if (pg_listen_sleep(l, backoff))
				return NULL;
			backoff = backoff * 2 > PG_LISTEN_BACKOFF_MAX_MS ? PG_LISTEN_BACKOFF_MAX_MS
									  : backoff * 2;
			continue;
		}
		if (warned || !first)
			log_info("store: listening for announcements again");
		if (!first)
			l->fn(NULL, l->arg);
		warned = first = false;
		backoff = PG_LISTEN_BACKOFF_MIN_MS;
		for (;;) {
			struct pollfd pf[2] = {
				{ .fd = PQsocket(db), .events = POLLIN },
				{ .fd = l->stop_pipe[0], .events = POLLIN },
			};
			PGnotify *n;

			if (poll(pf, 2, -1) < 0 && errno != EINTR)
				break;
			if (pf[1].revents) {
				PQfinish(db);
				return NULL;
			}
			if (PQconsumeInput(db) == 0 || PQstatus(db) != CONNECTION_OK)
				break;
			while ((n = PQnotifies(db)) != NULL) {
				l->fn(n->extra, l->arg);
				PQfreemem(n);
			}
		}
		log_warn("store: announcements: lost the connection to PostgreSQL; connecting again");
		PQfinish(db);
		if (pg_listen_sleep(l, backoff))
			return NULL;
	}
}

static int
pg_listen(struct store *st, const char *channel, store_notify_fn fn, void *arg,
	  struct herr *err)
{
	struct pg *p = st->priv;
	struct pg_listener *l;

	if (p->listener)
		return herr_set(err, HERR_STORE, "store: a listener is running already");
	l = xcalloc(1, sizeof(*l));
	if (pipe(l->stop_pipe) < 0) {
		free(l);
		return herr_set(err, HERR_STORE, "store: cannot make a pipe: %s", strerror(errno));
	}
	snprintf(l->channel, sizeof(l->channel), "%s", channel);
	l->fn = fn;
	l->arg = arg;
	p->listener = l;
	if (pthread_create(&l->thread, NULL, pg_listen_main, st) != 0) {
		close(l->stop_pipe[0]);
		close(l->stop_pipe[1]);
		free(l);
		p->listener = NULL;
		return herr_set(err, HERR_STORE, "store: cannot start the listener");
	}
	return 0;
}

static void
pg_listen_stop(struct pg *p)
{
	struct pg_listener *l = p->listener;

	if (l == NULL)
		return;
	if (write(l->stop_pipe[1], "x", 1) < 0)
		log_warn("store: cannot stop the listener: %s", strerror(errno));
	pthread_join(l->thread, NULL);
	close(l->stop_pipe[0]);
	close(l->stop_pipe[1]);
	free(l);
	p->listener = NULL;
}

const struct store_ops store_pg_ops = {
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.migrate = pg_migrate,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.in_tx = pg_in_tx,
	.tx_depth = pg_tx_depth,
	.read_begin = pg_read_begin,
	.read_end = pg_read_end,
	.exec = pg_exec,
	.each = pg_each,
	.col_text = pg_col_text,
	.col_int = pg_col_int,
	.now_ms = pg_now_ms,
	.notify = pg_notify,
	.listen = pg_listen,
	.single_process = false,   /* several servers may share the database */
};
