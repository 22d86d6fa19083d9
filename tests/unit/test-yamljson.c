/* test-yamljson.c - YAML to JSON conversion and the path -> line index:
 * scalar typing, the DESIGN.md blueprint's lines, limits and refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "herr.h"
#include "yamljson.h"

/* DESIGN.md section 6, verbatim. */
static const char blueprint[] =
	"accounts:\n"
	"  - name: here\n"
	"    driver: local                    # or qingcloud (zone, access_key_id, secret_file)\n"
	"networks:\n"
	"  - name: vpc1\n"
	"    account: here\n"
	"    cidr: 198.18.10.0/24\n"
	"load_balancers:\n"
	"  - name: api\n"
	"    network: vpc1\n"
	"    listen: 127.0.0.1:18080          # the \"public\" side\n"
	"    backend_port: 8080\n"
	"scripts:\n"
	"  - name: queue_master_installer.sh\n"
	"    file: scripts/queue_master_installer.sh     # relative to this file\n"
	"  - name: queue_node_installer.sh\n"
	"    file: scripts/queue_node_installer.sh\n"
	"templates:\n"
	"  - name: master\n"
	"    account: here\n"
	"    network: vpc1\n"
	"    init: [queue_master_installer.sh]\n"
	"    load_balancer: api\n"
	"  - name: node\n"
	"    account: here\n"
	"    network: vpc1\n"
	"    init: [queue_node_installer.sh]\n"
	"monitors:\n"
	"  - name: busy                        # prints one number\n"
	"    command: cat /run/queue/busy\n"
	"    interval: 5s\n"
	"clusters:\n"
	"  - name: demo\n"
	"    groups:\n"
	"      - name: master\n"
	"        template: master\n"
	"        size: 1\n"
	"      - name: node\n"
	"        template: node\n"
	"        size: 3\n"
	"        min: 2\n"
	"        max: 6\n"
	"        after: [master]               # launch once master is ready\n"
	"        monitors: [busy]\n"
	"        policies:\n"
	"          - name: grow\n"
	"            when: avg(busy) > 32\n"
	"            for: 10s\n"
	"            adjust: +1\n"
	"            cooldown: 30s\n"
	"          - name: shrink\n"
	"            when: min(busy) < 20\n"
	"            for: 30s\n"
	"            adjust: -1\n"
	"            cooldown: 60s\n"
	"            before_terminate: queue_drain.sh   # a script; timeout applies\n";

static json_t *
parse_ok(const char *text, struct linemap **lm)
{
	struct herr err = HERR_INIT;
	json_t *j = NULL;
	int rc = yaml_to_json(text, strlen(text), &j, lm, &err);

	if (rc != 0)
		fail_msg("unexpected error %d: %s", rc, err.msg);
	assert_non_null(j);
	return j;
}

/* Expects failure with code; returns the message for further checks. */
static void
parse_bad(const char *text, int code, const char *msg_part, struct herr *err)
{
	json_t *j = (json_t *)1;
	struct linemap *lm = (struct linemap *)1;
	int rc;

	herr_clear(err);
	rc = yaml_to_json(text, strlen(text), &j, &lm, err);
	if (rc != code)
		fail_msg("expected %d for %s, got %d: %s", code, text, rc, err->msg);
	assert_int_equal(err->code, code);
	assert_null(j);
	assert_null(lm);
	if (strstr(err->msg, msg_part) == NULL)
		fail_msg("message '%s' lacks '%s'", err->msg, msg_part);
}

static void
test_blueprint_tree(void **state)
{
	struct linemap *lm;
	json_t *j = parse_ok(blueprint, &lm);
	json_t *node = json_array_get(json_object_get(json_array_get(
		json_object_get(j, "clusters"), 0), "groups"), 1);
	json_t *grow = json_array_get(json_object_get(node, "policies"), 0);
	json_t *shrink = json_array_get(json_object_get(node, "policies"), 1);

	(void)state;
	assert_true(json_is_object(j));
	assert_int_equal(json_object_size(j), 7);
	assert_string_equal(json_string_value(json_object_get(node, "name")), "node");
	assert_true(json_is_integer(json_object_get(node, "size")));
	assert_int_equal(json_integer_value(json_object_get(node, "size")), 3);
	assert_int_equal(json_integer_value(json_object_get(node, "max")), 6);
	assert_string_equal(json_string_value(json_array_get(json_object_get(node, "after"), 0)),
			    "master");
	assert_string_equal(json_string_value(json_object_get(grow, "when")), "avg(busy) > 32");
	/* YAML's core schema: +1 is the integer 1, -1 is -1 */
	assert_int_equal(json_integer_value(json_object_get(grow, "adjust")), 1);
	assert_int_equal(json_integer_value(json_object_get(shrink, "adjust")), -1);
	assert_string_equal(json_string_value(json_object_get(grow, "for")), "10s");
	assert_string_equal(json_string_value(json_object_get(shrink, "before_terminate")),
			    "queue_drain.sh");
	assert_string_equal(json_string_value(json_object_get(json_array_get(
		json_object_get(j, "load_balancers"), 0), "listen")), "127.0.0.1:18080");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(
		json_object_get(j, "load_balancers"), 0), "backend_port")), 8080);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
		json_object_get(j, "networks"), 0), "cidr")), "198.18.10.0/24");
	json_decref(j);
	linemap_free(lm);
}

static void
test_blueprint_lines(void **state)
{
	static const struct { const char *path; int line, value_line; } want[] = {
		{ "", 1, 1 },
		{ "accounts", 1, 2 },
		{ "accounts[0]", 2, 2 },
		{ "accounts[0].name", 2, 2 },
		{ "accounts[0].driver", 3, 3 },
		{ "networks[0].cidr", 7, 7 },
		{ "load_balancers[0].backend_port", 12, 12 },
		{ "scripts", 13, 14 },
		{ "scripts[1]", 16, 16 },
		{ "scripts[1].file", 17, 17 },
		{ "templates[0].init", 22, 22 },
		{ "templates[0].init[0]", 22, 22 },
		{ "templates[1].init[0]", 27, 27 },
		{ "monitors[0].interval", 31, 31 },
		{ "clusters[0]", 33, 33 },
		{ "clusters[0].groups", 34, 35 },
		{ "clusters[0].groups[0].size", 37, 37 },
		{ "clusters[0].groups[1]", 38, 38 },
		{ "clusters[0].groups[1].size", 40, 40 },
		{ "clusters[0].groups[1].after[0]", 43, 43 },
		{ "clusters[0].groups[1].monitors", 44, 44 },
		{ "clusters[0].groups[1].policies", 45, 46 },
		{ "clusters[0].groups[1].policies[0].when", 47, 47 },
		{ "clusters[0].groups[1].policies[1]", 51, 51 },
		{ "clusters[0].groups[1].policies[1].before_terminate", 56, 56 },
		/* unknown tails fall back to the longest known prefix */
		{ "clusters[0].groups[1].desired", 38, 38 },
		{ "clusters[0].groups[7].size", 34, 35 },
		{ "clusters[0].groups[1].policies[1].adjust.x", 54, 54 },
		{ "clusters[0].groups[x", 34, 35 },
		{ "nosuch", 0, 0 },
		{ "nosuch.size", 0, 0 },
		{ "[0]", 0, 0 },
	};
	struct linemap *lm;
	json_t *j = parse_ok(blueprint, &lm);

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int got = linemap_line(lm, want[i].path);
		int gotv = linemap_value_line(lm, want[i].path);

		if (got != want[i].line || gotv != want[i].value_line)
			fail_msg("%s: line %d value %d, want %d and %d", want[i].path, got, gotv,
				 want[i].line, want[i].value_line);
	}
	assert_int_equal(linemap_line(NULL, "accounts"), 0);
	json_decref(j);
	linemap_free(lm);
}

static void
test_scalars(void **state)
{
	json_t *j = parse_ok(
		"big: 9007199254740993\n"
		"max: 9223372036854775807\n"
		"min: -9223372036854775808\n"
		"over: 9223372036854775808\n"
		"under: -9223372036854775809\n"
		"plus: +7\n"
		"zero: 0\n"
		"negzero: -0\n"
		"octal: 0755\n"
		"hex: 0x1f\n"
		"real: 1.5\n"
		"exp: -2e3\n"
		"dot: .5\n"
		"inf: .inf\n"
		"huge: 1e999\n"
		"t: true\n"
		"T: True\n"
		"f: FALSE\n"
		"yes: yes\n"
		"n1: null\n"
		"n2: ~\n"
		"n3:\n"
		"qint: \"42\"\n"
		"qnull: 'null'\n"
		"qtrue: \"true\"\n"
		"block: |\n"
		"  12\n"
		"folded: >-\n"
		"  a\n"
		"  b\n"
		"esc: \"tab\\there \\u00e9\"\n"
		"ver: 1.2.3\n"
		"time: 10:30\n"
		"neg: -x\n"
		"utf8: h\xc3\xa9llo\n", NULL);

	(void)state;
	assert_true(json_is_integer(json_object_get(j, "big")));
	assert_true(json_integer_value(json_object_get(j, "big")) == 9007199254740993LL);
	assert_true(json_integer_value(json_object_get(j, "max")) == INT64_MAX);
	assert_true(json_integer_value(json_object_get(j, "min")) == INT64_MIN);
	assert_string_equal(json_string_value(json_object_get(j, "over")), "9223372036854775808");
	assert_string_equal(json_string_value(json_object_get(j, "under")),
			    "-9223372036854775809");
	assert_int_equal(json_integer_value(json_object_get(j, "plus")), 7);
	assert_true(json_is_integer(json_object_get(j, "zero")));
	assert_true(json_is_integer(json_object_get(j, "negzero")));
	assert_string_equal(json_string_value(json_object_get(j, "octal")), "0755");
	assert_string_equal(json_string_value(json_object_get(j, "hex")), "0x1f");
	assert_true(json_is_real(json_object_get(j, "real")));
	assert_true(json_real_value(json_object_get(j, "real")) == 1.5);
	assert_true(json_real_value(json_object_get(j, "exp")) == -2000.0);
	assert_true(json_real_value(json_object_get(j, "dot")) == 0.5);
	assert_string_equal(json_string_value(json_object_get(j, "inf")), ".inf");
	assert_string_equal(json_string_value(json_object_get(j, "huge")), "1e999");
	assert_true(json_is_true(json_object_get(j, "t")));
	assert_true(json_is_true(json_object_get(j, "T")));
	assert_true(json_is_false(json_object_get(j, "f")));
	assert_string_equal(json_string_value(json_object_get(j, "yes")), "yes");
	assert_true(json_is_null(json_object_get(j, "n1")));
	assert_true(json_is_null(json_object_get(j, "n2")));
	assert_true(json_is_null(json_object_get(j, "n3")));
	assert_string_equal(json_string_value(json_object_get(j, "qint")), "42");
	assert_string_equal(json_string_value(json_object_get(j, "qnull")), "null");
	assert_string_equal(json_string_value(json_object_get(j, "qtrue")), "true");
	assert_string_equal(json_string_value(json_object_get(j, "block")), "12\n");
	assert_string_equal(json_string_value(json_object_get(j, "folded")), "a b");
	assert_string_equal(json_string_value(json_object_get(j, "esc")), "tab\there \xc3\xa9");
	assert_string_equal(json_string_value(json_object_get(j, "ver")), "1.2.3");
	assert_string_equal(json_string_value(json_object_get(j, "time")), "10:30");
	assert_string_equal(json_string_value(json_object_get(j, "neg")), "-x");
	assert_string_equal(json_string_value(json_object_get(j, "utf8")), "h\xc3\xa9llo");
	json_decref(j);
}

static void
test_keys_are_text(void **state)
{
	struct linemap *lm;
	json_t *j = parse_ok("1: one\ntrue: yes\n~: nil\n\"a.b\": dotted\nset: {min: 4, desired: 4}\n",
			     &lm);

	(void)state;
	assert_string_equal(json_string_value(json_object_get(j, "1")), "one");
	assert_string_equal(json_string_value(json_object_get(j, "true")), "yes");
	assert_string_equal(json_string_value(json_object_get(j, "~")), "nil");
	assert_string_equal(json_string_value(json_object_get(j, "a.b")), "dotted");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "set"), "desired")),
			 4);
	assert_int_equal(linemap_line(lm, "set.desired"), 5);
	assert_int_equal(linemap_line(lm, "~"), 3);
	/* a key with a '.' cannot be addressed: no match at all */
	assert_int_equal(linemap_line(lm, "a.b"), 0);
	json_decref(j);
	linemap_free(lm);
}

static void
test_empty_keys(void **state)
{
	struct linemap *lm;
	json_t *j = parse_ok("'': x\nb:\n  '': {'': 2}\n", &lm);

	(void)state;
	assert_string_equal(json_string_value(json_object_get(j, "")), "x");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(j, "b"),
									  ""), "")), 2);
	assert_int_equal(linemap_line(lm, "b"), 2);
	assert_int_equal(linemap_line(lm, "b.."), 3);
	json_decref(j);
	linemap_free(lm);
}

static void
test_flow_and_root_kinds(void **state)
{
	struct linemap *lm;
	json_t *j;

	(void)state;
	j = parse_ok("[1, [2, 3], {a: b}]\n", &lm);
	assert_true(json_is_array(j));
	assert_int_equal(json_array_size(j), 3);
	assert_int_equal(json_integer_value(json_array_get(json_array_get(j, 1), 1)), 3);
	assert_int_equal(linemap_line(lm, "[2].a"), 1);
	json_decref(j);
	linemap_free(lm);

	j = parse_ok("--- just text\n...\n", &lm);
	assert_string_equal(json_string_value(j), "just text");
	json_decref(j);
	linemap_free(lm);

	j = parse_ok("", &lm);
	assert_true(json_is_null(j));
	assert_int_equal(linemap_line(lm, ""), 0);
	json_decref(j);
	linemap_free(lm);

	j = parse_ok("# only a comment\n", NULL);
	assert_true(json_is_null(j));
	json_decref(j);

	j = parse_ok("\n\n\nlate:\n  - x\n", &lm);
	assert_int_equal(linemap_line(lm, ""), 4);
	assert_int_equal(linemap_line(lm, "late[0]"), 5);
	json_decref(j);
	linemap_free(lm);
}

static void
test_length_not_nul(void **state)
{
	static const char text[] = "a: 1\nb: 2\n";
	struct herr err = HERR_INIT;
	json_t *j;

	(void)state;
	/* only the first line counts */
	assert_int_equal(yaml_to_json(text, 5, &j, NULL, &err), 0);
	assert_int_equal(json_object_size(j), 1);
	json_decref(j);
}

static void
test_duplicate_key(void **state)
{
	struct herr err;

	(void)state;
	parse_bad("a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\n", HERR_INVALID, "line 5: duplicate key 'c'",
		  &err);
	assert_string_equal(err.field, "b.c");
	parse_bad("groups:\n  - name: x\n    size: 1\n    size: 2\n", HERR_INVALID,
		  "line 4: duplicate key 'size'", &err);
	assert_string_equal(err.field, "groups[0].size");
	parse_bad("{a: 1, a: 1}", HERR_INVALID, "line 1: duplicate key 'a'", &err);
}

static void
test_refusals(void **state)
{
	struct herr err;

	(void)state;
	parse_bad("a: &x 1\nb: *x\n", HERR_INVALID, "line 1: anchors are not supported", &err);
	assert_string_equal(err.field, "a");
	parse_bad("a: *x\n", HERR_INVALID, "line 1:", &err);
	parse_bad("a: !!str 1\n", HERR_INVALID, "line 1: tags are not supported", &err);
	parse_bad("x: 1\ny: !custom\n  z: 1\n", HERR_INVALID, "line 2: tags are not supported",
		  &err);
	assert_string_equal(err.field, "y");
	parse_bad("? [a, b]\n: c\n", HERR_INVALID, "line 1: mapping keys must be scalars", &err);
	parse_bad("a: 1\n---\nb: 2\n", HERR_INVALID, "line 2: only one document is allowed",
		  &err);
	parse_bad("a: \"x\\0y\"\n", HERR_INVALID, "line 1: NUL character in string", &err);
	parse_bad("\"k\\0\": 1\n", HERR_INVALID, "line 1: NUL character in key", &err);
}

static void
test_syntax_errors(void **state)
{
	struct herr err;

	(void)state;
	parse_bad("a: 1\nb: [1, 2\n", HERR_INVALID, "line 3:", &err);
	parse_bad("a:\n  b: 1\n c: 2\n", HERR_INVALID, "line 3:", &err);
	parse_bad("a: 'open\n", HERR_INVALID, "line 2:", &err);
	parse_bad("key: value: other\n", HERR_INVALID, "line 1: mapping values are not allowed",
		  &err);
	parse_bad("ok: 1\nbad: \xff\xfe\n", HERR_INVALID, "line 2: invalid", &err);
	parse_bad("a:\n\tb: 1\n", HERR_INVALID, "line 2:", &err);
	assert_string_equal(err.field, "");
}

static char *
nested(int depth, char open, char close)
{
	char *s = malloc((size_t)depth * 2 + 2);

	memset(s, open, (size_t)depth);
	memset(s + depth, close, (size_t)depth);
	s[2 * depth] = '\n';
	s[2 * depth + 1] = '\0';
	return s;
}

static void
test_depth_limit(void **state)
{
	struct herr err;
	char *s;
	json_t *j;

	(void)state;
	s = nested(YAMLJSON_MAX_DEPTH, '[', ']');
	j = parse_ok(s, NULL);
	json_decref(j);
	free(s);
	s = nested(YAMLJSON_MAX_DEPTH + 1, '[', ']');
	parse_bad(s, HERR_TOOBIG, "line 1: nesting deeper than 64", &err);
	free(s);
	s = nested(5000, '[', ']');
	parse_bad(s, HERR_TOOBIG, "nesting deeper than 64", &err);
	free(s);

	/* block mappings count too */
	{
		char buf[8192];
		size_t len = 0;

		for (int d = 0; d <= YAMLJSON_MAX_DEPTH; d++)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%*sk%d:\n", d, "", d);
		parse_bad(buf, HERR_TOOBIG, "line 65: nesting deeper than 64", &err);
	}
}

static void
test_size_limits(void **state)
{
	struct herr err = HERR_INIT;
	size_t n = YAMLJSON_MAX_BYTES + 1;
	char *s = malloc(n + 1);
	json_t *j;

	(void)state;
	memset(s, ' ', n);
	s[n] = '\0';
	assert_int_equal(yaml_to_json(s, n, &j, NULL, &err), HERR_TOOBIG);
	assert_null(j);

	/* a long key on a long list: paths are bounded, the index stays linear */
	/* libyaml allows 1024 bytes for a simple key: use an explicit one */
	memset(s, 0, n);
	memcpy(s, "? ", 2);
	memset(s + 2, 'k', 5000);
	strcpy(s + 5002, "\n: [1]\n");
	parse_bad(s, HERR_TOOBIG, "path longer than 4096 bytes", &err);

	{
		struct linemap *lm;
		size_t len;

		memcpy(s, "? ", 2);
		memset(s + 2, 'k', 4000);
		len = 4002;
		len += (size_t)sprintf(s + len, "\n: [");
		while (len < YAMLJSON_MAX_BYTES - 10)
			len += (size_t)sprintf(s + len, "1,");
		len += (size_t)sprintf(s + len, "2]\n");
		j = parse_ok(s, &lm);
		s[4002] = '\0';
		assert_true(json_array_size(json_object_get(j, s + 2)) > 500000);
		strcat(s, "[400000]");
		assert_int_equal(linemap_line(lm, s + 2), 2);
		assert_int_equal(linemap_line(lm, s + 2 + 1), 0);
		json_decref(j);
		linemap_free(lm);
	}
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blueprint_tree),
		cmocka_unit_test(test_blueprint_lines),
		cmocka_unit_test(test_scalars),
		cmocka_unit_test(test_keys_are_text),
		cmocka_unit_test(test_empty_keys),
		cmocka_unit_test(test_flow_and_root_kinds),
		cmocka_unit_test(test_length_not_nul),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_size_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
