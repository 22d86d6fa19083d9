/* metrics.h - what the rest of the server uses of the metrics API
 * (api-metrics.c): the group aggregate the autoscaler decides on, called
 * in-process without HTTP, and the hook that tells it a push arrived, so
 * policies are evaluated when data changes rather than on a timer. */
#ifndef HERD_METRICS_H
#define HERD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "expr.h"
#include "herr.h"
#include "server.h"
#include "tsdb/tsdb.h"

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

/* Called after each push is stored, on the HTTP thread that took it, with
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

#endif
