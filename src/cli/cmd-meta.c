/* cmd-meta.c - `herd meta self|group|host|cluster`: a host's view of its
 * cluster, for shell scripts (`MASTER=$(herd meta group master private_ip)`).
 * Reads the host credential the agent wrote (/run/herd/host.json, or
 * $HERD_META_CONFIG); prints bare values, a small table, or --json. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "herr.h"
#include "httpc.h"
#include "main.h"
#include "util.h"
#include "xalloc.h"

#define META_CONFIG "/run/herd/host.json"
#define META_RETRY_MS 10000            /* through a short outage, without --wait */
#define META_WAIT_DEFAULT_MS (5 * 60 * 1000)
#define META_POLL_S 30                 /* server-side wait per request */

struct meta_args {
	const char *cmd;          /* "self", "group", "host", "cluster" */
	const char *pos[2];       /* NAME and/or FIELD */
	int npos;
	bool json;
	bool wait;
	bool help;
	int64_t timeout_ms;       /* --timeout; -1 if not given */
};

static void
meta_usage(FILE *f, const char *cmd)
{
	if (cmd && strcmp(cmd, "self") == 0) {
		fprintf(f,
			"usage: herd meta self [FIELD] [--json]\n"
			"\n"
			"Prints this host's record: all fields, or one bare value.\n"
			"  e.g. herd meta self private_ip; herd meta self labels.role\n");
	} else if (cmd && strcmp(cmd, "group") == 0) {
		fprintf(f,
			"usage: herd meta group NAME [FIELD] [--wait [--timeout 5m]] [--json]\n"
			"\n"
			"Lists the ready hosts of group NAME in this host's cluster, sorted by\n"
			"name; with FIELD, one bare value per line (nothing if none is ready).\n"
			"  --wait          wait until the group has a ready host\n"
			"  --timeout D     give up waiting after D (default 5m); exit 1\n"
			"  e.g. MASTER=$(herd meta group master private_ip --wait)\n");
	} else if (cmd && strcmp(cmd, "host") == 0) {
		fprintf(f,
			"usage: herd meta host NAME [FIELD] [--json]\n"
			"\n"
			"Prints the record of host NAME in this host's cluster.\n"
			"  e.g. herd meta host node-1 private_ip\n");
	} else if (cmd && strcmp(cmd, "cluster") == 0) {
		fprintf(f,
			"usage: herd meta cluster [FIELD] [--json]\n"
			"\n"
			"Lists every group of this host's cluster and its ready hosts.\n");
	} else {
		fprintf(f,
			"usage: herd meta self [FIELD] [--json]\n"
			"       herd meta group NAME [FIELD] [--wait [--timeout 5m]] [--json]\n"
			"       herd meta host NAME [FIELD] [--json]\n"
			"       herd meta cluster [--json]\n"
			"\n"
			"Run on a herd host: reads the host's own credential (%s,\n"
			"or $HERD_META_CONFIG) and prints metadata of its cluster. With FIELD,\n"
			"bare values for shell use. Exit 0 only on success.\n",
			META_CONFIG);
	}
}

/* Parses options anywhere among the words (getopt_long; "--" ends them);
 * 0, or 2 on a usage error. --wait and --timeout are group's alone. */
static int
meta_parse(int argc, char **argv, struct meta_args *m)
{
	static const struct option common[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct option group[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "wait", no_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const struct option *opts = strcmp(m->cmd, "group") == 0 ? group : common;
	int ch;

	/* argv[1] (the subcommand) is getopt's argv[0]; "-": words in order */
	opterr = 0;
	optind = 0;
	while ((ch = getopt_long(argc - 1, argv + 1, "-:h", opts, NULL)) != -1) {
		const char *word = argv[optind];   /* argv + 1: the word just read */

		switch (ch) {
		case 1:
			if (m->npos == 2) {
				fprintf(stderr, "herd meta %s: unexpected argument '%s'\n", m->cmd, optarg);
				meta_usage(stderr, m->cmd);
				return 2;
			}
			m->pos[m->npos++] = optarg;
			break;
		case 'j':
			m->json = true;
			break;
		case 'h':
			m->help = true;
			break;
		case 'w':
			m->wait = true;
			break;
		case 't':
			if (parse_duration_ms(optarg, &m->timeout_ms) < 0) {
				fprintf(stderr, "herd meta: invalid --timeout '%s': want e.g. 90s, 5m\n",
					optarg);
				return 2;
			}
			break;
		case ':':
			fprintf(stderr, "herd meta %s: option '%s' needs a value\n", m->cmd, word);
			meta_usage(stderr, m->cmd);
			return 2;
		default:
			fprintf(stderr, "herd meta %s: unknown option '%s'\n", m->cmd, word);
			meta_usage(stderr, m->cmd);
			return 2;
		}
	}
	for (; optind < argc - 1; optind++) {
		if (m->npos == 2) {
			fprintf(stderr, "herd meta %s: unexpected argument '%s'\n", m->cmd,
				argv[optind + 1]);
			meta_usage(stderr, m->cmd);
			return 2;
		}
		m->pos[m->npos++] = argv[optind + 1];
	}
	if (m->timeout_ms >= 0 && !m->wait && !m->help) {
		fprintf(stderr, "herd meta group: --timeout needs --wait\n");
		return 2;
	}
	return 0;
}

/* Opens a client with the host's credential. */
static int
meta_client_open(struct httpc *c, struct herr *err)
{
	const char *path = getenv("HERD_META_CONFIG");
	const char *server, *cred, *ca;
	char *text;
	json_t *j;
	int rc = 0;

	if (path == NULL || *path == '\0')
		path = META_CONFIG;
	text = file_read(path, 64 * 1024, NULL);
	if (text == NULL)
		return herr_set(err, -errno, "cannot read '%s': %s (is this a herd host? "
				"HERD_META_CONFIG names another file)", path, strerror(errno));
	j = json_loads(text, 0, NULL);
	free(text);
	server = json_string_value(json_object_get(j, "server"));
	cred = json_string_value(json_object_get(j, "credential"));
	if (server == NULL || *server == '\0' || cred == NULL || *cred == '\0')
		rc = herr_set(err, HERR_INVALID, "'%s' lacks 'server' or 'credential'", path);
	else
		httpc_init(c, server, cred);
	/* the agent's pinned CA (an https server with ca_sha256), or the
	 * system store */
	if (rc == 0 && (ca = json_string_value(json_object_get(j, "ca_pem"))) != NULL)
		httpc_trust_ca_pem(c, ca, strlen(ca), false);
	json_decref(j);
	return rc;
}

/* GETs path, retrying through an unreachable server or 5xx until deadline
 * (monotonic ms). 0 with *resp (owned) on 2xx, or an error with a message. */
static int
meta_get(struct httpc *c, const char *path, int64_t deadline, json_t **resp, struct herr *err)
{
	int64_t delay = 200;

	*resp = NULL;
	for (;;) {
		json_t *r = NULL, *e;
		long status = 0;
		int rc;

		rc = httpc_json(c, "GET", path, NULL, &status, &r, err);
		if (rc == 0 && status >= 200 && status < 300) {
			if (r == NULL)
				return herr_set(err, HERR_UNAVAIL, "server sent no JSON for '%s'", path);
			*resp = r;
			return 0;
		}
		if (rc == HERR_TOOBIG || rc == HERR_INVALID)
			return rc;
		if (rc == 0 && status >= 400 && status < 500) {
			const char *msg;

			e = r ? json_object_get(r, "error") : NULL;
			msg = e ? json_string_value(json_object_get(e, "message")) : NULL;
			rc = status == 401 ? HERR_AUTH : status == 403 ? HERR_FORBIDDEN
			   : status == 404 ? HERR_NOTFOUND : HERR_INVALID;
			if (status == 401 && msg == NULL)
				msg = "the server rejected this host's credential";
			herr_set(err, rc, "%s", msg ? msg : "request refused");
			json_decref(r);
			return rc;
		}
		if (rc == 0)
			herr_set(err, HERR_UNAVAIL, "server answered HTTP %ld", status);
		json_decref(r);
		if (mono_ms() + delay > deadline)
			return err->code;
		sleep_ms(delay);
		delay = delay * 2 > 2000 ? 2000 : delay * 2;
	}
}

/* Finds FIELD in obj; "a.b" walks into objects, an exact key wins first
 * (labels like "app.kubernetes.io/name" have dots). */
static json_t *
meta_lookup(json_t *obj, const char *field)
{
	json_t *v;
	const char *dot;

	if (!json_is_object(obj))
		return NULL;
	v = json_object_get(obj, field);
	if (v)
		return v;
	for (dot = strchr(field, '.'); dot; dot = strchr(dot + 1, '.')) {
		char *head = xstrndup(field, (size_t)(dot - field));

		v = json_object_get(obj, head);
		free(head);
		if (json_is_object(v) && (v = meta_lookup(v, dot + 1)) != NULL)
			return v;
	}
	return NULL;
}

/* Prints a value bare: strings as they are, null as an empty line, the rest
 * as compact JSON. */
static void
meta_print_value(json_t *v)
{
	char *t;

	if (v == NULL || json_is_null(v)) {
		putchar('\n');
	} else if (json_is_string(v)) {
		fwrite(json_string_value(v), 1, json_string_length(v), stdout);
		putchar('\n');
	} else {
		t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		puts(t ? t : "");
		free(t);
	}
}

static void
meta_print_json(json_t *v)
{
	char *t = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);

	puts(t ? t : "null");
	free(t);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "key  value" lines, sorted; nested objects one level deep as key.sub. */
static void
meta_print_record(json_t *obj)
{
	const char **keys;
	const char *k;
	json_t *v;
	size_t n = 0, i = 0, w = 0;

	json_object_foreach(obj, k, v) {
		const char *k2;
		json_t *v2;

		if (json_is_object(v) && json_object_size(v) > 0)
			json_object_foreach(v, k2, v2)
				n++;
		else
			n++;
	}
	keys = xcalloc(n ? n : 1, sizeof(*keys));
	json_object_foreach(obj, k, v) {
		const char *k2;
		json_t *v2;

		if (json_is_object(v) && json_object_size(v) > 0)
			json_object_foreach(v, k2, v2)
				keys[i++] = xasprintf("%s.%s", k, k2);
		else
			keys[i++] = xstrdup(k);
	}
	qsort(keys, n, sizeof(*keys), cmp_str);
	for (i = 0; i < n; i++)
		if (strlen(keys[i]) > w)
			w = strlen(keys[i]);
	for (i = 0; i < n; i++) {
		printf("%-*s  ", (int)w, keys[i]);
		v = meta_lookup(obj, keys[i]);
		if (json_is_object(v))
			puts("{}");
		else
			meta_print_value(v);
		free((char *)keys[i]);
	}
	free(keys);
}

static int
cmp_host(const void *a, const void *b)
{
	const char *x = json_string_value(json_object_get(*(json_t *const *)a, "name"));
	const char *y = json_string_value(json_object_get(*(json_t *const *)b, "name"));

	return strcmp(x ? x : "", y ? y : "");
}

/* The hosts of an answer as an array sorted by name (borrowed refs). */
static json_t **
meta_sorted_hosts(json_t *hosts, size_t *n)
{
	json_t **v;

	*n = json_array_size(hosts);
	v = xcalloc(*n ? *n : 1, sizeof(*v));
	for (size_t i = 0; i < *n; i++)
		v[i] = json_array_get(hosts, i);
	qsort(v, *n, sizeof(*v), cmp_host);
	return v;
}

static const char *
str_or_dash(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s && *s ? s : "-";
}

/* Prints an object answer (self, host, cluster with FIELD). */
static int
meta_show_object(const struct meta_args *m, json_t *obj, const char *field, const char *what)
{
	json_t *v;

	if (field == NULL) {
		if (m->json)
			meta_print_json(obj);
		else
			meta_print_record(obj);
		return 0;
	}
	v = meta_lookup(obj, field);
	if (v == NULL) {
		fprintf(stderr, "herd meta: %s has no field '%s'\n", what, field);
		return 1;
	}
	if (m->json)
		meta_print_json(v);
	else
		meta_print_value(v);
	return 0;
}

static int
meta_group(const struct meta_args *m, struct httpc *c, const char *name, const char *field)
{
	struct herr err = HERR_INIT;
	int64_t timeout = m->timeout_ms >= 0 ? m->timeout_ms : META_WAIT_DEFAULT_MS;
	int64_t start = mono_ms(), deadline = start + (m->wait ? timeout : META_RETRY_MS);
	char *esc = httpc_escape(name), path[512], d[32];
	json_t *resp = NULL, *hosts, **v;
	size_t n;
	bool found = false;

	for (;;) {
		int64_t left = deadline - mono_ms(), t0 = mono_ms();
		long wait_s = (long)(left / 1000);

		if (m->wait) {
			if (wait_s > META_POLL_S)
				wait_s = META_POLL_S;
			if (wait_s < 1)
				wait_s = 1;
			snprintf(path, sizeof(path), "/v1/meta/group/%s?wait=%ld", esc, wait_s);
			c->timeout_ms = (wait_s + 15) * 1000;
		} else {
			snprintf(path, sizeof(path), "/v1/meta/group/%s", esc);
		}
		if (meta_get(c, path, m->wait ? deadline : start + META_RETRY_MS, &resp, &err) < 0) {
			free(esc);
			fprintf(stderr, "herd meta: %s\n", err.msg);
			return 1;
		}
		hosts = json_object_get(resp, "hosts");
		if (!m->wait || json_array_size(hosts) > 0)
			break;
		json_decref(resp);
		resp = NULL;
		if (mono_ms() >= deadline) {
			free(esc);
			fprintf(stderr, "herd meta: no ready host in group '%s' after %s\n", name,
				fmt_duration(timeout, d, sizeof(d)));
			return 1;
		}
		/* a server that answers at once must not make us spin */
		if (mono_ms() - t0 < 1000)
			sleep_ms(1000);
	}
	free(esc);
	if (!json_is_array(hosts)) {
		json_decref(resp);
		fprintf(stderr, "herd meta: server answer has no 'hosts' list\n");
		return 1;
	}
	if (m->json && field == NULL) {
		meta_print_json(resp);
		json_decref(resp);
		return 0;
	}
	v = meta_sorted_hosts(hosts, &n);
	if (field) {
		for (size_t i = 0; i < n; i++)
			found = found || meta_lookup(v[i], field) != NULL;
		if (n > 0 && !found) {
			fprintf(stderr, "herd meta: hosts of group '%s' have no field '%s'\n", name, field);
			free(v);
			json_decref(resp);
			return 1;
		}
		if (m->json) {
			json_t *arr = json_array();

			for (size_t i = 0; i < n; i++) {
				json_t *x = meta_lookup(v[i], field);

				json_array_append(arr, x ? x : json_null());
			}
			meta_print_json(arr);
			json_decref(arr);
		} else {
			for (size_t i = 0; i < n; i++)
				meta_print_value(meta_lookup(v[i], field));
		}
	} else {
		printf("%-24s %-14s %s\n", "NAME", "STATE", "PRIVATE_IP");
		for (size_t i = 0; i < n; i++)
			printf("%-24s %-14s %s\n", str_or_dash(v[i], "name"), str_or_dash(v[i], "state"),
			       str_or_dash(v[i], "private_ip"));
	}
	free(v);
	json_decref(resp);
	return 0;
}

static int
meta_cluster_table(json_t *resp)
{
	json_t *groups = json_object_get(resp, "groups"), *g;
	size_t gi;

	if (!json_is_array(groups)) {
		fprintf(stderr, "herd meta: server answer has no 'groups' list\n");
		return 1;
	}
	printf("cluster %s\n", str_or_dash(resp, "name"));
	printf("%-20s %-24s %-14s %s\n", "GROUP", "NAME", "STATE", "PRIVATE_IP");
	json_array_foreach(groups, gi, g) {
		size_t n;
		json_t **v = meta_sorted_hosts(json_object_get(g, "hosts"), &n);

		if (n == 0)
			printf("%-20s %-24s %-14s %s\n", str_or_dash(g, "name"), "-", "-", "-");
		for (size_t i = 0; i < n; i++)
			printf("%-20s %-24s %-14s %s\n", str_or_dash(g, "name"),
			       str_or_dash(v[i], "name"), str_or_dash(v[i], "state"),
			       str_or_dash(v[i], "private_ip"));
		free(v);
	}
	return 0;
}

int
meta_main(int argc, char **argv)
{
	struct meta_args m = { .timeout_ms = -1 };
	struct herr err = HERR_INIT;
	struct httpc c;
	json_t *resp = NULL;
	char path[512], what[160], *esc;
	int need, rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		meta_usage(argc < 2 ? stderr : stdout, NULL);
		return argc < 2 ? 2 : 0;
	}
	m.cmd = argv[1];
	if (strcmp(m.cmd, "self") != 0 && strcmp(m.cmd, "group") != 0 &&
	    strcmp(m.cmd, "host") != 0 && strcmp(m.cmd, "cluster") != 0) {
		fprintf(stderr, "herd meta: unknown command '%s'\n", m.cmd);
		meta_usage(stderr, NULL);
		return 2;
	}
	rc = meta_parse(argc, argv, &m);
	if (rc)
		return rc;
	if (m.help) {
		meta_usage(stdout, m.cmd);
		return 0;
	}
	need = strcmp(m.cmd, "group") == 0 || strcmp(m.cmd, "host") == 0;
	if (m.npos < need) {
		fprintf(stderr, "herd meta %s: missing NAME\n", m.cmd);
		meta_usage(stderr, m.cmd);
		return 2;
	}
	if (!need && m.npos > 1) {
		fprintf(stderr, "herd meta %s: unexpected argument '%s'\n", m.cmd, m.pos[1]);
		return 2;
	}
	if (meta_client_open(&c, &err) < 0) {
		fprintf(stderr, "herd meta: %s\n", err.msg);
		return 1;
	}
	c.max_response = 4u << 20;
	if (strcmp(m.cmd, "group") == 0) {
		rc = meta_group(&m, &c, m.pos[0], m.npos > 1 ? m.pos[1] : NULL);
		httpc_release(&c);
		return rc;
	}
	if (strcmp(m.cmd, "self") == 0) {
		snprintf(path, sizeof(path), "/v1/meta/self");
		snprintf(what, sizeof(what), "this host");
	} else if (strcmp(m.cmd, "host") == 0) {
		esc = httpc_escape(m.pos[0]);
		snprintf(path, sizeof(path), "/v1/meta/host/%s", esc);
		free(esc);
		snprintf(what, sizeof(what), "host '%s'", m.pos[0]);
	} else {
		snprintf(path, sizeof(path), "/v1/meta/cluster");
		snprintf(what, sizeof(what), "the cluster");
	}
	if (meta_get(&c, path, mono_ms() + META_RETRY_MS, &resp, &err) < 0) {
		fprintf(stderr, "herd meta: %s\n", err.msg);
		httpc_release(&c);
		return 1;
	}
	httpc_release(&c);
	if (strcmp(m.cmd, "cluster") == 0 && m.npos == 0 && !m.json)
		rc = meta_cluster_table(resp);
	else
		rc = meta_show_object(&m, resp, m.npos > need ? m.pos[need] : NULL, what);
	json_decref(resp);
	return rc;
}
