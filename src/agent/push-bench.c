/* push-bench.c - `herd agent --bench-collect N [--interval-ms MS]`: runs N
 * collection cycles of the real pipeline (collectors, encoding, buffer;
 * no server, no monitors) and prints each cycle's CPU time and the RSS,
 * then a summary line for bench/agent.sh. The HTTP client is initialised
 * as in a real agent, so the RSS includes what libcurl costs. */
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/col.h"
#include "agent/push.h"
#include "httpc.h"
#include "log.h"
#include "util.h"

struct bench {
	uint64_t want;
	uint64_t done;              /* under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int statm_fd;
	long page_kb;
	int64_t proc_cpu_first_ns;  /* process CPU at the end of cycle 1 */
	int64_t proc_cpu_last_ns;   /* ... and of cycle N */
	int64_t cycle_cpu_sum_ns;   /* cycles 2..N */
	int64_t cycle_cpu_max_ns;
	long rss_max_kb;
	size_t bytes, series;
	bool json;                  /* --json: print the last batch */
	char last[PUSH_MAX_BATCH_BYTES];
};

static int64_t
bench_proc_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long
bench_rss_kb(struct bench *b)
{
	char text[128];
	long size = 0, resident = 0;

	if (col_read(b->statm_fd, text, sizeof(text)) < 0 ||
	    sscanf(text, "%ld %ld", &size, &resident) != 2)
		return -1;
	return resident * b->page_kb;
}

static void
bench_tick(const struct push_tick *t, void *arg)
{
	struct bench *b = arg;
	long rss = bench_rss_kb(b);

	printf("cycle %llu cpu_us=%.1f rss_kb=%ld series=%zu bytes=%zu\n",
	       (unsigned long long)t->cycle, (double)t->cpu_ns / 1000, rss, t->series, t->len);
	fflush(stdout);
	if (rss > b->rss_max_kb)
		b->rss_max_kb = rss;
	b->bytes = t->len;
	b->series = t->series;
	if (b->json && t->len < sizeof(b->last))
		memcpy(b->last, t->json, t->len + 1);
	if (t->cycle == 1) {
		b->proc_cpu_first_ns = bench_proc_cpu_ns();
	} else if (t->cycle <= b->want) {
		/* cycle 1 opens files and faults pages in: the steady state is 2..N */
		b->cycle_cpu_sum_ns += t->cpu_ns;
		if (t->cpu_ns > b->cycle_cpu_max_ns)
			b->cycle_cpu_max_ns = t->cpu_ns;
	}
	if (t->cycle == b->want)
		b->proc_cpu_last_ns = bench_proc_cpu_ns();
	pthread_mutex_lock(&b->lock);
	b->done = t->cycle;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

/* VmHWM, RssAnon and RssFile from /proc/self/status, in KiB. */
static void
bench_status(long *hwm, long *anon, long *file)
{
	char text[4096], *p;
	int fd = col_open("/proc/self/status");

	*hwm = *anon = *file = -1;
	if (fd < 0)
		return;
	if (col_read(fd, text, sizeof(text)) > 0) {
		if ((p = strstr(text, "VmHWM:")))
			*hwm = strtol(p + 6, NULL, 10);
		if ((p = strstr(text, "RssAnon:")))
			*anon = strtol(p + 8, NULL, 10);
		if ((p = strstr(text, "RssFile:")))
			*file = strtol(p + 8, NULL, 10);
	}
	close(fd);
}

int
push_bench_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "bench-collect", required_argument, NULL, 'n' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "no-http", no_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	static struct bench b;
	struct push_opts o = { 0 };
	struct httpc c;
	struct push *p;
	char dir[] = "/tmp/herd-bench-collect.XXXXXX";
	bool http = true;
	long interval = 1000, hwm, anon, file, start_kb;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			b.want = strtoull(optarg, NULL, 10);
			break;
		case 'i':
			interval = strtol(optarg, NULL, 10);
			break;
		case 'H':
			http = false;
			break;
		case 'j':
			b.json = true;
			break;
		default:
			fprintf(stderr, "usage: herd agent --bench-collect N [--interval-ms MS] "
					"[--no-http] [--json]\n");
			return 2;
		}
	}
	if (b.want < 2 || interval < 10) {
		fprintf(stderr, "herd agent: --bench-collect wants N >= 2 and --interval-ms >= 10\n");
		return 2;
	}
	log_set_prefix("agent");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	b.statm_fd = col_open("/proc/self/statm");
	b.page_kb = sysconf(_SC_PAGESIZE) / 1024;
	/* the floor: this binary and its libraries loaded, nothing done yet */
	start_kb = bench_rss_kb(&b);
	if (http)
		httpc_init(&c, "http://127.0.0.1:1", NULL);   /* as the agent's clients */
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.cond, NULL);
	o.interval_ms = interval;
	o.monitor_dir = dir;
	o.on_tick = bench_tick;
	o.arg = &b;
	p = push_new(&o);
	if (push_start(p) < 0) {
		fprintf(stderr, "herd agent: cannot start the collection thread\n");
		return 1;
	}
	pthread_mutex_lock(&b.lock);
	while (b.done < b.want)
		pthread_cond_wait(&b.cond, &b.lock);
	pthread_mutex_unlock(&b.lock);
	bench_status(&hwm, &anon, &file);
	push_stop(p);
	push_free(p);
	if (http)
		httpc_release(&c);
	rmdir(dir);
	printf("summary cycles=%llu interval_ms=%ld series=%zu batch_bytes=%zu "
	       "cpu_us_per_cycle=%.1f cpu_us_max=%.1f proc_cpu_us_per_cycle=%.1f "
	       "rss_kb=%ld hwm_kb=%ld anon_kb=%ld file_kb=%ld rss_start_kb=%ld\n",
	       (unsigned long long)b.want, interval, b.series, b.bytes,
	       (double)b.cycle_cpu_sum_ns / 1000 / (double)(b.want - 1),
	       (double)b.cycle_cpu_max_ns / 1000,
	       (double)(b.proc_cpu_last_ns - b.proc_cpu_first_ns) / 1000 / (double)(b.want - 1),
	       b.rss_max_kb, hwm, anon, file, start_kb);
	if (b.json)
		printf("%s\n", b.last);
	close(b.statm_fd);
	return 0;
}
