/* api-script.c - the script library: named scripts whose every content
 * change is a new version (kept in script_versions, with its hash), the
 * interpreter read from the shebang. Built-in scripts are read-only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "store/store.h"
#include "util.h"

int
script_store_version(struct store *st, const char *name, json_t *spec, struct herr *err)
{
	const char *hash = json_string_value(json_object_get(spec, "hash"));
	json_t *row = store_row(st, err,
				"SELECT version, hash FROM script_versions WHERE name = ?"
				" ORDER BY version DESC LIMIT 1",
				"[s]", name);
	json_int_t v = 1;

	if (err->code)
		return err->code;
	if (row) {
		v = json_integer_value(json_object_get(row, "version"));
		if (strcmp(json_string_value(json_object_get(row, "hash")), hash) != 0)
			v++;
		else {
			json_decref(row);
			json_object_set_new(spec, "latest", json_integer(v));
			return 0;
		}
	}
	json_decref(row);
	json_object_set_new(spec, "latest", json_integer(v));
	return store_q(st, NULL, NULL, err,
		       "INSERT INTO script_versions (name, version, content, hash, interpreter,"
		       " created_ms) VALUES (?, ?, ?, ?, ?, ?)",
		       "[sIsssI]", name, v, json_string_value(json_object_get(spec, "content")), hash,
		       json_string_value(json_object_get(spec, "interpreter")), (json_int_t)now_ms());
}

void
api_script_versions(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *rows = NULL;

	if (store_q(rq->srv->store, &rows, NULL, &err,
		    "SELECT version, hash, interpreter, created_ms FROM script_versions"
		    " WHERE name = ? ORDER BY version",
		    "[s]", req_param(rq, 0)) < 0)
		return reply_err(rq, &err);
	if (json_array_size(rows) == 0) {
		json_decref(rows);
		return reply_errf(rq, HERR_NOTFOUND, "", "no script named '%s'", req_param(rq, 0));
	}
	reply_json(rq, 200, json_pack("{s:o}", "items", rows));
}
