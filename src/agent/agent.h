/* agent.h - the host agent's shared state and its internal parts:
 * agent.c (entry, signals, main loop, heartbeat thread), agent-req.c
 * (requests retried through outages), agent-join.c (join, credentials,
 * host.json), agent-init.c (init scripts and their reports), agent-cmd.c
 * (on-demand script runs). */
#ifndef HERD_AGENT_H
#define HERD_AGENT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <pthread.h>

#include "agent-contract.h"   /* AGENT_CONFIG, HOST_STATE_DIR */
#include "herr.h"
#include "httpc.h"

#define AGENT_RUN_DIR "/run/herd"           /* host.json, scripts/: per boot */
#define AGENT_STATE_DIR HOST_STATE_DIR      /* credential, init record: persistent */
#define AGENT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define AGENT_MAX_RESPONSE (8u << 20)       /* bytes: the join answer carries scripts */

/* files: host.json in run_dir (what `herd meta` reads); in state_dir: */
#define AGENT_HOST_FILE "host.json"
#define AGENT_CRED_FILE "credential.json"   /* same content as host.json */
#define AGENT_INIT_FILE "init.json"         /* the init scripts from the join */
#define AGENT_DONE_FILE "init-done"         /* reports the server acknowledged */

struct agent_config {
	char server[512];           /* "http://198.18.10.1:7171" */
	char host_id[64];
	char host[64];              /* host name, until the server says */
	char join_token[256];
	char ca_sha256[100];        /* the server's CA fingerprint (https), or "" */
	int heartbeat_s;            /* until the server says; default 5 */
	int64_t init_timeout_ms;    /* per init script; default 10 min */
	char run_dir[256];
	char state_dir[320];        /* <state_dir>/<host_id>, or under run_dir if unwritable */
};

struct agent {
	struct agent_config cfg;
	char credential[256];       /* "hc_...", once joined */
	char host[64];              /* from the server */
	char cluster[64];
	char group[64];
	char private_ip[64];
	int heartbeat_s;            /* from the server, else cfg */
	json_t *init;               /* init scripts from the join answer (owned) */
	struct httpc http;          /* the main thread's client */
	char *ca_pem;               /* the pinned CA (ca_sha256), set before any thread */
	int sigfd[2];               /* self-pipe written by signal handlers */

	/* heartbeat thread (later also the metrics push) */
	pthread_t pulse;
	bool pulse_running;
	bool pulse_stop;            /* under pulse_lock */
	pthread_mutex_t pulse_lock;
	pthread_cond_t pulse_cond;  /* CLOCK_MONOTONIC */
};

/* agent.c */

/* True once SIGTERM (or SIGINT) arrived: every loop winds down. */
bool agent_stopping(void);
/* Waits up to ms for a signal, reaping children on SIGCHLD; returns early
 * when the agent is stopping. The main thread's only way to sleep. */
void agent_wait(struct agent *a, int64_t ms);

/* agent-req.c */

/* httpc_init for one of the agent's clients: the pinned CA if any. */
void agent_http_init(struct agent *a, struct httpc *c, const char *token);
/* With an https server and ca_sha256: fetches the server's CA until it is
 * the one configured (httpc_pin_ca), retrying with backoff while the
 * server is unreachable or another CA (logged, naming both fingerprints;
 * nothing else is sent meanwhile). 0, or -ECANCELED when stopping. */
int agent_pin(struct agent *a);

/* Sends method path with body (borrowed, may be NULL) on the main thread's
 * client, retrying with jittered exponential backoff (200 ms doubling to
 * 10 s, +-25 %) while the server is unreachable or answers 5xx. Returns 0
 * with *resp (owned, may be NULL) on 2xx; the HERR_* code of a 4xx with the
 * server's message, logged and not retried; -ECANCELED when the agent stops. */
int agent_request(struct agent *a, const char *method, const char *path, json_t *body,
		  json_t **resp, struct herr *err);
/* Jittered backoff step: returns the delay to wait now (ms) and advances
 * *next_ms (start it at 0). */
int64_t agent_backoff(int64_t *next_ms);

/* agent-join.c */

/* Resumes from a saved credential (host.json in run_dir, or the copy in
 * state_dir) or joins with the join token, retrying until it succeeds: a
 * bad token is logged and retried slowly, never fatal. On success writes
 * run_dir/host.json (0600) and the state copy, and sets a->init when the
 * join answer carried init scripts. Returns 0, or -ECANCELED on stop. */
int agent_join(struct agent *a);
/* Rewrites run_dir/host.json from a's fields. Returns 0 or -errno. */
int agent_write_host_json(struct agent *a);
/* Path of a file in the state dir, into out. */
const char *agent_state_path(const struct agent *a, const char *name, char *out, size_t outsz);

/* agent-init.c */

/* Runs the init scripts not yet reported (per the record in the state dir),
 * in order, reporting each result and the host's state; stops at the first
 * failure. Returns 0 once the final state is reported (or was already),
 * -ECANCELED when the agent stops. */
int agent_init_run(struct agent *a);
/* A JSON string of n bytes of program output: invalid UTF-8 and NULs
 * become U+FFFD; at most max bytes (the server's cap), cut at a character
 * boundary, setting *truncated if cut. Owned reference. */
json_t *agent_json_text(const char *p, size_t n, size_t max, bool *truncated);
/* "PATH=..." for scripts (owned): a sane default, plus where this herd
 * binary lives so that `herd meta` works from scripts wherever it is. */
char *agent_path_env(void);

/* agent-cmd.c */

/* Starts taking on-demand script runs (a poller thread long-polling
 * GET /v1/agent/commands; a worker per run). Needs a joined agent.
 * Returns 0 or -errno. */
int agent_cmd_start(struct agent *a);
/* Stops polling; gives running scripts (killed as the agent stops) a
 * moment to end and report. */
void agent_cmd_stop(struct agent *a);

#endif
