/* model/spec-read.c - shared loading helpers of the typed model structs:
 * see spec-read.h. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "model/spec-read.h"
#include "util.h"

static const char *
type_name(char t)
{
	switch (t) {
	case 's': return "a string";
	case 'I': case 'i': return "an integer";
	case 'b': return "true or false";
	case 'o': case 'O': return "a value";
	default: return "of another type";
	}
}

int
spec_read_fail(const json_t *spec, const char *what, const char *const *fields,
	       struct herr *err)
{
	if (!json_is_object(spec))
		return herr_set(err, HERR_STORE, "%s: stored spec is not an object", what);
	for (size_t i = 0; fields[i]; i++) {
		const char *colon = strchr(fields[i], ':');
		char key[64], fmt[8];
		json_int_t iv;
		const char *sv;
		int bv;
		void *p;

		if (colon == NULL || (size_t)(colon - fields[i]) >= sizeof(key))
			continue;
		snprintf(key, sizeof(key), "%.*s", (int)(colon - fields[i]), fields[i]);
		snprintf(fmt, sizeof(fmt), "{s?%c}", colon[1]);
		p = colon[1] == 's' ? (void *)&sv : colon[1] == 'b' ? (void *)&bv : (void *)&iv;
		if (json_unpack((json_t *)spec, fmt, key, p) < 0)
			return herr_field(err, HERR_STORE, key, "%s: stored '%s' is not %s", what,
					  key, type_name(colon[1]));
	}
	return herr_set(err, HERR_STORE, "%s: stored spec does not load", what);
}

int
spec_read_duration(const char *what, const char *key, const char *v, int64_t dflt, int64_t *ms,
		   struct herr *err)
{
	*ms = dflt;
	if (v == NULL)
		return 0;
	if (parse_duration_ms(v, ms) < 0) {
		*ms = dflt;
		return herr_field(err, HERR_STORE, key, "%s: stored '%s' is not a duration: '%s'",
				  what, key, v);
	}
	return 0;
}

int
spec_read_clamp(json_int_t v)
{
	return v < 0 ? 0 : v > INT_MAX ? INT_MAX : (int)v;
}

int
spec_read_str(const char *what, const char *key, const char *v, char *out, size_t n,
	      struct herr *err)
{
	if (v == NULL)
		v = "";
	if (strlen(v) >= n) {
		out[0] = '\0';
		return herr_field(err, HERR_STORE, key, "%s: stored '%s' is too long (%zu bytes)",
				  what, key, strlen(v));
	}
	memcpy(out, v, strlen(v) + 1);
	return 0;
}
