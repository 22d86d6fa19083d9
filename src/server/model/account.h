/* model/account.h - an account as the controllers read it: the typed form
 * of the fields of a stored account spec that herd itself uses (which
 * driver, and where that account's hosts reach the server). The driver's
 * own settings stay JSON: the spec is its config (prov.h, lb.h). */
#ifndef HERD_MODEL_ACCOUNT_H
#define HERD_MODEL_ACCOUNT_H

#include <jansson.h>

#include "herr.h"

struct store;

struct account_spec {
	char name[64];
	char driver[1025];        /* "local", "qingcloud", ...; "" when absent */
	char server_url[1025];    /* overrides --advertise-url; "" = none */
};

/* Fills *out from a stored account spec (borrowed) named name; absent
 * fields are "". A field of the wrong type or too long (only a spec written
 * around the API) is HERR_STORE naming it. Returns 0 or that code. */
int account_from_spec(const char *name, const json_t *spec, struct account_spec *out,
		      struct herr *err);

#endif
