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
 * HERR_UNAVAIL when the server has no metric store. A metric the hosts
 * report with scope="host" as well as scope="machine" (a local host's
 * cpu_busy_pct, mem_*) aggregates only the scope="host" series; without
 * any in the window, every series counts (a second lookup). Thread-safe;
 * cost is proportional to the hosts x samples in the window. */
/* tsdb_agg() of metric over the series m[0..nm) select, reading only the
 * scope="host" ones when there are any in [from, to] (the rule above);
 * m must have room for nm + 1 matchers. Policies (metrics_group_agg) and
 * the API's group aggregates (console, `herd metrics query --group`) both
 * use it, so they show the same figure. */
struct tsdb_matcher;
int metrics_agg_scoped(struct tsdb *db, const char *metric, struct tsdb_matcher *m, size_t nm,
		       enum expr_agg agg, int64_t from, int64_t to, int64_t step_ms,
		       struct tsdb_agg_point **out, size_t *n, struct herr *err);

int metrics_group_agg(struct server *s, const char *cluster, const char *group,
		      const char *metric, enum expr_agg agg, int64_t now_ms, int64_t window_ms,
		      int64_t step_ms, const char *const *exclude_hosts, size_t nexclude,
		      struct tsdb_agg_point **out, size_t *n, struct herr *err);

/* The newest value of metric on each host of cluster/group with a sample
 * at or after since_ms (the hosts' own scope="host" series when there are
 * any, as metrics_agg_scoped), at most max hosts: *vals owned (free()), *n
 * of them. `herd policy check` predicts from these. HERR_UNAVAIL without a
 * metric store. */
int metrics_group_latest(struct server *s, const char *cluster, const char *group,
			 const char *metric, int64_t since_ms, size_t max, double **vals, size_t *n,
			 struct herr *err);

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

/* Called after each batch of an agent's push is stored whole (every
 * sample of it accepted: a batch the store refused part of, e.g. samples
 * out of order or a series over quota, is not passed on), on the HTTP
 * thread that took it: the batch's time and samples, whose first three
 * labels are host, group and cluster. For remote_write out (ctl/rwout.c),
 * which sets it once at start. Must not block or do I/O. */
typedef void (*metrics_store_fn)(struct server *s, int64_t ts_ms, const struct tsdb_sample *smp,
				 size_t n);
extern metrics_store_fn metrics_store_hook;

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
 * it: {"version","push_interval_s","monitors","thresholds","push_formats"}
 * (owned; push_formats: ["json","protobuf"], the bodies a push may have,
 * docs/agent-metrics.md). version changes
 * whenever the rest does. Monitors that cannot be read are left out.
 * Computed from the store once per change of any resource (model/res.h's
 * generation), kept in memory (bounded) per cluster/group in between. */
json_t *metrics_agent_config(struct server *s, const char *cluster, const char *group);
/* The "thresholds" of the agent config from a group's policy rows (name,
 * spec; NULL = none): each policy's policy_thresholds, each once, sorted,
 * at most PUSH_MAX_THRESHOLDS, as [{"metric","op","value"}] (owned). Pure. */
json_t *metrics_thresholds_json(const json_t *rows);

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

/* A push decoded and checked by metrics_push_decode(), in one walk of its
 * JSON: the samples to store, batch after batch, each batch its series,
 * then one monitor_up per monitor, then (the last batch, when the push
 * reports dropped batches) agent_dropped_batches_total; every sample's
 * labels begin with 3 slots for host, group and cluster, which
 * metrics_push_ingest() fills for the pushing host. Strings are borrowed
 * from the JSON (or the protobuf body's arena), which must outlive it. An agent's push (one batch of ~35
 * series of one label) fits in the struct itself; bigger ones grow on the
 * heap (metrics_push_release). */
#define PUSH_STACK_BATCHES 4
#define PUSH_STACK_SAMPLES 64
#define PUSH_STACK_LABELS (PUSH_STACK_SAMPLES * 5)
#define PUSH_STACK_MONITORS 16

struct metrics_push_batch {
	int64_t ts_ms;
	size_t smp0, nsmp;            /* its samples: samples[smp0 .. smp0 + nsmp) */
	size_t nseries;               /* of which series (the rest: monitors, dropped) */
	size_t mon0, nmon;            /* its monitors: monitors[mon0 .. mon0 + nmon) */
};

struct metrics_push_monitor {
	const char *name, *state, *error;   /* error: NULL when none */
};

struct metrics_push {
	struct metrics_push_batch *batches;
	struct tsdb_sample *samples;
	struct tsdb_label *labels;
	struct metrics_push_monitor *monitors;
	size_t nbatches, nsamples, nlabels, nmonitors;
	size_t capbatches, capsamples, caplabels, capmonitors;
	bool has_dropped;
	uint64_t dropped;             /* batches the agent reports lost */
	struct metrics_push_batch batches_stack[PUSH_STACK_BATCHES];
	struct tsdb_sample samples_stack[PUSH_STACK_SAMPLES];
	struct tsdb_label labels_stack[PUSH_STACK_LABELS];
	struct metrics_push_monitor monitors_stack[PUSH_STACK_MONITORS];
};

/* Checks a whole push (batches: array of {"ts_ms","series","monitors"};
 * dropped: the agent's lost batches, may be NULL; now_ms for the clock
 * skew check) and decodes it into *p. HERR_INVALID naming the field
 * ("batches[0].series[3].name") on the first mistake; nothing is stored
 * either way. metrics_push_release(p) after, even on error. */
int metrics_push_decode(json_t *batches, json_t *dropped, int64_t now_ms, struct metrics_push *p,
			struct herr *err);
/* The same from a protobuf body decoded by pushwire_decode (src/lib/
 * pushwire.h): the same checks by the same code, the same messages and
 * fields, labels named by their index ("batches[0].series[3].labels[1]
 * .name"). Strings are borrowed from w's arena, which must outlive *p. */
struct pushwire_push;
int metrics_push_decode_wire(const struct pushwire_push *w, int64_t now_ms, struct metrics_push *p,
			     struct herr *err);
void metrics_push_release(struct metrics_push *p);

/* Stores a decoded push of host h: its labels host/group/cluster added to
 * each sample; the cluster's quotas apply (cached with the configuration)
 * (a refusal is logged and, at most hourly, recorded as an activity). Then
 * the monitor states of the newest batch are kept and metrics_on_push() is
 * told the metric names. Errors: HERR_UNAVAIL without a metric store, or
 * the store's error, in which case the batches before the failing one are
 * stored and nothing else is done. */
int metrics_push_ingest(struct server *s, const struct metrics_host *h, struct metrics_push *p,
			struct metrics_push_result *out, struct herr *err);

/* --- remote write: Prometheus's remote_write into the store ---
 * A WriteRequest body (src/lib/promwire.h, its limits) from POST
 * /api/v1/write. Each series names its herd host by the label host_label
 * (else `instance`, its :port dropped): "NAME" (a live host of that name in
 * one cluster) or "CLUSTER/NAME". A series of a known host is stored as the
 * host's agent series are: herd's host/group/cluster labels replace any the
 * sender gave, the cluster's series quotas apply, and a group some policy
 * scales is told (metrics_on_push, no metric names). Every sample gets one
 * outcome, counted in the result and in running totals. */
enum metrics_rw_outcome {
	RW_STORED,         /* in the store */
	RW_UNKNOWN_HOST,   /* its series names no live herd host: not stored */
	RW_QUOTA,          /* a new series over the host's or cluster's quota */
	RW_INVALID,        /* a name, label or timestamp herd cannot store */
	RW_REJECTED,       /* out of order, duplicate or too old (the store's rules) */
	RW_NOUTCOMES
};

struct metrics_rw_result {
	uint64_t samples[RW_NOUTCOMES];
};

/* "stored", "unknown_host", "quota", "invalid", "rejected". */
const char *metrics_rw_outcome_name(enum metrics_rw_outcome o);

/* Decodes and stores one body. Errors, nothing stored: promwire's
 * HERR_TOOBIG / HERR_INVALID (what is wrong), HERR_UNAVAIL without a metric
 * store; after decoding, the store's error (what was appended before it
 * stays: a sender retrying sends duplicates, which the store refuses). */
int metrics_remote_write(struct server *s, const void *body, size_t len, const char *host_label,
			 int64_t now_ms, struct metrics_rw_result *out, struct herr *err);

/* Samples of every outcome since the server started
 * (herd_remote_write_received_samples_total). */
void metrics_remote_write_totals(struct metrics_rw_result *out);

#endif
