/* cmd-server.c - `herd server status`: the servers of the store behind the
 * API (GET /v1/servers): who leads (holds the controller lease), at which
 * epoch, how long ago the lease was renewed; and each server seen. */
#include <stdio.h>

#include "cli.h"

int
cmd_server_status(struct cli *c, int argc, char **argv)
{
	json_t *resp = NULL, *lease, *list, *row;
	int64_t now;
	size_t i;
	int rc = cli_call(c, "GET", "/v1/servers", NULL, &resp);

	if (rc != 0)
		return rc;
	if (c->json) {
		cli_print_json(resp);
		json_decref(resp);
		return 0;
	}
	lease = json_object_get(resp, "lease");
	list = json_object_get(resp, "servers");
	now = json_integer_value(json_object_get(resp, "now_ms"));
	if (json_is_true(json_object_get(lease, "live")) &&
	    json_integer_value(json_object_get(lease, "expires_ms")) - now > 365LL * 86400 * 1000)
		/* a single-process store (SQLite): taken once, never renewed */
		printf("leader: %s  epoch %lld  lease taken %.1fs ago, held while it runs"
		       " (one server per data dir)\n",
		       cli_esc(json_string_value(json_object_get(lease, "holder"))),
		       (long long)json_integer_value(json_object_get(lease, "epoch")),
		       json_integer_value(json_object_get(lease, "age_ms")) / 1000.0);
	else if (json_is_true(json_object_get(lease, "live")))
		printf("leader: %s  epoch %lld  lease renewed %.1fs ago, expires in %.1fs\n",
		       cli_esc(json_string_value(json_object_get(lease, "holder"))),
		       (long long)json_integer_value(json_object_get(lease, "epoch")),
		       json_integer_value(json_object_get(lease, "age_ms")) / 1000.0,
		       (json_integer_value(json_object_get(lease, "expires_ms")) - now) / 1000.0);
	else
		printf("leader: none  epoch %lld  (the lease is free or lapsed)\n",
		       (long long)json_integer_value(json_object_get(lease, "epoch")));
	printf("%-18s %-8s %-24s %-10s %-10s %s\n", "SERVER", "ROLE", "ADDRESS", "STARTED",
	       "SEEN", "VERSION");
	json_array_foreach(list, i, row) {
		int64_t started = json_integer_value(json_object_get(row, "started_ms"));
		int64_t seen = json_integer_value(json_object_get(row, "seen_ms"));
		char st[32], se[32];

		snprintf(st, sizeof(st), "%llds ago", (long long)((now - started) / 1000));
		snprintf(se, sizeof(se), "%llds ago", (long long)((now - seen) / 1000));
		printf("%-18s %-8s %-24s %-10s %-10s %s%s\n",
		       cli_esc(json_string_value(json_object_get(row, "id"))),
		       json_is_true(json_object_get(row, "leader")) ? "leader" : "standby",
		       cli_esc(json_string_value(json_object_get(row, "address"))), st, se,
		       cli_esc(json_string_value(json_object_get(row, "version"))),
		       json_is_true(json_object_get(row, "self")) ? "  (answering)" : "");
	}
	json_decref(resp);
	return 0;
}
