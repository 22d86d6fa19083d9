/* model/lease.c - the leases and servers tables (lease.h): compare-and-set
 * takeover and renewal of the controller lease, the fence statement every
 * controller transaction starts with, and the servers seen. */
#include <stdio.h>
#include <string.h>

#include "model/lease.h"
#include "store/store.h"

int
lease_read(struct store *st, const char *name, struct lease_row *out, struct herr *err)
{
	json_t *row;

	memset(out, 0, sizeof(*out));
	row = store_row(st, err,
			"SELECT holder, epoch, expires_ms, renewed_ms FROM leases WHERE name = ?",
			"[s]", name);
	if (row == NULL)
		return err->code;
	out->exists = true;
	snprintf(out->holder, sizeof(out->holder), "%s",
		 json_string_value(json_object_get(row, "holder")) ?: "");
	out->epoch = json_integer_value(json_object_get(row, "epoch"));
	out->expires_ms = json_integer_value(json_object_get(row, "expires_ms"));
	out->renewed_ms = json_integer_value(json_object_get(row, "renewed_ms"));
	json_decref(row);
	return 0;
}

int
lease_acquire(struct store *st, const char *name, const char *me, int64_t now_ms,
	      int64_t ttl_ms, bool force, int64_t *epoch, struct herr *err)
{
	struct lease_row l;
	int64_t n = 0;
	int rc;

	if ((rc = store_begin(st, err)) < 0)
		return rc;
	if ((rc = lease_read(st, name, &l, err)) < 0)
		goto out_rollback;
	if (!l.exists) {
		/* a racing first insert makes this a constraint error: HERR_CONFLICT */
		rc = store_q(st, NULL, NULL, err,
			     "INSERT INTO leases (name, holder, epoch, expires_ms, renewed_ms)"
			     " VALUES (?, ?, 1, ?, ?)",
			     "[ssII]", name, me, (json_int_t)(now_ms + ttl_ms), (json_int_t)now_ms);
		if (rc < 0)
			goto out_rollback;
		*epoch = 1;
		return store_commit(st, err);
	}
	if (!force && l.expires_ms > now_ms) {
		rc = herr_set(err, HERR_CONFLICT, "lease '%s' is held by server %s until %lld",
			      name, l.holder, (long long)l.expires_ms);
		goto out_rollback;
	}
	/* The epoch read is the compare-and-set; unless forced, the lapse is
	 * checked again in the UPDATE, so a renew committed between the read
	 * and the write (a store that does not lock the read) wins. */
	if (force)
		rc = store_q(st, NULL, &n, err,
			     "UPDATE leases SET holder = ?, epoch = epoch + 1, expires_ms = ?,"
			     " renewed_ms = ? WHERE name = ? AND epoch = ?",
			     "[sIIsI]", me, (json_int_t)(now_ms + ttl_ms), (json_int_t)now_ms,
			     name, (json_int_t)l.epoch);
	else
		rc = store_q(st, NULL, &n, err,
			     "UPDATE leases SET holder = ?, epoch = epoch + 1, expires_ms = ?,"
			     " renewed_ms = ? WHERE name = ? AND epoch = ? AND expires_ms <= ?",
			     "[sIIsII]", me, (json_int_t)(now_ms + ttl_ms), (json_int_t)now_ms,
			     name, (json_int_t)l.epoch, (json_int_t)now_ms);
	if (rc < 0)
		goto out_rollback;
	if (n != 1) {
		rc = herr_set(err, HERR_CONFLICT, "lease '%s' was taken meanwhile", name);
		goto out_rollback;
	}
	*epoch = l.epoch + 1;
	return store_commit(st, err);
out_rollback:
	store_rollback(st);
	return rc;
}

int
lease_renew(struct store *st, const char *name, const char *me, int64_t epoch,
	    int64_t now_ms, int64_t ttl_ms, struct herr *err)
{
	int64_t n = 0;
	int rc;

	rc = store_q(st, NULL, &n, err,
		     "UPDATE leases SET expires_ms = ?, renewed_ms = ?"
		     " WHERE name = ? AND holder = ? AND epoch = ?",
		     "[IIssI]", (json_int_t)(now_ms + ttl_ms), (json_int_t)now_ms, name, me,
		     (json_int_t)epoch);
	if (rc < 0)
		return rc;
	if (n != 1)
		return herr_set(err, HERR_FENCED, "lease '%s' is no longer held by this server"
			       " at epoch %lld", name, (long long)epoch);
	return 0;
}

int
lease_release(struct store *st, const char *name, const char *me, int64_t epoch,
	      struct herr *err)
{
	return store_q(st, NULL, NULL, err,
		       "UPDATE leases SET expires_ms = 0 WHERE name = ? AND holder = ? AND epoch = ?",
		       "[ssI]", name, me, (json_int_t)epoch);
}

/* The calling thread's last lease_fence: who it acts as (lease_acting). */
static __thread const struct store *acting_st;
static __thread char acting_id[LEASE_HOLDER_MAX];
static __thread int64_t acting_epoch;

void
lease_fence(struct store *st, const char *name, const char *me, int64_t epoch)
{
	acting_st = epoch > 0 ? st : NULL;
	snprintf(acting_id, sizeof(acting_id), "%s", epoch > 0 ? me : "");
	acting_epoch = epoch > 0 ? epoch : 0;
	/* A no-op write of the lease row: it changes one row only while the
	 * lease is still ours, and (PostgreSQL) locks that row until the
	 * commit, so a takeover waits for a write under way. */
	if (epoch <= 0) {
		store_fence_set(st, NULL, NULL);
		return;
	}
	store_fence_set(st,
			"UPDATE leases SET epoch = epoch WHERE name = ? AND holder = ? AND epoch = ?",
			json_pack("[ssI]", name, me, (json_int_t)epoch));
}

int
server_seen(struct store *st, const char *id, const char *address, const char *version,
	    int64_t started_ms, int64_t now_ms, struct herr *err)
{
	return store_q(st, NULL, NULL, err,
		       "INSERT INTO servers (id, address, version, started_ms, seen_ms)"
		       " VALUES (?, ?, ?, ?, ?)"
		       " ON CONFLICT (id) DO UPDATE SET address = excluded.address,"
		       " seen_ms = excluded.seen_ms",
		       "[sssII]", id, address, version, (json_int_t)started_ms, (json_int_t)now_ms);
}

int
servers_prune(struct store *st, int64_t before_ms, struct herr *err)
{
	return store_q(st, NULL, NULL, err, "DELETE FROM servers WHERE seen_ms < ?", "[I]",
		       (json_int_t)before_ms);
}

int
servers_list(struct store *st, json_t **out, struct herr *err)
{
	return store_q(st, out, NULL, err,
		       "SELECT id, address, version, started_ms, seen_ms FROM servers"
		       " ORDER BY started_ms DESC, id LIMIT 1000",
		       NULL);
}

bool
lease_acting(const struct store *st, char *id, size_t n, int64_t *epoch)
{
	if (st == NULL || acting_st != st) {
		if (n > 0)
			id[0] = '\0';
		*epoch = 0;
		return false;
	}
	if (n > 0)
		snprintf(id, n, "%s", acting_id);
	*epoch = acting_epoch;
	return true;
}
