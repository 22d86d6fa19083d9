/* cli.h - what the admin CLI's command files share: the connection to the
 * server, global options, output helpers (tables and JSON). */
#ifndef HERD_CLI_H
#define HERD_CLI_H

#include <stdbool.h>

#include <jansson.h>

#include "herr.h"
#include "httpc.h"

#define CLI_OPTS_MAX 64         /* options one command line may give */

/* An option given on the command line, after cli_parse(). */
struct cli_optval {
	const char *name;       /* long name, without "--" */
	const char *value;      /* NULL for a flag */
};

struct cli {
	const char *server;   /* URL */
	const char *token;
	const char *cacert;   /* --cacert / HERD_CACERT: PEM CAs trusted instead of the system's */
	bool insecure;        /* -k / --insecure: no certificate check */
	bool json;            /* --json */
	struct httpc http;
	bool connected;
	struct cli_optval opts[CLI_OPTS_MAX];  /* the command's options, in order */
	int nopts;
	char optnames[512];   /* the names opts[] point to */
};

/* One command of the table in cmd.c. Options are declared, not scanned
 * for: cli_parse() builds a getopt_long table from `opts`, so an option a
 * command does not declare is refused (exit 2, with `usage`). */
struct cmd {
	const char *noun;
	const char *verb;
	int (*fn)(struct cli *c, int argc, char **argv);
	int minpos, maxpos;  /* positional arguments (NAME, ID, ...) */
	const char *opts;    /* "group=,all,f|file=": '=' takes a value, 'x|' a short form */
	const char *usage;   /* "NAME [--json]" */
	const char *help;    /* one line */
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
/* Parses argv (argv[0] is the verb, or the noun of a one-word command)
 * with getopt_long against cmd->opts plus --json, --server, --token and
 * -h/--help: options may come anywhere, "--" ends them. On return argv[1..]
 * are the positional arguments in order and the options are in c->opts.
 * Returns -1 to go on, 0 after printing help, or 2 after printing
 * "herd: unknown option '--x'" (or a missing value, an extra or missing
 * argument) and the usage line on stderr. */
int cli_parse(struct cli *c, const struct cmd *cmd, int *argc, char **argv);
/* The value of option NAME (without "--"; the last one given), or NULL. */
const char *cli_opt(const struct cli *c, const char *name);
/* The value of the i-th NAME given (for repeated options), or NULL. */
const char *cli_opt_nth(const struct cli *c, const char *name, int i);
/* Whether flag NAME (without "--") was given. */
bool cli_flag(const struct cli *c, const char *name);
/* Prints the error and returns 1. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Whether PLURAL/NAME exists (NAME may be CLUSTER/NAME; cluster, if not
 * NULL, scopes it): 0 if it does; otherwise prints the server's answer
 * ("no group named 'x'") and returns 1. For commands whose answer is empty
 * when a name is mistyped: an empty answer and an unknown name are told
 * apart. */
int cli_must_exist(struct cli *c, const char *plural, const char *cluster, const char *name);
/* cli_must_exist() for the most specific of host, group (each NAME or
 * CLUSTER/NAME) and cluster given (NULL: not given); 0 if none is. */
int cli_names_exist(struct cli *c, const char *host, const char *group, const char *cluster);

int cmd_apply(struct cli *c, int argc, char **argv);
int cmd_delete(struct cli *c, int argc, char **argv);
int cmd_policy_explain(struct cli *c, int argc, char **argv);
int cmd_alert_ls(struct cli *c, int argc, char **argv);
int cmd_alert_show(struct cli *c, int argc, char **argv);
int cmd_alert_history(struct cli *c, int argc, char **argv);
int cmd_alert_silence(struct cli *c, int argc, char **argv);
int cmd_alert_silences(struct cli *c, int argc, char **argv);
int cmd_alert_unsilence(struct cli *c, int argc, char **argv);
int cmd_policy_simulate(struct cli *c, int argc, char **argv);
int cmd_policy_check(struct cli *c, int argc, char **argv);
/* cmd-remote-write.c */
int cmd_remote_write_ls(struct cli *c, int argc, char **argv);
/* cmd-run.c */
int cmd_script_run(struct cli *c, int argc, char **argv);
int cmd_run_ls(struct cli *c, int argc, char **argv);
int cmd_run_show(struct cli *c, int argc, char **argv);
int cmd_run_logs(struct cli *c, int argc, char **argv);
int cmd_run_cancel(struct cli *c, int argc, char **argv);
int cmd_lb_show(struct cli *c, int argc, char **argv);
/* cmd-bench.c */
int cmd_bench_agents(struct cli *c, int argc, char **argv);
/* cmd-account.c */
int cmd_account_check(struct cli *c, int argc, char **argv);
int cmd_server_status(struct cli *c, int argc, char **argv);

/* cmd-metrics.c */
int cmd_metrics_ls(struct cli *c, int argc, char **argv);
int cmd_metrics_query(struct cli *c, int argc, char **argv);
int cmd_top(struct cli *c, int argc, char **argv);

#endif
