/* promwire.h - Prometheus remote write 1.0 bodies (protobuf WriteRequest,
 * snappy block compression) to and from plain C series, with limits on
 * everything a peer sends. Used by the remote_write sender (ctl/) and the
 * receiver (POST /api/v1/write); the messages are proto/remote.proto,
 * encoded by libprotobuf-c and compressed by libsnappy: nothing of the wire
 * format is written by hand here. */
#ifndef HERD_PROMWIRE_H
#define HERD_PROMWIRE_H

#include <stddef.h>
#include <stdint.h>

#include "herr.h"

/* The headers a remote write request carries (the spec's "MUST"s). */
#define PROMWIRE_CONTENT_TYPE "application/x-protobuf"
#define PROMWIRE_CONTENT_ENCODING "snappy"
#define PROMWIRE_VERSION_HEADER "X-Prometheus-Remote-Write-Version"
#define PROMWIRE_VERSION "0.1.0"

struct pw_label {
	const char *name, *value;
};

struct pw_sample {
	double value;
	int64_t ts_ms;
};

/* One series: labels (__name__ among them) and samples, oldest first. */
struct pw_series {
	const struct pw_label *labels;
	size_t nlabels;
	const struct pw_sample *samples;
	size_t nsamples;
};

/* What a decoder accepts; a zero field takes the default below. */
struct pw_limits {
	size_t max_body;     /* compressed bytes (PROMWIRE_MAX_BODY) */
	size_t max_decoded;  /* uncompressed bytes (PROMWIRE_MAX_DECODED) */
	size_t max_series;   /* series per request (PROMWIRE_MAX_SERIES) */
	size_t max_labels;   /* labels per series (PROMWIRE_MAX_LABELS) */
	size_t max_samples;  /* samples per request, all series (PROMWIRE_MAX_SAMPLES) */
	size_t max_label;    /* bytes of one label name or value (PROMWIRE_MAX_LABEL) */
};
#define PROMWIRE_MAX_BODY (4u << 20)
#define PROMWIRE_MAX_DECODED (32u << 20)
#define PROMWIRE_MAX_SERIES 100000
#define PROMWIRE_MAX_LABELS 32
#define PROMWIRE_MAX_SAMPLES 500000
#define PROMWIRE_MAX_LABEL 1024

/* Encodes n series as one compressed WriteRequest body. Labels are written
 * as given: the caller sorts them by name (the spec requires it; promwire
 * does not reorder) and gives each series' samples in time order. *out is
 * owned (free()); HERR_INVALID for a NULL label name/value, HERR_TOOBIG
 * past the body limit, -ENOMEM. */
int promwire_encode(const struct pw_series *s, size_t n, char **out, size_t *outlen,
		    struct herr *err);

/* Called for each decoded series, in the order of the body; the series and
 * its strings are valid during the call only. A value below 0 stops the
 * decode and is returned. */
typedef int (*pw_series_fn)(const struct pw_series *s, void *arg);

/* Decodes a compressed WriteRequest, checking the limits before anything
 * is allocated for it (the compressed and announced uncompressed sizes),
 * while protobuf-c allocates (a budget of a few times the decoded size),
 * and after (series, labels, samples, label sizes and names: a label name
 * is [a-zA-Z_][a-zA-Z0-9_]*, a value any bytes without NUL; every series
 * has a non-empty __name__). Nothing is passed to fn unless the whole body
 * is valid. HERR_TOOBIG (named limit) or HERR_INVALID (what is wrong, and
 * which series), fn's value, or 0. */
int promwire_decode(const void *body, size_t len, const struct pw_limits *lim, pw_series_fn fn,
		    void *arg, struct herr *err);

#endif
