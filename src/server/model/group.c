/* model/group.c - groups' rules that need the store beyond their own row:
 * a group with live hosts cannot be deleted (declared in model/res.h as a
 * kind hook; the kind itself is defined with the other kinds). */
#include "model/host.h"
#include "model/res.h"

int
group_delete_check(struct store *st, const char *cluster, const char *name, struct herr *err)
{
	int64_t n = 0;

	if (host_count_live(st, cluster, name, &n, err) < 0)
		return err->code;
	if (n > 0)
		return herr_set(err, HERR_CONFLICT,
				"group '%s/%s' still has %lld host(s): scale it to 0 first", cluster,
				name, (long long)n);
	return 0;
}
