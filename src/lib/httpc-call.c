/* httpc-call.c - the JSON calls of httpc.h built on httpc_json_text, the
 * same for both implementations (httpc.c on libcurl, the static agent's
 * src/hostbin/httpc-mini.c): a body as jansson, and a non-2xx answer as the
 * server's own error (message and field); and httpc_send's check of a
 * content type. */
#include <stdlib.h>
#include <string.h>

#include "httpc.h"

int
httpc_json(struct httpc *c, const char *method, const char *path, json_t *body, long *status,
	   json_t **resp, struct herr *err)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int rc;

	rc = httpc_json_text(c, method, path, text, status, resp, err);
	free(text);
	return rc;
}

int
httpc_call(struct httpc *c, const char *method, const char *path, json_t *body, json_t **resp,
	   struct herr *err)
{
	long status = 0;
	json_t *r = NULL, *e;
	int rc;

	*resp = NULL;
	rc = httpc_json(c, method, path, body, &status, &r, err);
	if (rc < 0)
		return rc;
	if (status >= 200 && status < 300) {
		*resp = r;
		return 0;
	}
	e = r ? json_object_get(r, "error") : NULL;
	if (e) {
		const char *msg = json_string_value(json_object_get(e, "message"));
		const char *field = json_string_value(json_object_get(e, "field"));
		int code = status == 400 ? HERR_INVALID : status == 401 ? HERR_AUTH
			 : status == 403 ? HERR_FORBIDDEN : status == 404 ? HERR_NOTFOUND
			 : status == 409 ? HERR_CONFLICT : status == 413 ? HERR_TOOBIG
			 : HERR_UNAVAIL;
		herr_field(err, code, field ? field : "", "%s", msg ? msg : "error");
	} else {
		herr_set(err, HERR_UNAVAIL, "server answered HTTP %ld", status);
	}
	json_decref(r);
	return err->code;
}

bool
httpc_ctype_is_valid(const char *ctype)
{
	size_t n = ctype ? strlen(ctype) : 0;

	if (n == 0 || n > 127)
		return false;
	for (size_t i = 0; i < n; i++)
		if (ctype[i] < 0x20 || ctype[i] > 0x7e)
			return false;
	return true;
}
