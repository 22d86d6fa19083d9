/* api-apply.c - blueprints: POST /v1/apply creates or updates everything a
 * document declares, in one transaction (all or nothing), and answers the
 * list of changes; with dry_run the same work is done and rolled back, so
 * the list is exact. Errors name the document path (`clusters[0].groups[1]
 * .size`) which the CLI turns into file:line. POST /v1/unapply removes what
 * a document declares, scaling its groups to 0 first. An apply answers
 * `warnings` too: the groups of the document whose policies are predicted
 * to flap at their load (scale/check.c), and those that may grow past the
 * room their driver has on this machine (ctl/room.c); it applies all the
 * same. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "ctl/ctl.h"
#include "scale/scale.h"
#include "store/store.h"
#include "util.h"
#include "xalloc.h"

struct item {
	const struct kind *k;
	char scope[200];
	char name[128];
	char path[128];
	json_t *spec;      /* owned */
	int line_order;
};

struct doc {
	struct item *items;
	size_t n;
};

static void
doc_free(struct doc *d)
{
	for (size_t i = 0; i < d->n; i++)
		json_decref(d->items[i].spec);
	free(d->items);
}

static struct item *
doc_add(struct doc *d, const struct kind *k, const char *scope, const char *name, json_t *spec,
	const char *path)
{
	struct item *it;

	d->items = xrealloc(d->items, (d->n + 1) * sizeof(*d->items));
	it = &d->items[d->n++];
	memset(it, 0, sizeof(*it));
	it->k = k;
	snprintf(it->scope, sizeof(it->scope), "%s", scope);
	snprintf(it->name, sizeof(it->name), "%s", name);
	snprintf(it->path, sizeof(it->path), "%s", path);
	it->spec = spec;
	return it;
}

static int
take_name(json_t *obj, const char *path, bool script, char *out, size_t n, struct herr *err)
{
	json_t *v = json_object_get(obj, "name");
	char fp[160];

	snprintf(fp, sizeof(fp), "%s.name", path);
	if (!json_is_object(obj))
		return herr_field(err, HERR_INVALID, path, "must be a mapping");
	if (v == NULL)
		return herr_field(err, HERR_INVALID, fp, "is required");
	if (!json_is_string(v) ||
	    (script ? !script_name_is_valid(json_string_value(v)) : !name_is_valid(json_string_value(v))))
		return herr_field(err, HERR_INVALID, fp,
				  script ? "must be a script name of 1-100 characters [A-Za-z0-9._-]"
					 : "must be a name of 1-63 characters [a-z0-9-], not starting or ending with '-'");
	snprintf(out, n, "%s", json_string_value(v));
	json_object_del(obj, "name");
	return 0;
}

/* Flattens a blueprint into items; checks names and duplicates. */
static int
doc_parse(json_t *bp, struct doc *d, struct herr *err)
{
	static const struct { const char *key; const struct kind *k; } tops[] = {
		{ "accounts", &kind_account }, { "networks", &kind_network },
		{ "load_balancers", &kind_lb }, { "scripts", &kind_script },
		{ "monitors", &kind_monitor }, { "templates", &kind_template },
		{ "receivers", &kind_receiver }, { "remote_writes", &kind_remote_write },
	};
	const char *key;
	json_t *v, *x;
	size_t i;
	char path[128], name[128];

	if (!json_is_object(bp))
		return herr_field(err, HERR_INVALID, "", "a blueprint is a mapping of lists");
	json_object_foreach(bp, key, v) {
		bool known = strcmp(key, "clusters") == 0;
		for (size_t t = 0; t < sizeof(tops) / sizeof(tops[0]); t++)
			known |= strcmp(key, tops[t].key) == 0;
		if (!known)
			return herr_field(err, HERR_INVALID, key,
					  "unknown section '%s' (known: accounts, networks, load_balancers,"
					  " scripts, monitors, templates, clusters, receivers, remote_writes)", key);
		if (!json_is_array(v))
			return herr_field(err, HERR_INVALID, key, "must be a list");
	}
	for (size_t t = 0; t < sizeof(tops) / sizeof(tops[0]); t++) {
		json_array_foreach(json_object_get(bp, tops[t].key), i, x) {
			snprintf(path, sizeof(path), "%s[%zu]", tops[t].key, i);
			x = json_deep_copy(x);
			if (take_name(x, path, tops[t].k == &kind_script, name, sizeof(name), err) < 0) {
				json_decref(x);
				return err->code;
			}
			doc_add(d, tops[t].k, "", name, x, path);
		}
	}
	json_array_foreach(json_object_get(bp, "clusters"), i, x) {
		json_t *groups, *g;
		size_t gi;
		char cname[128];

		snprintf(path, sizeof(path), "clusters[%zu]", i);
		x = json_deep_copy(x);
		if (take_name(x, path, false, cname, sizeof(cname), err) < 0) {
			json_decref(x);
			return err->code;
		}
		groups = json_incref(json_object_get(x, "groups"));
		json_object_del(x, "groups");
		doc_add(d, &kind_cluster, "", cname, x, path);
		if (groups && !json_is_array(groups)) {
			json_decref(groups);
			snprintf(path + strlen(path), sizeof(path) - strlen(path), ".groups");
			return herr_field(err, HERR_INVALID, path, "must be a list");
		}
		json_array_foreach(groups, gi, g) {
			json_t *pols, *p;
			size_t pi;
			char gpath[128], gname[128], scope[200];

			snprintf(gpath, sizeof(gpath), "clusters[%zu].groups[%zu]", i, gi);
			g = json_deep_copy(g);
			if (take_name(g, gpath, false, gname, sizeof(gname), err) < 0) {
				json_decref(g);
				json_decref(groups);
				return err->code;
			}
			pols = json_incref(json_object_get(g, "policies"));
			json_object_del(g, "policies");
			doc_add(d, &kind_group, cname, gname, g, gpath);
			if (pols && !json_is_array(pols)) {
				json_decref(pols);
				json_decref(groups);
				snprintf(gpath + strlen(gpath), sizeof(gpath) - strlen(gpath), ".policies");
				return herr_field(err, HERR_INVALID, gpath, "must be a list");
			}
			snprintf(scope, sizeof(scope), "%s/%s", cname, gname);
			json_array_foreach(pols, pi, p) {
				char ppath[160], pname[128];
				snprintf(ppath, sizeof(ppath), "%s.policies[%zu]", gpath, pi);
				p = json_deep_copy(p);
				if (take_name(p, ppath, false, pname, sizeof(pname), err) < 0) {
					json_decref(p);
					json_decref(pols);
					json_decref(groups);
					return err->code;
				}
				doc_add(d, &kind_policy, scope, pname, p, ppath);
			}
			json_decref(pols);
		}
		json_decref(groups);
	}
	for (i = 0; i < d->n; i++)
		for (size_t k = 0; k < i; k++)
			if (d->items[i].k == d->items[k].k && strcmp(d->items[i].scope, d->items[k].scope) == 0 &&
			    strcmp(d->items[i].name, d->items[k].name) == 0) {
				snprintf(path, sizeof(path), "%s.name", d->items[i].path);
				return herr_field(err, HERR_INVALID, path, "%s '%s' is declared twice (also at %s)",
						  d->items[i].k->name, d->items[i].name, d->items[k].path);
			}
	return 0;
}

static int
kind_index(const struct kind *k)
{
	for (int i = 0; kinds[i]; i++)
		if (kinds[i] == k)
			return i;
	return 99;
}

/* Dependency order: by kind, and groups after the groups they wait for. */
static void
doc_order(struct doc *d)
{
	for (size_t i = 0; i < d->n; i++)
		d->items[i].line_order = kind_index(d->items[i].k) * 100000 + (int)i;
	for (int pass = 0; pass < 64; pass++) {
		bool moved = false;
		for (size_t i = 0; i < d->n; i++) {
			json_t *after = json_object_get(d->items[i].spec, "after"), *a;
			size_t k;
			if (d->items[i].k != &kind_group)
				continue;
			json_array_foreach(after, k, a) {
				for (size_t j = 0; j < d->n; j++) {
					if (d->items[j].k == &kind_group && json_is_string(a) &&
					    strcmp(d->items[j].scope, d->items[i].scope) == 0 &&
					    strcmp(d->items[j].name, json_string_value(a)) == 0 &&
					    d->items[j].line_order >= d->items[i].line_order) {
						d->items[i].line_order = d->items[j].line_order + 1;
						moved = true;
					}
				}
			}
		}
		if (!moved)
			break;
	}
	for (size_t i = 1; i < d->n; i++)
		for (size_t j = i; j > 0 && d->items[j - 1].line_order > d->items[j].line_order; j--) {
			struct item t = d->items[j];
			d->items[j] = d->items[j - 1];
			d->items[j - 1] = t;
		}
}

static json_t *
change(const char *action, const struct item *it, const char *scope, const char *name,
       const struct kind *k)
{
	char full[400];
	const char *sc = it ? it->scope : scope;

	snprintf(full, sizeof(full), "%s%s%s", sc, *sc ? "/" : "", it ? it->name : name);
	return json_pack("{s:s,s:s,s:s}", "action", action, "kind", (it ? it->k : k)->name, "name",
			 full);
}

static json_t *
changed_fields(const json_t *old, const json_t *new)
{
	json_t *out = json_array(), *v;
	const char *key;

	json_object_foreach((json_t *)new, key, v)
		if (!json_equal(v, json_object_get(old, key)))
			json_array_append_new(out, json_string(key));
	json_object_foreach((json_t *)old, key, v)
		if (json_object_get(new, key) == NULL)
			json_array_append_new(out, json_string(key));
	return out;
}

/* Owned children no longer declared: groups of a declared cluster,
 * policies of a declared group. */
static int
prune(struct store *st, struct doc *d, json_t *changes, bool *changed, struct herr *err)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct kind *child;
		char scope[200];
		json_t *names = NULL, *nmv;
		size_t k;

		if (d->items[i].k == &kind_cluster) {
			child = &kind_group;
			snprintf(scope, sizeof(scope), "%s", d->items[i].name);
		} else if (d->items[i].k == &kind_group) {
			child = &kind_policy;
			snprintf(scope, sizeof(scope), "%s/%s", d->items[i].scope, d->items[i].name);
		} else {
			continue;
		}
		if (res_names(st, child, scope, &names, err) < 0)
			return err->code;
		json_array_foreach(names, k, nmv) {
			const char *nm = json_string_value(nmv);
			bool declared = false;
			for (size_t j = 0; j < d->n; j++)
				if (d->items[j].k == child && strcmp(d->items[j].scope, scope) == 0 &&
				    strcmp(d->items[j].name, nm) == 0)
					declared = true;
			if (declared)
				continue;
			if (child == &kind_group) {
				json_t *pols = NULL, *p;
				size_t pi;
				char ps[200];
				if (group_delete_check(st, scope, nm, err) < 0) {
					json_decref(names);
					return err->code;
				}
				snprintf(ps, sizeof(ps), "%s/%s", scope, nm);
				res_names(st, &kind_policy, ps, &pols, err);
				json_array_foreach(pols, pi, p)
					res_delete(st, &kind_policy, ps, json_string_value(p), err);
				json_decref(pols);
			}
			if (res_delete(st, child, scope, nm, err) < 0) {
				json_decref(names);
				return err->code;
			}
			json_array_append_new(changes, change("remove", NULL, scope, nm, child));
			*changed = true;
		}
		json_decref(names);
	}
	return 0;
}

/* One warning per flapping finding of the document's groups, at their
 * load now (hosts' values, else the group's expect), and one per group
 * that may grow past its driver's room on this machine. */
static json_t *
apply_warnings(struct server *s, const struct doc *d)
{
	json_t *w = json_array(), *out, *f, *room;
	size_t j;

	for (size_t i = 0; i < d->n; i++) {
		struct herr err = HERR_INIT;
		const char *v;

		if (d->items[i].k != &kind_group)
			continue;
		if ((room = ctl_room_warning(s, d->items[i].scope, d->items[i].name)) != NULL)
			json_array_append_new(w, room);
		if (policy_check(s, d->items[i].scope, d->items[i].name, NULL, &out, &err) < 0)
			continue;
		json_array_foreach(json_object_get(out, "findings"), j, f) {
			v = json_string_value(json_object_get(f, "verdict"));
			if (v && (strcmp(v, "runaway") == 0 || strcmp(v, "oscillates") == 0))
				json_array_append_new(w, json_sprintf("group %s/%s: %s (from %s; herd policy"
					" check %s/%s)", d->items[i].scope, d->items[i].name,
					json_string_value(json_object_get(f, "text")),
					json_string_value(json_object_get(out, "source")),
					d->items[i].scope, d->items[i].name));
		}
		json_decref(out);
	}
	return w;
}

void
api_apply(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *body = req_json(rq), *bp, *changes = json_array();
	struct store *st = rq->srv->store;
	struct doc d = { 0 };
	bool dry, any = false;

	if (body == NULL)
		goto out;
	bp = json_object_get(body, "document");
	dry = json_is_true(json_object_get(body, "dry_run"));
	if (bp == NULL) {
		reply_errf(rq, HERR_INVALID, "document", "is required");
		goto out;
	}
	if (doc_parse(bp, &d, &err) < 0)
		goto fail;
	doc_order(&d);
	if (store_begin(st, &err) < 0)
		goto fail;
	for (size_t i = 0; i < d.n; i++) {
		struct item *it = &d.items[i];
		struct res old = { 0 };
		bool have_old = res_get(st, it->k, it->scope, it->name, &old, &err) == 0;
		bool created;

		herr_clear(&err);
		if (kind_validate(it->k, it->spec, have_old ? old.spec : NULL, it->path, &err) < 0 ||
		    (it->k == &kind_script && script_store_version(st, it->name, it->spec, &err) < 0)) {
			res_release(&old);
			goto fail_tx;
		}
		if (have_old && json_equal(old.spec, it->spec)) {
			json_array_append_new(changes, change("unchanged", it, NULL, NULL, NULL));
			res_release(&old);
			continue;
		}
		if (res_put(st, it->k, it->scope, it->name, it->spec, it->path, &created, &err) < 0) {
			res_release(&old);
			goto fail_tx;
		}
		{
			json_t *c = change(created ? "create" : "update", it, NULL, NULL, NULL);
			if (!created)
				json_object_set_new(c, "fields", changed_fields(old.spec, it->spec));
			json_array_append_new(changes, c);
		}
		any = true;
		res_release(&old);
	}
	if (prune(st, &d, changes, &any, &err) < 0)
		goto fail_tx;
	if (dry) {
		store_rollback(st);
	} else {
		if (store_commit(st, &err) < 0)
			goto fail;
		server_kick(rq->srv);
	}
	reply_json(rq, 200, json_pack("{s:O,s:b,s:b,s:o}", "changes", changes, "changed", any, "dry_run",
				      dry, "warnings", dry ? json_array() : apply_warnings(rq->srv, &d)));
	goto out;
fail_tx:
	store_rollback(st);
fail:
	reply_err(rq, &err);
out:
	doc_free(&d);
	json_decref(changes);
}

void
api_unapply(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *body = req_json(rq), *bp, *changes = json_array(), *waiting = json_array();
	struct store *st = rq->srv->store;
	struct doc d = { 0 };
	bool dry;

	if (body == NULL)
		goto out;
	bp = json_object_get(body, "document");
	dry = json_is_true(json_object_get(body, "dry_run"));
	if (bp == NULL) {
		reply_errf(rq, HERR_INVALID, "document", "is required");
		goto out;
	}
	if (doc_parse(bp, &d, &err) < 0)
		goto fail;
	doc_order(&d);
	if (store_begin(st, &err) < 0)
		goto fail;
	/* Groups first: hosts must go before anything they use. */
	for (size_t i = 0; i < d.n; i++) {
		struct item *it = &d.items[i];
		struct res g;
		int64_t n;
		bool created;

		if (it->k != &kind_group || res_get(st, &kind_group, it->scope, it->name, &g, &err) < 0) {
			herr_clear(&err);
			continue;
		}
		host_count_live(st, it->scope, it->name, &n, &err);
		if (n > 0) {
			char w[300];
			snprintf(w, sizeof(w), "%s/%s (%lld hosts)", it->scope, it->name, (long long)n);
			json_array_append_new(waiting, json_string(w));
			if (!dry && json_integer_value(json_object_get(g.spec, "desired")) != 0) {
				json_object_set_new(g.spec, "desired", json_integer(0));
				json_object_set_new(g.spec, "min", json_integer(0));
				res_put(st, &kind_group, g.scope, g.name, g.spec, it->path, &created, &err);
				activity_add(st, g.scope, g.name, NULL, "scale_in", "delete", NULL, &err,
					     "desired -> 0: the group is being deleted by %s", rq->who.name);
			}
			/* Failed hosts kept for inspection go with their group: the
			 * controller finishes what is `terminating`. */
			if (!dry)
				host_mark_group_failed_terminating(st, it->scope, it->name, now_ms(),
								   &err);
		}
		res_release(&g);
	}
	if (json_array_size(waiting) > 0) {
		if (dry)
			store_rollback(st);
		else if (store_commit(st, &err) < 0)
			goto fail;
		server_kick(rq->srv);
		reply_json(rq, 202, json_pack("{s:O,s:b}", "waiting", waiting, "dry_run", dry));
		goto out;
	}
	for (size_t i = d.n; i-- > 0;) {
		struct item *it = &d.items[i];
		struct res r;

		if (res_get(st, it->k, it->scope, it->name, &r, &err) < 0) {
			herr_clear(&err);
			json_array_append_new(changes, change("absent", it, NULL, NULL, NULL));
			continue;
		}
		if (it->k == &kind_group) {
			/* its undeclared policies go with it */
			json_t *pols = NULL, *p;
			size_t pi;
			char ps[200];
			snprintf(ps, sizeof(ps), "%s/%s", it->scope, it->name);
			res_names(st, &kind_policy, ps, &pols, &err);
			json_array_foreach(pols, pi, p)
				res_delete(st, &kind_policy, ps, json_string_value(p), &err);
			json_decref(pols);
			herr_clear(&err);
		}
		if (res_delete(st, it->k, it->scope, it->name, &err) < 0) {
			res_release(&r);
			herr_field(&err, err.code, it->path, "%s", err.msg);
			goto fail_tx;
		}
		/* its bridge: the controller removes it (kicked below) */
		if (it->k == &kind_network && net_gone_add(st, it->name, r.spec, now_ms(), &err) < 0) {
			res_release(&r);
			goto fail_tx;
		}
		res_release(&r);
		json_array_append_new(changes, change("remove", it, NULL, NULL, NULL));
	}
	if (dry) {
		store_rollback(st);
	} else {
		if (store_commit(st, &err) < 0)
			goto fail;
		server_kick(rq->srv);
	}
	reply_json(rq, 200, json_pack("{s:O,s:b}", "changes", changes, "dry_run", dry));
	goto out;
fail_tx:
	store_rollback(st);
fail:
	reply_err(rq, &err);
out:
	doc_free(&d);
	json_decref(changes);
	json_decref(waiting);
}
