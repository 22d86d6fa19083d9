/* api-run.c - script runs. POST /v1/runs makes one run of one script version
 * with a record per target host (hosts that are not ready are recorded as
 * `skipped`, with the reason); agents take their deliveries by long-poll,
 * mark each started exactly once, stream its output and post its result;
 * operators list runs, wait for one, follow its logs and cancel it.
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
#include "envname.h"
#include "log.h"
#include "run.h"
#include "store/store.h"
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
#define OUTPUT_KEEP_MS (24LL * 3600 * 1000) /* live chunks of ended runs kept this long */
#define NONCE_MAX 64

/* --- pure parts (run.h) --- */

static const char *const rh_names[RH__COUNT] = {
	[RH_QUEUED] = "queued",       [RH_RUNNING] = "running",
	[RH_SUCCEEDED] = "succeeded", [RH_FAILED] = "failed",
	[RH_TIMED_OUT] = "timed_out", [RH_CANCELLED] = "cancelled",
	[RH_SKIPPED] = "skipped",
};

const char *
run_hstate_name(enum run_hstate s)
{
	return s < RH__COUNT ? rh_names[s] : "unknown";
}

enum run_hstate
run_hstate_parse(const char *s)
{
	for (int i = 0; s && i < RH__COUNT; i++)
		if (strcmp(rh_names[i], s) == 0)
			return (enum run_hstate)i;
	return RH__COUNT;
}

bool
run_hstate_is_final(enum run_hstate s)
{
	return s != RH_QUEUED && s != RH_RUNNING && s < RH__COUNT;
}

int
run_env_check(const json_t *env, struct herr *err)
{
	char fp[RUN_ENV_KEY_MAX + 8];
	const char *k, *why;
	json_t *v;

	if (env == NULL || json_is_null(env))
		return 0;
	if (!json_is_object(env))
		return herr_field(err, HERR_INVALID, "env", "must be a mapping of NAME to a string value");
	if (json_object_size(env) > RUN_ENV_MAX)
		return herr_field(err, HERR_INVALID, "env", "must have at most %d variables",
				  RUN_ENV_MAX);
	json_object_foreach((json_t *)env, k, v) {
		size_t n = strlen(k);

		if (n == 0 || n > RUN_ENV_KEY_MAX)
			return herr_field(err, HERR_INVALID, "env",
					  "variable names must be 1-%d characters", RUN_ENV_KEY_MAX);
		snprintf(fp, sizeof(fp), "env.%s", k);
		if ((why = envname_refusal(k)) != NULL)
			return herr_field(err, HERR_INVALID, fp, "variable name '%s' refused: %s", k,
					  why);
		if (!json_is_string(v))
			return herr_field(err, HERR_INVALID, fp, "must be a string");
		if (json_string_length(v) > RUN_ENV_VALUE_MAX)
			return herr_field(err, HERR_INVALID, fp, "must be at most %d bytes",
					  RUN_ENV_VALUE_MAX);
		if (strlen(json_string_value(v)) != json_string_length(v))
			return herr_field(err, HERR_INVALID, fp, "must not contain NUL characters");
	}
	return 0;
}

static int
env_name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void
run_env_names(const json_t *env, char *out, size_t outsz)
{
	const char *names[RUN_ENV_MAX], *k;
	size_t n = 0, len = 0, i;
	json_t *v;

	if (outsz == 0)
		return;
	out[0] = '\0';
	json_object_foreach((json_t *)env, k, v) {
		if (n < RUN_ENV_MAX)
			names[n++] = k;
	}
	qsort(names, n, sizeof(names[0]), env_name_cmp);
	for (i = 0; i < n; i++) {
		/* room for this name and, unless it is the last, ",+N more" after it */
		size_t need = strlen(names[i]) + (i ? 1 : 0);

		if (i + 1 < n)
			need += (size_t)snprintf(NULL, 0, ",+%zu more", n - i - 1);
		if (len + need >= outsz)
			break;
		len += (size_t)snprintf(out + len, outsz - len, "%s%s", i ? "," : "", names[i]);
	}
	if (i < n)
		snprintf(out + len, outsz - len, "%s+%zu more", i ? "," : "", n - i);
}

enum run_hstate
run_outcome(int exit_code, int signal, bool timed_out, bool cancelled, const char *error,
	    int64_t timeout_ms, char *reason, size_t reasonsz)
{
	char d[32];

	if (timed_out) {
		snprintf(reason, reasonsz, "timed out after %s",
			 fmt_duration(timeout_ms, d, sizeof(d)));
		return RH_TIMED_OUT;
	}
	if (cancelled) {
		snprintf(reason, reasonsz, "cancelled while it ran");
		return RH_CANCELLED;
	}
	if (error && *error) {
		snprintf(reason, reasonsz, "%s", error);
		return RH_FAILED;
	}
	if (signal) {
		snprintf(reason, reasonsz, "killed by signal %d", signal);
		return RH_FAILED;
	}
	snprintf(reason, reasonsz, "exited with code %d", exit_code);
	return exit_code == 0 ? RH_SUCCEEDED : RH_FAILED;
}

const char *
run_state_of(const int c[RH__COUNT], bool cancel_requested)
{
	if (c[RH_QUEUED] || c[RH_RUNNING])
		return "running";
	if (cancel_requested && c[RH_CANCELLED])
		return "cancelled";
	if (c[RH_FAILED] || c[RH_TIMED_OUT])
		return "failed";
	if (c[RH_CANCELLED])
		return "cancelled";
	if (c[RH_SUCCEEDED])
		return "succeeded";
	return "skipped";
}

size_t
run_utf8_cut(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

/* --- helpers --- */

static json_int_t
geti(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? json_integer_value(v) : json_is_true(v) ? 1 : 0;
}

static const char *
getstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
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

#define RUN_COLS                                                                      \
	"id, script, version, hash, target_kind, target, env, timeout_ms, parallel,"  \
	" created_by, created_ms, ended_ms, state, cancel_requested"
#define RH_COLS                                                                       \
	"run_id, seq, host_id, host, cluster, grp, state, reason, exit_code, signal,"  \
	" delivery, deliveries, started_ms, ended_ms, stdout_len, stderr_len,"          \
	" stdout_truncated, stderr_truncated"

static json_t *
run_load(struct store *st, int64_t id, struct herr *err)
{
	json_t *row = store_row(st, err, "SELECT " RUN_COLS " FROM runs WHERE id = ?", "[I]",
				(json_int_t)id);

	if (row == NULL && err->code == 0)
		herr_set(err, HERR_NOTFOUND, "no run %lld", (long long)id);
	return row;
}

static int
run_counts(struct store *st, int64_t id, int counts[RH__COUNT], struct herr *err)
{
	json_t *rows = NULL, *r;
	size_t i;

	memset(counts, 0, sizeof(int) * RH__COUNT);
	if (store_q(st, &rows, NULL, err,
		    "SELECT state, COUNT(*) AS n FROM run_hosts WHERE run_id = ? GROUP BY state", "[I]",
		    (json_int_t)id) < 0)
		return err->code;
	json_array_foreach(rows, i, r) {
		enum run_hstate s = run_hstate_parse(getstr(r, "state"));
		if (s < RH__COUNT)
			counts[s] = (int)geti(r, "n");
	}
	json_decref(rows);
	return 0;
}

/* Sets the run's state from its hosts'; in the caller's transaction.
 * *changed (may be NULL) tells whether it moved. */
static int
run_refresh(struct store *st, int64_t id, bool *changed, struct herr *err)
{
	int counts[RH__COUNT];
	json_t *row = store_row(st, err, "SELECT state, cancel_requested FROM runs WHERE id = ?",
				"[I]", (json_int_t)id);
	const char *to;
	int rc = 0;

	if (changed)
		*changed = false;
	if (row == NULL)
		return err->code ? err->code : herr_set(err, HERR_NOTFOUND, "no run %lld", (long long)id);
	if (run_counts(st, id, counts, err) < 0) {
		json_decref(row);
		return err->code;
	}
	to = run_state_of(counts, geti(row, "cancel_requested") != 0);
	if (strcmp(to, getstr(row, "state")) != 0) {
		rc = store_q(st, NULL, NULL, err, "UPDATE runs SET state = ?, ended_ms = ? WHERE id = ?",
			     "[sII]", to, (json_int_t)(strcmp(to, "running") == 0 ? 0 : now_ms()),
			     (json_int_t)id);
		if (rc == 0 && changed)
			*changed = true;
	}
	json_decref(row);
	return rc;
}

static json_t *
counts_json(const int counts[RH__COUNT], char *summary, size_t n)
{
	json_t *o = json_object();
	size_t used = 0;

	summary[0] = '\0';
	for (int i = 0; i < RH__COUNT; i++) {
		json_object_set_new(o, rh_names[i], json_integer(counts[i]));
		if (counts[i] && used < n)
			used += (size_t)snprintf(summary + used, n - used, "%s%d %s", used ? ", " : "",
						 counts[i], rh_names[i]);
	}
	return o;
}

static json_t *
rh_to_json(const json_t *row, bool with_output)
{
	json_t *o = json_object(), *ec = json_object_get(row, "exit_code");
	json_int_t st = geti(row, "started_ms"), en = geti(row, "ended_ms");

	json_object_set_new(o, "host", json_string(getstr(row, "host")));
	json_object_set_new(o, "host_id", json_string(getstr(row, "host_id")));
	json_object_set_new(o, "cluster", json_string(getstr(row, "cluster")));
	json_object_set_new(o, "group", json_string(getstr(row, "grp")));
	json_object_set_new(o, "state", json_string(getstr(row, "state")));
	json_object_set_new(o, "reason", json_string(getstr(row, "reason")));
	json_object_set_new(o, "exit_code", json_is_integer(ec) && json_integer_value(ec) >= 0
						    ? json_integer(json_integer_value(ec)) : json_null());
	json_object_set_new(o, "signal", json_integer(geti(row, "signal")));
	json_object_set_new(o, "delivery", json_string(getstr(row, "delivery")));
	json_object_set_new(o, "deliveries", json_integer(geti(row, "deliveries")));
	set_time(o, "started", st);
	set_time(o, "ended", en);
	json_object_set_new(o, "started_ms", json_integer(st));
	json_object_set_new(o, "ended_ms", json_integer(en));
	json_object_set_new(o, "duration_ms", st && en ? json_integer(en - st) : json_null());
	json_object_set_new(o, "stdout_bytes", json_integer(geti(row, "stdout_len")));
	json_object_set_new(o, "stderr_bytes", json_integer(geti(row, "stderr_len")));
	json_object_set_new(o, "stdout_truncated", json_boolean(geti(row, "stdout_truncated")));
	json_object_set_new(o, "stderr_truncated", json_boolean(geti(row, "stderr_truncated")));
	if (with_output) {
		json_object_set_new(o, "stdout", json_string(getstr(row, "stdout")));
		json_object_set_new(o, "stderr", json_string(getstr(row, "stderr")));
	}
	return o;
}

/* The API form of a runs row; env values only for operators and admins
 * (they may hold secrets), names for everyone. */
static json_t *
run_to_json(const json_t *row, const int counts[RH__COUNT], bool show_env)
{
	json_t *o = json_object(), *env;
	char d[32], summary[256];
	const char *key;
	json_t *v;

	json_object_set_new(o, "id", json_integer(geti(row, "id")));
	json_object_set_new(o, "script", json_string(getstr(row, "script")));
	json_object_set_new(o, "version", json_integer(geti(row, "version")));
	json_object_set_new(o, "hash", json_string(getstr(row, "hash")));
	json_object_set_new(o, "target_kind", json_string(getstr(row, "target_kind")));
	json_object_set_new(o, "target", json_string(getstr(row, "target")));
	env = json_loads(getstr(row, "env"), 0, NULL);
	if (env == NULL)
		env = json_object();
	if (!show_env)
		json_object_foreach(env, key, v)
			json_object_set_new(env, key, json_string("(hidden)"));
	json_object_set_new(o, "env", env);
	json_object_set_new(o, "timeout", json_string(fmt_duration(geti(row, "timeout_ms"), d, sizeof(d))));
	json_object_set_new(o, "timeout_ms", json_integer(geti(row, "timeout_ms")));
	json_object_set_new(o, "parallel", json_integer(geti(row, "parallel")));
	json_object_set_new(o, "created_by", json_string(getstr(row, "created_by")));
	set_time(o, "created", geti(row, "created_ms"));
	json_object_set_new(o, "created_ms", json_integer(geti(row, "created_ms")));
	set_time(o, "ended", geti(row, "ended_ms"));
	json_object_set_new(o, "state", json_string(getstr(row, "state")));
	json_object_set_new(o, "cancel_requested", json_boolean(geti(row, "cancel_requested")));
	json_object_set_new(o, "counts", counts_json(counts, summary, sizeof(summary)));
	json_object_set_new(o, "summary", json_string(summary));
	return o;
}

/* The run with its hosts, for answers. NULL with err set. */
static json_t *
run_full_json(struct req *rq, int64_t id, struct herr *err)
{
	json_t *row = run_load(rq->srv->store, id, err), *rows = NULL, *hosts, *r, *o;
	int counts[RH__COUNT];
	size_t i;

	if (row == NULL)
		return NULL;
	if (run_counts(rq->srv->store, id, counts, err) < 0 ||
	    store_q(rq->srv->store, &rows, NULL, err,
		    "SELECT " RH_COLS " FROM run_hosts WHERE run_id = ? ORDER BY seq", "[I]",
		    (json_int_t)id) < 0) {
		json_decref(row);
		return NULL;
	}
	o = run_to_json(row, counts, req_role_at_least(rq, ROLE_OPERATOR));
	hosts = json_array();
	json_array_foreach(rows, i, r)
		json_array_append_new(hosts, rh_to_json(r, false));
	json_object_set_new(o, "hosts", hosts);
	json_decref(rows);
	json_decref(row);
	return o;
}

/* Resolves hosts that vanished or went silent under a run: queued on a
 * terminated host -> skipped; running on one -> failed; running with no
 * result long past its timeout -> timed_out. Level-triggered and cheap
 * when there is nothing to do; called by the readers of runs. Kicks when
 * it changed something. */
static void
runs_settle(struct server *s)
{
	struct herr err = HERR_INIT;
	int64_t now = now_ms(), n1 = 0, n2 = 0;
	json_t *row, *ids = NULL, *r;
	size_t i;

	row = store_row(s->store, &err,
			"SELECT COUNT(*) AS n FROM run_hosts rh JOIN runs r ON r.id = rh.run_id"
			" LEFT JOIN hosts h ON h.id = rh.host_id"
			" WHERE rh.state IN ('queued', 'running') AND"
			" (h.state IS NULL OR h.state IN ('terminating', 'terminated') OR"
			" (rh.state = 'running' AND rh.started_ms + r.timeout_ms + ? < ?))",
			"[II]", (json_int_t)SETTLE_GRACE_MS, (json_int_t)now);
	if (row == NULL || geti(row, "n") == 0) {
		json_decref(row);
		return;
	}
	json_decref(row);
	if (store_begin(s->store, &err) < 0)
		goto fail;
	if (store_q(s->store, NULL, &n1, &err,
		    "UPDATE run_hosts SET"
		    " state = CASE state WHEN 'queued' THEN 'skipped' ELSE 'failed' END,"
		    " reason = CASE state WHEN 'queued' THEN 'the host was terminated before the script started'"
		    "   ELSE 'the host was terminated while the script ran' END,"
		    " ended_ms = ?"
		    " WHERE state IN ('queued', 'running') AND host_id NOT IN"
		    " (SELECT id FROM hosts WHERE state NOT IN ('terminating', 'terminated'))",
		    "[I]", (json_int_t)now) < 0 ||
	    store_q(s->store, NULL, &n2, &err,
		    "UPDATE run_hosts SET state = 'timed_out',"
		    " reason = 'no result from the host within its timeout', ended_ms = ?"
		    " WHERE state = 'running' AND started_ms +"
		    " (SELECT timeout_ms FROM runs WHERE runs.id = run_hosts.run_id) + ? < ?",
		    "[III]", (json_int_t)now, (json_int_t)SETTLE_GRACE_MS, (json_int_t)now) < 0 ||
	    store_q(s->store, &ids, NULL, &err, "SELECT id FROM runs WHERE state = 'running'",
		    NULL) < 0)
		goto fail_tx;
	json_array_foreach(ids, i, r)
		if (run_refresh(s->store, geti(r, "id"), NULL, &err) < 0)
			goto fail_tx;
	if (store_commit(s->store, &err) < 0)
		goto fail;
	json_decref(ids);
	if (n1 + n2 > 0) {
		log_info("runs: settled %lld host record(s) of vanished or silent hosts",
			 (long long)(n1 + n2));
		server_kick(s);
	}
	return;
fail_tx:
	store_rollback(s->store);
fail:
	json_decref(ids);
	log_warn("runs: cannot settle: %s", err.msg);
}

/* --- POST /v1/runs --- */

/* The target's hosts (owned array of rows: id, name, cluster, grp, state)
 * and its canonical name. */
static json_t *
target_hosts(struct store *st, const char *kind, const char *name, char *target, size_t tn,
	     struct herr *err)
{
	json_t *rows = NULL;
	struct res r;

	if (strcmp(kind, "host") == 0) {
		json_t *h = host_find(st, name, NULL, err);
		if (h == NULL)
			return NULL;
		snprintf(target, tn, "%s/%s", getstr(h, "cluster"), getstr(h, "name"));
		rows = json_array();
		json_array_append_new(rows, h);
		return rows;
	}
	if (strcmp(kind, "group") == 0) {
		if (res_find(st, &kind_group, name, &r, err) < 0)
			return NULL;
		snprintf(target, tn, "%s/%s", r.scope, r.name);
		store_q(st, &rows, NULL, err,
			"SELECT id, name, cluster, grp, state FROM hosts WHERE cluster = ? AND grp = ?"
			" AND state <> 'terminated' ORDER BY seq LIMIT ?",
			"[ssi]", r.scope, r.name, RUN_HOSTS_MAX + 1);
		res_release(&r);
		return rows;
	}
	if (res_get(st, &kind_cluster, "", name, &r, err) < 0)
		return NULL;
	snprintf(target, tn, "%s", r.name);
	store_q(st, &rows, NULL, err,
		"SELECT id, name, cluster, grp, state FROM hosts WHERE cluster = ?"
		" AND state <> 'terminated' ORDER BY grp, seq LIMIT ?",
		"[si]", r.name, RUN_HOSTS_MAX + 1);
	res_release(&r);
	return rows;
}

int
run_create(struct server *srv, const struct run_spec *rs, int64_t *run_id, char *detail,
	   size_t detailsz, struct herr *err)
{
	json_t *sv = NULL, *hosts = NULL, *h, *ret = NULL;
	json_int_t version = rs->version;
	char target[200], *envtext = NULL;
	struct store *st = srv->store;
	struct res sres;
	int64_t id = 0;
	size_t i;
	int queued = 0, rc, n;

	if ((rc = store_begin(st, err)) < 0)
		return rc;
	if (res_get(st, &kind_script, "", rs->script, &sres, err) < 0) {
		if (err->code == HERR_NOTFOUND)
			herr_field(err, HERR_NOTFOUND, "script", "no script named '%s'", rs->script);
		goto fail_tx;
	}
	res_release(&sres);
	sv = store_row(st, err,
		       "SELECT version, hash FROM script_versions WHERE name = ?"
		       " AND (? = 0 OR version = ?) ORDER BY version DESC LIMIT 1",
		       "[sII]", rs->script, version, version);
	if (sv == NULL) {
		if (err->code == 0)
			herr_field(err, HERR_NOTFOUND, version ? "version" : "script",
				   "script '%s' has no version %lld", rs->script, (long long)version);
		goto fail_tx;
	}
	version = geti(sv, "version");
	hosts = target_hosts(st, rs->target_kind, rs->target, target, sizeof(target), err);
	if (hosts == NULL) {
		char msg[sizeof(err->msg)];
		snprintf(msg, sizeof(msg), "%s", err->msg[0] ? err->msg : "not found");
		herr_field(err, err->code ? err->code : HERR_NOTFOUND, rs->target_kind, "%s", msg);
		goto fail_tx;
	}
	if (json_array_size(hosts) == 0) {
		herr_field(err, HERR_INVALID, rs->target_kind, "%s '%s' has no hosts", rs->target_kind,
			   target);
		goto fail_tx;
	}
	if (json_array_size(hosts) > RUN_HOSTS_MAX) {
		herr_field(err, HERR_TOOBIG, rs->target_kind, "%s '%s' has more than %d hosts",
			   rs->target_kind, target, RUN_HOSTS_MAX);
		goto fail_tx;
	}
	envtext = rs->env ? json_dumps(rs->env, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (store_q(st, &ret, NULL, err,
		    "INSERT INTO runs (script, version, hash, target_kind, target, env, timeout_ms,"
		    " parallel, created_by, created_ms, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
		    " 'running') RETURNING id",
		    "[sIssssIIsI]", rs->script, version, getstr(sv, "hash"), rs->target_kind, target,
		    envtext ? envtext : "{}", (json_int_t)rs->timeout_ms, (json_int_t)rs->parallel,
		    rs->who && *rs->who ? rs->who : "anonymous", (json_int_t)now_ms()) < 0)
		goto fail_tx;
	id = geti(json_array_get(ret, 0), "id");
	json_array_foreach(hosts, i, h) {
		const char *hs = getstr(h, "state");
		bool ready = strcmp(hs, "ready") == 0;
		char delivery[64], reason[128] = "";

		snprintf(delivery, sizeof(delivery), "%lld-%s", (long long)id, getstr(h, "id"));
		if (!ready)
			snprintf(reason, sizeof(reason), "the host is %s, not ready", hs);
		if (store_q(st, NULL, NULL, err,
			    "INSERT INTO run_hosts (run_id, seq, host_id, host, cluster, grp, state,"
			    " reason, delivery, ended_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			    "[IIsssssssI]", (json_int_t)id, (json_int_t)i, getstr(h, "id"), getstr(h, "name"),
			    getstr(h, "cluster"), getstr(h, "grp"), ready ? "queued" : "skipped", reason,
			    delivery, (json_int_t)(ready ? 0 : now_ms())) < 0)
			goto fail_tx;
		queued += ready;
	}
	if (run_refresh(st, id, NULL, err) < 0 ||
	    store_q(st, NULL, NULL, err,
		    "DELETE FROM run_output WHERE run_id IN (SELECT id FROM runs WHERE state <> 'running'"
		    " AND ended_ms > 0 AND ended_ms < ?)",
		    "[I]", (json_int_t)(now_ms() - OUTPUT_KEEP_MS)) < 0 ||
	    store_commit(st, err) < 0)
		goto fail_tx;
	n = snprintf(detail, detailsz,
		     "run %lld: script %s version %lld sha256:%s on %s %s (%d queued, %d skipped)",
		     (long long)id, rs->script, (long long)version, getstr(sv, "hash"),
		     rs->target_kind, target, queued, (int)json_array_size(hosts) - queued);
	/* the names say what was set (BASH_ENV, LD_PRELOAD...); values may be secrets */
	if (json_object_size(rs->env) && n > 0 && (size_t)n + 6 + 16 < detailsz) {
		snprintf(detail + n, detailsz - (size_t)n, "; env ");
		run_env_names(rs->env, detail + n + 6, detailsz - (size_t)n - 6);
	}
	log_info("%s, by %s", detail, rs->who && *rs->who ? rs->who : "anonymous");
	if (queued)
		server_kick(srv);
	*run_id = id;
	rc = 0;
	goto out;
fail_tx:
	store_rollback(st);
	rc = err->code;
out:
	free(envtext);
	json_decref(ret);
	json_decref(hosts);
	json_decref(sv);
	return rc;
}

int
run_state_get(struct store *st, int64_t run_id, char *out, size_t n, struct herr *err)
{
	json_t *row = store_row(st, err, "SELECT state FROM runs WHERE id = ?", "[I]",
				(json_int_t)run_id);

	if (row == NULL)
		return err->code ? err->code
				 : herr_set(err, HERR_NOTFOUND, "no run %lld", (long long)run_id);
	snprintf(out, n, "%s", getstr(row, "state"));
	json_decref(row);
	return 0;
}

void
api_run_create(struct req *rq)
{
	static const char *const known[] = { "script", "version", "host", "group", "cluster",
					     "env", "timeout", "parallel", NULL };
	static const char *const kinds_t[] = { "host", "group", "cluster", NULL };
	struct run_spec rs = { .timeout_ms = RUN_TIMEOUT_DEFAULT_MS };
	struct herr err = HERR_INIT;
	json_t *b = req_json(rq), *v, *out;
	const char *key;
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
	const char *script = req_query(rq, "script"), *state = req_query(rq, "state");
	const char *host = req_query(rq, "host");
	json_t *rows = NULL, *counts = NULL, *items = json_array(), *r, *c, *out;
	int64_t bid = 0;
	long limit = LIST_DEFAULT;
	size_t i, k;

	if (lim && parse_long(lim, 1, LIST_MAX, &limit) < 0) {
		json_decref(items);
		return reply_errf(rq, HERR_INVALID, "limit", "must be between 1 and %d", LIST_MAX);
	}
	if (before && !parse_id(before, &bid)) {
		json_decref(items);
		return reply_errf(rq, HERR_INVALID, "before", "must be a run id");
	}
	runs_settle(rq->srv);
	if (store_q(rq->srv->store, &rows, NULL, &err,
		    "SELECT " RUN_COLS " FROM runs WHERE (? = 0 OR id < ?) AND (? = '' OR script = ?)"
		    " AND (? = '' OR state = ?) AND (? = '' OR id IN (SELECT run_id FROM run_hosts"
		    " WHERE host = ? OR host_id = ? OR cluster || '/' || host = ?))"
		    " ORDER BY id DESC LIMIT ?",
		    "[IIssssssssi]", (json_int_t)bid, (json_int_t)bid, script ? script : "",
		    script ? script : "", state ? state : "", state ? state : "", host ? host : "",
		    host ? host : "", host ? host : "", host ? host : "", (int)limit) < 0 ||
	    store_q(rq->srv->store, &counts, NULL, &err,
		    "SELECT run_id, state, COUNT(*) AS n FROM run_hosts WHERE run_id IN"
		    " (SELECT id FROM runs WHERE (? = 0 OR id < ?) AND (? = '' OR script = ?)"
		    " AND (? = '' OR state = ?) AND (? = '' OR id IN (SELECT run_id FROM run_hosts"
		    " WHERE host = ? OR host_id = ? OR cluster || '/' || host = ?))"
		    " ORDER BY id DESC LIMIT ?) GROUP BY run_id, state",
		    "[IIssssssssi]", (json_int_t)bid, (json_int_t)bid, script ? script : "",
		    script ? script : "", state ? state : "", state ? state : "", host ? host : "",
		    host ? host : "", host ? host : "", host ? host : "", (int)limit) < 0) {
		json_decref(rows);
		json_decref(items);
		return reply_err(rq, &err);
	}
	json_array_foreach(rows, i, r) {
		int n[RH__COUNT] = { 0 };
		json_array_foreach(counts, k, c) {
			enum run_hstate s = run_hstate_parse(getstr(c, "state"));
			if (geti(c, "run_id") == geti(r, "id") && s < RH__COUNT)
				n[s] = (int)geti(c, "n");
		}
		json_array_append_new(items, run_to_json(r, n, req_role_at_least(rq, ROLE_OPERATOR)));
	}
	out = json_pack("{s:o}", "items", items);
	if ((long)json_array_size(rows) == limit)
		json_object_set_new(out, "next",
				    json_integer(geti(json_array_get(rows, json_array_size(rows) - 1), "id")));
	json_decref(rows);
	json_decref(counts);
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
	json_t *row, *o;
	int64_t id;
	long wait_s = 0;

	if (!parse_id(req_param(rq, 0), &id))
		return reply_errf(rq, HERR_NOTFOUND, "", "no run '%s'", req_param(rq, 0));
	if (w && parse_long(w, LONG_MIN, LONG_MAX, &wait_s) < 0)
		return reply_errf(rq, HERR_INVALID, "wait", "must be a number of seconds");
	runs_settle(rq->srv);
	row = run_load(rq->srv->store, id, &err);
	if (row == NULL)
		return reply_err(rq, &err);
	if (w && strcmp(getstr(row, "state"), "running") == 0) {
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
			json_decref(row);
			/* woken by results (they kick); settle again every slice */
			rq->wait_deadline_ms = 0;
			return req_wait(rq, ws->until_ms - now < WAIT_SLICE_MS ? ws->until_ms - now
									     : WAIT_SLICE_MS);
		}
	}
	json_decref(row);
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
	json_t *row;

	host_id[0] = '\0';
	if (h == NULL || *h == '\0')
		return 0;
	row = store_row(rq->srv->store, &err,
			"SELECT host_id FROM run_hosts WHERE run_id = ? AND"
			" (host = ? OR host_id = ? OR cluster || '/' || host = ?) ORDER BY seq LIMIT 1",
			"[Isss]", (json_int_t)id, h, h, h);
	if (row == NULL) {
		if (err.code)
			reply_err(rq, &err);
		else
			reply_errf(rq, HERR_NOTFOUND, "host", "host '%s' is not part of run %lld", h,
				   (long long)id);
		return -1;
	}
	snprintf(host_id, n, "%s", getstr(row, "host_id"));
	json_decref(row);
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
	json_t *st, *rows = NULL, *chunks, *r;
	int64_t cursor = 0, now = mono_ms();
	bool ended;
	size_t i;

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
	if (*host_id)
		st = store_row(rq->srv->store, &err,
			       "SELECT state FROM run_hosts WHERE run_id = ? AND host_id = ?", "[Is]",
			       (json_int_t)id, host_id);
	else
		st = store_row(rq->srv->store, &err, "SELECT state FROM runs WHERE id = ?", "[I]",
			       (json_int_t)id);
	if (st == NULL)
		return err.code ? reply_err(rq, &err) : reply_errf(rq, HERR_NOTFOUND, "", "no run %lld", (long long)id);
	ended = *host_id ? run_hstate_is_final(run_hstate_parse(getstr(st, "state")))
			 : strcmp(getstr(st, "state"), "running") != 0;
	if (store_q(rq->srv->store, &rows, NULL, &err,
		    "SELECT o.id, o.stream, o.data, rh.host FROM run_output o JOIN run_hosts rh"
		    " ON rh.run_id = o.run_id AND rh.host_id = o.host_id"
		    " WHERE o.run_id = ? AND o.id > ? AND (? = '' OR o.host_id = ?)"
		    " ORDER BY o.id LIMIT ?",
		    "[IIssi]", (json_int_t)id, (json_int_t)cursor, host_id, host_id, FOLLOW_CHUNKS) < 0) {
		json_decref(st);
		return reply_err(rq, &err);
	}
	if (json_array_size(rows) == 0 && !ended && now < fs->until_ms) {
		json_decref(rows);
		json_decref(st);
		/* a fresh deadline per slice: output does not kick (see top) */
		rq->wait_deadline_ms = 0;
		return req_wait(rq, fs->until_ms - now < FOLLOW_SLICE_MS ? fs->until_ms - now
									: FOLLOW_SLICE_MS);
	}
	chunks = json_array();
	json_array_foreach(rows, i, r) {
		json_array_append_new(chunks, json_pack("{s:s,s:s,s:s}", "host", getstr(r, "host"),
							"stream", geti(r, "stream") == 2 ? "stderr" : "stdout",
							"data", getstr(r, "data")));
		cursor = geti(r, "id");
	}
	reply_json(rq, 200, json_pack("{s:I,s:s,s:b,s:I,s:o}", "run", (json_int_t)id, "state",
				      getstr(st, "state"), "done",
				      ended && json_array_size(rows) < FOLLOW_CHUNKS, "offset",
				      (json_int_t)cursor, "chunks", chunks));
	json_decref(rows);
	json_decref(st);
}

/* GET /v1/runs/:id/logs[?host=H][&follow=1&offset=N&wait=S]: without
 * follow, the recorded output of each host (LOGS_PAGE hosts per answer,
 * ?after= the last seq for the next page). */
void
api_run_logs(struct req *rq)
{
	struct herr err = HERR_INIT;
	const char *after = req_query(rq, "after");
	char host_id[64];
	json_t *row, *rows = NULL, *hosts, *r, *out;
	int64_t id;
	size_t i;

	if (!parse_id(req_param(rq, 0), &id))
		return reply_errf(rq, HERR_NOTFOUND, "", "no run '%s'", req_param(rq, 0));
	row = run_load(rq->srv->store, id, &err);
	if (row == NULL)
		return reply_err(rq, &err);
	if (run_host_filter(rq, id, host_id, sizeof(host_id)) < 0) {
		json_decref(row);
		return;
	}
	if (req_query(rq, "follow") && strcmp(req_query(rq, "follow"), "0") != 0) {
		json_decref(row);
		return run_logs_follow(rq, id, host_id);
	}
	if (store_q(rq->srv->store, &rows, NULL, &err,
		    "SELECT " RH_COLS ", stdout, stderr FROM run_hosts WHERE run_id = ?"
		    " AND (? = '' OR host_id = ?) AND seq > ? ORDER BY seq LIMIT ?",
		    "[IssIi]", (json_int_t)id, host_id, host_id,
		    (json_int_t)(after ? atoll(after) : -1), LOGS_PAGE) < 0) {
		json_decref(row);
		return reply_err(rq, &err);
	}
	hosts = json_array();
	json_array_foreach(rows, i, r)
		json_array_append_new(hosts, rh_to_json(r, true));
	out = json_pack("{s:I,s:s,s:o}", "run", (json_int_t)id, "state", getstr(row, "state"),
			"hosts", hosts);
	if (json_array_size(rows) == LOGS_PAGE)
		json_object_set_new(out, "next",
				    json_integer(geti(json_array_get(rows, LOGS_PAGE - 1), "seq")));
	json_decref(rows);
	json_decref(row);
	reply_json(rq, 200, out);
}

/* POST /v1/runs/:id/cancel: hosts not started yet are cancelled at once;
 * running ones learn it from their next output post and are killed. */
void
api_run_cancel(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *row, *o;
	int64_t id, n = 0;
	const char *state;

	if (!parse_id(req_param(rq, 0), &id))
		return reply_errf(rq, HERR_NOTFOUND, "", "no run '%s'", req_param(rq, 0));
	if (store_begin(rq->srv->store, &err) < 0)
		return reply_err(rq, &err);
	row = run_load(rq->srv->store, id, &err);
	if (row == NULL)
		goto fail_tx;
	state = getstr(row, "state");
	if (strcmp(state, "running") != 0 && strcmp(state, "cancelled") != 0) {
		herr_set(&err, HERR_CONFLICT, "run %lld has already ended (%s)", (long long)id, state);
		json_decref(row);
		goto fail_tx;
	}
	json_decref(row);
	if (store_q(rq->srv->store, NULL, NULL, &err,
		    "UPDATE runs SET cancel_requested = 1 WHERE id = ?", "[I]", (json_int_t)id) < 0 ||
	    store_q(rq->srv->store, NULL, &n, &err,
		    "UPDATE run_hosts SET state = 'cancelled', reason = 'cancelled before it started',"
		    " ended_ms = ? WHERE run_id = ? AND state = 'queued'",
		    "[II]", (json_int_t)now_ms(), (json_int_t)id) < 0 ||
	    run_refresh(rq->srv->store, id, NULL, &err) < 0 || store_commit(rq->srv->store, &err) < 0)
		goto fail_tx;
	snprintf(rq->audit_detail, sizeof(rq->audit_detail), "cancel run %lld (%lld not started)",
		 (long long)id, (long long)n);
	server_kick(rq->srv);
	o = run_full_json(rq, id, &err);
	if (o == NULL)
		return reply_err(rq, &err);
	reply_json(rq, 200, o);
	return;
fail_tx:
	store_rollback(rq->srv->store);
	reply_err(rq, &err);
}

/* --- agents --- */

#define CMD_SELECT                                                                          \
	"SELECT rh.run_id, rh.delivery, rh.delivered_ms, r.script, r.version, r.env,"     \
	" r.timeout_ms, sv.hash, sv.content FROM run_hosts rh JOIN runs r ON r.id = rh.run_id" \
	" JOIN script_versions sv ON sv.name = r.script AND sv.version = r.version"         \
	" WHERE rh.host_id = ? AND rh.state = 'queued' AND r.cancel_requested = 0 AND"      \
	" (rh.delivered_ms > 0 OR r.parallel = 0 OR r.parallel > (SELECT COUNT(*) FROM"     \
	"  run_hosts o WHERE o.run_id = rh.run_id AND (o.state = 'running' OR"              \
	"  (o.state = 'queued' AND o.delivered_ms > ?))))"                                  \
	" ORDER BY rh.run_id LIMIT ?"

/* GET /v1/agent/commands?wait=S&max=N: this host's deliveries, waiting up
 * to S seconds for one. The claim (delivered_ms) is made in a write
 * transaction so that two hosts polling at once never pass `parallel`. */
void
api_agent_commands(struct req *rq)
{
	struct herr err = HERR_INIT;
	const char *w = req_query(rq, "wait"), *m = req_query(rq, "max");
	long wait_s = 0, max = CMD_MAX;
	json_t *rows = NULL, *cmds, *r;
	int64_t now = now_ms();
	size_t i;

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
	/* look without the write lock first: most polls find nothing */
	if (store_q(rq->srv->store, &rows, NULL, &err, CMD_SELECT, "[sIi]", rq->who.host_id,
		    (json_int_t)(now - DELIVERY_STALE_MS), (int)max) < 0)
		return reply_err(rq, &err);
	if (json_array_size(rows) > 0) {
		json_decref(rows);
		rows = NULL;
		if (store_begin(rq->srv->store, &err) < 0)
			return reply_err(rq, &err);
		if (store_q(rq->srv->store, &rows, NULL, &err, CMD_SELECT, "[sIi]", rq->who.host_id,
			    (json_int_t)(now - DELIVERY_STALE_MS), (int)max) < 0)
			goto fail_tx;
		json_array_foreach(rows, i, r)
			if (store_q(rq->srv->store, NULL, NULL, &err,
				    "UPDATE run_hosts SET delivered_ms = ?, deliveries = deliveries + 1"
				    " WHERE run_id = ? AND host_id = ?",
				    "[IIs]", (json_int_t)now, geti(r, "run_id"), rq->who.host_id) < 0)
				goto fail_tx;
		if (store_commit(rq->srv->store, &err) < 0)
			goto fail_tx;
	}
	if (json_array_size(rows) == 0 && wait_s > 0 &&
	    (rq->wait_deadline_ms == 0 || mono_ms() < rq->wait_deadline_ms)) {
		json_decref(rows);
		return req_wait(rq, wait_s * 1000);
	}
	cmds = json_array();
	json_array_foreach(rows, i, r) {
		json_t *env = json_loads(getstr(r, "env"), 0, NULL);
		json_array_append_new(cmds,
			json_pack("{s:s,s:I,s:s,s:I,s:s,s:s,s:o,s:I}", "id", getstr(r, "delivery"),
				  "run", geti(r, "run_id"), "script", getstr(r, "script"), "version",
				  geti(r, "version"), "hash", getstr(r, "hash"), "content",
				  getstr(r, "content"), "env", env ? env : json_object(), "timeout_ms",
				  geti(r, "timeout_ms")));
	}
	json_decref(rows);
	reply_json(rq, 200, json_pack("{s:o}", "commands", cmds));
	return;
fail_tx:
	store_rollback(rq->srv->store);
	json_decref(rows);
	reply_err(rq, &err);
}

/* POST /v1/agent/runs/:delivery/start {"nonce":N}: the one atomic step;
 * see the top of this file. */
void
api_agent_run_start(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *b = rq->body.len ? req_json(rq) : NULL, *row;
	const char *nonce = b ? json_string_value(json_object_get(b, "nonce")) : NULL;
	int64_t run_id, n = 0;

	if (rq->body.len && b == NULL)
		return;
	if (!parse_delivery(rq, &run_id))
		return;
	if (nonce && strlen(nonce) > NONCE_MAX)
		return reply_errf(rq, HERR_INVALID, "nonce", "must be at most %d characters", NONCE_MAX);
	if (store_q(rq->srv->store, NULL, &n, &err,
		    "UPDATE run_hosts SET state = 'running', started_ms = ?, start_nonce = ?"
		    " WHERE run_id = ? AND host_id = ? AND state = 'queued'",
		    "[IsIs]", (json_int_t)now_ms(), nonce ? nonce : "", (json_int_t)run_id,
		    rq->who.host_id) < 0)
		return reply_err(rq, &err);
	if (n == 1)
		return reply_json(rq, 200, json_pack("{s:b}", "start", 1));
	row = store_row(rq->srv->store, &err,
			"SELECT state, start_nonce FROM run_hosts WHERE run_id = ? AND host_id = ?",
			"[Is]", (json_int_t)run_id, rq->who.host_id);
	if (row == NULL)
		return err.code ? reply_err(rq, &err)
				: reply_errf(rq, HERR_NOTFOUND, "", "no delivery '%s' for this host",
					     req_param(rq, 0));
	if (strcmp(getstr(row, "state"), "running") == 0 && nonce && *nonce &&
	    strcmp(getstr(row, "start_nonce"), nonce) == 0) {
		/* our own start, retried after a lost answer */
		json_decref(row);
		return reply_json(rq, 200, json_pack("{s:b}", "start", 1));
	}
	reply_errf(rq, HERR_CONFLICT, "", "delivery '%s' is already %s: not starting it again",
		   req_param(rq, 0), getstr(row, "state"));
	json_decref(row);
}

/* Appends one stream's chunk if it continues what is stored; 0, or 1 if
 * it was a repeat, or -1 with err set. */
static int
append_output(struct store *st, int64_t run_id, const char *host_id, int stream,
	      const json_t *data, const json_t *offset, int64_t have, struct herr *err)
{
	const char *p = json_string_value(data);
	size_t n = json_string_length(data), keep;
	int64_t off = json_integer_value(offset);
	const char *col = stream == 1 ? "stdout" : "stderr";

	if (p == NULL || n == 0)
		return 0;
	if (!json_is_integer(offset) || off < 0)
		return herr_field(err, HERR_INVALID, stream == 1 ? "stdout_offset" : "stderr_offset",
				  "must be the byte offset of this chunk");
	if (off + (int64_t)n <= have)
		return 1;
	if (off != have)
		return herr_field(err, HERR_CONFLICT, stream == 1 ? "stdout_offset" : "stderr_offset",
				  "the server has %lld bytes of %s, not %lld", (long long)have, col,
				  (long long)off);
	keep = have >= RUN_OUTPUT_MAX ? 0 : run_utf8_cut(p, n, (size_t)(RUN_OUTPUT_MAX - have));
	if (keep > 0) {
		json_t *chunk = json_stringn(p, keep);
		if (chunk == NULL)
			return herr_field(err, HERR_INVALID, col, "must be UTF-8 text");
		if (store_q(st, NULL, NULL, err,
			    "INSERT INTO run_output (run_id, host_id, stream, data) VALUES (?, ?, ?, ?)",
			    "[Isio]", (json_int_t)run_id, host_id, stream, chunk) < 0)
			return err->code;
	}
	return store_q(st, NULL, NULL, err,
		       stream == 1
			       ? "UPDATE run_hosts SET stdout = stdout || ?, stdout_len = stdout_len + ?,"
				 " stdout_truncated = stdout_truncated OR ? WHERE run_id = ? AND host_id = ?"
			       : "UPDATE run_hosts SET stderr = stderr || ?, stderr_len = stderr_len + ?,"
				 " stderr_truncated = stderr_truncated OR ? WHERE run_id = ? AND host_id = ?",
		       "[s#IbIs]", p, (int)keep, (json_int_t)keep, keep < n, (json_int_t)run_id, host_id);
}

/* POST /v1/agent/runs/:delivery/output {"stdout": TEXT, "stdout_offset": N,
 * "stderr": ..., "stderr_offset": M}: live output. Offsets make a retried
 * post harmless. The answer says whether to stop: {"cancel": true} once the
 * run was cancelled (or the record ended without the agent). */
void
api_agent_run_output(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *b = req_json(rq), *row;
	int64_t run_id;
	enum run_hstate hs;
	bool cancel;

	if (b == NULL || !parse_delivery(rq, &run_id))
		return;
	if (store_begin(rq->srv->store, &err) < 0)
		return reply_err(rq, &err);
	row = store_row(rq->srv->store, &err,
			"SELECT rh.state, rh.stdout_len, rh.stderr_len, r.cancel_requested FROM run_hosts rh"
			" JOIN runs r ON r.id = rh.run_id WHERE rh.run_id = ? AND rh.host_id = ?",
			"[Is]", (json_int_t)run_id, rq->who.host_id);
	if (row == NULL) {
		if (err.code == 0)
			herr_set(&err, HERR_NOTFOUND, "no delivery '%s' for this host", req_param(rq, 0));
		goto fail_tx;
	}
	hs = run_hstate_parse(getstr(row, "state"));
	cancel = geti(row, "cancel_requested") != 0 || run_hstate_is_final(hs);
	if (hs == RH_QUEUED) {
		herr_set(&err, HERR_CONFLICT, "delivery '%s' was not started", req_param(rq, 0));
		json_decref(row);
		goto fail_tx;
	}
	if (hs == RH_RUNNING &&
	    (append_output(rq->srv->store, run_id, rq->who.host_id, 1, json_object_get(b, "stdout"),
			   json_object_get(b, "stdout_offset"), geti(row, "stdout_len"), &err) < 0 ||
	     append_output(rq->srv->store, run_id, rq->who.host_id, 2, json_object_get(b, "stderr"),
			   json_object_get(b, "stderr_offset"), geti(row, "stderr_len"), &err) < 0)) {
		json_decref(row);
		goto fail_tx;
	}
	json_decref(row);
	if (store_commit(rq->srv->store, &err) < 0)
		goto fail_tx;
	reply_json(rq, 200, json_pack("{s:b}", "cancel", cancel));
	return;
fail_tx:
	store_rollback(rq->srv->store);
	reply_err(rq, &err);
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
	json_t *b = req_json(rq), *row;
	const char *error, *out, *errout;
	char reason[600];
	enum run_hstate hs, to;
	int64_t run_id, n = 0;
	bool changed = false;

	if (b == NULL || !parse_delivery(rq, &run_id))
		return;
	if (!result_text_ok(rq, b, "stdout") || !result_text_ok(rq, b, "stderr"))
		return;
	error = json_string_value(json_object_get(b, "error"));
	if (error && strlen(error) > 500)
		return reply_errf(rq, HERR_INVALID, "error", "must be at most 500 characters");
	if (json_object_get(b, "exit_code") && !json_is_integer(json_object_get(b, "exit_code")))
		return reply_errf(rq, HERR_INVALID, "exit_code", "must be an integer");
	out = json_string_value(json_object_get(b, "stdout"));
	errout = json_string_value(json_object_get(b, "stderr"));
	if (store_begin(rq->srv->store, &err) < 0)
		return reply_err(rq, &err);
	row = store_row(rq->srv->store, &err,
			"SELECT rh.state, r.timeout_ms FROM run_hosts rh JOIN runs r ON r.id = rh.run_id"
			" WHERE rh.run_id = ? AND rh.host_id = ?",
			"[Is]", (json_int_t)run_id, rq->who.host_id);
	if (row == NULL) {
		if (err.code == 0)
			herr_set(&err, HERR_NOTFOUND, "no delivery '%s' for this host", req_param(rq, 0));
		goto fail_tx;
	}
	hs = run_hstate_parse(getstr(row, "state"));
	if (run_hstate_is_final(hs)) {
		store_rollback(rq->srv->store);
		reply_json(rq, 200, json_pack("{s:s,s:b}", "state", getstr(row, "state"), "repeat", 1));
		json_decref(row);
		return;
	}
	to = run_outcome((int)geti(b, "exit_code"), (int)geti(b, "signal"),
			 geti(b, "timed_out") != 0, geti(b, "cancelled") != 0, error,
			 geti(row, "timeout_ms"), reason, sizeof(reason));
	json_decref(row);
	if (store_q(rq->srv->store, NULL, &n, &err,
		    "UPDATE run_hosts SET state = ?, reason = ?, exit_code = ?, signal = ?,"
		    " started_ms = CASE WHEN started_ms = 0 THEN ? ELSE started_ms END, ended_ms = ?,"
		    " stdout = ?, stderr = ?, stdout_len = ?, stderr_len = ?, stdout_truncated = ?,"
		    " stderr_truncated = ? WHERE run_id = ? AND host_id = ? AND state IN ('queued', 'running')",
		    "[ssoIIIssIIbbIs]", run_hstate_name(to), reason,
		    geti(b, "exit_code") >= 0 && json_is_integer(json_object_get(b, "exit_code"))
			    ? json_integer(geti(b, "exit_code")) : json_null(),
		    geti(b, "signal"), (json_int_t)now_ms(), (json_int_t)now_ms(), out ? out : "",
		    errout ? errout : "", (json_int_t)(out ? strlen(out) : 0),
		    (json_int_t)(errout ? strlen(errout) : 0), geti(b, "stdout_truncated") != 0,
		    geti(b, "stderr_truncated") != 0, (json_int_t)run_id, rq->who.host_id) < 0 ||
	    run_refresh(rq->srv->store, run_id, &changed, &err) < 0 ||
	    store_commit(rq->srv->store, &err) < 0)
		goto fail_tx;
	log_info("run %lld on %s: %s", (long long)run_id, rq->who.name, reason);
	/* a freed `parallel` slot, or the end others --wait for */
	server_kick(rq->srv);
	reply_json(rq, 200, json_pack("{s:s}", "state", run_hstate_name(to)));
	return;
fail_tx:
	store_rollback(rq->srv->store);
	reply_err(rq, &err);
}
