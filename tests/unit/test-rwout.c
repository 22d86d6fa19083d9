/* test-rwout.c - remote_write out's pure parts (rwout/rwout.c): a remote's
 * validation naming the field, defaults, relabelling as Prometheus does it
 * (replace with groups and a separator, keep, drop, labeldrop, labelkeep,
 * anchoring, a rule that removes __name__), records (round trip, labels
 * pointing into them, a torn tail), the outcome of an attempt (the spec:
 * never retry a 4xx but 429), the backoff and the shard count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "rwout/rwout.h"

static json_t *
spec_of(const char *text)
{
	json_t *spec = json_loads(text, 0, NULL);

	assert_non_null(spec);
	return spec;
}

static void
parse_ok(const char *text, json_t **spec, struct rw_conf *c)
{
	struct herr err = HERR_INIT;

	*spec = spec_of(text);
	if (rw_parse("r", *spec, c, &err) < 0)
		fail_msg("rw_parse: %s: %s", err.field, err.msg);
}

static void
parse_fails(const char *text, const char *field, const char *msg_part)
{
	struct herr err = HERR_INIT;
	struct rw_conf c;
	json_t *spec = spec_of(text);

	assert_int_equal(rw_parse("r", spec, &c, &err), HERR_INVALID);
	assert_string_equal(err.field, field);
	if (msg_part && strstr(err.msg, msg_part) == NULL)
		fail_msg("'%s' does not say '%s'", err.msg, msg_part);
	json_decref(spec);
}

static void
test_parse_defaults(void **state)
{
	struct rw_conf c;
	json_t *spec;

	parse_ok("{\"url\":\"https://mimir.example/api/v1/push\"}", &spec, &c);
	assert_int_equal(c.max_bytes, 256ull << 20);
	assert_int_equal(c.max_samples_per_send, 2000);
	assert_int_equal(c.batch_send_deadline_ms, 5000);
	assert_int_equal(c.min_backoff_ms, 30);
	assert_int_equal(c.max_backoff_ms, 5000);
	assert_int_equal(c.max_shards, 4);
	assert_int_equal(c.nrules, 0);
	rw_conf_release(&c);
	json_decref(spec);

	parse_ok("{\"url\":\"http://x/w\",\"queue\":{\"max_bytes\":\"16MiB\",\"max_shards\":8,"
		 "\"min_backoff\":\"100ms\",\"max_backoff\":\"10s\",\"batch_send_deadline\":\"1s\","
		 "\"max_samples_per_send\":500},\"basic_auth\":{\"username\":\"u\","
		 "\"password_file\":\"/etc/herd/pw\"},\"headers\":{\"X-Scope-OrgID\":\"t1\"}}",
		 &spec, &c);
	assert_int_equal(c.max_bytes, 16ull << 20);
	assert_int_equal(c.max_shards, 8);
	assert_int_equal(c.min_backoff_ms, 100);
	assert_int_equal(c.max_backoff_ms, 10000);
	assert_int_equal(c.batch_send_deadline_ms, 1000);
	assert_int_equal(c.max_samples_per_send, 500);
	assert_string_equal(c.username, "u");
	assert_int_equal(c.nheaders, 1);
	assert_string_equal(c.header_names[0], "X-Scope-OrgID");
	rw_conf_release(&c);
	json_decref(spec);
}

static void
test_parse_errors(void **state)
{
	parse_fails("{}", "url", "required");
	parse_fails("{\"url\":\"ftp://x/\"}", "url", "http://");
	parse_fails("{\"url\":\"http://x/\",\"bearer_token_file\":\"token\"}", "bearer_token_file",
		    "absolute");
	parse_fails("{\"url\":\"http://x/\",\"basic_auth\":{\"username\":\"u\"}}",
		    "basic_auth.password_file", "required");
	parse_fails("{\"url\":\"http://x/\",\"basic_auth\":{\"username\":\"u\",\"password_file\":\"/p\"},"
		    "\"bearer_token_file\":\"/t\"}", "basic_auth", "not both");
	parse_fails("{\"url\":\"http://x/\",\"headers\":{\"content-type\":\"text/plain\"}}",
		    "headers.content-type", "reserved");
	parse_fails("{\"url\":\"http://x/\",\"headers\":{\"X-A\":\"a\\r\\nB: c\"}}", "headers.X-A",
		    "control");
	parse_fails("{\"url\":\"http://x/\",\"relabel\":[{\"source_labels\":[\"host\"],"
		    "\"target_label\":\"instance\"},{\"regex\":\"(a\",\"target_label\":\"x\"}]}",
		    "relabel[1].regex", "POSIX");
	parse_fails("{\"url\":\"http://x/\",\"relabel\":[{\"source_labels\":[\"host\"]}]}",
		    "relabel[0].target_label", "required");
	parse_fails("{\"url\":\"http://x/\",\"relabel\":[{\"action\":\"hashmod\"}]}",
		    "relabel[0].action", "hashmod");
	parse_fails("{\"url\":\"http://x/\",\"relabel\":[{\"action\":\"keep\",\"regex\":\"a\"}]}",
		    "relabel[0].source_labels", "required");
	parse_fails("{\"url\":\"http://x/\",\"relabel\":[{\"action\":\"labeldrop\"}]}",
		    "relabel[0].regex", "required");
	parse_fails("{\"url\":\"http://x/\",\"relabel\":[{\"source_labels\":[\"a-b\"],\"target_label\":\"x\"}]}",
		    "relabel[0].source_labels[0]", "label name");
	parse_fails("{\"url\":\"http://x/\",\"relabel\":[{\"modulus\":3}]}", "relabel[0].modulus",
		    "unknown");
	parse_fails("{\"url\":\"http://x/\",\"queue\":{\"min_backoff\":\"2s\",\"max_backoff\":\"1s\"}}",
		    "queue.max_backoff", "min_backoff");
	parse_fails("{\"url\":\"http://x/\",\"queue\":{\"max_bytes\":\"12 parsecs\"}}", "queue.max_bytes",
		    "size");
	parse_fails("{\"url\":\"http://x/\",\"queue\":{\"max_bytes\":1000}}", "queue.max_bytes", "1MiB");
	parse_fails("{\"url\":\"http://x/\",\"queue\":{\"max_shards\":0}}", "queue.max_shards", "1 to 64");
	parse_fails("{\"url\":\"http://x/\",\"queue\":{\"capacity\":10}}", "queue.capacity", "unknown");
}

/* Labels of a herd sample: __name__, host, group, cluster, plus extra. */
static void
herd_labels(struct rw_labels *ls, const char *metric)
{
	memset(ls, 0, sizeof(*ls));
	assert_true(rw_labels_set(ls, "__name__", metric));
	assert_true(rw_labels_set(ls, "host", "node-1"));
	assert_true(rw_labels_set(ls, "group", "web"));
	assert_true(rw_labels_set(ls, "cluster", "prod"));
}

static const char *
value_of(const struct rw_labels *ls, const char *name)
{
	for (int i = 0; i < ls->n; i++)
		if (strcmp(ls->name[i], name) == 0)
			return ls->value[i];
	return NULL;
}

static void
test_relabel(void **state)
{
	static struct rw_labels ls;
	struct rw_conf c;
	json_t *spec;

	parse_ok("{\"url\":\"http://x/\",\"relabel\":["
		 "{\"source_labels\":[\"host\"],\"target_label\":\"instance\"},"
		 "{\"action\":\"labeldrop\",\"regex\":\"host\"},"
		 "{\"action\":\"drop\",\"source_labels\":[\"__name__\"],\"regex\":\"mem_.*\"},"
		 "{\"source_labels\":[\"cluster\",\"group\"],\"separator\":\"/\",\"regex\":\"(.*)/(w.*)\","
		 "\"target_label\":\"job\",\"replacement\":\"herd-$2-${1}\"},"
		 "{\"source_labels\":[\"group\"],\"regex\":\"eb\",\"target_label\":\"unanchored\"}]}",
		 &spec, &c);
	herd_labels(&ls, "cpu_busy_pct");
	assert_true(rw_relabel(&c, &ls));
	assert_null(value_of(&ls, "host"));
	assert_string_equal(value_of(&ls, "instance"), "node-1");
	assert_string_equal(value_of(&ls, "job"), "herd-web-prod");
	assert_null(value_of(&ls, "unanchored"));   /* "eb" does not match "web": anchored */
	/* sorted by name, as the spec wants */
	for (int i = 1; i < ls.n; i++)
		assert_true(strcmp(ls.name[i - 1], ls.name[i]) < 0);
	assert_string_equal(ls.name[0], "__name__");
	herd_labels(&ls, "mem_used_bytes");
	assert_false(rw_relabel(&c, &ls));   /* dropped */
	rw_conf_release(&c);
	json_decref(spec);

	/* keep, labelkeep, and an empty replacement deleting a label */
	parse_ok("{\"url\":\"http://x/\",\"relabel\":["
		 "{\"action\":\"keep\",\"source_labels\":[\"cluster\"],\"regex\":\"prod|stage\"},"
		 "{\"action\":\"labelkeep\",\"regex\":\"__name__|cluster|group\"},"
		 "{\"source_labels\":[\"group\"],\"target_label\":\"group\",\"replacement\":\"\"}]}",
		 &spec, &c);
	herd_labels(&ls, "x");
	assert_true(rw_relabel(&c, &ls));
	assert_int_equal(ls.n, 2);
	assert_string_equal(value_of(&ls, "cluster"), "prod");
	assert_null(value_of(&ls, "group"));
	herd_labels(&ls, "x");
	assert_true(rw_labels_set(&ls, "cluster", "dev"));
	assert_false(rw_relabel(&c, &ls));   /* not kept */
	rw_conf_release(&c);
	json_decref(spec);

	/* a rule that removes the metric name drops the sample */
	parse_ok("{\"url\":\"http://x/\",\"relabel\":[{\"action\":\"labeldrop\",\"regex\":\"__name__\"}]}",
		 &spec, &c);
	herd_labels(&ls, "x");
	assert_false(rw_relabel(&c, &ls));
	rw_conf_release(&c);
	json_decref(spec);
}

static void
test_records(void **state)
{
	static struct rw_labels ls;
	const char *names[] = { "__name__", "host", "mode" }, *values[] = { "cpu", "node-1", "" };
	char buf[2 * RW_RECORD_MAX];
	struct pw_label l[RW_LABELS_MAX];
	size_t n1, n2;
	int64_t ts;
	double v;

	n1 = rw_record_put(buf, 1700000000123, 42.5, names, values, 3);
	assert_true(n1 > 22);
	n2 = rw_record_put(buf + n1, 1700000001123, -1, names, values, 2);
	assert_int_equal(rw_record_get(buf, n1 + n2, &ts, &v, &ls), n1);
	assert_int_equal(ts, 1700000000123);
	assert_true(v == 42.5);
	assert_int_equal(ls.n, 2);   /* an empty value is no label */
	assert_string_equal(value_of(&ls, "host"), "node-1");
	assert_int_equal(rw_record_get(buf + n1, n2, &ts, &v, NULL), n2);
	assert_true(v == -1);
	assert_int_equal(rw_record_labels(buf, n1, l, RW_LABELS_MAX), 3);
	assert_string_equal(l[1].name, "host");
	assert_string_equal(l[1].value, "node-1");
	assert_true(l[1].value > buf && l[1].value < buf + n1);   /* into the record */
	assert_int_equal(rw_record_labels(buf, n1, l, 2), -1);
	/* a torn tail is no record */
	for (size_t cut = 0; cut < n2; cut++)
		assert_int_equal(rw_record_get(buf + n1, cut, &ts, &v, NULL), 0);
	/* same labels, same hash; other labels, another */
	assert_true(rw_record_hash(buf, n1) != rw_record_hash(buf + n1, n2));
	n2 = rw_record_put(buf + n1, 5, 6, names, values, 3);
	assert_true(rw_record_hash(buf, n1) == rw_record_hash(buf + n1, n2));
}

static void
test_decisions(void **state)
{
	/* the spec: 5xx and 429 retried, any other 4xx never; no answer retried */
	assert_int_equal(rw_classify(0, 200), RW_OK);
	assert_int_equal(rw_classify(0, 204), RW_OK);
	assert_int_equal(rw_classify(0, 400), RW_DROP);
	assert_int_equal(rw_classify(0, 401), RW_DROP);
	assert_int_equal(rw_classify(0, 404), RW_DROP);
	assert_int_equal(rw_classify(0, 413), RW_DROP);
	assert_int_equal(rw_classify(0, 429), RW_RETRY);
	assert_int_equal(rw_classify(0, 500), RW_RETRY);
	assert_int_equal(rw_classify(0, 503), RW_RETRY);
	assert_int_equal(rw_classify(HERR_UNAVAIL, 0), RW_RETRY);
	assert_int_equal(rw_classify(HERR_TIMEOUT, 0), RW_RETRY);
	assert_int_equal(rw_classify(0, 302), RW_DROP);
	/* min doubling to max, jittered into [d/2, d) */
	assert_int_equal(rw_backoff_ms(1, 30, 5000, 0), 15);
	assert_int_equal(rw_backoff_ms(2, 30, 5000, 0), 30);
	assert_int_equal(rw_backoff_ms(3, 30, 5000, 0.5), 90);
	assert_int_equal(rw_backoff_ms(20, 30, 5000, 0), 2500);
	assert_true(rw_backoff_ms(20, 30, 5000, 0.999) < 5000);
	assert_int_equal(rw_backoff_ms(1000, 30, 5000, 0), 2500);
	/* 1 + the segments waiting behind, up to max */
	assert_int_equal(rw_shards_decide(0, 4), 1);
	assert_int_equal(rw_shards_decide(1, 4), 2);
	assert_int_equal(rw_shards_decide(3, 4), 4);
	assert_int_equal(rw_shards_decide(4, 4), 4);
	assert_int_equal(rw_shards_decide(100, 4), 4);
	assert_int_equal(rw_shards_decide(100, 1), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_defaults),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_relabel),
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_decisions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
