/* api-agent.c - what agents call: join (the join token from the host's
 * user-data, exchanged for a per-host credential stored only as a hash;
 * good until the host's first state report, so a lost answer can be asked
 * again), state reports, init script results and heartbeats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "ctl/ctl.h"
#include "model/host.h"
#include "util.h"

#define INIT_OUTPUT_MAX (64 * 1024)

void
api_agent_join(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *body = req_json(rq), *init, *h;
	const char *id, *tok;
	char cred[80];
	struct host host;

	if (body == NULL)
		return;
	id = json_string_value(json_object_get(body, "host_id"));
	tok = json_string_value(json_object_get(body, "join_token"));
	if (id == NULL || tok == NULL || strlen(tok) > 200)
		return reply_errf(rq, HERR_INVALID, id ? "join_token" : "host_id", "is required");
	if (host_join(rq->srv->store, id, tok, now_ms(), cred, sizeof(cred), &host, &err) < 0)
		return reply_err(rq, &err);
	/* the template's init scripts, latest versions, in order */
	init = host_init_scripts(rq->srv->store, host.template_);
	h = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", id, "name", host.name, "cluster",
		      host.cluster, "group", host.grp, "private_ip", host.private_ip, "state",
		      "booting");
	reply_json(rq, 200, json_pack("{s:s,s:o,s:o,s:i}", "credential", cred, "host", h, "init",
				      init, "heartbeat_s", HERD_HEARTBEAT_S));
	snprintf(rq->who.name, sizeof(rq->who.name), "%s", host.name);
	rq->who.role = ROLE_HOST;
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
	struct init_result r;

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
	r.idx = geti(b, "index");
	r.script = script;
	r.version = geti(b, "version");
	r.exit_code = geti(b, "exit_code");
	r.signal = geti(b, "signal");
	r.timed_out = geti(b, "timed_out");
	r.out = out;
	r.errout = errout;
	r.stdout_truncated = geti(b, "stdout_truncated");
	r.stderr_truncated = geti(b, "stderr_truncated");
	r.started_ms = geti(b, "started_ms");
	r.ended_ms = geti(b, "ended_ms");
	/* a report sent again (the agent retried) replaces the first */
	if (host_init_result_put(rq->srv->store, rq->who.host_id, &r, &err) < 0)
		return reply_err(rq, &err);
	reply_json(rq, 200, json_object());
}

void
api_agent_heartbeat(struct req *rq)
{
	struct herr err = HERR_INIT;
	enum hstate st;

	if (host_heartbeat(rq->srv->store, rq->who.host_id, now_ms(), &st, &err) < 0)
		return reply_err(rq, &err);
	if (st == HS_UNHEALTHY)
		ctl_host_state(rq->srv, rq->who.host_id, HS_READY, "heartbeats are back", &err);
	reply_json(rq, 200, json_object());
}
