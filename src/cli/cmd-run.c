/* cmd-run.c - script runs from the CLI: `herd script run NAME --group G`
 * starts one (and with --wait sees it to the end), `herd run ls|show|logs|
 * cancel` look after them. --follow prints output as the hosts produce it
 * (long-polls of GET /v1/runs/ID/logs?follow=1 with a cursor). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "xalloc.h"

#define RUN_POLL_S 20            /* server-side wait per request (< the client's 30 s) */

/* Options of the run commands (which a command takes is declared in
 * cmd.c's table; cli_parse() refused the rest). */
struct run_opts {
	const char *pos[2];      /* positional words */
	int npos;
	const char *host, *group, *cluster, *timeout, *parallel, *script, *limit;
	const char *batch, *gate;    /* rolling runs */
	json_t *env;             /* owned */
	bool wait, follow, drain, stop_on_failure;
};

/* Fills o from the parsed command line. Returns 0, or prints why and
 * returns 2 (a --env that is not NAME=VALUE). */
static int
run_opts_get(struct cli *c, int argc, char **argv, struct run_opts *o)
{
	const char *val;

	memset(o, 0, sizeof(*o));
	for (int i = 1; i < argc && o->npos < 2; i++)
		o->pos[o->npos++] = argv[i];
	o->host = cli_opt(c, "host");
	o->group = cli_opt(c, "group");
	o->cluster = cli_opt(c, "cluster");
	o->timeout = cli_opt(c, "timeout");
	o->parallel = cli_opt(c, "parallel");
	o->script = cli_opt(c, "script");
	o->limit = cli_opt(c, "limit");
	o->wait = cli_flag(c, "wait");
	o->follow = cli_flag(c, "follow");
	o->batch = cli_opt(c, "batch");
	o->gate = cli_opt(c, "health-gate");
	o->drain = cli_flag(c, "drain");
	o->stop_on_failure = cli_flag(c, "stop-on-failure");
	for (int i = 0; (val = cli_opt_nth(c, "env", i)) != NULL; i++) {
		const char *e = strchr(val, '=');
		char *key;

		if (e == NULL || e == val) {
			json_decref(o->env);
			return cli_fail("invalid --env '%s': want NAME=VALUE", val) + 1;
		}
		if (o->env == NULL)
			o->env = json_object();
		key = xstrndup(val, (size_t)(e - val));
		/* the value goes as given: never through a shell */
		json_object_set_new(o->env, key, json_stringn(e + 1, strlen(e + 1)));
		free(key);
	}
	return 0;
}

static bool
run_id_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* Per-host rows for the table: host, state, exit, duration, reason (and
 * for a rolling run, each host's batch and step first). */
static void
run_print_hosts(json_t *hosts, bool rolling)
{
	json_t *rows = json_array(), *h;
	size_t i;

	json_array_foreach(hosts, i, h) {
		json_t *d = json_object_get(h, "duration_ms");
		char dur[32] = "-";

		if (json_is_integer(d))
			fmt_duration(json_integer_value(d), dur, sizeof(dur));
		json_array_append_new(rows, json_pack("{s:O,s:O,s:O,s:O,s:O,s:s,s:O}", "batch",
						      json_object_get(h, "batch"), "phase",
						      json_object_get(h, "phase"), "host",
						      json_object_get(h, "host"), "state",
						      json_object_get(h, "state"), "exit",
						      json_object_get(h, "exit_code"), "duration", dur,
						      "reason", json_object_get(h, "reason")));
	}
	cli_table(rows, rolling ? "batch,host,phase,state,exit,duration,reason"
				: "host,state,exit,duration,reason");
	json_decref(rows);
}

static void
run_print(json_t *run)
{
	const char *hash = json_string_value(json_object_get(run, "hash"));
	long long parallel = (long long)json_integer_value(json_object_get(run, "parallel"));
	char par[64];

	printf("run %lld: %s version %lld (sha256 %.12s) on %s %s\n",
	       (long long)json_integer_value(json_object_get(run, "id")),
	       cli_esc(json_string_value(json_object_get(run, "script"))),
	       (long long)json_integer_value(json_object_get(run, "version")), hash ? hash : "",
	       cli_esc(json_string_value(json_object_get(run, "target_kind"))),
	       cli_esc(json_string_value(json_object_get(run, "target"))));
	printf("state: %s (%s)\n", cli_esc(json_string_value(json_object_get(run, "state"))),
	       cli_esc(json_string_value(json_object_get(run, "summary"))));
	if (parallel > 0)
		snprintf(par, sizeof(par), "at most %lld host(s) at once", parallel);
	else
		snprintf(par, sizeof(par), "all hosts at once");
	printf("by %s at %s; timeout %s; %s\n\n", cli_esc(json_string_value(json_object_get(run, "created_by"))),
	       cli_esc(json_string_value(json_object_get(run, "created"))),
	       cli_esc(json_string_value(json_object_get(run, "timeout"))), par);
	json_t *roll = json_object_get(run, "rolling");
	if (json_is_object(roll))
		printf("rolling: %lld host(s) per batch%s; health gate %s%s\n\n",
		       (long long)json_integer_value(json_object_get(roll, "batch")),
		       json_is_true(json_object_get(roll, "drain")) ? ", out of the load balancer" : "",
		       cli_esc(json_string_value(json_object_get(roll, "health_gate"))),
		       json_is_true(json_object_get(roll, "stop_on_failure")) ? "; stops on failure" : "");
	run_print_hosts(json_object_get(run, "hosts"), json_is_object(roll));
}

/* 0 if every host of the run succeeded, else 1: what --wait exits with. */
static int
run_exit_code(json_t *run)
{
	json_t *c = json_object_get(run, "counts");
	const char *key;
	json_t *v;

	json_object_foreach(c, key, v)
		if (strcmp(key, "succeeded") != 0 && json_integer_value(v) > 0)
			return 1;
	return 0;
}

/* Waits (long-polls) until the run has ended; *run is replaced. */
static int
run_wait(struct cli *c, long long id, json_t **run)
{
	char path[96];

	snprintf(path, sizeof(path), "/v1/runs/%lld?wait=%d", id, RUN_POLL_S);
	while (strcmp(json_string_value(json_object_get(*run, "state")), "running") == 0) {
		json_t *r = NULL;
		int rc = cli_call(c, "GET", path, NULL, &r);

		if (rc)
			return rc;
		json_decref(*run);
		*run = r;
	}
	return 0;
}

int
cmd_script_run(struct cli *c, int argc, char **argv)
{
	struct run_opts o;
	json_t *body, *run = NULL;
	int rc, targets;
	char *end;

	if ((rc = run_opts_get(c, argc, argv, &o)))
		return rc;
	targets = !!o.host + !!o.group + !!o.cluster;
	if (o.npos != 1 || targets != 1) {
		json_decref(o.env);
		return cli_fail("usage: herd script run NAME (--host H | --group G | --cluster C)"
				" [--env K=V]... [--timeout 10m] [--parallel N]"
				" [--batch N|P%% [--drain] [--health-gate 30s] [--stop-on-failure]] [--wait]");
	}
	body = json_pack("{s:s}", "script", o.pos[0]);
	if (o.host)
		json_object_set_new(body, "host", json_string(o.host));
	if (o.group)
		json_object_set_new(body, "group", json_string(o.group));
	if (o.cluster)
		json_object_set_new(body, "cluster", json_string(o.cluster));
	if (o.env)
		json_object_set_new(body, "env", o.env);
	if (o.timeout)
		json_object_set_new(body, "timeout", json_string(o.timeout));
	if (o.parallel) {
		long n = strtol(o.parallel, &end, 10);
		if (*end || end == o.parallel || n < 0) {
			json_decref(body);
			return cli_fail("invalid --parallel '%s': want a number of hosts", o.parallel);
		}
		json_object_set_new(body, "parallel", json_integer(n));
	}
	/* checked by the server, which names the field */
	if (o.batch)
		json_object_set_new(body, "batch", json_string(o.batch));
	if (o.gate)
		json_object_set_new(body, "health_gate", json_string(o.gate));
	if (o.drain)
		json_object_set_new(body, "drain", json_true());
	if (o.stop_on_failure)
		json_object_set_new(body, "stop_on_failure", json_true());
	rc = cli_call(c, "POST", "/v1/runs", body, &run);
	json_decref(body);
	if (rc)
		return rc;
	if (o.wait) {
		rc = run_wait(c, (long long)json_integer_value(json_object_get(run, "id")), &run);
		if (rc) {
			json_decref(run);
			return rc;
		}
	}
	if (c->json)
		cli_print_json(run);
	else
		run_print(run);
	rc = o.wait ? run_exit_code(run) : 0;
	json_decref(run);
	return rc;
}

int
cmd_run_ls(struct cli *c, int argc, char **argv)
{
	struct run_opts o;
	json_t *resp = NULL;
	char *path, *se = NULL, *he = NULL;
	int rc;

	if ((rc = run_opts_get(c, argc, argv, &o)))
		return rc;
	if (o.limit && !run_id_ok(o.limit))
		return cli_fail("invalid --limit '%s'", o.limit);
	se = o.script ? httpc_escape(o.script) : NULL;
	he = o.host ? httpc_escape(o.host) : NULL;
	path = xasprintf("/v1/runs?limit=%s%s%s%s%s", o.limit ? o.limit : "50", se ? "&script=" : "",
			 se ? se : "", he ? "&host=" : "", he ? he : "");
	rc = cli_call(c, "GET", path, NULL, &resp);
	free(path);
	free(se);
	free(he);
	if (rc)
		return rc;
	/* nothing listed: a mistyped host or script is an error */
	if (json_array_size(json_object_get(resp, "items")) == 0 &&
	    ((o.host && (rc = cli_must_exist(c, "hosts", NULL, o.host)) != 0) ||
	     (o.script && (rc = cli_must_exist(c, "scripts", NULL, o.script)) != 0))) {
		json_decref(resp);
		return rc;
	}
	if (c->json)
		cli_print_json(resp);
	else
		cli_table(json_object_get(resp, "items"),
			  "id,script,version,target_kind,target,state,summary,created,created_by");
	json_decref(resp);
	return 0;
}

static int
run_get(struct cli *c, const char *id, json_t **run)
{
	char path[96];

	if (!run_id_ok(id))
		return cli_fail("invalid run id '%s': want a number (see herd run ls)", id ? id : "");
	snprintf(path, sizeof(path), "/v1/runs/%s", id);
	return cli_call(c, "GET", path, NULL, run);
}

int
cmd_run_show(struct cli *c, int argc, char **argv)
{
	struct run_opts o;
	json_t *run = NULL;
	int rc;

	if ((rc = run_opts_get(c, argc, argv, &o)))
		return rc;
	if (o.npos != 1)
		return cli_fail("usage: herd run show ID [--json]");
	if ((rc = run_get(c, o.pos[0], &run)))
		return rc;
	if (c->json)
		cli_print_json(run);
	else
		run_print(run);
	json_decref(run);
	return 0;
}

int
cmd_run_cancel(struct cli *c, int argc, char **argv)
{
	struct run_opts o;
	json_t *run = NULL, *body;
	char path[96];
	int rc;

	if ((rc = run_opts_get(c, argc, argv, &o)))
		return rc;
	if (o.npos != 1 || !run_id_ok(o.pos[0]))
		return cli_fail("usage: herd run cancel ID");
	snprintf(path, sizeof(path), "/v1/runs/%s/cancel", o.pos[0]);
	body = json_object();
	rc = cli_call(c, "POST", path, body, &run);
	json_decref(body);
	if (rc)
		return rc;
	if (c->json)
		cli_print_json(run);
	else
		printf("run %s: cancel requested (%s); running scripts are being stopped\n", o.pos[0],
		       json_string_value(json_object_get(run, "summary")));
	json_decref(run);
	return 0;
}

/* Line-prefixed output for runs on several hosts: "node-1 | text". Partial
 * lines wait (per host and stream) for their end. */
struct run_printer {
	bool prefix;
	json_t *partial;   /* "host\nstream" -> text not yet printed */
	size_t printed;    /* bytes printed */
	json_t *hosts;     /* --json: [{"host","stdout","stderr"}] gathered, else NULL */
};

/* --json: appends data to the host's stream in p->hosts. */
static void
run_gather(struct run_printer *p, const char *host, const char *stream, const char *data)
{
	json_t *h = NULL, *x;
	size_t i;
	char *text;

	json_array_foreach(p->hosts, i, x)
		if (strcmp(json_string_value(json_object_get(x, "host")), host) == 0)
			h = x;
	if (h == NULL) {
		h = json_pack("{s:s,s:s,s:s}", "host", host, "stdout", "", "stderr", "");
		json_array_append_new(p->hosts, h);
	}
	text = xasprintf("%s%s", json_string_value(json_object_get(h, stream)), data);
	json_object_set_new(h, stream, json_string(text));
	free(text);
}

static void
run_emit(struct run_printer *p, const char *host, const char *stream, const char *data)
{
	FILE *f = strcmp(stream, "stderr") == 0 ? stderr : stdout;
	char key[200];
	const char *old, *s;
	char *text;

	if (host == NULL || data == NULL)
		return;
	p->printed += strlen(data);
	if (p->hosts) {
		run_gather(p, host, strcmp(stream, "stderr") == 0 ? "stderr" : "stdout", data);
		return;
	}
	if (!p->prefix) {
		/* a host's output, not the operator's terminal's commands */
		text = cli_safe(data, "\n\t");
		fputs(text, f);
		fflush(f);
		free(text);
		return;
	}
	snprintf(key, sizeof(key), "%s\n%s", host, stream);
	old = json_string_value(json_object_get(p->partial, key));
	text = xasprintf("%s%s", old ? old : "", data);
	for (s = text; *s;) {
		const char *nl = strchr(s, '\n');
		char *line, *safe;
		if (nl == NULL)
			break;
		line = xstrndup(s, (size_t)(nl - s));
		safe = cli_safe(line, "\t");
		fprintf(f, "%s | %s\n", cli_esc(host), safe);
		free(safe);
		free(line);
		s = nl + 1;
	}
	json_object_set_new(p->partial, key, json_string(s));
	fflush(f);
	free(text);
}

static void
run_emit_end(struct run_printer *p)
{
	const char *key;
	json_t *v;

	json_object_foreach(p->partial, key, v) {
		const char *nl = strchr(key, '\n');
		if (json_string_length(v) == 0 || nl == NULL)
			continue;
		char *host = xstrndup(key, (size_t)(nl - key));
		char *safe = cli_safe(json_string_value(v), "\t");
		fprintf(strcmp(nl + 1, "stderr") == 0 ? stderr : stdout, "%s | %s\n",
			cli_esc(host), safe);
		free(safe);
		free(host);
	}
	fflush(NULL);
}

/* The recorded output of each host (all pages). */
static int
run_logs_all(struct cli *c, const char *id, const char *hq, struct run_printer *p)
{
	long long after = -1;

	for (;;) {
		json_t *resp = NULL, *h;
		char *path = xasprintf("/v1/runs/%s/logs?after=%lld%s%s", id, after, hq ? "&host=" : "",
				       hq ? hq : "");
		size_t i;
		int rc = cli_call(c, "GET", path, NULL, &resp);

		free(path);
		if (rc)
			return rc;
		json_array_foreach(json_object_get(resp, "hosts"), i, h) {
			const char *host = json_string_value(json_object_get(h, "host"));
			run_emit(p, host, "stdout", json_string_value(json_object_get(h, "stdout")));
			run_emit(p, host, "stderr", json_string_value(json_object_get(h, "stderr")));
		}
		run_emit_end(p);
		json_object_clear(p->partial);
		if (!json_is_integer(json_object_get(resp, "next"))) {
			json_decref(resp);
			return 0;
		}
		after = (long long)json_integer_value(json_object_get(resp, "next"));
		json_decref(resp);
	}
}

int
cmd_run_logs(struct cli *c, int argc, char **argv)
{
	struct run_printer p = { 0 };
	struct run_opts o;
	json_t *run = NULL;
	char *hq = NULL;
	long long offset = 0;
	int rc;

	if ((rc = run_opts_get(c, argc, argv, &o)))
		return rc;
	if (o.npos != 1)
		return cli_fail("usage: herd run logs ID [--host H] [--follow]");
	if ((rc = run_get(c, o.pos[0], &run)))
		return rc;
	p.prefix = o.host == NULL && json_array_size(json_object_get(run, "hosts")) > 1;
	p.partial = json_object();
	/* --json: one object once the output is complete (with --follow: when
	 * the run has ended) */
	p.hosts = c->json ? json_array() : NULL;
	hq = o.host ? httpc_escape(o.host) : NULL;
	if (!o.follow || strcmp(json_string_value(json_object_get(run, "state")), "running") != 0) {
		rc = run_logs_all(c, o.pos[0], hq, &p);
		goto out;
	}
	for (;;) {
		json_t *resp = NULL, *ch;
		char *path = xasprintf("/v1/runs/%s/logs?follow=1&offset=%lld&wait=%d%s%s", o.pos[0],
				       offset, RUN_POLL_S, hq ? "&host=" : "", hq ? hq : "");
		size_t i;

		rc = cli_call(c, "GET", path, NULL, &resp);
		free(path);
		if (rc)
			break;
		json_array_foreach(json_object_get(resp, "chunks"), i, ch)
			run_emit(&p, json_string_value(json_object_get(ch, "host")),
				 json_string_value(json_object_get(ch, "stream")),
				 json_string_value(json_object_get(ch, "data")));
		offset = (long long)json_integer_value(json_object_get(resp, "offset"));
		if (json_is_true(json_object_get(resp, "done"))) {
			json_decref(resp);
			break;
		}
		json_decref(resp);
	}
	run_emit_end(&p);
out:
	if (rc == 0 && p.hosts) {
		json_t *all = json_pack("{s:O,s:O}", "id", json_object_get(run, "id"), "hosts", p.hosts);
		cli_print_json(all);
		json_decref(all);
	}
	json_decref(p.hosts);
	free(hq);
	json_decref(p.partial);
	json_decref(run);
	return rc;
}
