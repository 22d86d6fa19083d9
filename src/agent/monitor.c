/* monitor.c - script monitors; see monitor.h. Thread model: one thread per
 * monitor (at most MON_MAX, 256 KiB stacks), each looping run -> parse ->
 * store -> sleep. exec_run blocks its thread for the command's run (up to
 * its timeout plus MON_KILL_GRACE_MS), which is why monitors have threads
 * of their own: the collection thread never calls into a command, it reads
 * the last stored result under ms->lock, held only to copy a result. */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/exec.h"
#include "agent/monitor.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

#define MON_STACK_BYTES (256u << 10)

struct monitor {
	struct monitors *ms;
	struct mon_spec spec;       /* command owned */
	pthread_t thread;
	bool running;               /* thread started */
	bool stop;                  /* under ms->lock */
	struct mon_result res;      /* under ms->lock */
};

struct monitors {
	pthread_mutex_t lock;
	pthread_cond_t cond;        /* CLOCK_MONOTONIC; wakes sleeping monitors to stop */
	char *dir;
	char **env;
	size_t n;
	struct monitor *m[MON_MAX];
	mon_sample_fn on_sample;    /* set once, before any monitor starts */
	void *sample_arg;
};

const char *
mon_state_name(enum mon_state s)
{
	switch (s) {
	case MON_OK: return "ok";
	case MON_FAILED: return "failed";
	case MON_TIMEOUT: return "timeout";
	default: return "pending";
	}
}

static bool
mon_name_is_valid(const char *s, size_t len)
{
	if (len == 0 || len >= MON_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
		      (i > 0 && c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

static bool
mon_number(const char *s, size_t len, double *v)
{
	char tmp[64], *end;

	if (len == 0 || len >= sizeof(tmp))
		return false;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	*v = strtod(tmp, &end);
	return *end == '\0' && isfinite(*v);
}

static bool
mon_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* A monitor name as a metric name: [^A-Za-z0-9_:] becomes '_', a leading
 * digit gets a '_' before it ("pods-per-node" -> "pods_per_node"). */
static void
mon_metric_name(const char *monitor, char *out, size_t outsz)
{
	size_t n = 0;

	if (*monitor >= '0' && *monitor <= '9' && n + 1 < outsz)
		out[n++] = '_';
	for (const char *p = monitor; *p && n + 1 < outsz; p++) {
		char c = *p;

		out[n++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
					   (c >= '0' && c <= '9') || c == '_' || c == ':'
				   ? c
				   : '_';
	}
	out[n] = '\0';
}

int
mon_parse_output(const char *text, size_t len, const char *monitor, struct mon_result *r,
		 char *err, size_t errsz)
{
	const char *p = text, *end = text + len;
	size_t lineno = 0, content = 0, bare_line = 0;

	r->n = 0;
	r->single = false;
	if (memchr(text, '\0', len))
		return snprintf(err, errsz, "output holds a NUL byte"), HERR_INVALID;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *tok[3];
		size_t toklen[3], ntok = 0;
		double v;

		lineno++;
		while (p < le && ntok < 3) {
			while (p < le && mon_blank(*p))
				p++;
			if (p == le)
				break;
			tok[ntok] = p;
			while (p < le && !mon_blank(*p))
				p++;
			toklen[ntok] = (size_t)(p - tok[ntok]);
			ntok++;
		}
		while (p < le && mon_blank(*p))
			p++;
		if (p < le)
			ntok = 3;   /* a fourth token */
		p = nl ? nl + 1 : end;
		if (ntok == 0 || tok[0][0] == '#')
			continue;
		content++;
		if (ntok == 1) {
			if (!mon_number(tok[0], toklen[0], &v))
				return snprintf(err, errsz, "line %zu: '%.*s' is not a number", lineno,
						(int)(toklen[0] > 40 ? 40 : toklen[0]), tok[0]),
				       HERR_INVALID;
			bare_line = lineno;
			mon_metric_name(monitor, r->v[0].name, sizeof(r->v[0].name));
			r->v[0].value = v;
			continue;
		}
		if (ntok > 2)
			return snprintf(err, errsz, "line %zu: want 'name value' or one number", lineno),
			       HERR_INVALID;
		if (!mon_name_is_valid(tok[0], toklen[0]))
			return snprintf(err, errsz, "line %zu: invalid name '%.*s'", lineno,
					(int)(toklen[0] > 40 ? 40 : toklen[0]), tok[0]),
			       HERR_INVALID;
		if (!mon_number(tok[1], toklen[1], &v))
			return snprintf(err, errsz, "line %zu: '%.*s' is not a finite number", lineno,
					(int)(toklen[1] > 40 ? 40 : toklen[1]), tok[1]),
			       HERR_INVALID;
		if (r->n >= MON_MAX_VALUES)
			return snprintf(err, errsz, "more than %d values", MON_MAX_VALUES), HERR_INVALID;
		for (size_t i = 0; i < r->n; i++)
			if (strlen(r->v[i].name) == toklen[0] &&
			    memcmp(r->v[i].name, tok[0], toklen[0]) == 0)
				return snprintf(err, errsz, "line %zu: '%s' given twice", lineno,
						r->v[i].name),
				       HERR_INVALID;
		memcpy(r->v[r->n].name, tok[0], toklen[0]);
		r->v[r->n].name[toklen[0]] = '\0';
		r->v[r->n].value = v;
		r->n++;
	}
	if (content == 0)
		return snprintf(err, errsz, "no output"), HERR_INVALID;
	if (bare_line) {
		if (content > 1)
			return snprintf(err, errsz, "line %zu: a bare number among 'name value' lines",
					bare_line),
			       HERR_INVALID;
		r->single = true;
		r->n = 1;   /* r->v[0] was set on the bare line */
	}
	return 0;
}

/* The first line of s (at most max bytes), for error texts. */
static int
mon_first_line_len(const char *s, size_t n, int max)
{
	const char *nl = memchr(s, '\n', n);
	size_t len = nl ? (size_t)(nl - s) : n;

	return (int)(len > (size_t)max ? (size_t)max : len);
}

static bool
mon_should_stop(void *arg)
{
	struct monitor *m = arg;
	bool stop;

	pthread_mutex_lock(&m->ms->lock);
	stop = m->stop;
	pthread_mutex_unlock(&m->ms->lock);
	return stop;
}

/* Runs the command once into *res. Returns false if it was stopped. */
static bool
mon_run_once(struct monitor *m, struct mon_result *res)
{
	struct monitors *ms = m->ms;
	struct exec_opts o = { 0 };
	struct exec_result r;
	struct herr err = HERR_INIT;
	char what[96], perr[160];
	int rc;

	o.name = m->spec.name;
	o.text = m->spec.command;
	o.env = ms->env;
	o.dir = ms->dir;
	o.cwd = "/";
	o.timeout_ms = m->spec.timeout_ms;
	o.kill_grace_ms = MON_KILL_GRACE_MS;
	o.max_output = MON_MAX_OUTPUT;
	o.should_stop = mon_should_stop;
	o.arg = m;
	memset(res, 0, sizeof(*res));
	rc = exec_run(&o, &r, &err);
	res->ended_ms = now_ms();
	if (r.cancelled) {
		exec_result_release(&r);
		return false;
	}
	exec_describe(&r, o.timeout_ms, what, sizeof(what));
	if (rc < 0) {
		res->state = MON_FAILED;
		snprintf(res->error, sizeof(res->error), "cannot start: %s", err.msg);
	} else if (r.timed_out) {
		res->state = MON_TIMEOUT;
		snprintf(res->error, sizeof(res->error), "%s", what);
	} else if (r.exit_code != 0 || r.signal != 0) {
		res->state = MON_FAILED;
		if (r.err.len > 0)
			snprintf(res->error, sizeof(res->error), "%s: %.*s", what,
				 mon_first_line_len(r.err.p, r.err.len, 150), r.err.p);
		else
			snprintf(res->error, sizeof(res->error), "%s", what);
	} else if (r.out.truncated) {
		res->state = MON_FAILED;
		snprintf(res->error, sizeof(res->error), "output longer than %u bytes",
			 MON_MAX_OUTPUT);
	} else if (mon_parse_output(r.out.p ? r.out.p : "", r.out.len, m->spec.name, res, perr,
				    sizeof(perr)) < 0) {
		res->state = MON_FAILED;
		snprintf(res->error, sizeof(res->error), "unparsable output: %s", perr);
	} else {
		res->state = MON_OK;
	}
	exec_result_release(&r);
	return true;
}

static void
mon_timespec_at(struct timespec *ts, int64_t mono_at_ms)
{
	ts->tv_sec = (time_t)(mono_at_ms / 1000);
	ts->tv_nsec = (long)(mono_at_ms % 1000) * 1000000L;
}

static void *
mon_main(void *arg)
{
	struct monitor *m = arg;
	struct monitors *ms = m->ms;
	struct mon_result *res = xmalloc(sizeof(*res));   /* off the stack: ~2.5 KiB */
	enum mon_state last = MON_PENDING;
	int64_t next = mono_ms();

	for (;;) {
		int64_t start;

		pthread_mutex_lock(&ms->lock);
		while (!m->stop && mono_ms() < next) {
			struct timespec ts;

			mon_timespec_at(&ts, next);
			pthread_cond_timedwait(&ms->cond, &ms->lock, &ts);
		}
		if (m->stop) {
			pthread_mutex_unlock(&ms->lock);
			break;
		}
		pthread_mutex_unlock(&ms->lock);
		start = mono_ms();
		if (!mon_run_once(m, res))
			break;
		pthread_mutex_lock(&ms->lock);
		res->runs = m->res.runs + 1;
		m->res = *res;
		pthread_mutex_unlock(&ms->lock);
		if (ms->on_sample)
			ms->on_sample(ms->sample_arg);   /* edge pushes: push.c */
		/* log changes of state, not every failure */
		if (res->state != last) {
			if (res->state == MON_OK)
				log_info("monitor '%s' ok", m->spec.name);
			else
				log_warn("monitor '%s' %s: %s", m->spec.name, mon_state_name(res->state),
					 res->error);
			last = res->state;
		}
		next = start + m->spec.interval_ms;
		if (next < mono_ms())
			next = mono_ms();   /* ran past its interval: go again, no burst */
	}
	free(res);
	return NULL;
}

static struct monitor *
mon_start(struct monitors *ms, const struct mon_spec *spec)
{
	struct monitor *m = xcalloc(1, sizeof(*m));
	pthread_attr_t attr;
	sigset_t all, old;
	int rc;

	m->ms = ms;
	m->spec = *spec;
	m->spec.command = xstrdup(spec->command ? spec->command : "");
	if (m->spec.interval_ms < 100)
		m->spec.interval_ms = 100;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, MON_STACK_BYTES);
	/* signals belong to the agent's main thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&m->thread, &attr, mon_main, m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		log_err("cannot start monitor '%s': %s", spec->name, strerror(rc));
		m->res.state = MON_FAILED;
		snprintf(m->res.error, sizeof(m->res.error), "cannot start a thread: %s",
			 strerror(rc));
	} else {
		m->running = true;
	}
	return m;
}

static void
mon_stop(struct monitor *m)
{
	struct monitors *ms = m->ms;

	pthread_mutex_lock(&ms->lock);
	m->stop = true;
	pthread_cond_broadcast(&ms->cond);
	pthread_mutex_unlock(&ms->lock);
	if (m->running)
		pthread_join(m->thread, NULL);
	free(m->spec.command);
	free(m);
}

void
monitors_on_sample(struct monitors *ms, mon_sample_fn fn, void *arg)
{
	ms->on_sample = fn;
	ms->sample_arg = arg;
}

struct monitors *
monitors_new(const char *dir, char *const *env)
{
	struct monitors *ms = xcalloc(1, sizeof(*ms));
	pthread_condattr_t ca;
	size_t n = 0;

	pthread_mutex_init(&ms->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ms->cond, &ca);
	pthread_condattr_destroy(&ca);
	ms->dir = xstrdup(dir);
	while (env && env[n])
		n++;
	ms->env = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		ms->env[i] = xstrdup(env[i]);
	return ms;
}

static bool
mon_spec_equal(const struct mon_spec *a, const struct mon_spec *b)
{
	if (strcmp(a->name, b->name) != 0 || strcmp(a->command, b->command) != 0 ||
	    a->interval_ms != b->interval_ms || a->timeout_ms != b->timeout_ms ||
	    a->labels.n != b->labels.n)
		return false;
	for (size_t i = 0; i < a->labels.n; i++)
		if (strcmp(a->labels.key[i], b->labels.key[i]) != 0 ||
		    strcmp(a->labels.val[i], b->labels.val[i]) != 0)
			return false;
	return true;
}

void
monitors_set(struct monitors *ms, const struct mon_spec *specs, size_t n)
{
	struct monitor *keep[MON_MAX] = { 0 };
	struct monitor *old[MON_MAX];
	size_t nold;

	if (n > MON_MAX) {
		log_warn("%zu monitors configured: only the first %d run", n, MON_MAX);
		n = MON_MAX;
	}
	pthread_mutex_lock(&ms->lock);
	nold = ms->n;
	memcpy(old, ms->m, sizeof(old));
	ms->n = 0;
	pthread_mutex_unlock(&ms->lock);
	/* unchanged monitors keep their thread and result */
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < nold; j++) {
			if (old[j] && mon_spec_equal(&old[j]->spec, &specs[i])) {
				keep[i] = old[j];
				old[j] = NULL;
				break;
			}
		}
	}
	for (size_t j = 0; j < nold; j++) {
		if (old[j]) {
			log_info("monitor '%s' stopped", old[j]->spec.name);
			mon_stop(old[j]);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (keep[i] == NULL) {
			keep[i] = mon_start(ms, &specs[i]);
			log_info("monitor '%s' started: every %lld ms, timeout %lld ms",
				 specs[i].name, (long long)specs[i].interval_ms,
				 (long long)specs[i].timeout_ms);
		}
	}
	pthread_mutex_lock(&ms->lock);
	memcpy(ms->m, keep, sizeof(keep));
	ms->n = n;
	pthread_mutex_unlock(&ms->lock);
}

void
monitors_snapshot(struct monitors *ms, struct mon_snapshot *snap)
{
	pthread_mutex_lock(&ms->lock);
	snap->n = ms->n;
	for (size_t i = 0; i < ms->n; i++) {
		memcpy(snap->m[i].name, ms->m[i]->spec.name, sizeof(snap->m[i].name));
		snap->m[i].labels = ms->m[i]->spec.labels;
		/* the values only as far as used: a result is mostly empty slots */
		snap->m[i].r.state = ms->m[i]->res.state;
		snap->m[i].r.single = ms->m[i]->res.single;
		snap->m[i].r.n = ms->m[i]->res.n;
		memcpy(snap->m[i].r.v, ms->m[i]->res.v, ms->m[i]->res.n * sizeof(struct mon_value));
		memcpy(snap->m[i].r.error, ms->m[i]->res.error, sizeof(snap->m[i].r.error));
		snap->m[i].r.ended_ms = ms->m[i]->res.ended_ms;
		snap->m[i].r.runs = ms->m[i]->res.runs;
	}
	pthread_mutex_unlock(&ms->lock);
}

void
monitors_free(struct monitors *ms)
{
	if (ms == NULL)
		return;
	monitors_set(ms, NULL, 0);
	for (size_t i = 0; ms->env[i]; i++)
		free(ms->env[i]);
	free(ms->env);
	free(ms->dir);
	pthread_cond_destroy(&ms->cond);
	pthread_mutex_destroy(&ms->lock);
	free(ms);
}

void
mon_specs_release(struct mon_spec *specs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		xfree(&specs[i].command);
}
