/* test-sweep.c - the report of herd server --teardown without the store
 * (ctl/sweep.c, ctl_sweep_report): a driver that removed all it found is
 * done, one that could not remove something fails the teardown, and one
 * that cannot look is said to have left its hosts, never to be done. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ctl/ctl.h"

static void
test_all_removed(void **state)
{
	struct ctl_sweep r[2] = {
		{ .driver = "local", .can = true, .got = { .hosts = 2, .networks = 1 } },
		{ .driver = "qingcloud", .can = false },
	};
	char buf[2048];

	assert_int_equal(ctl_sweep_report(r, 2, buf, sizeof(buf)), 3);
	assert_non_null(strstr(buf, "provider 'local': removed 2 host(s) and 1 network(s)\n"));
	assert_non_null(strstr(buf, "provider 'qingcloud': its hosts and networks cannot be found"
				    " without the store"));
	assert_non_null(strstr(buf, "none was looked for or removed"));
	assert_null(strstr(strstr(buf, "'qingcloud'"), "removed 0"));
}

static void
test_something_left_fails(void **state)
{
	struct ctl_sweep r[1] = {
		{ .driver = "local", .can = true, .rc = -110,
		  .msg = "1 process(es) of host 'ab12cd34' still alive 2000 ms after SIGKILL",
		  .got = { .hosts = 1, .hosts_left = 1, .networks = 0, .networks_left = 1 } },
	};
	char buf[2048];

	assert_int_equal(ctl_sweep_report(r, 1, buf, sizeof(buf)), 1);
	assert_non_null(strstr(buf, "removed 1 host(s) and 0 network(s); could not remove 1 host(s)"
				    " and 1 network(s): 1 process(es) of host 'ab12cd34'"));
	/* an error without a count left still fails */
	r[0].got = (struct prov_sweep){ 0 };
	assert_int_equal(ctl_sweep_report(r, 1, buf, sizeof(buf)), 1);
}

static void
test_cut_to_fit(void **state)
{
	struct ctl_sweep r[2] = {
		{ .driver = "local", .can = true, .got = { .hosts = 3 } },
		{ .driver = "qingcloud", .can = false },
	};
	char buf[40];

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(ctl_sweep_report(r, 2, buf, sizeof(buf)), 3);
	assert_int_equal(strlen(buf), sizeof(buf) - 1);
	assert_int_equal(ctl_sweep_report(r, 2, buf, 0), 3);
	/* only drivers that looked and removed everything: done */
	assert_int_equal(ctl_sweep_report(r, 1, buf, sizeof(buf)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_removed),
		cmocka_unit_test(test_something_left_fails),
		cmocka_unit_test(test_cut_to_fit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
