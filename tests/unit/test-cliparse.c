/* test-cliparse.c - cli_parse(): the CLI's one option parser (getopt_long
 * from a command's declared options). Options before, between and after
 * the arguments; "--opt=V"; repeated options; "--" ending options; and the
 * refusals that exit 2: an undeclared option, a missing value, a value
 * given to a flag, an extra or a missing argument. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/cli.h"

static int
noop(struct cli *c, int argc, char **argv)
{
	return 0;
}

static const struct cmd run_cmd = { "script", "run", noop, 1, 1, "host=,group=,env=,wait,f|file=",
				    "NAME --group G", "Run." };

static char line_buf[512];
static char *argv[32];

/* Parses the space-separated words of line (the verb first) into argv;
 * *argc gets the positional count + 1. */
static int
parse(struct cli *c, int *argc, const char *line)
{
	char *save = NULL, *tok;
	int n = 0;

	snprintf(line_buf, sizeof(line_buf), "%s", line);
	for (tok = strtok_r(line_buf, " ", &save); tok && n < 31; tok = strtok_r(NULL, " ", &save))
		argv[n++] = tok;
	argv[n] = NULL;
	*argc = n;
	memset(c, 0, sizeof(*c));
	return cli_parse(c, &run_cmd, argc, argv);
}

static void
test_options_anywhere(void **state)
{
	struct cli c;
	int argc;

	assert_int_equal(parse(&c, &argc, "run --group a/b who.sh --env=K=V --wait --env X=1 --json -f bp.yaml"), -1);
	assert_int_equal(argc, 2);
	assert_string_equal(argv[1], "who.sh");
	assert_string_equal(cli_opt(&c, "group"), "a/b");
	assert_string_equal(cli_opt(&c, "file"), "bp.yaml");
	assert_true(cli_flag(&c, "wait"));
	assert_false(cli_flag(&c, "host"));
	assert_null(cli_opt(&c, "host"));
	assert_true(c.json);
	assert_string_equal(cli_opt_nth(&c, "env", 0), "K=V");
	assert_string_equal(cli_opt_nth(&c, "env", 1), "X=1");
	assert_null(cli_opt_nth(&c, "env", 2));
}

static void
test_double_dash_ends_options(void **state)
{
	struct cli c;
	int argc;

	assert_int_equal(parse(&c, &argc, "run --wait -- --group"), -1);
	assert_int_equal(argc, 2);
	assert_string_equal(argv[1], "--group");
	assert_null(cli_opt(&c, "group"));
}

static void
test_refusals_exit_2(void **state)
{
	struct cli c;
	int argc;

	assert_int_equal(parse(&c, &argc, "run x --grop g"), 2);
	assert_int_equal(parse(&c, &argc, "run x --group"), 2);
	assert_int_equal(parse(&c, &argc, "run x --wait=yes"), 2);
	assert_int_equal(parse(&c, &argc, "run x y"), 2);
	assert_int_equal(parse(&c, &argc, "run --wait"), 2);
	assert_int_equal(parse(&c, &argc, "run x -q"), 2);
}

static void
test_help(void **state)
{
	struct cli c;
	int argc;

	assert_int_equal(parse(&c, &argc, "run -h"), 0);
	assert_int_equal(parse(&c, &argc, "run x --help"), 0);
	assert_int_equal(parse(&c, &argc, "run --bogus"), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options_anywhere),
		cmocka_unit_test(test_double_dash_ends_options),
		cmocka_unit_test(test_refusals_exit_2),
		cmocka_unit_test(test_help),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
