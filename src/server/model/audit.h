/* model/audit.h - the audit trail: one row per API mutation (and per
 * refused one), saying who did what and how it ended. Written by the API's
 * plumbing after each handler, inside the transaction that holds the
 * handler's change (one commit for both), read by `GET /v1/audit`. */
#ifndef HERD_MODEL_AUDIT_H
#define HERD_MODEL_AUDIT_H

#include <stdint.h>

#include <jansson.h>

#include "herr.h"

struct store;

/* One audit entry. All strings borrowed; detail NULL = "". */
struct audit_entry {
	int64_t ts_ms;
	const char *who, *role, *method, *path, *detail;
	int status;               /* HTTP status answered */
};

/* Records e. 0 or a store error. */
int audit_add(struct store *st, const struct audit_entry *e, struct herr *err);

/* The newest `limit` entries, newest first, as an owned array of
 * {id, ts_ms, who, role, method, path, status, detail}. 0 or a store error. */
int audit_list(struct store *st, int limit, json_t **out, struct herr *err);

/* --- retention --- */

/* Deletes up to max_rows entries older than before_ms (ts_ms, wall),
 * oldest first, up to the first entry at or after before_ms (see
 * activity_prune). *deleted: how many went. 0 or a store error. */
int audit_prune(struct store *st, int64_t before_ms, int max_rows, int64_t *deleted,
		struct herr *err);

#endif
