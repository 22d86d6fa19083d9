/* fuzz-yamljson.c - libFuzzer target for yaml_to_json(): any bytes must give
 * a tree or an error with a message, never a crash or leak, and every node
 * of the tree must have a line in the linemap. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yamljson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walks j checking that each addressable path has a line. */
static void
check_lines(const struct linemap *lm, json_t *j, char *path, size_t len, size_t cap)
{
	if (linemap_line(lm, path) <= 0 || linemap_value_line(lm, path) <= 0) {
		fprintf(stderr, "no line for '%s'\n", path);
		abort();
	}
	if (json_is_array(j)) {
		size_t i;
		json_t *v;

		json_array_foreach(j, i, v) {
			int w = snprintf(path + len, cap - len, "[%zu]", i);

			if (w > 0 && (size_t)w < cap - len)
				check_lines(lm, v, path, len + (size_t)w, cap);
			path[len] = '\0';
		}
	} else if (json_is_object(j)) {
		const char *k;
		json_t *v;

		json_object_foreach(j, k, v) {
			int w;

			if (k[strcspn(k, ".[")] != '\0')
				continue;   /* not addressable */
			w = snprintf(path + len, cap - len, "%s%s", len ? "." : "", k);
			if (w >= 0 && (size_t)w < cap - len)
				check_lines(lm, v, path, len + (size_t)w, cap);
			path[len] = '\0';
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct herr err = HERR_INIT;
	struct linemap *lm = NULL;
	json_t *j = NULL;
	static char path[YAMLJSON_MAX_PATH + 64];
	int rc;

	rc = yaml_to_json((const char *)data, size, &j, &lm, &err);
	if (rc < 0) {
		if (j != NULL || lm != NULL || err.msg[0] == '\0' || err.code != rc)
			abort();
		return 0;
	}
	if (j == NULL || lm == NULL)
		abort();
	path[0] = '\0';
	if (!json_is_null(j) || linemap_line(lm, "") != 0)
		check_lines(lm, j, path, 0, sizeof(path));
	free(json_dumps(j, JSON_ENCODE_ANY));
	json_decref(j);
	linemap_free(lm);
	return 0;
}
