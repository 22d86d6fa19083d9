/* api-account.c - account actions beyond the generic kind routes:
 * POST /v1/accounts/:name/check asks the account's provider whether the
 * credentials, zone and clock are right. The controller makes the call
 * (ctl_account_check): handlers never call a provider themselves. */
#include "api.h"
#include "ctl/ctl.h"

void
api_account_check(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *out = NULL;

	if (ctl_account_check(rq->srv, req_param(rq, 0), &out, &err) < 0)
		return reply_err(rq, &err);
	reply_json(rq, 200, out);
}
