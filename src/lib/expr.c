/* expr.c - a hand-written scanner for policy conditions and adjustments;
 * every error names the 1-based column it stopped at. See expr.h. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "expr.h"

static const char *const agg_names[] = {
	[AGG_AVG] = "avg", [AGG_MIN] = "min", [AGG_MAX] = "max",
	[AGG_SUM] = "sum", [AGG_COUNT] = "count",
};

static const char *const op_names[] = {
	[OP_GT] = ">", [OP_GE] = ">=", [OP_LT] = "<", [OP_LE] = "<=", [OP_EQ] = "=",
};

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_metric_char(char c)
{
	return is_alpha(c) || is_digit(c) || c == '_' || c == '.' || c == ':' || c == '-';
}

static size_t
skip_blanks(const char *s, size_t i)
{
	while (is_blank(s[i]))
		i++;
	return i;
}

static int
col(size_t i)
{
	return (int)i + 1;
}

/* Describes s[i] for "unexpected ..." messages. */
static const char *
what_at(const char *s, size_t i, char *buf, size_t n)
{
	unsigned char c = (unsigned char)s[i];

	if (c == '\0')
		return "end of text";
	if (c > ' ' && c < 0x7f)
		snprintf(buf, n, "'%c'", c);
	else
		snprintf(buf, n, "byte 0x%02x", c);
	return buf;
}

/* Scans -?digits[.digits][e[+-]digits] at s+i; returns the end, or i. */
static size_t
scan_number(const char *s, size_t i)
{
	size_t j = i;

	if (s[j] == '-' || s[j] == '+')
		j++;
	if (!is_digit(s[j]))
		return i;
	while (is_digit(s[j]))
		j++;
	if (s[j] == '.') {
		if (!is_digit(s[j + 1]))
			return i;
		j++;
		while (is_digit(s[j]))
			j++;
	}
	if (s[j] == 'e' || s[j] == 'E') {
		size_t k = j + 1;

		if (s[k] == '-' || s[k] == '+')
			k++;
		if (is_digit(s[k])) {
			while (is_digit(s[k]))
				k++;
			j = k;
		}
	}
	return j;
}

int
expr_parse(const char *s, struct expr *out, struct herr *err)
{
	char what[16], num[64];
	struct expr e;
	size_t i, j, n;
	int agg = -1;
	double v;

	i = skip_blanks(s, 0);
	for (j = i; is_alpha(s[j]); j++)
		;
	for (size_t a = 0; a < sizeof(agg_names) / sizeof(agg_names[0]); a++)
		if (j - i == strlen(agg_names[a]) && strncasecmp(s + i, agg_names[a], j - i) == 0)
			agg = (int)a;
	if (agg < 0)
		return herr_set(err, HERR_INVALID,
				"expected avg, min, max, sum or count at column %d", col(i));
	e.agg = (enum expr_agg)agg;

	i = skip_blanks(s, j);
	if (s[i] != '(')
		return herr_set(err, HERR_INVALID, "expected '(' at column %d", col(i));
	i = skip_blanks(s, i + 1);
	if (!is_alpha(s[i]) && s[i] != '_')
		return herr_set(err, HERR_INVALID, "expected metric name at column %d", col(i));
	for (j = i; is_metric_char(s[j]); j++)
		;
	if (j - i > EXPR_METRIC_MAX)
		return herr_set(err, HERR_INVALID,
				"metric name at column %d longer than %d characters", col(i),
				EXPR_METRIC_MAX);
	memcpy(e.metric, s + i, j - i);
	e.metric[j - i] = '\0';

	i = skip_blanks(s, j);
	if (s[i] != ')')
		return herr_set(err, HERR_INVALID, "expected ')' at column %d, found %s", col(i),
				what_at(s, i, what, sizeof(what)));
	i = skip_blanks(s, i + 1);
	if (s[i] == '>' || s[i] == '<') {
		bool eq = s[i + 1] == '=';

		e.op = s[i] == '>' ? (eq ? OP_GE : OP_GT) : (eq ? OP_LE : OP_LT);
		i += eq ? 2 : 1;
	} else if (s[i] == '=') {
		e.op = OP_EQ;
		i += s[i + 1] == '=' ? 2 : 1;   /* "==" reads the same */
	} else {
		return herr_set(err, HERR_INVALID,
				"expected '>', '>=', '<', '<=' or '=' at column %d", col(i));
	}

	i = skip_blanks(s, i);
	j = scan_number(s, i);
	if (j == i)
		return herr_set(err, HERR_INVALID, "expected number at column %d", col(i));
	n = j - i;
	if (n >= sizeof(num))
		return herr_set(err, HERR_INVALID, "number at column %d is too long", col(i));
	memcpy(num, s + i, n);
	num[n] = '\0';
	errno = 0;
	v = strtod(num, NULL);
	if (!isfinite(v) || (errno == ERANGE && fabs(v) > 1.0))
		return herr_set(err, HERR_INVALID, "number at column %d is out of range", col(i));
	e.value = v == 0.0 ? 0.0 : v;     /* no -0 */

	i = skip_blanks(s, j);
	if (s[i] != '\0')
		return herr_set(err, HERR_INVALID, "unexpected %s at column %d",
				what_at(s, i, what, sizeof(what)), col(i));
	*out = e;
	return 0;
}

bool
expr_holds(const struct expr *e, double v)
{
	switch (e->op) {
	case OP_GT: return v > e->value;
	case OP_GE: return v >= e->value;
	case OP_LT: return v < e->value;
	case OP_LE: return v <= e->value;
	case OP_EQ: return v == e->value;
	}
	return false;
}

const char *
expr_agg_name(enum expr_agg agg)
{
	if ((unsigned)agg >= sizeof(agg_names) / sizeof(agg_names[0]))
		return "?";
	return agg_names[agg];
}

const char *
expr_op_name(enum expr_op op)
{
	if ((unsigned)op >= sizeof(op_names) / sizeof(op_names[0]))
		return "?";
	return op_names[op];
}

/* The shortest rendering of v that strtod reads back exactly: plain
 * decimals ("20", "0.25") in the range people write, %g outside it. */
static void
fmt_number(double v, char *out, size_t n)
{
	if (fabs(v) < 1e15 && (v == 0 || fabs(v) >= 1e-4)) {
		for (int dec = 0; dec <= 24; dec++) {
			snprintf(out, n, "%.*f", dec, v);
			if (strtod(out, NULL) == v)
				return;
		}
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, n, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

int
expr_format(const struct expr *e, char *out, size_t n)
{
	char num[40];

	fmt_number(e->value, num, sizeof(num));
	return snprintf(out, n, "%s(%s) %s %s", expr_agg_name(e->agg), e->metric,
			expr_op_name(e->op), num);
}

int
adjust_parse(const char *s, struct adjust *out, struct herr *err)
{
	size_t i = skip_blanks(s, 0), start;
	char sign = 0;
	long long v = 0;
	char what[16];
	struct adjust adj;

	if (s[i] == '+' || s[i] == '-' || s[i] == '=') {
		sign = s[i];
		i = skip_blanks(s, i + 1);
	}
	if (!is_digit(s[i]) && sign != 0)
		return herr_set(err, HERR_INVALID, "expected digit at column %d", col(i));
	if (!is_digit(s[i]))
		return herr_set(err, HERR_INVALID,
				"expected '+', '-', '=' or digit at column %d", col(i));
	start = i;
	while (is_digit(s[i])) {
		if (v > ADJUST_MAX)
			return herr_set(err, HERR_INVALID, "number at column %d is too large",
					col(start));
		v = v * 10 + (s[i++] - '0');
	}
	adj.kind = sign == '=' ? ADJ_EXACT : ADJ_DELTA;
	if (s[i] == '%') {
		if (sign == '=')
			return herr_set(err, HERR_INVALID,
					"'=' takes a host count, not a percentage (column %d)",
					col(i));
		adj.kind = ADJ_PERCENT;
		i++;
	}
	adj.n = sign == '-' ? -v : v;
	i = skip_blanks(s, i);
	if (s[i] != '\0')
		return herr_set(err, HERR_INVALID, "unexpected %s at column %d",
				what_at(s, i, what, sizeof(what)), col(i));
	if (adj.kind == ADJ_PERCENT && (adj.n < -100 || adj.n > ADJUST_PCT_MAX))
		return herr_set(err, HERR_INVALID, "percent must be between -100 and %d",
				ADJUST_PCT_MAX);
	if (adj.kind != ADJ_PERCENT && v > ADJUST_MAX)
		return herr_set(err, HERR_INVALID, "adjustment must be at most %d hosts",
				ADJUST_MAX);
	if (adj.kind != ADJ_EXACT && v == 0)
		return herr_set(err, HERR_INVALID, "adjustment '%.32s' changes nothing",
				s + skip_blanks(s, 0));
	*out = adj;
	return 0;
}

static long long
sat_add(long long a, long long b)
{
	long long r;

	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? LLONG_MAX : LLONG_MIN;
	return r;
}

long long
adjust_apply(const struct adjust *a, long long current)
{
	long long r = current, d;
	__int128 p;

	switch (a->kind) {
	case ADJ_EXACT:
		r = a->n;
		break;
	case ADJ_DELTA:
		r = sat_add(current, a->n);
		break;
	case ADJ_PERCENT:
		/* current * n / 100 away from zero, exact in 128 bits */
		p = (__int128)current * a->n;
		if (p % 100 != 0)
			p += p < 0 ? -100 : 100;
		p /= 100;
		if (p == 0 && a->n != 0)
			p = a->n > 0 ? 1 : -1;
		if (p > LLONG_MAX)
			d = LLONG_MAX;
		else if (p < LLONG_MIN)
			d = LLONG_MIN;
		else
			d = (long long)p;
		r = sat_add(current, d);
		break;
	}
	return r < 0 ? 0 : r;
}

int
adjust_format(const struct adjust *a, char *out, size_t n)
{
	switch (a->kind) {
	case ADJ_EXACT:
		return snprintf(out, n, "=%lld", a->n);
	case ADJ_PERCENT:
		return snprintf(out, n, "%+lld%%", a->n);
	case ADJ_DELTA:
	default:
		return snprintf(out, n, "%+lld", a->n);
	}
}
