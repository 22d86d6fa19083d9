/* model/host.c - a host's lifecycle and the one writer of hosts.state
 * (model/host.h). Each writer is a single UPDATE whose WHERE names the
 * states the host may leave, so the guard and the write are one statement:
 * no reader can slip between them, whatever transaction the caller holds. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jsonw.h"
#include "log.h"
#include "model/host.h"
#include "model/token.h"
#include "store/store.h"
#include "xalloc.h"

/* heartbeats in memory (at the end) */
static int hb_note(const char *id, int64_t ms);
static int64_t hb_newest(const char *id, int64_t stored_ms);
static void hb_flush_due(struct store *st, int64_t now_ms);

static const char *const hstate_names[HS__COUNT] = {
	"launching", "booting", "initializing", "ready", "unhealthy", "failed", "draining",
	"terminating", "terminated",
};

const char *
hstate_name(enum hstate s)
{
	return s < HS__COUNT ? hstate_names[s] : "unknown";
}

enum hstate
hstate_parse(const char *s)
{
	for (int i = 0; i < HS__COUNT; i++)
		if (s && strcmp(s, hstate_names[i]) == 0)
			return (enum hstate)i;
	return HS__COUNT;
}

bool
host_transition_ok(enum hstate from, enum hstate to)
{
	if (from >= HS__COUNT || to >= HS__COUNT || from == to)
		return false;
	if (from == HS_TERMINATED)
		return false;
	if (from == HS_TERMINATING)
		return to == HS_TERMINATED;
	if (from == HS_FAILED)
		return to == HS_TERMINATING || to == HS_TERMINATED;
	return true;
}

int
host_state_write(struct store *st, const char *id, enum hstate from, enum hstate to,
		 const char *reason, int64_t now_ms, int64_t *changed, struct herr *err)
{
	const char *t = hstate_name(to);

	if (!host_transition_ok(from, to))
		return herr_set(err, HERR_CONFLICT, "host is %s: cannot become %s",
				hstate_name(from), t);
	/* a state past booting spends the join token (see host_join) */
	return store_q(st, NULL, changed, err,
		       "UPDATE hosts SET state = ?, reason = ?, updated_ms = ?,"
		       " join_hash = CASE WHEN ? IN ('launching', 'booting') THEN join_hash END,"
		       " ready_ms = CASE WHEN ? = 'ready' AND ready_ms = 0 THEN ? ELSE ready_ms END,"
		       " heartbeat_ms = CASE WHEN ? = 'ready' THEN ? ELSE heartbeat_ms END,"
		       " terminated_ms = CASE WHEN ? = 'terminated' THEN ? ELSE terminated_ms END"
		       " WHERE id = ? AND state = ?",
		       "[ssIssIsIsIss]", t, reason ? reason : "", (json_int_t)now_ms, t, t,
		       (json_int_t)now_ms, t, (json_int_t)now_ms, t, (json_int_t)now_ms, id,
		       hstate_name(from));
}

int
host_mark_terminating(struct store *st, const char *id, const char *reason,
		      int64_t lb_drain_since_ms, int64_t now_ms, int64_t *changed, struct herr *err)
{
	return store_q(st, NULL, changed, err,
		       "UPDATE hosts SET state = 'terminating', reason = COALESCE(?, reason),"
		       " lb_drain_since_ms = CASE WHEN CAST(? AS BIGINT) > 0 THEN ? ELSE lb_drain_since_ms END,"
		       " updated_ms = ? WHERE id = ? AND state NOT IN ('terminating', 'terminated')",
		       "[s?IIIs]", reason, (json_int_t)lb_drain_since_ms,
		       (json_int_t)lb_drain_since_ms, (json_int_t)now_ms, id);
}

int
host_mark_group_failed_terminating(struct store *st, const char *cluster, const char *grp,
				   int64_t now_ms, struct herr *err)
{
	return store_q(st, NULL, NULL, err,
		       "UPDATE hosts SET state = 'terminating', updated_ms = ?"
		       " WHERE cluster = ? AND grp = ? AND state = 'failed'",
		       "[Iss]", (json_int_t)now_ms, cluster, grp);
}

int
host_record_instance(struct store *st, const char *id, const char *instance_id,
		     int64_t launched_ms, int64_t now_ms, struct herr *err)
{
	return store_q(st, NULL, NULL, err,
		       "UPDATE hosts SET state = CASE WHEN state = 'launching' THEN 'booting'"
		       " ELSE state END, instance_id = ?, launched_ms = ?, updated_ms = ?"
		       " WHERE id = ? AND state <> 'terminated'",
		       "[sIIs]", instance_id, (json_int_t)launched_ms, (json_int_t)now_ms, id);
}

int
host_mark_draining(struct store *st, const char *id, int64_t run_id, int64_t deadline_ms,
		   const char *reason, int64_t now_ms, int64_t *changed, struct herr *err)
{
	return store_q(st, NULL, changed, err,
		       "UPDATE hosts SET state = 'draining', drain_run_id = ?, drain_deadline_ms = ?,"
		       " reason = ?, updated_ms = ? WHERE id = ? AND state = 'ready'",
		       "[IIsIs]", (json_int_t)run_id, (json_int_t)deadline_ms, reason ? reason : "",
		       (json_int_t)now_ms, id);
}

int
host_reclaim(struct store *st, const char *id, int64_t now_ms, int64_t *changed,
	     struct herr *err)
{
	return store_q(st, NULL, changed, err,
		       "UPDATE hosts SET state = 'ready', reason = '', drain_run_id = 0,"
		       " drain_deadline_ms = 0, updated_ms = ? WHERE id = ? AND state = 'draining'",
		       "[Is]", (json_int_t)now_ms, id);
}

int
host_mark_terminated(struct store *st, const char *id, int64_t now_ms, struct herr *err)
{
	if (id)
		return store_q(st, NULL, NULL, err,
			       "UPDATE hosts SET state = 'terminated', terminated_ms = ?"
			       " WHERE id = ? AND state <> 'terminated'",
			       "[Is]", (json_int_t)now_ms, id);
	return store_q(st, NULL, NULL, err,
		       "UPDATE hosts SET state = 'terminated', terminated_ms = ?"
		       " WHERE state <> 'terminated'",
		       "[I]", (json_int_t)now_ms);
}

static void
copy_str(char *dst, size_t n, const json_t *row, const char *key)
{
	const char *v = json_string_value(json_object_get(row, key));
	snprintf(dst, n, "%s", v ? v : "");
}

static int64_t
get_int(const json_t *row, const char *key)
{
	return (int64_t)json_integer_value(json_object_get(row, key));
}

int
host_from_row(const json_t *row, struct host *out, struct herr *err)
{
	const char *id = NULL, *state = NULL;

	memset(out, 0, sizeof(*out));
	if (json_unpack((json_t *)row, "{s:s, s?s}", "id", &id, "state", &state) < 0)
		return herr_set(err, HERR_STORE, "hosts row without id");
	snprintf(out->id, sizeof(out->id), "%s", id);
	out->state = state ? hstate_parse(state) : HS_LAUNCHING;
	if (out->state == HS__COUNT)
		return herr_set(err, HERR_STORE, "host %s: unknown state '%s'", id, state);
	copy_str(out->name, sizeof(out->name), row, "name");
	copy_str(out->cluster, sizeof(out->cluster), row, "cluster");
	copy_str(out->grp, sizeof(out->grp), row, "grp");
	copy_str(out->template_, sizeof(out->template_), row, "template");
	copy_str(out->account, sizeof(out->account), row, "account");
	copy_str(out->network, sizeof(out->network), row, "network");
	copy_str(out->reason, sizeof(out->reason), row, "reason");
	copy_str(out->private_ip, sizeof(out->private_ip), row, "private_ip");
	copy_str(out->instance_id, sizeof(out->instance_id), row, "instance_id");
	copy_str(out->client_token, sizeof(out->client_token), row, "client_token");
	out->seq = (int)get_int(row, "seq");
	out->attempt = (int)get_int(row, "attempt");
	out->protected_ = get_int(row, "protected") != 0;
	out->created_ms = get_int(row, "created_ms");
	out->updated_ms = get_int(row, "updated_ms");
	out->launched_ms = get_int(row, "launched_ms");
	out->joined_ms = get_int(row, "joined_ms");
	out->ready_ms = get_int(row, "ready_ms");
	out->heartbeat_ms = hb_newest(out->id, get_int(row, "heartbeat_ms"));
	out->terminated_ms = get_int(row, "terminated_ms");
	out->drain_run_id = get_int(row, "drain_run_id");
	out->drain_deadline_ms = get_int(row, "drain_deadline_ms");
	out->lb_drain_since_ms = get_int(row, "lb_drain_since_ms");
	copy_str(out->template_version, sizeof(out->template_version), row, "template_version");
	if (out->template_version[0] == '\0')
		snprintf(out->template_version, sizeof(out->template_version), "unknown");
	return 0;
}

int
host_get(struct store *st, const char *id, struct host *out, struct herr *err)
{
	json_t *row = store_row(st, err, "SELECT " HOST_COLUMNS " FROM hosts WHERE id = ?", "[s]",
				id ? id : "");
	int rc;

	if (row == NULL)
		return err->code ? -1 : herr_set(err, HERR_NOTFOUND, "no host '%s'", id ? id : "");
	rc = host_from_row(row, out, err);
	json_decref(row);
	return rc;
}

int
host_id_new(struct store *st, host_id_rnd_fn rnd, void *arg, char *out, size_t n,
	    struct herr *err)
{
	for (int i = 0; i < HOST_ID_TRIES; i++) {
		json_t *row;

		rnd(out, n, arg);
		row = store_row(st, err, "SELECT 1 AS taken FROM hosts WHERE id = ?", "[s]", out);
		if (row == NULL && err->code)
			return err->code;
		if (row == NULL)
			return 0;
		json_decref(row);
	}
	return herr_set(err, HERR_CONFLICT, "no free host id in %d draws", HOST_ID_TRIES);
}

int
host_find_live_by_name(struct store *st, const char *cluster, const char *name,
		       struct host *out, struct herr *err)
{
	json_t *rows = NULL;
	int rc;

	if (cluster)
		rc = store_q(st, &rows, NULL, err,
			     "SELECT " HOST_COLUMNS " FROM hosts WHERE cluster = ? AND name = ? AND"
			     " state <> 'terminated' LIMIT 2",
			     "[ss]", cluster, name);
	else
		rc = store_q(st, &rows, NULL, err,
			     "SELECT " HOST_COLUMNS " FROM hosts WHERE name = ? AND"
			     " state <> 'terminated' LIMIT 2",
			     "[s]", name);
	if (rc < 0)
		return err->code ? err->code : rc;
	if (json_array_size(rows) == 0)
		rc = herr_set(err, HERR_NOTFOUND, "no live host '%s'", name);
	else if (json_array_size(rows) > 1)
		rc = herr_set(err, HERR_CONFLICT, "hosts named '%s' in several clusters", name);
	else
		rc = host_from_row(json_array_get(rows, 0), out, err);
	json_decref(rows);
	return rc;
}

/* --- apply --- */

int
host_count_live(struct store *st, const char *cluster, const char *grp, int64_t *n,
		struct herr *err)
{
	json_t *row = store_row(st, err,
				"SELECT COUNT(*) AS n FROM hosts WHERE cluster = ? AND grp = ? AND"
				" state <> 'terminated'",
				"[ss]", cluster, grp);
	json_int_t count = 0;
	int rc;

	*n = 0;
	if (row == NULL)
		return err->code;
	rc = json_unpack(row, "{s:I}", "n", &count);
	json_decref(row);
	if (rc < 0)
		return herr_set(err, HERR_STORE, "cannot count the hosts of group '%s/%s'", cluster,
				grp);
	*n = count;
	return 0;
}

/* --- agent --- */

#include "model/res.h"
#include "util.h"

int
host_find_by_credential(struct store *st, const char *cred_hash, struct host *out,
			struct herr *err)
{
	json_t *row = store_row(st, err,
				"SELECT " HOST_COLUMNS ", cred_hash FROM hosts"
				" WHERE cred_hash = ? AND state <> 'terminated'",
				"[s]", cred_hash);
	const char *h;
	int rc;

	if (row == NULL)
		return err->code ? err->code : herr_set(err, HERR_NOTFOUND, "no such credential");
	h = json_string_value(json_object_get(row, "cred_hash"));
	if (h == NULL || !str_ct_equal(h, cred_hash))
		rc = herr_set(err, HERR_NOTFOUND, "no such credential");
	else
		rc = host_from_row(row, out, err);
	json_decref(row);
	return rc;
}

int
host_join(struct store *st, const char *id, const char *join_token, int64_t now_ms,
	  char *cred, size_t credsz, struct host *out, struct herr *err)
{
	char hash[65], credhash[65];
	json_t *row = NULL;
	const char *jh;
	bool rejoin;
	int rc;

	sha256_hex(join_token, strlen(join_token), hash);
	if ((rc = store_begin(st, err)) < 0)
		return rc;
	row = store_row(st, err,
			"SELECT " HOST_COLUMNS ", join_hash, join_expires_ms FROM hosts WHERE id = ?",
			"[s]", id);
	jh = row ? json_string_value(json_object_get(row, "join_hash")) : NULL;
	if (row == NULL || jh == NULL || !str_ct_equal(jh, hash) ||
	    json_integer_value(json_object_get(row, "join_expires_ms")) < now_ms) {
		rc = herr_set(err, HERR_AUTH, "invalid, used or expired join token");
		goto out_rollback;
	}
	if ((rc = host_from_row(row, out, err)) < 0)
		goto out_rollback;
	if (out->state != HS_LAUNCHING && out->state != HS_BOOTING) {
		rc = herr_set(err, HERR_AUTH, "host is %s: it cannot join", hstate_name(out->state));
		goto out_rollback;
	}
	/* The token stays until the host's first state report (host_state_write
	 * clears it): an agent whose join answer was lost joins again, and the
	 * credential it never received is replaced. */
	rejoin = out->joined_ms > 0;
	token_random(cred, credsz, "hc_", 24);
	sha256_hex(cred, strlen(cred), credhash);
	if ((rc = store_q(st, NULL, NULL, err,
			  "UPDATE hosts SET cred_hash = ?, joined_ms = ?,"
			  " heartbeat_ms = ?, updated_ms = ? WHERE id = ?",
			  "[sIIIs]", credhash, (json_int_t)now_ms, (json_int_t)now_ms,
			  (json_int_t)now_ms, id)) < 0 ||
	    (rc = store_commit(st, err)) < 0)
		goto out_rollback;
	json_decref(row);
	if (rejoin) {
		token_invalidate();   /* the replaced credential: out of every cache */
		log_warn("host '%s' (%s) joined again: the answer to its join at %lld ms was lost"
			 " (its credential is replaced)", out->name, id, (long long)out->joined_ms);
	}
	return 0;
out_rollback:
	store_rollback(st);
	json_decref(row);
	return rc;
}

json_t *
host_init_scripts(struct store *st, const char *template_name)
{
	struct herr err = HERR_INIT;
	json_t *init = json_array(), *n;
	struct res t;
	size_t i;

	if (res_get(st, &kind_template, "", template_name ? template_name : "", &t, &err) < 0)
		return init;
	json_array_foreach(json_object_get(t.spec, "init"), i, n) {
		json_t *v = store_row(st, &err,
				      "SELECT name, version, hash, content FROM script_versions"
				      " WHERE name = ? ORDER BY version DESC LIMIT 1",
				      "[s]", json_string_value(n));
		if (v)
			json_array_append_new(init, v);
	}
	res_release(&t);
	return init;
}

int
host_init_result_put(struct store *st, const char *host_id, const struct init_result *r,
		     struct herr *err)
{
	int rc;

	if ((rc = store_begin(st, err)) < 0)
		return rc;
	if ((rc = store_q(st, NULL, NULL, err,
			  "DELETE FROM init_results WHERE host_id = ? AND idx = ?", "[sI]", host_id,
			  (json_int_t)r->idx)) < 0 ||
	    (rc = store_q(st, NULL, NULL, err,
			  "INSERT INTO init_results (host_id, idx, script, version, exit_code, signal,"
			  " timed_out, stdout, stderr, stdout_truncated, stderr_truncated, started_ms,"
			  " ended_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			  "[sIsIIIIssIIII]", host_id, (json_int_t)r->idx, r->script,
			  (json_int_t)r->version, (json_int_t)r->exit_code, (json_int_t)r->signal,
			  (json_int_t)r->timed_out, r->out ? r->out : "", r->errout ? r->errout : "",
			  (json_int_t)r->stdout_truncated, (json_int_t)r->stderr_truncated,
			  (json_int_t)r->started_ms, (json_int_t)r->ended_ms)) < 0 ||
	    (rc = store_commit(st, err)) < 0) {
		store_rollback(st);
		return rc;
	}
	return 0;
}

int
host_heartbeat(struct store *st, const char *id, int64_t now_ms, enum hstate *state,
	       struct herr *err)
{
	json_t *row;
	int rc;

	if (state)
		*state = HS__COUNT;
	if (hb_note(id, now_ms) < 0 &&
	    (rc = store_q(st, NULL, NULL, err, "UPDATE hosts SET heartbeat_ms = ? WHERE id = ?",
			  "[Is]", (json_int_t)now_ms, id)) < 0)
		return rc;   /* the table is full: written through, as before */
	hb_flush_due(st, now_ms);
	row = store_row(st, err, "SELECT state FROM hosts WHERE id = ?", "[s]", id);
	if (row && state)
		*state = hstate_parse(json_string_value(json_object_get(row, "state")));
	json_decref(row);
	return 0;
}

/* --- api --- */

/* The columns the API shows of a host (host_to_json()), and callers of
 * host_find() read: the same row as before host_find() moved here. */
#define HOST_API_COLUMNS                                                                   \
	"id, name, cluster, grp, seq, template, account, network, state, reason, private_ip," \
	" instance_id, labels, protected, attempt, created_ms, launched_ms, joined_ms,"      \
	" ready_ms, heartbeat_ms, terminated_ms, template_version"

json_t *
host_find(struct store *st, const char *name, const char *cluster, struct herr *err)
{
	json_t *rows = NULL, *row = NULL;
	const char *slash = strchr(name, '/');
	char cl[64];

	if (slash && cluster == NULL) {
		snprintf(cl, sizeof(cl), "%.*s", (int)(slash - name), name);
		cluster = cl;
		name = slash + 1;
	}
	if (store_q(st, &rows, NULL, err,
		    "SELECT " HOST_API_COLUMNS " FROM hosts WHERE (name = ? OR id = ?)"
		    " AND (? = '' OR cluster = ?) ORDER BY state = 'terminated', created_ms DESC LIMIT 3",
		    "[ssss]", name, name, cluster ? cluster : "", cluster ? cluster : "") < 0)
		return NULL;
	if (json_array_size(rows) == 0) {
		herr_set(err, HERR_NOTFOUND, "no host named '%s'", name);
	} else {
		struct host a, b;
		if (host_from_row(json_array_get(rows, 0), &a, err) < 0)
			goto out;
		if (json_array_size(rows) > 1 && host_from_row(json_array_get(rows, 1), &b, err) < 0)
			goto out;
		if (json_array_size(rows) > 1 && b.state != HS_TERMINATED &&
		    strcmp(a.cluster, b.cluster) != 0)
			herr_set(err, HERR_CONFLICT,
				 "host name '%s' is in several clusters: give it as CLUSTER/%s", name,
				 name);
		else
			row = json_incref(json_array_get(rows, 0));
	}
out:
	json_decref(rows);
	return row;
}

static void
set_time(json_t *o, const char *key, int64_t ms)
{
	char ts[40];

	json_object_set_new(o, key, ms > 0 ? json_string(fmt_time(ms, ts, sizeof(ts))) : json_null());
}

json_t *
host_to_json(json_t *row)
{
	struct herr err = HERR_INIT;
	struct host h;
	json_t *o = json_object(), *labels;

	if (host_from_row(row, &h, &err) < 0)
		return o;
	json_object_set_new(o, "id", json_string(h.id));
	json_object_set_new(o, "name", json_string(h.name));
	json_object_set_new(o, "cluster", json_string(h.cluster));
	json_object_set_new(o, "state", json_string(hstate_name(h.state)));
	json_object_set_new(o, "reason", json_string(h.reason));
	json_object_set_new(o, "private_ip", h.private_ip[0] ? json_string(h.private_ip) : json_null());
	json_object_set_new(o, "template", json_string(h.template_));
	json_object_set_new(o, "template_version", json_string(h.template_version));
	json_object_set_new(o, "account", json_string(h.account));
	json_object_set_new(o, "network", json_string(h.network));
	json_object_set_new(o, "instance_id", json_string(h.instance_id));
	json_object_set_new(o, "group", json_string(h.grp));
	json_object_set_new(o, "protected", json_boolean(h.protected_));
	labels = json_loads(json_string_value(json_object_get(row, "labels")), 0, NULL);
	json_object_set_new(o, "labels", labels ? labels : json_object());
	set_time(o, "created", h.created_ms);
	set_time(o, "launched", h.launched_ms);
	set_time(o, "joined", h.joined_ms);
	set_time(o, "ready", h.ready_ms);
	set_time(o, "heartbeat", h.heartbeat_ms);
	set_time(o, "terminated", h.terminated_ms);
	json_object_set_new(o, "created_ms", json_integer(h.created_ms));
	json_object_set_new(o, "launch_ms", h.launched_ms && h.created_ms ?
			    json_integer(h.launched_ms - h.created_ms) : json_null());
	json_object_set_new(o, "ready_after_ms", h.ready_ms && h.created_ms ?
			    json_integer(h.ready_ms - h.created_ms) : json_null());
	return o;
}

int
host_list_json(struct store *st, const char *cluster, const char *grp, bool all, json_t **out,
	  struct herr *err)
{
	const char *cl = cluster ? cluster : "", *g = grp ? grp : "";

	*out = NULL;
	return store_q(st, out, NULL, err,
		       "SELECT " HOST_API_COLUMNS " FROM hosts WHERE (? = '' OR cluster = ?)"
		       " AND (? = '' OR grp = ?) AND (? <> 0 OR state <> 'terminated')"
		       " ORDER BY cluster, grp, seq LIMIT 5000",
		       "[ssssi]", cl, cl, g, g, all ? 1 : 0);
}

/* The host list's cursor: the sort key of a page's last row (cluster, grp,
 * seq, id joined by 0x1f), hex-encoded so that it travels in a query string
 * as it is and reads as opaque. */
#define CURSOR_SEP '\x1f'

static const char *
get_str(const json_t *row, const char *key)
{
	const char *v = json_string_value(json_object_get(row, key));
	return v ? v : "";
}

static bool
cursor_encode_keys(const char *cl, const char *g, int64_t seq, const char *id,
		   char out[HOST_CURSOR_MAX])
{
	char raw[HOST_CURSOR_MAX / 2];
	static const char hex[] = "0123456789abcdef";
	int n = snprintf(raw, sizeof(raw), "%s%c%s%c%lld%c%s", cl, CURSOR_SEP, g, CURSOR_SEP,
			 (long long)seq, CURSOR_SEP, id);

	if (n < 0 || (size_t)n >= sizeof(raw))
		return false;
	for (int i = 0; i < n; i++) {
		out[2 * i] = hex[(unsigned char)raw[i] >> 4];
		out[2 * i + 1] = hex[(unsigned char)raw[i] & 15];
	}
	out[2 * n] = '\0';
	return true;
}

static bool
cursor_encode(const json_t *row, char out[HOST_CURSOR_MAX])
{
	return cursor_encode_keys(get_str(row, "cluster"), get_str(row, "grp"),
				  get_int(row, "seq"), get_str(row, "id"), out);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Splits cursor s into raw (NUL-separated in place) and its four keys,
 * each UTF-8. */
static bool
cursor_decode(const char *s, char raw[HOST_CURSOR_MAX / 2], const char *key[4], long long *seq)
{
	size_t n = strlen(s), k = 0;
	char *end;

	if (n == 0 || n % 2 || n / 2 >= HOST_CURSOR_MAX / 2)
		return false;
	key[k++] = raw;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return false;
		raw[i] = (char)(hi << 4 | lo);
		if (raw[i] == CURSOR_SEP) {
			if (k == 4)
				return false;
			raw[i] = '\0';
			key[k++] = raw + i + 1;
		}
	}
	raw[n / 2] = '\0';
	if (k != 4 || *key[2] < '0' || *key[2] > '9')
		return false;
	for (k = 0; k < 4; k++)
		if (!jsonw_utf8_valid(key[k], strlen(key[k])))
			return false;   /* no key of a row's is (ckey_set) */
	*seq = strtoll(key[2], &end, 10);
	return *end == '\0' && *key[3] != '\0';
}

/* The conditions every page shares (the count uses them too), in the form
 * that fits any query: host_page_json's, the reference host_page_write()'s
 * queries are checked against (tests/unit/test-host-list.c). */
#define HOST_PAGE_WHERE                                                        \
	" WHERE (? = '' OR cluster = ?) AND (? = '' OR grp = ?)"               \
	" AND (? <> 0 OR state <> 'terminated') AND (? = '' OR state = ?)"
/* The rows after the cursor (its flag, then cluster, grp, seq and id). */
#define HOST_PAGE_AFTER                                                        \
	" AND (? = 0 OR cluster > ? OR (cluster = ? AND (grp > ? OR (grp = ? AND"   \
	" (seq > ? OR (seq = ? AND id > ?))))))"

struct host_page_shape
host_page_decide(const struct host_page *q, const char *const key[4])
{
	struct host_page_shape s = {
		.cluster = q->cluster && *q->cluster, .grp = q->grp && *q->grp,
		.state = q->state && *q->state, .live = !q->all,
	};

	if (q->after == NULL)
		s.after = 0;
	else if (s.cluster && strcmp(key[0], q->cluster) == 0)
		s.after = s.grp && strcmp(key[1], q->grp) == 0 ? 2 : 3;
	else
		s.after = 4;
	return s;
}

/* sql (n bytes) with the condition c appended, WHERE before the first. */
static void
sql_cond(char *sql, size_t n, bool *first, const char *c)
{
	size_t len = strlen(sql);
	int w = snprintf(sql + len, n - len, "%s%s", *first ? " WHERE " : " AND ", c);

	BUG_ON(w < 0 || (size_t)w >= n - len);   /* fixed fragments: the buffer fits them */
	*first = false;
}

int
host_page_sql(const struct host_page *q, bool count, char *sql, size_t n, json_t **params,
	      struct herr *err)
{
	static const char *const after_sql[] = {
		[2] = "(seq, id) > (?, ?)",
		[3] = "(grp, seq, id) > (?, ?, ?)",
		[4] = "(cluster, grp, seq, id) > (?, ?, ?, ?)",
	};
	const char *key[4] = { "", "", "", "" };
	char raw[HOST_CURSOR_MAX / 2];
	long long seq = -1;
	struct host_page_shape s;
	bool first = true;
	json_t *p;

	*params = NULL;
	if (q->after && !cursor_decode(q->after, raw, key, &seq))
		return herr_field(err, HERR_INVALID, "after", "is not a cursor of this list");
	if (q->cluster && !jsonw_utf8_valid(q->cluster, strlen(q->cluster)))
		return herr_field(err, HERR_INVALID, "cluster", "is not UTF-8");
	if (q->grp && !jsonw_utf8_valid(q->grp, strlen(q->grp)))
		return herr_field(err, HERR_INVALID, "group", "is not UTF-8");
	if (q->state && !jsonw_utf8_valid(q->state, strlen(q->state)))
		return herr_field(err, HERR_INVALID, "state", "is not UTF-8");
	s = host_page_decide(q, key);
	p = json_array();
	snprintf(sql, n, "%s", count ? "SELECT COUNT(*) AS n FROM hosts"
				     : "SELECT " HOST_API_COLUMNS " FROM hosts");
	if (s.cluster) {
		sql_cond(sql, n, &first, "cluster = ?");
		json_array_append_new(p, json_string(q->cluster));
	}
	if (s.grp) {
		/* in a page, an equality on grp the index cannot seek on with
		 * the rest (no cluster before it, a cursor of another group
		 * after it) would make grp a constant of the ORDER BY and
		 * SQLite sort the rows: as an expression it keeps the index's
		 * order (the count has no order: a plain one is cheaper) */
		sql_cond(sql, n, &first,
			 count || (s.cluster && (s.after == 0 || s.after == 2)) ? "grp = ?"
									       : "(grp || '') = ?");
		json_array_append_new(p, json_string(q->grp));
	}
	if (s.live)
		sql_cond(sql, n, &first, "state <> 'terminated'");
	if (s.state) {
		sql_cond(sql, n, &first, "state = ?");
		json_array_append_new(p, json_string(q->state));
	}
	if (!count && s.after) {
		sql_cond(sql, n, &first, after_sql[s.after]);
		if (s.after >= 4)
			json_array_append_new(p, json_string(key[0]));
		if (s.after >= 3)
			json_array_append_new(p, json_string(key[1]));
		json_array_append_new(p, json_integer(seq));
		json_array_append_new(p, json_string(key[3]));
	}
	if (!count) {
		size_t len = strlen(sql);
		int w = snprintf(sql + len, n - len, " ORDER BY cluster, grp, seq, id LIMIT ?");

		BUG_ON(w < 0 || (size_t)w >= n - len);
		/* one row more than the page says whether there is a next one */
		json_array_append_new(p, json_integer(q->limit + 1));
	}
	*params = p;
	return 0;
}

int
host_page_json(struct store *st, const struct host_page *q, json_t **out,
	       char next[HOST_CURSOR_MAX], int64_t *total, struct herr *err)
{
	const char *cl = q->cluster ? q->cluster : "", *g = q->grp ? q->grp : "";
	const char *sta = q->state ? q->state : "";
	const char *key[4] = { "", "", "", "" };
	char raw[HOST_CURSOR_MAX / 2];
	long long seq = -1;
	json_t *rows = NULL, *cnt = NULL;
	size_t n;
	int rc;

	*out = NULL;
	next[0] = '\0';
	*total = 0;
	BUG_ON(q->limit < 1 || q->limit > HOST_PAGE_MAX);
	if (q->after && !cursor_decode(q->after, raw, key, &seq))
		return herr_field(err, HERR_INVALID, "after", "is not a cursor of this list");
	/* one row more than the page says whether there is a next one */
	if ((rc = store_q(st, &rows, NULL, err,
			  "SELECT " HOST_API_COLUMNS " FROM hosts" HOST_PAGE_WHERE HOST_PAGE_AFTER
			  " ORDER BY cluster, grp, seq, id LIMIT ?",
			  "[ssssississssIIsi]", cl, cl, g, g, q->all ? 1 : 0, sta, sta,
			  q->after ? 1 : 0, key[0], key[0], key[1], key[1], (json_int_t)seq,
			  (json_int_t)seq, key[3], q->limit + 1)) < 0)
		return rc;
	if ((cnt = store_row(st, err, "SELECT COUNT(*) AS n FROM hosts" HOST_PAGE_WHERE,
			     "[ssssiss]", cl, cl, g, g, q->all ? 1 : 0, sta, sta)) == NULL &&
	    err->code) {
		json_decref(rows);
		return err->code;
	}
	*total = cnt ? get_int(cnt, "n") : 0;
	json_decref(cnt);
	n = json_array_size(rows);
	if (n > (size_t)q->limit) {
		json_array_remove(rows, n - 1);
		if (!cursor_encode(json_array_get(rows, n - 2), next)) {
			json_decref(rows);
			return herr_set(err, HERR_STORE, "host list cursor does not fit");
		}
	}
	*out = rows;
	return 0;
}

/* --- the host list written from its rows (host_page_write) ---
 *
 * Each item is printed from the columns of HOST_API_COLUMNS in hand, as
 * host_to_json() prints the same row after host_from_row() copied it into
 * a struct host: that copy's rules are kept, so the bytes are the same for
 * any stored value: a text column reads as "" when the store holds no
 * UTF-8 (the store's row has no such key), up to its first NUL, cut to its
 * struct host field; a cut that splits a character leaves the key out
 * (json_string() refuses it); an unknown state prints {}. */

/* An object being written: the comma goes before every key but the first. */
struct obj {
	struct buf *b;
	bool first;
};

/* Appends key, the text ,"name": that KEY() makes, in one piece (without
 * its comma for the first key): one buffer append a key, not four. */
static int
obj_key(struct obj *o, const char *key, size_t klen)
{
	int rc = o->first ? jsonw_raw(o->b, key + 1, klen - 1) : jsonw_raw(o->b, key, klen);

	if (rc < 0)
		return rc;
	o->first = false;
	return 0;
}

/* The key named k as obj_key() takes it: ,"k": and its length. */
#define KEY(k) ",\"" k "\":", sizeof(",\"" k "\":") - 1

/* What copy_str() leaves of column text s (n bytes) in a field of size
 * bytes: *len of s's bytes, and whether the store read it at all (UTF-8). */
static const char *
field_of(const char *s, size_t n, size_t size, size_t *len)
{
	size_t cut = strnlen(s, n < size - 1 ? n : size - 1);

	if (cut < n && !jsonw_utf8_valid(s, n))
		return *len = 0, "";   /* cut here: check what was not printed */
	*len = cut;
	return s;
}

/* Appends "key":"text" for column text s cut to a field of size bytes;
 * null_empty: null when the field is empty (private_ip). */
static int
put_field(struct obj *o, const char *key, size_t klen, const char *s, size_t n, size_t size,
	  bool null_empty)
{
	size_t mark = o->b->len, len;
	bool first = o->first;
	int rc;

	s = field_of(s, n, size, &len);
	if ((rc = obj_key(o, key, klen)) < 0)
		return rc;
	if (null_empty && len == 0)
		return jsonw_raw(o->b, "null", 4);
	if ((rc = jsonw_str(o->b, s, len)) != -EINVAL)
		return rc;
	o->b->len = mark;   /* not UTF-8: "" if the whole text is not, else the cut split it */
	o->b->p[mark] = '\0';
	o->first = first;
	if (!jsonw_utf8_valid(s, n))
		return put_field(o, key, klen, "", 0, size, null_empty);
	return 0;
}

#define HFIELD_TV sizeof(((struct host *)0)->template_version)

/* Appends "key":"2026-..." or "key":null (set_time()). */
static int
put_time(struct obj *o, const char *key, size_t klen, int64_t ms)
{
	char ts[40];
	int rc;

	if ((rc = obj_key(o, key, klen)) < 0)
		return rc;
	if (ms <= 0)
		return jsonw_raw(o->b, "null", 4);
	fmt_time(ms, ts, sizeof(ts));
	return jsonw_str(o->b, ts, strlen(ts));
}

/* Appends "key":N, or null when !set. */
static int
put_int(struct obj *o, const char *key, size_t klen, bool set, int64_t v)
{
	int rc;

	if ((rc = obj_key(o, key, klen)) < 0)
		return rc;
	return set ? jsonw_int(o->b, v) : jsonw_raw(o->b, "null", 4);
}

/* Appends "template_version" as host_from_row() reads it: "unknown" when
 * the column is empty. */
static int
put_tversion(struct obj *o, const char *s, size_t n)
{
	size_t len;

	field_of(s, n, HFIELD_TV, &len);
	if (len == 0)
		return put_field(o, KEY("template_version"), "unknown", 7, HFIELD_TV, false);
	return put_field(o, KEY("template_version"), s, n, HFIELD_TV, false);
}

/* Appends the labels column as host_to_json() parses and prints it ({}
 * when it is not JSON). Stored labels are "{}" (the column's default): the
 * rest goes through jansson. */
static int
put_labels(struct obj *o, const char *s, size_t n)
{
	json_t *v;
	char *text;
	int rc;

	if ((rc = obj_key(o, KEY("labels"))) < 0)
		return rc;
	if (n == 2 && memcmp(s, "{}", 2) == 0)
		return jsonw_raw(o->b, "{}", 2);
	v = jsonw_utf8_valid(s, n) ? json_loads(s, 0, NULL) : NULL;
	text = v ? json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
	json_decref(v);
	rc = text ? jsonw_raw(o->b, text, strlen(text)) : jsonw_raw(o->b, "{}", 2);
	free(text);
	return rc;
}

/* The state host_from_row() reads from column text s: launching when the
 * store read none, HS__COUNT when unknown. */
static enum hstate
state_of_col(const char *s, size_t n)
{
	char name[16];
	size_t len = strnlen(s, n);

	if (!jsonw_utf8_valid(s, n))
		return HS_LAUNCHING;
	if (len >= sizeof(name))
		return HS__COUNT;
	memcpy(name, s, len);
	name[len] = '\0';
	return hstate_parse(name);
}

/* The columns of HOST_API_COLUMNS, by position. */
enum {
	HC_ID, HC_NAME, HC_CLUSTER, HC_GRP, HC_SEQ, HC_TEMPLATE, HC_ACCOUNT, HC_NETWORK,
	HC_STATE, HC_REASON, HC_PRIVATE_IP, HC_INSTANCE_ID, HC_LABELS, HC_PROTECTED,
	HC_ATTEMPT, HC_CREATED, HC_LAUNCHED, HC_JOINED, HC_READY, HC_HEARTBEAT, HC_TERMINATED,
	HC_TVERSION,
};

#define HFIELD(f) sizeof(((struct host *)0)->f)

/* Appends "key":text for column col into a struct host field f. */
#define PUT_COL(o, key, col, f, null_empty) \
	put_field(o, KEY(key), txt[col], len[col], HFIELD(f), null_empty)

/* Appends the row in hand as host_to_json() prints it. */
static int
host_row_write(const struct store_cols *c, struct buf *b)
{
	static const int text_cols[] = { HC_ID, HC_NAME, HC_CLUSTER, HC_GRP, HC_TEMPLATE,
					 HC_ACCOUNT, HC_NETWORK, HC_STATE, HC_REASON,
					 HC_PRIVATE_IP, HC_INSTANCE_ID, HC_LABELS, HC_TVERSION };
	const char *txt[HC_TVERSION + 1] = { 0 };
	size_t len[HC_TVERSION + 1] = { 0 }, idlen;
	struct obj o = { b, true };
	char id[HFIELD(id)];
	const char *ids;
	int64_t created, launched, ready;
	enum hstate state;
	int rc;

	for (size_t i = 0; i < sizeof(text_cols) / sizeof(text_cols[0]); i++)
		txt[text_cols[i]] = store_col_text(c, text_cols[i], &len[text_cols[i]]);
	state = state_of_col(txt[HC_STATE], len[HC_STATE]);
	if (!jsonw_utf8_valid(txt[HC_ID], len[HC_ID]) || state == HS__COUNT)
		return jsonw_raw(b, "{}", 2);   /* host_from_row() refuses it */
	ids = field_of(txt[HC_ID], len[HC_ID], sizeof(id), &idlen);
	memcpy(id, ids, idlen);
	id[idlen] = '\0';
	created = store_col_int(c, HC_CREATED);
	launched = store_col_int(c, HC_LAUNCHED);
	ready = store_col_int(c, HC_READY);
	if ((rc = jsonw_raw(b, "{", 1)) < 0 || (rc = PUT_COL(&o, "id", HC_ID, id, false)) < 0 ||
	    (rc = PUT_COL(&o, "name", HC_NAME, name, false)) < 0 ||
	    (rc = PUT_COL(&o, "cluster", HC_CLUSTER, cluster, false)) < 0 ||
	    (rc = obj_key(&o, KEY("state"))) < 0 ||
	    (rc = jsonw_str(b, hstate_name(state), strlen(hstate_name(state)))) < 0 ||
	    (rc = PUT_COL(&o, "reason", HC_REASON, reason, false)) < 0 ||
	    (rc = PUT_COL(&o, "private_ip", HC_PRIVATE_IP, private_ip, true)) < 0 ||
	    (rc = PUT_COL(&o, "template", HC_TEMPLATE, template_, false)) < 0 ||
	    (rc = put_tversion(&o, txt[HC_TVERSION], len[HC_TVERSION])) < 0 ||
	    (rc = PUT_COL(&o, "account", HC_ACCOUNT, account, false)) < 0 ||
	    (rc = PUT_COL(&o, "network", HC_NETWORK, network, false)) < 0 ||
	    (rc = PUT_COL(&o, "instance_id", HC_INSTANCE_ID, instance_id, false)) < 0 ||
	    (rc = PUT_COL(&o, "group", HC_GRP, grp, false)) < 0 ||
	    (rc = obj_key(&o, KEY("protected"))) < 0 ||
	    (rc = store_col_int(c, HC_PROTECTED) ? jsonw_raw(b, "true", 4)
						   : jsonw_raw(b, "false", 5)) < 0 ||
	    (rc = put_labels(&o, txt[HC_LABELS], len[HC_LABELS])) < 0 ||
	    (rc = put_time(&o, KEY("created"), created)) < 0 ||
	    (rc = put_time(&o, KEY("launched"), launched)) < 0 ||
	    (rc = put_time(&o, KEY("joined"), store_col_int(c, HC_JOINED))) < 0 ||
	    (rc = put_time(&o, KEY("ready"), ready)) < 0 ||
	    (rc = put_time(&o, KEY("heartbeat"),
			   hb_newest(id, store_col_int(c, HC_HEARTBEAT)))) < 0 ||
	    (rc = put_time(&o, KEY("terminated"), store_col_int(c, HC_TERMINATED))) < 0 ||
	    (rc = put_int(&o, KEY("created_ms"), true, created)) < 0 ||
	    (rc = put_int(&o, KEY("launch_ms"), launched && created, launched - created)) < 0 ||
	    (rc = put_int(&o, KEY("ready_after_ms"), ready && created, ready - created)) < 0)
		return rc;
	return jsonw_raw(b, "}", 1);
}

/* A cursor key column of the last row written: its text as get_str() reads
 * it (up to a NUL; "" when not UTF-8), kept while it fits a cursor. */
struct ckey {
	char s[HOST_CURSOR_MAX / 2];
	bool long_;   /* does not fit: no cursor can hold it */
};

static void
ckey_set(struct ckey *k, const char *s, size_t n)
{
	size_t len = strnlen(s, n);

	k->long_ = false;
	if (!jsonw_utf8_valid(s, n))
		len = 0;
	else if (len >= sizeof(k->s))
		k->long_ = true, len = 0;
	memcpy(k->s, s, len);
	k->s[len] = '\0';
}

struct page_ctx {
	struct buf *b;
	int limit, count;
	bool more;
	struct ckey cl, g, id;
	int64_t seq;
};

/* One row of host_page_write: the page's rows, then the one past it. */
static int
page_row(const struct store_cols *c, void *arg)
{
	struct page_ctx *x = arg;
	const char *s;
	size_t n;
	int rc;

	if (x->count == x->limit) {
		x->more = true;   /* one row past the page: there is a next one */
		return 0;
	}
	if ((x->count > 0 && (rc = jsonw_raw(x->b, ",", 1)) < 0) ||
	    (rc = host_row_write(c, x->b)) < 0)
		return rc;
	x->count++;
	s = store_col_text(c, HC_CLUSTER, &n);
	ckey_set(&x->cl, s, n);
	s = store_col_text(c, HC_GRP, &n);
	ckey_set(&x->g, s, n);
	s = store_col_text(c, HC_ID, &n);
	ckey_set(&x->id, s, n);
	x->seq = store_col_int(c, HC_SEQ);
	return 0;
}

/* Appends ,"next":CURSOR-or-null,"total":N} after the items. */
static int
page_end(const struct page_ctx *x, int64_t total, struct herr *err)
{
	char next[HOST_CURSOR_MAX];
	int rc;

	next[0] = '\0';
	if (x->more && (x->cl.long_ || x->g.long_ || x->id.long_ ||
			!cursor_encode_keys(x->cl.s, x->g.s, x->seq, x->id.s, next)))
		return herr_set(err, HERR_STORE, "host list cursor does not fit");
	if ((rc = jsonw_raw(x->b, "],\"next\":", 9)) < 0 ||
	    (rc = next[0] ? jsonw_str(x->b, next, strlen(next)) : jsonw_raw(x->b, "null", 4)) < 0 ||
	    (rc = jsonw_raw(x->b, ",\"total\":", 9)) < 0 || (rc = jsonw_int(x->b, total)) < 0 ||
	    (rc = jsonw_raw(x->b, "}", 1)) < 0)
		return herr_set(err, rc, "the host list is too large");
	return 0;
}

int
host_page_write(struct store *st, const struct host_page *q, struct buf *b, struct herr *err)
{
	struct page_ctx x = { .b = b, .limit = q->limit };
	char sql[HOST_PAGE_SQL_MAX], count_sql[HOST_PAGE_SQL_MAX];
	json_t *params = NULL, *count_params = NULL, *cnt = NULL;
	int64_t total;
	int rc;

	BUG_ON(q->limit < 1 || q->limit > HOST_PAGE_MAX);
	if ((rc = host_page_sql(q, false, sql, sizeof(sql), &params, err)) < 0 ||
	    (rc = host_page_sql(q, true, count_sql, sizeof(count_sql), &count_params, err)) < 0) {
		json_decref(params);
		return rc;
	}
	if ((rc = jsonw_raw(b, "{\"items\":[", 10)) < 0) {
		rc = herr_set(err, rc, "the host list is too large");
		goto out;
	}
	/* the page and its count from one snapshot (one read lock, not two) */
	if ((rc = store_read_begin(st, err)) < 0)
		goto out;
	rc = store_each(st, err, page_row, &x, sql, "O", params);
	if (rc == 0)
		cnt = store_row(st, err, count_sql, "O", count_params);
	store_read_end(st);
	if (rc == HERR_TOOBIG)
		rc = herr_set(err, rc, "the host list is too large");
	if (rc < 0)
		goto out;
	if (cnt == NULL && err->code) {
		rc = err->code;
		goto out;
	}
	total = cnt ? get_int(cnt, "n") : 0;
	rc = page_end(&x, total, err);
out:
	json_decref(cnt);
	json_decref(params);
	json_decref(count_params);
	return rc;
}

int
host_init_results(struct store *st, const char *id, json_t **out, struct herr *err)
{
	json_t *rows = NULL, *r;
	size_t i;
	int rc;

	*out = NULL;
	if ((rc = store_q(st, &rows, NULL, err,
			  "SELECT idx, script, version, exit_code, signal, timed_out, stdout, stderr,"
			  " stdout_truncated, stderr_truncated, started_ms, ended_ms FROM init_results"
			  " WHERE host_id = ? ORDER BY idx",
			  "[s]", id)) < 0)
		return rc;
	json_array_foreach(rows, i, r) {
		json_object_set_new(r, "timed_out", json_boolean(get_int(r, "timed_out")));
		json_object_set_new(r, "stdout_truncated", json_boolean(get_int(r, "stdout_truncated")));
		json_object_set_new(r, "stderr_truncated", json_boolean(get_int(r, "stderr_truncated")));
		json_object_set_new(r, "duration_ms",
				    json_integer(get_int(r, "ended_ms") - get_int(r, "started_ms")));
	}
	*out = rows;
	return 0;
}

int
host_set_protected(struct store *st, const char *id, bool on, struct herr *err)
{
	return store_q(st, NULL, NULL, err, "UPDATE hosts SET protected = ? WHERE id = ?", "[is]",
		       on ? 1 : 0, id);
}

#define HOST_META_COLUMNS "id, name, cluster, grp, state, private_ip, labels"

json_t *
host_meta_get(struct store *st, const char *id, const char *cluster, const char *name,
	      struct herr *err)
{
	if (id)
		return store_row(st, err, "SELECT " HOST_META_COLUMNS " FROM hosts WHERE id = ?",
				 "[s]", id);
	return store_row(st, err,
			 "SELECT " HOST_META_COLUMNS " FROM hosts"
			 " WHERE cluster = ? AND name = ? AND state <> 'terminated'",
			 "[ss]", cluster, name);
}

int
host_meta_list(struct store *st, const char *cluster, const char *grp, json_t **out,
	       struct herr *err)
{
	*out = NULL;
	if (grp)
		return store_q(st, out, NULL, err,
			       "SELECT " HOST_META_COLUMNS " FROM hosts"
			       " WHERE cluster = ? AND grp = ? AND state = 'ready' ORDER BY name",
			       "[ss]", cluster, grp);
	return store_q(st, out, NULL, err,
		       "SELECT " HOST_META_COLUMNS " FROM hosts"
		       " WHERE cluster = ? AND state <> 'terminated' ORDER BY name",
		       "[s]", cluster);
}

/* --- controllers --- */

int
host_list(struct store *st, const struct host_query *q, struct host **out, size_t *n,
	  struct herr *err)
{
	const char *state = q->state >= 0 ? hstate_name((enum hstate)q->state) : NULL;
	json_t *rows = NULL, *row;
	size_t i;
	int rc;

	*out = NULL;
	*n = 0;
	/* every condition is a parameter: one statement, nothing pasted (the
	 * CASTs give PostgreSQL a type for a parameter tested for NULL) */
	rc = store_q(st, &rows, NULL, err,
		     "SELECT " HOST_COLUMNS " FROM hosts WHERE (CAST(? AS TEXT) IS NULL OR cluster = ?)"
		     " AND (CAST(? AS TEXT) IS NULL OR grp = ?)"
		     " AND (CAST(? AS TEXT) IS NULL OR network = ?)"
		     " AND (CAST(? AS TEXT) IS NULL OR state = ?) AND (? = 0 OR state <> 'terminated')"
		     " ORDER BY cluster, grp, seq",
		     "[s?s?s?s?s?s?s?s?i]", q->cluster, q->cluster, q->grp, q->grp, q->network,
		     q->network, state, state, q->live ? 1 : 0);
	if (rc < 0)
		return rc;
	/* calloc, not xcalloc: this file's includes are shared (stdlib via jansson) */
	if (json_array_size(rows) > 0 &&
	    (*out = calloc(json_array_size(rows), sizeof(**out))) == NULL) {
		json_decref(rows);
		return herr_set(err, -ENOMEM, "out of memory listing hosts");
	}
	json_array_foreach(rows, i, row) {
		if (host_from_row(row, &(*out)[*n], err) < 0) {
			free(*out);
			*out = NULL;
			*n = 0;
			json_decref(rows);
			return err->code;
		}
		(*n)++;
	}
	json_decref(rows);
	return 0;
}

int
host_next_seq(struct store *st, const char *cluster, const char *grp, int64_t *seq,
	      struct herr *err)
{
	json_t *row = store_row(st, err,
				"SELECT COALESCE(MAX(seq), 0) AS seq FROM hosts WHERE cluster = ? AND grp = ?",
				"[ss]", cluster, grp);

	if (row == NULL && err->code)
		return err->code;
	*seq = row ? json_integer_value(json_object_get(row, "seq")) + 1 : 1;
	json_decref(row);
	return 0;
}

int
host_create(struct store *st, const struct host *h, const char *join_hash,
	    int64_t join_expires_ms, int64_t now_ms, struct herr *err)
{
	return store_q(st, NULL, NULL, err,
		       "INSERT INTO hosts (id, name, cluster, grp, seq, template, account, network, state,"
		       " private_ip, client_token, join_hash, join_expires_ms, labels, created_ms,"
		       " updated_ms, template_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'launching', ?,"
		       " ?, ?, ?, ?, ?, ?, ?)",
		       "[ssssIssssssIsIIs]", h->id, h->name, h->cluster, h->grp, (json_int_t)h->seq,
		       h->template_, h->account, h->network, h->private_ip, h->client_token,
		       join_hash, (json_int_t)join_expires_ms, "{}", (json_int_t)now_ms,
		       (json_int_t)now_ms, h->template_version[0] ? h->template_version : "unknown");
}

int
host_lb_drain_begin(struct store *st, const char *id, int64_t now_ms, struct herr *err)
{
	return store_q(st, NULL, NULL, err,
		       "UPDATE hosts SET lb_drain_since_ms = ? WHERE id = ? AND lb_drain_since_ms = 0",
		       "[Is]", (json_int_t)now_ms, id);
}

/* --- agent binary --- */

int
host_join_token_check(struct store *st, const char *id, const char *join_token,
		      int64_t now_ms, struct herr *err)
{
	char hash[65];
	json_t *row;
	const char *jh, *state;
	enum hstate hs;
	int rc = 0;

	sha256_hex(join_token, strlen(join_token), hash);
	row = store_row(st, err,
			"SELECT state, join_hash, join_expires_ms FROM hosts WHERE id = ?", "[s]", id);
	if (row == NULL && err->code)
		return err->code;
	jh = row ? json_string_value(json_object_get(row, "join_hash")) : NULL;
	state = row ? json_string_value(json_object_get(row, "state")) : NULL;
	hs = hstate_parse(state);
	if (row == NULL || jh == NULL || !str_ct_equal(jh, hash) ||
	    json_integer_value(json_object_get(row, "join_expires_ms")) < now_ms)
		rc = herr_set(err, HERR_AUTH, "invalid, used or expired join token");
	else if (hs != HS_LAUNCHING && hs != HS_BOOTING)
		rc = herr_set(err, HERR_AUTH, "host is %s: it cannot join", hstate_name(hs));
	json_decref(row);
	return rc;
}

/* --- retention --- */

int
host_prune_terminated(struct store *st, int64_t before_ms, int max_rows, int64_t *deleted,
		      struct herr *err)
{
	*deleted = 0;
	return store_q(st, NULL, deleted, err,
		       "DELETE FROM hosts WHERE id IN (SELECT h.id FROM hosts h"
		       " WHERE h.state = 'terminated' AND CASE WHEN h.terminated_ms > 0"
		       " THEN h.terminated_ms ELSE h.updated_ms END < ?"
		       " AND h.seq < (SELECT MAX(m.seq) FROM hosts m WHERE m.cluster = h.cluster"
		       " AND m.grp = h.grp)"
		       " AND NOT EXISTS (SELECT 1 FROM run_hosts rh WHERE rh.host_id = h.id"
		       " AND rh.state IN ('queued', 'running'))"
		       " ORDER BY h.terminated_ms LIMIT ?)",
		       "[Ii]", (json_int_t)before_ms, max_rows);
}

/* --- heartbeats in memory --- */

/* Heartbeats arrive every HERD_HEARTBEAT_S from every host: writing each
 * one would cost an fdatasync per heartbeat (60/s at 300 hosts). The newest
 * not yet written is kept here per host, readers see the newer of it and
 * the stored value (hb_newest, via host_from_row), and they are written in
 * one transaction at most every HB_PERSIST_MS (by whichever heartbeat finds
 * it due) and at shutdown. The table holds only unwritten heartbeats, so it
 * is bounded by the hosts heard within one interval; past HB_MAX a
 * heartbeat is written through as before.
 *
 * On a store several servers share (PostgreSQL) the interval is
 * HB_PERSIST_SHARED_MS: the leader decides health from what is stored for
 * hosts that push to another server, so a heartbeat reaches it within that
 * interval plus one heartbeat, well inside unhealthy_after.
 *
 * After a crash the stored value may be up to HB_PERSIST_MS old. That never
 * causes a replacement: the silence rule counts from the later of the
 * stored heartbeat and heard_since (ctl/decide.c silence_ms), and a new
 * process starts heard_since at its first pass (reconcile_heard_since with
 * no last pass), so every host gets a full unhealthy_after from the restart
 * before a lost heartbeat could count. */

static struct hb_entry {
	char id[64];
	int64_t ms;
} hb_tab[HB_MAX];
static size_t hb_n;
/* An index of hb_tab by id: open addressing, slot + 1 (0 = empty), at most
 * half full. A lookup costs one hash and a probe or two, not a scan of
 * every host heard in the interval: each heartbeat and each host a list
 * reads looks here (at 10,000 hosts a scan was 10,000 strcmp a call). */
#define HB_IDX (2 * HB_MAX)
static uint32_t hb_idx[HB_IDX];
static bool hb_gone[HB_MAX];   /* hb_forget's marks, under hb_lock */
static int64_t hb_flushed_ms;
static pthread_mutex_t hb_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t hb_flushing = PTHREAD_MUTEX_INITIALIZER;

static size_t
hb_hash(const char *id)
{
	return (size_t)(fnv1a_str(FNV1A_INIT, id) & (HB_IDX - 1));
}

/* Indexes slot i of hb_tab. hb_lock held. */
static void
hb_index(size_t i)
{
	size_t p = hb_hash(hb_tab[i].id);

	while (hb_idx[p] != 0)
		p = (p + 1) & (HB_IDX - 1);
	hb_idx[p] = (uint32_t)i + 1;
}

/* The slot of id, or -1. hb_lock held. */
static long
hb_find(const char *id)
{
	for (size_t p = hb_hash(id); hb_idx[p] != 0; p = (p + 1) & (HB_IDX - 1))
		if (strcmp(hb_tab[hb_idx[p] - 1].id, id) == 0)
			return (long)hb_idx[p] - 1;
	return -1;
}

static int
hb_note(const char *id, int64_t ms)
{
	long i;
	int rc = 0;

	if (strlen(id) >= sizeof(hb_tab[0].id))
		return -1;
	pthread_mutex_lock(&hb_lock);
	if (hb_flushed_ms == 0)
		hb_flushed_ms = ms;   /* the first interval starts now */
	i = hb_find(id);
	if (i >= 0) {
		if (ms > hb_tab[i].ms)
			hb_tab[i].ms = ms;
	} else if (hb_n < HB_MAX) {
		snprintf(hb_tab[hb_n].id, sizeof(hb_tab[hb_n].id), "%s", id);
		hb_tab[hb_n].ms = ms;
		hb_index(hb_n++);
	} else {
		rc = -1;
	}
	pthread_mutex_unlock(&hb_lock);
	return rc;
}

static int64_t
hb_newest(const char *id, int64_t stored_ms)
{
	int64_t ms = stored_ms;
	long i;

	pthread_mutex_lock(&hb_lock);
	i = hb_find(id);
	if (i >= 0 && hb_tab[i].ms > ms)
		ms = hb_tab[i].ms;
	pthread_mutex_unlock(&hb_lock);
	return ms;
}

size_t
host_heartbeats_pending(void)
{
	size_t n;

	pthread_mutex_lock(&hb_lock);
	n = hb_n;
	pthread_mutex_unlock(&hb_lock);
	return n;
}

/* Drops the entries written (those not newer than what was written): marked
 * through the index, then the table compacted and indexed again, O(n). */
static void
hb_forget(const struct hb_entry *done, size_t n)
{
	size_t j = 0;

	pthread_mutex_lock(&hb_lock);
	for (size_t k = 0; k < n; k++) {
		long i = hb_find(done[k].id);
		if (i >= 0 && hb_tab[i].ms <= done[k].ms)
			hb_gone[i] = true;
	}
	for (size_t i = 0; i < hb_n; i++) {
		if (hb_gone[i]) {
			hb_gone[i] = false;
			continue;
		}
		hb_tab[j++] = hb_tab[i];
	}
	hb_n = j;
	memset(hb_idx, 0, sizeof(hb_idx));
	for (size_t i = 0; i < hb_n; i++)
		hb_index(i);
	pthread_mutex_unlock(&hb_lock);
}

int
host_heartbeats_flush(struct store *st, struct herr *err)
{
	static struct hb_entry snap[HB_MAX];   /* under hb_flushing */
	size_t n;
	int rc = 0;

	pthread_mutex_lock(&hb_flushing);
	pthread_mutex_lock(&hb_lock);
	n = hb_n;
	memcpy(snap, hb_tab, n * sizeof(snap[0]));
	pthread_mutex_unlock(&hb_lock);
	if (n == 0)
		goto out;
	if ((rc = store_begin(st, err)) < 0)
		goto out;
	for (size_t k = 0; k < n; k++)
		if ((rc = store_q(st, NULL, NULL, err,
				  "UPDATE hosts SET heartbeat_ms = ? WHERE id = ? AND COALESCE(heartbeat_ms, 0) < ?",
				  "[IsI]", (json_int_t)snap[k].ms, snap[k].id,
				  (json_int_t)snap[k].ms)) < 0) {
			store_rollback(st);
			goto out;
		}
	if ((rc = store_commit(st, err)) < 0)
		goto out;
	hb_forget(snap, n);
out:
	pthread_mutex_unlock(&hb_flushing);
	return rc;
}

/* Writes the table if HB_PERSIST_MS passed since the last write; one
 * caller at a time, the others go on (the next heartbeat retries). */
static void
hb_flush_due(struct store *st, int64_t now_ms)
{
	struct herr err = HERR_INIT;
	/* a store several servers share: the leader reads the heartbeats
	 * the others took from the store (HB_PERSIST_SHARED_MS) */
	int64_t every = st->ops->single_process ? HB_PERSIST_MS : HB_PERSIST_SHARED_MS;
	bool due;

	pthread_mutex_lock(&hb_lock);
	due = now_ms - hb_flushed_ms >= every;
	if (due)
		hb_flushed_ms = now_ms;
	pthread_mutex_unlock(&hb_lock);
	if (due && host_heartbeats_flush(st, &err) < 0)
		log_warn("cannot write heartbeats (kept in memory, retried): %s", err.msg);
}
