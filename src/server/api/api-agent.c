/* api-agent.c - what agents call: join (a single-use join token from the
 * host's user-data, exchanged for a per-host credential stored only as a
 * hash), state reports, init script results and heartbeats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "ctl/ctl.h"
#include "store/store.h"
#include "util.h"
#include "xalloc.h"

#define INIT_OUTPUT_MAX (64 * 1024)


void
api_agent_join(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *body = req_json(rq), *row = NULL, *init = json_array(), *tspec = NULL;
	const char *id, *tok, *jh;
	char hash[65], cred[80], credhash[65];
	struct res t;

	if (body == NULL)
		goto out;
	id = json_string_value(json_object_get(body, "host_id"));
	tok = json_string_value(json_object_get(body, "join_token"));
	if (id == NULL || tok == NULL || strlen(tok) > 200) {
		reply_errf(rq, HERR_INVALID, id ? "join_token" : "host_id", "is required");
		goto out;
	}
	sha256_hex(tok, strlen(tok), hash);
	if (store_begin(rq->srv->store, &err) < 0)
		goto fail;
	row = store_row(rq->srv->store, &err,
			"SELECT id, name, cluster, grp, template, state, private_ip, join_hash,"
			" join_expires_ms FROM hosts WHERE id = ?",
			"[s]", id);
	jh = row ? json_string_value(json_object_get(row, "join_hash")) : NULL;
	if (row == NULL || jh == NULL || !str_ct_equal(jh, hash) ||
	    json_integer_value(json_object_get(row, "join_expires_ms")) < now_ms()) {
		store_rollback(rq->srv->store);
		herr_set(&err, HERR_AUTH, "invalid, used or expired join token");
		goto fail;
	}
	{
		enum hstate st = hstate_parse(json_string_value(json_object_get(row, "state")));
		if (st != HS_LAUNCHING && st != HS_BOOTING) {
			store_rollback(rq->srv->store);
			herr_set(&err, HERR_AUTH, "host is %s: it cannot join", hstate_name(st));
			goto fail;
		}
	}
	token_random(cred, sizeof(cred), "hc_", 24);
	sha256_hex(cred, strlen(cred), credhash);
	if (store_q(rq->srv->store, NULL, NULL, &err,
		    "UPDATE hosts SET join_hash = NULL, cred_hash = ?, joined_ms = ?, heartbeat_ms = ?,"
		    " updated_ms = ? WHERE id = ?",
		    "[sIIIs]", credhash, (json_int_t)now_ms(), (json_int_t)now_ms(), (json_int_t)now_ms(),
		    id) < 0 ||
	    store_commit(rq->srv->store, &err) < 0) {
		store_rollback(rq->srv->store);
		goto fail;
	}
	/* The template's init scripts, latest versions, in order. */
	if (res_get(rq->srv->store, &kind_template, "",
		    json_string_value(json_object_get(row, "template")), &t, &err) == 0) {
		json_t *names = json_object_get(t.spec, "init"), *n;
		size_t i;
		json_array_foreach(names, i, n) {
			json_t *v = store_row(rq->srv->store, &err,
					      "SELECT name, version, hash, content FROM script_versions"
					      " WHERE name = ? ORDER BY version DESC LIMIT 1",
					      "[s]", json_string_value(n));
			if (v)
				json_array_append_new(init, v);
		}
		tspec = t.spec;
	}
	herr_clear(&err);
	{
		json_t *h = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", id, "name",
				      json_string_value(json_object_get(row, "name")), "cluster",
				      json_string_value(json_object_get(row, "cluster")), "group",
				      json_string_value(json_object_get(row, "grp")), "private_ip",
				      json_string_value(json_object_get(row, "private_ip")), "state",
				      "booting");
		reply_json(rq, 200, json_pack("{s:s,s:o,s:O,s:i}", "credential", cred, "host", h, "init",
					      init, "heartbeat_s", HERD_HEARTBEAT_S));
	}
	snprintf(rq->who.name, sizeof(rq->who.name), "%s", json_string_value(json_object_get(row, "name")));
	rq->who.role = ROLE_HOST;
	json_decref(tspec);
	goto out;
fail:
	reply_err(rq, &err);
out:
	json_decref(init);
	json_decref(row);
}

void
api_agent_state(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *body = req_json(rq);
	const char *st, *reason;
	enum hstate to;

	if (body == NULL)
		return;
	st = json_string_value(json_object_get(body, "state"));
	reason = json_string_value(json_object_get(body, "reason"));
	to = hstate_parse(st);
	if (to != HS_INITIALIZING && to != HS_READY && to != HS_FAILED)
		return reply_errf(rq, HERR_INVALID, "state", "must be initializing, ready or failed");
	if (reason && strlen(reason) > 1000)
		return reply_errf(rq, HERR_INVALID, "reason", "must be at most 1000 characters");
	if (ctl_host_state(rq->srv, rq->who.host_id, to, reason, &err) < 0)
		return reply_err(rq, &err);
	reply_json(rq, 200, json_pack("{s:s}", "state", hstate_name(to)));
}

static json_int_t
geti(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? json_integer_value(v) : json_is_true(v) ? 1 : 0;
}

void
api_agent_init_result(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *b = req_json(rq);
	const char *script, *out, *errout;

	if (b == NULL)
		return;
	script = json_string_value(json_object_get(b, "script"));
	out = json_string_value(json_object_get(b, "stdout"));
	errout = json_string_value(json_object_get(b, "stderr"));
	if (script == NULL || !script_name_is_valid(script))
		return reply_errf(rq, HERR_INVALID, "script", "must be a script name");
	if (!json_is_integer(json_object_get(b, "index")) || geti(b, "index") < 0 || geti(b, "index") > 100)
		return reply_errf(rq, HERR_INVALID, "index", "must be an integer 0-100");
	if ((out && strlen(out) > INIT_OUTPUT_MAX) || (errout && strlen(errout) > INIT_OUTPUT_MAX))
		return reply_errf(rq, HERR_TOOBIG, out && strlen(out) > INIT_OUTPUT_MAX ? "stdout" : "stderr",
				  "must be at most %d bytes", INIT_OUTPUT_MAX);
	/* a report sent again (the agent retried) replaces the first; one commit */
	if (store_begin(rq->srv->store, &err) < 0)
		return reply_err(rq, &err);
	if (store_q(rq->srv->store, NULL, NULL, &err,
		    "DELETE FROM init_results WHERE host_id = ? AND idx = ?", "[sI]", rq->who.host_id,
		    geti(b, "index")) < 0 ||
	    store_q(rq->srv->store, NULL, NULL, &err,
		    "INSERT INTO init_results (host_id, idx, script, version, exit_code, signal,"
		    " timed_out, stdout, stderr, stdout_truncated, stderr_truncated, started_ms,"
		    " ended_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		    "[sIsIIIIssIIII]", rq->who.host_id, geti(b, "index"), script, geti(b, "version"),
		    geti(b, "exit_code"), geti(b, "signal"), geti(b, "timed_out"), out ? out : "",
		    errout ? errout : "", geti(b, "stdout_truncated"), geti(b, "stderr_truncated"),
		    geti(b, "started_ms"), geti(b, "ended_ms")) < 0 ||
	    store_commit(rq->srv->store, &err) < 0) {
		store_rollback(rq->srv->store);
		return reply_err(rq, &err);
	}
	reply_json(rq, 200, json_object());
}

void
api_agent_heartbeat(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *row;

	if (store_q(rq->srv->store, NULL, NULL, &err,
		    "UPDATE hosts SET heartbeat_ms = ? WHERE id = ?", "[Is]", (json_int_t)now_ms(),
		    rq->who.host_id) < 0)
		return reply_err(rq, &err);
	row = store_row(rq->srv->store, &err, "SELECT state FROM hosts WHERE id = ?", "[s]",
			rq->who.host_id);
	if (row && strcmp(json_string_value(json_object_get(row, "state")), "unhealthy") == 0)
		ctl_host_state(rq->srv, rq->who.host_id, HS_READY, "heartbeats are back", &err);
	json_decref(row);
	reply_json(rq, 200, json_object());
}
