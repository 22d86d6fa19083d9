/* push-wire.c - the agent's protobuf push: a batch (the collected series
 * and the monitors' states) laid out as pushwire.h's plain C and packed
 * by libprotobuf-c (src/lib/pushwire.c) into a PushBatch, field for field
 * what push-json.c writes as JSON; and the choice between the two formats
 * (docs/agent-metrics.md, "Push format"). */
#include <string.h>

#include "agent/push.h"

size_t
push_encode_batch_pb(const struct col_batch *b, const struct mon_snapshot *snap,
		     struct push_wire *w, uint8_t *out, size_t outsz, size_t *cut)
{
	struct pushwire_batch pb = { .ts_ms = b->ts_ms };
	size_t nl = 0, nm = 0;

	for (size_t i = 0; i < b->n && i < COL_MAX_SERIES; i++) {
		const struct col_series *s = &b->series[i];
		struct pushwire_series *ws = &w->series[i];

		ws->name = s->name;
		ws->value = s->value;
		ws->labels = &w->labels[nl];
		ws->nlabels = 0;
		for (int k = 0; k < COL_MAX_LABELS && s->label_key[k]; k++) {
			w->labels[nl].name = s->label_key[k];
			w->labels[nl].value = s->label_val[k] ? s->label_val[k] : "";
			nl++;
			ws->nlabels++;
		}
	}
	for (size_t i = 0; snap && i < snap->n; i++) {
		const struct mon_result *r = &snap->m[i].r;

		if (r->state == MON_PENDING)
			continue;
		w->mons[nm].name = snap->m[i].name;
		w->mons[nm].state = mon_state_name(r->state);
		w->mons[nm].error = r->state != MON_OK ? r->error : NULL;
		nm++;
	}
	pb.series = w->series;
	pb.nseries = b->n < COL_MAX_SERIES ? b->n : COL_MAX_SERIES;
	pb.monitors = w->mons;
	pb.nmonitors = nm;
	return pushwire_encode_batch(&pb, out, outsz, cut);
}

bool
push_format_refused(enum push_format sent, long status, const char *err_field)
{
	return sent == PUSH_FMT_PROTOBUF &&
	       (status == 415 || (status == 400 && (err_field == NULL || err_field[0] == '\0' ||
				   strcmp(err_field, "body") == 0)));
}

enum push_format
push_format_decide(bool offered, bool refused)
{
	return offered && !refused ? PUSH_FMT_PROTOBUF : PUSH_FMT_JSON;
}
