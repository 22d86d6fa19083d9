/* test-bootstrap.c - the cloud user-data script (src/server/prov/bootstrap.c):
 * hostile agent configs reach the script only as base64 (decoded back to the
 * same bytes), values outside the checked charsets are refused naming the
 * field, sh -n accepts the script, it fits QingCloud's 4 KiB, and the agent
 * binary's hash is the file's; an https server's CA travels by fingerprint.
 * With `--emit URL SHA256 HOST_ID TOKEN CONFIG_FILE [CA_SHA256]` it prints
 * the script instead (tests/e2e/0270-bootstrap.bats and 0275-bootstrap-tls
 * run what the server would send). */
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

#define CA_FP "842288755f9e6cb67b317459db2904a639131625ea9b74940615aa152e6c168f"

/* An https server's CA goes into the script by its fingerprint, not its
 * PEM: the script fetches it, checks it and the download trusts exactly
 * it. The script fits QingCloud's 4 KiB even with a 60-character URL; a
 * fingerprint that is not 64 lowercase hex digits is refused. */
static void
test_ca(void **state)
{
	struct herr err = HERR_INIT;
	/* 60 characters, the config as do_launch writes it for that URL */
	const char *url60 = "https://herd-control-plane.prod-cn-north-1.example.com:18443";
	const char *real = "{\"server\":\"https://herd-control-plane.prod-cn-north-1.example.com:18443\","
			   "\"host_id\":\"1a2b3c4d\",\"host\":\"node-12\",\"join_token\":"
			   "\"hj_00112233445566778899aabbccddeeff0011223344556677\","
			   "\"ca_sha256\":\"" CA_FP "\",\"heartbeat_s\":5,\"init_timeout_s\":600}";
	static const char *const bad[] = {
		"",
		"8422",
		CA_FP "00",
		"842288755F9E6CB67B317459DB2904A639131625EA9B74940615AA152E6C168F",
		"842288755f9e6cb67b317459db2904a639131625ea9b74940615aa152e6c16'$",
		"-----BEGIN CERTIFICATE-----\nMIIBaDCCAQ2gAwIBAgIQWijTU42dXG4EPzAUH/e/VzAK\n",
	};
	struct bootstrap_in in = good_in(real);
	char *s = NULL;
	size_t n;

	assert_int_equal(strlen(url60), 60);
	in.server_url = url60;
	in.ca_sha256 = CA_FP;
	assert_int_equal(bootstrap_script(&in, &s, &err), 0);
	n = strlen(s);
	print_message("# script with a CA, 60-character URL: %zu bytes, %zu as base64 (QingCloud"
		      " takes 4096)\n", n, (n + 2) / 3 * 4);
	assert_true(n <= BOOTSTRAP_SCRIPT_MAX);
	assert_true((n + 2) / 3 * 4 < 4096);
	assert_null(strstr(s, "BEGIN CERTIFICATE"));   /* no PEM: the fingerprint */
	assert_non_null(strstr(s, "F='" CA_FP "' X=/etc/herd/ca.pem\n"));
	/* fetched unverified, checked, then the only CA of the download */
	assert_non_null(strstr(s, "curl -fsSk --max-filesize 65536 --connect-timeout 10 -m 60 -o $X.n \"$U/v1/tls/ca\""));
	assert_non_null(strstr(s, "wget -q --no-check-certificate -T 30 -O $X.n \"$U/v1/tls/ca\""));
	assert_non_null(strstr(s, "sed '/-----/d' $X.n | base64 -d | sha256sum"));
	assert_non_null(strstr(s, "until rm -f $B.n && v &&\n"));
	assert_non_null(strstr(s, "curl -fsS ${X:+--cacert $X}"));
	assert_non_null(strstr(s, "wget -q ${X:+--ca-certificate=$X}"));
	assert_int_equal(sh_n(s), 0);
	free(s);
	/* the short URL of test_size, its config with the fingerprint */
	in.server_url = "https://198.18.0.1:8080/";
	in.config_json = "{\"server\":\"https://198.18.0.1:8080/\",\"host_id\":\"1a2b3c4d\","
			 "\"host\":\"node-12\",\"join_token\":"
			 "\"hj_00112233445566778899aabbccddeeff0011223344556677\","
			 "\"ca_sha256\":\"" CA_FP "\",\"heartbeat_s\":5,\"init_timeout_s\":600}";
	assert_int_equal(bootstrap_script(&in, &s, &err), 0);
	n = strlen(s);
	print_message("# script with a CA: %zu bytes, %zu as base64\n", n, (n + 2) / 3 * 4);
	assert_true(n <= BOOTSTRAP_SCRIPT_MAX);
	free(s);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct herr e = HERR_INIT;

		in.ca_sha256 = bad[i];
		s = (char *)"unchanged";
		assert_int_equal(bootstrap_script(&in, &s, &e), HERR_INVALID);
		if (strcmp(e.field, "ca_sha256") != 0)
			fail_msg("case %zu: field '%s', want 'ca_sha256'", i, e.field);
		assert_null(s);
	}
	/* none: no CA fetched, the download uses the system store */
	in.ca_sha256 = NULL;
	assert_int_equal(bootstrap_script(&in, &s, &err), 0);
	assert_non_null(strstr(s, "\nX=\nv(){ :; }\n"));
	assert_null(strstr(s, "/v1/tls/ca"));
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

/* --emit URL SHA256 HOST_ID TOKEN CONFIG_FILE [CA_SHA256]: print the script. */
static int
emit(int argc, char **argv)
{
	struct herr err = HERR_INIT;
	char cfg[BOOTSTRAP_CONFIG_MAX + 2], *s;
	FILE *f = fopen(argv[4], "r");
	size_t n;
	struct bootstrap_in in = { argv[0], argv[1], argv[2], argv[3], cfg,
				   argc > 5 ? argv[5] : NULL };

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

	if ((argc == 7 || argc == 8) && strcmp(argv[1], "--emit") == 0)
		return emit(argc - 2, argv + 2);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
