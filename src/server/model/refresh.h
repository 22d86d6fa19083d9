/* model/refresh.h - instance refreshes (`herd group refresh`): a group's
 * hosts replaced, batch by batch, by hosts of the template's current
 * version. A refresh is a stored object (refreshes: one a group while it
 * runs or is paused) with its parameters, its state and progress, the old
 * hosts of the batch in hand and the template's spec before (for
 * rollback); refresh_hosts holds each host taken out, written before it is
 * drained, so after a crash none is taken out twice. The controller step
 * that drives it is ctl/refresh.c (its pure decider ctl/refresh-decide.c). */
#ifndef HERD_MODEL_REFRESH_H
#define HERD_MODEL_REFRESH_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"

struct store;

#define REFRESH_BATCH_MAX 100     /* hosts in one batch (and --surge) */
#define REFRESH_WARMUP_MAX_MS (3600LL * 1000)

/* The parameters (flags or the group's `refresh:` defaults). */
struct refresh_params {
	int batch;             /* hosts a batch, when batch_pct is 0 */
	int batch_pct;         /* or a share of desired (rounded up, at least 1) */
	int surge;             /* new hosts launched before old ones are taken out */
	int min_healthy_pct;   /* ready hosts kept: at least this share of desired */
	int64_t warmup_ms;     /* a new host counts once ready this long */
	int pause_after;       /* pause after this many batches (0: never) */
	bool rollback;         /* a failing version restores the old template */
};

/* The defaults: batch 1, surge 1, min_healthy 100%, warm-up 0, no pause,
 * no rollback. */
void refresh_params_default(struct refresh_params *p);

/* Reads the parameters given in o (borrowed: {"batch": N or "N" or "P%",
 * "surge": N, "min_healthy": "P%" or N, "warmup": "30s", "pause_after": N,
 * "rollback": bool}; absent keys keep *p) into *p. A bad value, an unknown
 * key, or surge 0 with min_healthy 100% (no host could ever go) is
 * HERR_INVALID naming path.KEY. Pure. */
int refresh_params_read(const json_t *o, const char *path, struct refresh_params *p,
			struct herr *err);

/* The batch size for a group of desired hosts: batch, or batch_pct of
 * desired rounded up; at least 1. Pure. */
int refresh_batch_size(const struct refresh_params *p, int desired);

/* The fewest ready hosts min_healthy_pct keeps of desired (rounded up). Pure. */
int refresh_min_healthy(const struct refresh_params *p, int desired);

struct refresh {
	int64_t id;
	char cluster[64], grp[64], template_[64];
	char target[24];              /* the version hosts are refreshed to */
	struct refresh_params p;
	char state[16];               /* running paused cancelled failed done rolled_back */
	int extra;                    /* surge hosts wanted above desired now */
	json_t *batch;                /* ids of the old hosts of the batch in hand (owned) */
	int replaced, batches;        /* hosts taken out, batches taken out */
	char reason[512];
	int64_t started_ms, updated_ms;
	json_t *old_spec;             /* the template's spec when it began (owned) */
};

void refresh_release(struct refresh *r);

/* Starts a refresh of cluster/grp to version target of template tname
 * whose spec before is old_spec (borrowed): its id in *id. HERR_CONFLICT
 * when the group has one running or paused. 0 or the store's error. */
int refresh_create(struct store *st, const char *cluster, const char *grp, const char *tname,
		   const char *target, const struct refresh_params *p, const json_t *old_spec,
		   int64_t now_ms, int64_t *id, struct herr *err);

/* The group's latest refresh (any state) into *out: 0 or HERR_NOTFOUND. */
int refresh_latest(struct store *st, const char *cluster, const char *grp, struct refresh *out,
		   struct herr *err);

/* The latest refreshes (any state), newest first, at most limit, of cluster
 * and group grp (NULL: any) into an owned array *out of *n
 * (refresh_free_all()). 0 or the store's error. */
int refresh_list(struct store *st, const char *cluster, const char *grp, int limit,
		 struct refresh **out, size_t *n, struct herr *err);

/* The refreshes running (not paused) into an owned array *out of *n. */
int refresh_running(struct store *st, struct refresh **out, size_t *n, struct herr *err);
void refresh_free_all(struct refresh *r, size_t n);

/* Writes r's state, reason, extra, batch, replaced, batches and
 * pause_after back (by id). 0 or the store's error. */
int refresh_save(struct store *st, const struct refresh *r, int64_t now_ms, struct herr *err);

/* Records that host id (name) was taken out by refresh rid: 1 when it is
 * new, 0 when it was already (never twice). Or the store's error. */
int refresh_host_out(struct store *st, int64_t rid, const char *id, const char *name,
		     int64_t now_ms, struct herr *err);

/* The ids of the hosts refresh rid took out, an owned array of strings. */
json_t *refresh_hosts_out(struct store *st, int64_t rid, struct herr *err);

/* Whether some refresh took host id out (its drain and termination are
 * the refresh's, not a scale-in's). False on a store error too. */
bool refresh_took_out(struct store *st, const char *id);

/* The API form of r with the hosts it replaced (store read): owned. */
json_t *refresh_to_json(struct store *st, const struct refresh *r);

#endif
