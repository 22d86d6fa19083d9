/* model/run.c - script runs in the store (model/run.h): runs, their
 * per-host records (run_hosts) and live output (run_output). The only code
 * that reads or writes those tables; api-run.c translates HTTP to these
 * calls and back, reconcile.c uses them for before_terminate drains.
 * Delivery and dedup rules are described at the top of api-run.c. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envname.h"
#include "log.h"
#include "model/host.h"
#include "model/kind.h"
#include "model/res.h"
#include "model/run.h"
#include "server.h"
#include "store/store.h"
#include "util.h"
#include "xalloc.h"

#define OUTPUT_KEEP_MS (24LL * 3600 * 1000) /* live chunks of ended runs kept this long */

/* --- pure parts --- */

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

static const char *const rp_names[RP__COUNT] = {
	[RP_NONE] = "",         [RP_WAIT] = "wait",     [RP_DRAIN] = "drain",
	[RP_RUN] = "run",       [RP_GATE] = "gate",     [RP_DONE] = "done",
	[RP_FAILED] = "failed", [RP_HELD] = "held",
};

const char *
run_phase_name(enum run_phase p)
{
	return p < RP__COUNT ? rp_names[p] : "unknown";
}

enum run_phase
run_phase_parse(const char *s)
{
	for (int i = 0; s && i < RP__COUNT; i++)
		if (strcmp(rp_names[i], s) == 0)
			return (enum run_phase)i;
	return RP__COUNT;
}

int
run_batch_size(const char *spec, size_t nready, int *out, struct herr *err)
{
	char num[16];
	size_t len = spec ? strlen(spec) : 0;
	bool pct = len > 0 && spec[len - 1] == '%';
	long v;

	*out = 0;
	if (len == 0 || len - pct >= sizeof(num))
		return herr_field(err, HERR_INVALID, "batch",
				  "must be a number of hosts (N) or a percentage (P%%)");
	memcpy(num, spec, len - pct);
	num[len - pct] = '\0';
	if (parse_long(num, 1, pct ? 100 : RUN_HOSTS_MAX, &v) < 0)
		return herr_field(err, HERR_INVALID, "batch", "'%s' is not %s", spec,
				  pct ? "a percentage from 1% to 100%" : "a number of hosts from 1");
	if (nready == 0)
		return herr_field(err, HERR_INVALID, "batch", "the target has no ready host to run on");
	if (pct)
		v = (long)((nready * (size_t)v + 99) / 100);
	else if ((size_t)v > nready)
		return herr_field(err, HERR_INVALID, "batch",
				  "%ld hosts per batch, but the target has %zu ready hosts", v, nready);
	*out = (int)v;
	return 0;
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

/* --- rows to structs --- */

static json_int_t
geti(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? json_integer_value(v) : json_is_true(v) ? 1 : 0;
}

static void
copy_str(char *dst, size_t n, const char *v)
{
	snprintf(dst, n, "%s", v ? v : "");
}

static char *
dup_str(const char *s)
{
	return xstrdup(s ? s : "");
}

#define RUN_COLS                                                                      \
	"id, script, version, hash, target_kind, target, env, timeout_ms, parallel,"  \
	" created_by, created_ms, ended_ms, state, cancel_requested, batch, drain, gate_ms,"  \
	" stop_on_failure"
#define RH_COLS                                                                       \
	"run_id, seq, host_id, host, cluster, grp, state, reason, exit_code, signal,"  \
	" delivery, deliveries, started_ms, ended_ms, stdout_len, stderr_len,"          \
	" stdout_truncated, stderr_truncated, batch, phase, phase_ms, healthy_ms"

static int
run_from_row(const json_t *row, struct run *out, struct herr *err)
{
	const char *script, *hash, *tk, *target, *env, *by, *state;
	json_int_t id, version, timeout, parallel, created, ended, cancel;

	memset(out, 0, sizeof(*out));
	if (json_unpack((json_t *)row,
			"{s:I, s:s, s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:I, s:I, s:s, s:I}",
			"id", &id, "script", &script, "version", &version, "hash", &hash,
			"target_kind", &tk, "target", &target, "env", &env, "timeout_ms", &timeout,
			"parallel", &parallel, "created_by", &by, "created_ms", &created,
			"ended_ms", &ended, "state", &state, "cancel_requested", &cancel) < 0)
		return herr_set(err, HERR_STORE, "runs row with missing columns");
	out->id = id;
	copy_str(out->script, sizeof(out->script), script);
	out->version = version;
	copy_str(out->hash, sizeof(out->hash), hash);
	copy_str(out->target_kind, sizeof(out->target_kind), tk);
	copy_str(out->target, sizeof(out->target), target);
	out->env = json_loads(env, 0, NULL);
	if (!json_is_object(out->env)) {
		json_decref(out->env);
		out->env = json_object();
	}
	out->timeout_ms = timeout;
	out->parallel = (int)parallel;
	copy_str(out->created_by, sizeof(out->created_by), by);
	out->created_ms = created;
	out->ended_ms = ended;
	copy_str(out->state, sizeof(out->state), state);
	out->cancel_requested = cancel != 0;
	out->batch = (int)geti(row, "batch");
	out->drain = geti(row, "drain") != 0;
	out->gate_ms = geti(row, "gate_ms");
	out->stop_on_failure = geti(row, "stop_on_failure") != 0;
	return 0;
}

void
run_release(struct run *r)
{
	json_decref(r->env);
	r->env = NULL;
}

void
runs_free(struct run *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		run_release(&r[i]);
	free(r);
}

static int
rh_from_row(const json_t *row, struct run_host *out, struct herr *err)
{
	const char *host_id, *host, *cluster, *grp, *state, *reason, *delivery;
	json_int_t run_id, seq, sig, deliveries, started, ended, olen, elen, otr, etr;
	json_t *ec = NULL;

	memset(out, 0, sizeof(*out));
	if (json_unpack((json_t *)row,
			"{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s?o, s:I, s:s, s:I, s:I, s:I,"
			" s:I, s:I, s:I, s:I}",
			"run_id", &run_id, "seq", &seq, "host_id", &host_id, "host", &host,
			"cluster", &cluster, "grp", &grp, "state", &state, "reason", &reason,
			"exit_code", &ec, "signal", &sig, "delivery", &delivery, "deliveries",
			&deliveries, "started_ms", &started, "ended_ms", &ended, "stdout_len", &olen,
			"stderr_len", &elen, "stdout_truncated", &otr, "stderr_truncated", &etr) < 0)
		return herr_set(err, HERR_STORE, "run_hosts row with missing columns");
	out->run_id = run_id;
	out->seq = seq;
	copy_str(out->host_id, sizeof(out->host_id), host_id);
	copy_str(out->host, sizeof(out->host), host);
	copy_str(out->cluster, sizeof(out->cluster), cluster);
	copy_str(out->grp, sizeof(out->grp), grp);
	out->state = run_hstate_parse(state);
	if (out->state == RH__COUNT)
		return herr_set(err, HERR_STORE, "run %lld: unknown host state '%s'",
				(long long)run_id, state);
	copy_str(out->reason, sizeof(out->reason), reason);
	out->exit_code = json_is_integer(ec) && json_integer_value(ec) >= 0
				 ? (int)json_integer_value(ec) : -1;
	out->signal = (int)sig;
	copy_str(out->delivery, sizeof(out->delivery), delivery);
	out->deliveries = (int)deliveries;
	out->started_ms = started;
	out->ended_ms = ended;
	out->stdout_bytes = olen;
	out->stderr_bytes = elen;
	out->stdout_truncated = otr != 0;
	out->stderr_truncated = etr != 0;
	out->batch = (int)geti(row, "batch");
	out->phase = run_phase_parse(json_string_value(json_object_get(row, "phase")));
	if (out->phase == RP__COUNT)
		out->phase = RP_NONE;
	out->phase_ms = geti(row, "phase_ms");
	out->healthy_ms = geti(row, "healthy_ms");
	if (json_object_get(row, "stdout")) {
		out->stdout_text = dup_str(json_string_value(json_object_get(row, "stdout")));
		out->stderr_text = dup_str(json_string_value(json_object_get(row, "stderr")));
	}
	return 0;
}

void
run_host_release(struct run_host *rh)
{
	free(rh->stdout_text);
	free(rh->stderr_text);
	rh->stdout_text = rh->stderr_text = NULL;
}

void
run_hosts_free(struct run_host *rh, size_t n)
{
	for (size_t i = 0; i < n; i++)
		run_host_release(&rh[i]);
	free(rh);
}

/* --- reading runs --- */

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
		enum run_hstate s = run_hstate_parse(json_string_value(json_object_get(r, "state")));
		if (s < RH__COUNT)
			counts[s] = (int)geti(r, "n");
	}
	json_decref(rows);
	return 0;
}

int
run_get(struct store *st, int64_t id, struct run *out, struct herr *err)
{
	json_t *row = store_row(st, err, "SELECT " RUN_COLS " FROM runs WHERE id = ?", "[I]",
				(json_int_t)id);
	int rc;

	memset(out, 0, sizeof(*out));
	if (row == NULL)
		return err->code ? err->code : herr_set(err, HERR_NOTFOUND, "no run %lld", (long long)id);
	rc = run_from_row(row, out, err);
	json_decref(row);
	if (rc == 0 && (rc = run_counts(st, id, out->counts, err)) < 0)
		run_release(out);
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
	copy_str(out, n, json_string_value(json_object_get(row, "state")));
	json_decref(row);
	return 0;
}

int
run_list(struct store *st, const struct run_filter *f, struct run **out, size_t *n,
	 struct herr *err)
{
	const char *script = f->script ? f->script : "", *state = f->state ? f->state : "";
	const char *host = f->host ? f->host : "";
	json_t *rows = NULL, *counts = NULL, *r, *c;
	struct run *runs;
	size_t i, k;

	*out = NULL;
	*n = 0;
	if (store_q(st, &rows, NULL, err,
		    "SELECT " RUN_COLS " FROM runs WHERE (CAST(? AS BIGINT) = 0 OR id < ?) AND (? = '' OR script = ?)"
		    " AND (? = '' OR state = ?) AND (? = '' OR id IN (SELECT run_id FROM run_hosts"
		    " WHERE host = ? OR host_id = ? OR cluster || '/' || host = ?))"
		    " ORDER BY id DESC LIMIT ?",
		    "[IIssssssssi]", (json_int_t)f->before_id, (json_int_t)f->before_id, script,
		    script, state, state, host, host, host, host, f->limit) < 0 ||
	    store_q(st, &counts, NULL, err,
		    "SELECT run_id, state, COUNT(*) AS n FROM run_hosts WHERE run_id IN"
		    " (SELECT id FROM runs WHERE (CAST(? AS BIGINT) = 0 OR id < ?) AND (? = '' OR script = ?)"
		    " AND (? = '' OR state = ?) AND (? = '' OR id IN (SELECT run_id FROM run_hosts"
		    " WHERE host = ? OR host_id = ? OR cluster || '/' || host = ?))"
		    " ORDER BY id DESC LIMIT ?) GROUP BY run_id, state",
		    "[IIssssssssi]", (json_int_t)f->before_id, (json_int_t)f->before_id, script,
		    script, state, state, host, host, host, host, f->limit) < 0) {
		json_decref(rows);
		return err->code;
	}
	runs = xcalloc(json_array_size(rows) + 1, sizeof(*runs));
	json_array_foreach(rows, i, r) {
		if (run_from_row(r, &runs[i], err) < 0) {
			runs_free(runs, i);
			json_decref(rows);
			json_decref(counts);
			return err->code;
		}
		json_array_foreach(counts, k, c) {
			enum run_hstate s = run_hstate_parse(json_string_value(json_object_get(c, "state")));
			if (geti(c, "run_id") == runs[i].id && s < RH__COUNT)
				runs[i].counts[s] = (int)geti(c, "n");
		}
	}
	*out = runs;
	*n = json_array_size(rows);
	json_decref(rows);
	json_decref(counts);
	return 0;
}

/* Fills an owned array of run_hosts from rows. */
static int
rh_array(const json_t *rows, struct run_host **out, size_t *n, struct herr *err)
{
	struct run_host *rh = xcalloc(json_array_size(rows) + 1, sizeof(*rh));
	json_t *r;
	size_t i;

	json_array_foreach(rows, i, r) {
		if (rh_from_row(r, &rh[i], err) < 0) {
			run_hosts_free(rh, i + 1);
			return err->code;
		}
	}
	*out = rh;
	*n = json_array_size(rows);
	return 0;
}

int
run_hosts_get(struct store *st, int64_t id, const char *host_id, int64_t after_seq, int limit,
	      bool with_output, struct run_host **out, size_t *n, struct herr *err)
{
	json_t *rows = NULL;
	int rc;

	*out = NULL;
	*n = 0;
	/* no limit: INT_MAX (PostgreSQL refuses SQLite's LIMIT -1) */
	if (with_output)
		rc = store_q(st, &rows, NULL, err,
			     "SELECT " RH_COLS ", stdout, stderr FROM run_hosts WHERE run_id = ?"
			     " AND (? = '' OR host_id = ?) AND seq > ? ORDER BY seq LIMIT ?",
			     "[IssIi]", (json_int_t)id, host_id ? host_id : "", host_id ? host_id : "",
			     (json_int_t)after_seq, limit > 0 ? limit : INT_MAX);
	else
		rc = store_q(st, &rows, NULL, err,
			     "SELECT " RH_COLS " FROM run_hosts WHERE run_id = ?"
			     " AND (? = '' OR host_id = ?) AND seq > ? ORDER BY seq LIMIT ?",
			     "[IssIi]", (json_int_t)id, host_id ? host_id : "", host_id ? host_id : "",
			     (json_int_t)after_seq, limit > 0 ? limit : INT_MAX);
	if (rc < 0)
		return rc;
	rc = rh_array(rows, out, n, err);
	json_decref(rows);
	return rc;
}

int
run_host_get(struct store *st, int64_t id, const char *host_id, struct run_host *out,
	     struct herr *err)
{
	json_t *row = store_row(st, err,
				"SELECT " RH_COLS ", stdout, stderr FROM run_hosts WHERE run_id = ?"
				" AND host_id = ?", "[Is]", (json_int_t)id, host_id);
	int rc;

	memset(out, 0, sizeof(*out));
	if (row == NULL)
		return err->code ? err->code
				 : herr_set(err, HERR_NOTFOUND, "host %s is not part of run %lld",
					    host_id, (long long)id);
	rc = rh_from_row(row, out, err);
	json_decref(row);
	return rc;
}

int
run_host_resolve(struct store *st, int64_t id, const char *name, char *host_id, size_t n,
		 struct herr *err)
{
	json_t *row = store_row(st, err,
				"SELECT host_id FROM run_hosts WHERE run_id = ? AND"
				" (host = ? OR host_id = ? OR cluster || '/' || host = ?) ORDER BY seq LIMIT 1",
				"[Isss]", (json_int_t)id, name, name, name);

	if (row == NULL)
		return err->code ? err->code
				 : herr_field(err, HERR_NOTFOUND, "host", "host '%s' is not part of run %lld",
					      name, (long long)id);
	copy_str(host_id, n, json_string_value(json_object_get(row, "host_id")));
	json_decref(row);
	return 0;
}

void
run_chunks_free(struct run_chunk *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(c[i].data);
	free(c);
}

int
run_output_after(struct store *st, int64_t id, const char *host_id, int64_t cursor, int limit,
		 struct run_chunk **out, size_t *n, struct herr *err)
{
	json_t *rows = NULL, *r;
	struct run_chunk *c;
	size_t i;

	*out = NULL;
	*n = 0;
	if (store_q(st, &rows, NULL, err,
		    "SELECT o.id, o.stream, o.data, rh.host FROM run_output o JOIN run_hosts rh"
		    " ON rh.run_id = o.run_id AND rh.host_id = o.host_id"
		    " WHERE o.run_id = ? AND o.id > ? AND (? = '' OR o.host_id = ?)"
		    " ORDER BY o.id LIMIT ?",
		    "[IIssi]", (json_int_t)id, (json_int_t)cursor, host_id, host_id, limit) < 0)
		return err->code;
	c = xcalloc(json_array_size(rows) + 1, sizeof(*c));
	json_array_foreach(rows, i, r) {
		const char *data = "", *host = "";
		json_int_t cid = 0, stream = 0;

		if (json_unpack(r, "{s:I, s:I, s:s, s:s}", "id", &cid, "stream", &stream, "data",
				&data, "host", &host) < 0) {
			run_chunks_free(c, i);
			json_decref(rows);
			return herr_set(err, HERR_STORE, "run_output row with missing columns");
		}
		c[i].id = cid;
		c[i].stream = (int)stream;
		copy_str(c[i].host, sizeof(c[i].host), host);
		c[i].data = dup_str(data);
	}
	*out = c;
	*n = json_array_size(rows);
	json_decref(rows);
	return 0;
}

/* --- writing runs --- */

/* Sets the run's state from its hosts'; in the caller's transaction.
 * *changed (may be NULL) tells whether it moved. */
static int
run_refresh(struct store *st, int64_t id, int64_t now, bool *changed, struct herr *err)
{
	int counts[RH__COUNT];
	json_t *row = store_row(st, err, "SELECT state, cancel_requested FROM runs WHERE id = ?",
				"[I]", (json_int_t)id);
	const char *to, *cur;
	json_t *inflight;
	int rc = 0;

	if (changed)
		*changed = false;
	if (row == NULL)
		return err->code ? err->code : herr_set(err, HERR_NOTFOUND, "no run %lld", (long long)id);
	if (run_counts(st, id, counts, err) < 0) {
		json_decref(row);
		return err->code;
	}
	/* a rolling run is running while a host is out of its LBs or in its
	 * health gate, whatever its script's record says */
	inflight = store_row(st, err,
			     "SELECT COUNT(*) AS n FROM run_hosts WHERE run_id = ?"
			     " AND phase IN ('drain', 'run', 'gate')",
			     "[I]", (json_int_t)id);
	if (inflight == NULL) {
		json_decref(row);
		return err->code ? err->code : herr_set(err, HERR_STORE, "no count");
	}
	counts[RH_RUNNING] += (int)geti(inflight, "n");
	json_decref(inflight);
	to = run_state_of(counts, geti(row, "cancel_requested") != 0);
	cur = json_string_value(json_object_get(row, "state"));
	if (strcmp(to, cur ? cur : "") != 0) {
		rc = store_q(st, NULL, NULL, err, "UPDATE runs SET state = ?, ended_ms = ? WHERE id = ?",
			     "[sII]", to, (json_int_t)(strcmp(to, "running") == 0 ? 0 : now),
			     (json_int_t)id);
		if (rc == 0 && changed)
			*changed = true;
	}
	json_decref(row);
	return rc;
}

int
runs_settle(struct store *st, int64_t now, int64_t grace_ms, int64_t *settled, struct herr *err)
{
	int64_t n1 = 0, n2 = 0;
	json_t *row, *ids = NULL, *r;
	size_t i;

	*settled = 0;
	row = store_row(st, err,
			"SELECT COUNT(*) AS n FROM run_hosts rh JOIN runs r ON r.id = rh.run_id"
			" LEFT JOIN hosts h ON h.id = rh.host_id"
			" WHERE rh.state IN ('queued', 'running') AND"
			" (h.state IS NULL OR h.state IN ('terminating', 'terminated') OR"
			" (rh.state = 'running' AND rh.started_ms + r.timeout_ms + ? < ?))",
			"[II]", (json_int_t)grace_ms, (json_int_t)now);
	if (row == NULL || geti(row, "n") == 0) {
		json_decref(row);
		return err->code;
	}
	json_decref(row);
	if (store_begin(st, err) < 0)
		return err->code;
	if (store_q(st, NULL, &n1, err,
		    "UPDATE run_hosts SET"
		    " state = CASE state WHEN 'queued' THEN 'skipped' ELSE 'failed' END,"
		    " reason = CASE state WHEN 'queued' THEN 'the host was terminated before the script started'"
		    "   ELSE 'the host was terminated while the script ran' END,"
		    " ended_ms = ?"
		    " WHERE state IN ('queued', 'running') AND host_id NOT IN"
		    " (SELECT id FROM hosts WHERE state NOT IN ('terminating', 'terminated'))",
		    "[I]", (json_int_t)now) < 0 ||
	    store_q(st, NULL, &n2, err,
		    "UPDATE run_hosts SET state = 'timed_out',"
		    " reason = 'no result from the host within its timeout', ended_ms = ?"
		    " WHERE state = 'running' AND started_ms +"
		    " (SELECT timeout_ms FROM runs WHERE runs.id = run_hosts.run_id) + ? < ?",
		    "[III]", (json_int_t)now, (json_int_t)grace_ms, (json_int_t)now) < 0 ||
	    store_q(st, &ids, NULL, err, "SELECT id FROM runs WHERE state = 'running'", NULL) < 0)
		goto fail_tx;
	json_array_foreach(ids, i, r)
		if (run_refresh(st, geti(r, "id"), now, NULL, err) < 0)
			goto fail_tx;
	if (store_commit(st, err) < 0)
		goto fail_tx;
	json_decref(ids);
	*settled = n1 + n2;
	return 0;
fail_tx:
	store_rollback(st);
	json_decref(ids);
	return err->code;
}

int
run_cancel(struct store *st, int64_t id, int64_t now, int64_t *not_started, struct herr *err)
{
	char state[16];

	*not_started = 0;
	if (store_begin(st, err) < 0)
		return err->code;
	if (run_state_get(st, id, state, sizeof(state), err) < 0)
		goto fail_tx;
	if (strcmp(state, "running") != 0 && strcmp(state, "cancelled") != 0) {
		int64_t held = 0;
		/* a rolling run that stopped keeps its failed hosts out of their
		 * LBs: cancelling it puts them back */
		if (store_q(st, NULL, &held, err,
			    "UPDATE run_hosts SET phase = 'failed' WHERE run_id = ? AND phase = 'held'",
			    "[I]", (json_int_t)id) < 0)
			goto fail_tx;
		if (held > 0)
			return store_commit(st, err) < 0 ? err->code : 0;
		herr_set(err, HERR_CONFLICT, "run %lld has already ended (%s)", (long long)id, state);
		goto fail_tx;
	}
	if (store_q(st, NULL, NULL, err, "UPDATE runs SET cancel_requested = 1 WHERE id = ?", "[I]",
		    (json_int_t)id) < 0 ||
	    store_q(st, NULL, not_started, err,
		    "UPDATE run_hosts SET state = 'cancelled', reason = 'cancelled before it started',"
		    " ended_ms = ? WHERE run_id = ? AND state = 'queued'",
		    "[II]", (json_int_t)now, (json_int_t)id) < 0 ||
	    run_refresh(st, id, now, NULL, err) < 0 || store_commit(st, err) < 0)
		goto fail_tx;
	return 0;
fail_tx:
	store_rollback(st);
	return err->code;
}

int
run_cancel_request(struct store *st, int64_t id, struct herr *err)
{
	return store_q(st, NULL, NULL, err,
		       "UPDATE runs SET cancel_requested = 1 WHERE id = ? AND state = 'running'", "[I]",
		       (json_int_t)id);
}

/* --- agents --- */

#define CMD_SELECT                                                                          \
	"SELECT rh.run_id, rh.delivery, rh.delivered_ms, r.script, r.version, r.env,"     \
	" r.timeout_ms, sv.hash, sv.content FROM run_hosts rh JOIN runs r ON r.id = rh.run_id" \
	" JOIN script_versions sv ON sv.name = r.script AND sv.version = r.version"         \
	" WHERE rh.host_id = ? AND rh.state = 'queued' AND r.cancel_requested = 0 AND"      \
	" rh.phase IN ('', 'run') AND"                                                      \
	" (rh.delivered_ms > 0 OR r.parallel = 0 OR r.parallel > (SELECT COUNT(*) FROM"     \
	"  run_hosts o WHERE o.run_id = rh.run_id AND (o.state = 'running' OR"              \
	"  (o.state = 'queued' AND o.delivered_ms > ?))))"                                  \
	" ORDER BY rh.run_id LIMIT ?"

void
run_cmds_free(struct run_cmd *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].content);
		json_decref(c[i].env);
	}
	free(c);
}

int
run_take(struct store *st, const char *host_id, int64_t now, int64_t stale_ms, int max,
	 struct run_cmd **out, size_t *n, struct herr *err)
{
	json_t *rows = NULL, *r;
	struct run_cmd *c;
	size_t i;

	*out = NULL;
	*n = 0;
	/* look without the write lock first: most polls find nothing */
	if (store_q(st, &rows, NULL, err, CMD_SELECT, "[sIi]", host_id,
		    (json_int_t)(now - stale_ms), max) < 0)
		return err->code;
	if (json_array_size(rows) > 0) {
		json_decref(rows);
		rows = NULL;
		if (store_begin(st, err) < 0)
			return err->code;
		if (store_q(st, &rows, NULL, err, CMD_SELECT, "[sIi]", host_id,
			    (json_int_t)(now - stale_ms), max) < 0)
			goto fail_tx;
		json_array_foreach(rows, i, r)
			if (store_q(st, NULL, NULL, err,
				    "UPDATE run_hosts SET delivered_ms = ?, deliveries = deliveries + 1"
				    " WHERE run_id = ? AND host_id = ?",
				    "[IIs]", (json_int_t)now, geti(r, "run_id"), host_id) < 0)
				goto fail_tx;
		if (store_commit(st, err) < 0)
			goto fail_tx;
	}
	c = xcalloc(json_array_size(rows) + 1, sizeof(*c));
	json_array_foreach(rows, i, r) {
		const char *delivery = "", *script = "", *env = "", *hash = "", *content = "";
		json_int_t run_id = 0, version = 0, timeout = 0;

		if (json_unpack(r, "{s:I, s:s, s:s, s:I, s:s, s:I, s:s, s:s}", "run_id", &run_id,
				"delivery", &delivery, "script", &script, "version", &version, "env",
				&env, "timeout_ms", &timeout, "hash", &hash, "content", &content) < 0) {
			run_cmds_free(c, i);
			json_decref(rows);
			return herr_set(err, HERR_STORE, "delivery row with missing columns");
		}
		c[i].run_id = run_id;
		copy_str(c[i].delivery, sizeof(c[i].delivery), delivery);
		copy_str(c[i].script, sizeof(c[i].script), script);
		c[i].version = version;
		copy_str(c[i].hash, sizeof(c[i].hash), hash);
		c[i].content = dup_str(content);
		c[i].env = json_loads(env, 0, NULL);
		if (c[i].env == NULL)
			c[i].env = json_object();
		c[i].timeout_ms = timeout;
	}
	*out = c;
	*n = json_array_size(rows);
	json_decref(rows);
	return 0;
fail_tx:
	store_rollback(st);
	json_decref(rows);
	return err->code;
}

int
run_start(struct store *st, int64_t run_id, const char *host_id, const char *delivery,
	  const char *nonce, int64_t now, struct herr *err)
{
	const char *state = "", *had = "";
	json_t *row;
	int64_t n = 0;
	int rc;

	if (store_q(st, NULL, &n, err,
		    "UPDATE run_hosts SET state = 'running', started_ms = ?, start_nonce = ?"
		    " WHERE run_id = ? AND host_id = ? AND state = 'queued'",
		    "[IsIs]", (json_int_t)now, nonce ? nonce : "", (json_int_t)run_id, host_id) < 0)
		return err->code;
	if (n == 1)
		return 0;
	row = store_row(st, err,
			"SELECT state, start_nonce FROM run_hosts WHERE run_id = ? AND host_id = ?",
			"[Is]", (json_int_t)run_id, host_id);
	if (row == NULL)
		return err->code ? err->code
				 : herr_set(err, HERR_NOTFOUND, "no delivery '%s' for this host",
					    delivery);
	json_unpack(row, "{s?s, s?s}", "state", &state, "start_nonce", &had);
	if (strcmp(state, "running") == 0 && nonce && *nonce && strcmp(had, nonce) == 0)
		rc = 0; /* our own start, retried after a lost answer */
	else
		rc = herr_set(err, HERR_CONFLICT,
			      "delivery '%s' is already %s: not starting it again", delivery, state);
	json_decref(row);
	return rc;
}

/* Appends one stream's chunk if it continues what is stored; 0, or 1 if
 * it was a repeat, or a negative code with err set. */
static int
append_output(struct store *st, int64_t run_id, const char *host_id, int stream,
	      const struct run_output_in *in, int64_t have, struct herr *err)
{
	const char *p = in->data, *col = stream == 1 ? "stdout" : "stderr";
	size_t n = in->len, keep;
	int64_t off = in->offset;

	if (p == NULL || n == 0)
		return 0;
	if (off < 0)
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
				 " stdout_truncated = CASE WHEN ? <> 0 THEN 1 ELSE stdout_truncated END"
				 " WHERE run_id = ? AND host_id = ?"
			       : "UPDATE run_hosts SET stderr = stderr || ?, stderr_len = stderr_len + ?,"
				 " stderr_truncated = CASE WHEN ? <> 0 THEN 1 ELSE stderr_truncated END"
				 " WHERE run_id = ? AND host_id = ?",
		       "[s#IbIs]", p, (int)keep, (json_int_t)keep, keep < n, (json_int_t)run_id, host_id);
}

int
run_output_add(struct store *st, int64_t run_id, const char *host_id, const char *delivery,
	       const struct run_output_in *out, const struct run_output_in *errout, bool *cancel,
	       struct herr *err)
{
	json_t *row;
	enum run_hstate hs;

	*cancel = false;
	if (store_begin(st, err) < 0)
		return err->code;
	row = store_row(st, err,
			"SELECT rh.state, rh.stdout_len, rh.stderr_len, r.cancel_requested FROM run_hosts rh"
			" JOIN runs r ON r.id = rh.run_id WHERE rh.run_id = ? AND rh.host_id = ?",
			"[Is]", (json_int_t)run_id, host_id);
	if (row == NULL) {
		if (err->code == 0)
			herr_set(err, HERR_NOTFOUND, "no delivery '%s' for this host", delivery);
		goto fail_tx;
	}
	hs = run_hstate_parse(json_string_value(json_object_get(row, "state")));
	*cancel = geti(row, "cancel_requested") != 0 || run_hstate_is_final(hs);
	if (hs == RH_QUEUED) {
		herr_set(err, HERR_CONFLICT, "delivery '%s' was not started", delivery);
		json_decref(row);
		goto fail_tx;
	}
	if (hs == RH_RUNNING &&
	    (append_output(st, run_id, host_id, 1, out, geti(row, "stdout_len"), err) < 0 ||
	     append_output(st, run_id, host_id, 2, errout, geti(row, "stderr_len"), err) < 0)) {
		json_decref(row);
		goto fail_tx;
	}
	json_decref(row);
	if (store_commit(st, err) < 0)
		goto fail_tx;
	return 0;
fail_tx:
	store_rollback(st);
	return err->code;
}

int
run_result_record(struct store *st, int64_t run_id, const char *host_id, const char *delivery,
		  const struct run_result *r, int64_t now, enum run_hstate *to, bool *repeat,
		  char *reason, size_t reasonsz, struct herr *err)
{
	json_t *row;
	enum run_hstate hs;
	int64_t n = 0;

	*repeat = false;
	if (store_begin(st, err) < 0)
		return err->code;
	row = store_row(st, err,
			"SELECT rh.state, r.timeout_ms FROM run_hosts rh JOIN runs r ON r.id = rh.run_id"
			" WHERE rh.run_id = ? AND rh.host_id = ?",
			"[Is]", (json_int_t)run_id, host_id);
	if (row == NULL) {
		if (err->code == 0)
			herr_set(err, HERR_NOTFOUND, "no delivery '%s' for this host", delivery);
		goto fail_tx;
	}
	hs = run_hstate_parse(json_string_value(json_object_get(row, "state")));
	if (run_hstate_is_final(hs)) {
		store_rollback(st);
		json_decref(row);
		*repeat = true;
		*to = hs;
		return 0;
	}
	*to = run_outcome(r->has_exit_code ? (int)r->exit_code : 0, (int)r->signal, r->timed_out,
			  r->cancelled, r->error, geti(row, "timeout_ms"), reason, reasonsz);
	json_decref(row);
	if (store_q(st, NULL, &n, err,
		    "UPDATE run_hosts SET state = ?, reason = ?, exit_code = ?, signal = ?,"
		    " started_ms = CASE WHEN started_ms = 0 THEN ? ELSE started_ms END, ended_ms = ?,"
		    " stdout = ?, stderr = ?, stdout_len = ?, stderr_len = ?, stdout_truncated = ?,"
		    " stderr_truncated = ? WHERE run_id = ? AND host_id = ? AND state IN ('queued', 'running')",
		    "[ssoIIIssIIbbIs]", run_hstate_name(*to), reason,
		    r->has_exit_code && r->exit_code >= 0 ? json_integer(r->exit_code) : json_null(),
		    (json_int_t)r->signal, (json_int_t)now, (json_int_t)now, r->out ? r->out : "",
		    r->errout ? r->errout : "", (json_int_t)(r->out ? strlen(r->out) : 0),
		    (json_int_t)(r->errout ? strlen(r->errout) : 0), r->out_truncated,
		    r->err_truncated, (json_int_t)run_id, host_id) < 0 ||
	    run_refresh(st, run_id, now, NULL, err) < 0 || store_commit(st, err) < 0)
		goto fail_tx;
	return 0;
fail_tx:
	store_rollback(st);
	return err->code;
}

/* --- POST /v1/runs --- */

/* A live host by NAME, CLUSTER/NAME or id, as host_find()
 * resolves it (the newest first, terminated ones last; a name in several
 * clusters is HERR_CONFLICT). */
static int
target_host(struct store *st, const char *name, struct host *out, struct herr *err)
{
	json_t *row = host_find(st, name, NULL, err);
	int rc;

	if (row == NULL)
		return err->code;
	rc = host_from_row(row, out, err);
	json_decref(row);
	return rc;
}

/* Kicks for the hosts of hosts[0..n) that are ready (their delivery is
 * queued): only their parked command long-polls are resumed. */
static void
kick_queued(struct server *srv, const struct host *hosts, size_t n)
{
	const char **ids = xcalloc(n + 1, sizeof(*ids));
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (hosts[i].state == HS_READY)
			ids[k++] = hosts[i].id;
	server_kick_commands(srv, ids, k);
	free(ids);
}

/* The target's hosts (owned array of *n hosts, at most RUN_HOSTS_MAX + 1)
 * and its canonical name. */
static int
target_hosts(struct store *st, const char *kind, const char *name, char *target, size_t tn,
	     struct host **out, size_t *n, struct herr *err)
{
	json_t *rows = NULL, *r;
	struct host *hosts;
	struct res res;
	size_t i;
	int rc;

	*out = NULL;
	*n = 0;
	if (strcmp(kind, "host") == 0) {
		hosts = xcalloc(1, sizeof(*hosts));
		if (target_host(st, name, hosts, err) < 0) {
			free(hosts);
			return err->code;
		}
		snprintf(target, tn, "%s/%s", hosts->cluster, hosts->name);
		*out = hosts;
		*n = 1;
		return 0;
	}
	if (strcmp(kind, "group") == 0) {
		if (res_find(st, &kind_group, name, &res, err) < 0)
			return err->code;
		snprintf(target, tn, "%s/%s", res.scope, res.name);
		rc = store_q(st, &rows, NULL, err,
			     "SELECT " HOST_COLUMNS " FROM hosts WHERE cluster = ? AND grp = ?"
			     " AND state <> 'terminated' ORDER BY seq LIMIT ?",
			     "[ssi]", res.scope, res.name, RUN_HOSTS_MAX + 1);
	} else {
		if (res_get(st, &kind_cluster, "", name, &res, err) < 0)
			return err->code;
		snprintf(target, tn, "%s", res.name);
		rc = store_q(st, &rows, NULL, err,
			     "SELECT " HOST_COLUMNS " FROM hosts WHERE cluster = ?"
			     " AND state <> 'terminated' ORDER BY grp, seq LIMIT ?",
			     "[si]", res.name, RUN_HOSTS_MAX + 1);
	}
	res_release(&res);
	if (rc < 0)
		return rc;
	hosts = xcalloc(json_array_size(rows) + 1, sizeof(*hosts));
	json_array_foreach(rows, i, r) {
		if (host_from_row(r, &hosts[i], err) < 0) {
			free(hosts);
			json_decref(rows);
			return err->code;
		}
	}
	*out = hosts;
	*n = json_array_size(rows);
	json_decref(rows);
	return 0;
}

int
run_create(struct server *srv, const struct run_spec *rs, int64_t *run_id, char *detail,
	   size_t detailsz, struct herr *err)
{
	json_t *sv = NULL, *ret = NULL;
	json_int_t version = rs->version;
	const char *hash = "";
	char target[200], *envtext = NULL;
	struct store *st = srv->store;
	struct host *hosts = NULL;
	struct res sres;
	int64_t id = 0, now = rs->now_ms > 0 ? rs->now_ms : now_ms();
	size_t i, nhosts = 0, nready = 0;
	int queued = 0, rc, n, batch = 0;

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
	json_unpack(sv, "{s:I, s:s}", "version", &version, "hash", &hash);
	if (target_hosts(st, rs->target_kind, rs->target, target, sizeof(target), &hosts, &nhosts,
			 err) < 0) {
		char msg[sizeof(err->msg)];
		snprintf(msg, sizeof(msg), "%s", err->msg[0] ? err->msg : "not found");
		herr_field(err, err->code ? err->code : HERR_NOTFOUND, rs->target_kind, "%s", msg);
		goto fail_tx;
	}
	if (nhosts == 0) {
		herr_field(err, HERR_INVALID, rs->target_kind, "%s '%s' has no hosts", rs->target_kind,
			   target);
		goto fail_tx;
	}
	if (nhosts > RUN_HOSTS_MAX) {
		herr_field(err, HERR_TOOBIG, rs->target_kind, "%s '%s' has more than %d hosts",
			   rs->target_kind, target, RUN_HOSTS_MAX);
		goto fail_tx;
	}
	for (i = 0; i < nhosts; i++)
		nready += hosts[i].state == HS_READY;
	if (rs->batch && run_batch_size(rs->batch, nready, &batch, err) < 0)
		goto fail_tx;
	envtext = rs->env ? json_dumps(rs->env, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (store_q(st, &ret, NULL, err,
		    "INSERT INTO runs (script, version, hash, target_kind, target, env, timeout_ms,"
		    " parallel, created_by, created_ms, state, batch, drain, gate_ms, stop_on_failure)"
		    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?) RETURNING id",
		    "[sIssssIIsIibIb]", rs->script, version, hash, rs->target_kind, target,
		    envtext ? envtext : "{}", (json_int_t)rs->timeout_ms, (json_int_t)rs->parallel,
		    rs->who && *rs->who ? rs->who : "anonymous", (json_int_t)now, batch,
		    batch > 0 && rs->drain, (json_int_t)(batch > 0 ? rs->gate_ms : 0),
		    batch > 0 && rs->stop_on_failure) < 0)
		goto fail_tx;
	id = geti(json_array_get(ret, 0), "id");
	for (i = 0; i < nhosts; i++) {
		const struct host *h = &hosts[i];
		bool ready = h->state == HS_READY;
		char delivery[160], reason[128] = "";

		snprintf(delivery, sizeof(delivery), "%lld-%s", (long long)id, h->id);
		if (!ready)
			snprintf(reason, sizeof(reason), "the host is %s, not ready",
				 hstate_name(h->state));
		/* a rolling run's ready hosts wait for their batch, in seq order */
		if (store_q(st, NULL, NULL, err,
			    "INSERT INTO run_hosts (run_id, seq, host_id, host, cluster, grp, state,"
			    " reason, delivery, ended_ms, batch, phase)"
			    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			    "[IIsssssssIis]", (json_int_t)id, (json_int_t)i, h->id, h->name, h->cluster,
			    h->grp, ready ? "queued" : "skipped", reason, delivery,
			    (json_int_t)(ready ? 0 : now), batch > 0 && ready ? queued / batch : 0,
			    batch > 0 && ready ? "wait" : "") < 0)
			goto fail_tx;
		queued += ready;
	}
	if (run_refresh(st, id, now, NULL, err) < 0 ||
	    store_q(st, NULL, NULL, err,
		    "DELETE FROM run_output WHERE run_id IN (SELECT id FROM runs WHERE state <> 'running'"
		    " AND ended_ms > 0 AND ended_ms < ?)",
		    "[I]", (json_int_t)(now - OUTPUT_KEEP_MS)) < 0 ||
	    store_commit(st, err) < 0)
		goto fail_tx;
	n = snprintf(detail, detailsz,
		     "run %lld: script %s version %lld sha256:%s on %s %s (%d queued, %d skipped)",
		     (long long)id, rs->script, (long long)version, hash, rs->target_kind, target,
		     queued, (int)nhosts - queued);
	if (batch > 0 && n > 0 && (size_t)n < detailsz)
		n += snprintf(detail + n, detailsz - (size_t)n,
			      "; rolling, %d per batch%s%s", batch, rs->drain ? ", drain" : "",
			      rs->stop_on_failure ? ", stop on failure" : "");
	/* the names say what was set (BASH_ENV, LD_PRELOAD...); values may be secrets */
	if (json_object_size(rs->env) && n > 0 && (size_t)n + 6 + 16 < detailsz) {
		snprintf(detail + n, detailsz - (size_t)n, "; env ");
		run_env_names(rs->env, detail + n + 6, detailsz - (size_t)n - 6);
	}
	log_info("%s, by %s", detail, rs->who && *rs->who ? rs->who : "anonymous");
	if (queued && batch == 0)
		kick_queued(srv, hosts, nhosts);   /* rolling: ctl/rolling.c kicks each batch */
	*run_id = id;
	rc = 0;
	goto out;
fail_tx:
	store_rollback(st);
	rc = err->code;
out:
	free(envtext);
	free(hosts);
	json_decref(ret);
	json_decref(sv);
	return rc;
}

/* --- rolling runs --- */

int
run_rolling_ids(struct store *st, int64_t **ids, size_t *n, struct herr *err)
{
	json_t *rows = NULL, *r;
	size_t i;

	*ids = NULL;
	*n = 0;
	if (store_q(st, &rows, NULL, err,
		    "SELECT id FROM runs WHERE state = 'running' AND batch > 0 ORDER BY id", "[]") < 0)
		return err->code;
	*ids = xcalloc(json_array_size(rows) + 1, sizeof(**ids));
	json_array_foreach(rows, i, r)
		(*ids)[i] = geti(r, "id");
	*n = json_array_size(rows);
	json_decref(rows);
	return 0;
}

int
run_rolling_out(struct store *st, json_t **out, struct herr *err)
{
	json_t *rows = NULL, *r;
	size_t i;

	*out = NULL;
	if (store_q(st, &rows, NULL, err,
		    "SELECT rh.host_id, rh.run_id FROM run_hosts rh JOIN runs r ON r.id = rh.run_id"
		    " JOIN hosts h ON h.id = rh.host_id WHERE r.drain = 1"
		    " AND rh.phase IN ('drain', 'run', 'held') AND h.state <> 'terminated'",
		    "[]") < 0)
		return err->code;
	*out = json_object();
	json_array_foreach(rows, i, r)
		json_object_set_new(*out, json_string_value(json_object_get(r, "host_id")),
				    json_integer(geti(r, "run_id")));
	json_decref(rows);
	return 0;
}

int
run_roll_apply(struct store *st, int64_t id, const struct run_roll_step *steps, size_t n,
	       int64_t now, struct herr *err)
{
	if (store_begin(st, err) < 0)
		return err->code;
	for (size_t i = 0; i < n; i++) {
		const struct run_roll_step *x = &steps[i];
		int rc;

		if (x->state < RH__COUNT)
			rc = store_q(st, NULL, NULL, err,
				     "UPDATE run_hosts SET phase = ?, phase_ms = ?, healthy_ms = ?,"
				     " state = ?, reason = ?, ended_ms = CASE WHEN ? THEN ? ELSE ended_ms END"
				     " WHERE run_id = ? AND host_id = ?",
				     "[sIIssbIIs]", run_phase_name(x->phase), (json_int_t)x->phase_ms,
				     (json_int_t)x->healthy_ms, run_hstate_name(x->state),
				     x->reason ? x->reason : "", run_hstate_is_final(x->state),
				     (json_int_t)now, (json_int_t)id, x->host_id);
		else
			rc = store_q(st, NULL, NULL, err,
				     "UPDATE run_hosts SET phase = ?, phase_ms = ?, healthy_ms = ?"
				     " WHERE run_id = ? AND host_id = ?",
				     "[sIIIs]", run_phase_name(x->phase), (json_int_t)x->phase_ms,
				     (json_int_t)x->healthy_ms, (json_int_t)id, x->host_id);
		if (rc < 0)
			goto fail_tx;
	}
	if (run_refresh(st, id, now, NULL, err) < 0 || store_commit(st, err) < 0)
		goto fail_tx;
	return 0;
fail_tx:
	store_rollback(st);
	return err->code;
}

/* --- retention --- */

/* The runs run_prune may delete: ended before ?, draining no live host. */
#define RUN_EXPIRED                                                                        \
	"SELECT id FROM runs WHERE state <> 'running' AND ended_ms > 0 AND ended_ms < ?"   \
	" AND id NOT IN (SELECT drain_run_id FROM hosts WHERE drain_run_id <> 0"           \
	" AND state <> 'terminated')"

int
run_prune(struct store *st, int64_t before_ms, int max_rows, int64_t *deleted,
	  struct herr *err)
{
	int64_t n = 0;
	int rc;

	*deleted = 0;
	if ((rc = store_q(st, NULL, &n, err,
			  "DELETE FROM run_output WHERE id IN (SELECT id FROM run_output WHERE"
			  " run_id IN (" RUN_EXPIRED ") ORDER BY id LIMIT ?)",
			  "[Ii]", (json_int_t)before_ms, max_rows)) < 0)
		return rc;
	*deleted += n;
	if (n >= max_rows)
		return 0;
	n = 0;
	if ((rc = store_q(st, NULL, &n, err,
			  "DELETE FROM run_hosts WHERE (run_id, host_id) IN (SELECT run_id, host_id"
			  " FROM run_hosts WHERE run_id IN (" RUN_EXPIRED ") LIMIT ?)",
			  "[Ii]", (json_int_t)before_ms, max_rows)) < 0)
		return rc;
	*deleted += n;
	if (n >= max_rows)
		return 0;
	n = 0;
	/* childless by now: the cascade has nothing left to do */
	if ((rc = store_q(st, NULL, &n, err,
			  "DELETE FROM runs WHERE id IN (" RUN_EXPIRED " AND NOT EXISTS (SELECT 1"
			  " FROM run_hosts rh WHERE rh.run_id = runs.id) AND NOT EXISTS (SELECT 1"
			  " FROM run_output o WHERE o.run_id = runs.id) ORDER BY id LIMIT ?)",
			  "[Ii]", (json_int_t)before_ms, max_rows)) < 0)
		return rc;
	*deleted += n;
	return 0;
}
