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
