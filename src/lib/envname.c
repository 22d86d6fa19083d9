/* envname.c - which environment variable names a user may give (envname.h).
 * An allow-list shape (upper-case letters, digits, '_') makes every
 * lower-case and odd name impossible at once (http_proxy, BASH_FUNC_f%%);
 * a table then refuses the upper-case names that are read before the first
 * line of a script runs, or that herd sets itself. */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "envname.h"

struct envname_rule {
	const char *name;
	bool prefix;            /* matches every name starting with `name` */
	const char *why;
};

#define SHELL_WHY "changes how the shell starts or parses the script (it can run commands before the script)"
#define LOADER_WHY "changes how the dynamic loader or libc starts every program (it can load code)"
#define INTERP_WHY "changes how an interpreter starts (it can load or run code before the script)"
#define TOOL_WHY "names a command that common tools (git, ssh, sudo, less, man) run"
#define HERD_WHY "is set by herd itself for every script"

static const struct envname_rule envname_rules[] = {
	/* shells: bash, dash, zsh, ksh */
	{ "BASH", true, SHELL_WHY },    /* BASH_ENV, BASH_FUNC_*, BASHOPTS, BASH_XTRACEFD ... */
	{ "ENV", false, SHELL_WHY },
	{ "SHELLOPTS", false, SHELL_WHY },
	{ "PS1", false, SHELL_WHY },
	{ "PS2", false, SHELL_WHY },
	{ "PS4", false, SHELL_WHY },
	{ "PROMPT_COMMAND", false, SHELL_WHY },
	{ "IFS", false, SHELL_WHY },
	{ "CDPATH", false, SHELL_WHY },
	{ "GLOBIGNORE", false, SHELL_WHY },
	{ "EXECIGNORE", false, SHELL_WHY },
	{ "FPATH", false, SHELL_WHY },
	{ "ZDOTDIR", false, SHELL_WHY },
	/* the loader and libc */
	{ "LD_", true, LOADER_WHY },
	{ "GCONV_PATH", false, LOADER_WHY },
	{ "GLIBC_TUNABLES", false, LOADER_WHY },
	{ "LOCPATH", false, LOADER_WHY },
	{ "NLSPATH", false, LOADER_WHY },
	{ "HOSTALIASES", false, LOADER_WHY },
	{ "RES_OPTIONS", false, LOADER_WHY },
	{ "LOCALDOMAIN", false, LOADER_WHY },
	{ "MALLOC_", true, LOADER_WHY },
	{ "TERMINFO", true, LOADER_WHY },
	{ "OPENSSL_", true, LOADER_WHY },
	/* interpreters */
	{ "PYTHON", true, INTERP_WHY },
	{ "PERL", true, INTERP_WHY },   /* PERL5OPT, PERL5LIB, PERLLIB, PERLIO ... */
	{ "RUBY", true, INTERP_WHY },
	{ "GEM_", true, INTERP_WHY },
	{ "NODE_OPTIONS", false, INTERP_WHY },
	{ "NODE_PATH", false, INTERP_WHY },
	{ "JAVA_TOOL_OPTIONS", false, INTERP_WHY },
	{ "_JAVA_OPTIONS", false, INTERP_WHY },
	{ "JDK_JAVA_OPTIONS", false, INTERP_WHY },
	{ "LUA_", true, INTERP_WHY },
	{ "TCL", true, INTERP_WHY },
	/* tools that take a command from the environment when a script runs them */
	{ "GIT_", true, TOOL_WHY },     /* GIT_SSH_COMMAND, GIT_EXEC_PATH, GIT_CONFIG_* ... */
	{ "SSH_ASKPASS", false, TOOL_WHY },
	{ "SUDO_ASKPASS", false, TOOL_WHY },
	{ "LESSOPEN", false, TOOL_WHY },
	{ "LESSCLOSE", false, TOOL_WHY },
	{ "PAGER", false, TOOL_WHY },
	{ "MANPAGER", false, TOOL_WHY },
	{ "EDITOR", false, TOOL_WHY },
	{ "VISUAL", false, TOOL_WHY },
	{ "BROWSER", false, TOOL_WHY },
	/* herd's own */
	{ "PATH", false, HERD_WHY },
	{ "HOME", false, HERD_WHY },
	{ "SHELL", false, HERD_WHY },
	{ "TMPDIR", false, HERD_WHY },
	{ "HERD_", true, HERD_WHY },
};

const char *
envname_refusal(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > ENVNAME_MAX)
		return "must be 1-128 characters";
	if (!((name[0] >= 'A' && name[0] <= 'Z') || name[0] == '_'))
		return "must be upper-case: [A-Z_][A-Z0-9_]*";
	for (const char *p = name + 1; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return "must be upper-case: [A-Z_][A-Z0-9_]*";
	for (size_t i = 0; i < sizeof(envname_rules) / sizeof(envname_rules[0]); i++) {
		const struct envname_rule *r = &envname_rules[i];

		if (r->prefix ? strncasecmp(name, r->name, strlen(r->name)) == 0
			      : strcasecmp(name, r->name) == 0)
			return r->why;
	}
	return NULL;
}
