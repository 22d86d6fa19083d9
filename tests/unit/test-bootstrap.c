/* test-bootstrap.c - the cloud user-data script (src/server/prov/bootstrap.c):
 * hostile agent configs reach the script only as base64 (decoded back to the
 * same bytes), values outside the checked charsets are refused naming the
 * field, sh -n accepts the script, it fits QingCloud's 4 KiB, and the agent
 * binary's hash is the file's. With `--emit URL SHA256 HOST_ID TOKEN
 * CONFIG_FILE` it prints the script instead (tests/e2e/0270-bootstrap.bats
 * runs what the server would send). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "prov/bootstrap.h"
#include "util.h"

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static struct bootstrap_in
good_in(const char *config)
{
	struct bootstrap_in in = {
		.server_url = "http://198.18.0.1:8080/",
		.agent_sha256 = SHA,
		.host_id = "1a2b3c4d",
		.join_token = "hj_00112233445566778899aabbccddeeff0011223344556677",
		.config_json = config,
	};
	return in;
}

/* The bytes between the heredoc's opening line and HERD_EOF, decoded. */
static char *
decode_config(const char *script)
{
	const char *start = strstr(script, "<<'HERD_EOF'");
	const char *end;
	char b64[4096], *bin;
	size_t n = 0, binlen;

	assert_non_null(start);
	start = strchr(start, '\n') + 1;
	end = strstr(start, "\nHERD_EOF\n");
	assert_non_null(end);
	for (const char *p = start; p < end; p++)
		if (*p != '\n') {
			assert_true(n + 1 < sizeof(b64));
			b64[n++] = *p;
		}
	b64[n] = '\0';
	assert_int_equal(strspn(b64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="), n);
	bin = calloc(1, n + 1);
	assert_int_equal(sodium_base642bin((unsigned char *)bin, n, b64, n, NULL, &binlen, NULL,
					   sodium_base64_VARIANT_ORIGINAL), 0);
	bin[binlen] = '\0';
	return bin;
}

/* Exit status of `sh -n` on text (run with argv, no shell in between). */
static int
sh_n(const char *text)
{
	char path[] = "/tmp/test-bootstrap.XXXXXX";
	int fd = mkstemp(path), st = -1;
	pid_t pid;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-n", path, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	unlink(path);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
test_hostile_config(void **state)
{
	static const char *const evil[] = {
		"{\"a\":\"'; touch /tmp/pwned; '\"}",
		"{\"a\":\"$(id)\",\"b\":\"`id`\"}",
		"{\"a\":\"x\nHERD_EOF\nid\n\"}",
		"{\"a\":\"\\\" ; \\\\ $HOME ${PATH} | & > <\"}",
	};
	static const char *const never[] = { "$(id)", "`id`", "touch /tmp/pwned", "${PATH}",
					     "$HOME", "\nid\n" };
	struct herr err = HERR_INIT;

	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		struct bootstrap_in in = good_in(evil[i]);
		char *s = NULL, *back;

		assert_int_equal(bootstrap_script(&in, &s, &err), 0);
		for (size_t j = 0; j < sizeof(never) / sizeof(never[0]); j++)
			if (strstr(s, never[j]))
				fail_msg("config %zu: '%s' reached the script", i, never[j]);
		/* exactly one HERD_EOF pair around the config, one around the unit */
		back = decode_config(s);
		assert_string_equal(back, evil[i]);
		assert_int_equal(sh_n(s), 0);
		free(back);
		free(s);
	}
}

static void
test_refused(void **state)
{
	static const struct {
		const char *field, *url, *sha, *id, *tok;
	} bad[] = {
		{ "server_url", "http://x/$(id)", SHA, "h1", "hj_1" },
		{ "server_url", "http://x/`id`", SHA, "h1", "hj_1" },
		{ "server_url", "http://x/a b", SHA, "h1", "hj_1" },
		{ "server_url", "http://x/a'b", SHA, "h1", "hj_1" },
		{ "server_url", "http://x/a;b", SHA, "h1", "hj_1" },
		{ "server_url", "http://[::1]:80/", SHA, "h1", "hj_1" },
		{ "server_url", "ftp://198.18.0.1/", SHA, "h1", "hj_1" },
		{ "server_url", "http://x/a\nb", SHA, "h1", "hj_1" },
		{ "agent_sha256", "http://x", "0123", "h1", "hj_1" },
		{ "agent_sha256", "http://x", "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
		  "h1", "hj_1" },
		{ "agent_sha256", "http://x", SHA "00", "h1", "hj_1" },
		{ "host_id", "http://x", SHA, "h;1", "hj_1" },
		{ "host_id", "http://x", SHA, "", "hj_1" },
		{ "join_token", "http://x", SHA, "h1", "hj_$(id)" },
		{ "join_token", "http://x", SHA, "h1", "hj 1" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct herr err = HERR_INIT;
		struct bootstrap_in in = { bad[i].url, bad[i].sha, bad[i].id, bad[i].tok, "{}", NULL };
		char *s = (char *)"unchanged";

		assert_int_equal(bootstrap_script(&in, &s, &err), HERR_INVALID);
		assert_null(s);
		if (strcmp(err.field, bad[i].field) != 0)
			fail_msg("case %zu: field '%s', want '%s'", i, err.field, bad[i].field);
	}
}

static void
test_size(void **state)
{
	struct herr err = HERR_INIT;
	char cfg[BOOTSTRAP_CONFIG_MAX + 2], *s = NULL;
	/* a config as do_launch writes it, with the longest URL allowed */
	const char *real = "{\"server\":\"http://198.18.0.1:8080/\",\"host_id\":\"1a2b3c4d\","
			   "\"host\":\"node-12\",\"join_token\":"
			   "\"hj_00112233445566778899aabbccddeeff0011223344556677\","
			   "\"heartbeat_s\":5,\"init_timeout_s\":600}";
	struct bootstrap_in in = good_in(real);
	size_t n;

	assert_int_equal(bootstrap_script(&in, &s, &err), 0);
	n = strlen(s);
	print_message("# script: %zu bytes, %zu as base64 (QingCloud takes 4096)\n", n,
		      (n + 2) / 3 * 4);
	assert_true(n <= BOOTSTRAP_SCRIPT_MAX);
	assert_true((n + 2) / 3 * 4 < 4096);
	assert_non_null(strstr(s, "U='http://198.18.0.1:8080'\n"));   /* trailing '/' dropped */
	free(s);

	/* a config past its limit, then one that fits the limit but not the script */
	memset(cfg, 'x', sizeof(cfg) - 1);
	cfg[sizeof(cfg) - 1] = '\0';
	in.config_json = cfg;
	assert_int_equal(bootstrap_script(&in, &s, &err), HERR_INVALID);
	assert_string_equal(err.field, "config");
	cfg[BOOTSTRAP_CONFIG_MAX] = '\0';
	assert_int_equal(bootstrap_script(&in, &s, &err), HERR_TOOBIG);
	assert_null(s);
}

/* herd's own CA as tls.c makes it (P-256, 550 bytes) */
static const char ca_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBaDCCAQ2gAwIBAgIQWijTU42dXG4EPzAUH/e/VzAKBggqhkjOPQQDAjASMRAw\n"
	"DgYDVQQDEwdoZXJkIENBMB4XDTI2MTIwNDE1MzQyN1oXDTQ2MTEyOTE2MzQyN1ow\n"
	"EjEQMA4GA1UEAxMHaGVyZCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABCWu\n"
	"s/PA2LHUMCw7cOJDzWUxagnW2EzcmKIucPEcwngs6Kh5SSXc4U2n3eA2oOW1U06g\n"
	"Kf5IGXpOt+sEZiFB2SejRTBDMB0GA1UdDgQWBBTHPw2o28T039nSutx+ChhibL8s\n"
	"3zASBgNVHRMBAf8ECDAGAQH/AgEAMA4GA1UdDwEB/wQEAwIBBjAKBggqhkjOPQQD\n"
	"AgNJADBGAiEA5TYKXxOLz4YdFMq3QNKKJ757LnpEiRnRj2C36gvBDFMCIQDIOrFc\n"
	"ZzPMEM3fTgmgkZWnDy2eI2FNiEETua1K0uLsKQ==\n"
	"-----END CERTIFICATE-----\n";

/* An https server's CA goes into the script as PEM, and the download
 * trusts exactly it; with the fingerprint in the config too, the script
 * still fits QingCloud's 4 KiB. Anything but a PEM certificate is refused. */
static void
test_ca(void **state)
{
	struct herr err = HERR_INIT;
	const char *real = "{\"server\":\"https://198.18.0.1:8080/\",\"host_id\":\"1a2b3c4d\","
			   "\"host\":\"node-12\",\"join_token\":"
			   "\"hj_00112233445566778899aabbccddeeff0011223344556677\","
			   "\"ca_sha256\":\"842288755f9e6cb67b317459db2904a639131625ea9b74940615aa152e6c168f\","
			   "\"heartbeat_s\":5,\"init_timeout_s\":600}";
	static const char *const bad[] = {
		"hello\n",
		"-----BEGIN CERTIFICATE-----\nAAAA'$(reboot)'\n-----END CERTIFICATE-----\n",
		"-----BEGIN CERTIFICATE-----\nHERD_EOF\n-----END CERTIFICATE-----\n",
		"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",   /* no final newline */
	};
	struct bootstrap_in in = good_in(real);
	char *s = NULL;
	size_t n;

	in.server_url = "https://198.18.0.1:8080/";
	in.ca_pem = ca_pem;
	assert_int_equal(bootstrap_script(&in, &s, &err), 0);
	n = strlen(s);
	print_message("# script with a CA: %zu bytes, %zu as base64 (QingCloud takes 4096)\n", n,
		      (n + 2) / 3 * 4);
	assert_true(n <= BOOTSTRAP_SCRIPT_MAX);
	assert_non_null(strstr(s, ca_pem));
	assert_non_null(strstr(s, "curl -fsS ${X:+--cacert $X}"));
	assert_non_null(strstr(s, "wget -q ${X:+--ca-certificate=$X}"));
	free(s);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		in.ca_pem = bad[i];
		s = NULL;
		assert_int_equal(bootstrap_script(&in, &s, &err), HERR_INVALID);
		assert_string_equal(err.field, "ca_pem");
		assert_null(s);
	}
	/* none: the download uses the system store */
	in.ca_pem = NULL;
	assert_int_equal(bootstrap_script(&in, &s, &err), 0);
	assert_non_null(strstr(s, "\nX=\n"));
	free(s);
}

static void
test_agent_bin(void **state)
{
	struct herr err = HERR_INIT;
	const struct agent_bin *b = agent_bin_get(&err), *again;
	FILE *f = fopen("/proc/self/exe", "rb");
	crypto_hash_sha256_state st;
	unsigned char md[crypto_hash_sha256_BYTES], chunk[8192];
	char hex[65];
	uint64_t total = 0;
	size_t r;

	assert_non_null(b);
	assert_non_null(f);
	crypto_hash_sha256_init(&st);
	while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		crypto_hash_sha256_update(&st, chunk, r);
		total += r;
	}
	fclose(f);
	crypto_hash_sha256_final(&st, md);
	sodium_bin2hex(hex, sizeof(hex), md, sizeof(md));
	assert_string_equal(b->sha256, hex);
	assert_true(b->size_bytes == total);
	again = agent_bin_get(&err);
	assert_ptr_equal(again, b);
}

/* --emit URL SHA256 HOST_ID TOKEN CONFIG_FILE: print the script. */
static int
emit(char **argv)
{
	struct herr err = HERR_INIT;
	char cfg[BOOTSTRAP_CONFIG_MAX + 2], *s;
	FILE *f = fopen(argv[4], "r");
	size_t n;
	struct bootstrap_in in = { argv[0], argv[1], argv[2], argv[3], cfg, NULL };

	if (f == NULL)
		return perror(argv[4]), 2;
	n = fread(cfg, 1, sizeof(cfg) - 1, f);
	fclose(f);
	while (n > 0 && cfg[n - 1] == '\n')
		n--;
	cfg[n] = '\0';
	if (bootstrap_script(&in, &s, &err) < 0) {
		fprintf(stderr, "test-bootstrap: %s: %s\n", err.field, err.msg);
		return 2;
	}
	fputs(s, stdout);
	free(s);
	return 0;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile_config),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_ca),
		cmocka_unit_test(test_agent_bin),
	};

	if (argc == 7 && strcmp(argv[1], "--emit") == 0)
		return emit(argv + 2);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
