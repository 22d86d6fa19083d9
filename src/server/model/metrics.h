/* model/metrics.h - the metrics model over the metric store (tsdb/): a
 * decoded agent push stored for its host under the cluster's series quotas,
 * the hosts' identities and monitor states kept in memory, the monitor
 * configuration agents poll, a host's series summary, and the group
 * aggregate the autoscaler decides on, called in-process without HTTP, with
 * the hook that tells it a push arrived, so policies are evaluated when data
 * changes rather than on a timer. api/api-metrics.c translates HTTP. */
#ifndef HERD_MODEL_METRICS_H
#define HERD_MODEL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "expr.h"
#include "herr.h"
#include "server.h"
#include "tsdb/tsdb.h"

/* What one push may carry (the agent's side: src/lib/agent-contract.h). */
#define PUSH_MAX_SERIES 10000     /* per batch */
#define PUSH_MAX_LABELS 8         /* per series, besides host/group/cluster */
#define PUSH_LABEL_MAX 128        /* label value, bytes */
#define PUSH_MAX_MONITORS 64      /* per batch */
#define PUSH_ERROR_MAX 1024       /* monitor error text accepted, bytes */
#define PUSH_FUTURE_MS (10 * 60 * 1000) /* clock skew tolerated */

/* The aggregate `agg(metric)` across the hosts of group cluster/group, at
 * steps of step_ms ending at multiples of step_ms, over (now_ms - window_ms,
 * now_ms]. Each step holds the value across the hosts that had a sample in
 * it and how many did (nseries; 0 = no data, value NaN). Hosts named in
 * exclude_hosts (e.g. still warming up) do not count. *out: owned array
 * (free()) of *n points, oldest first. Errors: HERR_INVALID (step, window),
 * HERR_UNAVAIL when the server has no metric store. Thread-safe; cost is
 * proportional to the hosts x samples in the window. */
int metrics_group_agg(struct server *s, const char *cluster, const char *group,
		      const char *metric, enum expr_agg agg, int64_t now_ms, int64_t window_ms,
		      int64_t step_ms, const char *const *exclude_hosts, size_t nexclude,
		      struct tsdb_agg_point **out, size_t *n, struct herr *err);

/* Called after each push to a group that some policy scales is stored
 * (known from the cache behind the agent configuration: a policy written
 * since is seen by the next push), on the HTTP thread that took it, with
 * the host's cluster and group and the distinct metric names it carried
 * (borrowed, valid during the call). Must not block: hand work to another
 * thread. */
typedef void (*metrics_push_fn)(struct server *s, const char *cluster, const char *group,
				const char **metrics, size_t n);

/* The autoscaler sets this (once, at start; NULL = nobody listens). */
extern metrics_push_fn metrics_push_hook;

/* Calls metrics_push_hook when set. A weak default: a strong definition
 * elsewhere replaces it, but only when its object file is linked for some
 * other reason (libherd.a is an archive), so setting metrics_push_hook is
 * the dependable way. */
void metrics_on_push(struct server *s, const char *cluster, const char *group,
		     const char **metrics, size_t n);

/* Monitor states reported by agents (kept in memory). */
struct monitor_state {
	char host[96], cluster[64], group[64];
	char name[64];
	char state[8];        /* "ok", "failed", "timeout" */
	char error[256];
	int64_t ts_ms;        /* of the batch that reported it */
};

/* Copies the states of hosts matching cluster/group/host (NULL or "" =
 * any) into *out (owned array, free()); returns their count. */
size_t metrics_monitor_states(const char *cluster, const char *group, const char *host,
			      struct monitor_state **out);

/* The metric series of host cluster/host as `herd host show` prints them:
 * {"series","max_series","refused","refused_reason","last_refused",
 * "cluster_series","cluster_max_series"} (owned), or NULL without a store. */
json_t *metrics_host_json(struct server *s, const char *cluster, const char *host);

/* The identity of a pushing host (hosts never change group). */
struct metrics_host {
	char id[16], name[96], cluster[64], group[64];
};

/* Fills *out for host host_id, from a cache (bounded) or the store.
 * HERR_AUTH when no such host, or a store error. Thread-safe. */
int metrics_host_ident(struct server *s, const char *host_id, struct metrics_host *out,
		       struct herr *err);

/* The monitor configuration of the hosts of cluster/group, as agents poll
 * it: {"version","push_interval_s","monitors"} (owned). version changes
 * whenever the rest does. Monitors that cannot be read are left out.
 * Computed from the store once per change of any resource (model/res.h's
 * generation), kept in memory (bounded) per cluster/group in between. */
json_t *metrics_agent_config(struct server *s, const char *cluster, const char *group);

/* Its version alone, as a push answers it (same cache). */
json_int_t metrics_agent_config_version(struct server *s, const char *cluster,
					const char *group);

/* How many times the configuration was computed from the store since the
 * server started (herd_agent_config_builds_total on /metrics). */
uint64_t metrics_agent_config_builds(void);

/* A push value: a JSON number, or "NaN", "+Inf", "Inf", "-Inf". False (and
 * *out untouched) for anything else. */
bool metrics_value_parse(const json_t *v, double *out);

/* True for label names the server sets itself: host, group, cluster, __*. */
bool metrics_label_reserved(const char *name);

/* What metrics_push_ingest() did. */
struct metrics_push_result {
	size_t accepted;                  /* samples stored */
	size_t rejected;                  /* samples refused (old, duplicate, quota) */
	size_t refused;                   /* new series refused by the quotas */
	struct tsdb_append_info refusal;  /* reason and host figures of the last refusal */
	json_int_t config_version;        /* of the host's group, as the push used it */
};

/* Stores a push of host h already validated by the caller (batches: array
 * of {"ts_ms","series","monitors"}; dropped: the agent's lost batches, may
 * be NULL), both borrowed: each batch's series with labels host/group/
 * cluster added, monitor_up per monitor, agent_dropped_batches_total on the
 * last batch; the cluster's quotas apply (cached with the configuration) (a refusal is logged and, at most
 * hourly, recorded as an activity). Then the monitor states of the newest
 * batch are kept and metrics_on_push() is told the metric names. Errors:
 * HERR_UNAVAIL without a metric store, or the store's error, in which case
 * the batches before the failing one are stored and nothing else is done. */
int metrics_push_ingest(struct server *s, const struct metrics_host *h, json_t *batches,
			json_t *dropped, struct metrics_push_result *out, struct herr *err);

#endif
