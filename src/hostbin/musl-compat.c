/* musl-compat.c - the glibc fortify entry points that Debian's static
 * libjansson.a and libmbed*.a call (they are built with _FORTIFY_SOURCE
 * against glibc), for herd-agent's link with musl, which has none. Each
 * checks what glibc's checks and aborts the same way, then does the plain
 * call. Compiled only for musl (the glibc builds never list this file). */
#if !defined(__GLIBC__)
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

void *__memcpy_chk(void *dst, const void *src, size_t n, size_t dstlen);
void *__memset_chk(void *dst, int c, size_t n, size_t dstlen);
char *__strncpy_chk(char *dst, const char *src, size_t n, size_t dstlen);
int __snprintf_chk(char *s, size_t n, int flag, size_t slen, const char *fmt, ...);
int __vsnprintf_chk(char *s, size_t n, int flag, size_t slen, const char *fmt, va_list ap);
int __printf_chk(int flag, const char *fmt, ...);
long __fdelt_chk(long fd);

static void __attribute__((noreturn))
chk_fail(void)
{
	static const char msg[] = "*** buffer overflow detected ***: terminated\n";

	fwrite(msg, 1, sizeof(msg) - 1, stderr);
	abort();
}

void *
__memcpy_chk(void *dst, const void *src, size_t n, size_t dstlen)
{
	if (dstlen < n)
		chk_fail();
	return memcpy(dst, src, n);
}

void *
__memset_chk(void *dst, int c, size_t n, size_t dstlen)
{
	if (dstlen < n)
		chk_fail();
	return memset(dst, c, n);
}

char *
__strncpy_chk(char *dst, const char *src, size_t n, size_t dstlen)
{
	if (dstlen < n)
		chk_fail();
	return strncpy(dst, src, n);
}

int
__vsnprintf_chk(char *s, size_t n, int flag, size_t slen, const char *fmt, va_list ap)
{
	if (slen < n)
		chk_fail();
	return vsnprintf(s, n, fmt, ap);
}

int
__snprintf_chk(char *s, size_t n, int flag, size_t slen, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = __vsnprintf_chk(s, n, flag, slen, fmt, ap);
	va_end(ap);
	return r;
}

int
__printf_chk(int flag, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vprintf(fmt, ap);
	va_end(ap);
	return r;
}

long
__fdelt_chk(long fd)
{
	if (fd < 0 || fd >= FD_SETSIZE)
		chk_fail();
	return fd / (8 * (long)sizeof(long));
}
#endif
