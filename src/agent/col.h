/* col.h - the agent's system collectors: one col-<name>.c each, listed in
 * col.c's table. Each reads /proc (or /sys) through file descriptors opened
 * once and re-read with pread at offset 0 into static buffers, so a
 * collection cycle neither allocates nor starts a process. The parsers are
 * plain functions over text, which the unit tests feed canned bytes.
 *
 * Every series carries a label `scope`, fixed per metric so a series keeps
 * its identity on every provider:
 *   scope="machine"  the figure is the kernel's, for the whole machine: cpu_*,
 *                    load*, mem_*, disk_*, uptime_s. Inside a local host
 *                    (network, PID, UTS and mount namespaces on a shared
 *                    kernel) it is the machine's, not the host's; on a cloud
 *                    VM the machine is the host.
 *   scope="host"     the figure is the host's own: net_* (its network
 *                    namespace: eth0, lo), procs (its PID namespace's /proc),
 *                    and, where the host has a cgroup of its own (local
 *                    hosts), cpu_busy_pct and mem_* from it (col-cgroup.c):
 *                    those metrics then have both scopes, and policies read
 *                    the host's (docs/agent-metrics.md).
 * See docs/agent-metrics.md. */
#ifndef HERD_AGENT_COL_H
#define HERD_AGENT_COL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define COL_MAX_SERIES 512      /* per batch: system series + monitor series */
#define COL_MAX_LABELS 6         /* monitor series: monitor= + the monitor's own labels */
#define COL_DISK_MAX 32         /* filesystems reported */
#define COL_NET_MAX 64          /* interfaces reported */
#define COL_LABEL_MAX 128       /* bytes of a label value: the server refuses longer */
#define COL_MOUNT_MAX (COL_LABEL_MAX + 1)   /* a longer mount point is not reported */
#define COL_IFACE_MAX 32        /* bytes of an interface name, with its NUL */

/* One value of one series in a batch. Names and label strings are
 * borrowed: static strings, or collector state that stays put until the
 * next collection (the batch is encoded before that). */
struct col_series {
	const char *name;
	const char *label_key[COL_MAX_LABELS];  /* NULL = unused */
	const char *label_val[COL_MAX_LABELS];
	double value;
};

struct col_batch {
	int64_t ts_ms;              /* wall clock, shared by every series */
	size_t n;                   /* series used */
	size_t overflow;            /* series that did not fit (COL_MAX_SERIES) */
	struct col_series series[COL_MAX_SERIES];
};

/* A collector. State lives in its file (one collection thread per agent). */
struct col_ops {
	const char *name;
	/* Opens what it reads and takes a first sample for its deltas. Returns
	 * 0, or -errno: the collector stays off (logged once). */
	int (*init)(int64_t mono_ms);
	/* Adds this cycle's series; mono_ms is when the cycle started. */
	void (*collect)(struct col_batch *b, int64_t mono_ms);
	void (*release)(void);
};

extern const struct col_ops col_cpu_ops;
extern const struct col_ops col_load_ops;
extern const struct col_ops col_mem_ops;
extern const struct col_ops col_disk_ops;
extern const struct col_ops col_net_ops;
extern const struct col_ops col_procs_ops;
extern const struct col_ops col_uptime_ops;
extern const struct col_ops col_cgroup_ops;

/* col.c: the table */

/* Initialises every collector; returns how many are on. Call once before
 * col_collect, from the thread that will collect. */
int col_init(void);
/* Runs every collector that is on into b (b->n and b->overflow reset;
 * b->ts_ms untouched). No allocation, no subprocess. */
void col_collect(struct col_batch *b, int64_t mono_ms);
/* Closes every file descriptor. */
void col_release(void);

/* Adds one series with up to two labels (k1/v1, k2/v2 may be NULL); counts
 * it in b->overflow when the batch is full or the value is not finite.
 * Strings are borrowed (see above). */
void col_add(struct col_batch *b, const char *name, double value, const char *k1,
	     const char *v1, const char *k2, const char *v2);
/* The same with n (<= COL_MAX_LABELS) labels from two arrays. */
void col_add_labels(struct col_batch *b, const char *name, double value,
		    const char *const *keys, const char *const *vals, size_t n);

/* Helpers for collectors */

/* open(path, O_RDONLY | O_CLOEXEC); returns the fd or -errno. */
int col_open(const char *path);
/* Reads the file behind fd from offset 0 into buf (at most bufsz - 1 bytes,
 * NUL-terminated). Returns the length, or -errno. */
ssize_t col_read(int fd, char *buf, size_t bufsz);
/* The same in one pread, for files the kernel builds whole on each read
 * (single-record seq files: /proc/meminfo, loadavg, uptime, stat, cgroup
 * files): a short read is the whole file, so the read col_read makes to see
 * the end is saved. Not for files handed out a page at a time
 * (/proc/net/dev, mountinfo): those need col_read. */
ssize_t col_read_whole(int fd, char *buf, size_t bufsz);
/* Per-second rate of a counter going from prev to cur in dt_ms. Returns a
 * negative value when there is no rate: dt_ms <= 0, or the counter went
 * down (reset, wrapped, interface re-created). */
double col_rate(uint64_t prev, uint64_t cur, int64_t dt_ms);
/* v rounded to `decimals` decimal places (0-6). */
double col_round(double v, int decimals);
/* strtod(*p) for what /proc writes as "I", "I.F" or "I.FF" (loadavg,
 * uptime): those without strtod (k / 10^d is the same correctly rounded
 * double), anything else through it. Advances *p past the number and
 * returns true, or returns false (no number) with *p unchanged. */
bool col_parse_fixed(const char **p, double *out);
/* Parses an unsigned decimal at *p, skipping leading blanks; advances *p.
 * Returns false if there is none. */
bool col_parse_u64(const char **p, uint64_t *out);

/* Parsers, one per collector, over the text of the file they read */

enum col_cpu_mode {
	COL_CPU_USER,
	COL_CPU_NICE,
	COL_CPU_SYSTEM,
	COL_CPU_IDLE,
	COL_CPU_IOWAIT,
	COL_CPU_IRQ,
	COL_CPU_SOFTIRQ,
	COL_CPU_STEAL,
	COL_CPU_MODES
};
extern const char *const col_cpu_mode_names[COL_CPU_MODES];

struct col_cpu_times {
	uint64_t ticks[COL_CPU_MODES];  /* USER_HZ ticks since boot, all CPUs */
};

/* Reads the aggregate "cpu " line of /proc/stat (fields past `steal` are
 * guest time, already inside user and nice, and ignored; missing trailing
 * fields of old kernels read as 0). Returns 0 or HERR_INVALID. */
int col_cpu_parse(const char *text, struct col_cpu_times *t);
/* Busy % (everything but idle and iowait) and % per mode between two
 * samples, rounded to 0.01. Returns 0, or HERR_INVALID when no tick passed
 * or a counter went down. */
int col_cpu_pct(const struct col_cpu_times *prev, const struct col_cpu_times *cur,
		double *busy_pct, double mode_pct[COL_CPU_MODES]);

/* /proc/loadavg: the 1, 5 and 15 minute averages. Returns 0 or HERR_INVALID. */
int col_load_parse(const char *text, double load[3]);

struct col_mem {
	uint64_t total_bytes;
	uint64_t available_bytes;   /* MemAvailable; MemFree + Buffers + Cached before 3.14 */
};

/* /proc/meminfo. Returns 0 or HERR_INVALID (no MemTotal). */
int col_mem_parse(const char *text, struct col_mem *m);

/* /proc/uptime: seconds since boot. Returns 0 or HERR_INVALID. */
int col_uptime_parse(const char *text, double *uptime_s);

struct col_net_dev {
	char iface[COL_IFACE_MAX];
	uint64_t rx_bytes, rx_errors, tx_bytes, tx_errors;  /* counters since creation */
};

/* /proc/net/dev: up to max interfaces into out. Returns how many, or
 * HERR_INVALID when the text has no interface line at all. */
int col_net_parse(const char *text, struct col_net_dev *out, size_t max);

struct col_mount {
	char mount[COL_MOUNT_MAX];  /* mount point, unescaped */
	char fstype[32];
	unsigned dev_major, dev_minor;
};

/* True for a filesystem worth reporting: not a pseudo filesystem (proc,
 * tmpfs, cgroup, ...), not a network one (whose statvfs can hang the
 * collection), not a read-only image (squashfs, iso9660). */
bool col_disk_fs_is_real(const char *fstype);
/* /proc/self/mountinfo: the real filesystems (col_disk_fs_is_real), each
 * device once (its first mount: bind mounts and subvolumes repeat it), not
 * under /proc, /sys, /dev or container runtimes' layers, up to max.
 * Returns how many. */
int col_disk_parse(const char *text, struct col_mount *out, size_t max);

/* /proc/self/cgroup: where the agent's cgroup is. */
enum col_cgroup_mode { COL_CGROUP_NONE, COL_CGROUP_V1, COL_CGROUP_V2 };

struct col_cgroup {
	enum col_cgroup_mode mode;   /* set by the caller: col_cgroup_mode() */
	char v2[256];         /* path of the "0::" line (v2), "" if none */
	char cpu[256];        /* v1 hierarchies' paths, "" if none */
	char cpuacct[256];
	char memory[256];
};

/* Parses /proc/self/cgroup ("ID:CONTROLLERS:PATH" lines; v1 lines name their
 * controllers, comma-separated, v2's is "0::PATH"). A path too long for its
 * field is left "". Returns 0, or HERR_INVALID when no line parses. */
int col_cgroup_parse(const char *text, struct col_cgroup *out);
/* Whether path is a local host's own cgroup, "/herd-<instance>/<hostid>"
 * (prov-local.c), the only kind whose figures are the host's: elsewhere the
 * agent's cgroup is a systemd service's (a cloud VM), the root, or the
 * server's (a local host that got no cgroup). */
bool col_cgroup_is_host(const char *path);
/* V1 when the cpuacct or memory path is a host's (col_cgroup_is_host),
 * else V2 when the v2 path is, else NONE: nothing to report. */
enum col_cgroup_mode col_cgroup_mode(const struct col_cgroup *c);
/* v2's cpu.stat: usage_usec, in ns. Returns 0 or HERR_INVALID. */
int col_cgroup_cpu_v2(const char *text, uint64_t *usage_ns);
/* CPUs a quota allows: v1 cpu.cfs_quota_us and cpu.cfs_period_us texts, or
 * v2's cpu.max ("QUOTA PERIOD") with period NULL. 0 = no limit ("-1", "max",
 * unreadable). */
double col_cgroup_quota_cores(const char *quota, const char *period);
/* A memory limit file (v2 memory.max, v1 memory.limit_in_bytes): 0 = no
 * limit ("max", or v1's huge number: anything >= the machine's total_bytes). */
uint64_t col_cgroup_mem_limit(const char *text, uint64_t total_bytes);
/* % of `cores` CPUs busy when usage went from prev_ns to cur_ns in dt_ms,
 * capped at 100, rounded to 0.01; negative when there is no figure
 * (dt_ms <= 0, cores <= 0, the counter went down). */
double col_cgroup_busy_pct(uint64_t prev_ns, uint64_t cur_ns, int64_t dt_ms, double cores);

/* Counts the numeric entries (processes) in a buffer of linux_dirent64
 * records as getdents64 returns them. */
size_t col_procs_count_dirents(const char *buf, size_t len);
/* Whether such a buffer, read from /proc at offset COL_PROCS_PID_POS,
 * begins with "self": the process entries begin there (the kernel's
 * FIRST_PROCESS_ENTRY), so the ~60 fixed entries before can be skipped. */
#define COL_PROCS_PID_POS 256
bool col_procs_at_pids(const char *buf, size_t len);
/* The collector reads from COL_PROCS_PID_POS (for tests). */
bool col_procs_skipping(void);

#endif
