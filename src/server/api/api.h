/* api.h - what the API's files share: HTTP plumbing (authorization, audit,
 * answers) and the handlers named in routes.def. The data they translate
 * to and from is the model's (model/). */
#ifndef HERD_API_H
#define HERD_API_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"
#include "server.h"

struct MHD_Response;

#include "model/kind.h"
#include "model/res.h"
#include "model/activity.h"
#include "model/host.h"

/* Answers rq with the stored object (after a write); -1 if it vanished. */
int lookup_after_put(struct req *rq, const struct kind *k, const char *scope, const char *name);

/* --- API plumbing (api.c) --- */
/* Authenticates rq from its headers (cached) and checks its route's least
 * role. Returns true when the handler may run; false when rq holds the 401
 * or 403 answer (a refused mutation is audited). Needs only the headers, so
 * httpd calls it before reading any body; later calls return true at once. */
bool api_authorize(struct req *rq);
/* Runs rq's route: api_authorize(), the handler, the audit of a mutation.
 * A mutation runs in a transaction with its audit row; called inside one
 * (the writer's batch, writer.h) that is a savepoint the batch commits. */
void api_handle(struct req *rq);
/* Whether rq (authorized) is a mutation api_handle runs in a transaction
 * with its audit row: those go to the writer (writer.h). Not: reads,
 * agents' telemetry (heartbeats, metric pushes, run output) and
 * /v1/accounts/:name/check (it calls a cloud). */
bool api_runs_in_tx(const struct req *rq);
/* Forgets cached credentials (a token was deleted, a host terminated): kept
 * for old callers; it is token_invalidate() (model/token.h), which needs no api/. */
void auth_invalidate(void);
void api_not_found(struct req *rq);
void api_add_headers(struct req *rq, struct MHD_Response *r);
/* Security headers of every answer, and a console file's caching and
 * encoding headers (api-web.c). */
void web_add_headers(struct req *rq, struct MHD_Response *r);
/* The agent binary's SHA-256 header on its answer (api-agent-binary.c). */
void agent_binary_add_headers(struct req *rq, struct MHD_Response *r);
/* A follower's metrics (forward.c, docs/ha.md "Metrics with several
 * servers"): when this server does not lead a store several servers share,
 * sends rq (method, path, query, body, credential) to the leader and
 * answers with the leader's answer, or 503 (Retry-After) when there is no
 * leader to reach. True when rq is answered so; false: handle it here. */
bool api_forward_to_leader(struct req *rq);
/* Records an audit entry for rq (who, what, result). */
void api_audit(struct req *rq, const char *detail);
#define ROUTE(m, p, r, f, a) void f(struct req *rq);
#include "routes.def"
#undef ROUTE

#endif
