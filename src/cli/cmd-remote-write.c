/* cmd-remote-write.c - `herd remote-write ls`: each remote_write's queue
 * and figures (sent, dropped, retried, pending, shards, the last error),
 * from GET /v1/remote-writes (api-remote-write.c). The remotes themselves
 * are declared in blueprints (`remote_writes:`) and listed at
 * /v1/remote_writes. */
#include <stdio.h>

#include "cli.h"

int
cmd_remote_write_ls(struct cli *c, int argc, char **argv)
{
	json_t *resp = NULL;
	int rc;

	if ((rc = cli_call(c, "GET", "/v1/remote-writes", NULL, &resp)) != 0)
		return rc;
	if (c->json)
		cli_print_json(resp);
	else if (json_array_size(json_object_get(resp, "items")) == 0)
		printf("no remote_writes\n");
	else
		cli_table(json_object_get(resp, "items"),
			  "name,url,sent,dropped_queue,dropped_4xx,retried,pending_samples,shards,last_error");
	json_decref(resp);
	return 0;
}
