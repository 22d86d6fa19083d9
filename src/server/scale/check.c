/* check.c - `herd policy check CLUSTER/GROUP` and the warning on apply: the
 * group's step policies and a load (the what-if given, else the hosts'
 * latest values of the rules' metric, else the group's `expect`) through
 * the pure predictor (flap.c), one finding per scale-out rule. This file
 * only loads and shapes; docs/autoscaling.md, "Flapping". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/promsrc.h"
#include "flap.h"
#include "model/kind.h"
#include "model/metrics.h"
#include "model/res.h"
#include "scale.h"
#include "util.h"
#include "xalloc.h"

#define CHECK_MAX_POLICIES 64

/* The worst of two verdicts: flapping, then cannot tell, then ok. */
static enum flap_verdict
worse(enum flap_verdict a, enum flap_verdict b)
{
	static const int rank[] = { 0, 3, 3, 2 };

	return rank[b] > rank[a] ? b : a;
}

/* The newest value of each PromQL policy's query (ctl/promsrc.h), kept by
 * the query thread: "promql": [{policy, query, value|null, why}]. */
static void
promql_values(const char *cluster, const char *group, const struct policy *pol, size_t npol,
	      json_t *out)
{
	json_t *a = NULL;

	for (size_t i = 0; i < npol; i++) {
		char why[PROMSRC_WHY_MAX];
		int64_t ts = 0;
		double v = NAN;
		bool known;

		if (pol[i].prom_url[0] == '\0')
			continue;
		known = promsrc_latest(cluster, group, &pol[i], &v, &ts, why, sizeof(why));
		if (a == NULL)
			a = json_array();
		json_array_append_new(a, json_pack("{s:s,s:s,s:o,s:s}", "policy", pol[i].name, "query",
						   pol[i].prom_query, "value",
						   known ? json_real(v) : json_null(), "why",
						   known ? "" : why));
	}
	if (a)
		json_object_set_new(out, "promql", a);
}

int
policy_check(struct server *s, const char *cluster, const char *group,
	     const struct flap_whatif *wi, json_t **out, struct herr *err)
{
	struct policy pol[CHECK_MAX_POLICIES];
	struct res gr;
	json_t *rows = NULL, *row, *findings = json_array(), *expect;
	char scope[140], lasts[32] = "";
	const char *metric = NULL, *source;
	enum flap_metric_kind kind = FLAP_ADDITIVE;
	enum flap_verdict all = FLAP_OK;
	struct flap_load l;
	double *v = NULL, load = NAN;
	size_t npol = 0, nv = 0, i;
	int rc, desired;

	*out = NULL;
	memset(&gr, 0, sizeof(gr));
	memset(&l, 0, sizeof(l));
	snprintf(scope, sizeof(scope), "%s/%s", cluster, group);
	if ((rc = res_get(s->store, &kind_group, cluster, group, &gr, err)) < 0)
		goto fail;
	if ((rc = res_all(s->store, &kind_policy, scope, &rows, err)) < 0)
		goto fail;
	json_array_foreach(rows, i, row) {
		struct herr perr = HERR_INIT;
		if (npol < CHECK_MAX_POLICIES &&
		    policy_parse(json_string_value(json_object_get(row, "name")),
				 json_object_get(row, "spec"), &pol[npol], &perr) == 0 &&
		    pol[npol].kind == POL_STEP)
			npol++;
	}
	desired = scale_spec_int(gr.spec, "desired");
	for (i = 0; i < npol && metric == NULL; i++)
		if (flap_is_scale_out(&pol[i], desired))
			metric = pol[i].cond.metric;
	if (metric)
		kind = flap_metric_kind(metric);
	expect = json_object_get(gr.spec, "expect");
	if (wi && wi->set) {
		int h = wi->hosts > 0 ? wi->hosts : desired;
		source = "what-if";
		v = xcalloc((size_t)(h > 0 ? h : 0) + 1, sizeof(*v));
		flap_load_whatif(kind, wi->load, h, wi->slots, v, &l);
		l.lasts_ms = wi->lasts_ms;
		load = wi->load;
	} else if (metric && metrics_group_latest(s, cluster, group, metric,
						  now_ms() - 3 * s->push_interval_ms, FLAP_MAX_HOSTS,
						  &v, &nv, err) == 0 && nv > 0) {
		source = "hosts";
		l.v = v;
		l.n = nv;
	} else if (json_is_object(expect) && json_object_get(expect, "load")) {
		int64_t ms = 0;
		int h = scale_spec_int(expect, "hosts") > 0 ? scale_spec_int(expect, "hosts") : desired;
		herr_clear(err);
		source = "expect";
		free(v);
		v = xcalloc((size_t)(h > 0 ? h : 0) + 1, sizeof(*v));
		load = json_number_value(json_object_get(expect, "load"));
		flap_load_whatif(kind, load, h, json_number_value(json_object_get(expect, "slots")),
				 v, &l);
		if (json_string_value(json_object_get(expect, "lasts")))
			parse_duration_ms(json_string_value(json_object_get(expect, "lasts")), &ms);
		l.lasts_ms = ms;
	} else {
		herr_clear(err);
		source = "none";
	}
	l.min = scale_spec_int(gr.spec, "min");   /* after the load: flap_load_whatif clears l */
	l.max = scale_spec_int(gr.spec, "max");
	if (l.min < 0 || l.max < l.min) {
		l.min = 0;
		l.max = desired > 0 ? desired : 0;   /* unknown bounds: no step can be predicted */
	}
	for (i = 0; i < npol; i++) {
		struct flap_finding f;

		if (!flap_is_scale_out(&pol[i], desired))
			continue;
		if (strcmp(source, "none") == 0) {
			memset(&f, 0, sizeof(f));
			f.verdict = FLAP_UNKNOWN;
			snprintf(f.policy, sizeof(f.policy), "%s", pol[i].name);
			snprintf(f.text, sizeof(f.text), "%s: no host of %s reported %s in the last %llds"
				 " and the group has no expect: cannot tell (give --load)", pol[i].name,
				 scope, pol[i].cond.metric, (long long)(3 * s->push_interval_ms / 1000));
		} else {
			flap_decide(pol, npol, i, kind, &l, &f);
		}
		all = worse(all, f.verdict);
		json_array_append_new(findings, json_pack("{s:s,s:s,s:s?,s:i,s:i,s:s}", "policy",
			f.policy, "verdict", flap_verdict_name(f.verdict), "scale_in",
			f.other[0] ? f.other : NULL, "from", f.from, "to", f.to, "text", f.text));
	}
	if (l.lasts_ms > 0)
		snprintf(lasts, sizeof(lasts), "%llds", (long long)(l.lasts_ms / 1000));
	*out = json_pack("{s:s,s:s,s:s?,s:s,s:s,s:i,s:s,s:o}", "cluster", cluster, "group", group,
			 "metric", metric, "metric_kind", kind == FLAP_ADDITIVE ? "additive" : "intensive",
			 "source", source, "hosts", (int)l.n, "verdict", flap_verdict_name(all),
			 "findings", findings);
	findings = NULL;
	if (isfinite(load))
		json_object_set_new(*out, "load", json_real(load));
	if (l.slots > 0)
		json_object_set_new(*out, "slots", json_real(l.slots));
	if (lasts[0])
		json_object_set_new(*out, "lasts", json_string(lasts));
	promql_values(cluster, group, pol, npol, *out);
	rc = 0;
fail:
	free(v);
	json_decref(rows);
	json_decref(findings);
	res_release(&gr);
	return rc;
}
