/* model/script.c - script versions in the store (model/script.h, and
 * script_store_version() of model/res.h): a script's content is never
 * overwritten, each change is a new numbered version with its hash, so a
 * run names exactly what it ran. */
#include <string.h>

#include "model/res.h"
#include "model/script.h"
#include "store/store.h"
#include "util.h"

int
script_store_version(struct store *st, const char *name, json_t *spec, struct herr *err)
{
	const char *hash = json_string_value(json_object_get(spec, "hash"));
	const char *had = NULL;
	json_t *row = store_row(st, err,
				"SELECT version, hash FROM script_versions WHERE name = ?"
				" ORDER BY version DESC LIMIT 1",
				"[s]", name);
	json_int_t v = 1;

	if (err->code)
		return err->code;
	if (row) {
		json_unpack(row, "{s:I, s:s}", "version", &v, "hash", &had);
		if (had && hash && strcmp(had, hash) == 0) {
			json_decref(row);
			json_object_set_new(spec, "latest", json_integer(v));
			return 0;
		}
		v++;
	}
	json_decref(row);
	json_object_set_new(spec, "latest", json_integer(v));
	return store_q(st, NULL, NULL, err,
		       "INSERT INTO script_versions (name, version, content, hash, interpreter,"
		       " created_ms) VALUES (?, ?, ?, ?, ?, ?)",
		       "[sIsssI]", name, v, json_string_value(json_object_get(spec, "content")), hash,
		       json_string_value(json_object_get(spec, "interpreter")), (json_int_t)now_ms());
}

int
script_versions_list(struct store *st, const char *name, json_t **out, struct herr *err)
{
	json_t *rows = NULL;

	*out = NULL;
	if (store_q(st, &rows, NULL, err,
		    "SELECT version, hash, interpreter, created_ms FROM script_versions"
		    " WHERE name = ? ORDER BY version",
		    "[s]", name) < 0)
		return err->code;
	if (json_array_size(rows) == 0) {
		json_decref(rows);
		return herr_set(err, HERR_NOTFOUND, "no script named '%s'", name);
	}
	*out = rows;
	return 0;
}
