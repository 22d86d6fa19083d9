/* push-pb.c - a test tool: the agents' push body in JSON
 * ({"batches":[{"ts_ms","series":[{"name","value","labels"}],
 * "monitors":[{"name","state","error"}]}],"dropped":N}) on stdin, the same
 * push in protobuf (proto/push.proto, Content-Type application/x-protobuf)
 * on stdout, each batch encoded by pushwire_encode_batch and the request
 * framed by pushwire_frame, as an agent does. Values are numbers or
 * "NaN", "+Inf", "Inf", "-Inf". Nothing is checked beyond the JSON's
 * shape: a bad name or label goes through, so that the tests can send it
 * to the server. Used by tests/e2e/0690-push-protobuf.bats and
 * bench/push.sh. Exit 1 with a message on stderr on bad input. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pushwire.h"

#define BODY_MAX ((size_t)64 << 20)

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "push-pb: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	exit(1);
}

static void *
mustalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (p == NULL)
		die("out of memory", NULL);
	return p;
}

static double
value_of(const json_t *v)
{
	const char *s = json_string_value(v);

	if (json_is_number(v))
		return json_number_value(v);
	if (s && strcmp(s, "NaN") == 0)
		return NAN;
	if (s && (strcmp(s, "+Inf") == 0 || strcmp(s, "Inf") == 0))
		return INFINITY;
	if (s && strcmp(s, "-Inf") == 0)
		return -INFINITY;
	die("a value must be a number, \"NaN\", \"+Inf\" or \"-Inf\"", NULL);
	return 0;
}

/* Batch b of the JSON into *out (its arrays owned). */
static void
batch_of(json_t *b, struct pushwire_batch *out)
{
	json_t *ts = NULL, *series = NULL, *mons = NULL, *x;
	struct pushwire_series *s;
	struct pushwire_monitor *m;
	json_error_t e;
	size_t j;

	if (json_unpack_ex(b, &e, JSON_STRICT, "{s?o,s?o,s?o}", "ts_ms", &ts, "series", &series,
			   "monitors", &mons) < 0)
		die("a batch", e.text);
	*out = (struct pushwire_batch){ .has_ts = json_is_integer(ts), .ts_ms = json_integer_value(ts),
					.nseries = json_array_size(series),
					.nmonitors = json_array_size(mons) };
	out->series = s = mustalloc(out->nseries, sizeof(*s));
	out->monitors = m = mustalloc(out->nmonitors, sizeof(*m));
	json_array_foreach(series, j, x) {
		json_t *v = NULL, *labels = NULL, *lv;
		struct pushwire_label *l;
		const char *lk;

		if (json_unpack_ex(x, &e, JSON_STRICT, "{s:s,s:o,s?o}", "name", &s[j].name, "value",
				   &v, "labels", &labels) < 0)
			die("a series", e.text);
		s[j].value = value_of(v);
		s[j].nlabels = json_object_size(labels);
		s[j].labels = l = mustalloc(s[j].nlabels, sizeof(*l));
		json_object_foreach(labels, lk, lv) {
			if (!json_is_string(lv))
				die("a label value must be a string", lk);
			*l++ = (struct pushwire_label){ lk, json_string_value(lv) };
		}
	}
	json_array_foreach(mons, j, x) {
		json_t *err = NULL;

		if (json_unpack_ex(x, &e, JSON_STRICT, "{s:s,s:s,s?o}", "name", &m[j].name, "state",
				   &m[j].state, "error", &err) < 0)
			die("a monitor", e.text);
		m[j].error = json_string_value(err);
	}
}

int
main(void)
{
	json_t *root, *batches = NULL, *dropped = NULL;
	struct pushwire_batch *b;
	struct pushwire_blob *bl;
	uint8_t *enc, *body;
	size_t n, used = 0, encsz, len;
	json_error_t e;
	char *in = mustalloc(BODY_MAX, 1);

	n = fread(in, 1, BODY_MAX, stdin);
	if (n == BODY_MAX)
		die("the JSON body is too large", NULL);
	root = json_loadb(in, n, JSON_REJECT_DUPLICATES, &e);
	if (root == NULL)
		die("the JSON body", e.text);
	if (json_unpack_ex(root, &e, JSON_STRICT, "{s:o,s?o}", "batches", &batches, "dropped",
			   &dropped) < 0 || !json_is_array(batches))
		die("the push must be {\"batches\":[...],\"dropped\":N}", e.text);
	n = json_array_size(batches);
	b = mustalloc(n, sizeof(*b));
	bl = mustalloc(n, sizeof(*bl));
	/* a batch in protobuf is at most a few times its JSON (a 1-byte value
	 * becomes an 8-byte double) */
	encsz = json_dumpb(root, NULL, 0, JSON_COMPACT) * 8 + 4096;
	enc = mustalloc(encsz, 1);
	for (size_t i = 0; i < n; i++) {
		size_t cut;

		batch_of(json_array_get(batches, i), &b[i]);
		len = pushwire_encode_batch(&b[i], enc + used, encsz - used, &cut);
		if (len == 0 || cut)
			die("a batch does not fit the encoder's buffer", NULL);
		bl[i] = (struct pushwire_blob){ enc + used, len };
		used += len;
	}
	body = mustalloc(used + n * PUSHWIRE_BATCH_OVERHEAD + PUSHWIRE_DROPPED_MAX + 1, 1);
	len = pushwire_frame(bl, n, dropped != NULL, (uint64_t)json_integer_value(dropped), body,
			     used + n * PUSHWIRE_BATCH_OVERHEAD + PUSHWIRE_DROPPED_MAX + 1);
	if (len == 0 && (n || dropped))
		die("the request does not frame", NULL);
	if (fwrite(body, 1, len, stdout) != len || fflush(stdout) != 0)
		die("writing the body", NULL);
	return 0;
}
