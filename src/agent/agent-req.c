/* agent-req.c - the agent's requests to the server, retried through
 * outages: unreachable or 5xx means wait (jittered exponential backoff) and
 * try again, so a result or a state report is never lost to a short outage;
 * a 4xx is the server's final word, logged and returned. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "xalloc.h"
#include "util.h"

#define BACKOFF_FIRST_MS 200
#define BACKOFF_MAX_MS 10000
#define RETRY_LOG_EVERY_MS 30000   /* one warning per this, not one per attempt */

static _Thread_local uint64_t rand_state;

/* xorshift64*: jitter needs spread, not secrecy. */
static double
rand01(void)
{
	if (rand_state == 0)
		rand_state = ((uint64_t)now_ms() << 20) ^ (uint64_t)getpid() ^
			     (uint64_t)(uintptr_t)&rand_state;
	rand_state ^= rand_state >> 12;
	rand_state ^= rand_state << 25;
	rand_state ^= rand_state >> 27;
	return (double)((rand_state * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

int64_t
agent_backoff(int64_t *next_ms)
{
	int64_t base = *next_ms > 0 ? *next_ms : BACKOFF_FIRST_MS;

	*next_ms = base * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : base * 2;
	return (int64_t)((double)base * (0.75 + 0.5 * rand01()));
}

static int
status_code(long status)
{
	switch (status) {
	case 400: return HERR_INVALID;
	case 401: return HERR_AUTH;
	case 403: return HERR_FORBIDDEN;
	case 404: return HERR_NOTFOUND;
	case 409: return HERR_CONFLICT;
	case 413: return HERR_TOOBIG;
	default: return HERR_INVALID;
	}
}

void
agent_http_init(struct agent *a, struct httpc *c, const char *token)
{
	httpc_init(c, a->cfg.server, token);
	if (a->ca_pem)
		httpc_trust_ca_pem(c, a->ca_pem, strlen(a->ca_pem), false);
}

int
agent_pin(struct agent *a)
{
	int64_t next = 0, last_log = 0;
	int last = 0;

	if (strncmp(a->cfg.server, "https://", 8) != 0 || a->cfg.ca_sha256[0] == '\0')
		return 0;   /* plain http, or the system's CA store */
	for (;;) {
		struct herr e = HERR_INIT;
		int rc;

		if (agent_stopping())
			return -ECANCELED;
		rc = httpc_pin_ca(&a->http, a->cfg.ca_sha256, &e);
		if (rc == 0) {
			a->ca_pem = xstrdup(a->http.ca_pem);
			log_info("server CA pinned: sha256 %s", a->cfg.ca_sha256);
			return 0;
		}
		/* never the join token nor the credential to another server:
		 * say so (once per RETRY_LOG_EVERY_MS) and ask again later */
		if (rc != last || mono_ms() - last_log >= RETRY_LOG_EVERY_MS) {
			if (rc == HERR_FORBIDDEN || rc == HERR_INVALID)
				log_err("refusing the server at %s: %s", a->cfg.server, e.msg);
			else
				log_warn("cannot fetch the server's CA, retrying: %s", e.msg);
			last = rc;
			last_log = mono_ms();
		}
		agent_wait(a, agent_backoff(&next));
	}
}

int
agent_request(struct agent *a, const char *method, const char *path, json_t *body,
	      json_t **resp, struct herr *err)
{
	int64_t next = 0, last_log = 0;
	int attempts = 0;

	*resp = NULL;
	for (;;) {
		struct herr e = HERR_INIT;
		json_t *r = NULL;
		long status = 0;
		int rc;

		if (agent_stopping())
			return herr_set(err, -ECANCELED, "%s %s: agent is stopping", method, path);
		rc = httpc_json(&a->http, method, path, body, &status, &r, &e);
		attempts++;
		if (rc == 0 && status >= 200 && status < 300) {
			if (attempts > 1)
				log_info("%s %s went through after %d attempts", method, path, attempts);
			*resp = r;
			return 0;
		}
		if ((rc == 0 && status >= 400 && status < 500) || rc == HERR_TOOBIG ||
		    rc == HERR_INVALID) {
			json_t *je = r ? json_object_get(r, "error") : NULL;
			const char *msg = je ? json_string_value(json_object_get(je, "message")) : NULL;
			int code = rc < 0 ? rc : status_code(status);

			if (rc < 0)
				herr_set(err, code, "%s %s: %s", method, path, e.msg);
			else
				herr_set(err, code, "%s %s: server answered HTTP %ld: %s", method, path,
					 status, msg ? msg : "no message");
			log_err("%s", err->msg);
			json_decref(r);
			return code;
		}
		json_decref(r);
		if (attempts == 1 || mono_ms() - last_log >= RETRY_LOG_EVERY_MS) {
			if (rc < 0)
				log_warn("%s %s failed (attempt %d), retrying: %s", method, path,
					 attempts, e.msg);
			else
				log_warn("%s %s failed (attempt %d), retrying: server answered HTTP %ld",
					 method, path, attempts, status);
			last_log = mono_ms();
		}
		agent_wait(a, agent_backoff(&next));
	}
}
