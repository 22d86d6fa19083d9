/* api-host.c - hosts as the API shows them (state, addresses, timings, the
 * result of each init script, metric series against the quota), terminate and scale-in protection, and the
 * activity log. Hosts are made by the reconcile controller, never by POST. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "ctl/ctl.h"
#include "metrics.h"
#include "store/store.h"
#include "util.h"

#define HOST_COLS                                                                          \
	"id, name, cluster, grp, seq, template, account, network, state, reason, private_ip," \
	" instance_id, labels, protected, attempt, created_ms, launched_ms, joined_ms,"      \
	" ready_ms, heartbeat_ms, terminated_ms"

static void
set_time(json_t *o, const char *key, json_t *row, const char *col)
{
	json_int_t ms = json_integer_value(json_object_get(row, col));
	char ts[40];

	json_object_set_new(o, key, ms > 0 ? json_string(fmt_time(ms, ts, sizeof(ts))) : json_null());
}

json_t *
host_to_json(json_t *row)
{
	json_t *o = json_object(), *labels;
	json_int_t created = json_integer_value(json_object_get(row, "created_ms"));
	json_int_t ready = json_integer_value(json_object_get(row, "ready_ms"));
	json_int_t launched = json_integer_value(json_object_get(row, "launched_ms"));
	static const char *const copy[] = { "id", "name", "cluster", "state", "reason", "private_ip",
					    "template", "account", "network", "instance_id", NULL };

	for (int i = 0; copy[i]; i++)
		json_object_set(o, copy[i], json_object_get(row, copy[i]));
	json_object_set(o, "group", json_object_get(row, "grp"));
	json_object_set_new(o, "protected", json_boolean(json_integer_value(json_object_get(row, "protected"))));
	labels = json_loads(json_string_value(json_object_get(row, "labels")), 0, NULL);
	json_object_set_new(o, "labels", labels ? labels : json_object());
	set_time(o, "created", row, "created_ms");
	set_time(o, "launched", row, "launched_ms");
	set_time(o, "joined", row, "joined_ms");
	set_time(o, "ready", row, "ready_ms");
	set_time(o, "heartbeat", row, "heartbeat_ms");
	set_time(o, "terminated", row, "terminated_ms");
	json_object_set_new(o, "created_ms", json_integer(created));
	json_object_set_new(o, "launch_ms", launched && created ? json_integer(launched - created) : json_null());
	json_object_set_new(o, "ready_after_ms", ready && created ? json_integer(ready - created) : json_null());
	return o;
}

/* Finds a live host by NAME or CLUSTER/NAME (or id); owned row. */
json_t *
host_find(struct store *st, const char *name, const char *cluster, struct herr *err)
{
	json_t *rows = NULL, *row = NULL;
	const char *slash = strchr(name, '/');
	char cl[64];

	if (slash && cluster == NULL) {
		snprintf(cl, sizeof(cl), "%.*s", (int)(slash - name), name);
		cluster = cl;
		name = slash + 1;
	}
	if (store_q(st, &rows, NULL, err,
		    "SELECT " HOST_COLS " FROM hosts WHERE (name = ? OR id = ?)"
		    " AND (? = '' OR cluster = ?) ORDER BY state = 'terminated', created_ms DESC LIMIT 3",
		    "[ssss]", name, name, cluster ? cluster : "", cluster ? cluster : "") < 0)
		return NULL;
	if (json_array_size(rows) == 0) {
		herr_set(err, HERR_NOTFOUND, "no host named '%s'", name);
	} else {
		json_t *a = json_array_get(rows, 0), *b = json_array_get(rows, 1);
		if (b && strcmp(json_string_value(json_object_get(b, "state")), "terminated") != 0 &&
		    strcmp(json_string_value(json_object_get(a, "cluster")),
			   json_string_value(json_object_get(b, "cluster"))) != 0)
			herr_set(err, HERR_CONFLICT,
				 "host name '%s' is in several clusters: give it as CLUSTER/%s", name,
				 name);
		else
			row = json_incref(a);
	}
	json_decref(rows);
	return row;
}

void
api_host_list(struct req *rq)
{
	struct herr err = HERR_INIT;
	const char *cl = req_query(rq, "cluster"), *g = req_query(rq, "group");
	const char *all = req_query(rq, "all");
	json_t *rows = NULL, *items = json_array(), *row;
	size_t i;

	if (store_q(rq->srv->store, &rows, NULL, &err,
		    "SELECT " HOST_COLS " FROM hosts WHERE (? = '' OR cluster = ?)"
		    " AND (? = '' OR grp = ?) AND (? <> '' OR state <> 'terminated')"
		    " ORDER BY cluster, grp, seq LIMIT 5000",
		    "[sssss]", cl ? cl : "", cl ? cl : "", g ? g : "", g ? g : "", all ? all : "") < 0) {
		json_decref(items);
		return reply_err(rq, &err);
	}
	json_array_foreach(rows, i, row)
		json_array_append_new(items, host_to_json(row));
	json_decref(rows);
	reply_json(rq, 200, json_pack("{s:o}", "items", items));
}

void
api_host_get(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *row = host_find(rq->srv->store, req_param(rq, 0), req_query(rq, "cluster"), &err);
	json_t *o, *init = NULL, *r;
	size_t i;

	if (row == NULL)
		return reply_err(rq, &err);
	o = host_to_json(row);
	if (store_q(rq->srv->store, &init, NULL, &err,
		    "SELECT idx, script, version, exit_code, signal, timed_out, stdout, stderr,"
		    " stdout_truncated, stderr_truncated, started_ms, ended_ms FROM init_results"
		    " WHERE host_id = ? ORDER BY idx",
		    "[s]", json_string_value(json_object_get(row, "id"))) == 0) {
		json_array_foreach(init, i, r) {
			json_object_set_new(r, "timed_out", json_boolean(json_integer_value(json_object_get(r, "timed_out"))));
			json_object_set_new(r, "stdout_truncated", json_boolean(json_integer_value(json_object_get(r, "stdout_truncated"))));
			json_object_set_new(r, "stderr_truncated", json_boolean(json_integer_value(json_object_get(r, "stderr_truncated"))));
			json_object_set_new(r, "duration_ms",
				json_integer(json_integer_value(json_object_get(r, "ended_ms")) -
					     json_integer_value(json_object_get(r, "started_ms"))));
		}
		json_object_set_new(o, "init", init);
	}
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
	if (store_q(rq->srv->store, NULL, NULL, &err, "UPDATE hosts SET protected = ? WHERE id = ?",
		    "[is]", on ? 1 : 0, json_string_value(json_object_get(row, "id"))) < 0) {
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
	long limit = 200;

	if (lim && parse_long(lim, 1, 5000, &limit) < 0)
		return reply_errf(rq, HERR_INVALID, "limit", "must be between 1 and 5000");
	if (activity_list(rq->srv->store, cl, g, since ? atoll(since) : 0, (int)limit, &rows,
			  &err) < 0)
		return reply_err(rq, &err);
	reply_json(rq, 200, json_pack("{s:o}", "items", rows));
}
