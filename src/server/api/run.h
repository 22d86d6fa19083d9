/* run.h - script runs: the pure parts of api-run.c (input checks, the
 * outcome of one host, the state of a whole run), apart so that unit tests
 * can feed them plain values. The handlers are declared by routes.def. */
#ifndef HERD_RUN_H
#define HERD_RUN_H

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

/* --- server-side (api-run.c) --- */
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

#endif
