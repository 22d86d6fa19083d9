/* model/audit.c - the audit trail's storage (model/audit.h). */
#include "model/audit.h"
#include "store/store.h"

int
audit_add(struct store *st, const struct audit_entry *e, struct herr *err)
{
	return store_q(st, NULL, NULL, err,
		       "INSERT INTO audit (ts_ms, who, role, method, path, status, detail)"
		       " VALUES (?, ?, ?, ?, ?, ?, ?)",
		       "[Issssis]", (json_int_t)e->ts_ms, e->who, e->role, e->method, e->path,
		       e->status, e->detail ? e->detail : "");
}

int
audit_list(struct store *st, int limit, json_t **out, struct herr *err)
{
	*out = NULL;
	return store_q(st, out, NULL, err,
		       "SELECT id, ts_ms, who, role, method, path, status, detail FROM audit"
		       " ORDER BY id DESC LIMIT ?",
		       "[i]", limit);
}

/* --- retention --- */

int
audit_prune(struct store *st, int64_t before_ms, int max_rows, int64_t *deleted,
	    struct herr *err)
{
	*deleted = 0;
	/* below the first entry young enough to stay: see activity_prune */
	return store_q(st, NULL, deleted, err,
		       "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE id < COALESCE("
		       "(SELECT id FROM audit WHERE ts_ms >= ? ORDER BY id LIMIT 1),"
		       " 9223372036854775807) AND ts_ms < ? ORDER BY id LIMIT ?)",
		       "[IIi]", (json_int_t)before_ms, (json_int_t)before_ms, max_rows);
}
