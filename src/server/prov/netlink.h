/* netlink.h - the few rtnetlink operations the local provider needs (bridge,
 * veth, addresses, default route, link deletion), hand-written on libnl-route-3
 * because no packaged library wraps them together with netns handling.
 * A socket is bound to the network namespace it was opened in; every helper
 * acts in that namespace. Not thread-safe per socket: one caller at a time. */
#ifndef HERD_NETLINK_H
#define HERD_NETLINK_H

#include <stdbool.h>
#include <stddef.h>

#include "herr.h"

struct nl_sock;

/* Opens a route socket in the calling thread's network namespace. */
int netlink_open(struct nl_sock **out, struct herr *err);
/* Opens a route socket in the network namespace ns_fd refers to (an open
 * /run/netns/NAME or /proc/PID/ns/net). The calling thread enters that
 * namespace only for the socket() call and always returns to its own. */
int netlink_open_in_netns(int ns_fd, struct nl_sock **out, struct herr *err);
/* Closes *sk (may be NULL) and sets it to NULL. */
void netlink_close(struct nl_sock **sk);

/* Looks up a link's index by name: 0 and *ifindex, -ENODEV when absent. */
int netlink_link_index(struct nl_sock *sk, const char *name, int *ifindex, struct herr *err);
/* Creates bridge `name`, up. An existing bridge of that name is fine (it is set
 * up); an existing link of another kind is -EEXIST. */
int netlink_bridge_ensure(struct nl_sock *sk, const char *name, struct herr *err);
/* Sets link `name` administratively up; -ENODEV when absent. */
int netlink_link_set_up(struct nl_sock *sk, const char *name, struct herr *err);
/* Adds ip/prefix_len (IPv4) to link `name`; an identical address is fine. */
int netlink_addr_add(struct nl_sock *sk, const char *name, const char *ip, int prefix_len,
		     struct herr *err);
/* Up, an address and the default route by link index: one round trip each
 * (a launch learns eth0's index once instead of once per step). */
int netlink_link_set_up_index(struct nl_sock *sk, int ifindex, struct herr *err);
int netlink_addr_add_index(struct nl_sock *sk, int ifindex, const char *ip, int prefix_len,
			   struct herr *err);
int netlink_route_default_index(struct nl_sock *sk, int ifindex, const char *gw,
				struct herr *err);
/* Creates a veth pair in one request: `name` here, up, enslaved to master_ifindex
 * (0 = none); its peer named `peer`, still down, created directly in the
 * namespace peer_ns_fd refers to (-1 = here). That one message both moves the
 * peer into the namespace and names it, so no half-moved end with a temporary
 * name is ever visible. -EEXIST when `name` exists. */
int netlink_veth_create(struct nl_sock *sk, const char *name, int master_ifindex,
			const char *peer, int peer_ns_fd, struct herr *err);
/* Sets the IPv4 default route via gateway `gw` on link `name` (replacing any). */
int netlink_route_default(struct nl_sock *sk, const char *name, const char *gw,
			  struct herr *err);
/* The name of the bridge (master) link `name` is a port of, into master
 * ("" when none); -ENODEV when `name` is absent. */
int netlink_link_master(struct nl_sock *sk, const char *name, char *master, size_t n,
			struct herr *err);
/* How many links are ports of bridge `name` (>= 0); -ENODEV when absent. */
int netlink_link_ports(struct nl_sock *sk, const char *name, struct herr *err);
/* Link `name` (or ifindex when name is NULL): *operstate (IF_OPER_*, as RFC
 * 2863 and `ip link` call it) and *lower_up (the kernel sees a carrier). The
 * kernel sets operstate from its link watch work, the same step that lets
 * the link's queue send: a link just set up may have a carrier and still
 * drop what is sent on it until then. */
enum { NETLINK_OPER_UNKNOWN = 0, NETLINK_OPER_UP = 6 }; /* linux/if.h's IF_OPER_* */
int netlink_link_oper(struct nl_sock *sk, int ifindex, const char *name, int *operstate,
		      bool *lower_up, struct herr *err);
/* Looks for what this namespace already routes or holds in ip/prefix_len
 * (IPv4): a route of any table whose destination overlaps it (the default
 * route, and the local table's per-address entries, aside) or an address
 * whose subnet does. 1 and a description ("route 198.19.4.0/30 dev veth0",
 * "address 198.19.4.1/30 on dev veth0") in what; 0 when nothing overlaps. */
int netlink_overlap_find(struct nl_sock *sk, const char *ip, int prefix_len, char *what,
			 size_t n, struct herr *err);
/* Deletes link `name` (a veth takes its peer along); absent is fine (0). */
int netlink_link_delete(struct nl_sock *sk, const char *name, struct herr *err);

#endif
