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
struct buf;

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
 * terminated_ms (on terminated); a move past booting spends the join token
 * (see host_join). Refuses (HERR_CONFLICT) a move the machine
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
	char template_version[24];       /* TEMPLATE_VERSION_LEN hex, or "unknown" */
};

/* The columns host_from_row() reads, for "SELECT " HOST_COLUMNS " FROM hosts". */
#define HOST_COLUMNS                                                                  \
	"id, name, cluster, grp, seq, template, account, network, state, reason,"     \
	" private_ip, instance_id, client_token, protected, attempt, created_ms,"     \
	" updated_ms, launched_ms, joined_ms, ready_ms, heartbeat_ms, terminated_ms," \
	" drain_run_id, drain_deadline_ms, lb_drain_since_ms, template_version"

/* Fills *out from a row of HOST_COLUMNS (missing columns are zero/empty).
 * HERR_STORE when the row is not a hosts row (no id or unknown state). */
int host_from_row(const json_t *row, struct host *out, struct herr *err);

/* Host id (any state): 0, or HERR_NOTFOUND. */
int host_get(struct store *st, const char *id, struct host *out, struct herr *err);

/* A new host's id: drawn by rnd (into out, n bytes; the launcher's is 4
 * random bytes in hex, short enough for interface names), and drawn again
 * while a host row (any state, terminated ones until retention) has it,
 * at most HOST_ID_TRIES times. Ids are 32 bits: at 10,000 rows two draws
 * meet about once in a hundred launches of a fleet that size, and a launch
 * that took a row's id failed the whole pass's batch (issue 15, the
 * 10,000-agent run). Inside the launch's transaction, no other writer can
 * take it in between. 0; HERR_CONFLICT when every draw was taken; the
 * store's error. */
#define HOST_ID_TRIES 8
typedef void (*host_id_rnd_fn)(char *out, size_t n, void *arg);
int host_id_new(struct store *st, host_id_rnd_fn rnd, void *arg, char *out, size_t n,
		struct herr *err);

/* The live (not terminated) host named name, in cluster when cluster is
 * not NULL, else in any cluster: 0, HERR_NOTFOUND when none, HERR_CONFLICT
 * when several clusters have one (give the cluster), or a store error. */
int host_find_live_by_name(struct store *st, const char *cluster, const char *name,
			   struct host *out, struct herr *err);

/* --- apply --- */
/* How many hosts of group cluster/grp are not yet terminated (any other
 * state, failed included), in *n. 0 or the store's error. */
int host_count_live(struct store *st, const char *cluster, const char *grp, int64_t *n,
		    struct herr *err);

/* --- agent --- */

/* The live host whose credential hashes to cred_hash (compared in constant
 * time): 0, or HERR_NOTFOUND or a store error. */
int host_find_by_credential(struct store *st, const char *cred_hash, struct host *out,
			    struct herr *err);

/* An agent joins: host id's join token (its text) must match and not have
 * expired at now_ms, and the host must be launching or booting. Then, in
 * one transaction, a new credential ("hc_...", its text written into cred,
 * only its hash stored) is issued, and joined_ms and heartbeat_ms are
 * stamped; *out is the host as it was. The token is NOT spent here but by
 * the host's first state report (host_state_write): an agent whose answer
 * was lost joins again, and its new credential replaces the one it never
 * received (that one stops working at once, cached or not). HERR_AUTH
 * ("invalid, used or expired join token", or "host is S: it cannot join")
 * or a store error. The state is not changed here. */
int host_join(struct store *st, const char *id, const char *join_token, int64_t now_ms,
	      char *cred, size_t credsz, struct host *out, struct herr *err);

/* The init scripts template_name's hosts run, in order, each at its latest
 * version: an owned array of {name, version, hash, content}; empty when the
 * template or a script is gone. Never fails. */
json_t *host_init_scripts(struct store *st, const char *template_name);

/* One init script's result as the agent reports it. Strings borrowed. */
struct init_result {
	int64_t idx;                     /* position in the template's init list */
	const char *script;
	int64_t version, exit_code, signal, timed_out;
	const char *out, *errout;        /* NULL = "" */
	int64_t stdout_truncated, stderr_truncated;
	int64_t started_ms, ended_ms;
};

/* Records r for host_id, replacing a report of the same idx (an agent's
 * retry), in one transaction. 0 or a store error. */
int host_init_result_put(struct store *st, const char *host_id, const struct init_result *r,
			 struct herr *err);

/* A heartbeat from host id at now_ms; *state (may be NULL) is its state
 * after it (HS__COUNT when the host is gone). 0 or a store error. Kept in
 * memory and written lazily (see "heartbeats in memory" below): readers of
 * struct host see it at once. */
int host_heartbeat(struct store *st, const char *id, int64_t now_ms, enum hstate *state,
		   struct herr *err);

/* --- api --- */

/* A live host (or the newest one, terminated) by NAME, CLUSTER/NAME or id,
 * cluster (NULL = any) narrowing the search: an owned hosts row
 * (HOST_COLUMNS and labels), or NULL with err set: HERR_NOTFOUND,
 * HERR_CONFLICT when the name is live in several clusters, a store error. */
json_t *host_find(struct store *st, const char *name, const char *cluster, struct herr *err);

/* The API form of a hosts row (host_find()'s, host_list_json()'s): typed fields,
 * labels parsed, times formatted, launch and ready durations. Owned. */
json_t *host_to_json(json_t *row);

/* The hosts of cluster and group ("" or NULL = any), live ones only unless
 * all, ordered by cluster, group, seq, at most 5000: an owned array of rows
 * for host_to_json(). 0 or a store error. */
int host_list_json(struct store *st, const char *cluster, const char *grp, bool all, json_t **out,
	      struct herr *err);

/* A page of the host list (GET /v1/hosts): hosts of cluster and group
 * ("" or NULL = any), live ones only unless all, of one state (a valid state
 * name; NULL or "" = any), ordered by cluster, group, seq and id, at most
 * limit (1..HOST_PAGE_MAX) after the cursor after (NULL = the first page). */
#define HOST_PAGE_MAX 5000
#define HOST_CURSOR_MAX 512 /* bytes of a cursor, with its NUL */
struct host_page {
	const char *cluster, *grp, *state;
	bool all;
	int limit;
	const char *after;
};

/* The page q asks for, through jansson (the reference host_page_write()
 * is checked against; the API answers with host_page_write()): *out an
 * owned array of rows for host_to_json(),
 * next the cursor of the page after it ("" when this is the last), *total
 * how many hosts match q's conditions on all pages. 0, HERR_INVALID naming
 * "after" for a cursor that is not one, or a store error. */
int host_page_json(struct store *st, const struct host_page *q, json_t **out,
		   char next[HOST_CURSOR_MAX], int64_t *total, struct herr *err);

/* The filters of a host list query that are set and how its cursor is
 * compared: the shape host_page_sql() writes a query for. after: the
 * columns of the row value the cursor's keys are compared to: 0 (no
 * cursor), 2 (seq, id: the cursor is of q's cluster and group), 3 (grp,
 * seq, id: of q's cluster), 4 (cluster, grp, seq, id). */
struct host_page_shape {
	bool cluster, grp, state, live;
	int after;
};

/* The shape of q, its cursor's keys key[4] (cluster, grp, seq, id; any
 * when q has no cursor). Pure. */
struct host_page_shape host_page_decide(const struct host_page *q, const char *const key[4]);

/* The query of q's page (count: of its total) for its shape, written from
 * fixed fragments into sql (n bytes, HOST_PAGE_SQL_MAX fits any), so that
 * every filter given is a condition the index hosts_page can seek on; its
 * parameters, q's values and its cursor's, into *params (owned). 0, or
 * HERR_INVALID naming "after" for a cursor that is not one, "cluster",
 * "group" or "state" for one that is not UTF-8. */
#define HOST_PAGE_SQL_MAX 1024
int host_page_sql(const struct host_page *q, bool count, char *sql, size_t n, json_t **params,
		  struct herr *err);

/* The answer of GET /v1/hosts for q, written into b as one JSON object,
 * {"items":[...],"next":CURSOR or null,"total":N}: byte for byte what
 * json_dumps(JSON_COMPACT) prints of host_page_json()'s page with each row
 * through host_to_json() (tests/unit/test-host-list.c compares the two),
 * printed straight from the store's columns (store_each: no jansson object
 * per row), with host_page_sql()'s queries. 0, HERR_INVALID (as
 * host_page_sql()), HERR_TOOBIG past b's maximum, or a store error. */
int host_page_write(struct store *st, const struct host_page *q, struct buf *b,
		    struct herr *err);

/* Host id's init script results, by idx, in the API form (flags as
 * booleans, duration_ms): an owned array. 0 or a store error. */
int host_init_results(struct store *st, const char *id, json_t **out, struct herr *err);

/* Sets host id's scale-in protection. 0 or a store error. */
int host_set_protected(struct store *st, const char *id, bool on, struct herr *err);

/* What a host's metadata service shows of its peers: owned rows of {id,
 * name, cluster, grp, state, private_ip, labels}. host_meta_get() answers
 * host id (any state) or, id NULL, the live host named name in cluster;
 * NULL when none (err set only on a store error). host_meta_list() lists
 * cluster's live hosts, or with grp only the group's ready ones, by name. */
json_t *host_meta_get(struct store *st, const char *id, const char *cluster, const char *name,
		      struct herr *err);
int host_meta_list(struct store *st, const char *cluster, const char *grp, json_t **out,
		   struct herr *err);

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

/* --- agent binary --- */

/* Whether join_token is host id's join token, unexpired at now_ms, while
 * the host is launching or booting: the check host_join() makes, WITHOUT
 * spending the token (a booting cloud host fetches the agent binary with it,
 * then joins with it). 0, HERR_AUTH ("invalid, used or expired join
 * token", or "host is S") or a store error. */
int host_join_token_check(struct store *st, const char *id, const char *join_token,
			  int64_t now_ms, struct herr *err);

/* --- retention --- */

/* Deletes up to max_rows hosts terminated before before_ms (terminated_ms,
 * else updated_ms), with their init results (ON DELETE CASCADE; the
 * credentials' hashes are columns of the row). Kept whatever their age: the
 * host with its group's highest seq (host_next_seq counts from it: names are
 * never reused) and a host some run still has queued or running. *deleted:
 * how many went. 0 or a store error. */
int host_prune_terminated(struct store *st, int64_t before_ms, int max_rows, int64_t *deleted,
			  struct herr *err);

/* --- heartbeats in memory --- */

#define HB_PERSIST_MS 30000   /* heartbeats are written at most this often */
/* ... and this often on a store several servers share (not single_process:
 * PostgreSQL): the leader sees the heartbeats other servers took only once
 * written, so they must be well inside unhealthy_after (default 30 s) */
#define HB_PERSIST_SHARED_MS 5000
#define HB_MAX 16384          /* unwritten heartbeats kept; more: written through */

/* Writes every heartbeat kept in memory in one transaction (at shutdown;
 * heartbeats do it every HB_PERSIST_MS). 0 or a store error (they stay). */
int host_heartbeats_flush(struct store *st, struct herr *err);

/* How many heartbeats wait to be written (for tests). */
size_t host_heartbeats_pending(void);

#endif
