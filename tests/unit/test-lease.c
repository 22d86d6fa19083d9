/* test-lease.c - one active controller (issue 19): every branch of the pure
 * lease_decide() and lease_live(); the lease and its fence on two store
 * handles opened on one SQLite file (two "servers": A leads, its lease
 * lapses under an injected clock, B takes over at epoch + 1, A's fenced
 * transactions and lone writes fail and write nothing, A's renew fails and
 * it steps down); and a controller pass under a stale epoch (the leader of
 * ctl/leader.c): its launch intent, host state change, desired change,
 * group bookkeeping and activity are refused, and the provider and LB gates
 * refuse the calls. */
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

#include "ctl/lease.h"
#include "lb/lb.h"
#include "model/activity.h"
#include "model/group-state.h"
#include "model/host.h"
#include "model/lease.h"
#include "prov/prov.h"
#include "server.h"
#include "store/store.h"
#include "tmpdb.h"

#define TTL 6000

static char dir[64], path[128];
static struct store *a, *b;   /* two servers' handles on one database */

static int
setup(void **state)
{
	struct herr err = HERR_INIT;

	if (tmpdb_make("test-lease", dir, sizeof(dir), path, sizeof(path)) < 0)
		return -1;
	a = store_open(path, &err);
	b = store_open(path, &err);
	return a && b ? 0 : -1;
}

static int
teardown(void **state)
{
	store_fence_set(a, NULL, NULL);
	store_close(a);
	store_close(b);
	tmpdb_remove(dir, path);
	return 0;
}

static struct lease_row
row_of(const char *holder, int64_t epoch, int64_t expires_ms)
{
	struct lease_row r = { .exists = true, .epoch = epoch, .expires_ms = expires_ms };

	snprintf(r.holder, sizeof(r.holder), "%s", holder);
	return r;
}

static void
test_decide(void **state)
{
	struct lease_row none = { .exists = false };
	struct lease_row other_live = row_of("B", 4, 10000), other_lapsed = row_of("B", 4, 5000);
	struct lease_row mine = row_of("A", 3, 10000), mine_old = row_of("A", 2, 10000);
	struct lease_self idle = { .id = "A", .epoch = 0 };
	struct lease_self leading = { .id = "A", .epoch = 3, .renewed_mono_ms = 100 };

	/* not leading */
	assert_int_equal(lease_decide(&none, &idle, 6000, 0, TTL, false), LEASE_ACQUIRE);
	assert_int_equal(lease_decide(&other_live, &idle, 6000, 0, TTL, false), LEASE_WAIT);
	assert_int_equal(lease_decide(&other_lapsed, &idle, 6000, 0, TTL, false), LEASE_ACQUIRE);
	assert_int_equal(lease_decide(&other_lapsed, &idle, 4999, 0, TTL, false), LEASE_WAIT);
	/* expiry is the store's clock: at expires_ms exactly it has lapsed */
	assert_int_equal(lease_decide(&other_lapsed, &idle, 5000, 0, TTL, false), LEASE_ACQUIRE);
	/* a single-process store at start: the earlier holder is dead */
	assert_int_equal(lease_decide(&other_live, &idle, 6000, 0, TTL, true), LEASE_ACQUIRE);
	/* a live row of ours we do not lead by (our state was lost): take it again */
	assert_int_equal(lease_decide(&mine, &idle, 6000, 0, TTL, false), LEASE_ACQUIRE);
	/* leading */
	assert_int_equal(lease_decide(&mine, &leading, 6000, 100 + TTL / 3 - 1, TTL, false),
			 LEASE_KEEP);
	assert_int_equal(lease_decide(&mine, &leading, 6000, 100 + TTL / 3, TTL, false),
			 LEASE_RENEW);
	/* ours but lapsed by the store's clock: renew (a CAS; a takeover makes it fail) */
	assert_int_equal(lease_decide(&mine, &leading, 20000, 100 + TTL, TTL, false), LEASE_RENEW);
	assert_int_equal(lease_decide(&other_live, &leading, 6000, 200, TTL, false), LEASE_LOST);
	assert_int_equal(lease_decide(&mine_old, &leading, 6000, 200, TTL, false), LEASE_LOST);
	assert_int_equal(lease_decide(&none, &leading, 6000, 200, TTL, false), LEASE_LOST);
	/* force never overrides what the row says of a leader */
	assert_int_equal(lease_decide(&other_live, &leading, 6000, 200, TTL, true), LEASE_LOST);
}

static void
test_live(void **state)
{
	struct lease_self idle = { .id = "A", .epoch = 0, .renewed_mono_ms = 1000 };
	struct lease_self leading = { .id = "A", .epoch = 7, .renewed_mono_ms = 1000 };
	int64_t margin = lease_margin_ms(TTL);

	assert_int_equal(margin, 1000);
	assert_int_equal(lease_margin_ms(3), 1);
	assert_false(lease_live(&idle, 1000, TTL));
	assert_true(lease_live(&leading, 1000, TTL));
	/* the local deadline: last renew's send + ttl - margin, before the
	 * store's expiry (renew + ttl) */
	assert_true(lease_live(&leading, 1000 + TTL - margin - 1, TTL));
	assert_false(lease_live(&leading, 1000 + TTL - margin, TTL));
	assert_false(lease_live(&leading, 1000 + TTL, TTL));
}

static int64_t
count(struct store *st, const char *sql)
{
	struct herr err = HERR_INIT;
	json_t *row = store_row(st, &err, sql, NULL);
	int64_t n = json_integer_value(json_object_get(row, "n"));

	assert_int_equal(err.code, 0);
	json_decref(row);
	return n;
}

static void
test_two_servers(void **state)
{
	struct herr err = HERR_INIT;
	struct lease_row row;
	struct lease_self as = { .id = "A" };
	int64_t ea = 0, eb = 0, t0 = 1000000;
	char *v;

	/* A takes the free lease; B, at the same time, cannot */
	assert_int_equal(lease_acquire(a, LEASE_CONTROLLER, "A", t0, TTL, false, &ea, &err), 0);
	assert_int_equal(ea, 1);
	assert_int_equal(lease_acquire(b, LEASE_CONTROLLER, "B", t0 + 10, TTL, false, &eb, &err),
			 HERR_CONFLICT);
	herr_clear(&err);
	/* A renews before it lapses: B still cannot take it at t0 + TTL */
	assert_int_equal(lease_renew(a, LEASE_CONTROLLER, "A", ea, t0 + 2000, TTL, &err), 0);
	assert_int_equal(lease_acquire(b, LEASE_CONTROLLER, "B", t0 + TTL, TTL, false, &eb, &err),
			 HERR_CONFLICT);
	herr_clear(&err);
	/* A acts under its epoch: a transaction and a lone write pass the fence */
	lease_fence(a, LEASE_CONTROLLER, "A", ea);
	assert_true(store_fenced(a));
	assert_false(store_fenced(b));
	assert_int_equal(store_begin(a, &err), 0);
	assert_int_equal(store_meta_set(a, "by_a_tx", "1", &err), 0);
	assert_int_equal(store_commit(a, &err), 0);
	assert_int_equal(store_meta_set(a, "by_a_lone", "1", &err), 0);
	v = store_meta_get(b, "by_a_tx");
	assert_non_null(v);
	free(v);
	/* A stops renewing; by the store's clock the lease lapses; B takes it */
	assert_int_equal(lease_acquire(b, LEASE_CONTROLLER, "B", t0 + 2000 + TTL, TTL, false, &eb,
				       &err), 0);
	assert_int_equal(eb, 2);
	/* A's fenced transaction fails at its begin, distinctly, and writes nothing */
	assert_int_equal(store_begin(a, &err), HERR_FENCED);
	assert_int_equal(store_tx_depth(a), 0);
	herr_clear(&err);
	assert_int_equal(store_meta_set(a, "late_lone", "1", &err), HERR_FENCED);
	herr_clear(&err);
	assert_true(store_fence_tripped(a));
	/* tripped: it fails at once, never retried as if transient */
	assert_int_equal(store_meta_set(a, "late_again", "1", &err), HERR_FENCED);
	herr_clear(&err);
	v = store_meta_get(b, "late_lone");
	assert_null(v);
	v = store_meta_get(b, "late_again");
	assert_null(v);
	/* B's own writes (no fence on B's handle in this thread) go on */
	assert_int_equal(store_meta_set(b, "by_b", "1", &err), 0);
	/* reads on A still work (the API answers on every server) */
	v = store_meta_get(a, "by_b");
	assert_non_null(v);
	free(v);
	/* the lease thread is not fenced: A's lease operations from here on
	 * stand on their own compare-and-set */
	store_fence_set(a, NULL, NULL);
	assert_false(store_fence_tripped(a));
	/* A's renew fails: it steps down */
	assert_int_equal(lease_renew(a, LEASE_CONTROLLER, "A", ea, t0 + 9000, TTL, &err),
			 HERR_FENCED);
	herr_clear(&err);
	assert_int_equal(lease_read(a, LEASE_CONTROLLER, &row, &err), 0);
	assert_string_equal(row.holder, "B");
	assert_int_equal(row.epoch, 2);
	as.epoch = ea;
	as.renewed_mono_ms = 0;
	assert_int_equal(lease_decide(&row, &as, t0 + 9000, 100, TTL, false), LEASE_LOST);
	/* nor can A take it back while B's lease is live */
	as.epoch = 0;
	assert_int_equal(lease_decide(&row, &as, t0 + 9000, 100, TTL, false), LEASE_WAIT);
	assert_int_equal(lease_acquire(a, LEASE_CONTROLLER, "A", t0 + 9000, TTL, false, &ea, &err),
			 HERR_CONFLICT);
	herr_clear(&err);
	/* a clean stop lets it lapse at once; only its holder can */
	assert_int_equal(lease_release(a, LEASE_CONTROLLER, "A", 1, &err), 0);
	assert_int_equal(lease_read(b, LEASE_CONTROLLER, &row, &err), 0);
	assert_true(row.expires_ms > t0 + 9000);
	assert_int_equal(lease_release(b, LEASE_CONTROLLER, "B", eb, &err), 0);
	assert_int_equal(lease_acquire(a, LEASE_CONTROLLER, "A", t0 + 9001, TTL, false, &ea, &err),
			 0);
	assert_int_equal(ea, 3);
	/* servers seen */
	assert_int_equal(server_seen(a, "A", "127.0.0.1:1", "0.1.0", t0, t0 + 10, &err), 0);
	assert_int_equal(server_seen(b, "B", "127.0.0.1:2", "0.1.0", t0 + 5, t0 + 20, &err), 0);
	assert_int_equal(server_seen(a, "A", "127.0.0.1:1", "0.1.0", t0, t0 + 30, &err), 0);
	assert_int_equal(count(a, "SELECT COUNT(*) AS n FROM servers"), 2);
	assert_int_equal(servers_prune(a, t0 + 25, &err), 0);
	assert_int_equal(count(a, "SELECT COUNT(*) AS n FROM servers"), 1);
}

/* --- a controller pass under a stale epoch --- */

static int calls;   /* provider and LB calls that got through */

static int
fake_launch(struct prov *p, const struct host_spec *spec, struct prov_instance *out,
	    struct herr *err)
{
	calls++;
	return 0;
}

static int
fake_terminate(struct prov *p, const char *instance_id, const char *host_id, struct herr *err)
{
	calls++;
	return 0;
}

static int
fake_list(struct prov *p, struct prov_instance **out, size_t *n, struct herr *err)
{
	*out = NULL;
	*n = 0;
	return 0;
}

static const struct prov_ops fake_prov = {
	.name = "fake", .launch = fake_launch, .terminate = fake_terminate, .list = fake_list,
};

static int
fake_add(struct lb *l, const char *lb, const struct lb_member *m, struct herr *err)
{
	calls++;
	return 0;
}

static int
fake_apply(struct lb *l, struct herr *err)
{
	calls++;
	return 0;
}

static const struct lb_ops fake_lb = {
	.name = "fake", .add_backend = fake_add, .apply = fake_apply,
};

/* A host row made as the controller's launch batch makes one. */
static int
intent(struct store *st, const char *id, struct herr *err)
{
	struct host h;
	int rc;

	memset(&h, 0, sizeof(h));
	snprintf(h.id, sizeof(h.id), "%s", id);
	snprintf(h.name, sizeof(h.name), "web-%s", id);
	snprintf(h.cluster, sizeof(h.cluster), "c");
	snprintf(h.grp, sizeof(h.grp), "web");
	snprintf(h.template_, sizeof(h.template_), "t");
	snprintf(h.account, sizeof(h.account), "a");
	snprintf(h.network, sizeof(h.network), "n");
	snprintf(h.private_ip, sizeof(h.private_ip), "10.0.0.9");
	snprintf(h.client_token, sizeof(h.client_token), "ct-%s", id);
	if ((rc = store_begin(st, err)) < 0)
		return rc;
	if ((rc = host_create(st, &h, "hash", 5000, 1000, err)) < 0 ||
	    (rc = activity_add(st, "c", "web", h.name, "launch", "scale_out", NULL, err,
			       "launching %s", h.name)) < 0) {
		store_rollback(st);
		return rc;
	}
	return store_commit(st, err);
}

/* Each activity names the server and epoch it was made under (the fence
 * it passed), and an API request's (no fence) none. */
static void
test_activity_by(void **state)
{
	struct herr err = HERR_INIT;
	json_t *items = NULL, *last;
	char id[LEASE_HOLDER_MAX];
	int64_t e = 0, t0 = 50000000;

	assert_int_equal(lease_acquire(a, LEASE_CONTROLLER, "A7", t0, TTL, true, &e, &err), 0);
	assert_true(e >= 1);
	lease_fence(a, LEASE_CONTROLLER, "A7", e);
	assert_true(lease_acting(a, id, sizeof(id), &(int64_t){ 0 }));
	assert_false(lease_acting(b, id, sizeof(id), &(int64_t){ 0 }));
	assert_int_equal(activity_add(a, "by", "g", "h1", "launch", "scale_out", NULL, &err,
				      "by the leader"), 0);
	assert_int_equal(activity_list(b, "by", "g", 0, 10, &items, &err), 0);
	last = json_array_get(items, json_array_size(items) - 1);
	assert_string_equal(json_string_value(json_object_get(last, "server")), "A7");
	assert_int_equal(json_integer_value(json_object_get(last, "epoch")), e);
	json_decref(items);
	/* cleared (not leading, or an API thread): none */
	lease_fence(a, LEASE_CONTROLLER, "A7", 0);
	assert_false(lease_acting(a, id, sizeof(id), &e));
	assert_string_equal(id, "");
	assert_int_equal(e, 0);
	assert_int_equal(activity_add(a, "by", "g", NULL, "scale_out", "manual", NULL, &err,
				      "by a request"), 0);
	assert_int_equal(activity_list(b, "by", "g", 0, 10, &items, &err), 0);
	last = json_array_get(items, json_array_size(items) - 1);
	assert_string_equal(json_string_value(json_object_get(last, "server")), "");
	assert_int_equal(json_integer_value(json_object_get(last, "epoch")), 0);
	json_decref(items);
}

static void
test_stale_pass(void **state)
{
	struct server s;
	struct herr err = HERR_INIT;
	struct prov p = { .ops = &fake_prov };
	struct lb l = { .ops = &fake_lb };
	struct host_spec spec;
	struct prov_instance inst;
	struct lb_member m;
	int64_t epoch = 0, eb = 0, hosts0, acts0;
	struct group_state gs;

	memset(&s, 0, sizeof(s));
	memset(&spec, 0, sizeof(spec));
	memset(&m, 0, sizeof(m));
	s.store = a;
	s.lease_ttl_ms = 60000;   /* the local deadline stays ahead: only the fence can stop it */
	snprintf(s.listen, sizeof(s.listen), "127.0.0.1:1");
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.kick, NULL);
	/* this server leads (SQLite: one process, so it takes the lease at start) */
	assert_int_equal(leader_start(&s, &err), 0);
	assert_true(leader_pass(&s, &epoch));
	assert_true(epoch >= 1);
	assert_true(leader_may_call());
	/* a pass under the lease acts: an intent, a provider call, an LB change */
	assert_int_equal(intent(a, "h1", &err), 0);
	assert_int_equal(prov_launch(&p, &spec, &inst, &err), 0);
	assert_int_equal(lb_add_backend(&l, "lb", &m, &err), 0);
	assert_int_equal(calls, 2);
	hosts0 = count(b, "SELECT COUNT(*) AS n FROM hosts");
	acts0 = count(b, "SELECT COUNT(*) AS n FROM activities");
	/* another server takes the lease (as after this one was paused) */
	assert_int_equal(lease_acquire(b, LEASE_CONTROLLER, "B", store_now_ms(b, &err), 6000, true,
				       &eb, &err), 0);
	assert_int_equal(eb, epoch + 1);
	/* the next pass still believes it leads by its own clock ... */
	assert_true(leader_pass(&s, &epoch));
	/* ... but every actuation it records is refused in its own transaction */
	assert_int_equal(intent(a, "h2", &err), HERR_FENCED);
	herr_clear(&err);
	assert_int_equal(host_mark_terminating(a, "h1", "scale_in", 0, 2000, NULL, &err),
			 HERR_FENCED);
	herr_clear(&err);
	assert_int_equal(group_state_note(a, "c", "web", GROUP_SCALED_OUT, 3000, &err), HERR_FENCED);
	herr_clear(&err);
	assert_int_equal(activity_add(a, "c", "web", NULL, "scale_out", "policy", NULL, &err,
				      "desired 2 -> 3"), HERR_FENCED);
	herr_clear(&err);
	/* and the provider and LB calls after the fenced write are not made */
	assert_false(leader_may_call());
	assert_int_equal(prov_launch(&p, &spec, &inst, &err), HERR_FENCED);
	herr_clear(&err);
	assert_int_equal(prov_terminate(&p, "i-1", "h1", &err), HERR_FENCED);
	herr_clear(&err);
	assert_int_equal(lb_add_backend(&l, "lb", &m, &err), HERR_FENCED);
	herr_clear(&err);
	assert_int_equal(lb_apply(&l, &err), HERR_FENCED);
	herr_clear(&err);
	assert_int_equal(calls, 2);
	/* nothing of the stale pass is in the store */
	assert_int_equal(count(b, "SELECT COUNT(*) AS n FROM hosts"), hosts0);
	assert_int_equal(count(b, "SELECT COUNT(*) AS n FROM activities"), acts0);
	assert_int_equal(count(b, "SELECT COUNT(*) AS n FROM hosts WHERE state = 'terminating'"), 0);
	assert_int_equal(group_state_get(b, "c", "web", &gs, &err), 0);
	assert_int_equal(gs.last_scale_out_ms, 0);
	/* the next pass sees the fenced write and steps down: it acts on nothing */
	assert_false(leader_pass(&s, &epoch));
	assert_int_equal(epoch, 0);
	assert_false(store_fenced(a));
	s.stopping = 1;
	leader_stop(&s);
	/* the stopped leader let nothing go: the lease is B's */
	{
		struct lease_row row;

		assert_int_equal(lease_read(b, LEASE_CONTROLLER, &row, &err), 0);
		assert_string_equal(row.holder, "B");
		assert_int_equal(row.epoch, eb);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_live),
		cmocka_unit_test(test_two_servers),
		cmocka_unit_test(test_stale_pass),
		cmocka_unit_test(test_activity_by),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
