/* test-col.c - the agent's collectors fed canned /proc text (cpu, load,
 * memory, uptime, network, mounts, /proc entries), rates from two samples,
 * monitor output parsing, the push buffer (bounds, oldest dropped first and
 * counted, in-flight batches), the batch encoder, the config parser, and a
 * real collection on this machine with sane values. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent/col.h"
#include "agent/monitor.h"
#include "agent/push.h"
#include "util.h"

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-9)

/* --- cpu --- */

static void
test_cpu_parse(void **state)
{
	struct col_cpu_times t;

	assert_int_equal(col_cpu_parse("cpu  100 5 50 800 20 3 2 1 7 0\ncpu0 1 2 3 4\n", &t), 0);
	assert_int_equal(t.ticks[COL_CPU_USER], 100);
	assert_int_equal(t.ticks[COL_CPU_NICE], 5);
	assert_int_equal(t.ticks[COL_CPU_SYSTEM], 50);
	assert_int_equal(t.ticks[COL_CPU_IDLE], 800);
	assert_int_equal(t.ticks[COL_CPU_IOWAIT], 20);
	assert_int_equal(t.ticks[COL_CPU_IRQ], 3);
	assert_int_equal(t.ticks[COL_CPU_SOFTIRQ], 2);
	assert_int_equal(t.ticks[COL_CPU_STEAL], 1);   /* guest (7) is not a mode */
	/* an old kernel: four fields */
	assert_int_equal(col_cpu_parse("cpu 1 2 3 4\n", &t), 0);
	assert_int_equal(t.ticks[COL_CPU_IDLE], 4);
	assert_int_equal(t.ticks[COL_CPU_STEAL], 0);
	assert_int_equal(col_cpu_parse("cpu0 1 2 3 4\n", &t), HERR_INVALID);
	assert_int_equal(col_cpu_parse("cpu 1 2\n", &t), HERR_INVALID);
	assert_int_equal(col_cpu_parse("", &t), HERR_INVALID);
	assert_int_equal(col_cpu_parse("garbage", &t), HERR_INVALID);
}

static void
test_cpu_pct(void **state)
{
	struct col_cpu_times a, b;
	double busy, mode[COL_CPU_MODES], sum = 0;

	col_cpu_parse("cpu  100 0 50 800 20 0 0 0 0 0\n", &a);
	/* +60 user, +20 system, +100 idle, +20 iowait: 200 ticks */
	col_cpu_parse("cpu  160 0 70 900 40 0 0 0 0 0\n", &b);
	assert_int_equal(col_cpu_pct(&a, &b, &busy, mode), 0);
	NEAR(busy, 40.0);
	NEAR(mode[COL_CPU_USER], 30.0);
	NEAR(mode[COL_CPU_SYSTEM], 10.0);
	NEAR(mode[COL_CPU_IDLE], 50.0);
	NEAR(mode[COL_CPU_IOWAIT], 10.0);
	for (int i = 0; i < COL_CPU_MODES; i++)
		sum += mode[i];
	NEAR(sum, 100.0);
	/* a third of the ticks: rounded to 0.01 */
	col_cpu_parse("cpu  161 0 70 902 40 0 0 0 0 0\n", &a);
	assert_int_equal(col_cpu_pct(&b, &a, &busy, mode), 0);
	NEAR(busy, 33.33);
	/* no tick passed, or a counter went back: no figure */
	assert_int_equal(col_cpu_pct(&a, &a, &busy, mode), HERR_INVALID);
	assert_int_equal(col_cpu_pct(&a, &b, &busy, mode), HERR_INVALID);
	/* iowait going back is clamped (it is an estimate on some kernels) */
	col_cpu_parse("cpu  100 0 50 800 20 0 0 0 0 0\n", &a);
	col_cpu_parse("cpu  150 0 50 850 15 0 0 0 0 0\n", &b);
	assert_int_equal(col_cpu_pct(&a, &b, &busy, mode), 0);
	NEAR(busy, 50.0);
	NEAR(mode[COL_CPU_IOWAIT], 0.0);
}

/* --- load, memory, uptime --- */

static void
test_load_mem_uptime(void **state)
{
	double load[3], up;
	struct col_mem m;

	assert_int_equal(col_load_parse("0.52 1.25 10.00 2/345 6789\n", load), 0);
	NEAR(load[0], 0.52);
	NEAR(load[1], 1.25);
	NEAR(load[2], 10.0);
	assert_int_equal(col_load_parse("0.52 x", load), HERR_INVALID);

	assert_int_equal(col_mem_parse("MemTotal:       16000000 kB\n"
				       "MemFree:         1000000 kB\n"
				       "MemAvailable:    4000000 kB\n"
				       "Buffers:          100000 kB\n"
				       "Cached:          2000000 kB\n",
				       &m),
			 0);
	assert_int_equal(m.total_bytes, 16000000ull * 1024);
	assert_int_equal(m.available_bytes, 4000000ull * 1024);
	/* before 3.14: free + buffers + cached */
	assert_int_equal(col_mem_parse("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 20 kB\n"
				       "Cached: 30 kB\nSwapCached: 999 kB\n",
				       &m),
			 0);
	assert_int_equal(m.available_bytes, 150 * 1024);
	assert_int_equal(col_mem_parse("MemFree: 100 kB\n", &m), HERR_INVALID);
	assert_int_equal(col_mem_parse("", &m), HERR_INVALID);

	assert_int_equal(col_uptime_parse("12345.67 45678.90\n", &up), 0);
	NEAR(up, 12345.67);
	assert_int_equal(col_uptime_parse("up", &up), HERR_INVALID);
}

/* --- network and rates --- */

static const char net_dev_a[] =
	"Inter-|   Receive                                                |  Transmit\n"
	" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets "
	"errs drop fifo colls carrier compressed\n"
	"    lo:  1000      10    0    0    0     0          0         0     1000      10    "
	"0    0    0     0       0          0\n"
	"  eth0: 5000000   4000    2    0    0     0          0         0   800000    3000    "
	"1    0    0     0       0          0\n"
	"a-very-long-if0: 7 1 0 0 0 0 0 0 9 1 0 0 0 0 0 0\n";

static const char net_dev_b[] =
	"Inter-|   Receive                                                |  Transmit\n"
	" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets "
	"errs drop fifo colls carrier compressed\n"
	"    lo:  1000      10    0    0    0     0          0         0     1000      10    "
	"0    0    0     0       0          0\n"
	"  eth0: 7500000   4000    12    0    0     0          0         0   1300000    3000    "
	"1    0    0     0       0          0\n";

static void
test_net_parse_and_rates(void **state)
{
	struct col_net_dev a[8], b[8];

	assert_int_equal(col_net_parse(net_dev_a, a, 8), 3);
	assert_string_equal(a[0].iface, "lo");
	assert_string_equal(a[1].iface, "eth0");
	assert_int_equal(a[1].rx_bytes, 5000000);
	assert_int_equal(a[1].rx_errors, 2);
	assert_int_equal(a[1].tx_bytes, 800000);
	assert_int_equal(a[1].tx_errors, 1);
	assert_string_equal(a[2].iface, "a-very-long-if0");
	assert_int_equal(a[2].tx_bytes, 9);
	/* capped at max */
	assert_int_equal(col_net_parse(net_dev_a, a, 2), 2);
	assert_int_equal(col_net_parse("Inter-|\n face |\n", a, 8), HERR_INVALID);

	assert_int_equal(col_net_parse(net_dev_b, b, 8), 2);
	/* 2.5 MB in 5 s, 10 errors in 5 s */
	NEAR(col_rate(a[1].rx_bytes, b[1].rx_bytes, 5000), 500000.0);
	NEAR(col_rate(a[1].tx_bytes, b[1].tx_bytes, 5000), 100000.0);
	NEAR(col_rate(a[1].rx_errors, b[1].rx_errors, 5000), 2.0);
	NEAR(col_rate(a[0].rx_bytes, b[0].rx_bytes, 5000), 0.0);
	NEAR(col_rate(0, 1, 1), 1000.0);
	/* a reset counter or no time: no rate */
	assert_true(col_rate(b[1].rx_bytes, a[1].rx_bytes, 5000) < 0);
	assert_true(col_rate(1, 2, 0) < 0);
	assert_true(col_rate(1, 2, -5) < 0);
}

/* --- mounts --- */

#define LONG64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const char mountinfo[] =
	"22 27 0:21 / /proc rw,relatime - proc proc rw\n"
	"23 27 0:22 / /sys rw,relatime - sysfs sysfs rw\n"
	"24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=1k\n"
	/* a bind mount of a directory seen before its filesystem's root */
	"41 27 254:0 /srv/state /var/lib/herd rw,relatime shared:1 - ext4 /dev/vda rw\n"
	"27 1 254:0 / / rw,relatime shared:1 master:2 - ext4 /dev/vda rw,discard\n"
	"28 27 0:25 / /run rw,nosuid,nodev - tmpfs tmpfs rw,mode=755\n"
	"29 27 259:3 / /mnt/my\\040disk rw,relatime - xfs /dev/nvme0n1p3 rw\n"
	"30 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw\n"
	"31 27 0:40 / /srv/nfs rw,relatime - nfs4 server:/export rw\n"
	"32 27 0:41 / /var/lib/docker/overlay2/abc/merged rw - overlay overlay rw\n"
	"33 27 0:42 / /home rw,relatime - btrfs /dev/vdb rw\n"
	"34 27 0:43 / /snap/core/1 ro - squashfs /dev/loop0 ro\n"
	"35 23 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
	"garbage line\n"
	"36 27 0:44 / /data rw - zfs tank/data rw\n"
	/* longer than a label value may be: not reported */
	"37 27 259:9 / /mnt/" LONG64 LONG64 " rw - ext4 /dev/sdz rw\n";

static void
test_disk_parse(void **state)
{
	struct col_mount m[8];
	int n = col_disk_parse(mountinfo, m, 8);

	assert_int_equal(n, 4);
	/* the root mount replaced the bind mount of the same device */
	assert_string_equal(m[0].mount, "/");
	assert_string_equal(m[0].fstype, "ext4");
	assert_int_equal(m[0].dev_major, 254);
	assert_int_equal(m[0].dev_minor, 0);
	assert_string_equal(m[1].mount, "/mnt/my disk");
	assert_string_equal(m[1].fstype, "xfs");
	assert_string_equal(m[2].mount, "/home");
	assert_string_equal(m[3].mount, "/data");
	assert_int_equal(col_disk_parse(mountinfo, m, 2), 2);

	/* the skip list is searched with bsearch: every entry must be found */
	static const char *const skipped[] = {
		"9p", "afs", "autofs", "binfmt_misc", "bpf", "ceph", "cgroup", "cgroup2", "cifs",
		"configfs", "debugfs", "devpts", "devtmpfs", "efivarfs", "fuse.gvfsd-fuse",
		"fuse.lxcfs", "fuse.portal", "fuse.sshfs", "fusectl", "glusterfs", "hugetlbfs",
		"iso9660", "lustre", "mqueue", "ncpfs", "nfs", "nfs4", "nfsd", "nsfs", "proc",
		"pstore", "ramfs", "rpc_pipefs", "securityfs", "selinuxfs", "smb3", "smbfs",
		"squashfs", "sysfs", "tmpfs", "tracefs",
	};
	for (size_t i = 0; i < sizeof(skipped) / sizeof(skipped[0]); i++)
		assert_false(col_disk_fs_is_real(skipped[i]));
	assert_true(col_disk_fs_is_real("ext4"));
	assert_true(col_disk_fs_is_real("xfs"));
	assert_true(col_disk_fs_is_real("btrfs"));
	assert_true(col_disk_fs_is_real("zfs"));
	assert_true(col_disk_fs_is_real("overlay"));   /* a container's root */
}

/* --- /proc entries --- */

static size_t
put_dirent(char *buf, size_t off, const char *name)
{
	struct dirent64 *d = (struct dirent64 *)(void *)(buf + off);
	size_t reclen = (offsetof(struct dirent64, d_name) + strlen(name) + 1 + 7) & ~(size_t)7;

	memset(d, 0, reclen);
	d->d_reclen = (unsigned short)reclen;
	memcpy(d->d_name, name, strlen(name) + 1);
	return off + reclen;
}

static void
test_procs_count(void **state)
{
	char buf[1024] __attribute__((aligned(8)));
	size_t len = 0;

	len = put_dirent(buf, len, ".");
	len = put_dirent(buf, len, "..");
	len = put_dirent(buf, len, "1");
	len = put_dirent(buf, len, "self");
	len = put_dirent(buf, len, "4242");
	len = put_dirent(buf, len, "12a");
	len = put_dirent(buf, len, "0");
	len = put_dirent(buf, len, "meminfo");
	len = put_dirent(buf, len, "31337");
	assert_int_equal(col_procs_count_dirents(buf, len), 3);
	/* a torn record at the end is not read past */
	assert_int_equal(col_procs_count_dirents(buf, len - 4), 2);
	assert_int_equal(col_procs_count_dirents(buf, 0), 0);
}

/* Read from the offset where /proc's process entries begin, the first
 * record is "self": only then does the collector skip the fixed entries. */
static void
test_procs_skip(void **state)
{
	char buf[1024] __attribute__((aligned(8)));
	size_t len;

	len = put_dirent(buf, 0, "self");
	len = put_dirent(buf, len, "thread-self");
	len = put_dirent(buf, len, "1");
	assert_true(col_procs_at_pids(buf, len));
	assert_int_equal(col_procs_count_dirents(buf, len), 1);
	len = put_dirent(buf, 0, "1");      /* a kernel whose process entries begin earlier */
	assert_false(col_procs_at_pids(buf, len));
	len = put_dirent(buf, 0, "uptime");  /* ... or later */
	assert_false(col_procs_at_pids(buf, len));
	assert_false(col_procs_at_pids(buf, 0));
	assert_false(col_procs_at_pids(buf, 8));
}

/* On this kernel: the count from the process entries' offset is the one from
 * the start, give or take processes that came and went between the two. */
static void
test_procs_real(void **state)
{
	struct col_batch *b = calloc(1, sizeof(*b));
	double first = -1;
	long dir = 0;

	assert_non_null(b);
	assert_int_equal(col_procs_ops.init(0), 0);
	col_procs_ops.collect(b, 0);
	assert_int_equal(b->n, 1);
	first = b->series[0].value;
	assert_true(col_procs_skipping());      /* Linux: FIRST_PROCESS_ENTRY is 256 */
	for (DIR *d = opendir("/proc"); d; d = (closedir(d), NULL))
		for (struct dirent *e; (e = readdir(d)) != NULL;)
			dir += e->d_name[0] >= '1' && e->d_name[0] <= '9';
	col_procs_ops.release();
	assert_true(first > 0);
	assert_true(dir > first / 2 && dir < first * 2);
	free(b);
}

/* --- monitor output --- */

static int
parse(const char *text, struct mon_result *r, char *err)
{
	return mon_parse_output(text, strlen(text), "busy", r, err, 160);
}

static void
test_monitor_output(void **state)
{
	struct mon_result r;
	char err[160], many[2048] = "";

	assert_int_equal(parse("42\n", &r, err), 0);
	assert_true(r.single);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.v[0].name, "busy");
	NEAR(r.v[0].value, 42);
	assert_int_equal(parse("  \t-3.5e1 \r\n\n", &r, err), 0);
	assert_true(r.single);
	NEAR(r.v[0].value, -35);

	assert_int_equal(parse("# pods\npods 17\n\nqueue_len 3.25\nns:x 0\n", &r, err), 0);
	assert_false(r.single);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.v[0].name, "pods");
	NEAR(r.v[0].value, 17);
	assert_string_equal(r.v[1].name, "queue_len");
	NEAR(r.v[1].value, 3.25);
	assert_string_equal(r.v[2].name, "ns:x");
	/* no final newline: fine */
	assert_int_equal(parse("a 1\nb 2", &r, err), 0);
	assert_int_equal(r.n, 2);

	/* garbage */
	assert_int_equal(parse("", &r, err), HERR_INVALID);
	assert_string_equal(err, "no output");
	assert_int_equal(parse("\n  \n# only a comment\n", &r, err), HERR_INVALID);
	assert_int_equal(parse("hello\n", &r, err), HERR_INVALID);
	assert_string_equal(err, "line 1: 'hello' is not a number");
	assert_int_equal(parse("a 1\nb two\n", &r, err), HERR_INVALID);
	assert_string_equal(err, "line 2: 'two' is not a finite number");
	assert_int_equal(parse("a 1 2\n", &r, err), HERR_INVALID);
	assert_int_equal(parse("1\n2\n", &r, err), HERR_INVALID);
	assert_int_equal(parse("a 1\n7\n", &r, err), HERR_INVALID);
	assert_string_equal(err, "line 2: a bare number among 'name value' lines");
	assert_int_equal(parse("a 1\na 2\n", &r, err), HERR_INVALID);
	assert_int_equal(parse("9lives 1\n", &r, err), HERR_INVALID);
	assert_int_equal(parse("a-b 1\n", &r, err), HERR_INVALID);
	assert_int_equal(parse("nan\n", &r, err), HERR_INVALID);
	assert_int_equal(parse("a inf\n", &r, err), HERR_INVALID);
	assert_int_equal(parse("12abc\n", &r, err), HERR_INVALID);
	assert_int_equal(mon_parse_output("4\0002", 3, "busy", &r, err, sizeof(err)), HERR_INVALID);
	for (int i = 0; i <= MON_MAX_VALUES; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "m%d %d\n", i, i);
	assert_int_equal(parse(many, &r, err), HERR_INVALID);
	/* a bare number's series is the monitor name made a metric name */
	assert_int_equal(mon_parse_output("3", 1, "pods-per-node", &r, err, sizeof(err)), 0);
	assert_string_equal(r.v[0].name, "pods_per_node");
	assert_int_equal(mon_parse_output("3", 1, "9.x", &r, err, sizeof(err)), 0);
	assert_string_equal(r.v[0].name, "_9_x");
	assert_string_equal(mon_state_name(MON_TIMEOUT), "timeout");
	assert_string_equal(mon_state_name(MON_FAILED), "failed");
}

/* --- the push buffer --- */

static void
add_str(struct push_buf *b, const char *s, int want_dropped)
{
	assert_int_equal(push_buf_add(b, PUSH_FMT_JSON, s, strlen(s)), want_dropped);
}

static void
assert_held(const struct push_buf *b, const char *const *want, size_t n)
{
	assert_int_equal(b->count, n);
	for (size_t i = 0; i < n; i++) {
		size_t len;
		const char *p = push_buf_get(b, i, &len, NULL);

		assert_non_null(p);
		assert_int_equal(len, strlen(want[i]));
		assert_memory_equal(p, want[i], len);
	}
	assert_null(push_buf_get(b, n, NULL, NULL));
}

static void
test_push_buf_count_bound(void **state)
{
	struct push_buf b;
	char s[16];

	push_buf_init(&b, 4, 1024);
	for (int i = 1; i <= 10; i++) {
		snprintf(s, sizeof(s), "{\"b\":%d}", i);
		add_str(&b, s, i > 4 ? 1 : 0);
	}
	/* oldest dropped first: 7..10 are left, 6 dropped and counted */
	assert_held(&b, (const char *const[]){ "{\"b\":7}", "{\"b\":8}", "{\"b\":9}", "{\"b\":10}" },
		    4);
	assert_int_equal(b.dropped, 6);
	assert_int_equal(b.dropped_total, 6);
	assert_int_equal(push_buf_add(&b, PUSH_FMT_JSON, "x", 1), 1);   /* the count bound drops one */
	assert_int_equal(b.dropped, 7);
	assert_int_equal(push_buf_add(&b, PUSH_FMT_JSON, "", 0), HERR_TOOBIG);
	push_buf_release(&b);
}

static void
test_push_buf_byte_bound(void **state)
{
	struct push_buf b;
	uint64_t seq;

	/* 100 bytes, batches of 30: three fit; the fourth wraps to the start */
	push_buf_init(&b, 50, 100);
	add_str(&b, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 0);
	add_str(&b, "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", 0);
	add_str(&b, "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCC", 0);
	add_str(&b, "DDDDDDDDDDDDDDDDDDDDDDDDDDDDDD", 1);   /* A goes */
	assert_held(&b,
		    (const char *const[]){ "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
					   "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCC",
					   "DDDDDDDDDDDDDDDDDDDDDDDDDDDDDD" },
		    3);
	/* wrapped: E (40 bytes) needs B and C gone */
	add_str(&b, "EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE", 2);
	assert_held(&b,
		    (const char *const[]){ "DDDDDDDDDDDDDDDDDDDDDDDDDDDDDD",
					   "EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE" },
		    2);
	assert_int_equal(b.dropped, 3);
	assert_true(b.used_bytes <= 100);
	push_buf_get(&b, 1, NULL, &seq);
	assert_int_equal(seq, 5);
	/* one batch of exactly the whole buffer: everything else goes */
	char full[101];
	memset(full, 'F', 100);
	full[100] = '\0';
	add_str(&b, full, 2);
	assert_held(&b, (const char *const[]){ full }, 1);
	/* bigger than the buffer: refused, nothing changes */
	char big[102];
	memset(big, 'G', 101);
	big[101] = '\0';
	assert_int_equal(push_buf_add(&b, PUSH_FMT_JSON, big, 101), HERR_TOOBIG);
	assert_held(&b, (const char *const[]){ full }, 1);
	assert_int_equal(b.dropped, 5);

	/* a long random run keeps order and contents */
	push_buf_release(&b);
	push_buf_init(&b, 7, 300);
	uint64_t next_expected = 1;
	for (int i = 1; i <= 2000; i++) {
		char s[80];
		int len = 10 + (i * 7919) % 60, dropped;

		memset(s, 'a' + i % 26, sizeof(s));
		snprintf(s, sizeof(s), "%06d", i);
		s[6] = '-';
		dropped = push_buf_add(&b, PUSH_FMT_JSON, s, (size_t)len);
		assert_true(dropped >= 0);
		assert_true(b.count <= 7 && b.used_bytes <= 300);
		for (size_t k = 0; k < b.count; k++) {
			size_t l;
			const char *p = push_buf_get(&b, k, &l, &seq);

			if (k == 0)
				assert_true(seq >= next_expected);
			assert_int_equal(atoi(p), (int)seq);
		}
		push_buf_get(&b, 0, NULL, &next_expected);
		assert_int_equal(b.dropped, (uint64_t)i - b.count);
	}
	push_buf_release(&b);
}

static json_t *
take_json(struct push_buf *b, size_t max, size_t *n)
{
	static char body[4096];
	enum push_format fmt;
	size_t len = push_buf_take(b, body, sizeof(body), max, n, &fmt);
	json_t *j;

	assert_true(len > 0);
	assert_int_equal(strlen(body), len);
	j = json_loads(body, 0, NULL);
	assert_non_null(j);
	return j;
}

static void
test_push_buf_take(void **state)
{
	struct push_buf b;
	enum push_format fmt;
	char body[64];
	json_t *j;
	size_t n, len;

	push_buf_init(&b, 3, 1024);
	assert_int_equal(push_buf_take(&b, body, sizeof(body), 100, &n, &fmt), 0);
	assert_int_equal(n, 0);
	for (int i = 1; i <= 5; i++) {
		char s[16];

		snprintf(s, sizeof(s), "{\"b\":%d}", i);
		push_buf_add(&b, PUSH_FMT_JSON, s, strlen(s));
	}
	/* two dropped; take two of the three left */
	j = take_json(&b, 2, &n);
	assert_int_equal(n, 2);
	assert_int_equal(json_array_size(json_object_get(j, "batches")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(
				 json_object_get(j, "batches"), 0), "b")), 3);
	assert_int_equal(json_integer_value(json_object_get(j, "dropped")), 2);
	json_decref(j);
	/* no answer: all kept, drops still to tell */
	push_buf_done(&b, PUSH_FAILED);
	assert_int_equal(b.count, 3);
	assert_int_equal(b.dropped, 2);
	/* acknowledged: gone, and the server knows of the drops */
	j = take_json(&b, 100, &n);
	assert_int_equal(n, 3);
	json_decref(j);
	push_buf_add(&b, PUSH_FMT_JSON, "{\"b\":6}", 7);   /* arrives while the request is out */
	push_buf_done(&b, PUSH_SENT);
	assert_int_equal(b.count, 1);
	assert_int_equal(b.dropped, 0);
	assert_int_equal(b.dropped_total, 2);

	/* batches dropped while in flight count only if that request fails */
	push_buf_add(&b, PUSH_FMT_JSON, "{\"b\":7}", 7);
	push_buf_add(&b, PUSH_FMT_JSON, "{\"b\":8}", 7);
	j = take_json(&b, 100, &n);           /* 6, 7, 8 in flight */
	json_decref(j);
	push_buf_add(&b, PUSH_FMT_JSON, "{\"b\":9}", 7);     /* drops 6 */
	push_buf_add(&b, PUSH_FMT_JSON, "{\"b\":10}", 8);    /* drops 7 */
	assert_int_equal(b.dropped, 0);
	push_buf_done(&b, PUSH_SENT);         /* 6 and 7 arrived after all */
	assert_int_equal(b.dropped, 0);
	assert_int_equal(b.dropped_total, 2);
	assert_int_equal(b.count, 2);          /* 9, 10 */
	j = take_json(&b, 100, &n);
	json_decref(j);
	push_buf_add(&b, PUSH_FMT_JSON, "{\"b\":11}", 8);
	push_buf_add(&b, PUSH_FMT_JSON, "{\"b\":12}", 8);    /* drops 9 */
	push_buf_done(&b, PUSH_FAILED);       /* 9 was really lost */
	assert_int_equal(b.dropped, 1);
	assert_int_equal(b.count, 3);
	/* refused by the server: removed and counted */
	j = take_json(&b, 2, &n);
	json_decref(j);
	push_buf_done(&b, PUSH_REJECTED);
	assert_int_equal(b.count, 1);
	assert_int_equal(b.dropped, 3);
	assert_int_equal(b.dropped_total, 5);

	/* the body never exceeds outsz: a small one holds fewer batches */
	push_buf_add(&b, PUSH_FMT_JSON, "{\"b\":13}", 8);
	push_buf_add(&b, PUSH_FMT_JSON, "{\"b\":14}", 8);
	len = push_buf_take(&b, body, 48, 100, &n, &fmt);
	assert_int_equal(len, strlen(body));
	assert_int_equal(n, 2);
	assert_true(strlen(body) < 48);
	push_buf_done(&b, PUSH_FAILED);
	push_buf_release(&b);
}

/* --- the encoder --- */

static void
test_encode_batch(void **state)
{
	static struct col_batch b;
	static struct mon_snapshot snap;
	static char out[4096];
	json_t *j, *series, *s, *mons;
	size_t len, cut;

	b.ts_ms = 1700000000123;
	b.n = 0;
	col_add(&b, "cpu_busy_pct", 12.5, "scope", "machine", NULL, NULL);
	col_add(&b, "mem_total_bytes", 25276456960.0, "scope", "machine", NULL, NULL);
	col_add(&b, "disk_used_pct", 0.1 + 0.2, "scope", "machine", "mount", "/mnt/a \"q\"\\\x01\xff");
	col_add(&b, "procs", 82, NULL, NULL, NULL, NULL);
	col_add(&b, "neg", -3, NULL, NULL, NULL, NULL);
	col_add(&b, "nan", NAN, NULL, NULL, NULL, NULL);   /* refused */
	assert_int_equal(b.n, 5);
	col_add_labels(&b, "pods", 31, (const char *const[]){ "monitor", "team", "tier" },
		       (const char *const[]){ "k8s", "q", "web" }, 3);
	assert_int_equal(b.overflow, 1);
	snap.n = 3;
	snprintf(snap.m[0].name, MON_NAME_MAX, "busy");
	snap.m[0].r.state = MON_OK;
	snprintf(snap.m[1].name, MON_NAME_MAX, "slow");
	snap.m[1].r.state = MON_TIMEOUT;
	snprintf(snap.m[1].r.error, MON_ERROR_MAX, "timed out after 300ms");
	snprintf(snap.m[2].name, MON_NAME_MAX, "new");
	snap.m[2].r.state = MON_PENDING;

	len = push_encode_batch(&b, &snap, out, sizeof(out), &cut);
	assert_int_equal(len, strlen(out));
	assert_int_equal(cut, 0);
	assert_non_null(strstr(out, "\"value\":25276456960}"));   /* integers stay integers */
	assert_non_null(strstr(out, "\"value\":0.30000000000000004}"));
	j = json_loads(out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "ts_ms")), 1700000000123);
	series = json_object_get(j, "series");
	assert_int_equal(json_array_size(series), 6);
	s = json_array_get(series, 5);
	assert_int_equal(json_object_size(json_object_get(s, "labels")), 3);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(s, "labels"), "tier")), "web");
	s = json_array_get(series, 0);
	assert_string_equal(json_string_value(json_object_get(s, "name")), "cpu_busy_pct");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(s, "labels"), "scope")), "machine");
	NEAR(json_number_value(json_object_get(s, "value")), 12.5);
	s = json_array_get(series, 2);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(s, "labels"), "mount")),
		"/mnt/a \"q\"\\\x01?");
	s = json_array_get(series, 3);
	assert_null(json_object_get(s, "labels"));
	NEAR(json_number_value(json_object_get(s, "value")), 82);
	NEAR(json_number_value(json_object_get(json_array_get(series, 4), "value")), -3);
	mons = json_object_get(j, "monitors");
	assert_int_equal(json_array_size(mons), 2);   /* pending is not told */
	assert_string_equal(json_string_value(json_object_get(json_array_get(mons, 0), "state")),
			    "ok");
	assert_null(json_object_get(json_array_get(mons, 0), "error"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(mons, 1), "error")),
			    "timed out after 300ms");
	json_decref(j);

	/* too small for every series: the last ones are cut, the JSON stays whole */
	len = push_encode_batch(&b, &snap, out, 300, &cut);
	assert_true(len > 0 && len < 300);
	assert_true(cut > 0);
	j = json_loads(out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "series")), 6 - cut);
	json_decref(j);
	assert_int_equal(push_encode_batch(&b, &snap, out, 20, &cut), 0);
}

/* --- the config --- */

static void
test_config_parse(void **state)
{
	struct push_config c;
	struct herr err = HERR_INIT;
	json_t *j;

	j = json_loads("{\"version\":7,\"push_interval_s\":1,\"monitors\":["
		       "{\"name\":\"busy\",\"command\":\"cat /run/queue/busy\",\"interval_s\":5,"
		       "\"timeout_s\":3},"
		       "{\"name\":\"nocmd\"},"
		       "{\"name\":\"fast\",\"command\":\"echo 1\",\"interval_s\":0.2}]}",
		       0, NULL);
	assert_int_equal(push_config_parse(j, &c, &err), 0);
	assert_int_equal(c.version, 7);
	assert_int_equal(c.interval_ms, 1000);
	assert_int_equal(c.nmon, 2);   /* the one without a command is skipped */
	assert_string_equal(c.mon[0].name, "busy");
	assert_string_equal(c.mon[0].command, "cat /run/queue/busy");
	assert_int_equal(c.mon[0].interval_ms, 5000);
	assert_int_equal(c.mon[0].timeout_ms, 3000);
	assert_string_equal(c.mon[1].name, "fast");
	assert_int_equal(c.mon[1].interval_ms, 200);
	assert_int_equal(c.mon[1].timeout_ms, 3000);   /* default */
	push_config_release(&c);
	json_decref(j);

	/* labels: kept when the server would take them, skipped otherwise */
	j = json_loads("{\"version\":2,\"monitors\":[{\"name\":\"busy\",\"command\":\"x\","
		       "\"labels\":{\"team\":\"q\",\"host\":\"no\",\"9a\":\"no\",\"n\":1,"
		       "\"tier\":\"web\"}}]}",
		       0, NULL);
	assert_int_equal(push_config_parse(j, &c, &err), 0);
	assert_int_equal(c.nmon, 1);
	assert_int_equal(c.mon[0].labels.n, 2);
	assert_string_equal(c.mon[0].labels.key[0], "team");
	assert_string_equal(c.mon[0].labels.val[0], "q");
	assert_string_equal(c.mon[0].labels.key[1], "tier");
	assert_string_equal(c.mon[0].labels.val[1], "web");
	push_config_release(&c);
	json_decref(j);

	j = json_loads("{\"version\":1}", 0, NULL);
	assert_int_equal(push_config_parse(j, &c, &err), 0);
	assert_int_equal(c.interval_ms, PUSH_INTERVAL_MS);
	assert_int_equal(c.nmon, 0);
	json_decref(j);
	j = json_loads("{\"push_interval_s\":5}", 0, NULL);
	assert_int_equal(push_config_parse(j, &c, &err), HERR_INVALID);
	assert_string_equal(err.field, "version");
	json_decref(j);
	j = json_loads("{\"version\":1,\"push_interval_s\":0}", 0, NULL);
	assert_int_equal(push_config_parse(j, &c, &err), HERR_INVALID);
	assert_string_equal(err.field, "push_interval_s");
	json_decref(j);
	j = json_loads("{\"version\":1,\"monitors\":{}}", 0, NULL);
	assert_int_equal(push_config_parse(j, &c, &err), HERR_INVALID);
	json_decref(j);
	assert_int_equal(push_config_parse(NULL, &c, &err), HERR_INVALID);
}

/* --- a real collection on this machine --- */

static const struct col_series *
find(const struct col_batch *b, const char *name, const char *label_val)
{
	for (size_t i = 0; i < b->n; i++) {
		const struct col_series *s = &b->series[i];

		if (strcmp(s->name, name) != 0)
			continue;
		if (label_val == NULL || (s->label_val[1] && strcmp(s->label_val[1], label_val) == 0))
			return s;
	}
	return NULL;
}

static void
test_real_collection(void **state)
{
	static struct col_batch b;
	const struct col_series *s;
	double sum = 0;
	int64_t t0 = mono_ms();

	assert_int_equal(col_init(), 8);
	sleep_ms(250);  /* enough ticks for a CPU delta */
	col_collect(&b, mono_ms());
	assert_int_equal(b.overflow, 0);
	s = find(&b, "cpu_busy_pct", NULL);
	assert_non_null(s);
	assert_true(s->value >= 0 && s->value <= 100);
	assert_string_equal(s->label_key[0], "scope");
	assert_string_equal(s->label_val[0], "machine");
	for (int i = 0; i < COL_CPU_MODES; i++) {
		s = find(&b, "cpu_mode_pct", col_cpu_mode_names[i]);
		assert_non_null(s);
		assert_true(s->value >= 0 && s->value <= 100);
		sum += s->value;
	}
	assert_true(fabs(sum - 100) < 0.1);
	s = find(&b, "mem_total_bytes", NULL);
	assert_non_null(s);
	assert_true(s->value > 0);
	assert_true(find(&b, "mem_used_pct", NULL)->value >= 0);
	assert_true(find(&b, "mem_used_pct", NULL)->value <= 100);
	assert_true(find(&b, "mem_available_bytes", NULL)->value <= s->value);
	assert_true(find(&b, "load1", NULL)->value >= 0);
	assert_non_null(find(&b, "load15", NULL));
	s = find(&b, "procs", NULL);
	assert_non_null(s);
	assert_true(s->value >= 1);
	assert_string_equal(s->label_val[0], "host");
	assert_true(find(&b, "uptime_s", NULL)->value > 0);
	/* lo is in every network namespace */
	s = find(&b, "net_rx_bytes_per_s", "lo");
	assert_non_null(s);
	assert_true(s->value >= 0);
	assert_string_equal(s->label_val[0], "host");
	for (size_t i = 0; i < b.n; i++) {
		if (strcmp(b.series[i].name, "disk_used_pct") == 0)
			assert_true(b.series[i].value >= 0 && b.series[i].value <= 100);
		assert_true(isfinite(b.series[i].value));
	}
	/* the host's own figures only in a local host's cgroup (the test
	 * runs in none: e2e 0440 reads them for real); never twice */
	for (size_t i = 0, host = 0; i < b.n; i++) {
		s = &b.series[i];
		if (strcmp(s->name, "mem_used_bytes") == 0 &&
		    strcmp(s->label_val[0], "host") == 0) {
			assert_true(s->value > 0);
			assert_int_equal(host++, 0);
		}
	}
	/* a second cycle again has rates */
	sleep_ms(50);
	col_collect(&b, mono_ms());
	assert_non_null(find(&b, "net_tx_bytes_per_s", "lo"));
	col_release();
	assert_true(mono_ms() - t0 < 2000);
}

/* /proc/self/cgroup in both formats, fixture text: v1 as on this machine
 * (cpu and cpuacct mounted apart) and as where they share a hierarchy, v2
 * (unified), and a cloud VM's root cgroup. */
static void
test_cgroup_parse(void **state)
{
	struct col_cgroup c;
	uint64_t ns = 0;

	/* v1, separate hierarchies, a local host's paths (hybrid: a 0:: line too) */
	assert_int_equal(col_cgroup_parse("9:name=systemd:/\n8:pids:/\n4:memory:/herd-ab12/0a1b2c3d\n"
					  "3:cpuset:/\n2:cpuacct:/herd-ab12/0a1b2c3d\n"
					  "1:cpu:/herd-ab12/0a1b2c3d\n0::/\n", &c), 0);
	assert_string_equal(c.cpu, "/herd-ab12/0a1b2c3d");
	assert_string_equal(c.cpuacct, "/herd-ab12/0a1b2c3d");
	assert_string_equal(c.memory, "/herd-ab12/0a1b2c3d");
	assert_string_equal(c.v2, "/");
	assert_int_equal(col_cgroup_mode(&c), COL_CGROUP_V1);
	/* v1, cpu and cpuacct together; no trailing newline */
	assert_int_equal(col_cgroup_parse("4:memory:/herd-i1/00ff00ff\n3:cpu,cpuacct:/herd-i1/00ff00ff",
					  &c), 0);
	assert_string_equal(c.cpu, "/herd-i1/00ff00ff");
	assert_string_equal(c.cpuacct, "/herd-i1/00ff00ff");
	assert_string_equal(c.v2, "");
	assert_int_equal(col_cgroup_mode(&c), COL_CGROUP_V1);
	/* a cloud VM's agent under systemd: its service's cgroup is not the host */
	assert_int_equal(col_cgroup_parse("0::/system.slice/herd-agent.service\n", &c), 0);
	assert_int_equal(col_cgroup_mode(&c), COL_CGROUP_NONE);
	assert_int_equal(col_cgroup_parse("4:memory:/system.slice/herd-agent.service\n"
					  "3:cpu,cpuacct:/system.slice/herd-agent.service\n", &c), 0);
	assert_int_equal(col_cgroup_mode(&c), COL_CGROUP_NONE);
	/* the names: exactly /herd-<instance>/<8 hex> */
	assert_true(col_cgroup_is_host("/herd-ab12/0a1b2c3d"));
	assert_false(col_cgroup_is_host("/herd-ab12/0a1b2c3d/x"));
	assert_false(col_cgroup_is_host("/herd-/0a1b2c3d"));
	assert_false(col_cgroup_is_host("/herd-ab12/0A1B2C3D"));
	assert_false(col_cgroup_is_host("/herd-ab12"));
	assert_false(col_cgroup_is_host("/process_api/28c5ac65"));
	assert_false(col_cgroup_is_host("/"));
	/* "cpuset" is not "cpu": a prefix does not match */
	assert_int_equal(col_cgroup_parse("3:cpuset:/a\n", &c), 0);
	assert_string_equal(c.cpu, "");
	assert_int_equal(col_cgroup_mode(&c), COL_CGROUP_NONE);
	/* v2 */
	assert_int_equal(col_cgroup_parse("0::/herd-ab12/0a1b2c3d\n", &c), 0);
	assert_string_equal(c.v2, "/herd-ab12/0a1b2c3d");
	assert_int_equal(col_cgroup_mode(&c), COL_CGROUP_V2);
	/* a cloud VM: root everywhere */
	assert_int_equal(col_cgroup_parse("0::/\n", &c), 0);
	assert_int_equal(col_cgroup_mode(&c), COL_CGROUP_NONE);
	assert_int_equal(col_cgroup_parse("12:memory:/\n11:cpu,cpuacct:/\n0::/\n", &c), 0);
	assert_int_equal(col_cgroup_mode(&c), COL_CGROUP_NONE);
	/* nothing parses */
	assert_int_equal(col_cgroup_parse("", &c), HERR_INVALID);
	assert_int_equal(col_cgroup_parse("garbage\n", &c), HERR_INVALID);

	/* v2 cpu.stat */
	assert_int_equal(col_cgroup_cpu_v2("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
					   &ns), 0);
	assert_int_equal(ns, 1500000);
	assert_int_equal(col_cgroup_cpu_v2("user_usec 1\n", &ns), HERR_INVALID);
}

static void
test_cgroup_limits(void **state)
{
	/* v1: quota and period files; -1 = none */
	assert_true(col_cgroup_quota_cores("20000\n", "100000\n") == 0.2);
	assert_true(col_cgroup_quota_cores("-1\n", "100000\n") == 0);
	assert_true(col_cgroup_quota_cores("250000\n", "100000\n") == 2.5);
	/* v2: cpu.max */
	assert_true(col_cgroup_quota_cores("20000 100000\n", NULL) == 0.2);
	assert_true(col_cgroup_quota_cores("max 100000\n", NULL) == 0);
	assert_true(col_cgroup_quota_cores("", NULL) == 0);
	/* memory: v2 "max", v1's huge "no limit", a real limit */
	assert_int_equal(col_cgroup_mem_limit("max\n", 8ULL << 30), 0);
	assert_int_equal(col_cgroup_mem_limit("9223372036854771712\n", 8ULL << 30), 0);
	assert_int_equal(col_cgroup_mem_limit("67108864\n", 8ULL << 30), 67108864);
	/* busy %: of the quota's CPUs; 0.2 s of CPU in 1 s at 0.2 cores = 100 % */
	assert_true(col_cgroup_busy_pct(0, 200000000, 1000, 0.2) == 100);
	assert_true(col_cgroup_busy_pct(0, 100000000, 1000, 0.2) == 50);
	/* unlimited on 2 CPUs: 0.5 s in 1 s = 25 % */
	assert_true(col_cgroup_busy_pct(1000, 1000 + 500000000, 1000, 2) == 25);
	assert_true(col_cgroup_busy_pct(5, 5, 1000, 2) == 0);
	/* capped; no figure without time, CPUs or with a counter going down */
	assert_true(col_cgroup_busy_pct(0, 3000000000ULL, 1000, 2) == 100);
	assert_true(col_cgroup_busy_pct(0, 1, 0, 2) < 0);
	assert_true(col_cgroup_busy_pct(0, 1, 1000, 0) < 0);
	assert_true(col_cgroup_busy_pct(2, 1, 1000, 2) < 0);
}

/* col_read_whole: one pread of a file the kernel builds whole (meminfo,
 * loadavg, uptime, stat, a cgroup file); the same bytes as col_read, cut at
 * the buffer like it. */
static void
test_read_whole(void **state)
{
	char a[8192], b[8192], small[16];
	ssize_t na, nb;
	int fd = col_open("/proc/meminfo");

	assert_true(fd >= 0);
	na = col_read(fd, a, sizeof(a));
	nb = col_read_whole(fd, b, sizeof(b));
	assert_true(na > 100);
	assert_true(nb > 100);
	assert_memory_equal(a, b, 12);   /* "MemTotal: " + the first digits */
	assert_int_equal(b[nb], '\0');
	assert_non_null(strstr(b, "\nMemFree:"));
	assert_int_equal(col_read_whole(fd, small, sizeof(small)), (ssize_t)sizeof(small) - 1);
	assert_int_equal(small[sizeof(small) - 1], '\0');
	assert_memory_equal(small, a, sizeof(small) - 1);
	close(fd);
	assert_int_equal(col_read_whole(-1, small, sizeof(small)), -EBADF);
}

/* The encoder's numbers before the fast paths: integers by their digits,
 * others "%.15g", or "%.17g" when that does not read back the same. */
static int
num_reference(double v, char *out)
{
	if (v == 0)
		return sprintf(out, "0");
	if (v == floor(v) && fabs(v) < 1e15)
		return sprintf(out, "%.0f", v);
	if (strtod((sprintf(out, "%.15g", v), out), NULL) != v)
		return sprintf(out, "%.17g", v);
	return (int)strlen(out);
}

static void
num_same(double v)
{
	char got[32], want[32];
	size_t n = push_num_format(v, got);

	num_reference(v, want);
	got[n] = '\0';
	if (strcmp(got, want) != 0)
		fail_msg("%.17g: got '%s', want '%s'", v, got, want);
}

/* push_num_format writes every value as the encoder always did: the
 * two-decimal fast path (percentages, load averages) included. */
static void
test_num_format(void **state)
{
	static const double fixed[] = {
		0, -0.0, 1, -1, 0.01, 0.1, 0.5, 0.05, 0.99, 1.1, 12.34, -12.34, 45.3, 99.99, 100,
		0.1 + 0.2, 1.005, 2.675, 1e-3, 1e-5, 123456789.12, 9999999999999.99, 1e13 + 0.5,
		1e15, 1e15 + 2, 1e16, 1e300, -1e300, 3.14159, 1.0 / 3, 4503599627370496.5,
		0.015, 0.025, 1234567890123.45, -0.01,
	};
	uint64_t x = 88172645463325252ull;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		num_same(fixed[i]);
	for (int i = 0; i < 200000; i++) {
		int64_t k;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		k = (int64_t)(x % 100000000000000ull) >> (x % 40);
		num_same((double)k / 100.0);                   /* two decimals */
		num_same(col_round((double)k / 1000.0, 2));    /* as collectors round */
		num_same((double)k / 7.0);                     /* any other */
		num_same(-(double)k / 100.0);
	}
}

/* col_parse_fixed reads what strtod reads, to the same double and the same
 * end: its fast path ("I", "I.F", "I.FF": /proc/loadavg, /proc/uptime) and
 * everything else through strtod. */
static void
fixed_same(const char *text)
{
	const char *p = text;
	char *end;
	double want = strtod(text, &end), got = -12345;
	bool ok = col_parse_fixed(&p, &got);

	if (end == text) {
		if (ok)
			fail_msg("'%s': parsed, strtod did not", text);
		assert_ptr_equal(p, text);
		return;
	}
	if (!ok || p != end || memcmp(&got, &want, sizeof(got)) != 0)
		fail_msg("'%s': got %.17g ending at %td, want %.17g at %td", text, got, p - text, want,
			 end - text);
}

static void
test_parse_fixed(void **state)
{
	static const char *const fixed[] = {
		"0.52 0.48 0.40 1/234 5678", " 0.48 0.40", "12.5", "123456.78 99.01\n", "1", "0",
		"0.00", "00.01", "1.", ".5", "1.005", "0.125", "1e3", "1.5e2", "-1.5", "+2.25", "nan",
		"inf", "0x10", "", "abc", " \t\n7.25", "99999999999999.99", "9999999999999999.99",
		"123456789012345678901234567890.5", "4.5x", "3..2", "7.0", "7.10",
	};
	uint64_t x = 2463534242ull;
	char buf[64];

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		fixed_same(fixed[i]);
	for (int i = 0; i < 100000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		snprintf(buf, sizeof(buf), "%llu.%02llu %llu.%llu %llu", (unsigned long long)(x >> (x % 60)),
			 (unsigned long long)(x % 100), (unsigned long long)(x % 1000003),
			 (unsigned long long)(x % 10), (unsigned long long)(x >> 20));
		fixed_same(buf);
		fixed_same(strchr(buf, ' '));
	}
}

/* The push's answer: config_version read from the server's own form without
 * a jansson tree, and from any other JSON object through jansson. */
static void
version_is(const char *text, int want_rc, long long want)
{
	json_int_t v = -7;

	assert_int_equal(push_answer_config_version(text, strlen(text), &v), want_rc);
	if (want_rc == 1)
		assert_int_equal(v, want);
	else
		assert_int_equal(v, -7);
}

static void
test_answer_version(void **state)
{
	version_is("{\"config_version\":12,\"accepted\":40,\"rejected\":0}\n", 1, 12);
	version_is("{\"config_version\":0,\"accepted\":0,\"rejected\":0}", 1, 0);
	version_is("{\"config_version\":-1,\"accepted\":1,\"rejected\":2}\r\n", 1, -1);
	version_is("{\"config_version\":9223372036854775807,\"accepted\":1,\"rejected\":0}", 1,
		   9223372036854775807LL);
	version_is("{\"config_version\":7,\"accepted\":1,\"rejected\":0,\"refused\":{\"series\":1,"
		   "\"reason\":\"host_max_series\"}}", 1, 7);
	version_is("{\"config_version\":0}", 1, 0);
	version_is("{\"config_version\":-1,\"accepted\":1}", 1, -1);
	/* other forms: jansson's word */
	version_is("{ \"accepted\": 3, \"config_version\": 5 }", 1, 5);
	version_is("{\"config_version\":1.5}", 0, 0);
	version_is("{\"config_version\":\"3\"}", 0, 0);
	version_is("{\"config_version\":99999999999999999999}", 0, 0);
	version_is("{\"config_version\":12", 0, 0);
	version_is("{\"config_version\":12,", 0, 0);
	version_is("{\"config_version\":12,\"accepted\":1,\"rejected\":0}x", 0, 0);
	version_is("{\"config_version\":012,\"accepted\":1,\"rejected\":0}", 0, 0);
	version_is("{\"accepted\":3}", 0, 0);
	version_is("[1,2]", 0, 0);
	version_is("", 0, 0);
	version_is("not json", 0, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpu_parse),
		cmocka_unit_test(test_cpu_pct),
		cmocka_unit_test(test_load_mem_uptime),
		cmocka_unit_test(test_net_parse_and_rates),
		cmocka_unit_test(test_disk_parse),
		cmocka_unit_test(test_procs_count),
		cmocka_unit_test(test_procs_skip),
		cmocka_unit_test(test_procs_real),
		cmocka_unit_test(test_monitor_output),
		cmocka_unit_test(test_push_buf_count_bound),
		cmocka_unit_test(test_push_buf_byte_bound),
		cmocka_unit_test(test_push_buf_take),
		cmocka_unit_test(test_encode_batch),
		cmocka_unit_test(test_config_parse),
		cmocka_unit_test(test_real_collection),
		cmocka_unit_test(test_cgroup_parse),
		cmocka_unit_test(test_cgroup_limits),
		cmocka_unit_test(test_read_whole),
		cmocka_unit_test(test_num_format),
		cmocka_unit_test(test_parse_fixed),
		cmocka_unit_test(test_answer_version),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
