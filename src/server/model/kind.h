/* model/kind.h - the declarative resource kinds (account, network, lb,
 * script, template, monitor, cluster, group, policy, receiver,
 * remote_write): each is a table of
 * fields plus one cross-field check, and that one description drives
 * validation (the API's 400s and the blueprint's FILE:LINE alike),
 * storage, references and blueprints. The engine is model/kind.c; each kind
 * is defined in its own model/kind-<name>.c. A new kind is then one file
 * plus one line in kinds[]. */
#ifndef HERD_MODEL_KIND_H
#define HERD_MODEL_KIND_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"

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
	F_LIST,       /* list (≤ 100 items) of mappings, checked by the kind's check */
	F_STRS,       /* list (≤ 100 items) of strings (each ≤ 1024) */
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

/* A group's size, desired, min and max are at most this. */
#define GROUP_MAX_SIZE 1000

extern const struct kind kind_account, kind_network, kind_lb, kind_script, kind_template,
	kind_monitor, kind_cluster, kind_group, kind_policy, kind_receiver, kind_remote_write;
/* Every declarative kind, in dependency order (what may refer to what). */
extern const struct kind *const kinds[];
const struct kind *kind_find(const char *name_or_plural);

/* --- validation (model/kind.c) --- */
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

#endif
