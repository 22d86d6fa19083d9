/* ipmap.h - the addresses of one network in use, as a bitmap, so that the
 * controller hands out the lowest free address without reading every host
 * of the network again for each launch (issue 15: that read made a launch
 * O(N) and 1,000 launches O(N^2)). Pure: no store, no I/O. The controller
 * builds one per network per pass from the hosts the pass already read, and
 * marks each address it hands out. */
#ifndef HERD_IPMAP_H
#define HERD_IPMAP_H

#include <stddef.h>
#include <stdint.h>

struct ipmap {
	char net[64];          /* the network's name */
	uint32_t base, mask;   /* host order */
	uint32_t size;         /* addresses in the network (~mask + 1) */
	uint32_t low;          /* every offset below it is in use (or reserved) */
	unsigned char *bits;   /* size bits: 1 = in use */
};

/* An empty map of NET (base/mask in host order); the network address, the
 * gateway (base + 1) and the broadcast address are never handed out. */
void ipmap_init(struct ipmap *m, const char *net, uint32_t base, uint32_t mask);

/* Marks dotted-quad IP as in use; an address outside the network, or text
 * that is no address, is ignored. */
void ipmap_mark(struct ipmap *m, const char *ip);

/* The lowest free address into out (dotted quad), marked in use: 0; -1
 * when none is left. */
int ipmap_take(struct ipmap *m, char *out, size_t n);

void ipmap_free(struct ipmap *m);

#endif
