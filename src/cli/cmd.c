/* cmd.c - the admin CLI: `herd <noun> <verb> [args]`. One table lists every
 * command (like git's commands[] and tmux's cmd_table); generic kinds share
 * ls/show/rm. Server and token come from --server/--token, HERD_URL/
 * HERD_TOKEN, or ~/.config/herd/config written by `herd login`. An https
 * server is verified like curl does: the system store, --cacert FILE /
 * HERD_CACERT, or nothing with -k/--insecure. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "main.h"
#include "util.h"
#include "xalloc.h"

/* The generic kinds, once: X(name, API plural, "a/an NOUN" and plural noun
 * for the help, table columns, show command, what show adds to its help).
 * kinds_cli[] and the ls/show/rm lines of cmds[] are both made from it, so
 * the help is grammatical by table ("an account", "policies"), not by
 * appending "s", and a kind with its own show (lb) is listed once. The
 * table columns are defined here and nowhere else in the CLI. */
#define KINDS(X)                                                                              \
	X("account", "accounts", "an account", "accounts", "name,driver,zone",                  \
	  cmd_kind_show, "")                                                                     \
	X("network", "networks", "a network", "networks", "name,account,cidr", cmd_kind_show, "") \
	X("lb", "lbs", "a load balancer", "load balancers",                                     \
	  "name,network,listen,backend_port,mode", cmd_lb_show, " and its members' state at the LB") \
	X("script", "scripts", "a script", "scripts", "name,latest,interpreter,description",     \
	  cmd_kind_show, " (its content too)")                                                   \
	X("template", "templates", "a template", "templates",                                   \
	  "name,account,network,init,load_balancer", cmd_kind_show, "")                          \
	X("monitor", "monitors", "a monitor", "monitors", "name,command,interval,timeout",       \
	  cmd_kind_show, "")                                                                     \
	X("cluster", "clusters", "a cluster", "clusters", "name,description", cmd_kind_show, "") \
	X("group", "groups", "a group", "groups", "cluster,name,template,min,desired,max",       \
	  cmd_kind_show, " (NAME or CLUSTER/NAME)")                                              \
	X("policy", "policies", "a policy", "policies",                                         \
	  "cluster,group,name,when,target,schedule,adjust,mode", cmd_kind_show,                  \
	  " (NAME, CLUSTER/NAME or CLUSTER/GROUP/NAME)")                                     \
	X("receiver", "receivers", "a receiver", "receivers", "name,type,url,group_wait",        \
	  cmd_kind_show, "")

struct kind_cli {
	const char *name, *plural, *columns;
};

#define KIND_ROW(name, plural, a_noun, nouns, columns, show, show_more) { name, plural, columns },
static const struct kind_cli kinds_cli[] = { KINDS(KIND_ROW) };
#undef KIND_ROW

int
cli_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("herd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static json_t *
config_load(void)
{
	const char *home = getenv("HOME");
	char path[1024];

	if (home == NULL)
		return NULL;
	snprintf(path, sizeof(path), "%s/.config/herd/config", home);
	return json_load_file(path, 0, NULL);
}

struct httpc *
cli_http(struct cli *c)
{
	static json_t *cfg;

	if (c->connected)
		return &c->http;
	if (c->server == NULL)
		c->server = getenv("HERD_URL");
	if (c->token == NULL)
		c->token = getenv("HERD_TOKEN");
	if (c->server == NULL || c->token == NULL) {
		cfg = cfg ? cfg : config_load();
		if (c->server == NULL)
			c->server = json_string_value(json_object_get(cfg, "server"));
		if (c->token == NULL)
			c->token = json_string_value(json_object_get(cfg, "token"));
	}
	if (c->server == NULL)
		c->server = "http://127.0.0.1:7171";
	if (c->cacert == NULL)
		c->cacert = getenv("HERD_CACERT");
	if (c->cacert == NULL && c->server == json_string_value(json_object_get(cfg, "server")))
		/* the saved login's CA goes with the saved login's server only */
		c->cacert = json_string_value(json_object_get(cfg, "cacert"));
	httpc_init(&c->http, c->server, c->token);
	/* like curl: the system's CA store unless told otherwise */
	if (c->cacert && *c->cacert)
		httpc_trust_cafile(&c->http, c->cacert);
	if (c->insecure)
		httpc_insecure(&c->http);
	c->connected = true;
	return &c->http;
}

int
cli_call(struct cli *c, const char *method, const char *path, json_t *body, json_t **resp)
{
	struct herr err = HERR_INIT;
	struct httpc *h = cli_http(c);

	if (httpc_call(h, method, path, body, resp, &err) < 0) {
		if (err.field[0])
			return cli_fail("%s: %s", cli_esc(err.field), cli_esc(err.msg));
		if (err.code == HERR_FORBIDDEN && strstr(err.msg, "TLS certificate"))
			return cli_fail("%s (trust its CA with --cacert FILE or HERD_CACERT, e.g. the "
					"server's DATA/tls/ca.pem; or, knowingly, --insecure)",
					cli_esc(err.msg));
		if (err.code == HERR_AUTH && c->token == NULL)
			return cli_fail("%s (give a token with --token, HERD_TOKEN or herd login)",
					cli_esc(err.msg));
		return cli_fail("%s", cli_esc(err.msg));
	}
	return 0;
}

/* Length of the UTF-8 sequence at s (2-4), or 0 if it is not a valid one;
 * *cp gets the code point. */
static size_t
utf8_seq(const unsigned char *s, unsigned *cp)
{
	size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
	unsigned c = n == 4 ? s[0] & 0x07u : n == 3 ? s[0] & 0x0fu : s[0] & 0x1fu;

	if (n == 0 || s[0] > 0xf4)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3fu);
	}
	/* overlong, surrogate or past U+10FFFF */
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

char *
cli_safe(const char *s, const char *keep)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t cap = strlen((const char *)p) + 1, n = 0;
	char *out = xmalloc(cap);

	while (*p) {
		char esc[8];
		const char *add = esc;
		size_t addn, seq = 1;
		unsigned cp = 0;

		if (*p >= 0x80 && (seq = utf8_seq(p, &cp)) == 0) {
			seq = 1;
			snprintf(esc, sizeof(esc), "\\x%02x", *p);
		} else if (*p >= 0x80 && cp >= 0x80 && cp <= 0x9f) {
			snprintf(esc, sizeof(esc), "\\u%04x", cp);       /* C1: U+0080-U+009F */
		} else if ((*p < 0x20 || *p == 0x7f) && (keep == NULL || strchr(keep, *p) == NULL)) {
			if (*p == '\n' || *p == '\t' || *p == '\r')
				snprintf(esc, sizeof(esc), "\\%c", *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r');
			else
				snprintf(esc, sizeof(esc), "\\x%02x", *p);
		} else {
			add = (const char *)p;
			esc[0] = '\0';
		}
		addn = add == esc ? strlen(esc) : seq;
		if (n + addn + 1 > cap) {
			cap = (n + addn + 1) * 2;
			out = xrealloc(out, cap);
		}
		memcpy(out + n, add, addn);
		n += addn;
		p += seq;
	}
	out[n] = '\0';
	return out;
}

const char *
cli_esc(const char *s)
{
	static char *ring[16];
	static unsigned pos;
	char **slot = &ring[pos++ % 16];

	if (s == NULL)
		return "-";
	free(*slot);
	*slot = cli_safe(s, NULL);
	return *slot;
}

static json_t *
get_path(json_t *o, const char *path)
{
	char key[128];
	const char *dot;

	while (o && (dot = strchr(path, '.')) != NULL) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		o = json_object_get(o, key);
		path = dot + 1;
	}
	return o ? json_object_get(o, path) : NULL;
}

static char *
cell(json_t *v)
{
	if (v == NULL || json_is_null(v))
		return xstrdup("-");
	if (json_is_string(v))
		return cli_safe(json_string_value(v), NULL);
	if (json_is_integer(v))
		return xasprintf("%lld", (long long)json_integer_value(v));
	if (json_is_real(v))
		return xasprintf("%g", json_real_value(v));
	if (json_is_boolean(v))
		return xstrdup(json_is_true(v) ? "yes" : "no");
	if (json_is_array(v)) {
		size_t i, n = 0;
		json_t *x;
		char *out = xstrdup("");
		json_array_foreach(v, i, x) {
			char *s = cell(x), *t = xasprintf("%s%s%s", out, n++ ? "," : "", s);
			free(s);
			free(out);
			out = t;
		}
		return n ? out : (free(out), xstrdup("-"));
	}
	return json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII);
}

void
cli_table(json_t *rows, const char *columns)
{
	char *cols = xstrdup(columns), *save = NULL, *tok;
	const char *names[32];
	size_t ncol = 0, width[32] = { 0 }, nrow = json_array_size(rows);
	char ***cells;

	for (tok = strtok_r(cols, ",", &save); tok && ncol < 32; tok = strtok_r(NULL, ",", &save))
		names[ncol++] = tok;
	cells = xcalloc(nrow + 1, sizeof(*cells));
	for (size_t c = 0; c < ncol; c++)
		width[c] = strlen(names[c]);
	for (size_t r = 0; r < nrow; r++) {
		cells[r] = xcalloc(ncol, sizeof(char *));
		for (size_t c = 0; c < ncol; c++) {
			cells[r][c] = cell(get_path(json_array_get(rows, r), names[c]));
			if (strlen(cells[r][c]) > width[c])
				width[c] = strlen(cells[r][c]);
		}
	}
	for (size_t c = 0; c < ncol; c++) {
		for (const char *p = names[c]; *p; p++)
			putchar(*p == '_' || *p == '.' ? ' ' : (*p >= 'a' && *p <= 'z') ? *p - 32 : *p);
		printf("%*s", c + 1 < ncol ? (int)(width[c] - strlen(names[c]) + 2) : 0, "");
	}
	putchar('\n');
	for (size_t r = 0; r < nrow; r++) {
		for (size_t c = 0; c < ncol; c++) {
			if (c + 1 < ncol)
				printf("%-*s  ", (int)width[c], cells[r][c]);
			else
				printf("%s", cells[r][c]);
			free(cells[r][c]);
		}
		putchar('\n');
		free(cells[r]);
	}
	free(cells);
	free(cols);
}

void
cli_kv(json_t *obj)
{
	const char *key;
	json_t *v;
	size_t w = 0;

	json_object_foreach(obj, key, v)
		if (strlen(key) > w)
			w = strlen(key);
	json_object_foreach(obj, key, v) {
		char *s;
		if (json_is_object(v) || (json_is_array(v) && json_array_size(v) && json_is_object(json_array_get(v, 0))))
			continue;
		s = cell(v);
		printf("%-*s  %s\n", (int)w + 1, cli_esc(key), s);
		free(s);
	}
}

void
cli_print_json(json_t *v)
{
	json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
}

/* --- options: one getopt_long table per command, built from its spec --- */

#define CLI_LONG_MAX 24        /* long options of one command, common ones included */
#define CLI_COMMON_OPTS "json,server=,token=,cacert=,k|insecure,h|help"

/* A command's options as getopt_long wants them. */
struct optset {
	struct option lo[CLI_LONG_MAX + 1];
	int n;
	char shorts[32];       /* getopt's optstring */
	char *names;           /* lo[].name point in here: the caller's, it outlives the parse */
	size_t names_size, used;
};

/* Adds spec ("group=,all,f|file=") to s. The specs are the table's
 * constants: one that does not fit is a programmer's error. */
static void
optset_add(struct optset *s, const char *spec)
{
	char *copy = xstrdup(spec), *save = NULL, *tok;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *name = tok, *bar = strchr(tok, '|');
		int has = no_argument, sh = 0;
		size_t len;

		if (bar) {
			sh = tok[0];
			name = bar + 1;
		}
		len = strlen(name);
		if (len > 0 && name[len - 1] == '=') {
			has = required_argument;
			name[--len] = '\0';
		}
		BUG_ON(s->n >= CLI_LONG_MAX || s->used + len + 1 > s->names_size ||
		       strlen(s->shorts) + 3 > sizeof(s->shorts));
		memcpy(s->names + s->used, name, len + 1);
		s->lo[s->n] = (struct option){ s->names + s->used, has, NULL, sh ? sh : 256 + s->n };
		s->used += len + 1;
		s->n++;
		if (sh) {
			size_t k = strlen(s->shorts);
			s->shorts[k++] = (char)sh;
			if (has == required_argument)
				s->shorts[k++] = ':';
			s->shorts[k] = '\0';
		}
	}
	free(copy);
}

static void
optset_init(struct optset *s, char *names, size_t names_size, const char *mode, const char *spec)
{
	memset(s, 0, sizeof(*s));
	s->names = names;
	s->names_size = names_size;
	snprintf(s->shorts, sizeof(s->shorts), "%s", mode);
	optset_add(s, CLI_COMMON_OPTS);
	if (spec)
		optset_add(s, spec);
}

static const struct option *
optset_find(const struct optset *s, int val)
{
	for (int i = 0; i < s->n; i++)
		if (s->lo[i].val == val)
			return &s->lo[i];
	return NULL;
}

static void
cmd_usage(FILE *f, const struct cmd *cmd)
{
	fprintf(f, "usage: herd %s%s%s %s\n", cmd->noun, cmd->verb ? " " : "",
		cmd->verb ? cmd->verb : "", cmd->usage);
}

/* Why getopt_long refused argv[optind - 1] (ch is '?' or ':'). */
static void
optset_why(const struct optset *s, int ch, char **argv, char *out, size_t n)
{
	const struct option *o = optopt ? optset_find(s, optopt) : NULL;
	const char *word = argv[optind - 1];
	const char *eq = strchr(word, '=');

	if (ch == ':' && o && o->val >= 256)
		snprintf(out, n, "option '--%s' needs a value", o->name);
	else if (ch == ':')
		snprintf(out, n, "option '-%c' needs a value", optopt);
	else if (o && o->val >= 256)
		snprintf(out, n, "option '--%s' takes no value", o->name);
	else if (optopt && !(word[0] == '-' && word[1] == '-'))
		snprintf(out, n, "unknown option '-%c'", optopt);
	else
		snprintf(out, n, "unknown option '%.*s'", eq ? (int)(eq - word) : (int)strlen(word),
			 cli_esc(word));
}

/* Applies a parsed option: the common ones to c, the others to c->opts. */
static int
cli_set(struct cli *c, const struct option *o, const char *value)
{
	if (strcmp(o->name, "json") == 0) {
		c->json = true;
	} else if (strcmp(o->name, "server") == 0) {
		c->server = value;
	} else if (strcmp(o->name, "token") == 0) {
		c->token = value;
	} else if (strcmp(o->name, "cacert") == 0) {
		c->cacert = value;
	} else if (strcmp(o->name, "insecure") == 0) {
		c->insecure = true;
	} else {
		if (c->nopts == CLI_OPTS_MAX)
			return -1;
		c->opts[c->nopts++] = (struct cli_optval){ o->name, value };
	}
	return 0;
}

int
cli_parse(struct cli *c, const struct cmd *cmd, int *argc, char **argv)
{
	struct optset s;
	char why[256];
	int ch, npos = 0;

	/* "-": words that are not options come back in order (ch 1), so
	 * options may follow NAME whatever POSIXLY_CORRECT says; ":": we say
	 * what was wrong ourselves */
	optset_init(&s, c->optnames, sizeof(c->optnames), "-:", cmd->opts);
	opterr = 0;
	optind = 0;            /* glibc: start afresh, the global options were parsed before */
	while ((ch = getopt_long(*argc, argv, s.shorts, s.lo, NULL)) != -1) {
		const struct option *o;

		if (ch == 1) {
			if (npos == cmd->maxpos) {
				cli_fail("unexpected argument '%s'", cli_esc(optarg));
				goto usage;
			}
			argv[++npos] = optarg;    /* never ahead of getopt: npos < optind */
			continue;
		}
		if (ch == '?' || ch == ':') {
			optset_why(&s, ch, argv, why, sizeof(why));
			cli_fail("%s", why);
			goto usage;
		}
		o = optset_find(&s, ch);
		BUG_ON(o == NULL);
		if (strcmp(o->name, "help") == 0) {
			cmd_usage(stdout, cmd);
			printf("\n%s\n", cmd->help);
			return 0;
		}
		if (cli_set(c, o, optarg) < 0) {
			cli_fail("more than %d options", CLI_OPTS_MAX);
			goto usage;
		}
	}
	/* after "--" every word is an argument */
	for (; optind < *argc; optind++) {
		if (npos == cmd->maxpos) {
			cli_fail("unexpected argument '%s'", cli_esc(argv[optind]));
			goto usage;
		}
		argv[++npos] = argv[optind];
	}
	if (npos < cmd->minpos) {
		cli_fail("missing argument");
		goto usage;
	}
	*argc = npos + 1;
	argv[*argc] = NULL;
	return -1;
usage:
	cmd_usage(stderr, cmd);
	return 2;
}

const char *
cli_opt_nth(const struct cli *c, const char *name, int i)
{
	for (int k = 0; k < c->nopts; k++)
		if (strcmp(c->opts[k].name, name) == 0 && i-- == 0)
			return c->opts[k].value;
	return NULL;
}

const char *
cli_opt(const struct cli *c, const char *name)
{
	const char *v = NULL;

	for (int k = 0; k < c->nopts; k++)
		if (strcmp(c->opts[k].name, name) == 0)
			v = c->opts[k].value;
	return v;
}

bool
cli_flag(const struct cli *c, const char *name)
{
	for (int k = 0; k < c->nopts; k++)
		if (strcmp(c->opts[k].name, name) == 0)
			return true;
	return false;
}

int
cli_names_exist(struct cli *c, const char *host, const char *group, const char *cluster)
{
	if (host)
		return cli_must_exist(c, "hosts", cluster, host);
	if (group)
		return cli_must_exist(c, "groups", cluster, group);
	if (cluster)
		return cli_must_exist(c, "clusters", NULL, cluster);
	return 0;
}

int
cli_must_exist(struct cli *c, const char *plural, const char *cluster, const char *name)
{
	json_t *resp = NULL;
	char *path, *full = NULL;
	int rc;

	if (cluster && *cluster && strchr(name, '/') == NULL)
		name = full = xasprintf("%s/%s", cluster, name);
	path = cli_scoped_path(plural, name, NULL);
	rc = cli_call(c, "GET", path, NULL, &resp);
	json_decref(resp);
	free(path);
	free(full);
	return rc;
}

/* Splits "CLUSTER/NAME" for scoped kinds into a query string. */
char *
cli_scoped_path(const char *plural, const char *name, const char *suffix)
{
	const char *slash = strchr(name, '/');
	char *n, *cl, *out;

	if (slash == NULL) {
		n = httpc_escape(name);
		out = xasprintf("/v1/%s/%s%s", plural, n, suffix ? suffix : "");
		free(n);
		return out;
	}
	cl = xstrndup(name, (size_t)(slash - name));
	{
		char *ce = httpc_escape(cl), *rest = xstrdup(slash + 1), *g = NULL, *s2;
		/* policies: CLUSTER/GROUP/NAME */
		s2 = strchr(rest, '/');
		if (s2) {
			*s2 = '\0';
			g = httpc_escape(rest);
			n = httpc_escape(s2 + 1);
			out = xasprintf("/v1/%s/%s%s?cluster=%s&group=%s", plural, n, suffix ? suffix : "", ce, g);
		} else {
			n = httpc_escape(rest);
			out = xasprintf("/v1/%s/%s%s?cluster=%s", plural, n, suffix ? suffix : "", ce);
		}
		free(ce);
		free(g);
		free(rest);
	}
	free(n);
	free(cl);
	return out;
}

/* --- generic kinds --- */

static int
cmd_kind_ls(struct cli *c, int argc, char **argv)
{
	const struct kind_cli *k = NULL;
	json_t *resp = NULL, *all = json_array();
	char *after = NULL;
	int rc = 0;

	for (size_t i = 0; i < sizeof(kinds_cli) / sizeof(kinds_cli[0]); i++)
		if (strcmp(kinds_cli[i].name, argv[-1]) == 0)
			k = &kinds_cli[i];
	for (;;) {
		char *path, *ae = after ? httpc_escape(after) : NULL;
		path = xasprintf("/v1/%s?limit=1000%s%s", k->plural, ae ? "&after=" : "", ae ? ae : "");
		free(ae);
		rc = cli_call(c, "GET", path, NULL, &resp);
		free(path);
		if (rc)
			break;
		json_array_extend(all, json_object_get(resp, "items"));
		free(after);
		after = json_string_value(json_object_get(resp, "next"))
			? xstrdup(json_string_value(json_object_get(resp, "next"))) : NULL;
		json_decref(resp);
		if (after == NULL)
			break;
	}
	(void)argc;
	if (rc == 0) {
		if (c->json)
			cli_print_json(json_pack("{s:O}", "items", all));
		else
			cli_table(all, k->columns);
	}
	json_decref(all);
	return rc;
}

static const struct kind_cli *
kind_of(const char *noun)
{
	for (size_t i = 0; i < sizeof(kinds_cli) / sizeof(kinds_cli[0]); i++)
		if (strcmp(kinds_cli[i].name, noun) == 0)
			return &kinds_cli[i];
	return NULL;
}

static int
cmd_kind_show(struct cli *c, int argc, char **argv)
{
	const struct kind_cli *k = kind_of(argv[-1]);
	json_t *resp = NULL;
	char *path;
	int rc;

	if (argc < 2)
		return cli_fail("usage: herd %s show NAME", k->name);
	path = cli_scoped_path(k->plural, argv[1], NULL);
	rc = cli_call(c, "GET", path, NULL, &resp);
	free(path);
	if (rc)
		return rc;
	if (c->json) {
		cli_print_json(resp);
	} else {
		const char *content = json_string_value(json_object_get(resp, "content"));
		json_t *copy = json_deep_copy(resp);
		json_object_del(copy, "content");
		cli_kv(copy);
		json_decref(copy);
		if (content)
			printf("\n%s%s", content, content[0] && content[strlen(content) - 1] != '\n' ? "\n" : "");
	}
	json_decref(resp);
	return 0;
}

static int
cmd_kind_rm(struct cli *c, int argc, char **argv)
{
	const struct kind_cli *k = kind_of(argv[-1]);
	json_t *resp = NULL;
	char *path;
	int rc;

	if (argc < 2)
		return cli_fail("usage: herd %s rm NAME", k->name);
	path = cli_scoped_path(k->plural, argv[1], NULL);
	rc = cli_call(c, "DELETE", path, NULL, &resp);
	free(path);
	if (rc == 0)
		printf("%s '%s' deleted\n", k->name, argv[1]);
	json_decref(resp);
	return rc;
}

/* --- groups, hosts, activities, tokens --- */

static int
cmd_group_scale(struct cli *c, int argc, char **argv)
{
	json_t *resp = NULL;
	char *path, *end;
	long n;
	int rc;

	if (argc < 3)
		return cli_fail("usage: herd group scale NAME N");
	n = strtol(argv[2], &end, 10);
	if (*end || end == argv[2] || n < 0)
		return cli_fail("invalid size '%s': want a number of hosts", argv[2]);
	path = cli_scoped_path("groups", argv[1], "/scale");
	rc = cli_call(c, "POST", path, json_pack("{s:I}", "desired", (json_int_t)n), &resp);
	free(path);
	if (rc == 0) {
		if (c->json)
			cli_print_json(resp);
		else
			printf("group %s/%s: desired %lld (min %lld, max %lld)\n",
			       json_string_value(json_object_get(resp, "cluster")),
			       json_string_value(json_object_get(resp, "name")),
			       (long long)json_integer_value(json_object_get(resp, "desired")),
			       (long long)json_integer_value(json_object_get(resp, "min")),
			       (long long)json_integer_value(json_object_get(resp, "max")));
	}
	json_decref(resp);
	return rc;
}

/* herd group diff CLUSTER/GROUP: the hosts behind the group's template
 * version and, for each, what changed. */
static int
cmd_group_diff(struct cli *c, int argc, char **argv)
{
	json_t *resp = NULL, *h, *ch;
	size_t i, j;
	char *path;
	int rc;

	if (argc < 2 || argv[1][0] == '-')
		return cli_fail("usage: herd group diff CLUSTER/GROUP");
	path = cli_scoped_path("groups", argv[1], "/diff");
	rc = cli_call(c, "GET", path, NULL, &resp);
	free(path);
	if (rc)
		return rc;
	if (c->json) {
		cli_print_json(resp);
		json_decref(resp);
		return 0;
	}
	printf("%s/%s: template %s version %s; %lld of %lld host(s) behind\n",
	       cli_esc(json_string_value(json_object_get(resp, "cluster"))),
	       cli_esc(json_string_value(json_object_get(resp, "group"))),
	       cli_esc(json_string_value(json_object_get(resp, "template"))),
	       cli_esc(json_string_value(json_object_get(resp, "version"))),
	       (long long)json_array_size(json_object_get(resp, "behind")),
	       (long long)json_integer_value(json_object_get(resp, "hosts")));
	json_array_foreach(json_object_get(resp, "behind"), i, h) {
		printf("%s (%s): %s version %s\n", cli_esc(json_string_value(json_object_get(h, "host"))),
		       cli_esc(json_string_value(json_object_get(h, "state"))),
		       cli_esc(json_string_value(json_object_get(h, "template"))),
		       cli_esc(json_string_value(json_object_get(h, "version"))));
		json_array_foreach(json_object_get(h, "changes"), j, ch) {
			char *from = json_dumps(json_object_get(ch, "from"), JSON_ENCODE_ANY | JSON_COMPACT);
			char *to = json_dumps(json_object_get(ch, "to"), JSON_ENCODE_ANY | JSON_COMPACT);

			printf("  %s: %s -> %s\n", cli_esc(json_string_value(json_object_get(ch, "field"))),
			       cli_esc(from ? from : "null"), cli_esc(to ? to : "null"));
			free(from);
			free(to);
		}
	}
	json_decref(resp);
	return 0;
}

/* Prints a refresh as `herd group refresh` shows it. */
static void
refresh_print(const json_t *r)
{
	const json_t *p = json_object_get(r, "params");
	json_t *h;
	size_t i;

	printf("refresh %lld of %s/%s to %s version %s: %s\n",
	       (long long)json_integer_value(json_object_get(r, "id")),
	       cli_esc(json_string_value(json_object_get(r, "cluster"))),
	       cli_esc(json_string_value(json_object_get(r, "group"))),
	       cli_esc(json_string_value(json_object_get(r, "template"))),
	       cli_esc(json_string_value(json_object_get(r, "target_version"))),
	       cli_esc(json_string_value(json_object_get(r, "state"))));
	printf("  batch %s, surge %lld, min_healthy %s, warmup %llds, pause_after %lld%s\n",
	       cli_esc(json_string_value(json_object_get(p, "batch"))),
	       (long long)json_integer_value(json_object_get(p, "surge")),
	       cli_esc(json_string_value(json_object_get(p, "min_healthy"))),
	       (long long)(json_integer_value(json_object_get(p, "warmup_ms")) / 1000),
	       (long long)json_integer_value(json_object_get(p, "pause_after")),
	       json_is_true(json_object_get(p, "rollback")) ? ", rollback" : "");
	printf("  %lld host(s) replaced in %lld batch(es)",
	       (long long)json_integer_value(json_object_get(r, "replaced")),
	       (long long)json_integer_value(json_object_get(r, "batches")));
	json_array_foreach(json_object_get(r, "hosts_replaced"), i, h)
		printf("%s%s", i ? ", " : ": ", cli_esc(json_string_value(h)));
	printf("\n  %s\n", cli_esc(json_string_value(json_object_get(r, "reason"))));
}

#define REFRESH_WAIT_DEFAULT_MS (30LL * 60 * 1000)   /* --wait without --timeout */
#define REFRESH_POLL_MS 1000

/* What --wait makes of a refresh in state st: -1 while it goes on
 * (running), 0 when done, 1 when it ended otherwise (failed, cancelled,
 * rolled_back) or waits for someone (paused). */
static int
refresh_outcome(const char *st)
{
	if (st == NULL || strcmp(st, "running") == 0)
		return -1;
	return strcmp(st, "done") == 0 ? 0 : 1;
}

/* One progress line of a followed refresh: its state, what it replaced,
 * what it does now. */
static void
refresh_progress(const json_t *r)
{
	printf("%s: %lld host(s) replaced in %lld batch(es); %s\n",
	       cli_esc(json_string_value(json_object_get(r, "state"))),
	       (long long)json_integer_value(json_object_get(r, "replaced")),
	       (long long)json_integer_value(json_object_get(r, "batches")),
	       cli_esc(json_string_value(json_object_get(r, "reason"))));
	fflush(stdout);
}

/* --wait: follows refresh *r (replaced by each reading) until it is no
 * longer running or timeout_ms passes, a line each time its state, counts
 * or reason change (none with --json). 0 when done; 1 when it ended
 * otherwise, another refresh took its place, or time ran out; a request's
 * error. */
static int
refresh_wait(struct cli *c, const char *path, json_t **r, int64_t timeout_ms, const char *tmo)
{
	int64_t deadline = mono_ms() + timeout_ms;
	json_int_t id = json_integer_value(json_object_get(*r, "id"));
	char *last = NULL;
	int rc = 0;

	for (;;) {
		const char *st = json_string_value(json_object_get(*r, "state"));
		const char *why = json_string_value(json_object_get(*r, "reason"));
		char *now = xasprintf("%s %lld %lld %s", st ? st : "",
				      (long long)json_integer_value(json_object_get(*r, "replaced")),
				      (long long)json_integer_value(json_object_get(*r, "batches")),
				      why ? why : "");
		json_t *next = NULL;

		if (!c->json && (last == NULL || strcmp(last, now) != 0))
			refresh_progress(*r);
		free(last);
		last = now;
		if (json_integer_value(json_object_get(*r, "id")) != id) {
			rc = cli_fail("refresh %lld is gone: refresh %lld of the group took its place",
				      (long long)id,
				      (long long)json_integer_value(json_object_get(*r, "id")));
			break;
		}
		if (refresh_outcome(st) >= 0) {
			rc = refresh_outcome(st);
			break;
		}
		if (mono_ms() >= deadline) {
			rc = cli_fail("refresh %lld still running after %s (--timeout); it goes on",
				      (long long)id, tmo ? tmo : "30m");
			break;
		}
		sleep_ms(REFRESH_POLL_MS);
		if ((rc = cli_call(c, "GET", path, NULL, &next)) != 0)
			break;
		json_decref(*r);
		*r = next;
	}
	free(last);
	return rc;
}

/* herd group refresh CLUSTER/GROUP [flags] [--wait [--timeout D]] |
 * --status | --pause | --resume [--wait [--timeout D]] | --cancel. */
static int
cmd_group_refresh(struct cli *c, int argc, char **argv)
{
	static const char *const acts[] = { "pause", "resume", "cancel" };
	static const char *const keys[][2] = { { "batch", "batch" }, { "surge", "surge" },
					       { "min-healthy", "min_healthy" },
					       { "warmup", "warmup" },
					       { "pause-after", "pause_after" } };
	const char *action = NULL, *tmo = cli_opt(c, "timeout");
	json_t *resp = NULL, *body;
	char *path;
	size_t i;
	int rc, nacts = 0;
	bool wait = cli_flag(c, "wait");
	int64_t timeout_ms = REFRESH_WAIT_DEFAULT_MS;

	if (argc < 2 || argv[1][0] == '-')
		return cli_fail("usage: herd group refresh CLUSTER/GROUP [--batch N|P%%] [--surge N]"
				" [--min-healthy P%%] [--warmup 30s] [--pause-after N] [--rollback]"
				" [--dry-run] [--wait [--timeout 30m]] | --status | --pause"
				" | --resume [--wait [--timeout 30m]] | --cancel");
	for (i = 0; i < sizeof(acts) / sizeof(acts[0]); i++)
		if (cli_flag(c, acts[i]))
			action = acts[i], nacts++;
	if (cli_flag(c, "status"))
		nacts++;
	if (nacts > 1)
		return cli_fail("give one of --status, --pause, --resume, --cancel");
	if (tmo && !wait)
		return cli_fail("--timeout is how long --wait waits: give --wait too");
	if (tmo && (parse_duration_ms(tmo, &timeout_ms) < 0 || timeout_ms <= 0))
		return cli_fail("invalid --timeout '%s': want a duration such as 30m", tmo);
	if (wait && (cli_flag(c, "status") || cli_flag(c, "dry-run") ||
		     (action && strcmp(action, "resume") != 0)))
		return cli_fail("--wait follows a refresh started or resumed: not with --%s",
				cli_flag(c, "status") ? "status" : cli_flag(c, "dry-run") ? "dry-run"
											   : action);
	if (cli_flag(c, "status")) {
		path = cli_scoped_path("groups", argv[1], "/refresh");
		rc = cli_call(c, "GET", path, NULL, &resp);
	} else if (action) {
		char *tail = xasprintf("/refresh/%s", action);

		path = cli_scoped_path("groups", argv[1], tail);
		free(tail);
		rc = cli_call(c, "POST", path, json_object(), &resp);
	} else {
		body = json_object();
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (cli_opt(c, keys[i][0]))
				json_object_set_new(body, keys[i][1], json_string(cli_opt(c, keys[i][0])));
		if (cli_flag(c, "rollback"))
			json_object_set_new(body, "rollback", json_true());
		if (cli_flag(c, "dry-run"))
			json_object_set_new(body, "dry_run", json_true());
		path = cli_scoped_path("groups", argv[1], "/refresh");
		rc = cli_call(c, "POST", path, body, &resp);
	}
	free(path);
	if (rc)
		return rc;
	if (wait) {
		/* the refresh itself (a resume answers it too): followed by id */
		path = cli_scoped_path("groups", argv[1], "/refresh");
		rc = refresh_wait(c, path, &resp, timeout_ms, tmo);
		free(path);
		if (c->json)
			cli_print_json(resp);
		else if (rc == 0 || refresh_outcome(json_string_value(json_object_get(resp, "state"))) > 0)
			refresh_print(resp);
		json_decref(resp);
		return rc;
	}
	if (c->json) {
		cli_print_json(resp);
	} else if (json_is_true(json_object_get(resp, "dry_run"))) {
		json_t *h;

		printf("would refresh %s/%s to %s version %s: %zu host(s) behind, batches of %lld,"
		       " at least %lld ready\n",
		       cli_esc(json_string_value(json_object_get(resp, "cluster"))),
		       cli_esc(json_string_value(json_object_get(resp, "group"))),
		       cli_esc(json_string_value(json_object_get(resp, "template"))),
		       cli_esc(json_string_value(json_object_get(resp, "target_version"))),
		       json_array_size(json_object_get(resp, "behind")),
		       (long long)json_integer_value(json_object_get(resp, "batch_size")),
		       (long long)json_integer_value(json_object_get(resp, "min_ready")));
		json_array_foreach(json_object_get(resp, "behind"), i, h)
			printf("  %s (version %s)\n", cli_esc(json_string_value(json_object_get(h, "host"))),
			       cli_esc(json_string_value(json_object_get(h, "version"))));
	} else {
		refresh_print(resp);
	}
	json_decref(resp);
	return 0;
}

static int
cmd_host_ls(struct cli *c, int argc, char **argv)
{
	const char *g = cli_opt(c, "group"), *cl = cli_opt(c, "cluster");
	const char *g0 = g;
	json_t *resp = NULL;
	char *path, *ge = NULL, *ce = NULL, *slash, *next = NULL;
	int rc;

	if (g && (slash = strchr(g, '/')) != NULL) {
		char *c2 = xstrndup(g, (size_t)(slash - g));
		ce = httpc_escape(c2);
		free(c2);
		g = slash + 1;
	} else if (cl) {
		ce = httpc_escape(cl);
	}
	ge = g ? httpc_escape(g) : NULL;
	/* the list comes in pages: follow "next" until the last (at most 1,000
	 * pages, so a server that answers the same page forever cannot loop us) */
	for (int pages = 0;; pages++) {
		json_t *page = NULL;
		char *after = next ? httpc_escape(next) : NULL;
		const char *nx;

		path = xasprintf("/v1/hosts?group=%s&cluster=%s%s%s%s", ge ? ge : "", ce ? ce : "",
				 cli_flag(c, "all") ? "&all=1" : "", after ? "&after=" : "",
				 after ? after : "");
		free(after);
		free(next);
		next = NULL;
		rc = cli_call(c, "GET", path, NULL, &page);
		free(path);
		if (rc)
			break;
		nx = json_string_value(json_object_get(page, "next"));
		next = nx ? xstrdup(nx) : NULL;
		if (resp == NULL) {
			resp = page;
		} else {
			json_array_extend(json_object_get(resp, "items"), json_object_get(page, "items"));
			json_decref(page);
		}
		if (next == NULL || pages >= 999) {
			free(next);
			break;
		}
	}
	free(ge);
	free(ce);
	if (rc) {
		json_decref(resp);
		return rc;
	}
	json_object_del(resp, "next");
	/* nothing listed: a mistyped name is an error, not an empty table */
	if (json_array_size(json_object_get(resp, "items")) == 0 &&
	    (rc = cli_names_exist(c, NULL, g0, cl)) != 0) {
		json_decref(resp);
		return rc;
	}
	if (c->json)
		cli_print_json(resp);
	else
		cli_table(json_object_get(resp, "items"),
			  "cluster,group,name,state,private_ip,ready_after_ms,reason,template_version");
	json_decref(resp);
	return 0;
}

static void
print_output(const char *label, json_t *v, bool truncated)
{
	char *s;

	if (json_string_value(v) == NULL || *json_string_value(v) == '\0')
		return;
	s = cli_safe(json_string_value(v), "\n\t");
	printf("  --- %s%s ---\n", label, truncated ? " (truncated)" : "");
	for (const char *p = s; *p;) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);
		printf("  | %.*s\n", n, p);
		p += n + (nl ? 1 : 0);
	}
	free(s);
}

static int
cmd_host_show(struct cli *c, int argc, char **argv)
{
	json_t *resp = NULL, *init, *r;
	char *path;
	size_t i;
	int rc;

	if (argc < 2)
		return cli_fail("usage: herd host show NAME");
	path = cli_scoped_path("hosts", argv[1], NULL);
	rc = cli_call(c, "GET", path, NULL, &resp);
	free(path);
	if (rc)
		return rc;
	if (c->json) {
		cli_print_json(resp);
		json_decref(resp);
		return 0;
	}
	init = json_incref(json_object_get(resp, "init"));
	json_object_del(resp, "init");
	r = json_incref(json_object_get(resp, "metrics"));
	json_object_del(resp, "metrics");
	cli_kv(resp);
	if (r) {
		/* the host's metric series against its quota, and refusals */
		printf("metric series: %lld of %lld allowed; %lld new series refused",
		       (long long)json_integer_value(json_object_get(r, "series")),
		       (long long)json_integer_value(json_object_get(r, "max_series")),
		       (long long)json_integer_value(json_object_get(r, "refused")));
		if (json_integer_value(json_object_get(r, "refused")))
			printf(" (%s, last %s)", json_string_value(json_object_get(r, "refused_reason")),
			       json_string_value(json_object_get(r, "last_refused")));
		printf("\n");
		json_decref(r);
	}
	if (json_array_size(init))
		printf("\ninit scripts:\n");
	json_array_foreach(init, i, r) {
		printf("  %lld. %s v%lld: exit %lld%s (%lld ms)\n",
		       (long long)json_integer_value(json_object_get(r, "idx")) + 1,
		       cli_esc(json_string_value(json_object_get(r, "script"))),
		       (long long)json_integer_value(json_object_get(r, "version")),
		       (long long)json_integer_value(json_object_get(r, "exit_code")),
		       json_is_true(json_object_get(r, "timed_out")) ? ", timed out" : "",
		       (long long)json_integer_value(json_object_get(r, "duration_ms")));
		print_output("stdout", json_object_get(r, "stdout"), json_is_true(json_object_get(r, "stdout_truncated")));
		print_output("stderr", json_object_get(r, "stderr"), json_is_true(json_object_get(r, "stderr_truncated")));
	}
	json_decref(init);
	json_decref(resp);
	return 0;
}

static int
cmd_host_action(struct cli *c, int argc, char **argv)
{
	const char *verb = argv[0];
	json_t *resp = NULL;
	char *path, *suffix;
	int rc;

	if (argc < 2)
		return cli_fail("usage: herd host %s NAME", verb);
	suffix = xasprintf("/%s%s", verb, cli_flag(c, "replace") ? "?replace=1" : "");
	path = cli_scoped_path("hosts", argv[1], suffix);
	if (strchr(argv[1], '/') && cli_flag(c, "replace")) {
		/* scoped_path already used '?' */
		char *q = strstr(path, "?replace=1");
		if (q)
			memmove(q, q + 10, strlen(q + 10) + 1);
		char *p2 = xasprintf("%s&replace=1", path);
		free(path);
		path = p2;
	}
	rc = cli_call(c, "POST", path, json_object(), &resp);
	free(path);
	free(suffix);
	if (rc == 0) {
		if (c->json)
			cli_print_json(resp);
		else
			printf("host %s: %s%s\n", argv[1], cli_esc(json_string_value(json_object_get(resp, "state"))),
			       json_is_true(json_object_get(resp, "protected")) ? " (protected)" : "");
	}
	json_decref(resp);
	return rc;
}

static int
cmd_activity_ls(struct cli *c, int argc, char **argv)
{
	const char *g = cli_opt(c, "group"), *cl = cli_opt(c, "cluster");
	const char *lim = cli_opt(c, "limit"), *g0 = g, *cl0 = cl;
	json_t *resp = NULL;
	char *path, *ge, *ce, *le, *slash, *cl_owned = NULL;
	int rc;

	if (g && (slash = strchr(g, '/')) != NULL) {
		cl = cl_owned = xstrndup(g, (size_t)(slash - g));
		g = slash + 1;
	}
	ge = httpc_escape(g ? g : "");
	ce = httpc_escape(cl ? cl : "");
	le = httpc_escape(lim ? lim : "200");
	path = xasprintf("/v1/activities?group=%s&cluster=%s&limit=%s", ge, ce, le);
	rc = cli_call(c, "GET", path, NULL, &resp);
	free(path);
	free(ge);
	free(ce);
	free(le);
	free(cl_owned);
	if (rc)
		return rc;
	if (json_array_size(json_object_get(resp, "items")) == 0 &&
	    (rc = cli_names_exist(c, NULL, g0, cl0)) != 0) {
		json_decref(resp);
		return rc;
	}
	if (c->json)
		cli_print_json(resp);
	else
		cli_table(json_object_get(resp, "items"), "time,cluster,group,host,kind,cause,server,epoch,reason");
	json_decref(resp);
	return 0;
}

static int
cmd_token_create(struct cli *c, int argc, char **argv)
{
	const char *role = cli_opt(c, "role"), *name = cli_opt(c, "name");
	json_t *resp = NULL, *body;
	int rc;

	if (role == NULL)
		return cli_fail("usage: herd token create --role viewer|operator|admin [--name N]");
	body = json_pack("{s:s}", "role", role);
	if (name)
		json_object_set_new(body, "name", json_string(name));
	rc = cli_call(c, "POST", "/v1/tokens", body, &resp);
	json_decref(body);
	if (rc)
		return rc;
	if (c->json)
		cli_print_json(resp);
	else
		printf("%s\n", json_string_value(json_object_get(resp, "token")));
	json_decref(resp);
	return 0;
}

static int
cmd_simple_ls(struct cli *c, const char *path, const char *columns)
{
	json_t *resp = NULL;
	int rc = cli_call(c, "GET", path, NULL, &resp);

	if (rc)
		return rc;
	if (c->json)
		cli_print_json(resp);
	else
		cli_table(json_object_get(resp, "items"), columns);
	json_decref(resp);
	return 0;
}

static int
cmd_token_ls(struct cli *c, int argc, char **argv)
{
	return cmd_simple_ls(c, "/v1/tokens", "name,role,created_ms");
}

static int
cmd_audit_ls(struct cli *c, int argc, char **argv)
{
	return cmd_simple_ls(c, "/v1/audit", "id,ts_ms,who,role,method,path,status");
}

static int
cmd_token_rm(struct cli *c, int argc, char **argv)
{
	json_t *resp = NULL;
	char *n, *path;
	int rc;

	if (argc < 2)
		return cli_fail("usage: herd token rm NAME");
	n = httpc_escape(argv[1]);
	path = xasprintf("/v1/tokens/%s", n);
	rc = cli_call(c, "DELETE", path, NULL, &resp);
	if (rc == 0)
		printf("token '%s' deleted\n", argv[1]);
	free(n);
	free(path);
	json_decref(resp);
	return rc;
}

#define LOGIN_TOKEN_MAX 1024      /* bytes of a token read from stdin or a file */

/* Reads one line, the token, from f into tok (trailing blanks cut); echo
 * off while it is typed if f is a terminal. Returns 0 or a message. */
static const char *
login_read_token(FILE *f, char *tok, size_t toksz)
{
	struct termios old, quiet;
	bool tty = isatty(fileno(f)) && tcgetattr(fileno(f), &old) == 0;
	size_t n;
	char *ok;

	if (tty) {
		fputs("token: ", stderr);
		fflush(stderr);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fileno(f), TCSAFLUSH, &quiet);
	}
	ok = fgets(tok, (int)toksz, f);
	if (tty) {
		tcsetattr(fileno(f), TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (ok == NULL)
		return "no token given";
	n = strlen(tok);
	if (n == toksz - 1 && tok[n - 1] != '\n')
		return "the token is too long";
	while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' ' ||
			 tok[n - 1] == '\t'))
		tok[--n] = '\0';
	return n ? NULL : "no token given";
}

static int
cmd_login(struct cli *c, int argc, char **argv)
{
	const char *home = getenv("HOME"), *file = cli_opt(c, "token-file"), *why;
	char dir[1024], path[1100], tok[LOGIN_TOKEN_MAX + 2];
	json_t *cfg, *resp = NULL;
	char *text;
	int rc;

	if (argc < 2 || strncmp(argv[1], "--", 2) == 0)
		return cli_fail("usage: herd login URL [TOKEN | --token-file F] (or the token on stdin)");
	if (home == NULL)
		return cli_fail("HOME is not set");
	if (argc >= 3 && strncmp(argv[2], "--", 2) != 0) {
		/* kept for scripts, but it shows in ps and in the shell's history */
		snprintf(tok, sizeof(tok), "%s", argv[2]);
	} else if (file) {
		FILE *f = fopen(file, "re");

		if (f == NULL)
			return cli_fail("cannot read '%s': %s", file, strerror(errno));
		why = login_read_token(f, tok, sizeof(tok));
		fclose(f);
		if (why)
			return cli_fail("%s in '%s'", why, file);
	} else if ((why = login_read_token(stdin, tok, sizeof(tok))) != NULL) {
		return cli_fail("%s on stdin (echo TOKEN | herd login URL, or --token-file F)", why);
	}
	c->server = argv[1];
	c->token = tok;
	if ((rc = cli_call(c, "GET", "/v1/whoami", NULL, &resp)) != 0)
		return rc;
	snprintf(dir, sizeof(dir), "%s/.config/herd", home);
	snprintf(path, sizeof(path), "%s/config", dir);
	if (mkdir_p(dir, 0700) < 0)
		return cli_fail("cannot create '%s'", dir);
	cfg = json_pack("{s:s,s:s}", "server", argv[1], "token", tok);
	if (c->cacert && *c->cacert) {   /* --cacert / HERD_CACERT: kept, absolute */
		char abs[PATH_MAX];

		json_object_set_new(cfg, "cacert",
				    json_string(realpath(c->cacert, abs) ? abs : c->cacert));
	}
	text = json_dumps(cfg, JSON_INDENT(2));
	rc = file_write_atomic(path, text, strlen(text), 0600);
	free(text);
	json_decref(cfg);
	if (rc < 0) {
		json_decref(resp);
		return cli_fail("cannot write '%s'", path);
	}
	printf("logged in to %s as %s (%s); saved in %s\n", argv[1],
	       cli_esc(json_string_value(json_object_get(resp, "name"))),
	       cli_esc(json_string_value(json_object_get(resp, "role"))), path);
	json_decref(resp);
	return 0;
}

static int
cmd_whoami(struct cli *c, int argc, char **argv)
{
	json_t *resp = NULL;
	int rc = cli_call(c, "GET", "/v1/whoami", NULL, &resp);

	if (rc == 0) {
		if (c->json)
			cli_print_json(resp);
		else
			printf("%s (%s)\n", cli_esc(json_string_value(json_object_get(resp, "name"))),
			       cli_esc(json_string_value(json_object_get(resp, "role"))));
	}
	json_decref(resp);
	return rc;
}

#define KIND_CMDS(name, plural, a_noun, nouns, columns, show, show_more)                     \
	{ name, "ls", cmd_kind_ls, 0, 0, NULL, "[--json]", "List " nouns ".", },                  \
	{ name, "show", show, 1, 1, NULL, "NAME [--json]", "Show " a_noun show_more ".", },     \
	{ name, "rm", cmd_kind_rm, 1, 1, NULL, "NAME",                                            \
	  "Delete " a_noun " (refused while something refers to it).", },

/* Every command, its options and arguments: git's commands[]. */
static const struct cmd cmds[] = {
	{ "apply", NULL, cmd_apply, 0, 0, "f|file=,dry-run", "-f FILE [--dry-run] [--json]", "Create or update what a blueprint declares." },
	{ "delete", NULL, cmd_delete, 0, 0, "f|file=,dry-run,timeout=", "-f FILE [--timeout 5m] [--dry-run]", "Remove what a blueprint declares (its hosts are terminated)." },
	{ "login", NULL, cmd_login, 1, 2, "token-file=", "URL [--token-file F] (token on stdin)", "Check and save the server and token in ~/.config/herd/config; the token is read from stdin (not echoed at a terminal) or --token-file (URL TOKEN works too, but shows in ps and shell history)." },
	{ "whoami", NULL, cmd_whoami, 0, 0, NULL, "[--json]", "Show the token's name and role." },
	{ "server", "status", cmd_server_status, 0, 0, NULL, "[--json]", "Show the servers of the store, which one leads (holds the controller lease), its epoch and the lease's age." },
	KINDS(KIND_CMDS)
	{ "account", "check", cmd_account_check, 1, 1, NULL, "NAME [--json]", "Call the account's provider: are the credentials, zone and clock right?" },
	{ "policy", "explain", cmd_policy_explain, 1, 1, NULL, "NAME [--json]", "Show a policy's latest evaluation and why it did or did not act." },
	{ "policy", "check", cmd_policy_check, 1, 1, "load=,hosts=,slots=,lasts=", "CLUSTER/GROUP [--load N [--hosts H] [--slots S] [--lasts D]] [--json]", "Predict flapping of the group's scale-out rules at its load (exit 3 flapping, 4 cannot tell)." },
	{ "policy", "simulate", cmd_policy_simulate, 1, 1, "since=,policy-file=", "NAME [--since 1h] [--policy-file F] [--json]", "Replay stored metrics through the policy and print its decisions." },
	{ "remote-write", "ls", cmd_remote_write_ls, 0, 0, NULL, "[--json]", "List the remote_write endpoints with what each sent, dropped and retried, its queue and its last error." },
	{ "alert", "ls", cmd_alert_ls, 0, 0, "group=,cluster=", "[--group CLUSTER/GROUP] [--json]", "List alerts pending or firing (severity, since, silenced, summary)." },
	{ "alert", "show", cmd_alert_show, 1, 1, "group=,cluster=", "RULE [--group CLUSTER/GROUP] [--json]", "Show a rule where it applies (built-in or declared, and where) and its instances." },
	{ "alert", "history", cmd_alert_history, 0, 0, "rule=,group=,cluster=,limit=,after=", "[--rule R] [--group CLUSTER/GROUP] [--limit N] [--after ID] [--json]", "List alert transitions (firing, resolved, reminders), oldest first." },
	{ "alert", "silence", cmd_alert_silence, 1, 1, "group=,cluster=,for=,reason=", "RULE [--group CLUSTER/GROUP | --cluster C] --for 2h --reason TEXT [--json]", "Mute a rule (in a group, a cluster or everywhere) until the silence expires." },
	{ "alert", "silences", cmd_alert_silences, 0, 0, NULL, "[--json]", "List silences in force." },
	{ "alert", "unsilence", cmd_alert_unsilence, 1, 1, NULL, "ID [--json]", "Delete a silence." },
	{ "group", "scale", cmd_group_scale, 2, 2, NULL, "NAME N [--json]", "Set a group's desired size (within min/max)." },
	{ "group", "refresh", cmd_group_refresh, 1, 1, "batch=,surge=,min-healthy=,warmup=,pause-after=,rollback,dry-run,wait,timeout=,status,pause,resume,cancel", "CLUSTER/GROUP [--batch N|P%] [--surge N] [--min-healthy P%] [--warmup 30s] [--pause-after N] [--rollback] [--dry-run] [--wait [--timeout 30m]] | --status|--pause|--resume [--wait]|--cancel [--json]", "Replace the group's hosts behind its template version, batch by batch (or show, pause, resume, cancel its refresh); --wait: follow it to the end (exit 0 if done)." },
	{ "group", "diff", cmd_group_diff, 1, 1, NULL, "CLUSTER/GROUP [--json]", "List the hosts behind the group's template version and what changed." },
	{ "host", "ls", cmd_host_ls, 0, 0, "group=,cluster=,all", "[--group G] [--cluster C] [--all] [--json]", "List hosts (--all: with terminated ones)." },
	{ "host", "show", cmd_host_show, 1, 1, NULL, "NAME [--json]", "Show a host: state, address, timings, init script results." },
	{ "host", "terminate", cmd_host_action, 1, 1, "replace", "NAME [--replace] [--json]", "Terminate a host; the group shrinks by one unless --replace." },
	{ "host", "protect", cmd_host_action, 1, 1, NULL, "NAME [--json]", "Never choose this host for scale-in." },
	{ "host", "unprotect", cmd_host_action, 1, 1, NULL, "NAME [--json]", "Allow scale-in to choose this host again." },
	{ "activity", "ls", cmd_activity_ls, 0, 0, "group=,cluster=,limit=", "[--group G] [--cluster C] [--limit N] [--json]", "List recorded decisions and actions." },
	{ "token", "create", cmd_token_create, 0, 0, "role=,name=", "--role viewer|operator|admin [--name N] [--json]", "Create an API token (printed once)." },
	{ "token", "ls", cmd_token_ls, 0, 0, NULL, "[--json]", "List tokens (never their secrets)." },
	{ "token", "rm", cmd_token_rm, 1, 1, NULL, "NAME", "Delete a token." },
	{ "audit", "ls", cmd_audit_ls, 0, 0, NULL, "[--json]", "List the audit trail (admin)." },
	{ "metrics", "ls", cmd_metrics_ls, 0, 0, "host=,group=,cluster=", "[--host H | --group G] [--cluster C] [--json]", "List metric names and their series." },
	{ "metrics", "query", cmd_metrics_query, 1, 1, "host=,group=,cluster=,agg=,since=,step=", "METRIC (--host H | --group G --agg avg|min|max|sum|count) [--since 10m] [--step 10s] [--json]", "A host's samples, or a group aggregate at aligned steps, with a sparkline." },
	{ "top", NULL, cmd_top, 0, 0, "group=,cluster=,once", "[--group G] [--cluster C] [--once] [--json]", "Live table of hosts: CPU, memory, load and monitors (every 2 s); --json: one frame." },
	{ "script", "run", cmd_script_run, 1, 1, "host=,group=,cluster=,env=,timeout=,parallel=,wait,batch=,drain,health-gate=,stop-on-failure", "NAME --host H|--group G|--cluster C [--env K=V]... [--timeout D] [--parallel N] [--batch N|P% [--drain] [--health-gate D] [--stop-on-failure]] [--wait] [--json]", "Run a script on hosts; --batch: batch by batch (rolling; --drain: out of the LB meanwhile); --wait: to the end (exit 0 if all succeeded)." },
	{ "run", "ls", cmd_run_ls, 0, 0, "script=,host=,limit=", "[--script S] [--host H] [--limit N] [--json]", "List script runs, newest first (--host: those that included H)." },
	{ "run", "show", cmd_run_show, 1, 1, NULL, "ID [--json]", "Show a run and its outcome on each host." },
	{ "run", "logs", cmd_run_logs, 1, 1, "host=,follow", "ID [--host H] [--follow] [--json]", "Print a run's output; --follow: as the hosts produce it." },
	{ "bench", "agents", cmd_bench_agents, 0, 0, "configs=,count=,interval=,duration=,token-file=,cluster=,group=,aligned,step-metric=,step-value=,step-every=,step-agent=,edge,push-format=", "--configs F --count N [--interval 10s] [--aligned] [--push-format auto|json|protobuf] [--duration 60s] [--token-file F --cluster C --group G] [--step-metric NAME --step-value V --step-every D [--step-agent first|last] [--edge]]", "Simulate N agents from one process (join with the agent configs of F, one JSON a line; heartbeats, pushes, long-polls) and print push latency per interval; --aligned pushes at multiples of the interval as the agent; --step-metric: the step agent (--step-agent: the first config, or the last) pushes NAME=V every other D (the others 0), each change printed with its send time; --edge: the step agent pushes at once when its level crosses a threshold of its agent config, as the agent; pushes are protobuf when the server's agent config offers it, as the agent (--push-format json|protobuf forces one)." },
	{ "run", "cancel", cmd_run_cancel, 1, 1, NULL, "ID [--json]", "Cancel a run: running scripts are killed, the rest not started." },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: herd [--server URL] [--token TOKEN] [--cacert FILE] [-k|--insecure] [--json]\n"
		   "            <command> [args]\n\n"
		   "  herd server --data DIR [--listen ADDR:PORT]   run the server\n"
		   "  herd agent --config FILE                      run a host's agent\n"
		   "  herd meta self|group|host|cluster ...         metadata, on a host\n"
		   "  herd version\n\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char line[128];
		snprintf(line, sizeof(line), "%s%s%s %s", cmds[i].noun, cmds[i].verb ? " " : "",
			 cmds[i].verb ? cmds[i].verb : "", cmds[i].usage);
		fprintf(f, "  herd %-55s %s\n", line, cmds[i].help);
	}
}

int
cli_main(int argc, char **argv)
{
	static const struct cmd global = { "[--server URL] [--token TOKEN] [--cacert FILE] [-k] [--json]", NULL, NULL, 0, 0,
					   NULL, "<command> [args]", "" };
	struct cli c = { 0 };
	struct optset s;
	char **args, why[256], names[64];
	int n, ch, rc = 2;

	/* Global options before the command; the command's parser takes them
	 * anywhere after it too. "+": stop at the command. */
	optset_init(&s, names, sizeof(names), "+:", NULL);
	opterr = 0;
	optind = 0;
	while ((ch = getopt_long(argc, argv, s.shorts, s.lo, NULL)) != -1) {
		const struct option *o = optset_find(&s, ch);

		if (ch == '?' || ch == ':') {
			optset_why(&s, ch, argv, why, sizeof(why));
			cli_fail("%s", why);
			cmd_usage(stderr, &global);
			return 2;
		}
		if (strcmp(o->name, "help") == 0) {
			usage(stdout);
			return 0;
		}
		cli_set(&c, o, optarg);
	}
	n = argc - optind;
	args = xcalloc((size_t)n + 1, sizeof(char *));
	memcpy(args, argv + optind, (size_t)n * sizeof(char *));
	if (n == 0 || strcmp(args[0], "help") == 0) {
		usage(n == 0 ? stderr : stdout);
		free(args);
		return n == 0 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const struct cmd *cmd = &cmds[i];
		int skip, cargc;

		if (strcmp(cmd->noun, args[0]) != 0)
			continue;
		if (cmd->verb && (n < 2 || strcmp(cmd->verb, args[1]) != 0))
			continue;
		skip = cmd->verb ? 1 : 0;
		cargc = n - skip;
		rc = cli_parse(&c, cmd, &cargc, args + skip);
		if (rc < 0)
			rc = cmd->fn(&c, cargc, args + skip);
		if (c.connected)
			httpc_release(&c.http);
		free(args);
		return rc;
	}
	if (n >= 2)
		cli_fail("unknown command '%s %s' (see herd --help)", cli_esc(args[0]), cli_esc(args[1]));
	else
		cli_fail("unknown command '%s' (see herd --help)", cli_esc(args[0]));
	free(args);
	return 2;
}
