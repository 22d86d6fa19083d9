/* test-ctl-model.c - what the controllers read and write through the model
 * (model/host.c "controllers", model/res.c "ctl", model/activity-read.c)
 * on a real SQLite store in a temporary directory: host_list's filters and
 * order, host_create's launching row, host_next_seq over terminated hosts,
 * host_lb_drain_begin keeping a started drain, the deleted-network records
 * (add in a transaction, list, done; a rollback leaves none) and the count
 * of policy scale actions, and whether a refresh took a host out. */
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

#include "model/activity-read.h"
#include "model/host.h"
#include "model/refresh.h"
#include "model/res.h"
#include "store/store.h"
#include "tmpdb.h"

static char dir[64], path[128];
static struct store *st;

static int
setup(void **state)
{
	struct herr err = HERR_INIT;

	if (tmpdb_make("test-ctl-model", dir, sizeof(dir), path, sizeof(path)) < 0)
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

/* A launching host made as the controller makes one, then moved to state s. */
static void
add_host(const char *id, const char *cluster, const char *grp, const char *network, int seq,
	 enum hstate s)
{
	struct herr err = HERR_INIT;
	struct host h;

	memset(&h, 0, sizeof(h));
	snprintf(h.id, sizeof(h.id), "%s", id);
	snprintf(h.name, sizeof(h.name), "%s-%d", grp, seq);
	snprintf(h.cluster, sizeof(h.cluster), "%s", cluster);
	snprintf(h.grp, sizeof(h.grp), "%s", grp);
	snprintf(h.template_, sizeof(h.template_), "t");
	snprintf(h.account, sizeof(h.account), "a");
	snprintf(h.network, sizeof(h.network), "%s", network);
	snprintf(h.private_ip, sizeof(h.private_ip), "10.0.0.%d", seq + 1);
	snprintf(h.client_token, sizeof(h.client_token), "ct-%s", id);
	h.seq = seq;
	if (host_create(st, &h, "hash", 5000, 1000, &err) < 0)
		fail_msg("create host %s: %s", id, err.msg);
	if (s != HS_LAUNCHING &&
	    store_q(st, NULL, NULL, &err, "UPDATE hosts SET state = ? WHERE id = ?", "[ss]",
		    hstate_name(s), id) < 0)
		fail_msg("state of %s: %s", id, err.msg);
}

static void
test_host_create_and_list(void **state)
{
	struct herr err = HERR_INIT;
	struct host_query all = { .state = -1 }, live = { .state = -1, .live = true };
	struct host_query ready_net = { .network = "n2", .state = HS_READY };
	struct host_query grp = { .cluster = "c", .grp = "g", .state = -1, .live = true };
	struct host *hs;
	size_t n;

	add_host("h3", "c", "g", "n1", 3, HS_READY);
	add_host("h1", "c", "g", "n1", 1, HS_TERMINATED);
	add_host("h2", "c", "g", "n2", 2, HS_READY);
	add_host("h9", "b", "x", "n2", 1, HS_LAUNCHING);

	assert_int_equal(host_list(st, &all, &hs, &n, &err), 0);
	assert_int_equal(n, 4);
	/* ordered by cluster, group, seq */
	assert_string_equal(hs[0].id, "h9");
	assert_string_equal(hs[1].id, "h1");
	assert_string_equal(hs[2].id, "h2");
	assert_string_equal(hs[3].id, "h3");
	/* what host_create wrote, read back typed */
	assert_int_equal(hs[0].state, HS_LAUNCHING);
	assert_string_equal(hs[0].name, "x-1");
	assert_string_equal(hs[0].template_, "t");
	assert_string_equal(hs[0].account, "a");
	assert_string_equal(hs[0].network, "n2");
	assert_string_equal(hs[0].private_ip, "10.0.0.2");
	assert_string_equal(hs[0].client_token, "ct-h9");
	assert_int_equal(hs[0].created_ms, 1000);
	assert_int_equal(hs[0].updated_ms, 1000);
	free(hs);

	assert_int_equal(host_list(st, &live, &hs, &n, &err), 0);
	assert_int_equal(n, 3);
	free(hs);
	assert_int_equal(host_list(st, &ready_net, &hs, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(hs[0].id, "h2");
	free(hs);
	assert_int_equal(host_list(st, &grp, &hs, &n, &err), 0);
	assert_int_equal(n, 2);
	free(hs);

	/* nothing matches: no array, no error */
	grp.cluster = "nope";
	assert_int_equal(host_list(st, &grp, &hs, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_null(hs);
}

static void
test_host_next_seq_counts_terminated(void **state)
{
	struct herr err = HERR_INIT;
	int64_t seq = 0;

	assert_int_equal(host_next_seq(st, "c", "g", &seq, &err), 0);
	assert_int_equal(seq, 1);
	add_host("h1", "c", "g", "n1", 1, HS_READY);
	add_host("h4", "c", "g", "n1", 4, HS_TERMINATED);
	add_host("h7", "c", "other", "n1", 7, HS_READY);
	assert_int_equal(host_next_seq(st, "c", "g", &seq, &err), 0);
	assert_int_equal(seq, 5);   /* names are never reused */
}

static void
test_host_lb_drain_begin_keeps_a_started_drain(void **state)
{
	struct herr err = HERR_INIT;
	struct host h;

	add_host("h1", "c", "g", "n1", 1, HS_TERMINATING);
	assert_int_equal(host_lb_drain_begin(st, "h1", 100, &err), 0);
	assert_int_equal(host_lb_drain_begin(st, "h1", 200, &err), 0);
	assert_int_equal(host_get(st, "h1", &h, &err), 0);
	assert_int_equal(h.lb_drain_since_ms, 100);
}

static void
test_net_gone_records(void **state)
{
	struct herr err = HERR_INIT;
	json_t *spec = json_pack("{s:s,s:s}", "account", "acct", "cidr", "198.18.7.0/24");
	json_t *list = NULL, *r;

	/* a rolled-back delete leaves no record */
	assert_int_equal(store_begin(st, &err), 0);
	assert_int_equal(net_gone_add(st, "n0", spec, 10, &err), 0);
	store_rollback(st);
	assert_int_equal(store_begin(st, &err), 0);
	assert_int_equal(net_gone_add(st, "n1", spec, 11, &err), 0);
	assert_int_equal(store_commit(st, &err), 0);
	assert_int_equal(net_gone_add(st, "n2", spec, 12, &err), 0);

	assert_int_equal(net_gone_list(st, &list, &err), 0);
	assert_int_equal(json_array_size(list), 2);
	r = json_array_get(list, 0);   /* oldest first */
	assert_string_equal(json_string_value(json_object_get(r, "name")), "n1");
	assert_string_equal(json_string_value(json_object_get(r, "account")), "acct");
	assert_int_equal(json_integer_value(json_object_get(r, "deleted_ms")), 11);
	assert_true(json_equal(json_object_get(r, "spec"), spec));
	/* no such account: nothing of it kept */
	assert_true(json_is_null(json_object_get(r, "account_spec")));
	assert_int_equal(net_gone_done(st, json_integer_value(json_object_get(r, "id")), &err), 0);
	json_decref(list);

	assert_int_equal(net_gone_list(st, &list, &err), 0);
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")),
			    "n2");
	json_decref(list);

	/* the account's spec is kept as it was, should it go too */
	{
		json_t *as = json_pack("{s:s}", "driver", "local");
		bool created;
		assert_int_equal(res_put(st, &kind_account, "", "acct", as, "", &created, &err), 0);
		assert_int_equal(net_gone_add(st, "n3", spec, 13, &err), 0);
		assert_int_equal(res_delete(st, &kind_account, "", "acct", &err), 0);
		assert_int_equal(net_gone_list(st, &list, &err), 0);
		assert_int_equal(json_array_size(list), 2);
		assert_true(json_equal(json_object_get(json_array_get(list, 1), "account_spec"), as));
		json_decref(list);
		json_decref(as);
	}
	json_decref(spec);
}

static void
test_activity_count_policy_scales(void **state)
{
	struct herr err = HERR_INIT;
	static const struct {
		const char *grp, *kind, *cause;
		int64_t ts_ms;
	} acts[] = {
		{ "g", "scale_out", "policy:grow", 100 },
		{ "g", "scale_in", "policy:shrink", 200 },
		{ "g", "scale_out", "manual", 300 },       /* not a policy */
		{ "g", "launch", "policy:grow", 300 },     /* not a scale */
		{ "g", "scale_out", "policy:grow", 50 },   /* too old */
		{ "h", "scale_out", "policy:grow", 300 },  /* another group */
	};
	int n = -1;

	for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++)
		if (store_q(st, NULL, NULL, &err,
			    "INSERT INTO activities (ts_ms, cluster, grp, kind, cause, reason)"
			    " VALUES (?, 'c', ?, ?, ?, '')",
			    "[Isss]", (json_int_t)acts[i].ts_ms, acts[i].grp, acts[i].kind,
			    acts[i].cause) < 0)
			fail_msg("insert activity: %s", err.msg);
	assert_int_equal(activity_count_policy_scales(st, "c", "g", 60, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(activity_count_policy_scales(st, "c", "none", 0, &n, &err), 0);
	assert_int_equal(n, 0);
}

/* The drain and termination of a host a refresh took out are the
 * refresh's (their activities' cause): refresh_took_out says so of that
 * host, in any refresh, and of no other. */
static void
test_refresh_took_out(void **state)
{
	struct herr err = HERR_INIT;

	(void)state;
	assert_false(refresh_took_out(st, "h1"));
	assert_int_equal(refresh_host_out(st, 7, "h1", "web-1", 1000, &err), 1);
	assert_int_equal(refresh_host_out(st, 7, "h1", "web-1", 2000, &err), 0);   /* once */
	assert_true(refresh_took_out(st, "h1"));
	assert_false(refresh_took_out(st, "h2"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_host_create_and_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_next_seq_counts_terminated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_lb_drain_begin_keeps_a_started_drain, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_net_gone_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_activity_count_policy_scales, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_took_out, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
