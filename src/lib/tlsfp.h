/* tlsfp.h - a CA certificate's fingerprint (the SHA-256 of its DER): read
 * one from text (agent config, --tls flags), print one, and compute one
 * from a PEM certificate. Shared by the server (its CA) and httpc.c's
 * httpc_pin_ca (the agents). */
#ifndef HERD_TLSFP_H
#define HERD_TLSFP_H

#include <stdbool.h>
#include <stddef.h>

#define TLSFP_LEN 32          /* bytes of SHA-256 */
#define TLSFP_HEX (2 * TLSFP_LEN + 1)
#define TLSFP_PEM_BEGIN "-----BEGIN CERTIFICATE-----"
#define TLSFP_PEM_END "-----END CERTIFICATE-----"

/* Parses 64 hex digits (either case; ':' between them allowed, as openssl
 * prints them) into out. -1 on anything else. Pure. */
int tlsfp_parse(const char *s, unsigned char out[TLSFP_LEN]);
/* Lower-case hex, no separators. Pure. */
void tlsfp_hex(const unsigned char fp[TLSFP_LEN], char out[TLSFP_HEX]);
/* The DER of the first "CERTIFICATE" block of pem (len bytes, need not be
 * NUL-terminated) into der (at most cap bytes): its length, or -1 when
 * there is no such block or it is not base64. Pure. */
long tlsfp_pem_der(const char *pem, size_t len, unsigned char *der, size_t cap);
/* The fingerprint of the first certificate in pem: 0, or -1 as above.
 * These two: tlsfp-pem.c (libsodium) or, in herd-agent, crypto-mbed.c. */
int tlsfp_of_pem(const char *pem, size_t len, unsigned char out[TLSFP_LEN]);

#endif
