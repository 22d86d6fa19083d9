/* monitor.h - script monitors: a command run every interval (through
 * exec.c: /bin/sh, its own process group, killed on timeout) printing one
 * number or `name value` lines. Each monitor runs on its own small thread,
 * so a slow or hung command delays nothing but itself: system collection
 * (push.c) only copies the latest results under a mutex. */
#ifndef HERD_AGENT_MONITOR_H
#define HERD_AGENT_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MON_MAX 16                  /* monitors per host; more are refused */
#define MON_MAX_VALUES 32           /* series per run */
#define MON_NAME_MAX 64             /* bytes of a monitor or series name, with NUL */
#define MON_ERROR_MAX 200           /* bytes of an error text, with NUL */
#define MON_MAX_OUTPUT 4096         /* bytes of stdout read; more is an error */
#define MON_KILL_GRACE_MS 500       /* SIGTERM to SIGKILL on timeout */
#define MON_MAX_LABELS 4            /* the monitor's own labels, on each of its series */
#define MON_LABEL_MAX 129           /* bytes of a label value, with NUL */

enum mon_state {
	MON_PENDING,                /* not run yet */
	MON_OK,
	MON_FAILED,                 /* non-zero exit, signal, unparsable output, no start */
	MON_TIMEOUT,
};

struct mon_labels {
	size_t n;
	char key[MON_MAX_LABELS][MON_NAME_MAX];
	char val[MON_MAX_LABELS][MON_LABEL_MAX];
};

struct mon_spec {
	char name[MON_NAME_MAX];
	char *command;              /* owned: shell text */
	int64_t interval_ms;
	int64_t timeout_ms;
	struct mon_labels labels;   /* added to every series of the monitor */
};

struct mon_value {
	char name[MON_NAME_MAX];
	double value;
};

/* The outcome of one run. */
struct mon_result {
	enum mon_state state;
	bool single;                /* one bare number: one series named after the monitor
				     * (v[0].name: the name with [^A-Za-z0-9_:] made '_') */
	size_t n;
	struct mon_value v[MON_MAX_VALUES];
	char error[MON_ERROR_MAX];  /* "" when ok */
	int64_t ended_ms;           /* wall clock */
	uint64_t runs;              /* runs completed since the monitor started */
};

/* What push.c copies each cycle. */
struct mon_snapshot {
	size_t n;
	struct {
		char name[MON_NAME_MAX];
		struct mon_labels labels;
		struct mon_result r;
	} m[MON_MAX];
};

/* Parses a run's stdout: one finite number (r->single, one value named
 * after the monitor, made a valid metric name), or lines `name value` (names [A-Za-z_:][A-Za-z0-9_:]*,
 * each once); blank lines and lines starting with '#' are skipped. Fills
 * r->n, r->v, r->single. Returns 0, or HERR_INVALID with a message naming
 * the line in err. */
int mon_parse_output(const char *text, size_t len, const char *monitor, struct mon_result *r,
		     char *err, size_t errsz);

/* "pending", "ok", "failed", "timeout". */
const char *mon_state_name(enum mon_state s);

struct monitors;

/* A set of monitors writing their command files into dir (created if
 * needed), run with exactly env (copied; NULL-terminated "K=V"). */
struct monitors *monitors_new(const char *dir, char *const *env);
/* Makes the running set equal to specs (borrowed): monitors whose name,
 * command, interval and timeout are unchanged keep running and keep their
 * last result; the others are stopped (their command killed) and started
 * anew. At most MON_MAX. Call from one thread at a time. */
void monitors_set(struct monitors *ms, const struct mon_spec *specs, size_t n);
/* Called on a monitor's thread after each run's result is stored (no lock
 * held): push.c checks the thresholds at once. Set before monitors_set. */
typedef void (*mon_sample_fn)(void *arg);
void monitors_on_sample(struct monitors *ms, mon_sample_fn fn, void *arg);
/* Copies every monitor's latest result into snap. Never waits for a run. */
void monitors_snapshot(struct monitors *ms, struct mon_snapshot *snap);
/* Stops every monitor (killing running commands) and frees ms. */
void monitors_free(struct monitors *ms);

/* Frees the owned command of n specs. */
void mon_specs_release(struct mon_spec *specs, size_t n);

#endif
