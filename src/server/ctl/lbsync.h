/* lbsync.h - the lb-sync controller: load balancer membership follows the
 * hosts. Each pass (level-triggered, from the reconcile loop) makes every
 * LB's driver hold exactly the LBs of the store, and each LB's members the
 * ready hosts of the groups whose template names it (decide = pure function
 * here, act = I/O in lbsync.c). Hosts leave by draining: no new sessions,
 * then removal once their sessions end or the LB's drain_timeout passes. */
#ifndef HERD_LBSYNC_H
#define HERD_LBSYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"
#include "lb/lb.h"
#include "server.h"

/* --- decide (pure: no I/O, time passed in) --- */
struct lbs_lb {
	const char *name;
	int64_t drain_timeout_ms;
};

/* A member there should be: a ready host of an attached group. */
struct lbs_want {
	const char *lb, *member;    /* member = host id */
	const char *addr;
	int port;
};

/* A member the LB has, as its driver reports it. */
struct lbs_have {
	const char *lb, *member;
	const char *addr;
	int port;
	enum lb_intent intent;
	int64_t scur;               /* current sessions */
	int64_t drain_since_ms;     /* same clock as now_ms; 0 if not draining */
};

enum lbs_kind { LBS_ADD, LBS_DRAIN, LBS_REMOVE };

struct lbs_action {
	enum lbs_kind kind;
	const char *lb, *member;    /* borrowed from the inputs */
	const struct lbs_want *want;   /* for LBS_ADD */
	char reason[160];
};

/* Computes the membership changes for the LBs in lbs (others are left
 * alone). Writes at most max actions to out; returns how many. */
size_t lbsync_decide(const struct lbs_lb *lbs, size_t nl, const struct lbs_want *want, size_t nw,
		     const struct lbs_have *have, size_t nh, int64_t now_ms, struct lbs_action *out,
		     size_t max);

/* The next step for one LB member of a host being terminated. */
enum lbs_drain_step {
	LBD_DRAIN,                  /* set it to drain: no new sessions */
	LBD_WAIT,                   /* draining, sessions left, time left */
	LBD_REMOVE,                 /* drained, or its drain_timeout passed: remove it */
};

/* Decides what a member (intent, scur sessions) of a host being terminated
 * needs now_ms, the host's LB drain having begun at since_ms (both wall ms:
 * the start is stored with the host, so a restart resumes the same drain).
 * A clock stepped back counts as no time gone by. */
enum lbs_drain_step lbsync_drain_decide(enum lb_intent intent, int64_t scur, int64_t since_ms,
					int64_t now_ms, int64_t timeout_ms);

/* --- act --- */
/* One pass: LBs, then members. Called by the reconcile thread. */
void lbsync_once(struct server *s);
/* One step of taking host_id (being terminated; its LB drain began at
 * since_ms, wall) out of every LB holding it, never a wait: sets it to drain
 * where it is not yet, removes it where it has no sessions left or the LB's
 * drain_timeout has passed (each step an activity). Called on every
 * reconcile pass until it returns 0; the provider terminates the host only
 * then. Returns how many LBs still hold it, or may (one not readable, or no
 * lb-sync pass yet since the server started, so the LBs are not known). */
int lbsync_drain_host(struct server *s, const char *host_id, int64_t since_ms, int64_t now_ms);
/* The members of LB `lb` with their state at the LB, and the engine's
 * health: {"lb", "driver", "engine": {...}, "items": [...]} (owned), as the
 * last lb-sync pass saw them (at most a pass old): for the API, which never
 * calls a driver itself. HERR_NOTFOUND when there is no such LB. */
int lbsync_members(struct server *s, const char *lb, json_t **out, struct herr *err);
/* Every LB's last published view, {"NAME": {"driver", "engine", "items":
 * [{host_id, state, intent, ...}]}} (owned; {} before the first pass),
 * without kicking a pass or waiting: for the alert evaluator. */
json_t *lbsync_views(void);
/* Where host_id stands by the last published view (no driver called):
 * how many LBs list it as a member (any intent), or -1 when no pass has
 * published a view yet; *as_of_ms: the wall ms that view was published.
 * Rolling script runs wait on this for a drained host to be out. */
int lbsync_host_members(const char *host_id, int64_t *as_of_ms);
/* Whether host_id is up (its health check passing) and active (taking
 * traffic) in LB lb, by the last published view. */
bool lbsync_host_up(const char *lb, const char *host_id);
/* Closes every driver (stops HAProxy). After the API and controllers stop. */
void lbsync_stop(struct server *s);
/* herd server --teardown: removes what a stopped server's LB drivers left. */
int lbsync_teardown(struct server *s, struct herr *err);

#endif
