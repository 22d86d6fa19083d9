/* push.c - the metrics pipeline; see push.h. Threads, all with every signal
 * blocked (signals are the main thread's):
 *   collect  wakes on wall-clock multiples of the push interval, collects,
 *            copies the monitors' latest results (a mutex held for a copy,
 *            never across a command), encodes (in the format of the
 *            moment: push_format_decide), buffers. Nothing it does can
 *            wait on the network or on a command. Woken too after each
 *            monitor run: when a value crossed one of the config's
 *            thresholds (push-edge.c) it runs a cycle at once (an edge
 *            cycle, at most one per PUSH_EDGE_MIN_GAP_MS) whose batch goes
 *            out with whatever is buffered.
 *   send     takes the oldest buffered batches of one format (<= 100,
 *            <= 256 KiB) and POSTs them; retries with jittered backoff while the server is
 *            away; fetches the config when config_version changes.
 *   monitor  one per configured monitor (monitor.c).
 * Every buffer is allocated once in push_new: a cycle allocates nothing. */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/push.h"
#include "buf.h"
#include "httpc.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

#define PUSH_SEND_TIMEOUT_MS 10000
#define PUSH_CONFIG_RETRY_MS 30000      /* after a failed config fetch */
#define PUSH_THREAD_STACK (256u << 10)

struct push {
	/* set once */
	char *server;               /* NULL: no send thread */
	char *credential;
	char *ca_pem;               /* NULL: the system store (or plain http) */
	push_tick_fn on_tick;
	void *arg;
	struct monitors *mons;

	pthread_mutex_t lock;
	pthread_cond_t collect_cond;        /* CLOCK_MONOTONIC: stop, interval change */
	pthread_cond_t send_cond;           /* CLOCK_MONOTONIC: new batch, stop */
	bool stop;                          /* under lock */
	int64_t interval_ms;                /* under lock */
	int64_t config_version;             /* under lock; -1 = none yet */
	bool config_wanted;                 /* under lock: fetch it */
	bool pb_offered;                    /* under lock: the config offers protobuf */
	bool pb_refused;                    /* under lock: a protobuf body was refused */
	enum push_format fmt;               /* under lock: what the next batch is in */
	struct push_buf buf;                /* under lock */
	struct push_edge edge;              /* under lock: thresholds and sides */
	bool edge_check;                    /* under lock: a monitor ran */
	uint64_t edge_total;                /* under lock: edge cycles run */

	/* the collection thread's own */
	struct col_batch *batch;
	struct mon_snapshot *snap;
	char *scratch;                      /* PUSH_MAX_BATCH_BYTES */
	struct push_wire *wire;             /* the protobuf encoder's layout */
	uint64_t cycles;
	bool cut_logged;
	struct col_batch *mbatch;           /* the monitors' series, for edge checks */
	bool edge_pending;                  /* a crossing waits for the rate limit */
	int64_t edge_last_ms;               /* mono: the last edge cycle */
	/* the send thread's own */
	char *sendbuf;                      /* PUSH_MAX_REQUEST_BYTES */

	pthread_t collect_thread, send_thread;
	bool collect_running, send_running;
};

/* --- threads --- */

static void
push_deadline(struct timespec *ts, int64_t mono_at_ms)
{
	ts->tv_sec = (time_t)(mono_at_ms / 1000);
	ts->tv_nsec = (long)(mono_at_ms % 1000) * 1000000L;
}

static int64_t
push_thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Adds each ok monitor's values to the batch: a bare number as a series
 * named after the monitor, `name value` lines as series with a label
 * monitor="<monitor>"; both with the monitor's own labels. Strings point
 * into the snapshot. */
static void
push_add_monitor_series(struct col_batch *b, const struct mon_snapshot *snap)
{
	for (size_t i = 0; i < snap->n; i++) {
		const struct mon_result *r = &snap->m[i].r;
		const struct mon_labels *l = &snap->m[i].labels;
		const char *keys[COL_MAX_LABELS], *vals[COL_MAX_LABELS];
		size_t n = 0;

		if (r->state != MON_OK)
			continue;
		if (!r->single) {
			keys[n] = "monitor";
			vals[n++] = snap->m[i].name;
		}
		for (size_t k = 0; k < l->n && n < COL_MAX_LABELS; k++) {
			keys[n] = l->key[k];
			vals[n++] = l->val[k];
		}
		for (size_t k = 0; k < r->n; k++)
			col_add_labels(b, r->v[k].name, r->v[k].value, keys, vals, n);
	}
}

/* An edge cycle's timestamp: the step it falls in began at the last
 * multiple of the interval; the batch takes that instant, replacing this
 * host's sample of the step, so the autoscaler's newest step holds every
 * host's sample of the round with this host's newest value (docs/metrics.md). */
static int64_t
push_floor(int64_t now, int64_t interval)
{
	return now / interval * interval;
}

static void
push_cycle(struct push *p, int64_t due_ms, bool edge, enum push_format fmt)
{
	struct push_tick t = { 0 };
	/* a system call each (no vDSO for thread CPU time): only for a tick hook */
	int64_t cpu0 = p->on_tick ? push_thread_cpu_ns() : 0;
	size_t len, cut;
	int dropped;

	t.started_ms = now_ms();
	t.due_ms = due_ms;
	/* on time (as good as always): the scheduled instant, so batches of every
	 * host share timestamps and their deltas are exact; late: the truth */
	t.ts_ms = edge || t.started_ms - due_ms <= PUSH_TS_SNAP_MS ? due_ms : t.started_ms;
	t.edge = edge;
	col_collect(p->batch, mono_ms());
	p->batch->ts_ms = t.ts_ms;
	if (p->mons) {
		monitors_snapshot(p->mons, p->snap);
		push_add_monitor_series(p->batch, p->snap);
	} else {
		p->snap->n = 0;
	}
	if (fmt == PUSH_FMT_PROTOBUF)
		len = push_encode_batch_pb(p->batch, p->snap, p->wire, (uint8_t *)p->scratch,
					   PUSH_MAX_BATCH_BYTES, &cut);
	else
		len = push_encode_batch(p->batch, p->snap, p->scratch, PUSH_MAX_BATCH_BYTES, &cut);
	if ((cut > 0 || p->batch->overflow > 0) && !p->cut_logged) {
		log_warn("batch too large: %zu series left out (logged once)",
			 cut + p->batch->overflow);
		p->cut_logged = true;
	}
	pthread_mutex_lock(&p->lock);
	/* the sides of every series: crossings here go out with this batch */
	push_edge_scan(&p->edge, p->batch, NULL);
	if (edge)
		p->edge_total++;
	dropped = len > 0 ? push_buf_add(&p->buf, fmt, p->scratch, len) : 0;
	pthread_cond_signal(&p->send_cond);
	pthread_mutex_unlock(&p->lock);
	if (dropped > 0)
		log_debug("push buffer full: dropped %d oldest batch(es)", dropped);
	t.cycle = ++p->cycles;
	t.cpu_ns = p->on_tick ? push_thread_cpu_ns() - cpu0 : 0;
	t.series = p->batch->n;
	t.format = fmt;
	t.json = p->scratch;
	t.len = len;
	if (p->on_tick)
		p->on_tick(&t, p->arg);
}

/* The first multiple of interval after now (wall clock, ms). */
static int64_t
push_align(int64_t now, int64_t interval)
{
	return (now / interval + 1) * interval;
}

/* Called with the lock held, which it drops meanwhile: the monitors'
 * latest values against the thresholds. Sets edge_pending on a crossing. */
static void
push_edge_check(struct push *p)
{
	const char *metric;

	p->edge_check = false;
	if (p->edge.nthr == 0 || p->mons == NULL)
		return;
	pthread_mutex_unlock(&p->lock);
	monitors_snapshot(p->mons, p->snap);
	p->mbatch->n = 0;
	p->mbatch->overflow = 0;
	push_add_monitor_series(p->mbatch, p->snap);
	pthread_mutex_lock(&p->lock);
	if (push_edge_scan(&p->edge, p->mbatch, &metric) > 0) {
		log_debug("'%s' crossed a threshold: pushing at once", metric);
		p->edge_pending = true;
	}
}

/* A monitor ran (its thread): check its value on the collection thread. */
static void
push_on_sample(void *arg)
{
	struct push *p = arg;

	pthread_mutex_lock(&p->lock);
	if (p->edge.nthr > 0) {
		p->edge_check = true;
		pthread_cond_signal(&p->collect_cond);
	}
	pthread_mutex_unlock(&p->lock);
}

static void *
push_collect_main(void *arg)
{
	struct push *p = arg;
	int64_t interval, due;
	enum push_format fmt;

	col_init();
	pthread_mutex_lock(&p->lock);
	interval = p->interval_ms;
	due = push_align(now_ms(), interval);
	while (!p->stop) {
		int64_t now = now_ms(), wait = due - now;

		if (p->interval_ms != interval) {
			interval = p->interval_ms;
			due = push_align(now, interval);
			continue;
		}
		if (wait > interval || wait < -interval) {
			/* the wall clock stepped (or we were frozen): start afresh */
			if (wait < -interval)
				log_warn("collection is %lld ms late: skipping to the next interval",
					 (long long)-wait);
			due = push_align(now, interval);
			continue;
		}
		if (wait > 0 && p->edge_check) {
			push_edge_check(p);
			continue;
		}
		if (wait > 0 && p->edge_pending) {
			int64_t gap = p->edge_last_ms + PUSH_EDGE_MIN_GAP_MS - mono_ms();

			if (p->edge_last_ms == 0 || gap <= 0) {
				fmt = p->fmt;
				p->edge_pending = false;
				pthread_mutex_unlock(&p->lock);
				push_cycle(p, push_floor(now, interval), true, fmt);
				p->edge_last_ms = mono_ms();
				pthread_mutex_lock(&p->lock);
				continue;
			}
			if (gap < wait)
				wait = gap;
		}
		if (wait > 0) {
			struct timespec ts;

			push_deadline(&ts, mono_ms() + wait);
			pthread_cond_timedwait(&p->collect_cond, &p->lock, &ts);
			continue;
		}
		fmt = p->fmt;
		pthread_mutex_unlock(&p->lock);
		push_cycle(p, due, false, fmt);
		pthread_mutex_lock(&p->lock);
		p->edge_pending = false;    /* that batch carried the crossing */
		due += interval;
	}
	pthread_mutex_unlock(&p->lock);
	col_release();
	return NULL;
}

/* Waits on send_cond until mono_at or stop. Called with the lock held. */
static void
push_send_sleep(struct push *p, int64_t mono_at)
{
	while (!p->stop && mono_ms() < mono_at) {
		struct timespec ts;

		push_deadline(&ts, mono_at);
		pthread_cond_timedwait(&p->send_cond, &p->lock, &ts);
	}
}

/* GET /v1/agent/config and apply it. Returns true on success. */
static bool
push_fetch_config(struct push *p, struct httpc *c, bool *failing)
{
	struct herr err = HERR_INIT;
	struct push_config cfg;
	json_t *resp = NULL;
	long status = 0;
	int rc;

	rc = httpc_json(c, "GET", "/v1/agent/config", NULL, &status, &resp, &err);
	if (rc == 0 && status >= 200 && status < 300)
		rc = push_config_parse(resp, &cfg, &err);
	else if (rc == 0)
		rc = herr_set(&err, HERR_UNAVAIL, "server answered HTTP %ld", status);
	json_decref(resp);
	if (rc < 0) {
		if (!*failing)
			log_warn("cannot get the agent config (retrying every %d s): %s",
				 PUSH_CONFIG_RETRY_MS / 1000, err.msg);
		*failing = true;
		return false;
	}
	*failing = false;
	log_info("agent config %lld: push every %lld ms, %zu monitor(s), %zu threshold(s), "
		 "protobuf %s", (long long)cfg.version, (long long)cfg.interval_ms, cfg.nmon,
		 cfg.nthr, cfg.protobuf ? "offered" : "not offered");
	push_apply_config(p, &cfg);
	push_config_release(&cfg);
	return true;
}

static void *
push_send_main(void *arg)
{
	struct push *p = arg;
	struct httpc c;
	int64_t backoff = 0, config_at = 0;
	json_int_t last_answer = -1;        /* config_version in the last answer */
	size_t per_request = PUSH_MAX_BATCHES_PER_REQUEST;
	bool failing = false, refusing = false, config_failing = false;
	struct buf answer;                  /* kept: a push allocates nothing for it */

	httpc_init(&c, p->server, p->credential);
	if (p->ca_pem)
		httpc_trust_ca_pem(&c, p->ca_pem, strlen(p->ca_pem), false);
	c.timeout_ms = PUSH_SEND_TIMEOUT_MS;
	c.max_response = 64u << 10;
	buf_init(&answer, c.max_response);
	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct herr err = HERR_INIT;
		enum push_format fmt = PUSH_FMT_JSON;
		json_int_t av;
		size_t len, n;
		long status = 0;
		bool was_refused, refused;
		char field[64];
		int rc;

		if (p->config_wanted && mono_ms() >= config_at) {
			bool ok;

			pthread_mutex_unlock(&p->lock);
			ok = push_fetch_config(p, &c, &config_failing);
			pthread_mutex_lock(&p->lock);
			if (ok)
				p->config_wanted = false;
			else
				config_at = mono_ms() + PUSH_CONFIG_RETRY_MS;
			continue;
		}
		len = push_buf_take(&p->buf, p->sendbuf, PUSH_MAX_REQUEST_BYTES, per_request, &n,
				    &fmt);
		if (len == 0) {
			struct timespec ts;

			/* nothing to send: sleep until a batch comes (or the config retry) */
			push_deadline(&ts, p->config_wanted ? config_at : mono_ms() + 3600000);
			pthread_cond_timedwait(&p->send_cond, &p->lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&p->lock);
		buf_reset(&answer);
		rc = httpc_send(&c, "POST", "/v1/agent/metrics",
				fmt == PUSH_FMT_PROTOBUF ? PUSHWIRE_CONTENT_TYPE : "application/json",
				p->sendbuf, len, &status, &answer, &err);
		pthread_mutex_lock(&p->lock);
		was_refused = p->pb_refused;
		field[0] = '\0';
		if (rc == 0 && status == 400 && fmt == PUSH_FMT_PROTOBUF)
			push_answer_error_field(answer.p ? answer.p : "", answer.len, field,
						sizeof(field));
		refused = rc == 0 && push_format_refused(fmt, status, field);
		if (refused) {
			/* the offer was not this server's (an older one behind the
			 * same address): what is encoded in protobuf cannot go */
			p->pb_refused = true;
			p->fmt = push_format_decide(p->pb_offered, true);
			push_buf_done(&p->buf, PUSH_REJECTED);
			if (!was_refused)
				log_warn("server cannot read a protobuf push (HTTP %ld): %zu batch(es) "
					 "dropped, pushing JSON until the next config", status, n);
			continue;
		}
		if (rc == 0 && status >= 200 && status < 300) {
			push_buf_done(&p->buf, PUSH_SENT);
			refusing = false;
			if (failing)
				log_info("metrics reach the server again (%zu batches sent, %llu dropped "
					 "in all)", n, (unsigned long long)p->buf.dropped_total);
			failing = false;
			backoff = 0;
			per_request = PUSH_MAX_BATCHES_PER_REQUEST;
			/* a new version: fetch it now (a failed fetch of the same
			 * version waits for its retry time, not for every push) */
			if (push_answer_config_version(answer.p ? answer.p : "", answer.len, &av)) {
				if (av != p->config_version && av != last_answer) {
					p->config_wanted = true;
					config_at = 0;
				}
				last_answer = av;
			}
			continue;
		}
		if (rc == 0 && status == 413 && n > 1) {
			/* too much at once: halve and go on */
			push_buf_done(&p->buf, PUSH_FAILED);
			per_request = n / 2;
			continue;
		}
		if (rc == 0 && (status == 400 || status == 413 || status == 422)) {
			/* the server's final word on these: retrying cannot help */
			push_buf_done(&p->buf, PUSH_REJECTED);
			if (!refusing)
				log_err("server refused %zu metrics batch(es) with HTTP %ld: dropped "
					"(logged once until a push goes through)", n, status);
			refusing = true;
			continue;
		}
		/* unreachable, 5xx, 401/403 (a credential may come back), 404 (an
		 * older server): keep the batches, the buffer bounds them */
		push_buf_done(&p->buf, PUSH_FAILED);
		if (!failing) {
			if (rc < 0)
				log_warn("metrics push failed, buffering: %s", err.msg);
			else
				log_warn("metrics push failed, buffering: server answered HTTP %ld",
					 status);
		}
		failing = true;
		push_send_sleep(p, mono_ms() + agent_backoff(&backoff));
	}
	pthread_mutex_unlock(&p->lock);
	buf_release(&answer);
	httpc_release(&c);
	return NULL;
}

/* --- lifecycle --- */

struct push *
push_new(const struct push_opts *o)
{
	struct push *p = xcalloc(1, sizeof(*p));
	pthread_condattr_t ca;

	p->server = o->server ? xstrdup(o->server) : NULL;
	p->credential = o->credential ? xstrdup(o->credential) : NULL;
	p->ca_pem = o->ca_pem ? xstrdup(o->ca_pem) : NULL;
	p->on_tick = o->on_tick;
	p->arg = o->arg;
	p->interval_ms = o->interval_ms > 0 ? o->interval_ms : PUSH_INTERVAL_MS;
	p->config_version = -1;
	p->config_wanted = p->server != NULL;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->collect_cond, &ca);
	pthread_cond_init(&p->send_cond, &ca);
	pthread_condattr_destroy(&ca);
	push_buf_init(&p->buf, o->max_batches, o->max_bytes);
	p->batch = xcalloc(1, sizeof(*p->batch));
	p->snap = xcalloc(1, sizeof(*p->snap));
	p->mbatch = xcalloc(1, sizeof(*p->mbatch));
	p->scratch = xmalloc(PUSH_MAX_BATCH_BYTES);
	p->wire = xmalloc(sizeof(*p->wire));
	if (p->server)
		p->sendbuf = xmalloc(PUSH_MAX_REQUEST_BYTES);
	p->mons = monitors_new(o->monitor_dir ? o->monitor_dir : AGENT_RUN_DIR "/monitors", o->env);
	monitors_on_sample(p->mons, push_on_sample, p);
	return p;
}

static int
push_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	sigset_t all, old;
	int rc;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, PUSH_THREAD_STACK);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(t, &attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return -rc;
}

int
push_start(struct push *p)
{
	int rc = push_thread(&p->collect_thread, push_collect_main, p);

	if (rc < 0)
		return rc;
	p->collect_running = true;
	if (p->server) {
		rc = push_thread(&p->send_thread, push_send_main, p);
		if (rc < 0)
			return rc;
		p->send_running = true;
	}
	return 0;
}

void
push_apply_config(struct push *p, const struct push_config *c)
{
	pthread_mutex_lock(&p->lock);
	p->config_version = c->version;
	p->pb_offered = c->protobuf;
	p->pb_refused = false;
	p->fmt = push_format_decide(p->pb_offered, p->pb_refused);
	push_edge_set(&p->edge, c->thr, c->nthr);
	if (c->interval_ms > 0 && c->interval_ms != p->interval_ms) {
		p->interval_ms = c->interval_ms;
		pthread_cond_signal(&p->collect_cond);
	}
	pthread_mutex_unlock(&p->lock);
	monitors_set(p->mons, c->mon, c->nmon);
}

bool
push_stop(struct push *p)
{
	struct timespec ts;
	bool ok = true;

	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->collect_cond);
	pthread_cond_broadcast(&p->send_cond);
	pthread_mutex_unlock(&p->lock);
	monitors_set(p->mons, NULL, 0);
	if (p->collect_running)
		pthread_join(p->collect_thread, NULL);
	p->collect_running = false;
	if (p->send_running) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 2;
		if (pthread_timedjoin_np(p->send_thread, NULL, &ts) != 0)
			ok = false;   /* stuck in a request: the process is leaving anyway */
		else
			p->send_running = false;
	}
	return ok;
}

void
push_free(struct push *p)
{
	if (p == NULL)
		return;
	BUG_ON(p->collect_running || p->send_running);
	monitors_free(p->mons);
	push_buf_release(&p->buf);
	free(p->batch);
	free(p->snap);
	free(p->mbatch);
	free(p->scratch);
	free(p->wire);
	free(p->sendbuf);
	free(p->server);
	free(p->credential);
	free(p->ca_pem);
	pthread_cond_destroy(&p->collect_cond);
	pthread_cond_destroy(&p->send_cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

uint64_t
push_edge_total(struct push *p)
{
	uint64_t n;

	pthread_mutex_lock(&p->lock);
	n = p->edge_total;
	pthread_mutex_unlock(&p->lock);
	return n;
}

uint64_t
push_dropped_total(struct push *p)
{
	uint64_t n;

	pthread_mutex_lock(&p->lock);
	n = p->buf.dropped_total;
	pthread_mutex_unlock(&p->lock);
	return n;
}

/* --- the agent's hooks --- */

static struct push *agent_push;

void
agent_push_start(struct agent *a)
{
	struct push_opts o = { 0 };
	char dir[512], *env[10];
	size_t n = 0;
	int rc;

	env[n++] = agent_path_env();    /* as for init scripts: `herd meta` works */
	env[n++] = xasprintf("HOME=/root");
	env[n++] = xasprintf("HERD_SERVER=%s", a->cfg.server);
	env[n++] = xasprintf("HERD_CLUSTER=%s", a->cluster);
	env[n++] = xasprintf("HERD_GROUP=%s", a->group);
	env[n++] = xasprintf("HERD_HOST=%s", a->host);
	env[n++] = xasprintf("HERD_HOST_ID=%s", a->cfg.host_id);
	env[n++] = xasprintf("HERD_PRIVATE_IP=%s", a->private_ip);
	env[n++] = xasprintf("HERD_META_CONFIG=%s/%s", a->cfg.run_dir, AGENT_HOST_FILE);
	env[n] = NULL;
	snprintf(dir, sizeof(dir), "%s/monitors", a->cfg.run_dir);
	o.server = a->cfg.server;
	o.credential = a->credential;
	o.ca_pem = a->ca_pem;
	o.monitor_dir = dir;
	o.env = env;
	agent_push = push_new(&o);
	for (size_t i = 0; i < n; i++)
		free(env[i]);
	rc = push_start(agent_push);
	if (rc < 0)
		log_err("cannot start the metrics threads: %s", strerror(-rc));
}

void
agent_push_stop(void)
{
	if (agent_push == NULL)
		return;
	if (!push_stop(agent_push)) {
		/* a request is stuck (up to its 10 s timeout): leave without it,
		 * as agent.c does for a stuck heartbeat; exit() would tear libcurl
		 * down under the thread's feet */
		log_warn("a metrics push is stuck in a request: leaving without it");
		fflush(NULL);
		_exit(0);
	}
	push_free(agent_push);
	agent_push = NULL;
}
