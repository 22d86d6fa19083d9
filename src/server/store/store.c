/* store.c - backend selection and the helpers callers use to run portable
 * SQL against any backend; see store.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "schema.h"
#include "store.h"
#include "xalloc.h"

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_pg_ops;

/* Whether s at i starts a "password=" key (after the start, '?', '&' or a
 * space: a URL's query or a keyword/value string). */
static bool
store_dsn_password_at(const char *s, size_t i)
{
	return strncasecmp(s + i, "password=", 9) == 0 &&
	       (i == 0 || s[i - 1] == '?' || s[i - 1] == '&' || s[i - 1] == ' ');
}

void
store_dsn_redact(const char *dsn, char *out, size_t n)
{
	const char *scheme = strstr(dsn, "://");
	size_t len = strlen(dsn), o = 0, at_end = 0, colon = 0;

	if (n == 0)
		return;
	/* a URL's user:password@ */
	if (scheme) {
		size_t a = (size_t)(scheme - dsn) + 3, e = a + strcspn(dsn + a, "/?#");
		const char *at = memchr(dsn + a, '@', e - a);
		if (at) {
			const char *c = memchr(dsn + a, ':', (size_t)(at - dsn) - a);
			if (c) {
				colon = (size_t)(c - dsn);
				at_end = (size_t)(at - dsn);
			}
		}
	}
	for (size_t i = 0; i < len && o + 1 < n;) {
		const char *put = NULL;
		size_t skip = 0;

		if (colon && i == colon + 1) {
			put = "***";
			skip = at_end - i;
		} else if (store_dsn_password_at(dsn, i)) {
			size_t v = i + 9, j = v;
			if (dsn[v] == '\'') {
				for (j = v + 1; j < len && dsn[j] != '\''; j++)
					if (dsn[j] == '\\' && j + 1 < len)
						j++;
				j = j < len ? j + 1 : len;
			} else
				j = v + strcspn(dsn + v, "& ");
			put = "password=***";
			skip = j - i;
		}
		if (put) {
			for (const char *q = put; *q && o + 1 < n; q++)
				out[o++] = *q;
			i += skip;
			continue;
		}
		out[o++] = dsn[i++];
	}
	out[o] = '\0';
}

bool
store_dsn_valid(const char *dsn)
{
	size_t n = strlen(dsn);

	if (n == 0 || n >= sizeof(((struct store *)0)->dsn))
		return false;
	return (strncmp(dsn, "sqlite:", 7) == 0 && dsn[7] != '\0') ||
	       (strncmp(dsn, "postgres://", 11) == 0) || (strncmp(dsn, "postgresql://", 13) == 0);
}

struct store *
store_open(const char *dsn, struct herr *err)
{
	return store_open_at(dsn, store_migrations_n, err);
}

struct store *
store_open_at(const char *dsn, int version, struct herr *err)
{
	struct store *st;
	const char *path = dsn;

	if (version != STORE_SCHEMA_AS_IS && (version < 1 || version > store_migrations_n)) {
		herr_set(err, HERR_INVALID, "schema version %d: want 1 to %d", version,
			 store_migrations_n);
		return NULL;
	}
	st = xcalloc(1, sizeof(*st));

	st->ops = &store_sqlite_ops;
	if (strncmp(dsn, "sqlite:", 7) == 0)
		path = dsn + 7;
	else if (strncmp(dsn, "postgres://", 11) == 0 || strncmp(dsn, "postgresql://", 13) == 0)
		st->ops = &store_pg_ops;
	/* for messages: a password never shows */
	store_dsn_redact(path, st->dsn, sizeof(st->dsn));
	if (st->ops->open(st, path, err) < 0) {
		free(st);
		return NULL;
	}
	if (version != STORE_SCHEMA_AS_IS && st->ops->migrate(st, version, err) < 0) {
		st->ops->close(st);
		free(st);
		return NULL;
	}
	return st;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	st->ops->close(st);
	free(st);
}

/* The calling thread's fence (store_fence_set): a statement that must
 * change one row at the start of each of its outermost transactions. */
static __thread struct store *fence_st;
static __thread char *fence_sql;
static __thread json_t *fence_params;
static __thread bool fence_tripped;   /* it failed once: every write fails until set again */

void
store_fence_set(struct store *st, const char *sql, json_t *params)
{
	free(fence_sql);
	json_decref(fence_params);
	fence_sql = NULL;
	fence_params = NULL;
	fence_st = NULL;
	fence_tripped = false;
	if (st == NULL || sql == NULL || params == NULL) {
		json_decref(params);
		return;
	}
	fence_st = st;
	fence_sql = xstrdup(sql);
	fence_params = params;
}

bool
store_fenced(const struct store *st)
{
	return st != NULL && fence_st == st;
}

bool
store_fence_tripped(const struct store *st)
{
	return st != NULL && fence_st == st && fence_tripped;
}

/* Runs the fence in the transaction just begun; on failure rolls it back. */
static int
fence_check(struct store *st, struct herr *err)
{
	int64_t n = 0;

	if (fence_tripped) {
		st->ops->rollback(st);
		return herr_set(err, HERR_FENCED,
				"fenced: this server no longer holds the controller lease");
	}
	if (st->ops->exec(st, fence_sql, fence_params, NULL, &n, err) < 0) {
		st->ops->rollback(st);
		return err->code;
	}
	if (n != 1) {
		st->ops->rollback(st);
		fence_tripped = true;
		return herr_set(err, HERR_FENCED,
				"fenced: this server no longer holds the controller lease");
	}
	return 0;
}

int
store_begin(struct store *st, struct herr *err)
{
	bool outer = fence_st == st && !st->ops->in_tx(st);
	int rc = st->ops->begin(st, err);

	if (rc < 0 || !outer)
		return rc;
	return fence_check(st, err);
}

int64_t
store_now_ms(struct store *st, struct herr *err)
{
	struct timespec ts;

	if (st->ops->now_ms)
		return st->ops->now_ms(st, err);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
store_can_notify(const struct store *st)
{
	return st && st->ops->notify && st->ops->listen;
}

/* A channel is an SQL name herd spells itself: lower-case letters, '_'. */
static bool
store_channel_ok(const char *channel)
{
	size_t n = strlen(channel);

	return n > 0 && n < 64 && strspn(channel, "abcdefghijklmnopqrstuvwxyz_") == n;
}

int
store_notify(struct store *st, const char *channel, const char *payload, struct herr *err)
{
	if (!store_can_notify(st))
		return herr_set(err, -ENOTSUP, "store '%s' has no announcements", st->ops->name);
	if (!store_channel_ok(channel))
		return herr_set(err, HERR_INVALID, "bad announcement channel '%s'", channel);
	if (strlen(payload) > STORE_NOTIFY_MAX)
		return herr_set(err, HERR_TOOBIG, "announcement longer than %d bytes",
				STORE_NOTIFY_MAX);
	return st->ops->notify(st, channel, payload, err);
}

int
store_listen(struct store *st, const char *channel, store_notify_fn fn, void *arg,
	     struct herr *err)
{
	if (!store_can_notify(st))
		return herr_set(err, -ENOTSUP, "store '%s' has no announcements", st->ops->name);
	if (!store_channel_ok(channel))
		return herr_set(err, HERR_INVALID, "bad announcement channel '%s'", channel);
	return st->ops->listen(st, channel, fn, arg, err);
}

/* Whether sql writes (its first word): INSERT, UPDATE, DELETE, REPLACE. */
static bool
sql_writes(const char *sql)
{
	static const char *const verbs[] = { "INSERT", "UPDATE", "DELETE", "REPLACE" };

	while (*sql == ' ' || *sql == '\t' || *sql == '\n')
		sql++;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strncasecmp(sql, verbs[i], strlen(verbs[i])) == 0)
			return true;
	return false;
}

int
store_commit(struct store *st, struct herr *err)
{
	return st->ops->commit(st, err);
}

void
store_rollback(struct store *st)
{
	st->ops->rollback(st);
}

bool
store_in_tx(struct store *st)
{
	return st->ops->in_tx(st);
}

int
store_tx_depth(struct store *st)
{
	return st->ops->tx_depth(st);
}

static int
store_vq(struct store *st, json_t **rows, int64_t *changes, struct herr *err, const char *sql,
	 const char *fmt, va_list ap)
{
	json_t *params = NULL;
	json_error_t jerr;
	int rc;

	if (fmt) {
		params = json_vpack_ex(&jerr, 0, fmt, ap);
		if (params == NULL)
			return herr_set(err, HERR_STORE, "bad query parameters: %s", jerr.text);
	}
	if (fence_st == st && !st->ops->in_tx(st) && sql_writes(sql)) {
		/* a fenced thread's lone write: in a transaction of its own */
		if ((rc = store_begin(st, err)) == 0) {
			rc = st->ops->exec(st, sql, params, rows, changes, err);
			if (rc < 0)
				st->ops->rollback(st);
			else
				rc = st->ops->commit(st, err);
		}
		json_decref(params);
		return rc;
	}
	rc = st->ops->exec(st, sql, params, rows, changes, err);
	json_decref(params);
	return rc;
}

int
store_read_begin(struct store *st, struct herr *err)
{
	return st->ops->read_begin ? st->ops->read_begin(st, err) : 0;
}

void
store_read_end(struct store *st)
{
	if (st->ops->read_end)
		st->ops->read_end(st);
}

int
store_q(struct store *st, json_t **rows, int64_t *changes, struct herr *err, const char *sql,
	const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = store_vq(st, rows, changes, err, sql, fmt, ap);
	va_end(ap);
	return rc;
}

int
store_each(struct store *st, struct herr *err, store_row_fn fn, void *arg, const char *sql,
	   const char *fmt, ...)
{
	json_t *params = NULL;
	json_error_t jerr;
	va_list ap;
	int rc;

	if (st->ops->each == NULL)
		return herr_set(err, -ENOTSUP, "store '%s' cannot stream rows", st->ops->name);
	if (fmt) {
		va_start(ap, fmt);
		params = json_vpack_ex(&jerr, 0, fmt, ap);
		va_end(ap);
		if (params == NULL)
			return herr_set(err, HERR_STORE, "bad query parameters: %s", jerr.text);
	}
	rc = st->ops->each(st, sql, params, fn, arg, err);
	json_decref(params);
	return rc;
}

const char *
store_col_text(const struct store_cols *c, int i, size_t *len)
{
	return c->ops->col_text(c, i, len);
}

int64_t
store_col_int(const struct store_cols *c, int i)
{
	return c->ops->col_int(c, i);
}

json_t *
store_row(struct store *st, struct herr *err, const char *sql, const char *fmt, ...)
{
	json_t *rows = NULL, *row = NULL;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = store_vq(st, &rows, NULL, err, sql, fmt, ap);
	va_end(ap);
	if (rc == 0 && json_array_size(rows) > 0)
		row = json_incref(json_array_get(rows, 0));
	json_decref(rows);
	return row;
}

static uint64_t store_gen;

uint64_t
store_generation(void)
{
	return __atomic_load_n(&store_gen, __ATOMIC_ACQUIRE);
}

void
store_generation_bump(void)
{
	__atomic_add_fetch(&store_gen, 1, __ATOMIC_RELEASE);
}

char *
store_meta_get(struct store *st, const char *key)
{
	struct herr err = HERR_INIT;
	json_t *row = store_row(st, &err, "SELECT value FROM meta WHERE key = ?", "[s]", key);
	char *v = NULL;

	if (row && json_string_value(json_object_get(row, "value")))
		v = xstrdup(json_string_value(json_object_get(row, "value")));
	json_decref(row);
	return v;
}

int
store_meta_set(struct store *st, const char *key, const char *value, struct herr *err)
{
	int64_t n = 0;
	int rc = store_q(st, NULL, &n, err, "UPDATE meta SET value = ? WHERE key = ?", "[ss]", value, key);
	if (rc == 0 && n == 0)
		rc = store_q(st, NULL, NULL, err, "INSERT INTO meta (key, value) VALUES (?, ?)",
			     "[ss]", key, value);
	return rc;
}

char *
store_meta_init(struct store *st, const char *key, const char *value, struct herr *err)
{
	char *v;

	if (store_q(st, NULL, NULL, err,
		    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
		    "[ss]", key, value) < 0)
		return NULL;
	if ((v = store_meta_get(st, key)) == NULL)
		herr_set(err, HERR_STORE, "the store's meta row '%s' is missing after it was set",
			 key);
	return v;
}

void
store_lock_stats(struct store *st, struct store_lock_stats *out, unsigned poll_ms)
{
	out->waits = out->woken = 0;
	if (st->ops->lock_stats)
		st->ops->lock_stats(st, out, poll_ms);
}
