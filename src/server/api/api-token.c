/* api-token.c - API tokens: random (libsodium), shown once at creation,
 * stored only as SHA-256 hashes; roles viewer < operator < admin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "model/audit.h"
#include "model/token.h"
#include "util.h"

void
api_token_create(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *body = req_json(rq);
	const char *name, *rs;
	char tok[80], gen[32];
	enum role role;

	if (body == NULL)
		return;
	rs = json_string_value(json_object_get(body, "role"));
	name = json_string_value(json_object_get(body, "name"));
	role = role_parse(rs);
	if (role == ROLE_NONE)
		return reply_errf(rq, HERR_INVALID, "role", "must be viewer, operator or admin");
	if (json_object_get(body, "name") && (name == NULL || !name_is_valid(name)))
		return reply_errf(rq, HERR_INVALID, "name",
				  "must be a name of 1-63 characters [a-z0-9-]");
	{
		const char *key;
		json_t *v;
		json_object_foreach(body, key, v) {
			if (strcmp(key, "role") && strcmp(key, "name"))
				return reply_errf(rq, HERR_INVALID, key, "unknown field '%s'", key);
		}
	}
	if (name == NULL) {
		token_random(gen, sizeof(gen), "t-", 4);
		name = gen;
	}
	if (token_create(rq->srv->store, name, role_name(role), tok, sizeof(tok), &err) < 0) {
		if (err.code == HERR_CONFLICT)
			herr_field(&err, HERR_CONFLICT, "name", "a token named '%s' exists", name);
		return reply_err(rq, &err);
	}
	reply_json(rq, 201, json_pack("{s:s,s:s,s:s}", "name", name, "role", role_name(role), "token",
				      tok));
}

void
api_token_list(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *rows = NULL;

	if (token_list(rq->srv->store, &rows, &err) < 0)
		return reply_err(rq, &err);
	reply_json(rq, 200, json_pack("{s:o}", "items", rows));
}

void
api_token_delete(struct req *rq)
{
	struct herr err = HERR_INIT;

	if (strcmp(req_param(rq, 0), rq->who.name) == 0)
		return reply_errf(rq, HERR_CONFLICT, "name", "cannot delete the token you are using");
	/* token_delete() drops cached credentials (token_invalidate()) */
	if (token_delete(rq->srv->store, req_param(rq, 0), &err) < 0)
		return reply_err(rq, &err);
	reply_json(rq, 200, json_pack("{s:b}", "deleted", 1));
}

void
api_audit_list(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *rows = NULL;
	const char *lim = req_query(rq, "limit");
	long limit = 100;

	if (lim && parse_long(lim, 1, 1000, &limit) < 0)
		return reply_errf(rq, HERR_INVALID, "limit", "must be between 1 and 1000");
	if (audit_list(rq->srv->store, (int)limit, &rows, &err) < 0)
		return reply_err(rq, &err);
	reply_json(rq, 200, json_pack("{s:o}", "items", rows));
}
