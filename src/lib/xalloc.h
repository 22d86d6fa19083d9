/* xalloc.h - allocation wrappers for the control plane: failure is fatal
 * (like tmux and Redis), so callers never carry an ENOMEM path. */
#ifndef HERD_XALLOC_H
#define HERD_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Frees *pp and sets it to NULL; pp is a pointer to any pointer. */
void xfree(void *pp);

#define BUG_ON(c) do { if (c) bug_at(__FILE__, __LINE__, #c); } while (0)
void bug_at(const char *file, int line, const char *what) __attribute__((noreturn));

#endif
