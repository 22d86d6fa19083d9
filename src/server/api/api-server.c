/* api-server.c - GET /v1/servers: the servers seen on this store, which one
 * leads (holds the controller lease), its epoch and the lease's age, from
 * the store (model/lease.c) and this server's own view (ctl/lease.h). */
#include <string.h>

#include "api.h"
#include "ctl/lease.h"
#include "model/lease.h"
#include "store/store.h"

void
api_servers(struct req *rq)
{
	struct server *s = rq->srv;
	struct herr err = HERR_INIT;
	struct lease_row l;
	json_t *list = NULL, *row, *lease;
	char self[LEASE_HOLDER_MAX];
	int64_t now, my_epoch;
	bool live, lease_live_now;
	size_t i;

	now = store_now_ms(s->store, &err);
	if (err.code || lease_read(s->store, LEASE_CONTROLLER, &l, &err) < 0 ||
	    servers_list(s->store, &list, &err) < 0) {
		reply_err(rq, &err);
		return;
	}
	leader_self(s, self, sizeof(self), &my_epoch, &live);
	lease_live_now = l.exists && l.expires_ms > now;
	lease = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:b}", "name", LEASE_CONTROLLER, "holder",
			  l.holder, "epoch", (json_int_t)l.epoch, "expires_ms",
			  (json_int_t)l.expires_ms, "renewed_ms", (json_int_t)l.renewed_ms,
			  "age_ms", (json_int_t)(l.exists ? now - l.renewed_ms : 0), "live",
			  lease_live_now);
	json_array_foreach(list, i, row) {
		const char *id = json_string_value(json_object_get(row, "id"));

		id = id ? id : "";
		json_object_set_new(row, "leader",
				    json_boolean(lease_live_now && strcmp(id, l.holder) == 0));
		json_object_set_new(row, "self", json_boolean(strcmp(id, self) == 0));
		if (strcmp(id, self) == 0)   /* answering: seen now (a lone server records it once) */
			json_object_set_new(row, "seen_ms", json_integer(now));
	}
	reply_json(rq, 200, json_pack("{s:I,s:s,s:b,s:o,s:o}", "now_ms", (json_int_t)now, "self",
				      self, "self_acting", live, "lease", lease, "servers", list));
}
