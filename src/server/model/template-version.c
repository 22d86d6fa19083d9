/* model/template-version.c - template versions (model/template-version.h):
 * the snapshot and its hash (pure), what changed between two snapshots
 * (pure), the versions kept in template_versions, and a group's diff. */
#include <stdlib.h>
#include <string.h>

#include "model/group.h"
#include "model/kind.h"
#include "model/res.h"
#include "model/template-version.h"
#include "store/store.h"
#include "util.h"
#include "xalloc.h"

json_t *
template_version_snapshot(const json_t *spec, const json_t *scripts)
{
	json_t *s = json_is_object(spec) ? json_deep_copy(spec) : json_object();

	json_object_del(s, "description");
	return json_pack("{s:o, s:o}", "spec", s, "scripts",
			 json_is_object(scripts) ? json_deep_copy(scripts) : json_object());
}

void
template_version_of(const json_t *snapshot, char out[TEMPLATE_VERSION_LEN + 1])
{
	char *text = json_dumps(snapshot, JSON_COMPACT | JSON_SORT_KEYS);
	char hex[65];

	sha256_hex(text ? text : "", text ? strlen(text) : 0, hex);
	free(text);
	memcpy(out, hex, TEMPLATE_VERSION_LEN);
	out[TEMPLATE_VERSION_LEN] = '\0';
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends to changes each key of objects a or b (either may be NULL) whose
 * values differ, sorted, as {"field": prefix KEY, "from", "to"}. */
static void
changes_of(json_t *changes, const json_t *a, const json_t *b, const char *prefix)
{
	json_t *keys = json_object();
	const char **names;
	const char *k;
	json_t *v;
	size_t n = 0, i;

	json_object_foreach((json_t *)a, k, v)
		json_object_set_new(keys, k, json_true());
	json_object_foreach((json_t *)b, k, v)
		json_object_set_new(keys, k, json_true());
	names = calloc(json_object_size(keys) + 1, sizeof(*names));
	if (names == NULL) {
		json_decref(keys);
		return;
	}
	json_object_foreach(keys, k, v)
		names[n++] = k;
	qsort(names, n, sizeof(*names), cmp_str);
	for (i = 0; i < n; i++) {
		json_t *x = json_object_get(a, names[i]), *y = json_object_get(b, names[i]);
		char *field;

		if (x && y && json_equal(x, y))
			continue;
		field = xasprintf("%s%s", prefix, names[i]);
		json_array_append_new(changes, json_pack("{s:s, s:O, s:O}", "field", field, "from",
							 x ? x : json_null(), "to",
							 y ? y : json_null()));
		free(field);
	}
	free(names);
	json_decref(keys);
}

json_t *
template_version_changes(const json_t *old, const json_t *new_)
{
	json_t *changes = json_array();

	if (old == NULL) {
		json_array_append_new(changes, json_pack("{s:s, s:s, s:n}", "field", "version",
							 "from", "unknown", "to"));
		return changes;
	}
	changes_of(changes, json_object_get(old, "spec"), json_object_get(new_, "spec"), "");
	changes_of(changes, json_object_get(old, "scripts"), json_object_get(new_, "scripts"),
		   "script ");
	return changes;
}

int
template_version_current(struct store *st, const char *name,
			 char ver[TEMPLATE_VERSION_LEN + 1], json_t **snapshot, struct herr *err)
{
	struct res t;
	json_t *scripts, *snap, *n;
	size_t i;
	int rc;

	if (snapshot)
		*snapshot = NULL;
	if ((rc = res_get(st, &kind_template, "", name ? name : "", &t, err)) < 0)
		return rc;
	scripts = json_object();
	json_array_foreach(json_object_get(t.spec, "init"), i, n) {
		json_t *row = store_row(st, err,
					"SELECT MAX(version) AS version FROM script_versions WHERE name = ?",
					"[s]", json_string_value(n));

		if (row == NULL && err->code) {
			json_decref(scripts);
			res_release(&t);
			return err->code;
		}
		json_object_set_new(scripts, json_string_value(n),
				    json_integer(json_integer_value(json_object_get(row, "version"))));
		json_decref(row);
	}
	snap = template_version_snapshot(t.spec, scripts);
	json_decref(scripts);
	res_release(&t);
	template_version_of(snap, ver);
	if (snapshot)
		*snapshot = snap;
	else
		json_decref(snap);
	return 0;
}

int
template_version_record(struct store *st, const char *name, const char *ver,
			const json_t *snapshot, struct herr *err)
{
	char *text = json_dumps(snapshot, JSON_COMPACT | JSON_SORT_KEYS);
	int rc = store_q(st, NULL, NULL, err,
			 "INSERT INTO template_versions (template, version, snapshot,"
			 " created_ms) VALUES (?, ?, ?, ?) ON CONFLICT (template, version) DO NOTHING",
			 "[sssI]", name, ver, text ? text : "{}", (json_int_t)now_ms());

	free(text);
	return rc;
}

json_t *
template_version_get(struct store *st, const char *name, const char *ver, struct herr *err)
{
	json_t *row = store_row(st, err,
				"SELECT snapshot FROM template_versions WHERE template = ? AND version = ?",
				"[ss]", name, ver);
	json_t *snap;

	if (row == NULL)
		return NULL;
	snap = json_loads(json_string_value(json_object_get(row, "snapshot")), 0, NULL);
	json_decref(row);
	return snap;
}

bool
template_version_is_current(const char *host_template, const char *host_version,
			    const char *template_, const char *ver)
{
	const char *v = host_version && *host_version ? host_version : "unknown";

	return strcmp(host_template ? host_template : "", template_) == 0 && strcmp(v, ver) == 0;
}

int
group_diff(struct store *st, const char *cluster, const char *grp, json_t **out,
	   struct herr *err)
{
	char ver[TEMPLATE_VERSION_LEN + 1];
	struct group *g = xcalloc(1, sizeof(*g));   /* large: not on the stack */
	json_t *snap = NULL, *rows = NULL, *behind, *row;
	size_t i, current = 0;
	int rc;

	*out = NULL;
	if ((rc = group_get(st, cluster, grp, g, err)) < 0 ||
	    (rc = template_version_current(st, g->template_, ver, &snap, err)) < 0 ||
	    (rc = store_q(st, &rows, NULL, err,
			  "SELECT name, state, template, template_version FROM hosts"
			  " WHERE cluster = ? AND grp = ? AND state NOT IN ('terminated', 'failed')"
			  " ORDER BY seq",
			  "[ss]", cluster, grp)) < 0)
		goto out;
	/* What changed is the same for every host on one (template, version):
	 * computed once for each of the few distinct ones, not once a host
	 * (the console reads this on every poll of a group page). */
	struct seen_version {
		const char *t, *v;
		json_t *changes;
	} seen[16];
	size_t nseen = 0;

	behind = json_array();
	json_array_foreach(rows, i, row) {
		const char *t = json_string_value(json_object_get(row, "template"));
		const char *v = json_string_value(json_object_get(row, "template_version"));
		json_t *old = NULL, *changes = NULL;
		size_t k;

		t = t ? t : "";
		v = v && *v ? v : "unknown";
		if (template_version_is_current(t, v, g->template_, ver)) {
			current++;
			continue;
		}
		for (k = 0; k < nseen && !changes; k++)
			if (strcmp(seen[k].t, t) == 0 && strcmp(seen[k].v, v) == 0)
				changes = json_incref(seen[k].changes);
		if (!changes) {
			if (strcmp(v, "unknown") != 0 &&
			    (old = template_version_get(st, t, v, err)) == NULL && err->code) {
				json_decref(behind);
				rc = err->code;
				goto out_seen;
			}
			changes = template_version_changes(old, snap);
			if (old && strcmp(t, g->template_) != 0)
				json_array_insert_new(changes, 0,
						      json_pack("{s:s, s:s, s:s}", "field", "template",
								"from", t, "to", g->template_));
			json_decref(old);
			if (nseen < sizeof(seen) / sizeof(seen[0]))
				seen[nseen++] = (struct seen_version){ t, v, json_incref(changes) };
		}
		json_array_append_new(behind, json_pack("{s:O, s:O, s:s, s:s, s:o}", "host",
							json_object_get(row, "name"), "state",
							json_object_get(row, "state"), "template", t,
							"version", v, "changes", changes));
	}
	*out = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:o}", "cluster", cluster, "group", grp,
			 "template", g->template_, "version", ver, "hosts",
			 (json_int_t)json_array_size(rows), "current", (json_int_t)current, "behind",
			 behind);
out_seen:
	for (size_t k = 0; k < nseen; k++)
		json_decref(seen[k].changes);
out:
	json_decref(snap);
	json_decref(rows);
	free(g);
	return rc < 0 ? rc : 0;
}
