/* cmd-policy.c - `herd policy explain NAME` (the latest evaluation: value,
 * decision, why) and `herd policy simulate NAME [--since 1h] [--policy-file
 * F]` (stored metrics replayed through the decision; a timeline). NAME may
 * be CLUSTER/GROUP/NAME. `herd policy check CLUSTER/GROUP [--load N [--hosts
 * H] [--slots S] [--lasts D]]`: flapping predicted, one line per scale-out
 * rule; exit 0 none, 3 flapping predicted, 4 cannot tell. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "httpc.h"
#include "util.h"
#include "xalloc.h"
#include "yamljson.h"

int
cmd_policy_explain(struct cli *c, int argc, char **argv)
{
	json_t *resp = NULL, *last;
	char *path;
	int rc;

	if (argc < 2)
		return cli_fail("usage: herd policy explain NAME");
	path = cli_scoped_path("policies", argv[1], "/explain");
	rc = cli_call(c, "GET", path, NULL, &resp);
	free(path);
	if (rc)
		return rc;
	if (c->json) {
		cli_print_json(resp);
	} else {
		last = json_object_get(resp, "last");
		printf("policy %s/%s/%s\n", cli_esc(json_string_value(json_object_get(resp, "cluster"))),
		       cli_esc(json_string_value(json_object_get(resp, "group"))),
		       cli_esc(json_string_value(json_object_get(resp, "name"))));
		if (json_is_null(last) || last == NULL) {
			printf("not evaluated yet\n");
		} else {
			printf("evaluated  %s\n", cli_esc(json_string_value(json_object_get(last, "evaluated"))));
			printf("decision   %s\n", cli_esc(json_string_value(json_object_get(last, "decision"))));
			if (json_object_get(last, "value"))
				printf("value      %g over %lld host(s) (window %s)\n",
				       json_real_value(json_object_get(last, "value")),
				       (long long)json_integer_value(json_object_get(last, "nseries")),
				       cli_esc(json_string_value(json_object_get(last, "window"))));
			printf("why        %s\n", cli_esc(json_string_value(json_object_get(last, "reason"))));
		}
	}
	json_decref(resp);
	return 0;
}

int
cmd_policy_simulate(struct cli *c, int argc, char **argv)
{
	const char *since = cli_opt(c, "since"), *file = cli_opt(c, "policy-file");
	json_t *resp = NULL, *body, *e;
	char *path;
	size_t i;
	int rc;

	if (argc < 2 || argv[1][0] == '-')
		return cli_fail("usage: herd policy simulate NAME [--since 1h] [--policy-file F]");
	body = json_pack("{s:s}", "since", since ? since : "1h");
	if (file) {
		struct herr err = HERR_INIT;
		size_t len;
		char *text = file_read(file, 1 << 20, &len);
		json_t *doc = NULL;
		if (text == NULL || yaml_to_json(text, len, &doc, NULL, &err) < 0) {
			free(text);
			json_decref(body);
			return cli_fail("%s: %s", file, text ? err.msg : strerror(errno));
		}
		free(text);
		json_object_set_new(body, "policy", doc);
	}
	path = cli_scoped_path("policies", argv[1], "/simulate");
	rc = cli_call(c, "POST", path, body, &resp);
	free(path);
	json_decref(body);
	if (rc)
		return rc;
	if (c->json) {
		cli_print_json(resp);
		json_decref(resp);
		return 0;
	}
	printf("simulated %s on %s, %s .. %s\n", cli_esc(json_string_value(json_object_get(resp, "policy"))),
	       cli_esc(json_string_value(json_object_get(resp, "group"))),
	       cli_esc(json_string_value(json_object_get(resp, "since"))),
	       cli_esc(json_string_value(json_object_get(resp, "until"))));
	json_array_foreach(json_object_get(resp, "timeline"), i, e) {
		const char *d = json_string_value(json_object_get(e, "decision"));
		printf("%s  %-8s %s\n", json_string_value(json_object_get(e, "time")) + 11, d,
		       cli_esc(json_string_value(json_object_get(e, "reason"))));
	}
	printf("actually done by this policy:\n");
	if (json_array_size(json_object_get(resp, "actual")) == 0)
		printf("  nothing\n");
	json_array_foreach(json_object_get(resp, "actual"), i, e)
		printf("%s  %-8s %s\n", json_string_value(json_object_get(e, "time")) + 11,
		       cli_esc(json_string_value(json_object_get(e, "kind"))),
		       cli_esc(json_string_value(json_object_get(e, "reason"))));
	json_decref(resp);
	return 0;
}

int
cmd_policy_check(struct cli *c, int argc, char **argv)
{
	static const char *const keys[] = { "load", "hosts", "slots", "lasts" };
	json_t *resp = NULL, *f;
	const char *verdict;
	char *path, *p2;
	size_t i;
	int rc;

	if (argc < 2 || argv[1][0] == '-')
		return cli_fail("usage: herd policy check CLUSTER/GROUP [--load N [--hosts H] [--slots S] [--lasts D]]");
	path = cli_scoped_path("groups", argv[1], "/policy-check");
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = cli_opt(c, keys[i]);
		char *e;
		if (v == NULL)
			continue;
		e = httpc_escape(v);
		p2 = xasprintf("%s%c%s=%s", path, strchr(path, '?') ? '&' : '?', keys[i], e);
		free(e);
		free(path);
		path = p2;
	}
	rc = cli_call(c, "GET", path, NULL, &resp);
	free(path);
	if (rc)
		return rc;
	verdict = json_string_value(json_object_get(resp, "verdict"));
	if (c->json) {
		cli_print_json(resp);
	} else {
		printf("%s/%s: %s of %s (%s) on %lld host(s) from %s\n",
		       cli_esc(json_string_value(json_object_get(resp, "cluster"))),
		       cli_esc(json_string_value(json_object_get(resp, "group"))),
		       json_object_get(resp, "load") ? "load" : "values",
		       cli_esc(json_string_value(json_object_get(resp, "metric"))),
		       cli_esc(json_string_value(json_object_get(resp, "metric_kind"))),
		       (long long)json_integer_value(json_object_get(resp, "hosts")),
		       cli_esc(json_string_value(json_object_get(resp, "source"))));
		if (json_array_size(json_object_get(resp, "findings")) == 0)
			printf("no scale-out step policy: nothing to predict\n");
		json_array_foreach(json_object_get(resp, "findings"), i, f)
			printf("%-11s %s\n", cli_esc(json_string_value(json_object_get(f, "verdict"))),
			       cli_esc(json_string_value(json_object_get(f, "text"))));
		/* PromQL policies: the query's newest value, or why it is unknown */
		json_array_foreach(json_object_get(resp, "promql"), i, f) {
			json_t *val = json_object_get(f, "value");
			printf("promql      %s: %s = ", cli_esc(json_string_value(json_object_get(f, "policy"))),
			       cli_esc(json_string_value(json_object_get(f, "query"))));
			if (json_is_number(val))
				printf("%g\n", json_number_value(val));
			else
				printf("unknown (%s)\n", cli_esc(json_string_value(json_object_get(f, "why"))));
		}
	}
	rc = verdict && (strcmp(verdict, "runaway") == 0 || strcmp(verdict, "oscillates") == 0) ? 3
		: verdict && strcmp(verdict, "cannot_tell") == 0 ? 4 : 0;
	json_decref(resp);
	return rc;
}
