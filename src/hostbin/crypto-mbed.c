/* crypto-mbed.c - util.h's random tokens, SHA-256 and constant-time compare,
 * and tlsfp.h's fingerprint of a PEM certificate, for herd-agent, on
 * getrandom(2) and mbedTLS (the full binary's are on libsodium,
 * src/lib/util-crypto.c and src/lib/tlsfp-pem.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <mbedtls/base64.h>
#include <mbedtls/sha256.h>

#include "tlsfp.h"
#include "util.h"
#include "xalloc.h"

#define DER_MAX 16384         /* a CA certificate is ~500 bytes */

static void
hex_lower(char *out, const unsigned char *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void
token_random(char *out, size_t outsz, const char *prefix, size_t nbytes)
{
	unsigned char raw[64];
	size_t plen = prefix ? strlen(prefix) : 0, got = 0;
	ssize_t n;

	BUG_ON(nbytes > sizeof(raw) || outsz < plen + 2 * nbytes + 1);
	while (got < nbytes) {
		n = getrandom(raw + got, nbytes - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			bug_at(__FILE__, __LINE__, "getrandom failed");
		got += (size_t)n;
	}
	memcpy(out, prefix ? prefix : "", plen);
	hex_lower(out + plen, raw, nbytes);
}

void
sha256_hex(const void *data, size_t n, char out[65])
{
	unsigned char md[32];

	if (mbedtls_sha256_ret(data, n, md, 0) != 0)
		bug_at(__FILE__, __LINE__, "mbedtls_sha256_ret failed");
	hex_lower(out, md, sizeof(md));
}

bool
str_ct_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;
	unsigned char d = 0;

	if (la != lb)
		return false;
	for (i = 0; i < la; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

long
tlsfp_pem_der(const char *pem, size_t len, unsigned char *der, size_t cap)
{
	const char *b = memmem(pem, len, TLSFP_PEM_BEGIN, strlen(TLSFP_PEM_BEGIN)), *e;
	static __thread unsigned char text[2 * DER_MAX];   /* the base64, spaces taken out */
	size_t n = 0, out = 0;

	if (b == NULL)
		return -1;
	b += strlen(TLSFP_PEM_BEGIN);
	e = memmem(b, len - (size_t)(b - pem), TLSFP_PEM_END, strlen(TLSFP_PEM_END));
	if (e == NULL)
		return -1;
	for (; b < e; b++) {
		if (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n')
			continue;
		if (n == sizeof(text))
			return -1;
		text[n++] = (unsigned char)*b;
	}
	if (mbedtls_base64_decode(der, cap, &out, text, n) != 0 || out == 0)
		return -1;
	return (long)out;
}

int
tlsfp_of_pem(const char *pem, size_t len, unsigned char out[TLSFP_LEN])
{
	unsigned char der[DER_MAX];
	long n = tlsfp_pem_der(pem, len, der, sizeof(der));

	if (n < 0 || mbedtls_sha256_ret(der, (size_t)n, out, 0) != 0)
		return -1;
	return 0;
}
