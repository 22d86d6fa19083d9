/* promwire.c - remote write bodies: proto/remote.proto through libprotobuf-c
 * and libsnappy (promwire.h). The decoder's allocations go through a
 * counting allocator so that a small body announcing a huge message cannot
 * make it allocate past its budget. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "promwire.h"
#include "remote.pb-c.h"

static size_t
lim_or(size_t v, size_t dflt)
{
	return v ? v : dflt;
}

int
promwire_encode(const struct pw_series *s, size_t n, char **out, size_t *outlen, struct herr *err)
{
	Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
	size_t nl = 0, ns = 0;
	int rc = -ENOMEM;

	*out = NULL;
	*outlen = 0;
	for (size_t i = 0; i < n; i++) {
		nl += s[i].nlabels;
		ns += s[i].nsamples;
		for (size_t j = 0; j < s[i].nlabels; j++)
			if (!s[i].labels[j].name || !s[i].labels[j].value)
				return herr_set(err, HERR_INVALID, "series %zu: label %zu has no name or value",
						i, j);
	}
	Prometheus__TimeSeries *ts = calloc(n ? n : 1, sizeof(*ts));
	Prometheus__TimeSeries **tsp = calloc(n ? n : 1, sizeof(*tsp));
	Prometheus__Label *lb = calloc(nl ? nl : 1, sizeof(*lb));
	Prometheus__Label **lbp = calloc(nl ? nl : 1, sizeof(*lbp));
	Prometheus__Sample *sm = calloc(ns ? ns : 1, sizeof(*sm));
	Prometheus__Sample **smp = calloc(ns ? ns : 1, sizeof(*smp));
	uint8_t *raw = NULL;
	char *z = NULL;
	if (!ts || !tsp || !lb || !lbp || !sm || !smp)
		goto out;

	size_t li = 0, si = 0;
	for (size_t i = 0; i < n; i++) {
		prometheus__time_series__init(&ts[i]);
		tsp[i] = &ts[i];
		ts[i].n_labels = s[i].nlabels;
		ts[i].labels = &lbp[li];
		for (size_t j = 0; j < s[i].nlabels; j++, li++) {
			prometheus__label__init(&lb[li]);
			/* protobuf-c's string fields are char *; packing only reads them */
			lb[li].name = (char *)(uintptr_t)s[i].labels[j].name;
			lb[li].value = (char *)(uintptr_t)s[i].labels[j].value;
			lbp[li] = &lb[li];
		}
		ts[i].n_samples = s[i].nsamples;
		ts[i].samples = &smp[si];
		for (size_t j = 0; j < s[i].nsamples; j++, si++) {
			prometheus__sample__init(&sm[si]);
			sm[si].value = s[i].samples[j].value;
			sm[si].timestamp = s[i].samples[j].ts_ms;
			smp[si] = &sm[si];
		}
	}
	req.n_timeseries = n;
	req.timeseries = tsp;

	size_t rawlen = prometheus__write_request__get_packed_size(&req);
	if (snappy_max_compressed_length(rawlen) > PROMWIRE_MAX_DECODED) {
		rc = herr_set(err, HERR_TOOBIG, "remote write body of %zu bytes is over %u", rawlen,
			      PROMWIRE_MAX_DECODED);
		goto out;
	}
	raw = malloc(rawlen ? rawlen : 1);
	size_t zlen = snappy_max_compressed_length(rawlen);
	z = malloc(zlen ? zlen : 1);
	if (!raw || !z)
		goto out;
	prometheus__write_request__pack(&req, raw);
	if (snappy_compress((const char *)raw, rawlen, z, &zlen) != SNAPPY_OK) {
		rc = herr_set(err, HERR_INVALID, "snappy could not compress the body");
		goto out;
	}
	*out = z;
	*outlen = zlen;
	z = NULL;
	rc = 0;
out:
	if (rc == -ENOMEM)
		herr_set(err, -ENOMEM, "out of memory encoding a remote write body");
	free(ts);
	free(tsp);
	free(lb);
	free(lbp);
	free(sm);
	free(smp);
	free(raw);
	free(z);
	return rc;
}

/* protobuf-c allocator with a byte budget: each block carries its size. */
struct pw_budget {
	size_t left;
	bool over;
};

static void *
pw_alloc(void *data, size_t size)
{
	struct pw_budget *b = data;
	size_t need = size + sizeof(max_align_t);
	if (need < size || need > b->left) {
		b->over = true;
		return NULL;
	}
	max_align_t *p = malloc(need);
	if (!p)
		return NULL;
	*(size_t *)p = need;
	b->left -= need;
	return p + 1;
}

static void
pw_free(void *data, void *ptr)
{
	struct pw_budget *b = data;
	if (!ptr)
		return;
	max_align_t *p = (max_align_t *)ptr - 1;
	b->left += *(size_t *)p;
	free(p);
}

static bool
label_name_ok(const char *s)
{
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '_'))
			return false;
	return true;
}

static int
check_series(const Prometheus__TimeSeries *t, size_t i, const struct pw_limits *lim,
	     struct herr *err)
{
	size_t maxl = lim_or(lim->max_label, PROMWIRE_MAX_LABEL);
	bool named = false;

	if (t->n_labels > lim_or(lim->max_labels, PROMWIRE_MAX_LABELS))
		return herr_set(err, HERR_TOOBIG, "series %zu has %zu labels, over %zu", i,
				t->n_labels, lim_or(lim->max_labels, PROMWIRE_MAX_LABELS));
	for (size_t j = 0; j < t->n_labels; j++) {
		const Prometheus__Label *l = t->labels[j];
		if (strlen(l->name) > maxl || strlen(l->value) > maxl)
			return herr_set(err, HERR_TOOBIG, "series %zu: label %zu is over %zu bytes", i,
					j, maxl);
		if (!label_name_ok(l->name))
			return herr_set(err, HERR_INVALID, "series %zu: label name '%.64s' is not valid",
					i, l->name);
		for (size_t k = 0; k < j; k++)
			if (strcmp(t->labels[k]->name, l->name) == 0)
				return herr_set(err, HERR_INVALID,
						"series %zu: label '%.64s' appears twice", i, l->name);
		if (strcmp(l->name, "__name__") == 0 && l->value[0])
			named = true;
	}
	if (!named)
		return herr_set(err, HERR_INVALID, "series %zu has no __name__ label", i);
	return 0;
}

int
promwire_decode(const void *body, size_t len, const struct pw_limits *lim, pw_series_fn fn,
		void *arg, struct herr *err)
{
	static const struct pw_limits none;
	size_t rawlen = 0;
	int rc = 0;

	if (!lim)
		lim = &none;
	if (len > lim_or(lim->max_body, PROMWIRE_MAX_BODY))
		return herr_set(err, HERR_TOOBIG, "body of %zu bytes is over %zu", len,
				lim_or(lim->max_body, PROMWIRE_MAX_BODY));
	if (snappy_uncompressed_length(body, len, &rawlen) != SNAPPY_OK)
		return herr_set(err, HERR_INVALID, "body is not snappy block-compressed");
	if (rawlen > lim_or(lim->max_decoded, PROMWIRE_MAX_DECODED))
		return herr_set(err, HERR_TOOBIG, "body decompresses to %zu bytes, over %zu", rawlen,
				lim_or(lim->max_decoded, PROMWIRE_MAX_DECODED));
	char *raw = malloc(rawlen ? rawlen : 1);
	if (!raw)
		return herr_set(err, -ENOMEM, "out of memory");
	size_t got = rawlen;
	if (snappy_uncompress(body, len, raw, &got) != SNAPPY_OK || got != rawlen) {
		free(raw);
		return herr_set(err, HERR_INVALID, "body is not valid snappy data");
	}

	/* A decoded message takes a few times its wire size (pointers, one
	 * allocation per label and sample): 8x plus a floor is ample for
	 * real requests and bounds a hostile one. */
	struct pw_budget budget = { .left = rawlen * 8 + (64u << 10) };
	ProtobufCAllocator a = { .alloc = pw_alloc, .free = pw_free, .allocator_data = &budget };
	Prometheus__WriteRequest *req =
		prometheus__write_request__unpack(&a, rawlen, (const uint8_t *)raw);
	free(raw);
	if (!req)
		return budget.over ? herr_set(err, HERR_TOOBIG, "body's message is too large to decode")
				   : herr_set(err, HERR_INVALID, "body is not a remote write request");

	size_t nsamples = 0;
	if (req->n_timeseries > lim_or(lim->max_series, PROMWIRE_MAX_SERIES)) {
		rc = herr_set(err, HERR_TOOBIG, "%zu series, over %zu", req->n_timeseries,
			      lim_or(lim->max_series, PROMWIRE_MAX_SERIES));
		goto out;
	}
	for (size_t i = 0; i < req->n_timeseries; i++) {
		if ((rc = check_series(req->timeseries[i], i, lim, err)) < 0)
			goto out;
		nsamples += req->timeseries[i]->n_samples;
	}
	if (nsamples > lim_or(lim->max_samples, PROMWIRE_MAX_SAMPLES)) {
		rc = herr_set(err, HERR_TOOBIG, "%zu samples, over %zu", nsamples,
			      lim_or(lim->max_samples, PROMWIRE_MAX_SAMPLES));
		goto out;
	}

	/* One conversion buffer, as large as the largest series needs. */
	size_t maxl = 1, maxs = 1;
	for (size_t i = 0; i < req->n_timeseries; i++) {
		if (req->timeseries[i]->n_labels > maxl)
			maxl = req->timeseries[i]->n_labels;
		if (req->timeseries[i]->n_samples > maxs)
			maxs = req->timeseries[i]->n_samples;
	}
	struct pw_label *lb = calloc(maxl, sizeof(*lb));
	struct pw_sample *sm = calloc(maxs, sizeof(*sm));
	if (!lb || !sm) {
		free(lb);
		free(sm);
		rc = herr_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < req->n_timeseries && rc >= 0; i++) {
		const Prometheus__TimeSeries *t = req->timeseries[i];
		for (size_t j = 0; j < t->n_labels; j++)
			lb[j] = (struct pw_label){ t->labels[j]->name, t->labels[j]->value };
		for (size_t j = 0; j < t->n_samples; j++)
			sm[j] = (struct pw_sample){ t->samples[j]->value, t->samples[j]->timestamp };
		struct pw_series s = { lb, t->n_labels, sm, t->n_samples };
		rc = fn(&s, arg);
	}
	free(lb);
	free(sm);
out:
	prometheus__write_request__free_unpacked(req, &a);
	return rc < 0 ? rc : 0;
}
