/* agent-cmd.c - on-demand script runs on this host. A poller thread
 * long-polls GET /v1/agent/commands; each delivery is started at most once
 * (the server's atomic start, and a record of the delivery ids this host
 * ran), then runs on a worker thread with exec_run: parameters only as
 * environment variables, its own process group, the timeout killing the
 * group. A sender thread per run streams its output (every CMD_FLUSH_MS or
 * CMD_FLUSH_BYTES) and learns from the answers whether the run was
 * cancelled; the worker posts the result, retried through outages.
 * Heartbeats stay on the pulse thread: nothing here blocks them. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "buf.h"
#include "envname.h"
#include "exec.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

#define CMD_MAX_RUNNING 8            /* runs at once on this host */
#define CMD_WAIT_S 25                /* server-side wait of one long-poll */
#define CMD_FLUSH_MS 200             /* output goes out at least this often */
#define CMD_FLUSH_BYTES 4096         /* ... or once this much is waiting */
#define CMD_IDLE_POST_MS 1000        /* a silent run still asks about cancel */
#define CMD_FINAL_FLUSH_TRIES 10     /* live output after the end; the result has it all */
#define CMD_OUTPUT_MAX EXEC_MAX_OUTPUT  /* bytes per stream, as the server keeps */
#define CMD_RECORD_FILE "runs.log"   /* state dir: "start ID" / "done ID" lines */
#define CMD_RECORD_MAX (256 * 1024)  /* bytes before the record is compacted */
#define CMD_REMEMBER 1000            /* delivery ids remembered as done */
#define CMD_ID_MAX 80
#define CMD_STOP_WAIT_MS 4000        /* for runs to end (their scripts killed) on stop */

struct cmd_job {
	char id[CMD_ID_MAX];         /* delivery id */
	long long run;
	char script[128];
	long long version;
	int64_t timeout_ms;
	json_t *cmd;                 /* the command (owned) */
	pthread_mutex_t lock;        /* guards the fields below */
	pthread_cond_t cond;         /* CLOCK_MONOTONIC: output waiting, or done */
	struct buf pend[3];          /* [EXEC_STDOUT], [EXEC_STDERR]: not yet acknowledged */
	size_t taken[3];             /* bytes of each stream taken in (the cap) */
	int64_t sent[3];             /* bytes the server has: the next offset */
	bool cancel;                 /* the server said stop */
	bool done;                   /* the script's process ended */
};

/* The one set of runs of this agent process. */
static struct {
	struct agent *a;
	pthread_t poller;
	bool poller_running;
	pthread_mutex_t lock;        /* guards everything below */
	pthread_cond_t cond;         /* CLOCK_MONOTONIC: a run ended, or stop */
	bool stop;
	int running;                 /* worker threads alive */
	char running_ids[CMD_MAX_RUNNING][CMD_ID_MAX];
	char (*done)[CMD_ID_MAX];    /* ring of CMD_REMEMBER ids */
	size_t ndone, done_next;
	char nonce[40];              /* this process's start nonce */
} cmd;

/* --- small helpers --- */

static void
cmd_cond_init(pthread_cond_t *c)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

static void
cmd_deadline(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static bool
cmd_stopping(void)
{
	bool s;

	pthread_mutex_lock(&cmd.lock);
	s = cmd.stop;
	pthread_mutex_unlock(&cmd.lock);
	return s || agent_stopping();
}

/* Sleeps up to ms; returns early on stop. */
static void
cmd_sleep(int64_t ms)
{
	struct timespec ts;

	cmd_deadline(&ts, ms);
	pthread_mutex_lock(&cmd.lock);
	if (!cmd.stop)
		pthread_cond_timedwait(&cmd.cond, &cmd.lock, &ts);
	pthread_mutex_unlock(&cmd.lock);
}

/* Starts a thread with every signal blocked: signals are the main thread's. */
static int
cmd_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

/* Like agent_request, on the caller's own client (any thread): retries
 * through outages and 5xx until a 2xx or 4xx, or the agent stops. */
static int
cmd_request(struct httpc *c, const char *method, const char *path, json_t *body, json_t **resp,
	    long *status_out, struct herr *err)
{
	int64_t next = 0, last_log = 0;
	int attempts = 0;

	*resp = NULL;
	for (;;) {
		struct herr e = HERR_INIT;
		json_t *r = NULL;
		long status = 0;
		int rc;

		if (cmd_stopping())
			return herr_set(err, -ECANCELED, "%s %s: agent is stopping", method, path);
		rc = httpc_json(c, method, path, body, &status, &r, &e);
		attempts++;
		if (status_out)
			*status_out = status;
		if (rc == 0 && status >= 200 && status < 300) {
			*resp = r;
			return 0;
		}
		if ((rc == 0 && status >= 400 && status < 500) || rc == HERR_TOOBIG) {
			json_t *je = r ? json_object_get(r, "error") : NULL;
			const char *msg = je ? json_string_value(json_object_get(je, "message")) : NULL;

			if (rc < 0)
				herr_set(err, rc, "%s %s: %s", method, path, e.msg);
			else
				herr_set(err, status == 409 ? HERR_CONFLICT : HERR_INVALID,
					 "%s %s: server answered HTTP %ld: %s", method, path, status,
					 msg ? msg : "no message");
			json_decref(r);
			return err->code;
		}
		json_decref(r);
		if (attempts == 1 || mono_ms() - last_log >= 30000) {
			log_warn("%s %s failed (attempt %d), retrying: %s", method, path, attempts,
				 rc < 0 ? e.msg : "server error");
			last_log = mono_ms();
		}
		cmd_sleep(agent_backoff(&next));
	}
}

/* --- the record of deliveries run on this host --- */

static void
cmd_record(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
cmd_record(const char *fmt, ...)
{
	char path[512], line[CMD_ID_MAX + 16];
	va_list ap;
	int fd, n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(line) - 1)
		return;
	line[n++] = '\n';
	agent_state_path(cmd.a, CMD_RECORD_FILE, path, sizeof(path));
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, line, (size_t)n) != n || fsync(fd) < 0)
		log_warn("cannot record to '%s': %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* Under cmd.lock. */
static void
cmd_remember_done(const char *id)
{
	snprintf(cmd.done[cmd.done_next], CMD_ID_MAX, "%s", id);
	cmd.done_next = (cmd.done_next + 1) % CMD_REMEMBER;
	if (cmd.ndone < CMD_REMEMBER)
		cmd.ndone++;
}

/* Under cmd.lock: 'd' if this host ran id before, 'r' if it runs it now. */
static char
cmd_known(const char *id)
{
	for (int i = 0; i < CMD_MAX_RUNNING; i++)
		if (strcmp(cmd.running_ids[i], id) == 0)
			return 'r';
	for (size_t i = 0; i < cmd.ndone; i++)
		if (strcmp(cmd.done[i], id) == 0)
			return 'd';
	return 0;
}

/* Rewrites the record with only what is still worth knowing. */
static void
cmd_record_compact(const char *path)
{
	struct buf b;

	buf_init(&b, CMD_RECORD_MAX);
	pthread_mutex_lock(&cmd.lock);
	for (size_t i = 0; i < cmd.ndone; i++) {
		size_t k = (cmd.done_next + CMD_REMEMBER - cmd.ndone + i) % CMD_REMEMBER;
		buf_addf(&b, "start %s\ndone %s\n", cmd.done[k], cmd.done[k]);
	}
	pthread_mutex_unlock(&cmd.lock);
	if (file_write_atomic(path, b.p ? b.p : "", b.len, 0600) < 0)
		log_warn("cannot compact '%s': %s", path, strerror(errno));
	buf_release(&b);
}

/* Loads the record; returns the ids started but never finished (owned
 * array of strings): the agent stopped while they ran. */
static json_t *
cmd_record_load(void)
{
	char path[512], *text, *line, *save = NULL;
	json_t *started = json_array(), *unfinished = json_array(), *v;
	size_t len = 0, i;

	agent_state_path(cmd.a, CMD_RECORD_FILE, path, sizeof(path));
	text = file_read(path, 4 * CMD_RECORD_MAX, &len);
	if (text == NULL)
		return unfinished;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "start ", 6) == 0 && strlen(line + 6) < CMD_ID_MAX) {
			json_array_append_new(started, json_string(line + 6));
		} else if (strncmp(line, "done ", 5) == 0 && strlen(line + 5) < CMD_ID_MAX) {
			json_array_foreach(started, i, v) {
				if (strcmp(json_string_value(v), line + 5) == 0) {
					json_array_remove(started, i);
					break;
				}
			}
			cmd_remember_done(line + 5);
		}
	}
	free(text);
	json_array_foreach(started, i, v) {
		cmd_remember_done(json_string_value(v));
		json_array_append(unfinished, v);
	}
	json_decref(started);
	if (len > CMD_RECORD_MAX)
		cmd_record_compact(path);
	return unfinished;
}

/* --- output streaming --- */

/* Bytes of p[0..n) that end on a UTF-8 character boundary: an incomplete
 * sequence at the end waits for the rest (unless final). */
static size_t
cmd_utf8_complete(const char *p, size_t n)
{
	for (size_t back = 1; back <= 4 && back <= n; back++) {
		unsigned char c = (unsigned char)p[n - back];
		size_t need;

		if ((c & 0xC0) == 0x80)
			continue;
		need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
		return need > back ? n - back : n;
	}
	return n;
}

static void
cmd_on_output(enum exec_stream s, const char *data, size_t n, void *arg)
{
	struct cmd_job *j = arg;
	size_t room;

	pthread_mutex_lock(&j->lock);
	room = j->taken[s] < CMD_OUTPUT_MAX ? CMD_OUTPUT_MAX - j->taken[s] : 0;
	if (n > room)
		n = room;
	j->taken[s] += n;
	buf_add_trunc(&j->pend[s], data, n);
	if (j->pend[EXEC_STDOUT].len + j->pend[EXEC_STDERR].len >= CMD_FLUSH_BYTES)
		pthread_cond_signal(&j->cond);
	pthread_mutex_unlock(&j->lock);
}

static bool
cmd_should_stop(void *arg)
{
	struct cmd_job *j = arg;
	bool stop;

	pthread_mutex_lock(&j->lock);
	stop = j->cancel;
	pthread_mutex_unlock(&j->lock);
	return stop || agent_stopping();
}

/* One output post of what is waiting. Returns 0 (sent, or nothing to
 * send), or -1 if it did not go through. */
static int
cmd_flush(struct cmd_job *j, struct httpc *c, bool final)
{
	json_t *body = json_object(), *resp = NULL, *text[3] = { NULL, NULL, NULL };
	size_t use[3] = { 0, 0, 0 };
	char path[160];
	long status = 0;
	struct herr err = HERR_INIT;
	int rc;

	pthread_mutex_lock(&j->lock);
	for (int s = EXEC_STDOUT; s <= EXEC_STDERR; s++) {
		bool cut = false;

		use[s] = final ? j->pend[s].len : cmd_utf8_complete(j->pend[s].p, j->pend[s].len);
		if (use[s] == 0 || j->sent[s] >= CMD_OUTPUT_MAX)
			continue;
		text[s] = agent_json_text(j->pend[s].p, use[s], (size_t)(CMD_OUTPUT_MAX - j->sent[s]),
					  &cut);
		json_object_set(body, s == EXEC_STDOUT ? "stdout" : "stderr", text[s]);
		json_object_set_new(body, s == EXEC_STDOUT ? "stdout_offset" : "stderr_offset",
				    json_integer(j->sent[s]));
	}
	pthread_mutex_unlock(&j->lock);
	snprintf(path, sizeof(path), "/v1/agent/runs/%s/output", j->id);
	rc = httpc_json(c, "POST", path, body, &status, &resp, &err);
	json_decref(body);
	if (rc == 0 && (status == 200 || status == 409)) {
		/* 409: the server does not take this chunk (an offset it does not
		 * have): the result carries the whole output anyway */
		pthread_mutex_lock(&j->lock);
		for (int s = EXEC_STDOUT; s <= EXEC_STDERR; s++) {
			if (use[s] == 0)
				continue;
			memmove(j->pend[s].p, j->pend[s].p + use[s], j->pend[s].len - use[s]);
			j->pend[s].len -= use[s];
			j->pend[s].p[j->pend[s].len] = '\0';
			if (text[s] && status == 200)
				j->sent[s] += (int64_t)json_string_length(text[s]);
		}
		if (json_is_true(json_object_get(resp, "cancel")) && !j->cancel) {
			log_info("run %lld ('%s'): cancelled by the server", j->run, j->script);
			j->cancel = true;
		}
		pthread_mutex_unlock(&j->lock);
		rc = 0;
	} else {
		rc = -1;
	}
	for (int s = EXEC_STDOUT; s <= EXEC_STDERR; s++)
		json_decref(text[s]);
	json_decref(resp);
	return rc;
}

static void *
cmd_sender_main(void *arg)
{
	struct cmd_job *j = arg;
	struct httpc c;
	int64_t last_post = mono_ms();
	int final_tries = 0;

	agent_http_init(cmd.a, &c, cmd.a->credential);
	c.timeout_ms = 10000;
	c.max_response = 64 * 1024;
	for (;;) {
		struct timespec ts;
		size_t waiting;
		bool done;

		cmd_deadline(&ts, CMD_FLUSH_MS);
		pthread_mutex_lock(&j->lock);
		if (!j->done && j->pend[EXEC_STDOUT].len + j->pend[EXEC_STDERR].len < CMD_FLUSH_BYTES)
			pthread_cond_timedwait(&j->cond, &j->lock, &ts);
		done = j->done;
		waiting = j->pend[EXEC_STDOUT].len + j->pend[EXEC_STDERR].len;
		pthread_mutex_unlock(&j->lock);
		if (done && (waiting == 0 || final_tries >= CMD_FINAL_FLUSH_TRIES || agent_stopping()))
			break;
		if (waiting == 0 && !done && mono_ms() - last_post < CMD_IDLE_POST_MS)
			continue;
		if (cmd_flush(j, &c, done) == 0)
			last_post = mono_ms();
		else if (done)
			cmd_sleep(200 * ++final_tries);
		if (done)
			final_tries++;
	}
	httpc_release(&c);
	return NULL;
}

/* --- running one delivery --- */

/* The script's whole environment: herd's variables, then the run's, each of
 * which envname_refusal() allows (so none replaces one of herd's). */
static char **
cmd_env(const struct cmd_job *j)
{
	json_t *env = json_object_get(j->cmd, "env"), *v;
	size_t n = 0, cap = 16 + json_object_size(env);
	char **e = xcalloc(cap, sizeof(char *));
	const char *key;

	e[n++] = agent_path_env();
	e[n++] = xstrdup("HOME=/root");
	e[n++] = xasprintf("HERD_SERVER=%s", cmd.a->cfg.server);
	e[n++] = xasprintf("HERD_CLUSTER=%s", cmd.a->cluster);
	e[n++] = xasprintf("HERD_GROUP=%s", cmd.a->group);
	e[n++] = xasprintf("HERD_HOST=%s", cmd.a->host);
	e[n++] = xasprintf("HERD_HOST_ID=%s", cmd.a->cfg.host_id);
	e[n++] = xasprintf("HERD_PRIVATE_IP=%s", cmd.a->private_ip);
	e[n++] = xasprintf("HERD_META_CONFIG=%s/%s", cmd.a->cfg.run_dir, AGENT_HOST_FILE);
	e[n++] = xasprintf("HERD_RUN=%lld", j->run);
	json_object_foreach(env, key, v) {
		const char *val = json_string_value(v), *why;

		/* the server's rule again: an older server could send anything */
		if ((why = envname_refusal(key)) != NULL) {
			log_warn("run %lld: skipping environment variable '%.128s': %s", j->run, key,
				 why);
			continue;
		}
		if (val == NULL || strlen(val) != json_string_length(v)) {
			log_warn("run %lld: skipping environment variable '%s': not a string without NUL",
				 j->run, key);
			continue;
		}
		e[n++] = xasprintf("%s=%s", key, val);
	}
	e[n] = NULL;
	return e;
}

static void
cmd_post_result(struct cmd_job *j, json_t *body)
{
	struct httpc c;
	json_t *resp = NULL;
	struct herr err = HERR_INIT;
	char path[160];
	int rc;

	agent_http_init(cmd.a, &c, cmd.a->credential);
	c.timeout_ms = 30000;
	c.max_response = 64 * 1024;
	snprintf(path, sizeof(path), "/v1/agent/runs/%s/result", j->id);
	rc = cmd_request(&c, "POST", path, body, &resp, NULL, &err);
	httpc_release(&c);
	json_decref(resp);
	if (rc == -ECANCELED)
		return; /* reported as unknown after a restart */
	if (rc < 0)
		log_err("run %lld: result not taken: %s", j->run, err.msg);
	cmd_record("done %s", j->id);
	pthread_mutex_lock(&cmd.lock);
	cmd_remember_done(j->id);
	pthread_mutex_unlock(&cmd.lock);
}

static void
cmd_job_free(struct cmd_job *j)
{
	for (int s = EXEC_STDOUT; s <= EXEC_STDERR; s++)
		buf_release(&j->pend[s]);
	json_decref(j->cmd);
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->cond);
	free(j);
}

static void *
cmd_worker_main(void *arg)
{
	struct cmd_job *j = arg;
	struct exec_opts o = { 0 };
	struct exec_result r;
	struct herr err = HERR_INIT;
	json_t *content = json_object_get(j->cmd, "content"), *body, *out, *errout;
	char dir[512], what[256], **env = cmd_env(j);
	pthread_t sender;
	bool have_sender;
	int rc;

	snprintf(dir, sizeof(dir), "%s/scripts", cmd.a->cfg.run_dir);
	o.name = j->script;
	o.text = json_string_value(content);
	o.text_len = json_string_length(content);
	o.env = env;
	o.dir = dir;
	o.cwd = "/";
	o.timeout_ms = j->timeout_ms;
	o.max_output = CMD_OUTPUT_MAX;
	o.on_output = cmd_on_output;
	o.should_stop = cmd_should_stop;
	o.arg = j;
	have_sender = cmd_thread(&sender, cmd_sender_main, j) == 0;
	log_info("run %lld: running '%s' version %lld (delivery %s)", j->run, j->script, j->version,
		 j->id);
	rc = exec_run(&o, &r, &err);
	for (size_t i = 0; env[i]; i++)
		free(env[i]);
	free(env);
	pthread_mutex_lock(&j->lock);
	j->done = true;
	pthread_cond_signal(&j->cond);
	pthread_mutex_unlock(&j->lock);
	if (have_sender)
		pthread_join(sender, NULL);

	if (rc < 0) {
		snprintf(what, sizeof(what), "could not start: %s", err.msg);
	} else {
		exec_describe(&r, o.timeout_ms, what, sizeof(what));
	}
	log_info("run %lld: '%s' %s", j->run, j->script, what);
	out = agent_json_text(r.out.p ? r.out.p : "", r.out.len, CMD_OUTPUT_MAX, &r.out.truncated);
	errout = agent_json_text(r.err.p ? r.err.p : "", r.err.len, CMD_OUTPUT_MAX,
				 &r.err.truncated);
	body = json_pack("{s:i, s:i, s:b, s:b, s:o, s:o, s:b, s:b, s:I, s:I}", "exit_code",
			 r.exit_code, "signal", r.signal, "timed_out", r.timed_out, "cancelled",
			 r.cancelled, "stdout", out, "stderr", errout, "stdout_truncated",
			 r.out.truncated, "stderr_truncated", r.err.truncated, "started_ms",
			 (json_int_t)r.started_ms, "ended_ms", (json_int_t)r.ended_ms);
	BUG_ON(body == NULL);
	if (rc < 0)
		json_object_set_new(body, "error", json_string(what));
	exec_result_release(&r);
	cmd_post_result(j, body);
	json_decref(body);

	pthread_mutex_lock(&cmd.lock);
	for (int i = 0; i < CMD_MAX_RUNNING; i++)
		if (strcmp(cmd.running_ids[i], j->id) == 0)
			cmd.running_ids[i][0] = '\0';
	cmd.running--;
	pthread_cond_broadcast(&cmd.cond);
	pthread_mutex_unlock(&cmd.lock);
	cmd_job_free(j);
	return NULL;
}

/* Tells the server about a delivery this host will not run (again). */
static void
cmd_refuse(struct httpc *c, const char *id, const char *why)
{
	json_t *body = json_pack("{s:i,s:s}", "exit_code", -1, "error", why), *resp = NULL;
	struct herr err = HERR_INIT;
	char path[160];

	snprintf(path, sizeof(path), "/v1/agent/runs/%s/result", id);
	if (cmd_request(c, "POST", path, body, &resp, NULL, &err) < 0 && err.code != -ECANCELED)
		log_warn("delivery %s: %s", id, err.msg);
	json_decref(body);
	json_decref(resp);
}

/* Starts one delivery: dedup, the server's start, the worker. */
static void
cmd_take(struct httpc *c, json_t *command)
{
	const char *id = json_string_value(json_object_get(command, "id"));
	const char *script = json_string_value(json_object_get(command, "script"));
	json_t *body, *resp = NULL;
	struct herr err = HERR_INIT;
	struct cmd_job *j;
	char path[160], known;
	pthread_t t;
	int rc, slot = -1;

	if (id == NULL || strlen(id) >= CMD_ID_MAX || strchr(id, '/') || script == NULL ||
	    !json_is_string(json_object_get(command, "content"))) {
		log_warn("ignoring a malformed command from the server");
		return;
	}
	pthread_mutex_lock(&cmd.lock);
	known = cmd_known(id);
	pthread_mutex_unlock(&cmd.lock);
	if (known == 'r')
		return;
	if (known == 'd') {
		log_warn("delivery %s was run on this host before: not running it twice", id);
		cmd_refuse(c, id, "this host already ran this delivery: not running it twice");
		return;
	}
	snprintf(path, sizeof(path), "/v1/agent/runs/%s/start", id);
	body = json_pack("{s:s}", "nonce", cmd.nonce);
	rc = cmd_request(c, "POST", path, body, &resp, NULL, &err);
	json_decref(body);
	json_decref(resp);
	if (rc < 0) {
		if (rc == HERR_CONFLICT)
			log_info("delivery %s: not started (%s)", id, err.msg);
		else if (rc != -ECANCELED)
			log_warn("delivery %s: %s", id, err.msg);
		return;
	}
	cmd_record("start %s", id);

	j = xcalloc(1, sizeof(*j));
	snprintf(j->id, sizeof(j->id), "%s", id);
	snprintf(j->script, sizeof(j->script), "%s", script);
	j->run = (long long)json_integer_value(json_object_get(command, "run"));
	j->version = (long long)json_integer_value(json_object_get(command, "version"));
	j->timeout_ms = json_integer_value(json_object_get(command, "timeout_ms"));
	if (j->timeout_ms <= 0)
		j->timeout_ms = 10 * 60 * 1000;
	j->cmd = json_incref(command);
	pthread_mutex_init(&j->lock, NULL);
	cmd_cond_init(&j->cond);
	for (int s = EXEC_STDOUT; s <= EXEC_STDERR; s++)
		buf_init(&j->pend[s], CMD_OUTPUT_MAX);

	pthread_mutex_lock(&cmd.lock);
	for (int i = 0; i < CMD_MAX_RUNNING && slot < 0; i++)
		if (cmd.running_ids[i][0] == '\0')
			slot = i;
	if (slot >= 0) {
		snprintf(cmd.running_ids[slot], CMD_ID_MAX, "%s", id);
		cmd.running++;
	}
	pthread_mutex_unlock(&cmd.lock);
	if (slot < 0 || cmd_thread(&t, cmd_worker_main, j) != 0) {
		/* cannot happen with max= in the poll; say so rather than hang */
		log_err("delivery %s: no room to run it", id);
		if (slot >= 0) {
			pthread_mutex_lock(&cmd.lock);
			cmd.running_ids[slot][0] = '\0';
			cmd.running--;
			pthread_mutex_unlock(&cmd.lock);
		}
		cmd_job_free(j);
		cmd_refuse(c, id, "the agent had no room to run it");
		cmd_record("done %s", id);
		return;
	}
	pthread_detach(t);
}

static void *
cmd_poller_main(void *arg)
{
	struct httpc c;
	json_t *unfinished;
	int64_t next = 0;
	size_t i;
	json_t *v;

	(void)arg;
	agent_http_init(cmd.a, &c, cmd.a->credential);
	c.timeout_ms = (CMD_WAIT_S + 20) * 1000L;
	c.max_response = 32u << 20;
	/* runs this agent was killed in the middle of: say so, never rerun */
	unfinished = cmd_record_load();
	json_array_foreach(unfinished, i, v) {
		log_warn("delivery %s was running when the agent stopped: reporting it", json_string_value(v));
		cmd_refuse(&c, json_string_value(v),
			   "the agent stopped while the script ran: its outcome is unknown");
		cmd_record("done %s", json_string_value(v));
	}
	json_decref(unfinished);
	while (!cmd_stopping()) {
		json_t *resp = NULL, *cmds, *one;
		struct herr err = HERR_INIT;
		char path[96];
		long status = 0;
		int room, rc;

		pthread_mutex_lock(&cmd.lock);
		while (cmd.running >= CMD_MAX_RUNNING && !cmd.stop) {
			struct timespec ts;
			cmd_deadline(&ts, 1000);
			pthread_cond_timedwait(&cmd.cond, &cmd.lock, &ts);
		}
		room = CMD_MAX_RUNNING - cmd.running;
		pthread_mutex_unlock(&cmd.lock);
		if (cmd_stopping())
			break;
		snprintf(path, sizeof(path), "/v1/agent/commands?wait=%d&max=%d", CMD_WAIT_S, room);
		rc = httpc_json(&c, "GET", path, NULL, &status, &resp, &err);
		if (rc < 0 || status != 200 || !json_is_array(json_object_get(resp, "commands"))) {
			if (next == 0) {
				if (rc < 0)
					log_warn("cannot poll for commands: %s", err.msg);
				else
					log_warn("cannot poll for commands: server answered HTTP %ld", status);
			}
			json_decref(resp);
			cmd_sleep(agent_backoff(&next));
			continue;
		}
		if (next)
			log_info("polling for commands again");
		next = 0;
		cmds = json_object_get(resp, "commands");
		json_array_foreach(cmds, i, one)
			cmd_take(&c, one);
		json_decref(resp);
	}
	httpc_release(&c);
	return NULL;
}

int
agent_cmd_start(struct agent *a)
{
	int rc;

	cmd.a = a;
	pthread_mutex_init(&cmd.lock, NULL);
	cmd_cond_init(&cmd.cond);
	cmd.done = xcalloc(CMD_REMEMBER, sizeof(*cmd.done));
	token_random(cmd.nonce, sizeof(cmd.nonce), NULL, 12);
	rc = cmd_thread(&cmd.poller, cmd_poller_main, NULL);
	if (rc != 0) {
		log_err("cannot start the command poller: %s", strerror(rc));
		return -rc;
	}
	cmd.poller_running = true;
	return 0;
}

void
agent_cmd_stop(struct agent *a)
{
	struct timespec ts;

	(void)a;
	if (!cmd.poller_running)
		return;
	pthread_mutex_lock(&cmd.lock);
	cmd.stop = true;
	pthread_cond_broadcast(&cmd.cond);
	/* running scripts see agent_stopping() and are killed: wait a moment */
	cmd_deadline(&ts, CMD_STOP_WAIT_MS);
	while (cmd.running > 0)
		if (pthread_cond_timedwait(&cmd.cond, &cmd.lock, &ts) != 0)
			break;
	pthread_mutex_unlock(&cmd.lock);
	/* the poller may sit in a long-poll: the process exits without it */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 1;
	if (pthread_timedjoin_np(cmd.poller, NULL, &ts) == 0)
		cmd.poller_running = false;
}
