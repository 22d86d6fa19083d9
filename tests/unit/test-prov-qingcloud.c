/* test-prov-qingcloud.c - the qingcloud driver's pure parts: the instance
 * name that carries the host id (and its parse), DescribeInstances items
 * turned into prov_instance, the RunInstances parameters (flattened as the
 * client sends them), the account check, and the driver table (prov_names).
 * No network: the calls themselves are tested against the fake QingCloud
 * (e2e 0260). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "prov/bootstrap.h"
#include "prov/prov-qingcloud.h"
#include "prov/prov.h"
#include "prov/qc.h"

static void
test_name_roundtrip(void **state)
{
	char name[64], id[16];

	assert_int_equal(qcp_instance_name("149d67", "6bfcf936", name, sizeof(name)), 0);
	assert_string_equal(name, "herd-149d67-6bfcf936");
	assert_true(qcp_host_id_from_name("149d67", name, id));
	assert_string_equal(id, "6bfcf936");
	/* too small a buffer is an error, not a truncated name */
	assert_int_equal(qcp_instance_name("149d67", "6bfcf936", name, 10), HERR_INVALID);
}

static void
test_name_rejects_others(void **state)
{
	static const char *const bad[] = {
		"herd-aaaaaa-6bfcf936",  /* another server's */
		"herd-149d67-6bfcf9361", /* longer suffix */
		"herd-149d67-6BFCF936",  /* upper case */
		"herd-149d67-6bfcf93g",  /* not hex */
		"herd-149d67-6bfcf93",   /* short */
		"herd-149d67-",          "herd-149d67", "herd-149d676bfcf936", "my-web-server", "",
	};
	char id[16];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (qcp_host_id_from_name("149d67", bad[i], id))
			fail_msg("'%s' taken for one of ours", bad[i]);
	}
	assert_false(qcp_host_id_from_name("149d67", NULL, id));
}

static void
test_state(void **state)
{
	assert_string_equal(qcp_state("pending", ""), "pending");
	assert_string_equal(qcp_state("running", ""), "running");
	assert_string_equal(qcp_state("running", NULL), "running");
	assert_string_equal(qcp_state("stopped", ""), "stopped");
	assert_string_equal(qcp_state("suspended", ""), "stopped");
	/* on its way out: never adopted */
	assert_null(qcp_state("running", "terminating"));
	assert_null(qcp_state("pending", "terminating"));
	assert_string_equal(qcp_state("running", "stopping"), "stopped");
	assert_null(qcp_state("terminated", ""));
	assert_null(qcp_state("ceased", ""));
	assert_null(qcp_state(NULL, ""));
}

static void
test_instance_parse(void **state)
{
	struct prov_instance pi;
	struct herr err = HERR_INIT;
	json_t *resp = json_loads(
		"{\"instance_set\":["
		"{\"instance_id\":\"i-aaaa1111\",\"instance_name\":\"herd-149d67-0a0b0c0d\","
		" \"status\":\"pending\",\"transition_status\":\"creating\",\"vxnets\":[]},"
		"{\"instance_id\":\"i-bbbb2222\",\"instance_name\":\"herd-149d67-11223344\","
		" \"status\":\"running\",\"transition_status\":\"\","
		" \"vxnets\":[{\"vxnet_id\":\"vxnet-x\",\"private_ip\":\"198.18.7.5\"}]},"
		"{\"instance_id\":\"i-cccc3333\",\"instance_name\":\"herd-ffffff-11223344\","
		" \"status\":\"running\"},"
		"{\"instance_id\":\"i-dddd4444\",\"instance_name\":\"herd-149d67-55667788\","
		" \"status\":\"terminated\"},"
		"{\"instance_name\":\"herd-149d67-99aabbcc\",\"status\":\"running\"}"
		"]}",
		0, NULL);
	json_t *set = json_object_get(resp, "instance_set");

	assert_non_null(resp);
	assert_int_equal(qcp_instance_parse(json_array_get(set, 0), "149d67", &pi, &err), 0);
	assert_string_equal(pi.id, "i-aaaa1111");
	assert_string_equal(pi.host_id, "0a0b0c0d");
	assert_string_equal(pi.state, "pending");
	assert_string_equal(pi.private_ip, "");

	assert_int_equal(qcp_instance_parse(json_array_get(set, 1), "149d67", &pi, &err), 0);
	assert_string_equal(pi.host_id, "11223344");
	assert_string_equal(pi.state, "running");
	assert_string_equal(pi.private_ip, "198.18.7.5");

	/* another server's, and a gone one: skipped */
	assert_int_equal(qcp_instance_parse(json_array_get(set, 2), "149d67", &pi, &err), 1);
	assert_int_equal(qcp_instance_parse(json_array_get(set, 3), "149d67", &pi, &err), 1);
	/* no instance_id: malformed */
	assert_int_equal(qcp_instance_parse(json_array_get(set, 4), "149d67", &pi, &err),
			 HERR_INVALID);
	json_decref(resp);
}

static struct host_spec
spec_base(void)
{
	static const struct prov_net_spec net = { .id = "1299e095", .name = "qnet",
						  .cidr = "198.18.77.0/24",
						  .gateway = "198.18.77.1", .prefix_len = 24 };
	struct host_spec s;

	memset(&s, 0, sizeof(s));
	s.id = "6bfcf936";
	s.name = "g-1";
	s.net = &net;
	s.private_ip = "198.18.77.5";
	s.user_data = "{\"server\":\"http://198.18.0.1:8080\",\"join_token\":\"hj_x\"}";
	s.server_url = "http://198.18.0.1:8080";
	s.agent_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	s.join_token = "hj_x";
	s.image = "img-abc";
	s.instance_type = "c1m1";
	return s;
}

/* params flattened the way qc_call sends them */
static json_t *
flat(const json_t *params)
{
	struct herr err = HERR_INIT;
	json_t *f = json_object();

	assert_int_equal(qc_flatten(params, f, &err), 0);
	return f;
}

#define FS(f, k) json_string_value(json_object_get((f), (k)))

static void
test_run_params(void **state)
{
	struct host_spec s = spec_base();
	struct herr err = HERR_INIT;
	json_t *p = NULL, *f;
	unsigned char dec[4096];
	size_t declen = 0;
	char *script = NULL, b64cfg[512];
	struct bootstrap_in bi;

	s.keypair = "kp-123";
	s.security_group = "sg-9";
	assert_int_equal(qcp_run_params(&s, "149d67", "vxnet-abc", &p, &err), 0);
	f = flat(p);
	assert_string_equal(FS(f, "image_id"), "img-abc");
	assert_string_equal(FS(f, "instance_type"), "c1m1");
	assert_null(json_object_get(f, "cpu"));
	assert_string_equal(FS(f, "count"), "1");
	assert_string_equal(FS(f, "instance_name"), "herd-149d67-6bfcf936");
	assert_string_equal(FS(f, "vxnets.1"), "vxnet-abc|198.18.77.5");
	assert_null(json_object_get(f, "vxnets.2"));
	assert_string_equal(FS(f, "login_mode"), "keypair");
	assert_string_equal(FS(f, "login_keypair"), "kp-123");
	assert_null(json_object_get(f, "login_passwd"));
	assert_string_equal(FS(f, "security_group"), "sg-9");
	assert_string_equal(FS(f, "hostname"), "g-1");
	assert_string_equal(FS(f, "userdata_type"), "exec");
	/* the user data is the bootstrap script built for this spec, whole,
	 * and it carries the agent config only as base64 */
	assert_int_equal(sodium_base642bin(dec, sizeof(dec) - 1, FS(f, "userdata_value"),
					   strlen(FS(f, "userdata_value")), NULL, &declen, NULL,
					   sodium_base64_VARIANT_ORIGINAL),
			 0);
	dec[declen] = '\0';
	bi = (struct bootstrap_in){ s.server_url, s.agent_sha256, s.id, s.join_token, s.user_data,
				    s.ca_sha256 };
	assert_int_equal(bootstrap_script(&bi, &script, &err), 0);
	assert_int_equal(declen, strlen(script));
	assert_memory_equal(dec, script, declen);
	assert_null(strstr((char *)dec, s.user_data));
	sodium_bin2base64(b64cfg, sizeof(b64cfg), (const unsigned char *)s.user_data,
			  strlen(s.user_data), sodium_base64_VARIANT_ORIGINAL);
	assert_non_null(strstr((char *)dec, b64cfg));
	assert_non_null(strstr((char *)dec, s.agent_sha256));
	free(script);
	json_decref(f);
	json_decref(p);
}

static void
test_run_params_cpu_memory_passwd(void **state)
{
	struct host_spec s = spec_base();
	struct herr err = HERR_INIT;
	json_t *p1 = NULL, *p2 = NULL, *f1, *f2;

	s.instance_type = NULL;
	s.cpu = 2;
	s.memory_mb = 4096;
	s.private_ip = NULL;
	s.user_data = NULL;
	assert_int_equal(qcp_run_params(&s, "149d67", "vxnet-abc", &p1, &err), 0);
	assert_int_equal(qcp_run_params(&s, "149d67", "vxnet-abc", &p2, &err), 0);
	f1 = flat(p1);
	f2 = flat(p2);
	assert_null(json_object_get(f1, "instance_type"));
	assert_string_equal(FS(f1, "cpu"), "2");
	assert_string_equal(FS(f1, "memory"), "4096");
	assert_string_equal(FS(f1, "vxnets.1"), "vxnet-abc");
	assert_null(json_object_get(f1, "userdata_type"));
	/* no keypair: a random password nobody keeps, different each time */
	assert_string_equal(FS(f1, "login_mode"), "passwd");
	assert_true(strlen(FS(f1, "login_passwd")) >= 16);
	assert_string_not_equal(FS(f1, "login_passwd"), FS(f2, "login_passwd"));
	json_decref(f1);
	json_decref(f2);
	json_decref(p1);
	json_decref(p2);
}

static void
test_run_params_errors(void **state)
{
	struct host_spec s;
	struct herr err = HERR_INIT;
	json_t *p = NULL;
	char *big;

	s = spec_base();
	s.image = NULL;
	assert_int_equal(qcp_run_params(&s, "149d67", "vxnet-abc", &p, &err), HERR_INVALID);
	assert_string_equal(err.field, "image");
	assert_null(p);

	herr_clear(&err);
	s = spec_base();
	s.instance_type = NULL;
	s.cpu = 2; /* memory missing */
	assert_int_equal(qcp_run_params(&s, "149d67", "vxnet-abc", &p, &err), HERR_INVALID);
	assert_string_equal(err.field, "instance_type");

	/* an agent config the bootstrap cannot carry within QingCloud's user
	 * data limit is refused naming user_data; one that fits is sent */
	herr_clear(&err);
	s = spec_base();
	big = malloc(BOOTSTRAP_CONFIG_MAX + 2);
	memset(big, 'x', BOOTSTRAP_CONFIG_MAX + 1);
	big[BOOTSTRAP_CONFIG_MAX + 1] = '\0';
	s.user_data = big;
	assert_int_equal(qcp_run_params(&s, "149d67", "vxnet-abc", &p, &err), HERR_INVALID);
	assert_string_equal(err.field, "user_data");
	assert_null(p);
	big[200] = '\0';
	herr_clear(&err);
	assert_int_equal(qcp_run_params(&s, "149d67", "vxnet-abc", &p, &err), 0);
	json_decref(p);
	free(big);
	/* no agent hash (the server could not read its binary): refused */
	herr_clear(&err);
	s = spec_base();
	s.agent_sha256 = NULL;
	assert_int_equal(qcp_run_params(&s, "149d67", "vxnet-abc", &p, &err), HERR_INVALID);
	assert_string_equal(err.field, "user_data");
}

static void
test_config_check(void **state)
{
	struct herr err = HERR_INIT;
	json_t *good = json_pack("{s:s, s:s, s:s, s:s}", "driver", "qingcloud", "zone", "pek3a",
				 "access_key_id", "AKID", "secret_file", "/etc/herd/qc.secret");
	json_t *c;

	assert_int_equal(qcp_config_check(good, "", &err), 0);
	assert_int_equal(qcp_config_check(good, "accounts[0]", &err), 0);

	static const char *const need[] = { "zone", "access_key_id", "secret_file" };
	for (int i = 0; i < 3; i++) {
		char want[64];

		c = json_deep_copy(good);
		json_object_del(c, need[i]);
		herr_clear(&err);
		assert_int_equal(qcp_config_check(c, "accounts[0]", &err), HERR_INVALID);
		snprintf(want, sizeof(want), "accounts[0].%s", need[i]);
		assert_string_equal(err.field, want);
		assert_string_equal(err.msg, "is required for a qingcloud account");
		herr_clear(&err);
		assert_int_equal(qcp_config_check(c, "", &err), HERR_INVALID);
		assert_string_equal(err.field, need[i]);
		json_decref(c);
	}

	c = json_deep_copy(good);
	json_object_set_new(c, "endpoint", json_string("ftp://api.example/iaas/"));
	herr_clear(&err);
	assert_int_equal(qcp_config_check(c, "accounts[1]", &err), HERR_INVALID);
	assert_string_equal(err.field, "accounts[1].endpoint");
	json_object_set_new(c, "endpoint", json_string("http://127.0.0.1:8080/iaas/"));
	herr_clear(&err);
	assert_int_equal(qcp_config_check(c, "", &err), 0);
	json_object_set_new(c, "secret_file", json_string("relative/secret"));
	assert_int_equal(qcp_config_check(c, "", &err), HERR_INVALID);
	assert_string_equal(err.field, "secret_file");
	json_decref(c);

	c = json_deep_copy(good);
	json_object_set_new(c, "zone", json_string("PEK 3A"));
	herr_clear(&err);
	assert_int_equal(qcp_config_check(c, "", &err), HERR_INVALID);
	assert_string_equal(err.field, "zone");
	json_object_set_new(c, "zone", json_string("pek3a"));
	json_object_set_new(c, "router", json_string("vxnet-1"));
	herr_clear(&err);
	assert_int_equal(qcp_config_check(c, "", &err), HERR_INVALID);
	assert_string_equal(err.field, "router");
	json_object_set_new(c, "router", json_string("rtr-abc123"));
	herr_clear(&err);
	assert_int_equal(qcp_config_check(c, "", &err), 0);
	json_decref(c);
	json_decref(good);
}

static void
test_driver_table(void **state)
{
	char buf[128], small[8];
	size_t need = prov_names(buf, sizeof(buf));
	const struct prov_ops *qc = prov_find("qingcloud"), *local = prov_find("local");
	struct herr err = HERR_INIT;
	json_t *c = json_pack("{s:s}", "driver", "qingcloud");

	assert_string_equal(buf, "local, qingcloud");
	assert_int_equal(need, strlen(buf));
	/* truncated, terminated, and the length needed still returned */
	assert_int_equal(prov_names(small, sizeof(small)), need);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_non_null(qc);
	assert_non_null(local);
	assert_false(qc->listens_on_gateway);
	assert_non_null(qc->check);
	/* the dispatcher calls the driver's check; local has none: 0 */
	assert_int_equal(prov_config_check(qc, c, "accounts[2]", &err), HERR_INVALID);
	assert_string_equal(err.field, "accounts[2].zone");
	herr_clear(&err);
	assert_int_equal(prov_config_check(local, c, "", &err), 0);
	assert_null(prov_find("qingcloud2"));
	json_decref(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_roundtrip),
		cmocka_unit_test(test_name_rejects_others),
		cmocka_unit_test(test_state),
		cmocka_unit_test(test_instance_parse),
		cmocka_unit_test(test_run_params),
		cmocka_unit_test(test_run_params_cpu_memory_passwd),
		cmocka_unit_test(test_run_params_errors),
		cmocka_unit_test(test_config_check),
		cmocka_unit_test(test_driver_table),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("prov-qingcloud", tests, NULL, NULL);
}
