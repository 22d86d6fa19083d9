/* test-tls.c - the pure parts of TLS: CA fingerprints (parsing as agents'
 * configs and openssl write them, hashing a PEM certificate's DER), which
 * listen addresses serve HTTPS under --tls auto/always/never, and the names
 * herd's own server certificate carries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tls.h"
#include "tlsfp.h"

/* made with openssl req -x509 (P-256); its fingerprint as openssl prints it */
static const char unit_pem[] =
	"junk before it is skipped\n"
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBcjCCARmgAwIBAgIUUquQfEd9N4ssjclyAHs+I2GZUD0wCgYIKoZIzj0EAwIw\n"
	"DzENMAsGA1UEAwwEdW5pdDAeFw0yNjEyMDQxNjM2NTBaFw0zNjEyMDExNjM2NTBa\n"
	"MA8xDTALBgNVBAMMBHVuaXQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQmlhh9\n"
	"3bqSm/gtXukufvybyRQZb5EZbmS/ougfi2/UGliXIxp3ZXxC8o7q11Vz5gKqaZmR\n"
	"Kat7jatpzslju6Wio1MwUTAdBgNVHQ4EFgQUla3AsQznykpfj9ocSFbDoHeR7kww\n"
	"HwYDVR0jBBgwFoAUla3AsQznykpfj9ocSFbDoHeR7kwwDwYDVR0TAQH/BAUwAwEB\n"
	"/zAKBggqhkjOPQQDAgNHADBEAiAemDkcQL7ZKZVBkiCJliia6F7zxiWqLZjMBqLQ\n"
	"AIH+kgIgIGp75NPjmvEPovuHDgIqbEpBXYaQZr0y73Jn7LOd0AQ=\n"
	"-----END CERTIFICATE-----\n";
static const char unit_fp[] =
	"BD:4B:D5:D2:21:D2:2C:C9:4E:73:61:D8:B0:CE:D8:04:49:1C:75:52:81:9C:66:71:E8:2E:D8:C8:30:C0:93:3B";

static void
test_fp_parse(void **state)
{
	unsigned char a[TLSFP_LEN], b[TLSFP_LEN];
	char hex[TLSFP_HEX];

	assert_int_equal(tlsfp_parse(unit_fp, a), 0);
	tlsfp_hex(a, hex);
	assert_string_equal(hex, "bd4bd5d221d22cc94e7361d8b0ced804491c7552819c6671e82ed8c830c0933b");
	assert_int_equal(tlsfp_parse(hex, b), 0);          /* lower case, no ':' */
	assert_memory_equal(a, b, TLSFP_LEN);
	assert_int_equal(tlsfp_parse("BD4BD5D221D22CC94E7361D8B0CED804491C7552819C6671E82ED8C830C0933B", b), 0);
	assert_memory_equal(a, b, TLSFP_LEN);
	/* wrong lengths, odd digits, other characters, misplaced ':' */
	assert_int_equal(tlsfp_parse("", b), -1);
	assert_int_equal(tlsfp_parse(NULL, b), -1);
	assert_int_equal(tlsfp_parse("bd4b", b), -1);
	assert_int_equal(tlsfp_parse("bd4bd5d221d22cc94e7361d8b0ced804491c7552819c6671e82ed8c830c0933", b), -1);
	assert_int_equal(tlsfp_parse("bd4bd5d221d22cc94e7361d8b0ced804491c7552819c6671e82ed8c830c0933b00", b), -1);
	assert_int_equal(tlsfp_parse("zd4bd5d221d22cc94e7361d8b0ced804491c7552819c6671e82ed8c830c0933b", b), -1);
	assert_int_equal(tlsfp_parse(":bd4bd5d221d22cc94e7361d8b0ced804491c7552819c6671e82ed8c830c0933b", b), -1);
	assert_int_equal(tlsfp_parse("bd4bd5d221d22cc94e7361d8b0ced804491c7552819c6671e82ed8c830c0933b:", b), -1);
	assert_int_equal(tlsfp_parse("b:d4bd5d221d22cc94e7361d8b0ced804491c7552819c6671e82ed8c830c0933b", b), -1);
	assert_int_equal(tlsfp_parse("bd4bd5d221d22cc94e7361d8b0ced804491c7552819c6671e82ed8c830c093 3b", b), -1);
}

static void
test_fp_of_pem(void **state)
{
	unsigned char want[TLSFP_LEN], got[TLSFP_LEN], der[2048];

	assert_int_equal(tlsfp_parse(unit_fp, want), 0);
	assert_int_equal(tlsfp_of_pem(unit_pem, strlen(unit_pem), got), 0);
	assert_memory_equal(want, got, TLSFP_LEN);
	/* no certificate, a cut one, garbage inside */
	assert_int_equal(tlsfp_of_pem("hello", 5, got), -1);
	assert_int_equal(tlsfp_of_pem(unit_pem, strlen(unit_pem) - 30, got), -1);
	assert_int_equal(tlsfp_pem_der("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
				       58, der, sizeof(der)), -1);
	assert_int_equal(tlsfp_pem_der(unit_pem, strlen(unit_pem), der, 10), -1);   /* too small */
}

static void
test_for_addr(void **state)
{
	enum tls_mode m;

	assert_int_equal(tls_mode_parse("auto", &m), 0);
	assert_int_equal(m, TLS_AUTO);
	assert_int_equal(tls_mode_parse("always", &m), 0);
	assert_int_equal(m, TLS_ALWAYS);
	assert_int_equal(tls_mode_parse("never", &m), 0);
	assert_int_equal(m, TLS_NEVER);
	assert_int_equal(tls_mode_parse("yes", &m), -1);
	/* auto: plain only on loopback and the local bridges */
	assert_false(tls_for_addr(TLS_AUTO, "127.0.0.1", false));
	assert_false(tls_for_addr(TLS_AUTO, "127.1.2.3", false));
	assert_false(tls_for_addr(TLS_AUTO, "198.18.4.1", true));
	assert_true(tls_for_addr(TLS_AUTO, "0.0.0.0", false));
	assert_true(tls_for_addr(TLS_AUTO, "198.18.4.1", false));
	assert_true(tls_for_addr(TLS_AUTO, "1270.0.0.1", false));
	assert_true(tls_for_addr(TLS_ALWAYS, "127.0.0.1", false));
	assert_true(tls_for_addr(TLS_ALWAYS, "198.18.4.1", true));
	assert_false(tls_for_addr(TLS_NEVER, "0.0.0.0", false));
}

static void
test_sans(void **state)
{
	char out[TLS_SANS_MAX][TLS_SAN_LEN];
	const char *ips[] = { "0.0.0.0", "198.18.0.5", "127.0.0.1", "198.18.0.5" };
	const char *extra[] = { "herd.example.com", "", "machine" };
	size_t n;

	n = tls_sans("machine", ips, 4, extra, 3, out, TLS_SANS_MAX);
	assert_int_equal(n, 6);
	assert_string_equal(out[0], "127.0.0.1");
	assert_string_equal(out[1], "::1");
	assert_string_equal(out[2], "localhost");
	assert_string_equal(out[3], "machine");
	assert_string_equal(out[4], "198.18.0.5");
	assert_string_equal(out[5], "herd.example.com");
	/* no hostname; at most max */
	n = tls_sans("", ips, 4, NULL, 0, out, TLS_SANS_MAX);
	assert_int_equal(n, 4);
	n = tls_sans("machine", ips, 4, extra, 3, out, 2);
	assert_int_equal(n, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fp_parse),
		cmocka_unit_test(test_fp_of_pem),
		cmocka_unit_test(test_for_addr),
		cmocka_unit_test(test_sans),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
