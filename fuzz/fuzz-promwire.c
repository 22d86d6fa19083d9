/* fuzz-promwire.c - libFuzzer target for promwire_decode() (the receiver's
 * POST /api/v1/write body): no crash and no allocation past the limits.
 * Inputs are tried both as snappy bodies and as raw protobuf
 * compressed here, so the fuzzer reaches the protobuf decoder. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "promwire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
count(const struct pw_series *s, void *arg)
{
	size_t *n = arg;
	n[0]++;
	n[1] += s->nsamples;
	return 0;
}

static void
one(const void *body, size_t len)
{
	struct herr err = HERR_INIT;
	size_t n[2] = { 0, 0 };

	(void)promwire_decode(body, len, NULL, count, n, &err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(data, size);
	size_t zlen = snappy_max_compressed_length(size);
	char *z = malloc(zlen ? zlen : 1);
	if (z && snappy_compress((const char *)data, size, z, &zlen) == SNAPPY_OK)
		one(z, zlen);
	free(z);
	return 0;
}
