/* model/template.h - a template as the controllers read it: the typed form
 * of a stored template spec (where and how a group's host is made: account,
 * network, image and size, init scripts, limits, load balancer), loaded
 * once, so do_launch and lb-sync read fields, not JSON. */
#ifndef HERD_MODEL_TEMPLATE_H
#define HERD_MODEL_TEMPLATE_H

#include <stdint.h>

#include <jansson.h>

#include "herr.h"

struct store;

#define TEMPLATE_NAME_MAX 64      /* names are 1-63 bytes */
#define TEMPLATE_STR_MAX 1025     /* the kind's free strings: at most 1024 bytes */
#define TEMPLATE_INIT_MAX 100     /* the kind's bound on a list */

struct template_spec {
	char name[TEMPLATE_NAME_MAX];
	char account[TEMPLATE_NAME_MAX];
	char network[TEMPLATE_NAME_MAX];
	char load_balancer[TEMPLATE_NAME_MAX];   /* "" = none */
	char init[TEMPLATE_INIT_MAX][128];       /* init script names, in order */
	int ninit;
	char image[TEMPLATE_STR_MAX];            /* "" = none (cloud image id) */
	char instance_type[TEMPLATE_STR_MAX];    /* "" = from cpu/memory */
	char keypair[TEMPLATE_STR_MAX];          /* "" = none */
	char security_group[TEMPLATE_STR_MAX];   /* "" = none */
	int cpu;                                 /* cores, 0 = unset */
	int64_t memory_mb;                       /* MiB, 0 = unset */
	int64_t limit_memory_mb;                 /* 0 = no limit */
	int limit_cpu_pct;                       /* 0 = no limit; 100 = one core */
	int64_t init_timeout_ms;                 /* 0 = absent (the agent's default) */
};

/* Fills *out from a stored template spec (borrowed) named name; absent
 * fields are ""/0. A field of the wrong type, a name or string too long,
 * an init list over TEMPLATE_INIT_MAX or an init_timeout that does not
 * parse (only a spec written around the API) is HERR_STORE naming the
 * field. Returns 0 or that code. */
int template_from_spec(const char *name, const json_t *spec, struct template_spec *out,
		       struct herr *err);

/* Loads template name from the store into *out. Returns 0, HERR_NOTFOUND,
 * the store's error or template_from_spec's. */
int template_get(struct store *st, const char *name, struct template_spec *out,
		 struct herr *err);

#endif
