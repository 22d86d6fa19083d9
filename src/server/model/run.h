/* model/run.h - script runs: a run of one script version on a set of hosts,
 * one record per host (run_hosts), their live output (run_output). The pure
 * parts (input checks, the outcome of one host, the state of a whole run)
 * take plain values so unit tests can feed them; the rest is the only code
 * that reads or writes those tables (model/run.c). HTTP is api-run.c's. */
#ifndef HERD_MODEL_RUN_H
#define HERD_MODEL_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"

#define RUN_ENV_MAX 64                  /* variables per run */
#define RUN_ENV_KEY_MAX 128             /* bytes per name */
#define RUN_ENV_VALUE_MAX 4096          /* bytes per value */
#define RUN_OUTPUT_MAX (64 * 1024)      /* bytes kept per stream per host */
#define RUN_TIMEOUT_DEFAULT_MS (10 * 60 * 1000)
#define RUN_TIMEOUT_MAX_MS (24LL * 3600 * 1000)
#define RUN_PARALLEL_MAX 1000
#define RUN_HOSTS_MAX 5000              /* hosts per run */

/* Per-host states, in the order a host goes through them. */
enum run_hstate {
	RH_QUEUED,
	RH_RUNNING,
	RH_SUCCEEDED,
	RH_FAILED,
	RH_TIMED_OUT,
	RH_CANCELLED,
	RH_SKIPPED,
	RH__COUNT
};
const char *run_hstate_name(enum run_hstate s);
enum run_hstate run_hstate_parse(const char *s);   /* RH__COUNT if unknown */
bool run_hstate_is_final(enum run_hstate s);

/* A host's step in a rolling run (runs.batch > 0; ctl/rolling.h): waiting
 * for its batch, being drained out of its LBs, running the script (only
 * then is it handed out), in the health gate, done; or, after a failure,
 * failed (back in its LBs) or held (kept out of its LBs: a draining run
 * that stops on failure). RP_NONE: not a rolling run, or skipped. */
enum run_phase {
	RP_NONE,
	RP_WAIT,
	RP_DRAIN,
	RP_RUN,
	RP_GATE,
	RP_DONE,
	RP_FAILED,
	RP_HELD,
	RP__COUNT
};
const char *run_phase_name(enum run_phase p);
enum run_phase run_phase_parse(const char *s);   /* RP__COUNT if unknown */

/* A batch size ("N" hosts or "P%" of the target's ready hosts, rounded
 * up) as hosts, for nready ready hosts: 1..nready, or HERR_INVALID naming
 * field "batch" (0, a bad number, more hosts than are ready). */
int run_batch_size(const char *spec, size_t nready, int *out, struct herr *err);

/* Checks a run's env object: at most RUN_ENV_MAX string values of at most
 * RUN_ENV_VALUE_MAX bytes without NUL, names that envname_refusal() allows
 * ([A-Z_][A-Z0-9_]*, none that changes how a shell, the loader or an
 * interpreter starts, none of herd's own). NULL is an empty env. Returns
 * 0 or HERR_INVALID with err->field naming "env" or "env.NAME". */
int run_env_check(const json_t *env, struct herr *err);

/* Writes the names of env's variables (never their values), sorted and
 * comma-separated, into out: for the audit trail. Names that do not fit
 * are counted instead: "A,B,+3 more" (needs outsz >= 16 for that). */
void run_env_names(const json_t *env, char *out, size_t outsz);

/* What one host's result means: its state and a reason for people
 * ("exited with code 3", "timed out after 10m", ...) written into reason. */
enum run_hstate run_outcome(int exit_code, int signal, bool timed_out, bool cancelled,
			    const char *error, int64_t timeout_ms, char *reason, size_t reasonsz);

/* The state of a whole run from how many hosts are in each state:
 * "running" while any is queued or running; then "cancelled" if a cancel
 * was asked and some host was cancelled, "failed" if any failed or timed
 * out, "succeeded" if any succeeded (the rest skipped), else "skipped". */
const char *run_state_of(const int counts[RH__COUNT], bool cancel_requested);

/* --- stored runs (model/run.c) --- */
struct server;
struct store;

/* What a run is made of; strings borrowed. */
struct run_spec {
	const char *script;
	long long version;          /* 0 = the latest */
	const char *target_kind;    /* "host", "group" or "cluster" */
	const char *target;         /* NAME, CLUSTER/NAME or a host id */
	const json_t *env;          /* checked with run_env_check; NULL = none */
	int64_t timeout_ms;
	int parallel;               /* 0 = all hosts at once */
	const char *who;            /* created_by */
	int64_t now_ms;             /* when it is made; 0 = the wall clock (tests
				     * of simulated time pass theirs) */
	const char *batch;          /* rolling: "N" or "P%"; NULL = all at once */
	bool drain;                 /* rolling: out of the LBs while it runs */
	int64_t gate_ms;            /* rolling: healthy this long before the next */
	bool stop_on_failure;       /* rolling: a failure ends the run */
};

/* Makes a run (the core of POST /v1/runs, also for server-side callers
 * such as a policy's before_terminate): a record per target host, hosts
 * not ready recorded as skipped; kicks so agents take it at once. Writes a
 * one-line description with the script's hash into detail (for the audit
 * trail). Returns 0 with *run_id, or an error whose field names the input. */
int run_create(struct server *s, const struct run_spec *rs, int64_t *run_id, char *detail,
	       size_t detailsz, struct herr *err);
/* The state of a run ("running", "succeeded", "failed", "cancelled",
 * "skipped") into out; HERR_NOTFOUND if there is no such run. */
int run_state_get(struct store *st, int64_t run_id, char *out, size_t n, struct herr *err);

/* Longest prefix of s (n bytes) of at most max bytes that does not cut a
 * UTF-8 character. */
size_t run_utf8_cut(const char *s, size_t n, size_t max);

/* A runs row, typed, with how many of its hosts are in each state. */
struct run {
	int64_t id;
	char script[128];
	int64_t version;
	char hash[72];
	char target_kind[16];      /* "host", "group" or "cluster" */
	char target[200];          /* canonical: NAME or CLUSTER/NAME */
	json_t *env;               /* owned: an object ({} when none) */
	int64_t timeout_ms;
	int parallel;              /* 0 = all hosts at once */
	char created_by[128];
	int64_t created_ms, ended_ms;   /* ended_ms 0 while running */
	char state[16];            /* run_state_of()'s words */
	bool cancel_requested;
	int counts[RH__COUNT];     /* hosts in each state */
	int batch;                 /* rolling: hosts per batch; 0 = not rolling */
	bool drain, stop_on_failure;
	int64_t gate_ms;
};
/* Frees what r owns (env); r itself is the caller's. */
void run_release(struct run *r);

/* Run id with its counts into *out (release with run_release): 0, or
 * HERR_NOTFOUND ("no run N") or a store error. */
int run_get(struct store *st, int64_t id, struct run *out, struct herr *err);

/* Which runs run_list() returns: empty strings and 0 select everything. */
struct run_filter {
	int64_t before_id;     /* ids below this; 0 = from the newest */
	const char *script;    /* NULL or "" = any */
	const char *state;     /* a run state; NULL or "" = any */
	const char *host;      /* runs that include this host: NAME, CLUSTER/NAME or id */
	int limit;             /* at most this many (>= 1) */
};
/* The runs f selects, newest first, with their counts: an owned array of
 * *n runs in *out (free with runs_free). Returns 0 or a store error. */
int run_list(struct store *st, const struct run_filter *f, struct run **out, size_t *n,
	     struct herr *err);
void runs_free(struct run *r, size_t n);

/* One host's record in a run. */
struct run_host {
	int64_t run_id;
	int64_t seq;                    /* order within the run */
	char host_id[64], host[64], cluster[64], grp[64];
	enum run_hstate state;
	char reason[600];
	int exit_code;                  /* -1 when there is none */
	int signal;
	char delivery[160];             /* "<run>-<host id>" */
	int deliveries;                 /* times handed out */
	int64_t started_ms, ended_ms;   /* 0 until then */
	int64_t stdout_bytes, stderr_bytes;
	bool stdout_truncated, stderr_truncated;
	int batch;                      /* rolling runs: its batch (0, 1, ...) */
	enum run_phase phase;           /* RP_NONE unless rolling */
	int64_t phase_ms, healthy_ms;
	char *stdout_text, *stderr_text; /* owned; NULL unless loaded with output */
};
/* Frees the owned texts of n records and the array itself. */
void run_hosts_free(struct run_host *rh, size_t n);

/* Run id's host records in seq order: only host_id's when host_id is not
 * empty, only those with seq > after_seq, at most limit (0 = all), with
 * their recorded output when with_output. *out owned (run_hosts_free). */
int run_hosts_get(struct store *st, int64_t id, const char *host_id, int64_t after_seq,
		  int limit, bool with_output, struct run_host **out, size_t *n, struct herr *err);

/* Host host_id's record in run id, with its output, into *out (free its
 * texts with run_host_release). 0, or HERR_NOTFOUND when the host has no
 * record in the run. */
int run_host_get(struct store *st, int64_t id, const char *host_id, struct run_host *out,
		 struct herr *err);
/* Frees the texts one record owns. */
void run_host_release(struct run_host *rh);

/* The host of run id named by name (NAME, CLUSTER/NAME or host id): its id
 * into host_id. 0, or HERR_NOTFOUND when no host of the run has the name. */
int run_host_resolve(struct store *st, int64_t id, const char *name, char *host_id, size_t n,
		     struct herr *err);

/* A chunk of live output. */
struct run_chunk {
	int64_t id;          /* a cursor: chunks come in id order */
	int stream;          /* 1 stdout, 2 stderr */
	char host[64];
	char *data;          /* owned */
};
void run_chunks_free(struct run_chunk *c, size_t n);
/* Run id's output chunks with id > cursor (of host_id only when not
 * empty), at most limit: an owned array (run_chunks_free). */
int run_output_after(struct store *st, int64_t id, const char *host_id, int64_t cursor,
		     int limit, struct run_chunk **out, size_t *n, struct herr *err);

/* Resolves records of hosts that vanished or went silent under a run:
 * queued on a terminated (or terminating, or missing) host -> skipped;
 * running on one -> failed; running with no result settle_grace_ms past
 * its timeout -> timed_out; then the runs' states follow. Cheap when there
 * is nothing to do. *settled: how many records moved (the caller kicks). */
int runs_settle(struct store *st, int64_t now_ms, int64_t settle_grace_ms, int64_t *settled,
		struct herr *err);

/* Cancels run id: asks running hosts to stop and cancels the queued ones
 * at once (*not_started of them), in one transaction. HERR_NOTFOUND, or
 * HERR_CONFLICT when the run has already ended. */
int run_cancel(struct store *st, int64_t id, int64_t now_ms, int64_t *not_started,
	       struct herr *err);
/* Asks a still-running run id to stop (a drain taken back); no-op if it
 * has ended. */
int run_cancel_request(struct store *st, int64_t id, struct herr *err);

/* A delivery handed to an agent. */
struct run_cmd {
	int64_t run_id;
	char delivery[160];
	char script[128];
	int64_t version;
	char hash[72];
	char *content;       /* owned: the script */
	json_t *env;         /* owned: an object */
	int64_t timeout_ms;
};
void run_cmds_free(struct run_cmd *c, size_t n);
/* Takes up to max deliveries for host_id: queued records of runs not
 * cancelled, within each run's `parallel` (a delivery not started within
 * stale_ms frees its slot). Each is stamped delivered (a write transaction,
 * so two hosts polling at once never pass `parallel`) but stays queued, so
 * a lost answer is handed out again. *out owned (run_cmds_free); *n may be 0. */
int run_take(struct store *st, const char *host_id, int64_t now_ms, int64_t stale_ms, int max,
	     struct run_cmd **out, size_t *n, struct herr *err);

/* The one atomic step of a delivery: host_id's record of run_id goes
 * queued -> running (nonce remembered). 0 when it started now or this is a
 * retry of that same start (same non-empty nonce); HERR_NOTFOUND with no
 * record, HERR_CONFLICT naming its state otherwise. delivery names it in
 * messages. */
int run_start(struct store *st, int64_t run_id, const char *host_id, const char *delivery,
	      const char *nonce, int64_t now_ms, struct herr *err);

/* One stream's chunk of live output. */
struct run_output_in {
	const char *data;    /* NULL or empty: nothing */
	size_t len;          /* bytes */
	int64_t offset;      /* where data starts in the stream; < 0 = not given */
};
/* Appends what continues the stored output (a repeat changes nothing; a
 * gap is HERR_CONFLICT naming the field; past RUN_OUTPUT_MAX it is counted
 * as truncated) while the record runs. *cancel: the agent should stop
 * (the run was cancelled or the record ended). HERR_NOTFOUND with no
 * record; HERR_CONFLICT if it was not started. */
int run_output_add(struct store *st, int64_t run_id, const char *host_id, const char *delivery,
		   const struct run_output_in *out, const struct run_output_in *errout,
		   bool *cancel, struct herr *err);

/* What an agent reports at the end of a delivery. */
struct run_result {
	bool has_exit_code;
	int64_t exit_code;                   /* stored when has_exit_code and >= 0 */
	int64_t signal;
	bool timed_out, cancelled;
	const char *error;                   /* NULL = none */
	const char *out, *errout;            /* the whole (capped) output; NULL = "" */
	bool out_truncated, err_truncated;
};
/* Records host_id's result for run_id (from queued or running) and the
 * run's state that follows, in one transaction. *to: the record's state;
 * reason (for logs) says why. *repeat is true (and nothing changes) when
 * the record had already ended; *to is then its state. HERR_NOTFOUND with
 * no record. */
int run_result_record(struct store *st, int64_t run_id, const char *host_id,
		      const char *delivery, const struct run_result *r, int64_t now_ms,
		      enum run_hstate *to, bool *repeat, char *reason, size_t reasonsz,
		      struct herr *err);

/* --- rolling runs (ctl/rolling.c) --- */

/* The ids of running rolling runs, oldest first: an owned array of *n. */
int run_rolling_ids(struct store *st, int64_t **ids, size_t *n, struct herr *err);

/* The hosts rolling runs keep out of their LBs (draining, running the
 * script, or held after a failure, in runs that drain), not terminated:
 * an owned object host id -> run id. */
int run_rolling_out(struct store *st, json_t **out, struct herr *err);

/* One step of a rolling run's host: its phase (and when it began, and
 * since when it has been healthy); with a state other than RH__COUNT also
 * its record's state and reason (ended now when final). */
struct run_roll_step {
	const char *host_id;
	enum run_phase phase;
	int64_t phase_ms, healthy_ms;
	enum run_hstate state;
	const char *reason;
};
/* Writes steps[0..n) of run id and the run's state that follows, in one
 * transaction. */
int run_roll_apply(struct store *st, int64_t id, const struct run_roll_step *steps, size_t n,
		   int64_t now_ms, struct herr *err);

/* --- retention --- */

/* Deletes ended runs (state not running) that ended before before_ms
 * (wall), with their hosts' rows and output, except a run that drains a
 * host not yet terminated (hosts.drain_run_id). Bounded: each of the three
 * statements (output chunks, then run_hosts, then the runs left without
 * either) deletes at most max_rows rows, so a run is gone only once its
 * children are; a pass that stops halfway leaves the rest to the next.
 * *deleted: rows deleted in all three. 0 or a store error. */
int run_prune(struct store *st, int64_t before_ms, int max_rows, int64_t *deleted,
	      struct herr *err);

#endif
