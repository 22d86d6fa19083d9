/* test-util.c - the shared validators of util.c that the API uses to refuse
 * a spec and the controllers use to read it: durations (strict grammar,
 * compound "1m30s", no nan/exponent/hex/sign), IPv4 networks hosts can live
 * on, and IPv4:PORT addresses; the SHA-256 that stored token and script
 * hashes are made of (FIPS 180-2 vectors: a hash must never change, or
 * stored tokens stop verifying); the integer readers that replace atoi. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "util.h"

static void
dur_ok(const char *s, int64_t want)
{
	int64_t ms = -1;

	if (parse_duration_ms(s, &ms) != 0)
		fail_msg("'%s' refused", s);
	if (ms != want)
		fail_msg("'%s' = %lld ms, want %lld", s, (long long)ms, (long long)want);
}

static void
dur_bad(const char *s)
{
	int64_t ms = 12345;

	if (parse_duration_ms(s, &ms) != HERR_INVALID)
		fail_msg("'%s' accepted as %lld ms", s ? s : "(null)", (long long)ms);
}

static void
test_duration_valid(void **state)
{
	dur_ok("0", 0);
	dur_ok("0s", 0);
	dur_ok("30", 30000);
	dur_ok("30s", 30000);
	dur_ok("250ms", 250);
	dur_ok("1.5s", 1500);
	dur_ok("5m", 300000);
	dur_ok("2h", 7200000);
	dur_ok("1d", 86400000);
	dur_ok("1m30s", 90000);
	dur_ok("1h2m3s", 3723000);
	dur_ok("1d12h", 129600000);
	dur_ok("1s500ms", 1500);
	dur_ok("0.5m", 30000);
}

static void
test_duration_invalid(void **state)
{
	static const char *const bad[] = {
		"", " 5s", "5s ", "-5s", "+5s", "nan", "NaN", "inf", "infinity", "1e3", "1e3s",
		"0x10", "0x1p3", "bogus", "s", "ms", "5ss", "5sm", "5 s", "1.5.5s", ".5s",
		"5.s", "5s5", "5m1h", "1s1s", "30s1m", "1ms1s", "5w", "5S", "1h-1m",
		"99999999999999999999", "1000000000000000ms0", "20000000000d", NULL,
	};

	for (int i = 0; bad[i]; i++)
		dur_bad(bad[i]);
	dur_bad(NULL);
}

static void
test_json_duration_reads_strictly(void **state)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:i}", "a", "1m30s", "b", "nan", "c", "1e3", "d", 5);

	assert_int_equal(json_duration_ms(o, "a", 7), 90000);
	assert_int_equal(json_duration_ms(o, "b", 7), 7);
	assert_int_equal(json_duration_ms(o, "c", 7), 7);
	assert_int_equal(json_duration_ms(o, "d", 7), 7);
	assert_int_equal(json_duration_ms(o, "missing", 7), 7);
	json_decref(o);
}

static void
test_cidr(void **state)
{
	static const char *const good[] = {
		"198.18.4.0/24", "10.0.0.0/8", "10.1.2.0/30", "172.16.0.0/12", "192.168.1.0/24",
		"100.64.0.0/10", "198.18.0.0/15", NULL,
	};
	static const char *const bad[] = {
		"127.0.0.0/8", "127.5.0.0/16", "0.0.0.0/8", "0.1.0.0/16", "169.254.0.0/16",
		"224.0.0.0/8", "239.1.2.0/24", "240.0.0.0/8", "255.255.255.0/24", "198.18.4.0/31",
		"198.18.4.0/32", "10.0.0.0/7", "0.0.0.0/0", "198.18.0.5/24", "198.18.4.0/24x",
		" 198.18.4.0/24", "198.18.4.0/+24", "198.18.4.0/024", "198.18.4.0", "198.18.4/24",
		"198.18.4.0/", "/24", "", "198.018.4.0/24", "1.2.3.4.5/24", NULL,
	};
	struct herr err = HERR_INIT;
	uint32_t base;
	int prefix;

	for (int i = 0; good[i]; i++)
		if (!net_cidr_valid(good[i]))
			fail_msg("'%s' refused", good[i]);
	for (int i = 0; bad[i]; i++)
		if (net_cidr_valid(bad[i]))
			fail_msg("'%s' accepted", bad[i]);
	assert_false(net_cidr_valid(NULL));
	assert_int_equal(net_cidr_parse("198.18.4.0/24", &base, &prefix, &err), 0);
	assert_int_equal(base, 0xc6120400u);
	assert_int_equal(prefix, 24);
	assert_int_equal(net_cidr_parse("127.0.0.0/8", &base, &prefix, &err), HERR_INVALID);
	assert_non_null(strstr(err.msg, "loopback"));
	herr_clear(&err);
	assert_int_equal(net_cidr_parse("198.18.0.5/24", &base, &prefix, &err), HERR_INVALID);
	assert_non_null(strstr(err.msg, "198.18.0.0/24"));
}

static void
test_addr_port(void **state)
{
	assert_true(ipv4_port_valid("127.0.0.1:8080"));
	assert_true(ipv4_port_valid("0.0.0.0:1"));
	assert_true(ipv4_port_valid("10.0.0.1:65535"));
	assert_false(ipv4_port_valid("127.0.0.1:0"));
	assert_false(ipv4_port_valid("127.0.0.1:65536"));
	assert_false(ipv4_port_valid("127.0.0.1: 80"));
	assert_false(ipv4_port_valid("127.0.0.1:+80"));
	assert_false(ipv4_port_valid("127.0.0.1:080"));
	assert_false(ipv4_port_valid("127.0.0.1:"));
	assert_false(ipv4_port_valid("127.0.0.1"));
	assert_false(ipv4_port_valid("localhost:80"));
	assert_false(ipv4_port_valid("127.0.0.1:99999999999999999999"));
	assert_false(ipv4_port_valid(NULL));
}

static void
sha_is(const char *in, const char *want)
{
	char got[65];

	memset(got, 'x', sizeof(got));
	sha256_hex(in, strlen(in), got);
	assert_string_equal(got, want);
}

static void
test_sha256_hex(void **state)
{
	sha_is("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha_is("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha_is("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	/* a token as token_random makes them */
	sha_is("hd_f0b7df56b7b7d4d841d1317dd6bc681c8cc48ab9981805b2",
	       "a9baa49aea1e5a6f6b04da344e21918c8c209dd704b6cd0c73687eefa3b813a9");
}

/* The credentials cache's key: the same token, the same key; another token
 * (one character apart, or a prefix), another key; and keyed by a random
 * key: not the SipHash under a key of zeros anyone could compute. */
static void
test_cache_hash(void **state)
{
	const char *t = "hd_f0b7df56b7b7d4d841d1317dd6bc681c8cc48ab9981805b2";
	unsigned char a[CACHE_HASH_BYTES], b[CACHE_HASH_BYTES], c[CACHE_HASH_BYTES];
	unsigned char plain[CACHE_HASH_BYTES], zeros[crypto_shorthash_siphashx24_KEYBYTES] = { 0 };

	cache_hash(t, strlen(t), a);
	cache_hash(t, strlen(t), b);
	assert_memory_equal(a, b, sizeof(a));
	assert_true(mem_ct_equal(a, b, sizeof(a)));
	cache_hash("hd_f0b7df56b7b7d4d841d1317dd6bc681c8cc48ab9981805b3", strlen(t), c);
	assert_memory_not_equal(a, c, sizeof(a));
	assert_false(mem_ct_equal(a, c, sizeof(a)));
	cache_hash(t, strlen(t) - 1, c);
	assert_memory_not_equal(a, c, sizeof(a));
	crypto_shorthash_siphashx24(plain, (const unsigned char *)t, strlen(t), zeros);
	assert_memory_not_equal(a, plain, sizeof(a));
}

static void
test_parse_long(void **state)
{
	long v = 7;

	assert_int_equal(parse_long("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_long("200", 1, 5000, &v), 0);
	assert_int_equal(v, 200);
	assert_int_equal(parse_long("-3", LONG_MIN, LONG_MAX, &v), 0);
	assert_int_equal(v, -3);
	v = 7;
	/* what atoi took as a number, or as 0 */
	assert_int_equal(parse_long("10x", 0, 100, &v), HERR_INVALID);
	assert_int_equal(parse_long("abc", 0, 100, &v), HERR_INVALID);
	assert_int_equal(parse_long("", 0, 100, &v), HERR_INVALID);
	assert_int_equal(parse_long(NULL, 0, 100, &v), HERR_INVALID);
	assert_int_equal(parse_long(" 5", 0, 100, &v), HERR_INVALID);
	assert_int_equal(parse_long("+5", 0, 100, &v), HERR_INVALID);
	assert_int_equal(parse_long("5 ", 0, 100, &v), HERR_INVALID);
	assert_int_equal(parse_long("0x10", 0, 100, &v), HERR_INVALID);
	assert_int_equal(parse_long("-", 0, 100, &v), HERR_INVALID);
	assert_int_equal(parse_long("101", 0, 100, &v), HERR_INVALID);
	assert_int_equal(parse_long("-1", 0, 100, &v), HERR_INVALID);
	/* atoi's overflow is undefined; here it saturates, then is out of range */
	assert_int_equal(parse_long("99999999999999999999999", 0, 100, &v), HERR_INVALID);
	assert_int_equal(v, 7);
	assert_int_equal(parse_long("99999999999999999999999", 0, LONG_MAX, &v), 0);
	assert_true(v == LONG_MAX);
	assert_int_equal(parse_long("-99999999999999999999999", LONG_MIN, 0, &v), 0);
	assert_true(v == LONG_MIN);
}

static void
test_str_long_or(void **state)
{
	assert_int_equal(str_long_or("8080", 0, 65535, -1), 8080);
	assert_int_equal(str_long_or("1234\nUptime: 1s\n", 0, INT_MAX, 0), 1234);
	assert_int_equal(str_long_or("65536", 0, 65535, -1), -1);
	assert_int_equal(str_long_or("80x", 0, 65535, -1), -1);
	assert_int_equal(str_long_or("", 0, 65535, -1), -1);
	assert_int_equal(str_long_or(NULL, 0, 65535, -1), -1);
	assert_int_equal(str_long_or("99999999999999999999", 0, INT_MAX, 0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_valid),
		cmocka_unit_test(test_duration_invalid),
		cmocka_unit_test(test_json_duration_reads_strictly),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_addr_port),
		cmocka_unit_test(test_sha256_hex),
		cmocka_unit_test(test_cache_hash),
		cmocka_unit_test(test_parse_long),
		cmocka_unit_test(test_str_long_or),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
