/* test-clisafe.c - cli_safe(): what the CLI prints of server text cannot
 * drive the terminal (C0, DEL, C1 as UTF-8, bytes that are not UTF-8 all
 * become escapes), while ordinary UTF-8 text prints as it is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/cli.h"

static void
check(const char *in, const char *keep, const char *want)
{
	char *got = cli_safe(in, keep);

	assert_string_equal(got, want);
	free(got);
}

static void
test_escapes(void **state)
{
	(void)state;
	check("boom\x1b[2J\nFAKE", NULL, "boom\\x1b[2J\\nFAKE");
	check("a\tb\rc\x7f\x01", NULL, "a\\tb\\rc\\x7f\\x01");
	check("\x1b]0;title\x07", NULL, "\\x1b]0;title\\x07");
	/* C1 controls as UTF-8 (CSI is U+009B) and the stray bytes themselves */
	check("x\xc2\x9b" "31m", NULL, "x\\u009b31m");
	check("\xc2\x80\xc2\x9f", NULL, "\\u0080\\u009f");
	check("\x9b" "31m", NULL, "\\x9b31m");
	/* overlong, truncated and surrogate sequences are not UTF-8 */
	check("\xc0\x9b", NULL, "\\xc0\\x9b");
	check("\xe2\x82", NULL, "\\xe2\\x82");
	check("\xed\xa0\x80", NULL, "\\xed\\xa0\\x80");
	/* `keep` lets output keep its lines */
	check("l1\n\tl2\x1b", "\n\t", "l1\n\tl2\\x1b");
	check(NULL, NULL, "");
}

static void
test_plain_text_unchanged(void **state)
{
	(void)state;
	check("web-1 ready 198.18.0.2", NULL, "web-1 ready 198.18.0.2");
	check("caf\xc3\xa9 \xc2\xa0 \xe2\x82\xac \xf0\x9f\x90\x91", NULL,
	      "caf\xc3\xa9 \xc2\xa0 \xe2\x82\xac \xf0\x9f\x90\x91");
	check("C:\\path", NULL, "C:\\path");
	assert_string_equal(cli_esc(NULL), "-");
	assert_string_equal(cli_esc("a\nb"), "a\\nb");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_plain_text_unchanged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
