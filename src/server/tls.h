/* tls.h - the server's HTTPS: which listen addresses serve TLS, and the
 * certificate they serve (the operator's, or one signed by the server's own
 * CA, made in DATA/tls on first start). */
#ifndef HERD_TLS_H
#define HERD_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "herr.h"
#include "tlsfp.h"

struct server;

enum tls_mode {
	TLS_AUTO = 0,   /* plain on loopback and the local bridges, TLS elsewhere */
	TLS_ALWAYS,     /* TLS on every listener (--tls always) */
	TLS_NEVER,      /* plain everywhere (--tls never: logged as insecure) */
};

#define TLS_NAMES_MAX 16   /* --tls-name given at most this often */
#define TLS_SANS_MAX 32
#define TLS_SAN_LEN 256

struct tls_opts {
	enum tls_mode mode;
	const char *cert_file;    /* --tls-cert (with key_file), or NULL */
	const char *key_file;
	const char *ca_file;      /* --tls-ca: what GET /v1/tls/ca serves then */
	const char *names[TLS_NAMES_MAX];   /* --tls-name: extra SANs */
	int nnames;
};

/* The server's TLS state (s->tls). */
struct tls {
	enum tls_mode mode;
	char *cert_pem;           /* served chain, PEM */
	char *key_pem;
	char *ca_pem;             /* NULL: no CA to give out (operator cert, no --tls-ca) */
	char ca_sha256[TLSFP_HEX];   /* "" when ca_pem is NULL */
};

/* Parses --tls's value. -1 when unknown. Pure. */
int tls_mode_parse(const char *s, enum tls_mode *out);
/* Whether a listener on ip (IPv4 text) serves TLS: bridge is true for the
 * local provider's network gateways. Pure. */
bool tls_for_addr(enum tls_mode mode, const char *ip, bool bridge);
/* The server certificate's names: 127.0.0.1, ::1, localhost, hostname (if
 * any), every non-wildcard listen IP, then extra, without repeats or
 * empties, at most max. Returns how many. Pure. */
size_t tls_sans(const char *hostname, const char *const *listen_ips, size_t nips,
		const char *const *extra, size_t nextra, char out[][TLS_SAN_LEN], size_t max);

/* Loads (or makes) what s will serve, into s->tls; listen_ips are the
 * --listen addresses' IPs. An unreadable or mismatched cert/key is an
 * error naming the file. */
int tls_setup(struct server *s, const struct tls_opts *o, const char *const *listen_ips,
	      size_t nips, struct herr *err);
void tls_free(struct server *s);

#endif
