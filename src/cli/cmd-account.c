/* cmd-account.c - `herd account check NAME`: asks the server to call the
 * account's provider (POST /v1/accounts/NAME/check) and prints
 * "ok: <what the driver says>" or the provider's refusal (exit 1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "xalloc.h"

int
cmd_account_check(struct cli *c, int argc, char **argv)
{
	json_t *resp = NULL;
	char *path;
	int rc;

	if (argc < 2)
		return cli_fail("usage: herd account check NAME");
	path = cli_scoped_path("accounts", argv[1], "/check");
	rc = cli_call(c, "POST", path, json_object(), &resp);
	free(path);
	if (rc != 0)
		return rc;
	if (c->json)
		cli_print_json(resp);
	else if (json_is_true(json_object_get(resp, "ok")))
		printf("ok: %s\n", cli_esc(json_string_value(json_object_get(resp, "message"))));
	if (!json_is_true(json_object_get(resp, "ok"))) {
		if (!c->json)
			cli_fail("account %s: %s", cli_esc(argv[1]),
				 cli_esc(json_string_value(json_object_get(resp, "message"))));
		rc = 1;
	}
	json_decref(resp);
	return rc;
}
