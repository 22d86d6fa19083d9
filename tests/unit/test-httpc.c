/* test-httpc.c - the CLI's URL escaping (httpc_escape, curl_easy_escape
 * underneath): names and query values keep only RFC 3986's unreserved
 * characters, everything else becomes %XX with upper-case hex, byte by byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "httpc.h"

static void
esc_is(const char *in, const char *want)
{
	char *got = httpc_escape(in);

	assert_string_equal(got, want);
	free(got);
}

static void
test_escape(void **state)
{
	esc_is("", "");
	esc_is("node-1", "node-1");
	esc_is("AZaz09-._~", "AZaz09-._~");
	esc_is("a b/c?d&e=f#g%h+i", "a%20b%2Fc%3Fd%26e%3Df%23g%25h%2Bi");
	esc_is("demo/node", "demo%2Fnode");
	esc_is("\xc3\xa9\x01\x7f\xff", "%C3%A9%01%7F%FF");
	esc_is("..", "..");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
