/* model/host.c - a host's lifecycle and the one writer of hosts.state
 * (model/host.h). Each writer is a single UPDATE whose WHERE names the
 * states the host may leave, so the guard and the write are one statement:
 * no reader can slip between them, whatever transaction the caller holds. */
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
