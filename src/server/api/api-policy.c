/* api-policy.c - what a policy answers beyond the generic handlers: explain
 * (its last evaluation) and simulate (a replay of recorded history through
 * the autoscaler's decision), and a group's policy check (flapping predicted
 * at its load, scale/check.c). The policy kind itself is
 * model/kind-policy.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "scale/scale.h"
#include "util.h"

/* Finds the policy of the URL (NAME, or ?cluster=&group=). */
static int
policy_lookup(struct req *rq, struct res *r, char *cluster, char *group, struct herr *err)
{
	const char *c = req_query(rq, "cluster"), *g = req_query(rq, "group"), *slash;
	int rc;

	if (c && g) {
		char scope[200];
		snprintf(scope, sizeof(scope), "%s/%s", c, g);
		rc = res_get(rq->srv->store, &kind_policy, scope, req_param(rq, 0), r, err);
	} else {
		rc = res_find(rq->srv->store, &kind_policy, req_param(rq, 0), r, err);
	}
	if (rc < 0)
		return rc;
	slash = strchr(r->scope, '/');
	snprintf(cluster, 64, "%.*s", (int)(slash - r->scope), r->scope);
	snprintf(group, 64, "%s", slash + 1);
	return 0;
}

void
api_policy_explain(struct req *rq)
{
	struct herr err = HERR_INIT;
	char cluster[64], group[64];
	struct res r;
	json_t *e;

	if (policy_lookup(rq, &r, cluster, group, &err) < 0)
		return reply_err(rq, &err);
	e = autoscale_explain(cluster, group, r.name);
	reply_json(rq, 200, json_pack("{s:s,s:s,s:s,s:o,s:o}", "cluster", cluster, "group", group,
				      "name", r.name, "policy", json_deep_copy(r.spec), "last",
				      e ? e : json_null()));
	res_release(&r);
}

void
api_policy_simulate(struct req *rq)
{
	struct herr err = HERR_INIT;
	char cluster[64], group[64];
	json_t *body = req_json(rq), *spec, *out = NULL;
	const char *since;
	int64_t since_ms = 3600 * 1000, now = now_ms();
	struct res r;

	if (body == NULL)
		return;
	since = json_string_value(json_object_get(body, "since"));
	if (since && parse_duration_ms(since, &since_ms) < 0)
		return reply_errf(rq, HERR_INVALID, "since", "must be a duration like 1h");
	if (policy_lookup(rq, &r, cluster, group, &err) < 0)
		return reply_err(rq, &err);
	spec = json_object_get(body, "policy");
	if (spec) {
		/* a policy file to try instead of the stored one: validated like one */
		spec = json_deep_copy(spec);
		json_object_del(spec, "name");
		if (kind_validate(&kind_policy, spec, NULL, "policy", &err) < 0) {
			json_decref(spec);
			res_release(&r);
			return reply_err(rq, &err);
		}
	} else {
		spec = json_incref(r.spec);
	}
	if (policy_simulate(rq->srv, cluster, group, r.name, spec, now - since_ms, now, &out, &err) < 0)
		reply_err(rq, &err);
	else
		reply_json(rq, 200, out);
	json_decref(spec);
	res_release(&r);
}

/* A what-if number of the query: absent leaves *v; bad is an error naming it. */
static int
whatif_num(struct req *rq, const char *key, double lo, double hi, double *v, struct herr *err)
{
	const char *q = req_query(rq, key);
	char *end;

	if (q == NULL)
		return 0;
	*v = strtod(q, &end);
	if (*q == '\0' || *end != '\0' || !isfinite(*v) || *v < lo || *v > hi)
		return herr_field(err, HERR_INVALID, key, "must be a number from %g to %g", lo, hi);
	return 1;
}

/* GET /v1/groups/:name/policy-check[?cluster=][&load=N&hosts=H&slots=S&lasts=D] */
void
api_group_policy_check(struct req *rq)
{
	struct herr err = HERR_INIT;
	struct flap_whatif wi = { 0 };
	const char *cl = req_query(rq, "cluster"), *lasts = req_query(rq, "lasts");
	double hosts = 0;
	struct res r = { 0 };
	json_t *out = NULL;
	int rc;

	rc = whatif_num(rq, "load", 0, 1e9, &wi.load, &err);
	if (rc < 0 || whatif_num(rq, "hosts", 1, 1000, &hosts, &err) < 0 ||
	    whatif_num(rq, "slots", 0, 1e9, &wi.slots, &err) < 0)
		return reply_err(rq, &err);
	wi.set = rc == 1;
	wi.hosts = (int)hosts;
	if (lasts && (parse_duration_ms(lasts, &wi.lasts_ms) < 0 || wi.lasts_ms <= 0 ||
		      wi.lasts_ms > 86400000))
		return reply_errf(rq, HERR_INVALID, "lasts", "must be a duration from 1s to 24h");
	if (!wi.set && (req_query(rq, "hosts") || req_query(rq, "slots") || lasts))
		return reply_errf(rq, HERR_INVALID, "load", "is required with hosts, slots or lasts");
	rc = cl ? res_get(rq->srv->store, &kind_group, cl, req_param(rq, 0), &r, &err)
		: res_find(rq->srv->store, &kind_group, req_param(rq, 0), &r, &err);
	if (rc < 0)
		return reply_err(rq, &err);
	if (policy_check(rq->srv, r.scope, r.name, &wi, &out, &err) < 0)
		reply_err(rq, &err);
	else
		reply_json(rq, 200, out);
	res_release(&r);
}
