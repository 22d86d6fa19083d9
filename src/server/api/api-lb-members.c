/* api-lb-members.c - GET /v1/lbs/:name/members: an LB's members as its
 * driver sees them (HAProxy's status, current sessions, last health check)
 * and the state of the LB engine itself. Membership is lb-sync's to change
 * (it follows the hosts), so there is nothing to POST here. */
#include "api.h"
#include "ctl/lbsync.h"

void
api_lb_members(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *out = NULL;

	if (lbsync_members(rq->srv, req_param(rq, 0), &out, &err) < 0)
		return reply_err(rq, &err);
	reply_json(rq, 200, out);
}
