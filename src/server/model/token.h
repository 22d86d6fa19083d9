/* model/token.h - API tokens: random, shown once at creation, stored only
 * as SHA-256 hashes, each with a role (viewer < operator < admin); and the
 * credentials generation, which drops every cached credential (the API's
 * auth cache) when a token is deleted or a host terminates. */
#ifndef HERD_MODEL_TOKEN_H
#define HERD_MODEL_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"

struct store;

/* A tokens row, typed. */
struct token {
	char name[96];
	char role[16];          /* "viewer", "operator" or "admin" */
	char hash[65];          /* SHA-256 of the token text, hex */
	int64_t created_ms;
};

/* Makes a token named name with role (a role name, "viewer", "operator" or
 * "admin": not checked here) and writes its text ("hd_...") into out; only
 * its hash is stored. HERR_CONFLICT when the name is taken; 0 or a store
 * error. */
int token_create(struct store *st, const char *name, const char *role, char *out, size_t outsz,
		 struct herr *err);

/* The token whose hash is hash (compared in constant time): 0, or
 * HERR_NOTFOUND (err->msg unset) or a store error. */
int token_find_by_hash(struct store *st, const char *hash, struct token *out, struct herr *err);

/* Every token (never its hash) as an owned array of {name, role,
 * created_ms}, by name. 0 or a store error. */
int token_list(struct store *st, json_t **out, struct herr *err);

/* Deletes token name and calls token_invalidate(). 0, HERR_NOTFOUND or a
 * store error. */
int token_delete(struct store *st, const char *name, struct herr *err);

/* How many tokens exist (*n). 0 or a store error. */
int token_count(struct store *st, int64_t *n, struct herr *err);

/* Credentials changed (a token deleted, a host terminated): bumps the
 * generation, so a credential cached under an older one is looked up
 * again. Any thread. */
void token_invalidate(void);

/* The credentials generation token_invalidate() bumps (starts at 0). */
uint64_t token_generation(void);

#endif
