/* test-meta.c - the model's tokens, host credentials and agent calls, on a
 * real SQLite store in a temporary directory: a token is found only by its
 * own hash and deleting it bumps the credentials generation; a join token
 * works once, never expired and only for a launching or booting host; a
 * host credential stops working once the host is terminated; host_find()
 * refuses a name live in two clusters; activities list oldest first within
 * the newest `limit`; a group with live hosts cannot be deleted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "model/activity.h"
#include "model/audit.h"
#include "model/host.h"
#include "model/res.h"
#include "model/token.h"
#include "store/store.h"
#include "util.h"
#include "tmpdb.h"

static char dir[64], path[128];
static struct store *st;

static int
setup(void **state)
{
	struct herr err = HERR_INIT;

	if (tmpdb_make("test-meta", dir, sizeof(dir), path, sizeof(path)) < 0)
		return -1;
	st = store_open(path, &err);
	return st ? 0 : -1;
}

static int
teardown(void **state)
{
	store_close(st);
	tmpdb_remove(dir, path);
	return 0;
}

/* A host row in cluster c, state s, with join token `join` (its hash
 * stored) expiring at expires_ms. */
static void
put_host(const char *id, const char *c, const char *name, const char *s, const char *join,
	 int64_t expires_ms)
{
	static int seq;
	struct herr err = HERR_INIT;
	char hash[65], ip[32];

	snprintf(ip, sizeof(ip), "10.0.0.%d", seq + 1);
	sha256_hex(join, strlen(join), hash);
	if (store_q(st, NULL, NULL, &err,
		    "INSERT INTO hosts (id, name, cluster, grp, seq, template, account, network,"
		    " state, client_token, private_ip, join_hash, join_expires_ms, created_ms,"
		    " updated_ms) VALUES (?, ?, ?, 'g', ?, 't', 'a', 'n', ?, ?, ?, ?, ?, 1, 1)",
		    "[sssissssI]", id, name, c, ++seq, s, id, ip, hash, (json_int_t)expires_ms) < 0)
		fail_msg("insert host %s: %s", id, err.msg);
}

static void
test_tokens(void **state)
{
	struct herr err = HERR_INIT;
	struct token t;
	char tok[80], tok2[80], hash[65];
	uint64_t gen;
	int64_t n;
	json_t *items;

	(void)state;
	assert_int_equal(token_count(st, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(token_create(st, "ops", "operator", tok, sizeof(tok), &err), 0);
	assert_true(strncmp(tok, "hd_", 3) == 0);
	assert_int_equal(token_create(st, "ops", "viewer", tok2, sizeof(tok2), &err), HERR_CONFLICT);
	herr_clear(&err);
	sha256_hex(tok, strlen(tok), hash);
	assert_int_equal(token_find_by_hash(st, hash, &t, &err), 0);
	assert_string_equal(t.name, "ops");
	assert_string_equal(t.role, "operator");
	assert_true(t.created_ms > 0);
	hash[0] = hash[0] == 'a' ? 'b' : 'a';
	assert_int_equal(token_find_by_hash(st, hash, &t, &err), HERR_NOTFOUND);
	herr_clear(&err);
	assert_int_equal(token_count(st, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(token_list(st, &items, &err), 0);
	assert_int_equal(json_array_size(items), 1);
	assert_null(json_object_get(json_array_get(items, 0), "hash"));
	json_decref(items);
	gen = token_generation();
	assert_int_equal(token_delete(st, "nosuch", &err), HERR_NOTFOUND);
	assert_string_equal(err.msg, "no token named 'nosuch'");
	assert_int_equal(token_generation(), gen);
	herr_clear(&err);
	assert_int_equal(token_delete(st, "ops", &err), 0);
	assert_true(token_generation() > gen);
	gen = token_generation();
	token_invalidate();
	assert_int_equal(token_generation(), gen + 1);
}

static void
test_join(void **state)
{
	struct herr err = HERR_INIT;
	struct host h;
	char cred[80], cred2[80], hash[65];
	enum hstate hs;
	uint64_t gen;

	(void)state;
	put_host("j1", "c", "web-1", "booting", "jt-one", 5000);
	put_host("j2", "c", "web-2", "ready", "jt-two", 5000);
	/* wrong token, expired token, a host that cannot join */
	assert_int_equal(host_join(st, "j1", "jt-two", 1000, cred, sizeof(cred), &h, &err),
			 HERR_AUTH);
	assert_string_equal(err.msg, "invalid, used or expired join token");
	herr_clear(&err);
	assert_int_equal(host_join(st, "j1", "jt-one", 6000, cred, sizeof(cred), &h, &err),
			 HERR_AUTH);
	herr_clear(&err);
	assert_int_equal(host_join(st, "j2", "jt-two", 1000, cred, sizeof(cred), &h, &err),
			 HERR_AUTH);
	assert_string_equal(err.msg, "host is ready: it cannot join");
	herr_clear(&err);
	assert_int_equal(host_join(st, "nosuch", "jt-one", 1000, cred, sizeof(cred), &h, &err),
			 HERR_AUTH);
	herr_clear(&err);
	/* the right one works */
	assert_int_equal(host_join(st, "j1", "jt-one", 1000, cred, sizeof(cred), &h, &err), 0);
	assert_string_equal(h.name, "web-1");
	assert_string_equal(h.template_, "t");
	assert_true(strncmp(cred, "hc_", 3) == 0);
	/* and again while the host has reported nothing (the answer to the first
	 * join was lost): a new credential replaces the one never received */
	gen = token_generation();
	assert_int_equal(host_join(st, "j1", "jt-one", 1500, cred2, sizeof(cred2), &h, &err), 0);
	assert_string_not_equal(cred, cred2);
	assert_true(token_generation() > gen);
	sha256_hex(cred, strlen(cred), hash);
	assert_int_equal(host_find_by_credential(st, hash, &h, &err), HERR_NOTFOUND);
	herr_clear(&err);
	/* not once it has expired */
	assert_int_equal(host_join(st, "j1", "jt-one", 6000, cred, sizeof(cred), &h, &err),
			 HERR_AUTH);
	herr_clear(&err);
	assert_int_equal(host_get(st, "j1", &h, &err), 0);
	assert_int_equal(h.joined_ms, 1500);
	assert_int_equal(h.heartbeat_ms, 1500);
	assert_int_equal(h.state, HS_BOOTING);
	/* the credential names the host until it is terminated */
	sha256_hex(cred2, strlen(cred2), hash);
	assert_int_equal(host_find_by_credential(st, hash, &h, &err), 0);
	assert_string_equal(h.id, "j1");
	/* the host's first report spends the token for good */
	assert_int_equal(host_state_write(st, "j1", HS_BOOTING, HS_INITIALIZING, NULL, 1600, NULL,
					  &err), 0);
	assert_int_equal(host_join(st, "j1", "jt-one", 1700, cred, sizeof(cred), &h, &err),
			 HERR_AUTH);
	assert_string_equal(err.msg, "invalid, used or expired join token");
	herr_clear(&err);
	assert_int_equal(host_join_token_check(st, "j1", "jt-one", 1700, &err), HERR_AUTH);
	herr_clear(&err);
	assert_int_equal(host_find_by_credential(st, hash, &h, &err), 0);
	assert_int_equal(host_heartbeat(st, "j1", 2000, &hs, &err), 0);
	assert_int_equal(hs, HS_INITIALIZING);
	assert_int_equal(host_mark_terminated(st, "j1", 3000, &err), 0);
	assert_int_equal(host_find_by_credential(st, hash, &h, &err), HERR_NOTFOUND);
	herr_clear(&err);
	assert_int_equal(host_heartbeat(st, "gone", 2000, &hs, &err), 0);
	assert_int_equal(hs, HS__COUNT);
}

static void
test_find_and_results(void **state)
{
	struct herr err = HERR_INIT;
	struct init_result r = { .idx = 0, .script = "s", .version = 2, .exit_code = 1,
				 .timed_out = 1, .out = "o", .started_ms = 10, .ended_ms = 35 };
	json_t *row, *o, *items;

	(void)state;
	put_host("f1", "c1", "db-1", "ready", "x", 0);
	put_host("f2", "c2", "db-1", "ready", "y", 0);
	assert_null(host_find(st, "db-1", NULL, &err));
	assert_int_equal(err.code, HERR_CONFLICT);
	herr_clear(&err);
	row = host_find(st, "c2/db-1", NULL, &err);
	assert_non_null(row);
	o = host_to_json(row);
	assert_string_equal(json_string_value(json_object_get(o, "id")), "f2");
	assert_string_equal(json_string_value(json_object_get(o, "group")), "g");
	assert_true(json_is_false(json_object_get(o, "protected")));
	assert_true(json_is_object(json_object_get(o, "labels")));
	assert_true(json_is_null(json_object_get(o, "ready_after_ms")));
	json_decref(o);
	json_decref(row);
	assert_null(host_find(st, "db-9", NULL, &err));
	assert_int_equal(err.code, HERR_NOTFOUND);
	herr_clear(&err);
	assert_int_equal(host_set_protected(st, "f1", true, &err), 0);
	row = host_find(st, "db-1", "c1", &err);
	o = host_to_json(row);
	assert_true(json_is_true(json_object_get(o, "protected")));
	json_decref(o);
	json_decref(row);
	/* a retried report replaces the first */
	assert_int_equal(host_init_result_put(st, "f1", &r, &err), 0);
	r.exit_code = 0;
	assert_int_equal(host_init_result_put(st, "f1", &r, &err), 0);
	assert_int_equal(host_init_results(st, "f1", &items, &err), 0);
	assert_int_equal(json_array_size(items), 1);
	o = json_array_get(items, 0);
	assert_int_equal(json_integer_value(json_object_get(o, "exit_code")), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "duration_ms")), 25);
	assert_true(json_is_true(json_object_get(o, "timed_out")));
	assert_true(json_is_false(json_object_get(o, "stdout_truncated")));
	json_decref(items);
	/* live hosts of c1 (one), ready ones of c1/g (one) */
	assert_int_equal(host_meta_list(st, "c1", NULL, &items, &err), 0);
	assert_int_equal(json_array_size(items), 1);
	json_decref(items);
	assert_int_equal(host_list_json(st, "c2", "g", false, &items, &err), 0);
	assert_int_equal(json_array_size(items), 1);
	json_decref(items);
	assert_int_equal(group_delete_check(st, "c1", "g", &err), HERR_CONFLICT);
	herr_clear(&err);
	assert_int_equal(group_delete_check(st, "c9", "g", &err), 0);
}

static void
test_activities_and_audit(void **state)
{
	struct herr err = HERR_INIT;
	struct audit_entry e = { .ts_ms = 5, .who = "admin", .role = "admin", .method = "POST",
				 .path = "/v1/x", .status = 201 };
	json_t *items;

	(void)state;
	for (int i = 0; i < 5; i++)
		assert_int_equal(activity_add(st, "c", i % 2 ? "odd" : "even", NULL, "scale", "policy",
					      NULL, &err, "step %d", i), 0);
	assert_int_equal(activity_list(st, "c", "even", 0, 2, &items, &err), 0);
	assert_int_equal(json_array_size(items), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "reason")),
			    "step 2");
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "reason")),
			    "step 4");
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "group")),
			    "even");
	assert_null(json_object_get(json_array_get(items, 0), "grp"));
	assert_true(json_is_object(json_object_get(json_array_get(items, 0), "inputs")));
	json_decref(items);
	assert_int_equal(audit_add(st, &e, &err), 0);
	e.status = 403;
	assert_int_equal(audit_add(st, &e, &err), 0);
	assert_int_equal(audit_list(st, 1, &items, &err), 0);
	assert_int_equal(json_array_size(items), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 0), "status")), 403);
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "detail")), "");
	json_decref(items);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_join),
		cmocka_unit_test(test_find_and_results),
		cmocka_unit_test(test_activities_and_audit),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
