/* col-cgroup.c - the host's own CPU and memory, from its cgroup: a local
 * host runs in a cgroup of its own (prov-local.c), so its agent reports
 * cpu_busy_pct and mem_used_bytes with scope="host" beside the machine's
 * figures (col-cpu.c, col-mem.c). The agent finds its cgroup in
 * /proc/self/cgroup (v1 or v2) at start and reports only from a local
 * host's own (/herd-<instance>/<hostid>): in any other cgroup (a cloud VM,
 * where the agent is a systemd service: that cgroup is the agent's, not the
 * host's; the root; a local host that got none) it reports nothing.
 *
 *   cpu_busy_pct{scope="host"}    CPU time the cgroup used over the cycle, as
 *                                 a % of what it may use: its quota when
 *                                 limited (cpu.max, cpu.cfs_quota_us), else
 *                                 all the machine's online CPUs
 *   mem_used_bytes{scope="host"}  the cgroup's memory.current (v2) or
 *                                 memory.usage_in_bytes (v1): page cache
 *                                 counted
 *   mem_limit_bytes, mem_used_pct (scope="host"): only when memory is limited */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/col.h"
#include "herr.h"

#define CG_ROOT "/sys/fs/cgroup"

enum { CG_USAGE, CG_QUOTA, CG_PERIOD, CG_MEM, CG_MEMMAX, CG_FILES };

static int cg_fd[CG_FILES] = { -1, -1, -1, -1, -1 };
static struct col_cgroup cg;        /* where the agent's cgroup is */
static double cg_cores;             /* CPUs the host may use */
static uint64_t cg_mem_limit;       /* 0 = none */
static uint64_t cg_prev_ns;
static int64_t cg_prev_ms;
static bool cg_have_prev;
static char cg_text[1024];          /* cpu.stat and the one-number files */

/* The path after "N:controllers:" when controllers (comma-separated) holds
 * name, into out. */
static void
cg_line(const char *ctl, size_t ctl_len, const char *path, size_t path_len, const char *name,
	char *out, size_t outsz)
{
	size_t n = strlen(name);

	for (const char *p = ctl; p < ctl + ctl_len;) {
		const char *e = memchr(p, ',', (size_t)(ctl + ctl_len - p));
		size_t len = e ? (size_t)(e - p) : (size_t)(ctl + ctl_len - p);

		if (len == n && memcmp(p, name, n) == 0 && path_len < outsz) {
			memcpy(out, path, path_len);
			out[path_len] = '\0';
			return;
		}
		p += len + 1;
	}
}

int
col_cgroup_parse(const char *text, struct col_cgroup *out)
{
	const char *p = text;
	bool any = false;

	memset(out, 0, sizeof(*out));
	while (*p) {
		const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);
		const char *c1 = memchr(p, ':', (size_t)(end - p)), *c2;

		if (c1 && (c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1))) != NULL) {
			const char *ctl = c1 + 1, *path = c2 + 1;
			size_t ctl_len = (size_t)(c2 - ctl), path_len = (size_t)(end - path);

			any = true;
			if (ctl_len == 0 && c1 - p == 1 && p[0] == '0' && path_len < sizeof(out->v2)) {
				memcpy(out->v2, path, path_len);
				out->v2[path_len] = '\0';
			}
			cg_line(ctl, ctl_len, path, path_len, "cpu", out->cpu, sizeof(out->cpu));
			cg_line(ctl, ctl_len, path, path_len, "cpuacct", out->cpuacct,
				sizeof(out->cpuacct));
			cg_line(ctl, ctl_len, path, path_len, "memory", out->memory,
				sizeof(out->memory));
		}
		p = nl ? nl + 1 : end;
	}
	return any ? 0 : HERR_INVALID;
}

bool
col_cgroup_is_host(const char *path)
{
	const char *p = path, *slash;

	/* "/herd-<instance>/<hostid>": prov-local.c's names */
	if (strncmp(p, "/herd-", 6) != 0 || (slash = strchr(p + 6, '/')) == NULL ||
	    slash == p + 6)
		return false;
	p = slash + 1;
	if (strlen(p) != 8)
		return false;
	for (int i = 0; i < 8; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return true;
}

enum col_cgroup_mode
col_cgroup_mode(const struct col_cgroup *c)
{
	if (col_cgroup_is_host(c->cpuacct) || col_cgroup_is_host(c->memory))
		return COL_CGROUP_V1;
	if (col_cgroup_is_host(c->v2))
		return COL_CGROUP_V2;
	return COL_CGROUP_NONE;
}

int
col_cgroup_cpu_v2(const char *text, uint64_t *usage_ns)
{
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, "usage_usec ", 11) == 0) {
			uint64_t us;

			p += 11;
			if (!col_parse_u64(&p, &us))
				return HERR_INVALID;
			*usage_ns = us * 1000;
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return HERR_INVALID;
}

double
col_cgroup_quota_cores(const char *quota, const char *period)
{
	uint64_t q, per;
	const char *p = quota;

	while (*p == ' ' || *p == '\t')
		p++;
	/* v1's -1 and v2's "max" are no limit */
	if (*p == '-' || strncmp(p, "max", 3) == 0)
		return 0;
	if (!col_parse_u64(&p, &q) || q == 0)
		return 0;
	/* v2's cpu.max holds both: "QUOTA PERIOD" */
	if (period == NULL)
		period = p;
	p = period;
	if (!col_parse_u64(&p, &per) || per == 0)
		return 0;
	return (double)q / (double)per;
}

uint64_t
col_cgroup_mem_limit(const char *text, uint64_t total_bytes)
{
	const char *p = text;
	uint64_t v;

	if (!col_parse_u64(&p, &v))
		return 0;   /* v2's "max" */
	/* v1 says no limit with a huge page-rounded number */
	if (total_bytes > 0 && v >= total_bytes)
		return 0;
	return v;
}

double
col_cgroup_busy_pct(uint64_t prev_ns, uint64_t cur_ns, int64_t dt_ms, double cores)
{
	double pct;

	if (dt_ms <= 0 || cores <= 0 || cur_ns < prev_ns)
		return -1;
	pct = 100.0 * (double)(cur_ns - prev_ns) / ((double)dt_ms * 1e6 * cores);
	if (pct > 100)
		pct = 100;   /* a cycle's edges are not the accounting's */
	return col_round(pct, 2);
}

/* Reads one number file behind fd. */
static bool
cg_read_u64(int fd, uint64_t *v)
{
	const char *p = cg_text;

	return col_read_whole(fd, cg_text, sizeof(cg_text)) > 0 && col_parse_u64(&p, v);
}

static bool
cg_usage(uint64_t *ns)
{
	if (cg.mode == COL_CGROUP_V1)
		return cg_read_u64(cg_fd[CG_USAGE], ns);
	return col_read_whole(cg_fd[CG_USAGE], cg_text, sizeof(cg_text)) > 0 &&
	       col_cgroup_cpu_v2(cg_text, ns) == 0;
}

static int
cg_open(const char *hier, const char *path, const char *file)
{
	char full[sizeof(cg.v2) + 64];

	snprintf(full, sizeof(full), CG_ROOT "%s%s/%s", hier, path, file);
	return col_open(full);
}

/* The machine's memory, to tell v1's "no limit" from a limit. */
static uint64_t
cg_machine_mem(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

	return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 0;
}

static int
cgroup_init(int64_t mono_ms)
{
	char quota[64], period[64];
	double ncpu = (double)sysconf(_SC_NPROCESSORS_ONLN), q = 0;
	int fd = col_open("/proc/self/cgroup");
	ssize_t n;

	if (fd < 0)
		return 0;   /* no cgroups: nothing to report, nothing to say */
	n = col_read(fd, cg_text, sizeof(cg_text));
	close(fd);
	if (n <= 0 || col_cgroup_parse(cg_text, &cg) < 0)
		return 0;
	cg.mode = col_cgroup_mode(&cg);
	if (cg.mode == COL_CGROUP_V1) {
		cg_fd[CG_USAGE] = cg_open("/cpuacct", cg.cpuacct, "cpuacct.usage");
		cg_fd[CG_QUOTA] = cg_open("/cpu", cg.cpu, "cpu.cfs_quota_us");
		cg_fd[CG_PERIOD] = cg_open("/cpu", cg.cpu, "cpu.cfs_period_us");
		cg_fd[CG_MEM] = cg_open("/memory", cg.memory, "memory.usage_in_bytes");
		cg_fd[CG_MEMMAX] = cg_open("/memory", cg.memory, "memory.limit_in_bytes");
		if (cg_fd[CG_QUOTA] >= 0 && cg_fd[CG_PERIOD] >= 0 &&
		    col_read(cg_fd[CG_QUOTA], quota, sizeof(quota)) > 0 &&
		    col_read(cg_fd[CG_PERIOD], period, sizeof(period)) > 0)
			q = col_cgroup_quota_cores(quota, period);
	} else if (cg.mode == COL_CGROUP_V2) {
		cg_fd[CG_USAGE] = cg_open("", cg.v2, "cpu.stat");
		cg_fd[CG_QUOTA] = cg_open("", cg.v2, "cpu.max");
		cg_fd[CG_MEM] = cg_open("", cg.v2, "memory.current");
		cg_fd[CG_MEMMAX] = cg_open("", cg.v2, "memory.max");
		if (cg_fd[CG_QUOTA] >= 0 && col_read(cg_fd[CG_QUOTA], quota, sizeof(quota)) > 0)
			q = col_cgroup_quota_cores(quota, NULL);
	}
	/* the limits of a host do not change while it runs: read once */
	cg_cores = q > 0 && q < ncpu ? q : ncpu;
	if (cg_fd[CG_MEMMAX] >= 0 && col_read(cg_fd[CG_MEMMAX], cg_text, sizeof(cg_text)) > 0)
		cg_mem_limit = col_cgroup_mem_limit(cg_text, cg_machine_mem());
	cg_have_prev = cg_fd[CG_USAGE] >= 0 && cg_usage(&cg_prev_ns);
	cg_prev_ms = mono_ms;
	return 0;
}

static void
cgroup_collect(struct col_batch *b, int64_t mono_ms)
{
	uint64_t ns, mem;
	double pct;

	if (cg.mode == COL_CGROUP_NONE)
		return;
	if (cg_fd[CG_USAGE] >= 0 && cg_usage(&ns)) {
		if (cg_have_prev &&
		    (pct = col_cgroup_busy_pct(cg_prev_ns, ns, mono_ms - cg_prev_ms, cg_cores)) >= 0)
			col_add(b, "cpu_busy_pct", pct, "scope", "host", NULL, NULL);
		cg_prev_ns = ns;
		cg_prev_ms = mono_ms;
		cg_have_prev = true;
	}
	if (cg_fd[CG_MEM] >= 0 && cg_read_u64(cg_fd[CG_MEM], &mem)) {
		col_add(b, "mem_used_bytes", (double)mem, "scope", "host", NULL, NULL);
		if (cg_mem_limit > 0) {
			col_add(b, "mem_limit_bytes", (double)cg_mem_limit, "scope", "host", NULL,
				NULL);
			col_add(b, "mem_used_pct",
				col_round(100.0 * (double)mem / (double)cg_mem_limit, 2), "scope",
				"host", NULL, NULL);
		}
	}
}

static void
cgroup_release(void)
{
	for (int i = 0; i < CG_FILES; i++) {
		if (cg_fd[i] >= 0)
			close(cg_fd[i]);
		cg_fd[i] = -1;
	}
	memset(&cg, 0, sizeof(cg));
	cg_have_prev = false;
	cg_mem_limit = 0;
}

const struct col_ops col_cgroup_ops = {
	.name = "cgroup",
	.init = cgroup_init,
	.collect = cgroup_collect,
	.release = cgroup_release,
};
