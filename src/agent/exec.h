/* exec.h - runs one script (given as text) as its own process group, with
 * exactly the environment given, stdout and stderr captured apart into capped
 * buffers, and a timeout that kills the whole group. Used by the agent for
 * init scripts and on-demand runs. Daemons a script leaves behind keep
 * running: exec returns once the script's own process has exited. */
#ifndef HERD_EXEC_H
#define HERD_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "herr.h"

#define EXEC_DIR "/run/herd/scripts"    /* default home of script files */
#define EXEC_MAX_OUTPUT (64u * 1024)    /* default cap per stream, bytes */
#define EXEC_KILL_GRACE_MS 2000         /* SIGTERM to SIGKILL */

enum exec_stream {
	EXEC_STDOUT = 1,
	EXEC_STDERR = 2,
};

/* Receives every chunk of output as it is read, before capping. */
typedef void (*exec_output_fn)(enum exec_stream stream, const char *data, size_t n, void *arg);
/* Polled while the script runs (at least every 200 ms); true stops it the way
 * a timeout does, and the result says `cancelled`. */
typedef bool (*exec_stop_fn)(void *arg);

struct exec_opts {
	const char *name;           /* for the file name and logs; NULL = "script" */
	const char *text;           /* the script; "#!" picks the interpreter, else /bin/sh */
	size_t text_len;            /* bytes; 0 = strlen(text) */
	char *const *env;           /* NULL-terminated "K=V": the whole environment */
	const char *dir;            /* where the script file is written; NULL = EXEC_DIR */
	const char *cwd;            /* working directory; NULL = "/" */
	int64_t timeout_ms;         /* 0 = none */
	int64_t kill_grace_ms;      /* 0 = EXEC_KILL_GRACE_MS */
	size_t max_output;          /* per stream, bytes; 0 = EXEC_MAX_OUTPUT */
	exec_output_fn on_output;   /* optional */
	exec_stop_fn should_stop;   /* optional */
	void *arg;                  /* passed to both callbacks */
};

struct exec_result {
	struct buf out;             /* stdout, capped; out.truncated if bytes were dropped */
	struct buf err;             /* stderr, likewise */
	int exit_code;              /* 0-255, or -1 when a signal ended it (or it never ran) */
	int signal;                 /* the signal that ended it, or 0 */
	bool timed_out;             /* killed because timeout_ms passed */
	bool cancelled;             /* killed because should_stop said so */
	pid_t pid;                  /* the script's pid (= its process group id) */
	pid_t sink_pid;             /* see exec_run; 0 if none was needed */
	int64_t started_ms;         /* wall clock */
	int64_t ended_ms;           /* wall clock */
};

/* Runs a script and waits for its own process to end (or the timeout).
 * The text is written to a new file (mode 0700) in o->dir, executed with
 * stdin from /dev/null, in a new process group, as the calling user, with
 * default signal dispositions, and the file is removed afterwards.
 *
 * On timeout or cancel, SIGTERM goes to the whole group, then SIGKILL after
 * the grace. After a normal exit nothing is killed: output already in the
 * pipes is read and exec returns. If a background process still holds the
 * pipes, a small detached "sink" process (sink_pid; not a child of the
 * caller) takes them over and discards what is written until they close, so
 * the daemon never blocks on a full pipe nor dies of SIGPIPE.
 *
 * r is initialised here (release it with exec_result_release, whatever the
 * return). Returns 0 if the script ran, whatever its outcome; or a negative
 * code with a message if it could not be started (-errno from writing the
 * file, pipe or fork; HERR_TOOBIG past EXEC_MAX_RUNNING runs at once). */
int exec_run(const struct exec_opts *o, struct exec_result *r, struct herr *err);

/* Frees the output buffers. */
void exec_result_release(struct exec_result *r);

/* Writes "exited with code 3", "was killed by signal 9 (Killed)", "timed out
 * after 10m0s" or "was cancelled" into out; returns out. */
const char *exec_describe(const struct exec_result *r, int64_t timeout_ms, char *out,
			  size_t outsz);

/* Turns on reaping of every child of the process while exec_run waits (for
 * a PID 1 or a subreaper, whose orphans must not stay zombies). Off by default:
 * exec_run then waits only for its own children. */
void exec_set_reap_all(bool on);

/* Reaps every exited child without blocking; statuses of scripts exec_run is
 * waiting for are kept for it, others are discarded. Call it on SIGCHLD.
 * Returns how many children were reaped. Thread-safe. */
int exec_reap(void);

#define EXEC_MAX_RUNNING 32         /* scripts running at once, per process */

#endif
