/* model/kind.c - the kind engine: the table of every declarative kind and
 * the validation their field tables drive (types, limits, unknown fields,
 * required fields; errors name the field), then the kind's own cross-field
 * check, and the discovery of the references an object makes. The kinds
 * themselves are defined one per file, model/kind-<name>.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "expr.h"
#include "model/kind.h"
#include "util.h"
#include "xalloc.h"

/* In dependency order: what may refer to what (see kind.h). */
const struct kind *const kinds[] = {
	&kind_account, &kind_network, &kind_lb, &kind_script, &kind_monitor, &kind_template,
	&kind_cluster, &kind_group, &kind_policy, &kind_receiver, &kind_remote_write, NULL,
};

/* The kind named by its name or plural ("lb", "lbs"; "loadbalancer" too),
 * or NULL. */
const struct kind *
kind_find(const char *s)
{
	for (int i = 0; kinds[i]; i++)
		if (strcmp(kinds[i]->name, s) == 0 || strcmp(kinds[i]->plural, s) == 0)
			return kinds[i];
	if (strcmp(s, "loadbalancer") == 0 || strcmp(s, "load_balancers") == 0)
		return &kind_lb;
	return NULL;
}

static void
path_join(char *out, size_t n, const char *path, const char *field)
{
	if (path && *path)
		snprintf(out, n, "%s.%s", path, field);
	else
		snprintf(out, n, "%s", field);
}

static int
check_value(const struct field *f, json_t *v, const char *fp, struct herr *err)
{
	const char *s = json_string_value(v);
	int64_t ms;

	switch (f->type) {
	case F_STR:
	case F_TEXT:
		if (!json_is_string(v))
			return herr_field(err, HERR_INVALID, fp, "must be a string");
		if (f->type == F_STR && json_string_length(v) > 1024)
			return herr_field(err, HERR_INVALID, fp, "must be at most 1024 characters");
		if (f->type == F_STR && f->max && (long long)json_string_length(v) > f->max)
			return herr_field(err, HERR_INVALID, fp, "must be at most %lld characters", f->max);
		if (strlen(s) != json_string_length(v))
			return herr_field(err, HERR_INVALID, fp, "must not contain NUL characters");
		return 0;
	case F_NAME:
		if (!json_is_string(v) || !name_is_valid(s))
			return herr_field(err, HERR_INVALID, fp,
					  "must be a name of 1-63 characters [a-z0-9-], not starting or ending with '-'");
		return 0;
	case F_SCRIPTNAME:
		if (!json_is_string(v) || !script_name_is_valid(s))
			return herr_field(err, HERR_INVALID, fp,
					  "must be a script name of 1-100 characters [A-Za-z0-9._-]");
		return 0;
	case F_INT:
		if (!json_is_integer(v))
			return herr_field(err, HERR_INVALID, fp, "must be an integer");
		if (json_integer_value(v) < f->min || json_integer_value(v) > f->max)
			return herr_field(err, HERR_INVALID, fp, "must be between %lld and %lld",
					  f->min, f->max);
		return 0;
	case F_BOOL:
		if (!json_is_boolean(v))
			return herr_field(err, HERR_INVALID, fp, "must be true or false");
		return 0;
	case F_DURATION:
		if (!json_is_string(v) || parse_duration_ms(s, &ms) < 0)
			return herr_field(err, HERR_INVALID, fp,
					  "must be a duration like '500ms', '10s', '5m' or '1h'");
		if (f->min && ms < f->min * 1000)
			return herr_field(err, HERR_INVALID, fp, "must be at least %llds", f->min);
		if (f->max && ms > f->max * 1000)
			return herr_field(err, HERR_INVALID, fp, "must be at most %llds", f->max);
		return 0;
	case F_NAMES: {
		struct field one = *f;
		char ip[256];
		size_t i;
		json_t *x;

		if (!json_is_array(v))
			return herr_field(err, HERR_INVALID, fp, "must be a list");
		if (json_array_size(v) > 100)
			return herr_field(err, HERR_INVALID, fp, "must have at most 100 items");
		one.type = (f->ref && strcmp(f->ref, "script") == 0) ? F_SCRIPTNAME : F_NAME;
		json_array_foreach(v, i, x) {
			snprintf(ip, sizeof(ip), "%s[%zu]", fp, i);
			if (check_value(&one, x, ip, err) < 0)
				return err->code;
		}
		return 0;
	}
	case F_CIDR: {
		uint32_t base;
		int prefix;
		if (!json_is_string(v))
			return herr_field(err, HERR_INVALID, fp,
					  "must be an IPv4 network like 198.18.10.0/24 (prefix %d-%d)",
					  NET_PREFIX_MIN, NET_PREFIX_MAX);
		if (net_cidr_parse(s, &base, &prefix, err) < 0) {
			char m[sizeof(err->msg)];
			snprintf(m, sizeof(m), "%s", err->msg);
			return herr_field(err, HERR_INVALID, fp, "%s", m);
		}
		return 0;
	}
	case F_ADDR:
		if (!json_is_string(v) || !ipv4_port_valid(s))
			return herr_field(err, HERR_INVALID, fp, "must be IPv4:PORT like 127.0.0.1:8080");
		return 0;
	case F_EXPR: {
		struct expr e;
		if (!json_is_string(v))
			return herr_field(err, HERR_INVALID, fp, "must be a string like 'avg(busy) > 32'");
		if (expr_parse(s, &e, err) < 0) {
			char m[sizeof(err->msg)];
			snprintf(m, sizeof(m), "%s", err->msg);
			return herr_field(err, HERR_INVALID, fp, "%s", m);
		}
		return 0;
	}
	case F_ADJUST: {
		struct adjust a;
		char num[32];
		/* YAML reads "+1" as the integer 1: check it as the text "+1" */
		if (json_is_integer(v)) {
			snprintf(num, sizeof(num), "%+lld", (long long)json_integer_value(v));
			s = num;
		}
		if ((!json_is_string(v) && !json_is_integer(v)) || adjust_parse(s, &a, err) < 0)
			return herr_field(err, HERR_INVALID, fp,
					  "must be an adjustment like +1, -2, +20%% or =5");
		return 0;
	}
	case F_CRON: {
		struct cron c;
		if (!json_is_string(v))
			return herr_field(err, HERR_INVALID, fp, "must be a 5-field cron string");
		if (cron_parse(s, &c, err) < 0) {
			char m[sizeof(err->msg)];
			snprintf(m, sizeof(m), "%s", err->msg);
			return herr_field(err, HERR_INVALID, fp, "%s", m);
		}
		return 0;
	}
	case F_OBJECT:
		if (!json_is_object(v))
			return herr_field(err, HERR_INVALID, fp, "must be a mapping");
		return 0;
	case F_LIST: {
		size_t i;
		json_t *x;

		if (!json_is_array(v))
			return herr_field(err, HERR_INVALID, fp, "must be a list");
		if (json_array_size(v) > 100)
			return herr_field(err, HERR_INVALID, fp, "must have at most 100 items");
		json_array_foreach(v, i, x)
			if (!json_is_object(x))
				return herr_field(err, HERR_INVALID, fp,
						  "item %zu must be a mapping", i);
		return 0;
	}
	case F_STRS: {
		size_t i;
		json_t *x;

		if (!json_is_array(v))
			return herr_field(err, HERR_INVALID, fp, "must be a list");
		if (json_array_size(v) > 100)
			return herr_field(err, HERR_INVALID, fp, "must have at most 100 items");
		json_array_foreach(v, i, x)
			if (!json_is_string(x) || json_string_length(x) > 1024)
				return herr_field(err, HERR_INVALID, fp,
						  "item %zu must be a string of at most 1024 characters", i);
		return 0;
	}
	}
	return 0;
}

/* Validates obj against k's fields, drops output-only and null fields,
 * keeps unknown keys of old, then runs k's check (which may fill defaults).
 * 0 or HERR_INVALID (or the check's code) with err->field set. */
int
kind_validate(const struct kind *k, json_t *obj, const json_t *old, const char *path,
	      struct herr *err)
{
	const char *key;
	json_t *v;
	char fp[256];

	if (!json_is_object(obj))
		return herr_field(err, HERR_INVALID, path, "must be a mapping");
	json_object_foreach(obj, key, v) {
		const struct field *f;
		for (f = k->fields; f->name; f++)
			if (strcmp(f->name, key) == 0)
				break;
		path_join(fp, sizeof(fp), path, key);
		if (f->name == NULL)
			return herr_field(err, HERR_INVALID, fp, "unknown field '%s' for a %s", key,
					  k->name);
		if (json_is_null(v) || (f->flags & FL_OUT))
			continue;
		if (check_value(f, v, fp, err) < 0)
			return err->code;
	}
	for (const struct field *f = k->fields; f->name; f++) {
		if (!(f->flags & FL_REQ))
			continue;
		v = json_object_get(obj, f->name);
		if (v == NULL || json_is_null(v)) {
			path_join(fp, sizeof(fp), path, f->name);
			return herr_field(err, HERR_INVALID, fp, "is required for a %s", k->name);
		}
	}
	/* Output-only and null fields are not stored. */
	for (const struct field *f = k->fields; f->name; f++)
		if ((f->flags & FL_OUT) || json_is_null(json_object_get(obj, f->name)))
			json_object_del(obj, f->name);
	/* Keys stored that are not fields (e.g. written by an older herd)
	 * survive an update that does not mention them. */
	json_object_foreach((json_t *)old, key, v) {
		const struct field *f;
		for (f = k->fields; f->name; f++)
			if (strcmp(f->name, key) == 0)
				break;
		if (f->name == NULL && json_object_get(obj, key) == NULL)
			json_object_set(obj, key, v);
	}
	if (k->check)
		return k->check(k, obj, old, path, err);
	return 0;
}

/* Calls fn for each reference obj makes (its parent scope first, then its
 * ref fields in table order); stops at fn's first error and returns it. */
int
kind_refs(const struct kind *k, const char *scope, const json_t *obj, const char *path,
	  ref_fn fn, void *arg, struct herr *err)
{
	char fp[256], ip[300];
	int rc;

	/* A scoped object refers to its parent. */
	if (k->scope == SCOPE_CLUSTER) {
		if ((rc = fn(&kind_cluster, "", scope, path, arg, err)) < 0)
			return rc;
	} else if (k->scope == SCOPE_GROUP) {
		const char *slash = strchr(scope, '/');
		char cl[64];
		if (slash == NULL)
			return herr_field(err, HERR_INVALID, path, "a policy belongs to a group");
		snprintf(cl, sizeof(cl), "%.*s", (int)(slash - scope), scope);
		if ((rc = fn(&kind_group, cl, slash + 1, path, arg, err)) < 0)
			return rc;
	}
	for (const struct field *f = k->fields; f->name; f++) {
		const struct kind *to;
		const char *ref_scope = "";
		json_t *v = json_object_get(obj, f->name);
		if (f->ref == NULL || v == NULL || json_is_null(v))
			continue;
		to = kind_find(f->ref);
		BUG_ON(to == NULL);
		if (to->scope == SCOPE_CLUSTER)   /* e.g. group.after: same cluster */
			ref_scope = scope;
		path_join(fp, sizeof(fp), path, f->name);
		if (json_is_string(v)) {
			if ((rc = fn(to, ref_scope, json_string_value(v), fp, arg, err)) < 0)
				return rc;
		} else if (json_is_array(v)) {
			size_t i;
			json_t *x;
			json_array_foreach(v, i, x) {
				snprintf(ip, sizeof(ip), "%s[%zu]", fp, i);
				if ((rc = fn(to, ref_scope, json_string_value(x), ip, arg, err)) < 0)
					return rc;
			}
		}
	}
	return 0;
}
