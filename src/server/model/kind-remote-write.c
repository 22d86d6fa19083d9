/* model/kind-remote-write.c - the remote_write kind: a Prometheus-compatible
 * store herd sends the samples of agents' pushes to (url, auth, headers,
 * relabel rules, queue). Its check is rw_parse, the validator the sender
 * (ctl/rwout.c) loads remotes with, so what is stored is what sends.
 * Secrets are never stored: bearer_token_file and basic_auth.password_file
 * name files on the server (0600), read at each send. */
#include <stdio.h>

#include "model/kind.h"
#include "rwout/rwout.h"

static const struct field remote_write_fields[] = {
	{ "url", F_STR, FL_REQ, NULL, 0, 0 },
	{ "bearer_token_file", F_STR, 0, NULL, 0, 0 },
	{ "basic_auth", F_OBJECT, 0, NULL, 0, 0 },
	{ "headers", F_OBJECT, 0, NULL, 0, 0 },
	{ "relabel", F_LIST, 0, NULL, 0, 0 },
	{ "queue", F_OBJECT, 0, NULL, 0, 0 },
	{ "description", F_STR, 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0 },
};

static int
remote_write_check(const struct kind *k, json_t *obj, const json_t *old, const char *path,
		   struct herr *err)
{
	const char *name = json_string_value(json_object_get(obj, "name"));
	char field[sizeof(err->field)], msg[sizeof(err->msg)], fp[256];
	struct rw_conf c;

	if (rw_parse(name ? name : "", obj, &c, err) < 0) {
		snprintf(field, sizeof(field), "%s", err->field);
		snprintf(msg, sizeof(msg), "%s", err->msg);
		snprintf(fp, sizeof(fp), "%s%s%s", path, *path && *field ? "." : "", field);
		return herr_field(err, HERR_INVALID, fp, "%s", msg);
	}
	rw_conf_release(&c);
	herr_clear(err);
	return 0;
}

const struct kind kind_remote_write = {
	.name = "remote_write",
	.plural = "remote_writes",
	.scope = SCOPE_NONE,
	.fields = remote_write_fields,
	.check = remote_write_check,
};
