/* envname.h - the one rule for the names of environment variables that
 * users give to herd (a run's --env): the server refuses a run that breaks
 * it, and the agent skips such a variable again before execve. */
#ifndef HERD_ENVNAME_H
#define HERD_ENVNAME_H

#include <stdbool.h>

#define ENVNAME_MAX 128         /* bytes per name */

/* Why `name` may not be given by a user, as a message for people (a
 * static string), or NULL if it may. A name must be [A-Z_][A-Z0-9_]*, at
 * most ENVNAME_MAX bytes, and none of the reserved names or prefixes: those
 * that change how a shell, the dynamic loader, libc or an interpreter
 * starts (BASH_ENV, LD_*, PYTHON*, ...), and herd's own (PATH, HOME,
 * HERD_*). The table is matched without regard to case. */
const char *envname_refusal(const char *name);

static inline bool
envname_is_allowed(const char *name)
{
	return envname_refusal(name) == NULL;
}

#endif
