/* api-remote-write.c - GET /v1/remote-writes: each remote_write's queue
 * and figures (sent, dropped, retried, pending, shards, the last error) as
 * the sender (ctl/rwout.c) keeps them. The remotes themselves are
 * /v1/remote_writes. */
#include "api.h"
#include "ctl/rwout.h"

void
api_remote_writes(struct req *rq)
{
	reply_json(rq, 200, json_pack("{s:o}", "items", rwout_status()));
}
