/* api-host.c - hosts as the API shows them (state, addresses, timings, the
 * result of each init script, metric series against the quota), terminate and scale-in protection, and the
 * activity log. Hosts are made by the reconcile controller, never by POST. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "buf.h"
#include "ctl/ctl.h"
#include "model/host.h"
#include "model/metrics.h"
#include "prov/prov.h"
#include "util.h"

/* The largest host list answer: 5,000 hosts of about 700 bytes each fit
 * many times over (as api-resource.c's lists). */
#define HOST_ANSWER_MAX ((size_t)64 << 20)

/* GET /v1/hosts[?cluster=C][&group=G][&state=S][&all=1][&limit=N][&after=CURSOR]:
 * a page of at most limit hosts (default and most HOST_PAGE_MAX), with
 * "next" to pass as after= while there are more and "total" on all pages;
 * printed by the model straight into the answer's buffer, a line as
 * httpd.c sends JSON. */
void
api_host_list(struct req *rq)
{
	struct herr err = HERR_INIT;
	const char *all = req_query(rq, "all"), *lim = req_query(rq, "limit");
	struct host_page q = {
		.cluster = req_query(rq, "cluster"), .grp = req_query(rq, "group"),
		.state = req_query(rq, "state"), .all = all && *all, .limit = HOST_PAGE_MAX,
		.after = req_query(rq, "after"),
	};
	struct buf b;
	size_t n;
	long v;

	if (lim && parse_long(lim, 1, HOST_PAGE_MAX, &v) < 0)
		return reply_errf(rq, HERR_INVALID, "limit", "must be between 1 and %d", HOST_PAGE_MAX);
	q.limit = lim ? (int)v : HOST_PAGE_MAX;
	if (q.state && *q.state && hstate_parse(q.state) == HS__COUNT)
		return reply_errf(rq, HERR_INVALID, "state", "is not a host state");
	if (q.after && *q.after == '\0')
		q.after = NULL;
	buf_init(&b, HOST_ANSWER_MAX);
	if (host_page_write(rq->srv->store, &q, &b, &err) == 0 && buf_add(&b, "\n", 1) < 0)
		herr_set(&err, HERR_TOOBIG, "the host list is too large");
	if (err.code) {
		buf_release(&b);
		return reply_err(rq, &err);
	}
	n = b.len;
	reply_raw(rq, 200, "application/json", buf_steal(&b), n, false);
}

void
api_host_get(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *row = host_find(rq->srv->store, req_param(rq, 0), req_query(rq, "cluster"), &err);
	json_t *o, *init = NULL;

	if (row == NULL)
		return reply_err(rq, &err);
	o = host_to_json(row);
	/* a local host's cgroup and the limits in effect there (the kernel's) */
	prov_local_cgroup_json(json_string_value(json_object_get(row, "instance_id")),
			       json_string_value(json_object_get(row, "id")), o);
	if (host_init_results(rq->srv->store, json_string_value(json_object_get(row, "id")), &init,
			      &err) == 0)
		json_object_set_new(o, "init", init);
	/* its metric series against the quota, and what was refused */
	{
		json_t *m = metrics_host_json(rq->srv, json_string_value(json_object_get(row, "cluster")),
					      json_string_value(json_object_get(row, "name")));
		if (m)
			json_object_set_new(o, "metrics", m);
	}
	json_decref(row);
	reply_json(rq, 200, o);
}

void
api_host_terminate(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *row = host_find(rq->srv->store, req_param(rq, 0), req_query(rq, "cluster"), &err);
	const char *st;

	if (row == NULL)
		return reply_err(rq, &err);
	st = json_string_value(json_object_get(row, "state"));
	if (strcmp(st, "terminated") == 0 || strcmp(st, "terminating") == 0) {
		reply_json(rq, 200, host_to_json(row));
		json_decref(row);
		return;
	}
	/* The group's desired size drops by one unless ?replace=1: like AWS
	 * TerminateInstanceInAutoScalingGroup with ShouldDecrementDesiredCapacity. */
	if (ctl_terminate_host(rq->srv, row, req_query(rq, "replace") != NULL, rq->who.name, &err) < 0) {
		json_decref(row);
		return reply_err(rq, &err);
	}
	json_decref(row);
	row = host_find(rq->srv->store, req_param(rq, 0), req_query(rq, "cluster"), &err);
	reply_json(rq, 200, row ? host_to_json(row) : json_object());
	json_decref(row);
	server_kick(rq->srv);
}

void
api_host_protect(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *row = host_find(rq->srv->store, req_param(rq, 0), req_query(rq, "cluster"), &err);
	bool on = strstr(rq->path, "/unprotect") == NULL;

	if (row == NULL)
		return reply_err(rq, &err);
	if (host_set_protected(rq->srv->store, json_string_value(json_object_get(row, "id")), on,
			       &err) < 0) {
		json_decref(row);
		return reply_err(rq, &err);
	}
	json_object_set_new(row, "protected", json_integer(on));
	reply_json(rq, 200, host_to_json(row));
	json_decref(row);
}

void
api_activity_list(struct req *rq)
{
	struct herr err = HERR_INIT;
	const char *cl = req_query(rq, "cluster"), *g = req_query(rq, "group");
	const char *lim = req_query(rq, "limit"), *since = req_query(rq, "since_id");
	json_t *rows = NULL;
	long limit = 200, since_id = 0;

	if (lim && parse_long(lim, 1, 5000, &limit) < 0)
		return reply_errf(rq, HERR_INVALID, "limit", "must be between 1 and 5000");
	if (since && parse_long(since, 0, LONG_MAX, &since_id) < 0)
		return reply_errf(rq, HERR_INVALID, "since_id", "must be an activity id (0 or more)");
	if (activity_list(rq->srv->store, cl, g, since_id, (int)limit, &rows, &err) < 0)
		return reply_err(rq, &err);
	reply_json(rq, 200, json_pack("{s:o}", "items", rows));
}
