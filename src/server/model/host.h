/* model/host.h - a host's lifecycle, and the one writer of its state.
 * Every change of hosts.state goes through a function here: each is one
 * guarded UPDATE (compare-and-set on the state it may leave), so a late
 * agent report, a second terminate request or a crash replay can never move
 * a host out of a terminal state or skip a step. Activities, kicks and
 * provider calls stay with the callers (controllers, API handlers). */
#ifndef HERD_MODEL_HOST_H
#define HERD_MODEL_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"

struct store;

/* Host states, in lifecycle order. */
enum hstate {
	HS_LAUNCHING,     /* row written, provider not (yet) answered */
	HS_BOOTING,       /* provider made it; agent not joined yet */
	HS_INITIALIZING,  /* agent joined; init scripts running */
	HS_READY,
	HS_UNHEALTHY,     /* heartbeats lost */
	HS_FAILED,        /* init failed / provision timeout / launch error */
	HS_DRAINING,      /* leaving: its before_terminate script runs */
	HS_TERMINATING,
	HS_TERMINATED,
	HS__COUNT
};
const char *hstate_name(enum hstate s);
enum hstate hstate_parse(const char *s);   /* HS__COUNT if unknown */

/* The machine's one rule: terminated is never left; terminating leads only
 * to terminated; failed only to terminating or terminated. Any other move
 * between known states is allowed (a host can come back from unhealthy,
 * a drain can be taken back). Staying put is not a transition (false). */
bool host_transition_ok(enum hstate from, enum hstate to);

/* Moves host id from `from` to `to` with reason (NULL = ""), stamping
 * updated_ms = now_ms, ready_ms (first ready), heartbeat_ms (on ready) and
 * terminated_ms (on terminated). Refuses (HERR_CONFLICT) a move the machine
 * forbids; *changed (may be NULL) is 0 when the host was no longer in
 * `from` (someone else moved it first). Returns 0 or a negative code. */
int host_state_write(struct store *st, const char *id, enum hstate from, enum hstate to,
		     const char *reason, int64_t now_ms, int64_t *changed, struct herr *err);

/* Marks a live host terminating (from any state but terminating and
 * terminated). reason NULL keeps the current one; lb_drain_since_ms > 0
 * records when its load-balancer drain began. */
int host_mark_terminating(struct store *st, const char *id, const char *reason,
			  int64_t lb_drain_since_ms, int64_t now_ms, int64_t *changed,
			  struct herr *err);

/* Every failed host of a group goes terminating (the group is deleted). */
int host_mark_group_failed_terminating(struct store *st, const char *cluster, const char *grp,
				       int64_t now_ms, struct herr *err);

/* The provider made the host: its instance id is recorded and a launching
 * host becomes booting (a host that already moved on keeps its state). */
int host_record_instance(struct store *st, const char *id, const char *instance_id,
			 int64_t launched_ms, int64_t now_ms, struct herr *err);

/* ready -> draining, running before_terminate (run_id) until deadline_ms. */
int host_mark_draining(struct store *st, const char *id, int64_t run_id, int64_t deadline_ms,
		       const char *reason, int64_t now_ms, int64_t *changed, struct herr *err);

/* draining -> ready: a drain taken back on scale-out. */
int host_reclaim(struct store *st, const char *id, int64_t now_ms, int64_t *changed,
		 struct herr *err);

/* Teardown: host id (or, id NULL, every host) is terminated. */
int host_mark_terminated(struct store *st, const char *id, int64_t now_ms, struct herr *err);

/* A hosts row, typed. Strings are copies (empty when NULL in the store);
 * sizes fit what validation lets in (names are DNS labels). */
struct host {
	char id[64], name[64], cluster[64], grp[64];
	char template_[64], account[64], network[64];
	enum hstate state;
	char reason[512];
	char private_ip[48];             /* "" until an address is given */
	char instance_id[128];           /* "" until the provider answered */
	char client_token[80];
	int seq, attempt;
	bool protected_;
	int64_t created_ms, updated_ms, launched_ms, joined_ms, ready_ms, heartbeat_ms,
		terminated_ms;
	int64_t drain_run_id, drain_deadline_ms, lb_drain_since_ms;
};

/* The columns host_from_row() reads, for "SELECT " HOST_COLUMNS " FROM hosts". */
#define HOST_COLUMNS                                                                  \
	"id, name, cluster, grp, seq, template, account, network, state, reason,"     \
	" private_ip, instance_id, client_token, protected, attempt, created_ms,"     \
	" updated_ms, launched_ms, joined_ms, ready_ms, heartbeat_ms, terminated_ms," \
	" drain_run_id, drain_deadline_ms, lb_drain_since_ms"

/* Fills *out from a row of HOST_COLUMNS (missing columns are zero/empty).
 * HERR_STORE when the row is not a hosts row (no id or unknown state). */
int host_from_row(const json_t *row, struct host *out, struct herr *err);

/* Host id (any state): 0, or HERR_NOTFOUND. */
int host_get(struct store *st, const char *id, struct host *out, struct herr *err);

/* --- controllers --- */

/* Which hosts host_list() returns; NULL/-1/false = no condition. */
struct host_query {
	const char *cluster, *grp, *network;
	int state;      /* an enum hstate, or -1 for any */
	bool live;      /* not terminated */
};

/* The hosts matching q, ordered by cluster, group and seq, as an array the
 * caller frees (free(*out); NULL when none). Returns 0 or the store's error. */
int host_list(struct store *st, const struct host_query *q, struct host **out, size_t *n,
	      struct herr *err);

/* The seq a new host of cluster/grp gets: one more than any before it
 * (terminated ones count: names are never reused). 0 or the store's error. */
int host_next_seq(struct store *st, const char *cluster, const char *grp, int64_t *seq,
		  struct herr *err);

/* Writes a new host row, state launching (the controller's intent, before
 * the provider is asked): id, name, cluster, grp, seq, template_, account,
 * network, private_ip and client_token from h, created_ms = updated_ms =
 * now_ms; the agent's join token is stored as its hash, valid until
 * join_expires_ms. In the caller's transaction. 0 or the store's error. */
int host_create(struct store *st, const struct host *h, const char *join_hash,
		int64_t join_expires_ms, int64_t now_ms, struct herr *err);

/* A terminating host's load-balancer drain begins at now_ms (when it was
 * made terminating without one: by the API, by crash recovery); a drain
 * already begun keeps its start. 0 or the store's error. */
int host_lb_drain_begin(struct store *st, const char *id, int64_t now_ms, struct herr *err);

#endif
