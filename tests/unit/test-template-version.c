/* test-template-version.c - template versions (model/template-version.c),
 * the pure parts: a version is the hash of the spec (not its description)
 * and of its scripts' versions, the same whatever the key order; a change
 * of a field or of a script's version is a new version, and going back is
 * the old one; what changed between two snapshots, field by field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "model/template-version.h"

static void
version_of_text(const char *spec, const char *scripts, char out[TEMPLATE_VERSION_LEN + 1])
{
	json_t *sp = json_loads(spec, 0, NULL), *sc = scripts ? json_loads(scripts, 0, NULL) : NULL;
	json_t *snap;

	assert_non_null(sp);
	snap = template_version_snapshot(sp, sc);
	template_version_of(snap, out);
	json_decref(snap);
	json_decref(sp);
	json_decref(sc);
}

static void
test_version_stable(void **state)
{
	char a[TEMPLATE_VERSION_LEN + 1], b[TEMPLATE_VERSION_LEN + 1];

	version_of_text("{\"account\":\"a\",\"network\":\"n\",\"cpu\":1}", "{\"s\":1}", a);
	version_of_text("{\"cpu\":1,\"network\":\"n\",\"account\":\"a\"}", "{\"s\":1}", b);
	assert_int_equal(strlen(a), TEMPLATE_VERSION_LEN);
	assert_string_equal(a, b);
	for (size_t i = 0; i < TEMPLATE_VERSION_LEN; i++)
		assert_non_null(strchr("0123456789abcdef", a[i]));
	/* the description is not part of what a host is made from */
	version_of_text("{\"account\":\"a\",\"network\":\"n\",\"cpu\":1,\"description\":\"x\"}",
			"{\"s\":1}", b);
	assert_string_equal(a, b);
}

static void
test_version_changes_with_field_and_script(void **state)
{
	char a[TEMPLATE_VERSION_LEN + 1], b[TEMPLATE_VERSION_LEN + 1], c[TEMPLATE_VERSION_LEN + 1];

	version_of_text("{\"account\":\"a\",\"cpu\":1}", "{\"s\":1}", a);
	version_of_text("{\"account\":\"a\",\"cpu\":2}", "{\"s\":1}", b);
	assert_string_not_equal(a, b);
	version_of_text("{\"account\":\"a\",\"cpu\":1}", "{\"s\":2}", c);
	assert_string_not_equal(a, c);
	assert_string_not_equal(b, c);
	/* back to the same content: the same version */
	version_of_text("{\"account\":\"a\",\"cpu\":1}", "{\"s\":1}", b);
	assert_string_equal(a, b);
	/* no scripts and an empty script map are the same */
	version_of_text("{\"account\":\"a\"}", NULL, a);
	version_of_text("{\"account\":\"a\"}", "{}", b);
	assert_string_equal(a, b);
}

static json_t *
snap_of(const char *spec, const char *scripts)
{
	json_t *sp = json_loads(spec, 0, NULL), *sc = json_loads(scripts, 0, NULL);
	json_t *s = template_version_snapshot(sp, sc);

	json_decref(sp);
	json_decref(sc);
	return s;
}

static void
test_changes(void **state)
{
	json_t *old = snap_of("{\"cpu\":1,\"image\":\"x\",\"init\":[\"s\"],\"keypair\":\"k\"}",
			      "{\"s\":1}");
	json_t *new_ = snap_of("{\"cpu\":2,\"image\":\"x\",\"init\":[\"s\",\"t\"],\"memory\":128}",
			       "{\"s\":3,\"t\":1}");
	json_t *ch = template_version_changes(old, new_);
	char *text = json_dumps(ch, JSON_COMPACT);

	/* spec fields by name (sorted: cpu, init, keypair gone, memory new),
	 * then scripts (s changed, t new); image unchanged is not listed */
	assert_string_equal(text,
			    "[{\"field\":\"cpu\",\"from\":1,\"to\":2},"
			    "{\"field\":\"init\",\"from\":[\"s\"],\"to\":[\"s\",\"t\"]},"
			    "{\"field\":\"keypair\",\"from\":\"k\",\"to\":null},"
			    "{\"field\":\"memory\",\"from\":null,\"to\":128},"
			    "{\"field\":\"script s\",\"from\":1,\"to\":3},"
			    "{\"field\":\"script t\",\"from\":null,\"to\":1}]");
	free(text);
	json_decref(ch);
	/* the same snapshot: nothing changed */
	ch = template_version_changes(old, old);
	assert_int_equal(json_array_size(ch), 0);
	json_decref(ch);
	/* an unknown old version: one item saying so */
	ch = template_version_changes(NULL, new_);
	text = json_dumps(ch, JSON_COMPACT);
	assert_string_equal(text, "[{\"field\":\"version\",\"from\":\"unknown\",\"to\":null}]");
	free(text);
	json_decref(ch);
	json_decref(old);
	json_decref(new_);
}

/* A host is current only on the group's template at its version; another
 * template, another version or an unknown one is behind. */
static void
test_is_current(void **state)
{
	(void)state;
	assert_true(template_version_is_current("web", "3c1f0e9a7b21", "web", "3c1f0e9a7b21"));
	assert_false(template_version_is_current("web", "5d2a41c0f8e3", "web", "3c1f0e9a7b21"));
	assert_false(template_version_is_current("site", "3c1f0e9a7b21", "web", "3c1f0e9a7b21"));
	assert_false(template_version_is_current("web", "", "web", "3c1f0e9a7b21"));
	assert_false(template_version_is_current(NULL, NULL, "web", "3c1f0e9a7b21"));
	/* a template gone at launch: hosts made then said "unknown" */
	assert_true(template_version_is_current("web", NULL, "web", "unknown"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_stable),
		cmocka_unit_test(test_version_changes_with_field_and_script),
		cmocka_unit_test(test_changes),
		cmocka_unit_test(test_is_current),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
