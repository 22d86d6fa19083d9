/* model/res.h - storage of declarative resources: one row each in
 * `resources` (spec as JSON, a version bumped on each change) and the
 * references between them in `refs`, so deleting something still referred
 * to is refused naming the referrer. */
#ifndef HERD_MODEL_RES_H
#define HERD_MODEL_RES_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "herr.h"
#include "model/kind.h"

struct store;

struct res {
	int64_t id;
	char scope[130];
	char name[128];
	json_t *spec;      /* owned */
	int64_t version;
	int64_t created_ms, updated_ms;
};
void res_release(struct res *r);
/* 0, or HERR_NOTFOUND. */
int res_get(struct store *st, const struct kind *k, const char *scope, const char *name,
	    struct res *out, struct herr *err);
/* Finds by name across scopes: HERR_NOTFOUND, or HERR_CONFLICT if ambiguous. */
int res_find(struct store *st, const struct kind *k, const char *name, struct res *out,
	     struct herr *err);
/* A snapshot for caches of what is derived from resources (the agents'
 * configuration, a cluster's quotas): take it before reading, keep it
 * with the result; the result is current while res_gen_current() says so.
 * It stops being current at every res_put / res_delete (any kind), and a
 * snapshot taken while such a write is not yet committed is never current
 * (it may have read the old rows): see res.c. */
struct res_gen {
	uint64_t res;      /* res_put / res_delete calls finished */
	uint64_t store;    /* store_generation() */
};

void res_gen_take(struct res_gen *g);
bool res_gen_current(const struct res_gen *g);

/* Creates or updates (spec borrowed) and rewrites its refs; in the caller's
 * transaction. *created tells which. Returns 0 or an error; a missing
 * reference is HERR_INVALID naming path's field. */
int res_put(struct store *st, const struct kind *k, const char *scope, const char *name,
	    json_t *spec, const char *path, bool *created, struct herr *err);
/* Deletes; HERR_CONFLICT naming the referrer if anything refers to it. */
int res_delete(struct store *st, const struct kind *k, const char *scope, const char *name,
	       struct herr *err);
/* Lists (owned array of API objects) with name > after, at most limit. */
int res_list(struct store *st, const struct kind *k, const char *scope, const char *after,
	     int limit, json_t **out, struct herr *err);
/* The same, printed straight into b (as json_dumps(res_to_json(),
 * JSON_COMPACT | JSON_REAL_PRECISION(15)) prints it, byte for byte) for
 * GETs: no tree is built for a spec stored in jansson's own form. */
struct res_key {
	char scope[130];
	char name[128];
};
/* One resource (scope NULL: found by name in any scope, or SCOPE/NAME, as
 * res_find), without its closing '}' when open (the caller adds fields);
 * *key (optional) gets its scope and name. 0, HERR_NOTFOUND, HERR_CONFLICT
 * (ambiguous), HERR_TOOBIG past b's max, or the store's error. */
int res_write(struct store *st, const struct kind *k, const char *scope, const char *name,
	      bool open, struct buf *b, struct res_key *key, struct herr *err);
/* The items res_list would list, as a JSON array; *count of them, the last
 * one's scope and name in *last (for the caller's "next" cursor). */
int res_list_write(struct store *st, const struct kind *k, const char *scope, const char *after,
		   int limit, struct buf *b, int *count, struct res_key *last, struct herr *err);
/* The API form: spec + name (+ cluster/group) + metadata. Owned. */
json_t *res_to_json(const struct kind *k, const struct res *r);
/* Every resource of kind k (in scope, or in every scope when scope is
 * NULL), ordered by scope then name, as an owned array of
 * {"scope","name","spec"} with spec parsed. For controllers' passes. */
int res_all(struct store *st, const struct kind *k, const char *scope, json_t **out,
	    struct herr *err);

/* Kind hooks: scripts keep every version; groups with live hosts can't go. */
int script_store_version(struct store *st, const char *name, json_t *spec, struct herr *err);
int group_delete_check(struct store *st, const char *cluster, const char *name, struct herr *err);

/* --- kind --- */
/* The names of kind k's resources in scope, ordered by name, as an owned
 * array of strings in *out (empty when there are none; NULL on error).
 * For apply's pruning of undeclared children. 0 or the store's error. */
int res_names(struct store *st, const struct kind *k, const char *scope, json_t **out,
	      struct herr *err);

/* --- ctl --- */

/* Deleted networks whose provider side the controller has yet to remove
 * (table networks_gone). The API records one with the delete, in the same
 * transaction; the controller removes the bridge and then the record, so a
 * crash between the two leaves the job to the next pass. */
/* Records network name (spec borrowed: its account and cidr say what to
 * remove) as deleted at now_ms, with its account's spec as it is now (an
 * apply may delete the account in the same transaction). In the caller's
 * transaction. 0 or the store's error. */
int net_gone_add(struct store *st, const char *name, const json_t *spec, int64_t now_ms,
		 struct herr *err);
/* Every pending one, oldest first, as an owned array of
 * {"id","name","account","spec","account_spec","deleted_ms"} with the specs
 * parsed (account_spec null when the account was unknown). 0 or the
 * store's error. */
int net_gone_list(struct store *st, json_t **out, struct herr *err);
/* The provider side of pending removal id is gone: forgets it. 0 or the
 * store's error. */
int net_gone_done(struct store *st, int64_t id, struct herr *err);

#endif
