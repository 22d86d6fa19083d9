/* fuzz-pushwire.c - libFuzzer target for pushwire_decode() (the agents'
 * protobuf push, POST /v1/agent/metrics): no crash and no allocation past
 * the arena's budget on any bytes; what decodes is then read by the
 * server's model (metrics_push_decode_wire, the checks shared with the
 * JSON body), as the handler does. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-contract.h"
#include "model/metrics.h"
#include "pushwire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pushwire_arena a;
	struct herr err = HERR_INIT;
	struct pushwire_push w;
	struct metrics_push p;

	if (pushwire_decode(data, size, PUSH_MAX_BATCHES_PER_REQUEST, &a, &w, &err) == 0) {
		if (a.total > a.budget)
			abort();
		(void)metrics_push_decode_wire(&w, 1800000000000, &p, &err);
		metrics_push_release(&p);
	}
	pushwire_arena_release(&a);
	return 0;
}
