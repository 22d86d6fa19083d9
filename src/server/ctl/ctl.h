/* ctl.h - the controllers: the reconcile loop that makes each group's hosts
 * match its desired size (decide = pure function in decide.c, act = I/O in
 * reconcile.c), host lifecycle transitions, and local network setup. */
#ifndef HERD_CTL_H
#define HERD_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"
#include "model/host.h"
#include "prov/prov.h"
#include "server.h"

/* Host states (enum hstate) and the one writer of them: model/host.h. */

/* --- decide (pure: no I/O, time passed in) --- */
struct rc_group {
	const char *cluster, *name;
	int desired, min, max;
	const char *const *after;   /* names of groups in the same cluster */
	int nafter;
	const char *termination;    /* "newest" (default), "oldest" */
	int64_t max_provision_ms;   /* a host not ready by then is failed */
	int64_t unhealthy_after_ms; /* heartbeat silence that makes it unhealthy */
	int max_unhealthy_pct;      /* above this share, replace nothing */
	int64_t backoff_base_ms;    /* wait after a host failed; doubles with each */
	int64_t backoff_max_ms;     /*   failure since a host last became ready */
	int64_t keep_failed_ms;     /* failed hosts stay this long for inspection */
	bool drain;                 /* scale-in victims are drained (before_terminate) first */
};

struct rc_host {
	const char *id, *name, *cluster, *group;
	enum hstate state;
	int seq;
	bool protected_;
	int64_t created_ms, updated_ms, ready_ms, heartbeat_ms;
	double metric;              /* termination least:<metric>: its latest value (NaN = none) */
	bool behind;                /* launched from another template version than its
				     * group's current one: a scale-in takes it first */
	bool leaving;               /* taken out by a refresh: on its way out, never counted,
				     * chosen as a victim nor taken back */
};

enum rc_kind { RC_LAUNCH, RC_TERMINATE, RC_FAIL, RC_UNHEALTHY, RC_WAIT, RC_DRAIN, RC_RECLAIM };

struct rc_action {
	enum rc_kind kind;
	const char *cluster, *group;   /* borrowed from the inputs */
	const char *host_id;           /* for TERMINATE/FAIL/UNHEALTHY */
	char cause[32];                /* "scale_in", "replace", "failed", ... */
	char reason[256];
};

/* Computes the actions that bring hosts toward the groups' desired sizes.
 * Failed hosts (kept for inspection) are the group's failure record: after
 * n of them failed since a host of the group last became ready, nothing is
 * launched until the last failure's updated_ms + base * 2^(n-1) (at most
 * backoff_max_ms), so a broken template does not loop, and a restarted
 * server keeps backing off. heard_since_ms is when herd last started to
 * listen (start, or the end of a pause of the controller): a host's silence
 * is counted from max(its last heartbeat, heard_since_ms), so an outage of
 * herd is not taken for an outage of the hosts (nor is a provisioning host
 * failed before herd listened for unhealthy_after). A silent host that is its
 * group's last ready one is kept (RC_WAIT "last_ready") until a replacement,
 * launched first, is ready. Writes at most max actions to out; returns how
 * many. */
size_t reconcile_decide(const struct rc_group *groups, size_t ng, const struct rc_host *hosts,
			size_t nh, int64_t now_ms, int64_t heard_since_ms, struct rc_action *out,
			size_t max);

/* When herd has been listening since, as of a pass starting at now_ms:
 * now at the first pass (last_pass_ms 0), and again after a gap of more than
 * pause_ms between the last pass and this one (the process was stopped or
 * suspended, the store stalled, the clock stepped forward: heartbeats then
 * were lost); otherwise heard_since_ms unchanged. The last pass's acting
 * (last_act_ms: provider calls, LB drains) is not part of the gap: the API
 * went on taking heartbeats meanwhile. */
int64_t reconcile_heard_since(int64_t heard_since_ms, int64_t last_pass_ms, int64_t last_act_ms,
			      int64_t now_ms, int64_t pause_ms);

/* --- act --- */
int ctl_start(struct server *s, struct herr *err);
void ctl_stop(struct server *s);
/* Marks a host for termination (desired - 1 unless replace) and records
 * the activity; the controller does the provider work. */
int ctl_terminate_host(struct server *s, json_t *host_row, bool replace, const char *who,
		       struct herr *err);
/* Terminates every host and removes every network this data dir made,
 * deleted ones still pending included (herd server --teardown). A deleted
 * network's provider side is removed by the reconcile pass: the API records
 * it (net_gone_add, model/res.h) and kicks the controller. */
int ctl_teardown(struct server *s, struct herr *err);
/* herd server --teardown when the store cannot be opened (ctl/sweep.c):
 * per provider driver built in, whether it can find this data dir's hosts
 * without the store (prov_ops.sweep), what it removed and what not. */
struct ctl_sweep {
	char driver[32];
	bool can;               /* it has a sweep: it looked */
	int rc;                 /* 0, or the sweep's first error (msg) */
	char msg[512];
	struct prov_sweep got;
};
/* Runs every driver's sweep for s->instance and s->data_dir (no store, no
 * account); fills out[0..max), returns how many. */
size_t ctl_teardown_sweep(struct server *s, struct ctl_sweep *out, size_t max);
/* Pure: the report of r[0..n), one line each, into buf (len bytes, cut to
 * fit); 1 when something found could not be removed, else 3 when a driver
 * could not look (it is said to have left its hosts, never to be done),
 * else 0. */
int ctl_sweep_report(const struct ctl_sweep *r, size_t n, char *buf, size_t len);
/* The URL agents in network `net` use to reach the server. */
void ctl_server_url_for(struct server *s, const char *network_cidr, char *out, size_t n);
/* Host state change reported by an agent (or a timeout); records activity. */
int ctl_host_state(struct server *s, const char *host_id, enum hstate to, const char *reason,
		   struct herr *err);

/* Asks account `name`'s driver whether the account works (credentials,
 * zone, clock: prov_ops.check) on a provider opened for this call only.
 * 0 and *out (owned: {"account","driver","ok","message"}, and when not ok
 * "code" (herr_word) and "field": the provider's refusal is an answer, its
 * message naming the provider's error, e.g. "QingCloud 1200: ..."), or
 * HERR_NOTFOUND (no such account) or -ENOTSUP (driver not built in). Blocks
 * for the provider's calls: API handlers call it, never a driver directly. */
int ctl_account_check(struct server *s, const char *name, json_t **out, struct herr *err);

/* The warning an apply answers for group cluster/group when it may grow
 * (its max less its live hosts) by more hosts than its driver can launch on
 * this machine now (prov_hosts_left: the local driver's neighbour table),
 * naming both figures and what bounds the room; NULL when it fits, when the
 * driver has no such bound or when anything cannot be read. Owned. */
json_t *ctl_room_warning(struct server *s, const char *cluster, const char *group);

/* --- retention (retain.c) --- */

#define RETAIN_ACTIVITIES_DEFAULT_MS (30LL * 86400 * 1000)
#define RETAIN_AUDIT_DEFAULT_MS (90LL * 86400 * 1000)
#define RETAIN_RUNS_DEFAULT_MS (14LL * 86400 * 1000)
#define RETAIN_HOSTS_DEFAULT_MS (7LL * 86400 * 1000)
#define RETAIN_MIN_MS 1000LL               /* a shorter --retain-* is refused */
#define RETAIN_PASS_MAX_MS (60LL * 1000)   /* passes at most this far apart */
#define RETAIN_BATCH_ROWS 5000             /* rows per DELETE: the write lock is short */
#define RETAIN_BATCHES_MAX 20              /* per table per pass; the rest waits */
#define RETAIN_POLICY_KEEP_MS (3600LL * 1000) /* max_actions_per_hour's window */

/* How long each table's rows are kept (ms); from server's --retain-*. */
struct retain_opts {
	int64_t activities_ms, audit_ms, runs_ms, hosts_ms;
};

/* Cut-offs (wall ms): rows older go. */
struct retain_cut {
	int64_t activities_ms;
	int64_t policy_keep_ms;    /* policy scale activities from here on stay */
	int64_t audit_ms, runs_ms, hosts_ms;
};

/* Pure. Whether a pass is due at now_ms after one at last_ms (0 = none
 * yet): passes are min(RETAIN_PASS_MAX_MS, the shortest retention) apart,
 * at least 1s, so a retention of seconds (tests) is kept to seconds. */
bool retain_due(const struct retain_opts *o, int64_t last_ms, int64_t now_ms);
/* Pure. The cut-offs at now_ms: now - retention, never below 0. */
void retain_cutoffs(const struct retain_opts *o, int64_t now_ms, struct retain_cut *out);
/* One retention pass at now_ms if due (s->retain_pass_ms): prunes each
 * table in batches of RETAIN_BATCH_ROWS through the model, logs what went
 * at info level. Errors are logged; the next pass tries again. Called by
 * the reconcile loop. */
void retain_pass(struct server *s, int64_t now_ms);

#endif
