/* fuzz-tsdb-chunk.c - libFuzzer target for the metric codec's decoders
 * (chunk_decode, chunk_ts_decode, chunk_val_decode): arbitrary bytes never
 * crash or overrun, and whatever decodes re-encodes to samples that decode
 * back bit for bit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/chunk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP 4096

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int64_t ts[CAP], ts2[CAP];
	static double v[CAP], v2[CAP];
	size_t n, used;
	uint8_t *buf;
	int got;

	got = chunk_decode(data, size, ts, v, CAP);
	if (got >= 0) {
		buf = malloc(chunk_bound((size_t)got));
		size_t len = chunk_encode(ts, v, (size_t)got, buf);
		if (len > chunk_bound((size_t)got) || chunk_decode(buf, len, ts2, v2, CAP) != got)
			abort();
		for (int i = 0; i < got; i++)
			if (ts2[i] != ts[i] || memcmp(&v2[i], &v[i], 8) != 0)
				abort();
		free(buf);
	}
	if (chunk_ts_decode(data, size, ts, CAP, &n, &used) == 0 && used > size)
		abort();
	if (size > 0)
		(void)chunk_val_decode(data + 1, size - 1, data[0] % 200, v, NULL);
	(void)chunk_val_mode(data, size, NULL);
	return 0;
}
