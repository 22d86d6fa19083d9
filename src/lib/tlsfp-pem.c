/* tlsfp-pem.c - a CA fingerprint from a PEM certificate (tlsfp.h) on
 * libsodium (already linked for tokens): the herd binary's. herd-agent has
 * its own on mbedTLS (src/hostbin/crypto-mbed.c). */
#include <string.h>

#include <sodium.h>

#include "tlsfp.h"

#define DER_MAX 16384         /* a CA certificate is ~500 bytes */

long
tlsfp_pem_der(const char *pem, size_t len, unsigned char *der, size_t cap)
{
	const char *b = memmem(pem, len, TLSFP_PEM_BEGIN, strlen(TLSFP_PEM_BEGIN)), *e;
	size_t out = 0;

	if (b == NULL)
		return -1;
	b += strlen(TLSFP_PEM_BEGIN);
	e = memmem(b, len - (size_t)(b - pem), TLSFP_PEM_END, strlen(TLSFP_PEM_END));
	if (e == NULL)
		return -1;
	if (sodium_base642bin(der, cap, b, (size_t)(e - b), " \t\r\n", &out, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || out == 0)
		return -1;
	return (long)out;
}

int
tlsfp_of_pem(const char *pem, size_t len, unsigned char out[TLSFP_LEN])
{
	unsigned char der[DER_MAX];
	long n = tlsfp_pem_der(pem, len, der, sizeof(der));

	if (n < 0)
		return -1;
	crypto_hash_sha256(out, der, (unsigned long long)n);
	return 0;
}
