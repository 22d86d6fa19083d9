/* model/network.h - a network as the controllers read it: the typed form
 * of a stored network spec (its account and address range), loaded once.
 * The addresses derived from it (gateway, provider id) stay with reconcile. */
#ifndef HERD_MODEL_NETWORK_H
#define HERD_MODEL_NETWORK_H

#include <jansson.h>

#include "herr.h"

struct store;

struct network_spec {
	char name[64];
	char account[64];
	char cidr[64];          /* as declared: "198.18.10.0/24" */
};

/* Fills *out from a stored network spec (borrowed) named name; absent
 * fields are "". A field of the wrong type or too long (only a spec written
 * around the API) is HERR_STORE naming it. Returns 0 or that code. */
int network_from_spec(const char *name, const json_t *spec, struct network_spec *out,
		      struct herr *err);

/* Loads network name from the store into *out. Returns 0, HERR_NOTFOUND,
 * the store's error or network_from_spec's. */
int network_get(struct store *st, const char *name, struct network_spec *out,
		struct herr *err);

#endif
