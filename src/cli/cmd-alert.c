/* cmd-alert.c - `herd alert ls|show|history|silence|silences|unsilence`:
 * the active alerts (pending and firing), one rule where it applies and its
 * instances, the history of transitions, and silences (a rule muted, in
 * one group, a cluster or everywhere, until an expiry). The server side is
 * api-alert.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "httpc.h"
#include "util.h"
#include "xalloc.h"

/* GET path and print its items as a table (or the JSON). */
static int
list(struct cli *c, const char *path, const char *columns, const char *none)
{
	json_t *resp = NULL;
	int rc;

	if ((rc = cli_call(c, "GET", path, NULL, &resp)) != 0)
		return rc;
	if (c->json)
		cli_print_json(resp);
	else if (json_array_size(json_object_get(resp, "items")) == 0)
		printf("%s\n", none);
	else
		cli_table(json_object_get(resp, "items"), columns);
	json_decref(resp);
	return 0;
}

/* "?rule=..&cluster=..&group=.." from --group CLUSTER/GROUP (or GROUP with
 * --cluster); owned. */
static char *
filter_query(struct cli *c, const char *rule)
{
	const char *g = cli_opt(c, "group"), *cl = cli_opt(c, "cluster"), *slash;
	char *cl_owned = NULL, *re, *ce, *ge, *q;

	if (g && (slash = strchr(g, '/')) != NULL) {
		cl = cl_owned = xstrndup(g, (size_t)(slash - g));
		g = slash + 1;
	}
	re = httpc_escape(rule ? rule : "");
	ce = httpc_escape(cl ? cl : "");
	ge = httpc_escape(g ? g : "");
	q = xasprintf("rule=%s&cluster=%s&group=%s", re, ce, ge);
	free(re);
	free(ce);
	free(ge);
	free(cl_owned);
	return q;
}

int
cmd_alert_ls(struct cli *c, int argc, char **argv)
{
	char *q = filter_query(c, NULL), *path = xasprintf("/v1/alerts?%s", q);
	int rc = list(c, path, "rule,cluster,group,key,state,severity,since,silenced,summary",
		      "no alerts pending or firing");

	free(path);
	free(q);
	return rc;
}

int
cmd_alert_show(struct cli *c, int argc, char **argv)
{
	json_t *rules = NULL, *active = NULL;
	char *q = filter_query(c, argv[1]), *path;
	int rc;

	path = xasprintf("/v1/alerts/rules?%s", q);
	rc = cli_call(c, "GET", path, NULL, &rules);
	free(path);
	if (rc == 0) {
		path = xasprintf("/v1/alerts?%s", q);
		rc = cli_call(c, "GET", path, NULL, &active);
		free(path);
	}
	free(q);
	if (rc == 0 && json_array_size(json_object_get(rules, "items")) == 0) {
		rc = cli_fail("no alert rule '%s' applies to any group", argv[1]);
	} else if (rc == 0 && c->json) {
		json_t *o = json_pack("{s:s,s:O,s:O}", "rule", argv[1], "rules",
				      json_object_get(rules, "items"), "alerts",
				      json_object_get(active, "items"));
		cli_print_json(o);
		json_decref(o);
	} else if (rc == 0) {
		printf("rule %s, where it applies:\n", cli_esc(argv[1]));
		cli_table(json_object_get(rules, "items"),
			  "cluster,group,enabled,severity,when,for_ms,repeat_ms,origin");
		if (json_array_size(json_object_get(active, "items")) == 0) {
			printf("no instance pending or firing\n");
		} else {
			printf("instances:\n");
			cli_table(json_object_get(active, "items"),
				  "cluster,group,key,state,since,value,silenced,summary");
		}
	}
	json_decref(rules);
	json_decref(active);
	return rc;
}

int
cmd_alert_history(struct cli *c, int argc, char **argv)
{
	const char *lim = cli_opt(c, "limit"), *after = cli_opt(c, "after");
	char *q = filter_query(c, cli_opt(c, "rule")), *le, *ae, *path;
	int rc;

	le = httpc_escape(lim ? lim : "100");
	ae = httpc_escape(after ? after : "0");
	path = xasprintf("/v1/alerts/history?%s&limit=%s&after=%s", q, le, ae);
	rc = list(c, path, "id,time,rule,cluster,group,key,state,severity,repeat,silenced,summary",
		  "no alert events");
	free(path);
	free(le);
	free(ae);
	free(q);
	return rc;
}

int
cmd_alert_silence(struct cli *c, int argc, char **argv)
{
	const char *g = cli_opt(c, "group"), *cl = cli_opt(c, "cluster"), *dur = cli_opt(c, "for");
	const char *reason = cli_opt(c, "reason"), *slash;
	char *cl_owned = NULL;
	json_t *body, *resp = NULL;
	int rc;

	if (dur == NULL || reason == NULL)
		return cli_fail("usage: herd alert silence RULE [--group CLUSTER/GROUP] --for 2h --reason TEXT");
	if (g && (slash = strchr(g, '/')) != NULL) {
		cl = cl_owned = xstrndup(g, (size_t)(slash - g));
		g = slash + 1;
	}
	body = json_pack("{s:s,s:s,s:s,s:s,s:s}", "rule", argv[1], "cluster", cl ? cl : "", "group",
			 g ? g : "", "for", dur, "reason", reason);
	free(cl_owned);
	rc = cli_call(c, "POST", "/v1/alerts/silences", body, &resp);
	json_decref(body);
	if (rc)
		return rc;
	if (c->json)
		cli_print_json(resp);
	else
		printf("silence %lld: %s muted until %s\n",
		       (long long)json_integer_value(json_object_get(resp, "id")), cli_esc(argv[1]),
		       cli_esc(dur));
	json_decref(resp);
	return 0;
}

int
cmd_alert_silences(struct cli *c, int argc, char **argv)
{
	return list(c, "/v1/alerts/silences", "id,rule,cluster,group,until,created_by,reason",
		    "no silences in force");
}

int
cmd_alert_unsilence(struct cli *c, int argc, char **argv)
{
	char *ie = httpc_escape(argv[1]), *path = xasprintf("/v1/alerts/silences/%s", ie);
	json_t *resp = NULL;
	int rc = cli_call(c, "DELETE", path, NULL, &resp);

	free(path);
	free(ie);
	if (rc == 0 && c->json)
		cli_print_json(resp);
	else if (rc == 0)
		printf("silence %s deleted\n", cli_esc(argv[1]));
	json_decref(resp);
	return rc;
}
