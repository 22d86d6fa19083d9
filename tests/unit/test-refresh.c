/* test-refresh.c - instance refreshes: the parameters (model/refresh.c:
 * defaults, flags and `refresh:` values, each bad one naming its field)
 * and refresh_decide() (ctl/refresh-decide.c) across its branches: not
 * running, a taken-out host still live, a failed new host, a batch waiting
 * for its surge hosts, for new hosts to be ready and warm, for min_healthy,
 * a batch taken out, done, waiting for the last new hosts, pause_after,
 * choosing a batch (not ready first, then oldest; surge; with surge 0 no
 * more than min_healthy lets go; nothing when it lets none go). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ctl/refresh.h"
#include "model/refresh.h"

#define OLD "aaaaaaaaaaaa"
#define NEW "bbbbbbbbbbbb"
#define NOW 1000000

static struct refresh
running(int surge, int min_pct)
{
	struct refresh r;

	memset(&r, 0, sizeof(r));
	snprintf(r.state, sizeof(r.state), "running");
	snprintf(r.target, sizeof(r.target), NEW);
	refresh_params_default(&r.p);
	r.p.surge = surge;
	r.p.min_healthy_pct = min_pct;
	r.batch = json_array();
	r.started_ms = 1000;
	return r;
}

/* n hosts h1..hn of version ver, ready since long. */
static void
hosts_of(struct rf_host *h, size_t from, size_t n, const char *ver)
{
	static const char *const ids[] = { "h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8" };

	for (size_t i = from; i < from + n; i++)
		h[i] = (struct rf_host){ ids[i], ids[i], HS_READY, ver, (int)i + 1, 2000, 3000, false,
					 true };
}

static void
test_params(void **state)
{
	struct herr err = HERR_INIT;
	struct refresh_params p;
	json_t *o;

	refresh_params_default(&p);
	assert_int_equal(p.batch, 1);
	assert_int_equal(p.surge, 1);
	assert_int_equal(p.min_healthy_pct, 100);
	o = json_loads("{\"batch\":\"25%\",\"surge\":0,\"min_healthy\":\"75%\",\"warmup\":\"30s\","
		       "\"pause_after\":2,\"rollback\":true}", 0, NULL);
	assert_int_equal(refresh_params_read(o, "", &p, &err), 0);
	json_decref(o);
	assert_int_equal(p.batch_pct, 25);
	assert_int_equal(p.surge, 0);
	assert_int_equal(p.min_healthy_pct, 75);
	assert_int_equal(p.warmup_ms, 30000);
	assert_int_equal(p.pause_after, 2);
	assert_true(p.rollback);
	assert_int_equal(refresh_batch_size(&p, 4), 1);
	assert_int_equal(refresh_batch_size(&p, 5), 2);   /* rounded up */
	assert_int_equal(refresh_min_healthy(&p, 4), 3);
	/* a number given as an integer or a string */
	o = json_loads("{\"batch\":2}", 0, NULL);
	assert_int_equal(refresh_params_read(o, "", &p, &err), 0);
	json_decref(o);
	assert_int_equal(p.batch, 2);
	assert_int_equal(p.batch_pct, 0);
	/* bad values name their field */
	static const char *const bad[][2] = {
		{ "{\"batch\":0}", "refresh.batch" },
		{ "{\"batch\":\"150%\"}", "refresh.batch" },
		{ "{\"batch\":\"x\"}", "refresh.batch" },
		{ "{\"surge\":\"1%\"}", "refresh.surge" },
		{ "{\"min_healthy\":\"101%\"}", "refresh.min_healthy" },
		{ "{\"warmup\":\"soon\"}", "refresh.warmup" },
		{ "{\"warmup\":\"2h\"}", "refresh.warmup" },
		{ "{\"pause_after\":-1}", "refresh.pause_after" },
		{ "{\"rollback\":\"yes\"}", "refresh.rollback" },
		{ "{\"nope\":1}", "refresh.nope" },
		{ "{\"surge\":0,\"min_healthy\":\"100%\"}", "refresh.min_healthy" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		herr_clear(&err);
		refresh_params_default(&p);
		o = json_loads(bad[i][0], 0, NULL);
		assert_int_equal(refresh_params_read(o, "refresh", &p, &err), HERR_INVALID);
		assert_string_equal(err.field, bad[i][1]);
		json_decref(o);
	}
}

static void
test_not_running(void **state)
{
	struct refresh r = running(1, 100);
	struct rf_host h[4];
	struct rf_action a;

	hosts_of(h, 0, 4, OLD);
	snprintf(r.state, sizeof(r.state), "paused");
	refresh_decide(&r, h, 4, 4, NOW, &a);
	assert_int_equal(a.kind, RF_NONE);
	json_decref(r.batch);
}

static void
test_redrain_and_fail(void **state)
{
	struct refresh r = running(1, 100);
	struct rf_host h[4];
	struct rf_action a;

	hosts_of(h, 0, 4, OLD);
	h[1].out = true;   /* stored as taken out, still ready: a crash between */
	refresh_decide(&r, h, 4, 4, NOW, &a);
	assert_int_equal(a.kind, RF_REDRAIN);
	assert_int_equal(a.nhosts, 1);
	assert_int_equal(a.hosts[0], 1);
	/* taken out and draining: nothing again */
	h[1].state = HS_DRAINING;
	h[3].version = NEW;
	h[3].state = HS_FAILED;
	h[3].created_ms = r.started_ms + 1;
	refresh_decide(&r, h, 4, 4, NOW, &a);
	assert_int_equal(a.kind, RF_FAIL);
	assert_non_null(strstr(a.reason, "h4"));
	/* a failed host of the new version from before the refresh: not its failure */
	h[3].created_ms = r.started_ms - 1;
	refresh_decide(&r, h, 4, 4, NOW, &a);
	assert_int_not_equal(a.kind, RF_FAIL);
	json_decref(r.batch);
}

static void
test_choose(void **state)
{
	struct refresh r = running(1, 100);
	struct rf_host h[4];
	struct rf_action a;

	hosts_of(h, 0, 4, OLD);
	h[2].state = HS_UNHEALTHY;   /* not ready: first */
	r.p.batch = 2;
	refresh_decide(&r, h, 4, 4, NOW, &a);
	assert_int_equal(a.kind, RF_CHOOSE);
	assert_int_equal(a.nhosts, 2);
	assert_int_equal(a.hosts[0], 2);
	assert_int_equal(a.hosts[1], 0);   /* then the oldest */
	assert_int_equal(a.extra, 1);      /* surge 1 */
	/* surge 0, min_healthy 75% of 4 = 3: one ready host may go (h3 is not ready) */
	r.p.surge = 0;
	r.p.min_healthy_pct = 75;
	h[2].state = HS_READY;
	refresh_decide(&r, h, 4, 4, NOW, &a);
	assert_int_equal(a.kind, RF_CHOOSE);
	assert_int_equal(a.nhosts, 1);
	assert_int_equal(a.extra, 0);
	/* surge 0 and one host not ready: none may go */
	h[2].state = HS_UNHEALTHY;
	refresh_decide(&r, h, 4, 4, NOW, &a);
	assert_int_equal(a.kind, RF_WAIT);
	assert_non_null(strstr(a.reason, "min_healthy"));
	json_decref(r.batch);
}

static void
test_batch_in_hand(void **state)
{
	struct refresh r = running(1, 100);
	struct rf_host h[5];
	struct rf_action a;

	hosts_of(h, 0, 4, OLD);
	json_array_append_new(r.batch, json_string("h1"));
	r.extra = 1;
	/* the surge host is not launched yet */
	refresh_decide(&r, h, 4, 4, NOW, &a);
	assert_int_equal(a.kind, RF_WAIT);
	assert_non_null(strstr(a.reason, "surge"));
	/* launched, not ready */
	hosts_of(h, 4, 1, NEW);
	h[4].state = HS_INITIALIZING;
	h[4].ready_ms = 0;
	refresh_decide(&r, h, 5, 4, NOW, &a);
	assert_int_equal(a.kind, RF_WAIT);
	assert_non_null(strstr(a.reason, "to be ready"));
	/* ready, but not yet UP at its load balancer */
	h[4].state = HS_READY;
	h[4].ready_ms = NOW - 60000;
	h[4].lb_up = false;
	refresh_decide(&r, h, 5, 4, NOW, &a);
	assert_int_equal(a.kind, RF_WAIT);
	assert_non_null(strstr(a.reason, "in service"));
	h[4].lb_up = true;
	/* ready but not warm */
	r.p.warmup_ms = 30000;
	h[4].state = HS_READY;
	h[4].ready_ms = NOW - 1000;
	refresh_decide(&r, h, 5, 4, NOW, &a);
	assert_int_equal(a.kind, RF_WAIT);
	assert_non_null(strstr(a.reason, "warm"));
	/* warm: h1 out, 4 ready stay */
	h[4].ready_ms = NOW - 30000;
	refresh_decide(&r, h, 5, 4, NOW, &a);
	assert_int_equal(a.kind, RF_TAKE_OUT);
	assert_int_equal(a.nhosts, 1);
	assert_int_equal(a.hosts[0], 0);
	/* an old host went unhealthy meanwhile: taking h1 would leave 3 < 4 */
	h[2].state = HS_UNHEALTHY;
	refresh_decide(&r, h, 5, 4, NOW, &a);
	assert_int_equal(a.kind, RF_WAIT);
	assert_non_null(strstr(a.reason, "min_healthy"));
	json_decref(r.batch);
}

static void
test_done_pause_last(void **state)
{
	struct refresh r = running(1, 100);
	struct rf_host h[4];
	struct rf_action a;

	hosts_of(h, 0, 4, NEW);
	refresh_decide(&r, h, 4, 4, NOW, &a);
	assert_int_equal(a.kind, RF_DONE);
	/* the last new host not ready yet */
	h[3].state = HS_BOOTING;
	refresh_decide(&r, h, 4, 4, NOW, &a);
	assert_int_equal(a.kind, RF_WAIT);
	assert_non_null(strstr(a.reason, "last"));
	/* old hosts left, but a previous batch's new host still coming */
	h[0].version = OLD;
	refresh_decide(&r, h, 4, 4, NOW, &a);
	assert_int_equal(a.kind, RF_WAIT);
	/* pause_after 1 batch reached */
	h[3].state = HS_READY;
	r.p.pause_after = 1;
	r.batches = 1;
	refresh_decide(&r, h, 4, 4, NOW, &a);
	assert_int_equal(a.kind, RF_PAUSE);
	/* unknown versions (hosts from before versions) are old */
	r.p.pause_after = 0;
	h[0].version = "unknown";
	refresh_decide(&r, h, 4, 4, NOW, &a);
	assert_int_equal(a.kind, RF_CHOOSE);
	assert_int_equal(a.hosts[0], 0);
	json_decref(r.batch);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_not_running),
		cmocka_unit_test(test_redrain_and_fail),
		cmocka_unit_test(test_choose),
		cmocka_unit_test(test_batch_in_hand),
		cmocka_unit_test(test_done_pause_last),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
