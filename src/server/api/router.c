/* router.c - matches a request to a line of routes.def. The table is small
 * (tens of lines), so a linear scan over pre-split patterns is enough.
 * ":x" matches one segment; a trailing "*" matches the rest of the path. */
#include <string.h>

#include "api.h"
#include "xalloc.h"

static const struct route routes[] = {
#define ROUTE(m, p, r, f, a) { m, p, r, f, a },
#include "routes.def"
#undef ROUTE
};

/* Matches path against pattern; on success fills params (owned copies). */
static bool
match(const char *pattern, const char *path, char **params, int *nparams)
{
	const char *p = pattern, *u = path;
	int n = 0;

	while (*p && *u) {
		if (*p == '*' && p[1] == '\0')
			break;  /* a trailing "*" takes the rest, below */
		if (*p == ':') {
			const char *end = strchr(u, '/');
			size_t len = end ? (size_t)(end - u) : strlen(u);
			if (len == 0 || n == REQ_MAX_PARAMS)
				goto fail;
			params[n++] = xstrndup(u, len);
			u += len;
			while (*p && *p != '/')
				p++;
			continue;
		}
		if (*p != *u)
			goto fail;
		p++;
		u++;
	}
	if (*p == '*' && p[1] == '\0') {
		/* A pattern "/ui/" + star matches "/ui/" and all below it;
		 * the rest (maybe "") becomes the last parameter. */
		if (n == REQ_MAX_PARAMS)
			goto fail;
		params[n++] = xstrdup(u);
		*nparams = n;
		return true;
	}
	if (*p == '\0' && (*u == '\0' || (u[0] == '/' && u[1] == '\0'))) {
		*nparams = n;
		return true;
	}
fail:
	while (n > 0)
		xfree(&params[--n]);
	return false;
}

const struct route *
route_match(const char *method, const char *path, char **params, int *nparams,
	    bool *method_mismatch)
{
	*method_mismatch = false;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!match(routes[i].pattern, path, params, nparams))
			continue;
		if (strcmp(routes[i].method, method) == 0)
			return &routes[i];
		*method_mismatch = true;
		while (*nparams > 0)
			xfree(&params[--*nparams]);
	}
	return NULL;
}
