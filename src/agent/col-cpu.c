/* col-cpu.c - CPU busy % and % per mode, machine-wide, from the deltas of
 * the aggregate "cpu" line of /proc/stat between two cycles. */
#include <string.h>
#include <unistd.h>

#include "agent/col.h"
#include "herr.h"

const char *const col_cpu_mode_names[COL_CPU_MODES] = {
	"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
};

static int cpu_fd = -1;
static struct col_cpu_times cpu_prev;
static bool cpu_have_prev;
/* the first line is all we parse; the kernel builds the whole file anyway */
static char cpu_text[1024];

int
col_cpu_parse(const char *text, struct col_cpu_times *t)
{
	const char *p = text;

	memset(t, 0, sizeof(*t));
	if (strncmp(p, "cpu ", 4) != 0)
		return HERR_INVALID;
	p += 4;
	for (int i = 0; i < COL_CPU_MODES; i++) {
		if (!col_parse_u64(&p, &t->ticks[i])) {
			/* old kernels lack the later fields (steal came in 2.6.11) */
			if (i <= COL_CPU_IDLE)
				return HERR_INVALID;
			break;
		}
	}
	return 0;
}

int
col_cpu_pct(const struct col_cpu_times *prev, const struct col_cpu_times *cur, double *busy_pct,
	    double mode_pct[COL_CPU_MODES])
{
	uint64_t d[COL_CPU_MODES], total = 0;

	for (int i = 0; i < COL_CPU_MODES; i++) {
		/* iowait may go backwards on some kernels (it is an estimate): clamp */
		if (cur->ticks[i] < prev->ticks[i]) {
			if (i != COL_CPU_IOWAIT)
				return HERR_INVALID;
			d[i] = 0;
		} else {
			d[i] = cur->ticks[i] - prev->ticks[i];
		}
		total += d[i];
	}
	if (total == 0)
		return HERR_INVALID;
	for (int i = 0; i < COL_CPU_MODES; i++)
		mode_pct[i] = col_round(100.0 * (double)d[i] / (double)total, 2);
	*busy_pct = col_round(
		100.0 * (double)(total - d[COL_CPU_IDLE] - d[COL_CPU_IOWAIT]) / (double)total, 2);
	return 0;
}

static int
cpu_sample(struct col_cpu_times *t)
{
	ssize_t n = col_read_whole(cpu_fd, cpu_text, sizeof(cpu_text));

	if (n < 0)
		return (int)n;
	return col_cpu_parse(cpu_text, t);
}

static int
cpu_init(int64_t mono_ms)
{
	cpu_fd = col_open("/proc/stat");
	if (cpu_fd < 0)
		return cpu_fd;
	cpu_have_prev = cpu_sample(&cpu_prev) == 0;
	return 0;
}

static void
cpu_collect(struct col_batch *b, int64_t mono_ms)
{
	struct col_cpu_times cur;
	double busy, mode[COL_CPU_MODES];

	if (cpu_sample(&cur) < 0)
		return;
	if (cpu_have_prev && col_cpu_pct(&cpu_prev, &cur, &busy, mode) == 0) {
		col_add(b, "cpu_busy_pct", busy, "scope", "machine", NULL, NULL);
		for (int i = 0; i < COL_CPU_MODES; i++)
			col_add(b, "cpu_mode_pct", mode[i], "scope", "machine", "mode",
				col_cpu_mode_names[i]);
	}
	cpu_prev = cur;
	cpu_have_prev = true;
}

static void
cpu_release(void)
{
	if (cpu_fd >= 0)
		close(cpu_fd);
	cpu_fd = -1;
	cpu_have_prev = false;
}

const struct col_ops col_cpu_ops = {
	.name = "cpu",
	.init = cpu_init,
	.collect = cpu_collect,
	.release = cpu_release,
};
