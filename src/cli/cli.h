/* cli.h - what the admin CLI's command files share: the connection to the
 * server, global options, output helpers (tables and JSON). */
#ifndef HERD_CLI_H
#define HERD_CLI_H

#include <stdbool.h>

#include <jansson.h>

#include "herr.h"
#include "httpc.h"

struct cli {
	const char *server;   /* URL */
	const char *token;
	bool json;            /* --json */
	struct httpc http;
	bool connected;
};

struct cmd {
	const char *noun;
	const char *verb;
	int (*fn)(struct cli *c, int argc, char **argv);
	const char *usage;   /* "NAME [--json]" */
	const char *help;    /* one line */
	const void *arg;     /* kind descriptor for generic commands */
};

/* Connects lazily; returns NULL (after printing why) if no server/token. */
struct httpc *cli_http(struct cli *c);
/* Calls the API; on failure prints "herd: message" to stderr and returns
 * non-zero (the exit code). */
int cli_call(struct cli *c, const char *method, const char *path, json_t *body, json_t **resp);
/* Prints rows (array of objects) as a table with the given comma-separated
 * columns (dotted paths allowed). */
void cli_table(json_t *rows, const char *columns);
/* Prints an object as "key: value" lines. */
void cli_kv(json_t *obj);
void cli_print_json(json_t *v);
/* Text from the server made safe for a terminal: control characters (C0,
 * DEL, and C1 as UTF-8 U+0080-U+009F) become \n, \t, \r, \x1b or \u009b,
 * bytes that are not UTF-8 \xNN; characters in `keep` (e.g. "\n\t" for
 * output printed line by line; NULL: none) stay. So a host cannot clear,
 * retitle or rewrite the operator's terminal. Owned. */
char *cli_safe(const char *s, const char *keep);
/* cli_safe(s, NULL) for a printf argument: the result lives until 16 more
 * calls (the CLI is single-threaded). NULL gives "-". */
const char *cli_esc(const char *s);
/* The API path of a scoped object: /v1/PLURAL/NAME SUFFIX, NAME given as
 * NAME, CLUSTER/NAME or CLUSTER/GROUP/NAME (then ?cluster=&group=). Owned. */
char *cli_scoped_path(const char *plural, const char *name, const char *suffix);
/* The value of option NAME in argv ("--name V" or "--name=V"), or NULL. */
const char *cli_opt(int argc, char **argv, const char *name);
/* Whether flag NAME is in argv. */
bool cli_flag(int argc, char **argv, const char *name);
/* Prints the error and returns 1. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Returns true if argv has --help/-h (and prints usage). */
bool cli_wants_help(const struct cmd *cmd, int argc, char **argv);

int cmd_apply(struct cli *c, int argc, char **argv);
int cmd_delete(struct cli *c, int argc, char **argv);
int cmd_policy_explain(struct cli *c, int argc, char **argv);
int cmd_policy_simulate(struct cli *c, int argc, char **argv);
/* cmd-run.c */
int cmd_script_run(struct cli *c, int argc, char **argv);
int cmd_run_ls(struct cli *c, int argc, char **argv);
int cmd_run_show(struct cli *c, int argc, char **argv);
int cmd_run_logs(struct cli *c, int argc, char **argv);
int cmd_run_cancel(struct cli *c, int argc, char **argv);
int cmd_lb_show(struct cli *c, int argc, char **argv);

/* cmd-metrics.c */
int cmd_metrics_ls(struct cli *c, int argc, char **argv);
int cmd_metrics_query(struct cli *c, int argc, char **argv);
int cmd_top(struct cli *c, int argc, char **argv);

#endif
