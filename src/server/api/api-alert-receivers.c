/* api-alert-receivers.c - GET /v1/alerts/receivers: each receiver's
 * delivery state (cursor, events still owed, sent/failed/dropped, the last
 * error, the next retry), as the delivery worker (ctl/notify.c) recorded
 * it in the model. Receivers themselves are /v1/receivers. */
#include "api.h"
#include "model/alert-delivery.h"

void
api_alert_receivers(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *items = NULL;

	if (alert_delivery_list(rq->srv->store, &items, &err) < 0)
		return reply_err(rq, &err);
	reply_json(rq, 200, json_pack("{s:o}", "items", items));
}
