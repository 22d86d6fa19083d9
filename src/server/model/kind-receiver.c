/* model/kind-receiver.c - the receiver kind: where alert notifications go
 * (a webhook, an email address list through SMTP, an Alertmanager) and
 * which events (match). Its check is receiver_parse, the validator the
 * delivery worker (ctl/notify.c) loads receivers with, so what is stored is
 * what sends. Secrets are never stored: secret_file and password_file name
 * files on the server (0600), read at each send, like accounts'. */
#include <stdio.h>

#include "model/kind.h"
#include "notify/notify.h"

static const struct field receiver_fields[] = {
	{ "type", F_STR, FL_REQ, NULL, 0, 0 },
	{ "url", F_STR, FL_REQ, NULL, 0, 0 },
	{ "secret_file", F_STR, 0, NULL, 0, 0 },
	{ "from", F_STR, 0, NULL, 0, 0 },
	{ "to", F_STRS, 0, NULL, 0, 0 },
	{ "user", F_STR, 0, NULL, 0, 0 },
	{ "password_file", F_STR, 0, NULL, 0, 0 },
	{ "match", F_OBJECT, 0, NULL, 0, 0 },
	{ "group_wait", F_DURATION, 0, NULL, 0, 3600 },
	{ "timeout", F_DURATION, 0, NULL, 1, 60 },
	{ "description", F_STR, 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0 },
};

static int
receiver_check(const struct kind *k, json_t *obj, const json_t *old, const char *path,
	       struct herr *err)
{
	const char *name = json_string_value(json_object_get(obj, "name"));
	char field[sizeof(err->field)], msg[sizeof(err->msg)], fp[256];
	struct receiver r;

	if (receiver_parse(name ? name : "", obj, &r, err) < 0) {
		snprintf(field, sizeof(field), "%s", err->field);
		snprintf(msg, sizeof(msg), "%s", err->msg);
		snprintf(fp, sizeof(fp), "%s%s%s", path, *path && *field ? "." : "", field);
		return herr_field(err, HERR_INVALID, fp, "%s", msg);
	}
	herr_clear(err);
	return 0;
}

const struct kind kind_receiver = {
	.name = "receiver",
	.plural = "receivers",
	.scope = SCOPE_NONE,
	.fields = receiver_fields,
	.check = receiver_check,
};
