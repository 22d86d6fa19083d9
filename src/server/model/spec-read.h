/* model/spec-read.h - helpers the typed model structs (struct group,
 * struct template_spec, struct network_spec) share to load a stored spec:
 * naming the field a failed json_unpack tripped on, durations parsed once,
 * integers clamped. A stored spec passed the kind's checks when it came
 * in, so any failure here is a spec written around the API: HERR_STORE. */
#ifndef HERD_MODEL_SPEC_READ_H
#define HERD_MODEL_SPEC_READ_H

#include <stdint.h>

#include <jansson.h>

#include "herr.h"

/* After json_unpack of spec failed: finds the first of `fields` (a
 * NULL-terminated list of "key:T", T one json_unpack type letter) whose
 * value is present with another type and sets err (HERR_STORE, field =
 * key) saying so about `what` ("group 'c/web'"). Returns the code. */
int spec_read_fail(const json_t *spec, const char *what, const char *const *fields,
		   struct herr *err);

/* *ms = duration text v ("10s"), or dflt when v is NULL. A text that does
 * not parse is HERR_STORE naming key. Returns 0 or the code. */
int spec_read_duration(const char *what, const char *key, const char *v, int64_t dflt,
		       int64_t *ms, struct herr *err);

/* v clamped to [0, INT_MAX]. */
int spec_read_clamp(json_int_t v);

/* Copies v (NULL: "") into out[n]; a value that does not fit is HERR_STORE
 * naming key. Returns 0 or the code. */
int spec_read_str(const char *what, const char *key, const char *v, char *out, size_t n,
		  struct herr *err);

#endif
