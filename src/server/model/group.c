/* model/group.c - groups' rules that need the store beyond their own row:
 * a group with live hosts cannot be deleted (declared in model/res.h as a
 * kind hook; the kind itself is defined with the other kinds); and the
 * typed group the controllers read (model/group.h). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "model/group.h"
#include "model/host.h"
#include "model/res.h"
#include "model/spec-read.h"

int
group_delete_check(struct store *st, const char *cluster, const char *name, struct herr *err)
{
	int64_t n = 0;

	if (host_count_live(st, cluster, name, &n, err) < 0)
		return err->code;
	if (n > 0)
		return herr_set(err, HERR_CONFLICT,
				"group '%s/%s' still has %lld host(s): scale it to 0 first", cluster,
				name, (long long)n);
	return 0;
}

/* --- group --- */

static const char *const group_types[] = {
	"template:s", "desired:I", "min:I", "max:I", "after:o", "termination:s", "warmup:s",
	"max_provision_time:s", "unhealthy_after:s", "max_unhealthy:I",
	"max_actions_per_hour:I", NULL,
};

/* A size as struct group keeps it: absent -1, else clamped. */
static int
size_of(json_int_t v)
{
	return v == LLONG_MIN ? -1 : spec_read_clamp(v);
}

int
group_from_spec(const char *cluster, const char *name, const json_t *spec, struct group *out,
		struct herr *err)
{
	const char *tmpl = NULL, *term = NULL, *warmup = NULL, *prov = NULL, *unh = NULL;
	json_int_t desired = LLONG_MIN, min = LLONG_MIN, max = LLONG_MIN;
	json_int_t max_unhealthy = GROUP_DEFAULT_MAX_UNHEALTHY_PCT, mah = 0;
	json_t *after = NULL, *x;
	char what[300];
	size_t i;
	int rc;

	memset(out, 0, sizeof(*out));
	out->desired = out->min = out->max = -1;
	out->max_provision_ms = GROUP_DEFAULT_PROVISION_MS;
	out->unhealthy_after_ms = GROUP_DEFAULT_UNHEALTHY_MS;
	out->max_unhealthy_pct = GROUP_DEFAULT_MAX_UNHEALTHY_PCT;
	snprintf(what, sizeof(what), "group '%s/%s'", cluster ? cluster : "", name ? name : "");
	if ((rc = spec_read_str(what, "cluster", cluster, out->cluster, sizeof(out->cluster), err)) < 0 ||
	    (rc = spec_read_str(what, "name", name, out->name, sizeof(out->name), err)) < 0)
		return rc;
	if (json_unpack((json_t *)spec, "{s?s, s?I, s?I, s?I, s?o, s?s, s?s, s?s, s?s, s?I, s?I}",
			"template", &tmpl, "desired", &desired, "min", &min, "max", &max, "after",
			&after, "termination", &term, "warmup", &warmup, "max_provision_time", &prov,
			"unhealthy_after", &unh, "max_unhealthy", &max_unhealthy,
			"max_actions_per_hour", &mah) < 0)
		return spec_read_fail(spec, what, group_types, err);
	out->desired = size_of(desired);
	out->min = size_of(min);
	out->max = size_of(max);
	out->max_unhealthy_pct = spec_read_clamp(max_unhealthy);
	out->max_actions_per_hour = spec_read_clamp(mah);
	if ((rc = spec_read_str(what, "template", tmpl, out->template_, sizeof(out->template_), err)) < 0 ||
	    (rc = spec_read_str(what, "termination", term, out->termination, sizeof(out->termination),
				err)) < 0 ||
	    (rc = spec_read_duration(what, "warmup", warmup, 0, &out->warmup_ms, err)) < 0 ||
	    (rc = spec_read_duration(what, "max_provision_time", prov, GROUP_DEFAULT_PROVISION_MS,
				     &out->max_provision_ms, err)) < 0 ||
	    (rc = spec_read_duration(what, "unhealthy_after", unh, GROUP_DEFAULT_UNHEALTHY_MS,
				     &out->unhealthy_after_ms, err)) < 0)
		return rc;
	if (after == NULL || json_is_null(after))
		return 0;
	if (!json_is_array(after))
		return herr_field(err, HERR_STORE, "after", "%s: stored 'after' is not a list", what);
	if (json_array_size(after) > GROUP_AFTER_MAX)
		return herr_field(err, HERR_STORE, "after", "%s: stored 'after' has %zu names (at most %d)",
				  what, json_array_size(after), GROUP_AFTER_MAX);
	json_array_foreach(after, i, x) {
		char f[32];

		snprintf(f, sizeof(f), "after[%zu]", i);
		if (!json_is_string(x))
			return herr_field(err, HERR_STORE, f, "%s: stored '%s' is not a string", what, f);
		if ((rc = spec_read_str(what, f, json_string_value(x), out->after[i],
					sizeof(out->after[i]), err)) < 0)
			return rc;
		out->nafter = (int)i + 1;
	}
	return 0;
}

int
group_get(struct store *st, const char *cluster, const char *name, struct group *out,
	  struct herr *err)
{
	struct res r;
	int rc;

	if ((rc = res_get(st, &kind_group, cluster, name, &r, err)) < 0)
		return rc;
	rc = group_from_spec(r.scope, r.name, r.spec, out, err);
	res_release(&r);
	return rc;
}
