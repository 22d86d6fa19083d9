/* test-router.c - the route table's matching (api/router.c): ":x" takes one
 * segment, a trailing "*" the rest of the path (the console's files), a
 * method mismatch is told apart from no match. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/api.h"

static const struct route *
m(const char *method, const char *path, char **params, int *n, bool *mismatch)
{
	return route_match(method, path, params, n, mismatch);
}

static void
release(char **params, int n)
{
	for (int i = 0; i < n; i++)
		free(params[i]);
}

static void
test_star_takes_the_rest(void **state)
{
	char *p[REQ_MAX_PARAMS];
	int n = 0;
	bool mm;
	const struct route *r;

	r = m("GET", "/ui/js/pages/group.js", p, &n, &mm);
	assert_non_null(r);
	assert_ptr_equal(r->fn, api_web_file);
	assert_int_equal(n, 1);
	assert_string_equal(p[0], "js/pages/group.js");
	release(p, n);

	r = m("GET", "/ui/", p, &n, &mm);
	assert_non_null(r);
	assert_ptr_equal(r->fn, api_web_file);
	assert_int_equal(n, 1);
	assert_string_equal(p[0], "");
	release(p, n);

	/* "/ui" itself is not under "/ui/" */
	n = 0;
	assert_null(m("GET", "/ui", p, &n, &mm));
	assert_false(mm);
	assert_int_equal(n, 0);
}

static void
test_root_and_methods(void **state)
{
	char *p[REQ_MAX_PARAMS];
	int n = 0;
	bool mm;
	const struct route *r;

	r = m("GET", "/", p, &n, &mm);
	assert_non_null(r);
	assert_ptr_equal(r->fn, api_web_index);
	assert_int_equal(n, 0);
	r = m("HEAD", "/ui/index.html", p, &n, &mm);
	assert_non_null(r);
	release(p, n);
	n = 0;
	assert_null(m("POST", "/ui/index.html", p, &n, &mm));
	assert_true(mm);
	assert_int_equal(n, 0);
}

static void
test_segments_still_one(void **state)
{
	char *p[REQ_MAX_PARAMS];
	int n = 0;
	bool mm;
	const struct route *r;

	r = m("POST", "/v1/groups/node/scale", p, &n, &mm);
	assert_non_null(r);
	assert_ptr_equal(r->fn, api_group_scale);
	assert_int_equal(n, 1);
	assert_string_equal(p[0], "node");
	release(p, n);
	n = 0;
	assert_null(m("POST", "/v1/groups/a/b/scale", p, &n, &mm));
	assert_int_equal(n, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_star_takes_the_rest),
		cmocka_unit_test(test_root_and_methods),
		cmocka_unit_test(test_segments_still_one),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
