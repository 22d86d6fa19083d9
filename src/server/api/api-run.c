/* api-run.c - script runs. POST /v1/runs makes one run of one script version
 * with a record per target host (hosts that are not ready are recorded as
 * `skipped`, with the reason); agents take their deliveries by long-poll,
 * mark each started exactly once, stream its output and post its result;
 * operators list runs, wait for one, follow its logs and cancel it. This
 * file is the HTTP side; the runs themselves are model/run.c's.
 *
 * Delivery and dedup. A run_hosts row is deliverable to its own host while
 * it is `queued`. Handing it out stamps delivered_ms (the row then holds one
 * of the run's `parallel` slots) but leaves it queued, so an answer lost on
 * the way is simply handed out again on the host's next poll. The one step
 * that counts is `start`: queued -> running happens once, in one UPDATE
 * guarded by the state. A retry of that same start (same nonce) is answered
 * 200 again; any other start of the delivery gets 409 and the agent skips it.
 * The agent also remembers the deliveries it ran, so a replayed or duplicated
 * delivery never runs the script twice.
 *
 * Output is not a kick (it would wake every long-poll and the controllers
 * many times a second): followers look again every FOLLOW_SLICE_MS. Starts
 * that change nothing others wait on do not kick either; creation, results
 * and cancels do. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "model/run.h"
#include "util.h"
#include "xalloc.h"

#define RUN_WAIT_MAX_S 60        /* ?wait= of GET /v1/runs/:id and logs */
#define CMD_WAIT_MAX_S 60        /* ?wait= of GET /v1/agent/commands */
#define CMD_MAX 16               /* commands per answer */
#define FOLLOW_SLICE_MS 250      /* followers look for new output this often */
#define WAIT_SLICE_MS 5000       /* --wait looks for vanished hosts this often */
#define FOLLOW_CHUNKS 256        /* output chunks per answer */
#define LOGS_PAGE 100            /* hosts per answer of the full logs */
#define LIST_DEFAULT 50
#define LIST_MAX 1000
#define DELIVERY_STALE_MS 60000  /* a delivery not started by then frees its slot */
#define SETTLE_GRACE_MS 60000    /* running past timeout + this with no result: timed out */
#define NONCE_MAX 64

/* --- helpers --- */

static json_int_t
geti(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? json_integer_value(v) : json_is_true(v) ? 1 : 0;
}

static void
set_time(json_t *o, const char *key, json_int_t ms)
{
	char ts[40];

	json_object_set_new(o, key, ms > 0 ? json_string(fmt_time(ms, ts, sizeof(ts))) : json_null());
}

/* A run id from the URL: digits only. */
static bool
parse_id(const char *s, int64_t *id)
{
	char *end;
	long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	v = strtoll(s, &end, 10);
	if (*end || v <= 0)
		return false;
	*id = v;
	return true;
}

/* A delivery id "<run>-<host id>" from the URL; the host part must be the
 * caller's own. */
static bool
parse_delivery(struct req *rq, int64_t *run_id)
{
	const char *d = req_param(rq, 0), *dash = d ? strchr(d, '-') : NULL;
	char num[24];

	if (dash == NULL || dash == d || (size_t)(dash - d) >= sizeof(num) ||
	    strcmp(dash + 1, rq->who.host_id) != 0) {
		reply_errf(rq, HERR_NOTFOUND, "", "no delivery '%s' for this host", d ? d : "");
		return false;
	}
	memcpy(num, d, (size_t)(dash - d));
	num[dash - d] = '\0';
	if (!parse_id(num, run_id)) {
		reply_errf(rq, HERR_NOTFOUND, "", "no delivery '%s' for this host", d);
		return false;
	}
	return true;
}

static json_t *
counts_json(const int counts[RH__COUNT], char *summary, size_t n)
{
	json_t *o = json_object();
	size_t used = 0;

	summary[0] = '\0';
	for (int i = 0; i < RH__COUNT; i++) {
		json_object_set_new(o, run_hstate_name(i), json_integer(counts[i]));
		if (counts[i] && used < n)
			used += (size_t)snprintf(summary + used, n - used, "%s%d %s", used ? ", " : "",
						 counts[i], run_hstate_name(i));
	}
	return o;
}

static json_t *
rh_to_json(const struct run_host *rh)
{
	json_t *o = json_object();
	int64_t st = rh->started_ms, en = rh->ended_ms;

	json_object_set_new(o, "host", json_string(rh->host));
	json_object_set_new(o, "host_id", json_string(rh->host_id));
	json_object_set_new(o, "cluster", json_string(rh->cluster));
	json_object_set_new(o, "group", json_string(rh->grp));
	json_object_set_new(o, "state", json_string(run_hstate_name(rh->state)));
	json_object_set_new(o, "reason", json_string(rh->reason));
	json_object_set_new(o, "exit_code", rh->exit_code >= 0 ? json_integer(rh->exit_code)
							       : json_null());
	json_object_set_new(o, "signal", json_integer(rh->signal));
	json_object_set_new(o, "delivery", json_string(rh->delivery));
	json_object_set_new(o, "deliveries", json_integer(rh->deliveries));
	/* rolling runs (run.rolling not null): its batch (1, 2, ...) and step */
	json_object_set_new(o, "batch", json_integer(rh->batch + 1));
	json_object_set_new(o, "phase", json_string(run_phase_name(rh->phase)));
	set_time(o, "started", st);
	set_time(o, "ended", en);
	json_object_set_new(o, "started_ms", json_integer(st));
	json_object_set_new(o, "ended_ms", json_integer(en));
	json_object_set_new(o, "duration_ms", st && en ? json_integer(en - st) : json_null());
	json_object_set_new(o, "stdout_bytes", json_integer(rh->stdout_bytes));
	json_object_set_new(o, "stderr_bytes", json_integer(rh->stderr_bytes));
	json_object_set_new(o, "stdout_truncated", json_boolean(rh->stdout_truncated));
	json_object_set_new(o, "stderr_truncated", json_boolean(rh->stderr_truncated));
	if (rh->stdout_text) {
		json_object_set_new(o, "stdout", json_string(rh->stdout_text));
		json_object_set_new(o, "stderr", json_string(rh->stderr_text ? rh->stderr_text : ""));
	}
	return o;
}

/* The API form of a run; env values only for operators and admins (they
 * may hold secrets), names for everyone. */
static json_t *
run_to_json(const struct run *r, bool show_env)
{
	json_t *o = json_object(), *env = json_deep_copy(r->env);
	char d[32], summary[256];
	const char *key;
	json_t *v;

	json_object_set_new(o, "id", json_integer(r->id));
	json_object_set_new(o, "script", json_string(r->script));
	json_object_set_new(o, "version", json_integer(r->version));
	json_object_set_new(o, "hash", json_string(r->hash));
	json_object_set_new(o, "target_kind", json_string(r->target_kind));
	json_object_set_new(o, "target", json_string(r->target));
	if (env == NULL)
		env = json_object();
	if (!show_env)
		json_object_foreach(env, key, v)
			json_object_set_new(env, key, json_string("(hidden)"));
	json_object_set_new(o, "env", env);
	json_object_set_new(o, "timeout", json_string(fmt_duration(r->timeout_ms, d, sizeof(d))));
	json_object_set_new(o, "timeout_ms", json_integer(r->timeout_ms));
	json_object_set_new(o, "parallel", json_integer(r->parallel));
	if (r->batch > 0)
		json_object_set_new(o, "rolling",
				    json_pack("{s:i,s:b,s:s,s:I,s:b}", "batch", r->batch, "drain",
					      r->drain, "health_gate",
					      fmt_duration(r->gate_ms, d, sizeof(d)), "health_gate_ms",
					      (json_int_t)r->gate_ms, "stop_on_failure",
					      r->stop_on_failure));
	else
		json_object_set_new(o, "rolling", json_null());
	json_object_set_new(o, "created_by", json_string(r->created_by));
	set_time(o, "created", r->created_ms);
	json_object_set_new(o, "created_ms", json_integer(r->created_ms));
	set_time(o, "ended", r->ended_ms);
	json_object_set_new(o, "state", json_string(r->state));
	json_object_set_new(o, "cancel_requested", json_boolean(r->cancel_requested));
	json_object_set_new(o, "counts", counts_json(r->counts, summary, sizeof(summary)));
	json_object_set_new(o, "summary", json_string(summary));
	return o;
}

/* The run with its hosts, for answers. NULL with err set. */
static json_t *
run_full_json(struct req *rq, int64_t id, struct herr *err)
{
	struct run_host *rh = NULL;
	struct run r;
	json_t *hosts, *o;
	size_t i, n = 0;

	if (run_get(rq->srv->store, id, &r, err) < 0)
		return NULL;
	if (run_hosts_get(rq->srv->store, id, "", -1, 0, false, &rh, &n, err) < 0) {
		run_release(&r);
		return NULL;
	}
	o = run_to_json(&r, req_role_at_least(rq, ROLE_OPERATOR));
	hosts = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(hosts, rh_to_json(&rh[i]));
	json_object_set_new(o, "hosts", hosts);
	run_hosts_free(rh, n);
	run_release(&r);
	return o;
}

/* Resolves records of hosts that vanished or went silent under a run
 * (runs_settle); called by the readers of runs. Kicks when it changed
 * something. */
static void
settle(struct server *s)
{
	struct herr err = HERR_INIT;
	int64_t n = 0;

	if (runs_settle(s->store, now_ms(), SETTLE_GRACE_MS, &n, &err) < 0) {
		log_warn("runs: cannot settle: %s", err.msg);
		return;
	}
	if (n > 0) {
		log_info("runs: settled %lld host record(s) of vanished or silent hosts", (long long)n);
		server_kick_commands(s, NULL, 0);   /* freed `parallel` slots */
	}
}

/* --- POST /v1/runs --- */

void
api_run_create(struct req *rq)
{
	static const char *const known[] = { "script", "version", "host", "group", "cluster",
					     "env", "timeout", "parallel", "batch", "drain",
					     "health_gate", "stop_on_failure", NULL };
	static const char *const kinds_t[] = { "host", "group", "cluster", NULL };
	struct run_spec rs = { .timeout_ms = RUN_TIMEOUT_DEFAULT_MS };
	struct herr err = HERR_INIT;
	json_t *b = req_json(rq), *v, *out;
	const char *key;
	char batch[24];
	int64_t id;

	if (b == NULL)
		return;
	json_object_foreach(b, key, v) {
		int k;
		for (k = 0; known[k] && strcmp(known[k], key) != 0; k++)
			;
		if (known[k] == NULL)
			return reply_errf(rq, HERR_INVALID, key, "unknown field '%s' for a run", key);
	}
	rs.script = json_string_value(json_object_get(b, "script"));
	if (rs.script == NULL || !script_name_is_valid(rs.script))
		return reply_errf(rq, HERR_INVALID, "script", "must name a script");
	v = json_object_get(b, "version");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 1))
		return reply_errf(rq, HERR_INVALID, "version", "must be a version number (1, 2, ...)");
	rs.version = v ? json_integer_value(v) : 0;
	for (int k = 0; kinds_t[k]; k++) {
		v = json_object_get(b, kinds_t[k]);
		if (v == NULL || json_is_null(v))
			continue;
		if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 150)
			return reply_errf(rq, HERR_INVALID, kinds_t[k], "must be a %s name", kinds_t[k]);
		if (rs.target_kind)
			return reply_errf(rq, HERR_INVALID, kinds_t[k],
					  "give one target: host, group or cluster (not %s and %s)",
					  rs.target_kind, kinds_t[k]);
		rs.target_kind = kinds_t[k];
		rs.target = json_string_value(v);
	}
	if (rs.target_kind == NULL)
		return reply_errf(rq, HERR_INVALID, "group", "a run needs a target: host, group or cluster");
	rs.env = json_object_get(b, "env");
	if (run_env_check(rs.env, &err) < 0)
		return reply_err(rq, &err);
	if (json_is_null(rs.env))
		rs.env = NULL;
	v = json_object_get(b, "timeout");
	if (v) {
		if (json_is_integer(v))
			rs.timeout_ms = json_integer_value(v) * 1000;
		else if (!json_is_string(v) ||
			 parse_duration_ms(json_string_value(v), &rs.timeout_ms) < 0)
			return reply_errf(rq, HERR_INVALID, "timeout",
					  "must be a duration like '90s', '10m' or '2h'");
		if (rs.timeout_ms < 1000 || rs.timeout_ms > RUN_TIMEOUT_MAX_MS)
			return reply_errf(rq, HERR_INVALID, "timeout", "must be between 1s and 24h");
	}
	v = json_object_get(b, "parallel");
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > RUN_PARALLEL_MAX)
			return reply_errf(rq, HERR_INVALID, "parallel",
					  "must be between 0 (all at once) and %d", RUN_PARALLEL_MAX);
		rs.parallel = (int)json_integer_value(v);
	}
	/* a rolling run: batch by batch (ctl/rolling.h) */
	v = json_object_get(b, "batch");
	if (v && !json_is_null(v)) {
		if (json_is_integer(v) && json_integer_value(v) >= 1 &&
		    json_integer_value(v) <= RUN_HOSTS_MAX)
			snprintf(batch, sizeof(batch), "%lld", (long long)json_integer_value(v));
		else if (json_is_string(v) && json_string_length(v) > 0 &&
			 json_string_length(v) < sizeof(batch))
			snprintf(batch, sizeof(batch), "%s", json_string_value(v));
		else
			return reply_errf(rq, HERR_INVALID, "batch",
					  "must be a number of hosts (1 or more) or a percentage ('25%%')");
		rs.batch = batch;
	}
	static const char *const rolling_only[] = { "drain", "health_gate", "stop_on_failure", NULL };
	for (int k = 0; rolling_only[k]; k++) {
		v = json_object_get(b, rolling_only[k]);
		if (v == NULL || json_is_null(v))
			continue;
		if (rs.batch == NULL)
			return reply_errf(rq, HERR_INVALID, rolling_only[k],
					  "is an option of a rolling run: give batch too");
		if (k != 1 && !json_is_boolean(v))
			return reply_errf(rq, HERR_INVALID, rolling_only[k], "must be true or false");
	}
	rs.drain = json_is_true(json_object_get(b, "drain"));
	rs.stop_on_failure = json_is_true(json_object_get(b, "stop_on_failure"));
	v = json_object_get(b, "health_gate");
	if (v && !json_is_null(v)) {
		if (json_is_integer(v))
			rs.gate_ms = json_integer_value(v) * 1000;
		else if (!json_is_string(v) ||
			 parse_duration_ms(json_string_value(v), &rs.gate_ms) < 0)
			return reply_errf(rq, HERR_INVALID, "health_gate",
					  "must be a duration like '30s' or '5m'");
		if (rs.gate_ms < 0 || rs.gate_ms > 3600 * 1000LL)
			return reply_errf(rq, HERR_INVALID, "health_gate", "must be between 0s and 1h");
	}
	rs.who = rq->who.name;
	if (run_create(rq->srv, &rs, &id, rq->audit_detail, sizeof(rq->audit_detail), &err) < 0)
		return reply_err(rq, &err);
	out = run_full_json(rq, id, &err);
	if (out == NULL)
		return reply_err(rq, &err);
	reply_json(rq, 201, out);
}

/* --- reading runs --- */

void
api_run_list(struct req *rq)
{
	struct herr err = HERR_INIT;
	const char *lim = req_query(rq, "limit"), *before = req_query(rq, "before");
	struct run_filter f = { .script = req_query(rq, "script"), .state = req_query(rq, "state"),
				.host = req_query(rq, "host") };
	struct run *runs = NULL;
	json_t *items, *out;
	long limit = LIST_DEFAULT;
	size_t i, n = 0;

	if (lim && parse_long(lim, 1, LIST_MAX, &limit) < 0)
		return reply_errf(rq, HERR_INVALID, "limit", "must be between 1 and %d", LIST_MAX);
	if (before && !parse_id(before, &f.before_id))
		return reply_errf(rq, HERR_INVALID, "before", "must be a run id");
	f.limit = (int)limit;
	settle(rq->srv);
	if (run_list(rq->srv->store, &f, &runs, &n, &err) < 0)
		return reply_err(rq, &err);
	items = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(items, run_to_json(&runs[i], req_role_at_least(rq, ROLE_OPERATOR)));
	out = json_pack("{s:o}", "items", items);
	if ((long)n == limit)
		json_object_set_new(out, "next", json_integer(runs[n - 1].id));
	runs_free(runs, n);
	reply_json(rq, 200, out);
}

/* A long-poll that looks again every slice (rq->wait_deadline_ms is
 * renewed per slice) until its own deadline. */
struct follow_state {
	int64_t until_ms;   /* mono: answer (maybe empty) by then */
};

/* GET /v1/runs/:id[?wait=S]: with wait, answers once the run has ended
 * (or after S seconds) - what `herd script run --wait` polls. */
void
api_run_get(struct req *rq)
{
	struct herr err = HERR_INIT;
	const char *w = req_query(rq, "wait");
	char state[16];
	json_t *o;
	int64_t id;
	long wait_s = 0;

	if (!parse_id(req_param(rq, 0), &id))
		return reply_errf(rq, HERR_NOTFOUND, "", "no run '%s'", req_param(rq, 0));
	if (w && parse_long(w, LONG_MIN, LONG_MAX, &wait_s) < 0)
		return reply_errf(rq, HERR_INVALID, "wait", "must be a number of seconds");
	settle(rq->srv);
	if (run_state_get(rq->srv->store, id, state, sizeof(state), &err) < 0)
		return reply_err(rq, &err);
	if (w && strcmp(state, "running") == 0) {
		struct follow_state *ws = rq->state;
		int64_t now = mono_ms();

		if (ws == NULL) {
			long s = wait_s;
			ws = xcalloc(1, sizeof(*ws));
			ws->until_ms = now + (s < 0 ? 0 : s > RUN_WAIT_MAX_S ? RUN_WAIT_MAX_S : s) * 1000;
			rq->state = ws;
			rq->state_free = free;
		}
		if (now < ws->until_ms) {
			/* woken by results (they kick); settle again every slice */
			rq->wait_deadline_ms = 0;
			return req_wait(rq, ws->until_ms - now < WAIT_SLICE_MS ? ws->until_ms - now
									     : WAIT_SLICE_MS);
		}
	}
	o = run_full_json(rq, id, &err);
	if (o == NULL)
		return reply_err(rq, &err);
	reply_json(rq, 200, o);
}

/* Resolves ?host= (NAME, CLUSTER/NAME or id) to a host of the run. */
static int
run_host_filter(struct req *rq, int64_t id, char *host_id, size_t n)
{
	struct herr err = HERR_INIT;
	const char *h = req_query(rq, "host");

	host_id[0] = '\0';
	if (h == NULL || *h == '\0')
		return 0;
	if (run_host_resolve(rq->srv->store, id, h, host_id, n, &err) < 0) {
		reply_err(rq, &err);
		return -1;
	}
	return 0;
}

/* ?follow=1: the output chunks after ?offset= (a cursor: the last chunk id
 * seen), waiting up to ?wait= seconds for some; done once the run (or the
 * host of ?host=) has ended and every chunk was handed out. */
static void
run_logs_follow(struct req *rq, int64_t id, const char *host_id)
{
	struct herr err = HERR_INIT;
	const char *off = req_query(rq, "offset"), *w = req_query(rq, "wait");
	struct follow_state *fs = rq->state;
	struct run_chunk *c = NULL;
	struct run_host rh;
	json_t *chunks;
	int64_t cursor = 0, now = mono_ms();
	char state[16];
	bool ended;
	size_t i, n = 0;

	if (off && *off && !(off[0] == '0' && off[1] == '\0') && !parse_id(off, &cursor))
		return reply_errf(rq, HERR_INVALID, "offset", "must be a cursor from a previous answer");
	if (fs == NULL) {
		long s = 25;
		if (w && parse_long(w, LONG_MIN, LONG_MAX, &s) < 0)
			return reply_errf(rq, HERR_INVALID, "wait", "must be a number of seconds");
		fs = xcalloc(1, sizeof(*fs));
		fs->until_ms = now + (s < 0 ? 0 : s > RUN_WAIT_MAX_S ? RUN_WAIT_MAX_S : s) * 1000;
		rq->state = fs;
		rq->state_free = free;
	}
	/* the state first: a host's result is stored after its last output */
	if (*host_id) {
		if (run_host_get(rq->srv->store, id, host_id, &rh, &err) < 0)
			return err.code == HERR_NOTFOUND
				       ? reply_errf(rq, HERR_NOTFOUND, "", "no run %lld", (long long)id)
				       : reply_err(rq, &err);
		snprintf(state, sizeof(state), "%s", run_hstate_name(rh.state));
		ended = run_hstate_is_final(rh.state);
		run_host_release(&rh);
	} else {
		if (run_state_get(rq->srv->store, id, state, sizeof(state), &err) < 0)
			return reply_err(rq, &err);
		ended = strcmp(state, "running") != 0;
	}
	if (run_output_after(rq->srv->store, id, host_id, cursor, FOLLOW_CHUNKS, &c, &n, &err) < 0)
		return reply_err(rq, &err);
	if (n == 0 && !ended && now < fs->until_ms) {
		run_chunks_free(c, n);
		/* a fresh deadline per slice: output does not kick (see top) */
		rq->wait_deadline_ms = 0;
		return req_wait(rq, fs->until_ms - now < FOLLOW_SLICE_MS ? fs->until_ms - now
									: FOLLOW_SLICE_MS);
	}
	chunks = json_array();
	for (i = 0; i < n; i++) {
		json_array_append_new(chunks, json_pack("{s:s,s:s,s:s}", "host", c[i].host, "stream",
							c[i].stream == 2 ? "stderr" : "stdout",
							"data", c[i].data));
		cursor = c[i].id;
	}
	reply_json(rq, 200, json_pack("{s:I,s:s,s:b,s:I,s:o}", "run", (json_int_t)id, "state",
				      state, "done", ended && n < FOLLOW_CHUNKS, "offset",
				      (json_int_t)cursor, "chunks", chunks));
	run_chunks_free(c, n);
}

/* GET /v1/runs/:id/logs[?host=H][&follow=1&offset=N&wait=S]: without
 * follow, the recorded output of each host (LOGS_PAGE hosts per answer,
 * ?after= the last seq for the next page). */
void
api_run_logs(struct req *rq)
{
	struct herr err = HERR_INIT;
	const char *after = req_query(rq, "after");
	long after_seq = -1;
	struct run_host *rh = NULL;
	char host_id[64], state[16];
	json_t *hosts, *out;
	int64_t id;
	size_t i, n = 0;

	if (after && parse_long(after, -1, LONG_MAX, &after_seq) < 0)
		return reply_errf(rq, HERR_INVALID, "after",
				  "must be a host's seq from the last page (-1: from the start)");
	if (!parse_id(req_param(rq, 0), &id))
		return reply_errf(rq, HERR_NOTFOUND, "", "no run '%s'", req_param(rq, 0));
	if (run_state_get(rq->srv->store, id, state, sizeof(state), &err) < 0)
		return reply_err(rq, &err);
	if (run_host_filter(rq, id, host_id, sizeof(host_id)) < 0)
		return;
	if (req_query(rq, "follow") && strcmp(req_query(rq, "follow"), "0") != 0)
		return run_logs_follow(rq, id, host_id);
	if (run_hosts_get(rq->srv->store, id, host_id, after ? after_seq : -1, LOGS_PAGE, true,
			  &rh, &n, &err) < 0)
		return reply_err(rq, &err);
	hosts = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(hosts, rh_to_json(&rh[i]));
	out = json_pack("{s:I,s:s,s:o}", "run", (json_int_t)id, "state", state, "hosts", hosts);
	if (n == LOGS_PAGE)
		json_object_set_new(out, "next", json_integer(rh[LOGS_PAGE - 1].seq));
	run_hosts_free(rh, n);
	reply_json(rq, 200, out);
}

/* POST /v1/runs/:id/cancel: hosts not started yet are cancelled at once;
 * running ones learn it from their next output post and are killed. */
void
api_run_cancel(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *o;
	int64_t id, n = 0;

	if (!parse_id(req_param(rq, 0), &id))
		return reply_errf(rq, HERR_NOTFOUND, "", "no run '%s'", req_param(rq, 0));
	if (run_cancel(rq->srv->store, id, now_ms(), &n, &err) < 0)
		return reply_err(rq, &err);
	snprintf(rq->audit_detail, sizeof(rq->audit_detail), "cancel run %lld (%lld not started)",
		 (long long)id, (long long)n);
	server_kick(rq->srv);
	o = run_full_json(rq, id, &err);
	if (o == NULL)
		return reply_err(rq, &err);
	reply_json(rq, 200, o);
}

/* --- agents --- */

/* GET /v1/agent/commands?wait=S&max=N: this host's deliveries (run_take),
 * waiting up to S seconds for one. */
void
api_agent_commands(struct req *rq)
{
	struct herr err = HERR_INIT;
	const char *w = req_query(rq, "wait"), *m = req_query(rq, "max");
	long wait_s = 0, max = CMD_MAX;
	struct run_cmd *c = NULL;
	json_t *cmds;
	size_t i, n = 0;

	if (w && parse_long(w, LONG_MIN, LONG_MAX, &wait_s) < 0)
		return reply_errf(rq, HERR_INVALID, "wait", "must be a number of seconds");
	if (m && parse_long(m, LONG_MIN, LONG_MAX, &max) < 0)
		return reply_errf(rq, HERR_INVALID, "max", "must be a number");
	if (wait_s < 0)
		wait_s = 0;
	if (wait_s > CMD_WAIT_MAX_S)
		wait_s = CMD_WAIT_MAX_S;
	if (max < 1 || max > CMD_MAX)
		max = CMD_MAX;
	if (run_take(rq->srv->store, rq->who.host_id, now_ms(), DELIVERY_STALE_MS, (int)max, &c, &n,
		     &err) < 0)
		return reply_err(rq, &err);
	if (n == 0 && wait_s > 0 && (rq->wait_deadline_ms == 0 || mono_ms() < rq->wait_deadline_ms)) {
		run_cmds_free(c, n);
		/* resumed by a command kick for this host (or every host) only */
		return req_wait_commands(rq, rq->who.host_id, wait_s * 1000);
	}
	cmds = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(cmds,
			json_pack("{s:s,s:I,s:s,s:I,s:s,s:s,s:O,s:I}", "id", c[i].delivery, "run",
				  (json_int_t)c[i].run_id, "script", c[i].script, "version",
				  (json_int_t)c[i].version, "hash", c[i].hash, "content", c[i].content,
				  "env", c[i].env, "timeout_ms", (json_int_t)c[i].timeout_ms));
	run_cmds_free(c, n);
	reply_json(rq, 200, json_pack("{s:o}", "commands", cmds));
}

/* POST /v1/agent/runs/:delivery/start {"nonce":N}: the one atomic step;
 * see the top of this file. */
void
api_agent_run_start(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *b = rq->body.len ? req_json(rq) : NULL;
	const char *nonce = b ? json_string_value(json_object_get(b, "nonce")) : NULL;
	int64_t run_id;

	if (rq->body.len && b == NULL)
		return;
	if (!parse_delivery(rq, &run_id))
		return;
	if (nonce && strlen(nonce) > NONCE_MAX)
		return reply_errf(rq, HERR_INVALID, "nonce", "must be at most %d characters", NONCE_MAX);
	if (run_start(rq->srv->store, run_id, rq->who.host_id, req_param(rq, 0), nonce, now_ms(),
		      &err) < 0)
		return reply_err(rq, &err);
	reply_json(rq, 200, json_pack("{s:b}", "start", 1));
}

/* One stream of an output post: its text and offset (-1 when the offset
 * is not a byte offset). */
static struct run_output_in
output_in(const json_t *b, const char *key, const char *offkey)
{
	json_t *data = json_object_get(b, key), *off = json_object_get(b, offkey);
	struct run_output_in in = {
		.data = json_string_value(data),
		.len = json_string_length(data),
		.offset = json_is_integer(off) ? json_integer_value(off) : -1,
	};

	return in;
}

/* POST /v1/agent/runs/:delivery/output {"stdout": TEXT, "stdout_offset": N,
 * "stderr": ..., "stderr_offset": M}: live output. Offsets make a retried
 * post harmless. The answer says whether to stop: {"cancel": true} once the
 * run was cancelled (or the record ended without the agent). */
void
api_agent_run_output(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *b = req_json(rq);
	struct run_output_in out, errout;
	int64_t run_id;
	bool cancel;

	if (b == NULL || !parse_delivery(rq, &run_id))
		return;
	out = output_in(b, "stdout", "stdout_offset");
	errout = output_in(b, "stderr", "stderr_offset");
	if (run_output_add(rq->srv->store, run_id, rq->who.host_id, req_param(rq, 0), &out, &errout,
			   &cancel, &err) < 0)
		return reply_err(rq, &err);
	reply_json(rq, 200, json_pack("{s:b}", "cancel", cancel));
}

/* Checks one output text of a result: a string of at most RUN_OUTPUT_MAX
 * bytes (or absent). */
static bool
result_text_ok(struct req *rq, const json_t *b, const char *key)
{
	json_t *v = json_object_get(b, key);

	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_string(v)) {
		reply_errf(rq, HERR_INVALID, key, "must be a string");
		return false;
	}
	if (json_string_length(v) > RUN_OUTPUT_MAX) {
		reply_errf(rq, HERR_TOOBIG, key, "must be at most %d bytes", RUN_OUTPUT_MAX);
		return false;
	}
	return true;
}

/* POST /v1/agent/runs/:delivery/result: the outcome and the whole
 * (capped) output, which replaces what was streamed. A repeat is answered
 * 200 and changes nothing. Accepted from `queued` too: an agent that
 * remembers having run a delivery the server still has queued (a store
 * restored from a backup) reports it this way instead of running it again. */
void
api_agent_run_result(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *b = req_json(rq);
	struct run_result r;
	char reason[600];
	enum run_hstate to;
	int64_t run_id;
	bool repeat;

	if (b == NULL || !parse_delivery(rq, &run_id))
		return;
	if (!result_text_ok(rq, b, "stdout") || !result_text_ok(rq, b, "stderr"))
		return;
	r = (struct run_result){
		.has_exit_code = json_is_integer(json_object_get(b, "exit_code")),
		.exit_code = geti(b, "exit_code"),
		.signal = geti(b, "signal"),
		.timed_out = geti(b, "timed_out") != 0,
		.cancelled = geti(b, "cancelled") != 0,
		.error = json_string_value(json_object_get(b, "error")),
		.out = json_string_value(json_object_get(b, "stdout")),
		.errout = json_string_value(json_object_get(b, "stderr")),
		.out_truncated = geti(b, "stdout_truncated") != 0,
		.err_truncated = geti(b, "stderr_truncated") != 0,
	};
	if (r.error && strlen(r.error) > 500)
		return reply_errf(rq, HERR_INVALID, "error", "must be at most 500 characters");
	if (json_object_get(b, "exit_code") && !r.has_exit_code)
		return reply_errf(rq, HERR_INVALID, "exit_code", "must be an integer");
	if (run_result_record(rq->srv->store, run_id, rq->who.host_id, req_param(rq, 0), &r,
			      now_ms(), &to, &repeat, reason, sizeof(reason), &err) < 0)
		return reply_err(rq, &err);
	if (repeat)
		return reply_json(rq, 200, json_pack("{s:s,s:b}", "state", run_hstate_name(to),
						     "repeat", 1));
	log_info("run %lld on %s: %s", (long long)run_id, rq->who.name, reason);
	/* a freed `parallel` slot (a delivery for any host of the run), or
	 * the end others --wait for */
	server_kick_commands(rq->srv, NULL, 0);
	reply_json(rq, 200, json_pack("{s:s}", "state", run_hstate_name(to)));
}
