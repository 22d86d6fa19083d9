/* agent-init.c - the host's init scripts: run in order as the join answer
 * listed them, each result reported before the state changes, stopping at
 * the first failure. Every report the server acknowledged is appended to a
 * record (state_dir/init-done), so a restarted agent neither re-runs a
 * reported script nor loses a report it had not yet made. */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "buf.h"
#include "exec.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

/* What the record says was acknowledged. Scripts run in order and stop at
 * the first failure, so a count and the last outcome say it all. */
struct init_record {
	bool initializing;     /* "initializing" reported */
	bool final;            /* "ready" or "failed" reported */
	size_t results;        /* results reported: scripts 0..results-1 */
	bool failed;           /* the last reported result was a failure */
	char reason[512];      /* its reason, for the "failed" state */
};

/* Record lines: "state initializing", "result 0 ok", "result 1 fail <reason>",
 * "state ready", "state failed". */
static void
init_record_load(struct agent *a, struct init_record *rec)
{
	char path[512], *text, *line, *save = NULL;

	memset(rec, 0, sizeof(*rec));
	text = file_read(agent_state_path(a, AGENT_DONE_FILE, path, sizeof(path)), 1u << 20, NULL);
	if (text == NULL)
		return;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long idx;
		char *end;

		if (strcmp(line, "state initializing") == 0) {
			rec->initializing = true;
		} else if (strcmp(line, "state ready") == 0 || strcmp(line, "state failed") == 0) {
			rec->final = true;
		} else if (strncmp(line, "result ", 7) == 0) {
			idx = strtoul(line + 7, &end, 10);
			if (idx != rec->results) {
				log_warn("ignoring out-of-order line in '%s': %s", path, line);
				continue;
			}
			rec->results = idx + 1;
			rec->failed = strncmp(end, " fail", 5) == 0;
			snprintf(rec->reason, sizeof(rec->reason), "%s",
				 rec->failed && end[5] == ' ' ? end + 6 : "");
		}
	}
	free(text);
}

static void
init_record_add(struct agent *a, bool durable, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Appends a line; durable: fsync'd before returning. Only the line for
 * "initializing" is not: lost in a crash, it costs the restarted agent one
 * more "initializing" report, which the server takes as it takes a retried
 * one, and any later durable line makes it durable too (one file). A
 * result or a final state is always fsync'd before the next report. */
static void
init_record_add(struct agent *a, bool durable, const char *fmt, ...)
{
	char path[512], line[1024];
	va_list ap;
	int fd, n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	for (int i = 0; i < n; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	line[n++] = '\n';
	agent_state_path(a, AGENT_DONE_FILE, path, sizeof(path));
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, line, (size_t)n) != n || (durable && fsync(fd) < 0))
		log_warn("cannot record to '%s': %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, at most U+10FFFF), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xBF;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		len = 2;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		len = 3;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		len = 4;
	else
		return 0;
	if (s[0] == 0xE0)
		lo = 0xA0;
	else if (s[0] == 0xED)
		hi = 0x9F;
	else if (s[0] == 0xF0)
		lo = 0x90;
	else if (s[0] == 0xF4)
		hi = 0x8F;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return len;
}

json_t *
agent_json_text(const char *p, size_t n, size_t max, bool *truncated)
{
	const unsigned char *s = (const unsigned char *)p;
	struct buf b;
	json_t *j;

	buf_init(&b, max);
	for (size_t i = 0; i < n;) {
		size_t len = s[i] ? utf8_len(s + i, n - i) : 0;
		int rc;

		if (len) {
			rc = buf_add(&b, s + i, len);
			i += len;
		} else {
			rc = buf_add(&b, "\xEF\xBF\xBD", 3);
			i++;
		}
		if (rc < 0) {
			/* repairs made it longer than max: cut at a character boundary */
			*truncated = true;
			break;
		}
	}
	j = json_stringn_nocheck(b.p ? b.p : "", b.len);
	buf_release(&b);
	BUG_ON(j == NULL);
	return j;
}

char *
agent_path_env(void)
{
	char exe[PATH_MAX], *slash, want[PATH_MAX + 2], have[sizeof(AGENT_PATH) + 2];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return xasprintf("PATH=%s", AGENT_PATH);
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash == NULL || slash == exe)
		return xasprintf("PATH=%s", AGENT_PATH);
	*slash = '\0';
	snprintf(want, sizeof(want), ":%s:", exe);
	snprintf(have, sizeof(have), ":%s:", AGENT_PATH);
	if (strstr(have, want))
		return xasprintf("PATH=%s", AGENT_PATH);
	return xasprintf("PATH=%s:%s", AGENT_PATH, exe);
}

static bool
init_should_stop(void *arg)
{
	(void)arg;
	return agent_stopping();
}

static int
init_report_state(struct agent *a, const char *state, const char *reason)
{
	struct herr err = HERR_INIT;
	json_t *body = json_pack("{s:s}", "state", state), *resp = NULL;
	int rc;

	if (reason)
		json_object_set_new(body, "reason", json_string(reason));
	rc = agent_request(a, "POST", "/v1/agent/state", body, &resp, &err);
	json_decref(body);
	json_decref(resp);
	if (rc == -ECANCELED)
		return rc;
	/* a 4xx is final: it was logged, and asking again would not help */
	init_record_add(a, strcmp(state, "initializing") != 0, "state %s", state);
	if (reason)
		log_info("host state: %s (%s)", state, reason);
	else
		log_info("host state: %s", state);
	return 0;
}

/* Runs script i and reports its result. Sets *failed and reason. Returns 0,
 * or -ECANCELED (the agent is stopping: nothing reported). */
static int
init_run_one(struct agent *a, size_t i, bool *failed, char *reason, size_t reasonsz)
{
	json_t *s = json_array_get(a->init, i), *content = json_object_get(s, "content");
	const char *name = json_string_value(json_object_get(s, "name"));
	json_int_t version = json_integer_value(json_object_get(s, "version"));
	struct exec_opts o = { 0 };
	struct exec_result r;
	struct herr err = HERR_INIT;
	char dir[512], what[256], *env[10];
	json_t *body, *resp = NULL, *out, *errout;
	size_t n = 0;
	int rc;

	if (name == NULL)
		name = "init";
	env[n++] = agent_path_env();
	env[n++] = xasprintf("HOME=/root");
	env[n++] = xasprintf("HERD_SERVER=%s", a->cfg.server);
	env[n++] = xasprintf("HERD_CLUSTER=%s", a->cluster);
	env[n++] = xasprintf("HERD_GROUP=%s", a->group);
	env[n++] = xasprintf("HERD_HOST=%s", a->host);
	env[n++] = xasprintf("HERD_HOST_ID=%s", a->cfg.host_id);
	env[n++] = xasprintf("HERD_PRIVATE_IP=%s", a->private_ip);
	env[n++] = xasprintf("HERD_META_CONFIG=%s/%s", a->cfg.run_dir, AGENT_HOST_FILE);
	env[n] = NULL;
	snprintf(dir, sizeof(dir), "%s/scripts", a->cfg.run_dir);

	o.name = name;
	o.text = json_string_value(content);
	o.text_len = json_string_length(content);
	o.env = env;
	o.dir = dir;
	o.cwd = "/";
	o.timeout_ms = a->cfg.init_timeout_ms;
	o.should_stop = init_should_stop;
	log_info("running init script %zu/%zu '%s' (version %lld)", i + 1,
		 json_array_size(a->init), name, (long long)version);
	if (o.text == NULL) {
		memset(&r, 0, sizeof(r));
		buf_init(&r.out, 0);
		buf_init(&r.err, EXEC_MAX_OUTPUT);
		r.exit_code = -1;
		r.started_ms = r.ended_ms = now_ms();
		rc = herr_set(&err, HERR_INVALID, "the server sent no content");
	} else {
		rc = exec_run(&o, &r, &err);
	}
	for (size_t k = 0; k < n; k++)
		free(env[k]);
	if (r.cancelled) {
		log_info("init script '%s' stopped: the agent is stopping", name);
		exec_result_release(&r);
		return -ECANCELED;
	}
	if (rc < 0) {
		buf_add_trunc(&r.err, err.msg, strlen(err.msg));
		snprintf(reason, reasonsz, "init script '%s' could not start: %s", name, err.msg);
		*failed = true;
	} else {
		exec_describe(&r, o.timeout_ms, what, sizeof(what));
		snprintf(reason, reasonsz, "init script '%s' %s", name, what);
		*failed = r.exit_code != 0 || r.signal != 0 || r.timed_out;
	}
	if (*failed)
		log_warn("%s", reason);
	else
		log_info("%s", reason);

	/* before the pack: these may set the truncated flags it reads */
	out = agent_json_text(r.out.p ? r.out.p : "", r.out.len, EXEC_MAX_OUTPUT, &r.out.truncated);
	errout = agent_json_text(r.err.p ? r.err.p : "", r.err.len, EXEC_MAX_OUTPUT,
				 &r.err.truncated);
	body = json_pack("{s:I, s:s, s:I, s:i, s:i, s:b, s:o, s:o, s:b, s:b, s:I, s:I}",
			 "index", (json_int_t)i, "script", name, "version", version,
			 "exit_code", r.exit_code, "signal", r.signal, "timed_out", r.timed_out,
			 "stdout", out, "stderr", errout,
			 "stdout_truncated", r.out.truncated, "stderr_truncated", r.err.truncated,
			 "started_ms", (json_int_t)r.started_ms, "ended_ms", (json_int_t)r.ended_ms);
	BUG_ON(body == NULL);
	exec_result_release(&r);
	rc = agent_request(a, "POST", "/v1/agent/init-result", body, &resp, &err);
	json_decref(body);
	json_decref(resp);
	if (rc == -ECANCELED)
		return rc;
	/* a 4xx was logged; the script ran, so it counts as reported either way */
	if (*failed)
		init_record_add(a, true, "result %zu fail %s", i, reason);
	else
		init_record_add(a, true, "result %zu ok", i);
	return 0;
}

int
agent_init_run(struct agent *a)
{
	struct init_record rec;
	size_t n = json_array_size(a->init);
	char reason[512];
	int rc;

	init_record_load(a, &rec);
	if (rec.final) {
		log_info("init scripts were already run and reported");
		return 0;
	}
	if (rec.failed)
		return init_report_state(a, "failed", rec.reason);
	if (rec.results >= n)
		return init_report_state(a, "ready", NULL);
	if (rec.results > 0)
		log_info("resuming init at script %zu/%zu", rec.results + 1, n);
	if (!rec.initializing) {
		rc = init_report_state(a, "initializing", NULL);
		if (rc < 0)
			return rc;
	}
	for (size_t i = rec.results; i < n; i++) {
		bool failed = false;

		rc = init_run_one(a, i, &failed, reason, sizeof(reason));
		if (rc < 0)
			return rc;
		if (failed)
			return init_report_state(a, "failed", reason);
	}
	return init_report_state(a, "ready", NULL);
}
