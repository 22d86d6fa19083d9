/* test-eip.c - a network's public endpoint as herd reads it: the
 * port_forwards parser (prov_forwards_from_json: defaults, the cidr check,
 * duplicates, errors naming the item's field) and the network kind's
 * checks of vxnet, router, eip and port_forwards (errors naming the field
 * with the blueprint's path). The driver's calls are tested against the
 * fake QingCloud (e2e 0285). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "model/kind.h"
#include "prov/prov.h"

#define CIDR "198.18.10.0/24"

static int
parse(const char *text, struct prov_forward *out, size_t *n, struct herr *err)
{
	json_t *list = json_loads(text, 0, NULL);
	int rc;

	assert_non_null(list);
	rc = prov_forwards_from_json(list, CIDR, out, n, err);
	json_decref(list);
	return rc;
}

static void
test_forwards_defaults(void **state)
{
	struct prov_forward f[PROV_FORWARDS_MAX];
	struct herr err = HERR_INIT;
	size_t n = 99;

	assert_int_equal(parse("[{\"port\": 8080, \"to\": \"198.18.10.250\"},"
			       " {\"port\": 2222, \"to\": \"198.18.10.5\", \"to_port\": 22,"
			       " \"protocol\": \"udp\"}]",
			       f, &n, &err),
			 0);
	assert_int_equal(n, 2);
	assert_int_equal(f[0].port, 8080);
	assert_int_equal(f[0].to_port, 8080); /* default: the same port */
	assert_string_equal(f[0].to, "198.18.10.250");
	assert_string_equal(f[0].protocol, "tcp");
	assert_int_equal(f[1].to_port, 22);
	assert_string_equal(f[1].protocol, "udp");
	/* absent: none */
	assert_int_equal(prov_forwards_from_json(NULL, CIDR, f, &n, &err), 0);
	assert_int_equal(n, 0);
	/* the same port once per protocol: tcp and udp may share it */
	assert_int_equal(parse("[{\"port\": 53, \"to\": \"198.18.10.5\"},"
			       " {\"port\": 53, \"to\": \"198.18.10.5\", \"protocol\": \"udp\"}]",
			       f, &n, &err),
			 0);
	assert_int_equal(n, 2);
}

static void
test_forwards_errors_name_the_field(void **state)
{
	static const struct {
		const char *text, *field;
	} bad[] = {
		{ "{\"port\": 1}", "port_forwards" },
		{ "[1]", "port_forwards[0]" },
		{ "[{\"to\": \"198.18.10.5\"}]", "port_forwards[0].port" },
		{ "[{\"port\": 65536, \"to\": \"198.18.10.5\"}]", "port_forwards[0].port" },
		{ "[{\"port\": \"80\", \"to\": \"198.18.10.5\"}]", "port_forwards[0].port" },
		{ "[{\"port\": 80, \"to\": \"198.18.10.5\", \"to_port\": 0}]",
		  "port_forwards[0].to_port" },
		{ "[{\"port\": 80}]", "port_forwards[0].to" },
		{ "[{\"port\": 80, \"to\": \"10.1.2.3\"}]", "port_forwards[0].to" },
		{ "[{\"port\": 80, \"to\": \"198.18.10.0\"}]",
		  "port_forwards[0].to" }, /* network */
		{ "[{\"port\": 80, \"to\": \"198.18.10.1\"}]",
		  "port_forwards[0].to" }, /* gateway */
		{ "[{\"port\": 80, \"to\": \"198.18.10.255\"}]",
		  "port_forwards[0].to" }, /* broadcast */
		{ "[{\"port\": 80, \"to\": \"198.18.10.05\"}]", "port_forwards[0].to" },
		{ "[{\"port\": 80, \"to\": \"198.18.10.5\", \"protocol\": \"sctp\"}]",
		  "port_forwards[0].protocol" },
		{ "[{\"port\": 80, \"to\": \"198.18.10.5\", \"via\": 1}]", "port_forwards[0].via" },
		{ "[{\"port\": 80, \"to\": \"198.18.10.5\"}, {\"port\": 80, \"to\": \"198.18.10.6\"}]",
		  "port_forwards[1].port" },
	};
	struct prov_forward f[PROV_FORWARDS_MAX];
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct herr err = HERR_INIT;

		assert_int_equal(parse(bad[i].text, f, &n, &err), HERR_INVALID);
		if (strcmp(err.field, bad[i].field) != 0)
			fail_msg("%s: field '%s', want '%s' (%s)", bad[i].text, err.field,
				 bad[i].field, err.msg);
	}
}

static void
test_forwards_limit(void **state)
{
	struct prov_forward f[PROV_FORWARDS_MAX];
	struct herr err = HERR_INIT;
	json_t *list = json_array();
	size_t n;

	for (int i = 0; i <= PROV_FORWARDS_MAX; i++)
		json_array_append_new(list, json_pack("{s:i, s:s}", "port", 1000 + i, "to",
						      "198.18.10.5"));
	assert_int_equal(prov_forwards_from_json(list, CIDR, f, &n, &err), HERR_INVALID);
	assert_string_equal(err.field, "port_forwards");
	json_array_remove(list, 0);
	herr_clear(&err);
	assert_int_equal(prov_forwards_from_json(list, CIDR, f, &n, &err), 0);
	assert_int_equal(n, PROV_FORWARDS_MAX);
	json_decref(list);
}

/* kind_validate of a network: its result and err.field */
static int
validate(const char *extra, struct herr *err)
{
	char text[1024];
	json_t *o;
	int rc;

	snprintf(text, sizeof(text), "{\"account\": \"qc\", \"cidr\": \"%s\"%s}", CIDR, extra);
	o = json_loads(text, 0, NULL);
	assert_non_null(o);
	rc = kind_validate(&kind_network, o, NULL, "networks[2]", err);
	json_decref(o);
	return rc;
}

static void
test_kind_network(void **state)
{
	static const struct {
		const char *extra, *field;
	} bad[] = {
		{ ", \"vxnet\": \"vx-1\"", "networks[2].vxnet" },
		{ ", \"vxnet\": \"vxnet-\"", "networks[2].vxnet" },
		{ ", \"router\": \"vxnet-abc\"", "networks[2].router" },
		{ ", \"router\": \"rtr-ABC\"", "networks[2].router" },
		{ ", \"eip\": \"yes\"", "networks[2].eip" },
		{ ", \"eip\": 1", "networks[2].eip" },
		{ ", \"eip\": \"auto\", \"port_forwards\": {}", "networks[2].port_forwards" },
		{ ", \"eip\": \"auto\", \"port_forwards\": [{\"port\": 80, \"to\": \"198.18.11.5\"}]",
		  "networks[2].port_forwards[0].to" },
		{ ", \"port_forwards\": [{\"port\": 80, \"to\": \"198.18.10.5\"}]",
		  "networks[2].eip" },
	};
	struct herr err = HERR_INIT;

	assert_int_equal(validate("", &err), 0);
	assert_int_equal(validate(", \"vxnet\": \"vxnet-abc123\", \"router\": \"rtr-x1\","
				  " \"eip\": \"eip-12ab\"",
				  &err),
			 0);
	assert_int_equal(
		validate(", \"eip\": \"auto\", \"port_forwards\":"
			 " [{\"port\": 8080, \"to\": \"198.18.10.250\", \"to_port\": 8080}]",
			 &err),
		0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		herr_clear(&err);
		assert_int_equal(validate(bad[i].extra, &err), HERR_INVALID);
		if (strcmp(err.field, bad[i].field) != 0)
			fail_msg("%s: field '%s', want '%s' (%s)", bad[i].extra, err.field,
				 bad[i].field, err.msg);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forwards_defaults),
		cmocka_unit_test(test_forwards_errors_name_the_field),
		cmocka_unit_test(test_forwards_limit),
		cmocka_unit_test(test_kind_network),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
