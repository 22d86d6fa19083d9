/* fuzz-expr.c - libFuzzer target for expr_parse() and adjust_parse(): no
 * crash, and whatever parses prints canonically and parses back the same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct herr err = HERR_INIT;
	char *s = malloc(size + 1), text[EXPR_TEXT_MAX];
	struct expr e, e2;
	struct adjust a, a2;

	memcpy(s, data, size);
	s[size] = '\0';
	if (expr_parse(s, &e, &err) == 0) {
		int n = expr_format(&e, text, sizeof(text));

		if (n <= 0 || (size_t)n >= sizeof(text))
			abort();
		if (expr_parse(text, &e2, &err) != 0 || e2.agg != e.agg || e2.op != e.op ||
		    e2.value != e.value || strcmp(e2.metric, e.metric) != 0) {
			fprintf(stderr, "'%s' -> '%s' does not round-trip\n", s, text);
			abort();
		}
		(void)expr_holds(&e, e.value);
	} else if (err.code != HERR_INVALID || err.msg[0] == '\0') {
		abort();
	}
	if (adjust_parse(s, &a, &err) == 0) {
		static const long long cur[] = { 0, 1, 3, 7, 1000, 9223372036854775807LL };

		adjust_format(&a, text, sizeof(text));
		if (adjust_parse(text, &a2, &err) != 0 || a2.kind != a.kind || a2.n != a.n)
			abort();
		for (size_t i = 0; i < sizeof(cur) / sizeof(cur[0]); i++)
			if (adjust_apply(&a, cur[i]) < 0)
				abort();
	}
	free(s);
	return 0;
}
