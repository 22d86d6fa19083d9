/* ctl/promsrc.h - PromQL as a policy metric source (docs/prometheus.md): a
 * thread that runs the instant query of every policy with `source:
 * prometheus` once per push round (GET URL/api/v1/query, a timeout and a
 * response size limit), keeps the recent results per policy in memory, and
 * gives them to the autoscaler as aggregate steps (promsrc_agg, a
 * scale_agg_fn) so `when` and target tracking decide on them through the
 * same pure path as herd's metrics. A result that is not one finite number
 * (the query failed, an error status, an empty vector, several series,
 * NaN/Inf) is unknown: a step without data, never a scale-in. */
#ifndef HERD_CTL_PROMSRC_H
#define HERD_CTL_PROMSRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herr.h"
#include "model/policy.h"
#include "scale/scale.h"
#include "server.h"

#define PROMSRC_TIMEOUT_MS 5000           /* one query, at most (and at most a round) */
#define PROMSRC_MAX_RESPONSE (256u << 10) /* bytes of one answer */
#define PROMSRC_MAX_POLICIES 256          /* PromQL policies queried; more are unknown */
#define PROMSRC_KEEP 1024                 /* results kept per policy (rounds) */
#define PROMSRC_WHY_MAX 200

/* An instant query's answer (Prometheus's JSON, len bytes): 0 with *v when
 * it is one finite number (a scalar, or a vector of exactly one sample);
 * else -1 with why (what was wrong, for the activity). Pure. */
int promsrc_answer_parse(const char *body, size_t len, double *v, char *why, size_t n);

/* The autoscaler's context for promsrc_agg: the group, and how many of its
 * hosts are ready (a known value counts as reported by all of them: the
 * query speaks for the group). */
struct promsrc_ctx {
	const char *cluster, *group;
	int ready;
};

/* scale_agg_fn over the kept results of policy p of ctx's group: steps of
 * step_ms ending at multiples of it over (now - span, now], each the newest
 * result of the round it ends (nseries 0 when none or unknown). */
int promsrc_agg(void *ctx, const struct policy *p, int64_t now_ms, int64_t span_ms,
		int64_t step_ms, const char *const *ex, size_t nex, struct agg_point **out,
		size_t *n, struct herr *err);

/* The newest result of p of cluster/group: true with *v (and *ts_ms) when
 * it is known; false with why otherwise ("not queried yet" when none). */
bool promsrc_latest(const char *cluster, const char *group, const struct policy *p, double *v,
		    int64_t *ts_ms, char *why, size_t n);

int promsrc_start(struct server *s, struct herr *err);
void promsrc_stop(struct server *s);

#endif
