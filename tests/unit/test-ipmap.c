/* test-ipmap.c - the controller's per-pass map of a network's addresses in
 * use (ctl/ipmap.c): the lowest free address, never the network address,
 * the gateway or the broadcast address; marks outside the network or not
 * addresses ignored; a full network says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ctl/ipmap.h"

#define NET(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static void
test_lowest_free(void **state)
{
	struct ipmap m;
	char ip[32];

	ipmap_init(&m, "n", NET(198, 18, 7, 0), 0xffffff00u);
	assert_int_equal(ipmap_take(&m, ip, sizeof(ip)), 0);
	assert_string_equal(ip, "198.18.7.2");   /* .0 network, .1 gateway */
	ipmap_mark(&m, "198.18.7.3");
	ipmap_mark(&m, "198.18.7.5");
	assert_int_equal(ipmap_take(&m, ip, sizeof(ip)), 0);
	assert_string_equal(ip, "198.18.7.4");
	assert_int_equal(ipmap_take(&m, ip, sizeof(ip)), 0);
	assert_string_equal(ip, "198.18.7.6");
	ipmap_free(&m);
}

static void
test_marks_outside_ignored(void **state)
{
	struct ipmap m;
	char ip[32];

	ipmap_init(&m, "n", NET(198, 19, 1, 0), 0xffffff00u);
	ipmap_mark(&m, "198.19.2.2");   /* another network */
	ipmap_mark(&m, "not an address");
	ipmap_mark(&m, "");
	ipmap_mark(&m, NULL);
	assert_int_equal(ipmap_take(&m, ip, sizeof(ip)), 0);
	assert_string_equal(ip, "198.19.1.2");
	ipmap_free(&m);
}

static void
test_full(void **state)
{
	struct ipmap m;
	char ip[32];

	/* a /30: .0 network, .1 gateway, .3 broadcast: .2 only */
	ipmap_init(&m, "n", NET(198, 18, 0, 4), 0xfffffffcu);
	assert_int_equal(ipmap_take(&m, ip, sizeof(ip)), 0);
	assert_string_equal(ip, "198.18.0.6");
	assert_int_equal(ipmap_take(&m, ip, sizeof(ip)), -1);
	ipmap_free(&m);
	/* a /24 with every host address in use */
	ipmap_init(&m, "n", NET(198, 18, 9, 0), 0xffffff00u);
	for (int i = 2; i < 255; i++) {
		snprintf(ip, sizeof(ip), "198.18.9.%d", i);
		ipmap_mark(&m, ip);
	}
	assert_int_equal(ipmap_take(&m, ip, sizeof(ip)), -1);
	ipmap_free(&m);
}

static void
test_thousand_in_a_16(void **state)
{
	struct ipmap m;
	char ip[32];

	/* 1,000 hosts already there, then 1,000 more taken one by one: each is
	 * the next address, none handed out twice */
	ipmap_init(&m, "n", NET(198, 18, 0, 0), 0xffff0000u);
	for (int i = 0; i < 1000; i++) {
		snprintf(ip, sizeof(ip), "198.18.%d.%d", (i + 2) / 256, (i + 2) % 256);
		ipmap_mark(&m, ip);
	}
	for (int i = 1000; i < 2000; i++) {
		char want[32];

		snprintf(want, sizeof(want), "198.18.%d.%d", (i + 2) / 256, (i + 2) % 256);
		assert_int_equal(ipmap_take(&m, ip, sizeof(ip)), 0);
		assert_string_equal(ip, want);
	}
	ipmap_free(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lowest_free),
		cmocka_unit_test(test_marks_outside_ignored),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_thousand_in_a_16),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
