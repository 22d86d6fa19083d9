/* model/host.c - a host's lifecycle and the one writer of hosts.state
 * (model/host.h). Each writer is a single UPDATE whose WHERE names the
 * states the host may leave, so the guard and the write are one statement:
 * no reader can slip between them, whatever transaction the caller holds. */
#include <stdio.h>
#include <string.h>

#include "model/host.h"
#include "store/store.h"

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
	return store_q(st, NULL, changed, err,
		       "UPDATE hosts SET state = ?, reason = ?, updated_ms = ?,"
		       " ready_ms = CASE WHEN ? = 'ready' AND ready_ms = 0 THEN ? ELSE ready_ms END,"
		       " heartbeat_ms = CASE WHEN ? = 'ready' THEN ? ELSE heartbeat_ms END,"
		       " terminated_ms = CASE WHEN ? = 'terminated' THEN ? ELSE terminated_ms END"
		       " WHERE id = ? AND state = ?",
		       "[ssIsIsIsIss]", t, reason ? reason : "", (json_int_t)now_ms, t,
		       (json_int_t)now_ms, t, (json_int_t)now_ms, t, (json_int_t)now_ms, id,
		       hstate_name(from));
}

int
host_mark_terminating(struct store *st, const char *id, const char *reason,
		      int64_t lb_drain_since_ms, int64_t now_ms, int64_t *changed, struct herr *err)
{
	return store_q(st, NULL, changed, err,
		       "UPDATE hosts SET state = 'terminating', reason = COALESCE(?, reason),"
		       " lb_drain_since_ms = CASE WHEN ? > 0 THEN ? ELSE lb_drain_since_ms END,"
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
	out->heartbeat_ms = get_int(row, "heartbeat_ms");
	out->terminated_ms = get_int(row, "terminated_ms");
	out->drain_run_id = get_int(row, "drain_run_id");
	out->drain_deadline_ms = get_int(row, "drain_deadline_ms");
	out->lb_drain_since_ms = get_int(row, "lb_drain_since_ms");
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
	/* every condition is a parameter: one statement, nothing pasted */
	rc = store_q(st, &rows, NULL, err,
		     "SELECT " HOST_COLUMNS " FROM hosts WHERE (? IS NULL OR cluster = ?)"
		     " AND (? IS NULL OR grp = ?) AND (? IS NULL OR network = ?)"
		     " AND (? IS NULL OR state = ?) AND (? = 0 OR state <> 'terminated')"
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
		       " updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'launching', ?, ?, ?, ?, ?, ?, ?)",
		       "[ssssIssssssIsII]", h->id, h->name, h->cluster, h->grp, (json_int_t)h->seq,
		       h->template_, h->account, h->network, h->private_ip, h->client_token,
		       join_hash, (json_int_t)join_expires_ms, "{}", (json_int_t)now_ms,
		       (json_int_t)now_ms);
}

int
host_lb_drain_begin(struct store *st, const char *id, int64_t now_ms, struct herr *err)
{
	return store_q(st, NULL, NULL, err,
		       "UPDATE hosts SET lb_drain_since_ms = ? WHERE id = ? AND lb_drain_since_ms = 0",
		       "[Is]", (json_int_t)now_ms, id);
}
