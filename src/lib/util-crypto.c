/* util-crypto.c - util.h's random tokens, SHA-256, the keyed cache hash
 * and constant-time compare on libsodium. Apart from util.c so that the static herd-agent, which links
 * no libsodium, brings its own (src/hostbin/crypto-mbed.c, on mbedTLS). */
#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "util.h"
#include "xalloc.h"

void
token_random(char *out, size_t outsz, const char *prefix, size_t nbytes)
{
	unsigned char raw[64];
	size_t plen = prefix ? strlen(prefix) : 0;

	BUG_ON(nbytes > sizeof(raw) || outsz < plen + 2 * nbytes + 1);
	if (sodium_init() < 0)
		bug_at(__FILE__, __LINE__, "sodium_init");
	randombytes_buf(raw, nbytes);
	memcpy(out, prefix ? prefix : "", plen);
	sodium_bin2hex(out + plen, outsz - plen, raw, nbytes);
}

void
sha256_hex(const void *data, size_t n, char out[65])
{
	unsigned char md[crypto_hash_sha256_BYTES];

	if (sodium_init() < 0)
		bug_at(__FILE__, __LINE__, "sodium_init");
	crypto_hash_sha256(md, data, n);
	sodium_bin2hex(out, 65, md, sizeof(md));
}

static unsigned char cache_key[crypto_shorthash_siphashx24_KEYBYTES];
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;

static void
cache_key_make(void)
{
	if (sodium_init() < 0)
		bug_at(__FILE__, __LINE__, "sodium_init");
	randombytes_buf(cache_key, sizeof(cache_key));
}

void
cache_hash(const void *data, size_t n, unsigned char out[CACHE_HASH_BYTES])
{
	pthread_once(&cache_key_once, cache_key_make);
	crypto_shorthash_siphashx24(out, data, n, cache_key);
}

bool
mem_ct_equal(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0;
}

bool
str_ct_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la != lb)
		return false;
	return sodium_memcmp(a, b, la) == 0;
}
