/* cmd-lb.c - `herd lb show NAME`: the load balancer's settings, then its
 * members as the LB engine sees them (status, health check, sessions), from
 * GET /v1/lbs/NAME and GET /v1/lbs/NAME/members. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "xalloc.h"

int
cmd_lb_show(struct cli *c, int argc, char **argv)
{
	json_t *lb = NULL, *mem = NULL, *engine;
	char *n, *path;
	int rc;

	if (argc < 2)
		return cli_fail("usage: herd lb show NAME [--json]");
	n = httpc_escape(argv[1]);
	path = xasprintf("/v1/lbs/%s", n);
	rc = cli_call(c, "GET", path, NULL, &lb);
	free(path);
	if (rc == 0) {
		path = xasprintf("/v1/lbs/%s/members", n);
		rc = cli_call(c, "GET", path, NULL, &mem);
		free(path);
	}
	free(n);
	if (rc)
		goto out;
	engine = json_object_get(mem, "engine");
	if (c->json) {
		json_object_set(lb, "engine", engine);
		json_object_set(lb, "members", json_object_get(mem, "items"));
		cli_print_json(lb);
		goto out;
	}
	cli_kv(lb);
	printf("\nengine: %s", cli_esc(json_string_value(json_object_get(mem, "driver"))));
	if (json_is_integer(json_object_get(engine, "pid")))
		printf(" (pid %lld)", (long long)json_integer_value(json_object_get(engine, "pid")));
	printf(", %s", json_is_true(json_object_get(engine, "ok")) ? "serving" : "not serving");
	if (json_integer_value(json_object_get(engine, "restarts")) > 0)
		printf(", %lld restarts", (long long)json_integer_value(json_object_get(engine, "restarts")));
	if (json_string_value(json_object_get(engine, "address")))
		printf("\naddress: %s", cli_esc(json_string_value(json_object_get(engine, "address"))));
	if (json_string_value(json_object_get(engine, "problem")))
		printf("\nproblem: %s", cli_esc(json_string_value(json_object_get(engine, "problem"))));
	else if (json_string_length(json_object_get(engine, "message")) > 0)
		printf(": %s", cli_esc(json_string_value(json_object_get(engine, "message"))));
	printf("\n\nmembers:\n");
	if (json_array_size(json_object_get(mem, "items")) == 0)
		printf("  (none)\n");
	else
		cli_table(json_object_get(mem, "items"),
			  "host,group,address,status,check_status,scur,intent");
out:
	json_decref(lb);
	json_decref(mem);
	return rc;
}
