/* api-meta.c - metadata for hosts (host credential only): a host sees its
 * own record and the hosts of its own cluster, nothing of other clusters.
 * `group/NAME?wait=N` is a long-poll: it answers as soon as the group has a
 * ready host, or after N seconds. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "model/host.h"
#include "util.h"

#define META_WAIT_MAX_S 300

static json_t *
meta_host(json_t *row)
{
	json_t *labels = json_loads(json_string_value(json_object_get(row, "labels")), 0, NULL);

	return json_pack("{s:O,s:O,s:O,s:O,s:O,s:O,s:o}", "id", json_object_get(row, "id"), "name",
			 json_object_get(row, "name"), "cluster", json_object_get(row, "cluster"),
			 "group", json_object_get(row, "grp"), "state", json_object_get(row, "state"),
			 "private_ip", json_object_get(row, "private_ip"), "labels",
			 labels ? labels : json_object());
}

/* Refuses a ?cluster= other than the caller's own. */
static bool
own_cluster(struct req *rq)
{
	const char *c = req_query(rq, "cluster");

	if (c && strcmp(c, rq->who.cluster) != 0) {
		reply_errf(rq, HERR_FORBIDDEN, "cluster",
			   "a host of cluster '%s' may not read cluster '%s'", rq->who.cluster, c);
		return false;
	}
	return true;
}

void
api_meta_self(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *row = host_meta_get(rq->srv->store, rq->who.host_id, NULL, NULL, &err);

	if (row == NULL)
		return reply_errf(rq, HERR_NOTFOUND, "", "this host is not known");
	reply_json(rq, 200, meta_host(row));
	json_decref(row);
}

void
api_meta_group(struct req *rq)
{
	struct herr err = HERR_INIT;
	const char *g = req_param(rq, 0), *w = req_query(rq, "wait");
	json_t *rows = NULL, *items = json_array(), *row;
	struct res grp;
	long wait_s = 0;
	size_t i;

	if (!own_cluster(rq))
		goto out;
	if (w && parse_long(w, LONG_MIN, LONG_MAX, &wait_s) < 0) {
		reply_errf(rq, HERR_INVALID, "wait", "must be a number of seconds");
		goto out;
	}
	if (res_get(rq->srv->store, &kind_group, rq->who.cluster, g, &grp, &err) < 0) {
		reply_errf(rq, HERR_NOTFOUND, "", "no group '%s' in cluster '%s'", g, rq->who.cluster);
		goto out;
	}
	res_release(&grp);
	if (host_meta_list(rq->srv->store, rq->who.cluster, g, &rows, &err) < 0) {
		reply_err(rq, &err);
		goto out;
	}
	if (json_array_size(rows) == 0 && w) {
		long s = wait_s;
		if (s > META_WAIT_MAX_S)
			s = META_WAIT_MAX_S;
		if (rq->wait_deadline_ms == 0 || mono_ms() < rq->wait_deadline_ms) {
			if (s > 0) {
				req_wait(rq, s * 1000);
				json_decref(rows);
				goto out;
			}
		}
	}
	json_array_foreach(rows, i, row)
		json_array_append_new(items, meta_host(row));
	json_decref(rows);
	reply_json(rq, 200, json_pack("{s:O}", "hosts", items));
out:
	json_decref(items);
}

void
api_meta_host(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *row;

	if (!own_cluster(rq))
		return;
	row = host_meta_get(rq->srv->store, NULL, rq->who.cluster, req_param(rq, 0), &err);
	if (row == NULL)
		return reply_errf(rq, HERR_NOTFOUND, "", "no host '%s' in cluster '%s'",
				  req_param(rq, 0), rq->who.cluster);
	reply_json(rq, 200, meta_host(row));
	json_decref(row);
}

void
api_meta_cluster(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *groups = NULL, *hosts = NULL, *out = json_array(), *g, *h;
	size_t i, k;

	if (!own_cluster(rq)) {
		json_decref(out);
		return;
	}
	if (res_all(rq->srv->store, &kind_group, rq->who.cluster, &groups, &err) < 0 ||
	    host_meta_list(rq->srv->store, rq->who.cluster, NULL, &hosts, &err) < 0) {
		json_decref(groups);
		json_decref(out);
		return reply_err(rq, &err);
	}
	json_array_foreach(groups, i, g) {
		json_t *list = json_array();
		json_array_foreach(hosts, k, h)
			if (json_equal(json_object_get(h, "grp"), json_object_get(g, "name")))
				json_array_append_new(list, meta_host(h));
		json_array_append_new(out, json_pack("{s:O,s:o}", "name", json_object_get(g, "name"),
						     "hosts", list));
	}
	json_decref(groups);
	json_decref(hosts);
	reply_json(rq, 200, json_pack("{s:s,s:o}", "name", rq->who.cluster, "groups", out));
}
