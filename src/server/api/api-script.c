/* api-script.c - the script library: named scripts whose every content
 * change is a new version (kept in script_versions, with its hash), the
 * interpreter read from the shebang. Built-in scripts are read-only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "model/script.h"
#include "util.h"

static const struct field script_fields[] = {
	{ "content", F_TEXT, FL_REQ, NULL, 0, 0 },
	{ "description", F_STR, 0, NULL, 0, 0 },
	{ "interpreter", F_STR, FL_OUT, NULL, 0, 0 },
	{ "hash", F_STR, FL_OUT, NULL, 0, 0 },
	{ "latest", F_INT, FL_OUT, NULL, 0, 0 },
	{ "builtin", F_BOOL, FL_OUT, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0 },
};

static int
script_check(const struct kind *k, json_t *obj, const json_t *old, const char *path,
	     struct herr *err)
{
	const char *c = json_string_value(json_object_get(obj, "content"));
	char interp[256] = "/bin/sh", hash[65];

	if (old && json_is_true(json_object_get(old, "builtin")))
		return herr_set(err, HERR_FORBIDDEN, "built-in scripts are read-only: copy it under a new name");
	if (strncmp(c, "#!", 2) == 0) {
		size_t n = strcspn(c + 2, "\n");
		snprintf(interp, sizeof(interp), "%.*s", (int)n, c + 2);
		/* trim */
		char *s = interp;
		while (*s == ' ')
			s++;
		memmove(interp, s, strlen(s) + 1);
		for (n = strlen(interp); n > 0 && (interp[n - 1] == ' ' || interp[n - 1] == '\r'); n--)
			interp[n - 1] = '\0';
	}
	sha256_hex(c, strlen(c), hash);
	json_object_set_new(obj, "interpreter", json_string(interp));
	json_object_set_new(obj, "hash", json_string(hash));
	if (old)
		json_object_set(obj, "latest", json_object_get(old, "latest"));
	return 0;
}

const struct kind kind_script = {
	.name = "script",
	.plural = "scripts",
	.scope = SCOPE_NONE,
	.fields = script_fields,
	.check = script_check,
};

void
api_script_versions(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *rows = NULL;

	if (script_versions_list(rq->srv->store, req_param(rq, 0), &rows, &err) < 0)
		return reply_err(rq, &err);
	reply_json(rq, 200, json_pack("{s:o}", "items", rows));
}
