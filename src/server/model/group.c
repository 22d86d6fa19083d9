/* model/group.c - groups' rules that need the store beyond their own row:
 * a group with live hosts cannot be deleted (declared in model/res.h as a
 * kind hook; the kind itself is defined with the other kinds). */
#include "model/res.h"
#include "store/store.h"

int
group_delete_check(struct store *st, const char *cluster, const char *name, struct herr *err)
{
	json_t *row = store_row(st, err,
				"SELECT COUNT(*) AS n FROM hosts WHERE cluster = ? AND grp = ?"
				" AND state <> 'terminated'",
				"[ss]", cluster, name);
	json_int_t n = row ? json_integer_value(json_object_get(row, "n")) : 0;

	json_decref(row);
	if (err->code)
		return err->code;
	if (n > 0)
		return herr_set(err, HERR_CONFLICT,
				"group '%s/%s' still has %lld host(s): scale it to 0 first", cluster,
				name, (long long)n);
	return 0;
}
