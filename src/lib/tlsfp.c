/* tlsfp.c - CA fingerprints as text; see tlsfp.h. Pure: shared by both
 * builds. From PEM (base64 and SHA-256) is tlsfp-pem.c on libsodium in the
 * herd binary and src/hostbin/crypto-mbed.c on mbedTLS in herd-agent. */
#include <string.h>

#include "tlsfp.h"

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
