/* tlsfp.c - CA fingerprints; see tlsfp.h. SHA-256 and base64 are
 * libsodium's (already linked for tokens). */
#include <string.h>

#include <sodium.h>

#include "tlsfp.h"

#define PEM_BEGIN "-----BEGIN CERTIFICATE-----"
#define PEM_END "-----END CERTIFICATE-----"
#define DER_MAX 16384         /* a CA certificate is ~500 bytes */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
tlsfp_parse(const char *s, unsigned char out[TLSFP_LEN])
{
	size_t n = 0;
	int hi = -1;

	if (s == NULL)
		return -1;
	for (; *s; s++) {
		int v;

		if (*s == ':' && hi < 0 && n > 0 && s[1] != '\0')
			continue;
		if ((v = hexval(*s)) < 0 || n == TLSFP_LEN)
			return -1;
		if (hi < 0) {
			hi = v;
		} else {
			out[n++] = (unsigned char)(hi << 4 | v);
			hi = -1;
		}
	}
	return n == TLSFP_LEN && hi < 0 ? 0 : -1;
}

void
tlsfp_hex(const unsigned char fp[TLSFP_LEN], char out[TLSFP_HEX])
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < TLSFP_LEN; i++) {
		out[2 * i] = digits[fp[i] >> 4];
		out[2 * i + 1] = digits[fp[i] & 15];
	}
	out[2 * TLSFP_LEN] = '\0';
}

long
tlsfp_pem_der(const char *pem, size_t len, unsigned char *der, size_t cap)
{
	const char *b = memmem(pem, len, PEM_BEGIN, strlen(PEM_BEGIN)), *e;
	size_t out = 0;

	if (b == NULL)
		return -1;
	b += strlen(PEM_BEGIN);
	e = memmem(b, len - (size_t)(b - pem), PEM_END, strlen(PEM_END));
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
