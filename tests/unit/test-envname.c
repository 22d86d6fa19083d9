/* test-envname.c - the rule for user-given environment variable names
 * (lib/envname.h): the allowed shape, every reserved name and prefix, and
 * that neither case nor a prefix's tail gets a reserved name through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "envname.h"

static void
test_allowed(void **state)
{
	static const char *const ok[] = {
		"K8S_VERSION", "POD_CIDR", "_X", "X", "A1", "NODE_NAME", "ENVIRONMENT", "PATHS_X",
		"MY_LD_PRELOAD", "IFS_COUNT", "HOMER", "K8S_PKG_REPO", "JAVA_HOME", NULL,
	};

	(void)state;
	for (int i = 0; ok[i]; i++) {
		if (!envname_is_allowed(ok[i]))
			fail_msg("'%s' refused: %s", ok[i], envname_refusal(ok[i]));
	}
}

static void
test_shape(void **state)
{
	char longname[ENVNAME_MAX + 2];

	(void)state;
	assert_non_null(envname_refusal(""));
	assert_non_null(envname_refusal(NULL));
	assert_non_null(envname_refusal("1X"));
	assert_non_null(envname_refusal("A-B"));
	assert_non_null(envname_refusal("A=B"));
	assert_non_null(envname_refusal("A B"));
	assert_non_null(envname_refusal("BASH_FUNC_f%%"));
	assert_non_null(envname_refusal("\xc3\x89T\xc3\x89"));
	/* lower case is refused outright: no reserved name slips through by case */
	assert_non_null(envname_refusal("http_proxy"));
	assert_non_null(envname_refusal("ld_preload"));
	assert_non_null(envname_refusal("Bash_Env"));
	assert_non_null(strstr(envname_refusal("http_proxy"), "upper-case"));
	memset(longname, 'A', ENVNAME_MAX);
	longname[ENVNAME_MAX] = '\0';
	assert_null(envname_refusal(longname));
	longname[ENVNAME_MAX] = 'A';
	longname[ENVNAME_MAX + 1] = '\0';
	assert_non_null(envname_refusal(longname));
}

static void
test_reserved(void **state)
{
	static const char *const refused[] = {
		"BASH_ENV", "ENV", "BASH_FUNC_X", "SHELLOPTS", "BASHOPTS", "PS4", "IFS", "CDPATH",
		"GLOBIGNORE", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "GCONV_PATH",
		"GLIBC_TUNABLES", "LOCPATH", "NLSPATH", "HOSTALIASES", "MALLOC_CHECK_",
		"MALLOC_ARENA_MAX", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PERL5OPT",
		"PERL5LIB", "PERLLIB", "RUBYOPT", "RUBYLIB", "NODE_OPTIONS", "NODE_PATH",
		"JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "OPENSSL_CONF",
		"OPENSSL_ENGINES", "LUA_INIT", "LUA_PATH", "TCLLIBPATH", "TCL_LIBRARY", "ZDOTDIR",
		"PATH", "HOME", "SHELL", "TMPDIR", "HERD_HOST", "HERD_DRY_RUN", "PROMPT_COMMAND",
		"GIT_SSH_COMMAND", "GIT_EXEC_PATH", "SSH_ASKPASS", "SUDO_ASKPASS", "LESSOPEN", "PAGER",
		"EDITOR", "VISUAL",
		NULL,
	};

	(void)state;
	for (int i = 0; refused[i]; i++) {
		if (envname_is_allowed(refused[i]))
			fail_msg("'%s' allowed", refused[i]);
	}
	assert_non_null(strstr(envname_refusal("BASH_ENV"), "shell"));
	assert_non_null(strstr(envname_refusal("LD_PRELOAD"), "loader"));
	assert_non_null(strstr(envname_refusal("HERD_HOST"), "herd"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allowed),
		cmocka_unit_test(test_shape),
		cmocka_unit_test(test_reserved),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
