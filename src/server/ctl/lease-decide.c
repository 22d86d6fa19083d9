/* ctl/lease-decide.c - the pure lease decision (lease.h): what the lease
 * thread does next, and whether a leader may still act by its own clock. */
#include <string.h>

#include "ctl/lease.h"

int64_t
lease_margin_ms(int64_t ttl_ms)
{
	return ttl_ms / 6 > 0 ? ttl_ms / 6 : 1;
}

bool
lease_live(const struct lease_self *me, int64_t mono_now_ms, int64_t ttl_ms)
{
	return me->epoch > 0 && mono_now_ms < me->renewed_mono_ms + ttl_ms - lease_margin_ms(ttl_ms);
}

enum lease_act
lease_decide(const struct lease_row *row, const struct lease_self *me, int64_t db_now_ms,
	     int64_t mono_now_ms, int64_t ttl_ms, bool force)
{
	bool ours = row->exists && strcmp(row->holder, me->id) == 0;

	if (me->epoch > 0) {
		if (!ours || row->epoch != me->epoch)
			return LEASE_LOST;
		/* ours, even if lapsed by the store's clock: a renew is a
		 * compare-and-set, a takeover meanwhile makes it fail */
		return mono_now_ms - me->renewed_mono_ms >= ttl_ms / 3 ? LEASE_RENEW : LEASE_KEEP;
	}
	if (!row->exists || force || ours || row->expires_ms <= db_now_ms)
		return LEASE_ACQUIRE;
	return LEASE_WAIT;
}
