/* model/token.c - API tokens' storage and the credentials generation
 * (model/token.h). The token text leaves this file once, at creation;
 * lookups go by hash and compare in constant time. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "model/token.h"
#include "store/store.h"
#include "util.h"

static _Atomic uint64_t cred_generation;

void
token_invalidate(void)
{
	atomic_fetch_add(&cred_generation, 1);
}

uint64_t
token_generation(void)
{
	return atomic_load(&cred_generation);
}

int
token_create(struct store *st, const char *name, const char *role, char *out, size_t outsz,
	     struct herr *err)
{
	char hash[65];

	token_random(out, outsz, "hd_", 24);
	sha256_hex(out, strlen(out), hash);
	return store_q(st, NULL, NULL, err,
		       "INSERT INTO tokens (name, role, hash, created_ms) VALUES (?, ?, ?, ?)",
		       "[sssI]", name, role, hash, (json_int_t)now_ms());
}

int
token_find_by_hash(struct store *st, const char *hash, struct token *out, struct herr *err)
{
	json_t *row = store_row(st, err, "SELECT name, role, hash, created_ms FROM tokens"
				" WHERE hash = ?", "[s]", hash);
	const char *name = NULL, *role = NULL, *h = NULL;
	json_int_t created = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (row == NULL)
		return err->code ? err->code : (err->code = HERR_NOTFOUND);
	if (json_unpack(row, "{s:s, s:s, s:s, s?I}", "name", &name, "role", &role, "hash", &h,
			"created_ms", &created) < 0 || !str_ct_equal(h, hash)) {
		rc = err->code = HERR_NOTFOUND;
		goto out;
	}
	snprintf(out->name, sizeof(out->name), "%s", name);
	snprintf(out->role, sizeof(out->role), "%s", role);
	snprintf(out->hash, sizeof(out->hash), "%s", h);
	out->created_ms = created;
out:
	json_decref(row);
	return rc;
}

int
token_list(struct store *st, json_t **out, struct herr *err)
{
	*out = NULL;
	return store_q(st, out, NULL, err, "SELECT name, role, created_ms FROM tokens ORDER BY name",
		       NULL);
}

int
token_delete(struct store *st, const char *name, struct herr *err)
{
	int64_t n = 0;
	int rc;

	if ((rc = store_q(st, NULL, &n, err, "DELETE FROM tokens WHERE name = ?", "[s]", name)) < 0)
		return rc;
	if (n == 0)
		return herr_set(err, HERR_NOTFOUND, "no token named '%s'", name);
	token_invalidate();
	return 0;
}

int
token_count(struct store *st, int64_t *n, struct herr *err)
{
	json_t *row = store_row(st, err, "SELECT COUNT(*) AS n FROM tokens", NULL);

	*n = 0;
	if (row == NULL)
		return err->code;
	*n = json_integer_value(json_object_get(row, "n"));
	json_decref(row);
	return 0;
}
