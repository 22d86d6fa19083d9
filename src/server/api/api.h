/* api.h - what the API's files share: the resource kinds (a declarative
 * description of each kind's fields drives validation, storage, references
 * and blueprints alike), the resource store helpers and the handlers named
 * in routes.def. */
#ifndef HERD_API_H
#define HERD_API_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"
#include "server.h"

struct MHD_Response;

enum ftype {
	F_STR,        /* any string (≤ 1024) */
	F_NAME,       /* DNS label */
	F_SCRIPTNAME, /* script name */
	F_INT,        /* integer in [min,max] */
	F_BOOL,
	F_DURATION,   /* "10s", in [min,max] seconds (0: no bound); stored as given */
	F_NAMES,      /* array of names (each a ref if ref set) */
	F_TEXT,       /* long text (≤ body limit) */
	F_CIDR,       /* IPv4 CIDR */
	F_ADDR,       /* IPv4:port */
	F_EXPR,       /* policy condition */
	F_ADJUST,     /* +1, -2, +20%, =5 */
	F_CRON,       /* 5-field cron */
	F_OBJECT,     /* free-form object (labels, config) */
};

#define FL_REQ     1u   /* required on create */
#define FL_OUT     2u   /* output only: ignored when given (e.g. desired) */

struct field {
	const char *name;
	enum ftype type;
	unsigned flags;
	const char *ref;       /* referenced kind, for F_NAME/F_SCRIPTNAME/F_NAMES */
	long long min, max;    /* F_INT: bounds; F_DURATION: bounds in s, 0 = none */
};

enum scope_kind { SCOPE_NONE, SCOPE_CLUSTER, SCOPE_GROUP };

struct kind;

/* Cross-field checks and defaults for one object of a kind. obj is the
 * object being created/updated (may be changed to fill defaults); old is
 * the stored spec or NULL. path prefixes field names in errors. */
typedef int (*kind_check_fn)(const struct kind *k, json_t *obj, const json_t *old,
			     const char *path, struct herr *err);

struct kind {
	const char *name;          /* "group" */
	const char *plural;        /* "groups": the URL and blueprint key */
	enum scope_kind scope;
	const struct field *fields; /* NULL-terminated by name */
	kind_check_fn check;
};

extern const struct kind kind_account, kind_network, kind_lb, kind_script, kind_template,
	kind_monitor, kind_cluster, kind_group, kind_policy;
/* Every declarative kind, in dependency order (what may refer to what). */
extern const struct kind *const kinds[];
const struct kind *kind_find(const char *name_or_plural);

/* --- validation (api-resource.c) --- */
/* Validates obj against k's fields: types, limits, unknown fields. Does not
 * check references. */
int kind_validate(const struct kind *k, json_t *obj, const json_t *old, const char *path,
		  struct herr *err);
/* Lists (kind, scope, name, field path) references of obj, for checking and
 * for the refs table. Calls fn for each. */
typedef int (*ref_fn)(const struct kind *to, const char *scope, const char *name,
		      const char *path, void *arg, struct herr *err);
int kind_refs(const struct kind *k, const char *scope, const json_t *obj, const char *path,
	      ref_fn fn, void *arg, struct herr *err);

/* --- resource storage (res.c) --- */
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
/* The API form: spec + name (+ cluster/group) + metadata. Owned. */
json_t *res_to_json(const struct kind *k, const struct res *r);

/* Answers rq with the stored object (after a write); -1 if it vanished. */
int lookup_after_put(struct req *rq, const struct kind *k, const char *scope, const char *name);
/* Kind hooks: scripts keep every version; groups with live hosts can't go. */
int script_store_version(struct store *st, const char *name, json_t *spec, struct herr *err);
int group_delete_check(struct store *st, const char *cluster, const char *name, struct herr *err);

/* Hosts (api-host.c): the API form of a hosts row, and a live host by NAME,
 * CLUSTER/NAME or id (owned row, NULL with err set). */
json_t *host_to_json(json_t *row);
json_t *host_find(struct store *st, const char *name, const char *cluster, struct herr *err);
/* Tokens (api-token.c): makes a token, writes its text to out. */
int token_create(struct store *st, const char *name, enum role role, char *out, size_t outsz,
		 struct herr *err);

/* --- API plumbing (api.c) --- */
/* Authenticates rq from its headers (cached) and checks its route's least
 * role. Returns true when the handler may run; false when rq holds the 401
 * or 403 answer (a refused mutation is audited). Needs only the headers, so
 * httpd calls it before reading any body; later calls return true at once. */
bool api_authorize(struct req *rq);
/* Runs rq's route: api_authorize(), the handler, the audit of a mutation. */
void api_handle(struct req *rq);
/* Forgets cached credentials (a token was deleted, a host terminated). */
void auth_invalidate(void);
void api_not_found(struct req *rq);
void api_add_headers(struct req *rq, struct MHD_Response *r);
/* Security headers of every answer, and a console file's caching and
 * encoding headers (api-web.c). */
void web_add_headers(struct req *rq, struct MHD_Response *r);
/* Records an audit entry for rq (who, what, result). */
void api_audit(struct req *rq, const char *detail);
/* Activity log (activity is the user-visible record of decisions). */
int activity_add(struct store *st, const char *cluster, const char *group, const char *host,
		 const char *kind, const char *cause, json_t *inputs, struct herr *err,
		 const char *fmt, ...) __attribute__((format(printf, 9, 10)));

#define ROUTE(m, p, r, f, a) void f(struct req *rq);
#include "routes.def"
#undef ROUTE

#endif
