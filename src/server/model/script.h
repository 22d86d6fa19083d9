/* model/script.h - the script library's versions: every content change of a
 * script is kept in script_versions (number, hash, interpreter). The script
 * kind's hook script_store_version() is declared in model/res.h. */
#ifndef HERD_MODEL_SCRIPT_H
#define HERD_MODEL_SCRIPT_H

#include <stdint.h>

#include <jansson.h>

#include "herr.h"

struct store;

/* Every version of script name, oldest first, as an owned array of
 * {"version","hash","interpreter","created_ms"}: 0, or HERR_NOTFOUND
 * ("no script named 'NAME'") when it has none. */
int script_versions_list(struct store *st, const char *name, json_t **out, struct herr *err);

#endif
