/* ctl/room.c - what an apply warns of before launches are refused: a group
 * that may grow (its max, less the hosts it has) by more hosts than its
 * driver can launch on this machine now (prov_ops.hosts_left: for the
 * local driver the kernel's neighbour table, shared by the whole machine).
 * A warning, not a refusal: that room is the machine's, moves with
 * everything else on it, and the launch past it is refused with the same
 * reason (prov-local.c, prov_local_neigh_room). */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "model/account.h"
#include "model/group.h"
#include "model/host.h"
#include "model/kind.h"
#include "model/res.h"
#include "model/template.h"
#include "prov/prov.h"
#include "xalloc.h"

json_t *
ctl_room_warning(struct server *s, const char *cluster, const char *group)
{
	struct herr err = HERR_INIT;
	struct template_spec *t = xcalloc(1, sizeof(*t));
	struct account_spec as;
	struct group g;
	struct res acct = { 0 };
	const struct prov_ops *ops;
	json_t *w = NULL;
	int64_t live = 0, grow;
	long left;
	char why[400];

	/* Anything unreadable is no warning: the apply itself said what it
	 * stored, and a launch reports its own refusal. */
	if (group_get(s->store, cluster, group, &g, &err) < 0 || g.max < 0 ||
	    template_get(s->store, g.template_, t, &err) < 0 ||
	    res_get(s->store, &kind_account, "", t->account, &acct, &err) < 0 ||
	    account_from_spec(t->account, acct.spec, &as, &err) < 0 ||
	    (ops = prov_find(as.driver)) == NULL ||
	    host_count_live(s->store, cluster, group, &live, &err) < 0)
		goto out;
	if ((left = prov_hosts_left(ops, why, sizeof(why))) < 0)
		goto out;
	grow = (int64_t)g.max - live;
	if (grow > left)
		w = json_sprintf("group %s/%s: may grow by %lld %s host(s) (max %d, %lld now), but "
				 "this machine has room for %ld more: %s; launches past it are "
				 "refused", cluster, group, (long long)grow, ops->name, g.max,
				 (long long)live, left, why);
out:
	herr_clear(&err);
	res_release(&acct);
	free(t);
	return w;
}
