/* expr.h - the condition and adjustment language of autoscaling policies:
 * `when: avg(busy) > 32`, `target: avg(cpu) = 60`, `adjust: +1`, `-10%`, `=5`.
 * Parsing is separate from evaluation so the API can validate a blueprint
 * and the autoscaler's decide step can stay a pure function. */
#ifndef HERD_EXPR_H
#define HERD_EXPR_H

#include <stdbool.h>
#include <stddef.h>

#include "herr.h"

#define EXPR_METRIC_MAX 100 /* longest metric name, bytes */
#define EXPR_TEXT_MAX 160   /* enough for expr_format() of any expr */

enum expr_agg { AGG_AVG, AGG_MIN, AGG_MAX, AGG_SUM, AGG_COUNT };
enum expr_op { OP_GT, OP_GE, OP_LT, OP_LE, OP_EQ };

struct expr {
	enum expr_agg agg;
	char metric[EXPR_METRIC_MAX + 1];
	enum expr_op op;
	double value;      /* finite */
};

/* Parses `AGG(METRIC) OP NUMBER`: AGG is avg|min|max|sum|count (any case),
 * METRIC is [a-zA-Z_][a-zA-Z0-9_.:-]* of at most EXPR_METRIC_MAX bytes, OP is
 * one of > >= < <= = ("==" reads as "="), NUMBER is a decimal with optional
 * sign, fraction and exponent (-0.5, 32, 1e3). Blanks may separate any two
 * tokens.
 * The parser accepts '=' everywhere; a caller that wants a trigger (`when`)
 * rejects OP_EQ and one that wants a target rejects the others.
 * Returns 0 and fills *out, or HERR_INVALID (leaving *out alone) with a
 * message naming what was expected and the 1-based column:
 * "expected '(' at column 4". */
int expr_parse(const char *s, struct expr *out, struct herr *err);

/* Whether `v OP e->value` holds; OP_EQ compares exactly. NaN never holds. */
bool expr_holds(const struct expr *e, double v);

/* "avg", ...; ">", ">=", "<", "<=", "=". */
const char *expr_agg_name(enum expr_agg agg);
const char *expr_op_name(enum expr_op op);

/* Writes the canonical text ("avg(busy) > 32") into out, which expr_parse()
 * reads back to an equal expr (the number is printed with the fewest digits
 * that round-trip). Like snprintf: returns the length the whole text needs,
 * out is truncated and NUL-terminated when n is too small. EXPR_TEXT_MAX
 * bytes always suffice. */
int expr_format(const struct expr *e, char *out, size_t n);

/* How a policy changes a group's desired size. */
struct adjust {
	enum { ADJ_DELTA, ADJ_PERCENT, ADJ_EXACT } kind;
	long long n;       /* hosts for DELTA and EXACT, percent for PERCENT */
};

#define ADJUST_MAX 1000000 /* largest |n| for DELTA and EXACT */
#define ADJUST_PCT_MAX 10000 /* largest percent; the smallest is -100 */

/* Parses "+1", "-2", "+20%", "-10%" or "=5"; a bare "3" is a delta too, so
 * the integer a YAML parser makes of `adjust: +1` can be printed with "%lld"
 * and parsed here. Blanks around the text and after the sign are allowed.
 * A zero delta or percent is refused (the policy would do nothing); "=0" is
 * fine. Returns 0 and fills *out, or HERR_INVALID, leaving *out alone
 * ("expected digit at column 2", "percent must be between -100 and 10000"). */
int adjust_parse(const char *s, struct adjust *out, struct herr *err);

/* The desired size after applying a to `current` hosts. A percentage of
 * current is rounded away from zero and moves at least one host, so +10% of
 * 3 is 4 and -10% of 3 is 2. Never below 0; saturates instead of overflowing.
 * The caller clamps to the group's min and max. */
long long adjust_apply(const struct adjust *a, long long current);

/* Canonical text of a: "+1", "-10%", "=5". Like snprintf. */
int adjust_format(const struct adjust *a, char *out, size_t n);

#endif
