/* ctl/rwout.c - remote_write out (ctl/rwout.h): the tap on the push path,
 * a sender thread per remote (buffer -> relabel -> segments on disk ->
 * rounds of POSTs), and the manager thread that follows the resources. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ctl/rwout.h"
#include "log.h"
#include "model/kind.h"
#include "model/metrics.h"
#include "model/res.h"
#include "promwire.h"
#include "rwout/rwout.h"
#include "util.h"
#include "xalloc.h"

#define SEG_MAX_BYTES (4u << 20)     /* a segment is closed past this ... */
#define SEG_MIN_BYTES (64u << 10)    /* ... or max_bytes / 16, at least this */
#define LOG_EVERY_MS 60000           /* a remote's refusals are logged once a minute */
#define RETRY_AFTER_MAX_MS 300000

struct seg {
	uint64_t seq;
	uint64_t bytes, samples;
};

struct remote {
	char name[64];
	char *spec_text;             /* the spec as JSON: a change restarts the remote */
	json_t *spec;                /* owned; conf borrows from it */
	struct rw_conf conf;
	char dir[1200];
	struct server *srv;
	pthread_t thread;
	volatile int stop;

	/* the tap's buffer: records, under mem_lock (held for copies only) */
	pthread_mutex_t mem_lock;
	char *mem;
	size_t mem_len, mem_cap;

	/* figures, under st_lock */
	pthread_mutex_t st_lock;
	uint64_t sent, dropped_queue, dropped_4xx, retried;
	uint64_t pending_bytes, pending_samples;
	int shards;
	char last_error[RW_ERROR_MAX + 64];
	int64_t last_error_ms;

	/* the sender's own */
	struct seg *segs;            /* on disk, oldest first; the last is open when open_fd >= 0 */
	size_t nsegs, capsegs;
	int open_fd;
	int64_t open_since_ms;
	uint64_t next_seq;
	char *cur;                   /* the oldest segment's bytes, being sent */
	size_t cur_len, ack_off;     /* records before ack_off are done */
	uint64_t cur_seq, cur_done;  /* cur_done: samples of it done */
	size_t round_end;            /* > ack_off: a round under way */
	int round_shards;
	uint64_t round_done;         /* bit i: shard i's batch is done */
	int failures;
	int64_t retry_at_ms, logged_ms;

	struct remote *next;
};

/* writers preferred: pushes hold it as readers all the time, and the
 * manager must still get in to change the list */
static pthread_rwlock_t g_lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static struct remote *g_remotes;
static pthread_t g_manager;
static bool g_started;

/* --- the tap (HTTP threads) --- */

static void
tap(struct server *s, int64_t ts_ms, const struct tsdb_sample *smp, size_t n)
{
	const char *names[RW_LABELS_MAX], *values[RW_LABELS_MAX];

	(void)s;
	pthread_rwlock_rdlock(&g_lock);
	for (struct remote *r = g_remotes; r; r = r->next) {
		uint64_t dropped = 0;

		pthread_mutex_lock(&r->mem_lock);
		for (size_t i = 0; i < n; i++) {
			int nl = 0;

			if (r->mem_len + RW_RECORD_MAX > RWOUT_MEM_MAX) {
				dropped++;
				continue;
			}
			if (r->mem_cap < r->mem_len + RW_RECORD_MAX) {
				r->mem_cap = r->mem_cap ? r->mem_cap * 2 : 256u << 10;
				if (r->mem_cap > RWOUT_MEM_MAX)
					r->mem_cap = RWOUT_MEM_MAX;
				r->mem = xrealloc(r->mem, r->mem_cap);
			}
			names[nl] = "__name__";
			values[nl++] = smp[i].metric;
			for (size_t k = 0; k < smp[i].nlabels && nl < RW_LABELS_MAX; k++) {
				names[nl] = smp[i].labels[k].name;
				values[nl++] = smp[i].labels[k].value;
			}
			r->mem_len += rw_record_put(r->mem + r->mem_len, ts_ms, smp[i].value, names,
						    values, nl);
		}
		pthread_mutex_unlock(&r->mem_lock);
		if (dropped) {
			pthread_mutex_lock(&r->st_lock);
			r->dropped_queue += dropped;
			pthread_mutex_unlock(&r->st_lock);
		}
	}
	pthread_rwlock_unlock(&g_lock);
}

/* --- segments --- */

static void
seg_path(const struct remote *r, uint64_t seq, char *out, size_t n)
{
	snprintf(out, n, "%s/%020" PRIu64 ".seg", r->dir, seq);
}

static void
set_error(struct remote *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_error(struct remote *r, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&r->st_lock);
	va_start(ap, fmt);
	vsnprintf(r->last_error, sizeof(r->last_error), fmt, ap);
	va_end(ap);
	r->last_error_ms = now_ms();
	pthread_mutex_unlock(&r->st_lock);
}

/* Counts the whole records of buf (a torn tail is not one). */
static uint64_t
count_records(const char *buf, size_t len, size_t *whole)
{
	uint64_t n = 0;
	size_t off = 0, k;
	int64_t ts;
	double v;

	while ((k = rw_record_get(buf + off, len - off, &ts, &v, NULL)) > 0) {
		off += k;
		n++;
	}
	if (whole)
		*whole = off;
	return n;
}

static int
read_file(const char *path, char **out, size_t *len)
{
	struct stat st;
	size_t got = 0;
	ssize_t k;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*out = NULL;
	*len = 0;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size > (off_t)(SEG_MAX_BYTES + RWOUT_MEM_MAX + RW_RECORD_MAX)) {
		close(fd);
		return -EFBIG;
	}
	*out = xcalloc(1, (size_t)st.st_size + 1);
	while (got < (size_t)st.st_size && (k = read(fd, *out + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)k;
	close(fd);
	*len = got;
	return 0;
}

static void
seg_push(struct remote *r, uint64_t seq, uint64_t bytes, uint64_t samples)
{
	if (r->nsegs == r->capsegs) {
		r->capsegs = r->capsegs ? r->capsegs * 2 : 16;
		r->segs = xrealloc(r->segs, r->capsegs * sizeof(*r->segs));
	}
	r->segs[r->nsegs++] = (struct seg){ seq, bytes, samples };
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
ack_write(struct remote *r, uint64_t seq, size_t off)
{
	char path[1300], tmp[1300], line[64];
	int fd, n;

	snprintf(path, sizeof(path), "%s/ack", r->dir);
	snprintf(tmp, sizeof(tmp), "%s/ack.tmp", r->dir);
	n = snprintf(line, sizeof(line), "%" PRIu64 " %zu\n", seq, off);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, line, (size_t)n) != n || rename(tmp, path) < 0)
		set_error(r, "cannot record progress in '%s': %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* What a previous run left: the segments (all closed now) and the ack. */
static void
queue_load(struct remote *r)
{
	uint64_t *seqs = NULL, ack_seq = 0;
	size_t n = 0, cap = 0, ack_off = 0;
	char path[1300];
	struct dirent *de;
	DIR *d;
	FILE *f;

	if (mkdir_p(r->dir, 0700) < 0) {
		set_error(r, "cannot create '%s': %s", r->dir, strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/ack", r->dir);
	if ((f = fopen(path, "re")) != NULL) {
		if (fscanf(f, "%" SCNu64 " %zu", &ack_seq, &ack_off) != 2)
			ack_seq = ack_off = 0;
		fclose(f);
	}
	if ((d = opendir(r->dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		unsigned long long seq;
		char tail[8];

		if (sscanf(de->d_name, "%20llu%7s", &seq, tail) != 2 || strcmp(tail, ".seg") != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			seqs = xrealloc(seqs, cap * sizeof(*seqs));
		}
		seqs[n++] = seq;
	}
	closedir(d);
	if (n > 1)
		qsort(seqs, n, sizeof(*seqs), cmp_u64);
	for (size_t i = 0; i < n; i++) {
		char *buf;
		size_t len, whole;
		uint64_t cnt;

		seg_path(r, seqs[i], path, sizeof(path));
		if (seqs[i] < ack_seq || read_file(path, &buf, &len) < 0) {
			unlink(path);   /* acknowledged before the stop, or unreadable */
			continue;
		}
		cnt = count_records(buf, len, &whole);
		if (seqs[i] == ack_seq && ack_off <= whole) {
			r->cur = buf;   /* resume inside it */
			r->cur_len = whole;
			r->cur_seq = seqs[i];
			r->ack_off = ack_off;
			r->cur_done = count_records(buf, ack_off, NULL);
		} else {
			free(buf);
		}
		seg_push(r, seqs[i], whole, cnt);
		r->next_seq = seqs[i] + 1;
	}
	free(seqs);
}

static size_t
seg_limit(const struct remote *r)
{
	uint64_t l = r->conf.max_bytes / 16;

	return l > SEG_MAX_BYTES ? SEG_MAX_BYTES : l < SEG_MIN_BYTES ? SEG_MIN_BYTES : (size_t)l;
}

static void
seg_close(struct remote *r)
{
	if (r->open_fd < 0)
		return;
	fsync(r->open_fd);
	close(r->open_fd);
	r->open_fd = -1;
}

/* Takes the buffer, relabels it into the open segment. */
static void
drain(struct remote *r, char **spare, size_t *spare_cap)
{
	static __thread struct rw_labels ls;
	const char *names[RW_LABELS_MAX], *values[RW_LABELS_MAX];
	char *buf, *out, path[1300];
	size_t len, cap, off = 0, k, o = 0;
	uint64_t cnt = 0;
	int64_t ts;
	double v;

	pthread_mutex_lock(&r->mem_lock);
	buf = r->mem;
	len = r->mem_len;
	cap = r->mem_cap;
	r->mem = *spare;
	r->mem_cap = *spare_cap;
	r->mem_len = 0;
	pthread_mutex_unlock(&r->mem_lock);
	*spare = buf;
	*spare_cap = cap;
	if (len == 0)
		return;
	out = xmalloc(len + RW_RECORD_MAX);
	while (off < len && (k = rw_record_get(buf + off, len - off, &ts, &v, &ls)) > 0) {
		off += k;
		if (!rw_relabel(&r->conf, &ls))
			continue;
		for (int i = 0; i < ls.n; i++) {
			names[i] = ls.name[i];
			values[i] = ls.value[i];
		}
		o += rw_record_put(out + o, ts, v, names, values, ls.n);
		cnt++;
	}
	if (o > 0 && r->open_fd < 0) {
		seg_path(r, r->next_seq, path, sizeof(path));
		r->open_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
		if (r->open_fd < 0) {
			set_error(r, "cannot create '%s': %s", path, strerror(errno));
			pthread_mutex_lock(&r->st_lock);
			r->dropped_queue += cnt;
			pthread_mutex_unlock(&r->st_lock);
			free(out);
			return;
		}
		seg_push(r, r->next_seq++, 0, 0);
		r->open_since_ms = mono_ms();
	}
	if (o > 0) {
		struct seg *sg = &r->segs[r->nsegs - 1];
		size_t w = 0;
		ssize_t n;

		while (w < o && (n = write(r->open_fd, out + w, o - w)) > 0)
			w += (size_t)n;
		if (w < o) {
			set_error(r, "cannot write segment %" PRIu64 ": %s", sg->seq, strerror(errno));
			if (ftruncate(r->open_fd, (off_t)sg->bytes) < 0)
				log_warn("remote_write '%s': %s", r->name, strerror(errno));
			pthread_mutex_lock(&r->st_lock);
			r->dropped_queue += cnt;
			pthread_mutex_unlock(&r->st_lock);
		} else {
			sg->bytes += o;
			sg->samples += cnt;
		}
	}
	free(out);
}

/* Drops the oldest segment (past max_bytes): its samples not yet done are
 * counted as dropped_queue. */
static void
drop_oldest(struct remote *r)
{
	struct seg *sg = &r->segs[0];
	char path[1300];
	uint64_t lost = sg->samples;

	if (r->nsegs == 1)
		seg_close(r);
	if (r->cur && r->cur_seq == sg->seq) {
		lost -= r->cur_done;
		free(r->cur);
		r->cur = NULL;
		r->round_end = 0;
	}
	seg_path(r, sg->seq, path, sizeof(path));
	unlink(path);
	memmove(r->segs, r->segs + 1, (r->nsegs - 1) * sizeof(*r->segs));
	r->nsegs--;
	pthread_mutex_lock(&r->st_lock);
	r->dropped_queue += lost;
	pthread_mutex_unlock(&r->st_lock);
	log_warn("remote_write '%s': queue over %" PRIu64 " bytes: dropped its oldest %" PRIu64
		 " samples", r->name, r->conf.max_bytes, lost);
}

static void
bound_and_count(struct remote *r)
{
	uint64_t bytes = 0, samples = 0;

	for (size_t i = 0; i < r->nsegs; i++)
		bytes += r->segs[i].bytes;
	while (bytes > r->conf.max_bytes && r->nsegs > 0) {
		bytes -= r->segs[0].bytes;
		drop_oldest(r);
	}
	for (size_t i = 0; i < r->nsegs; i++)
		samples += r->segs[i].samples;
	if (r->cur)
		samples -= r->cur_done;
	pthread_mutex_lock(&r->mem_lock);
	bytes += r->mem_len;
	pthread_mutex_unlock(&r->mem_lock);
	pthread_mutex_lock(&r->st_lock);
	r->pending_bytes = bytes;
	r->pending_samples = samples;
	pthread_mutex_unlock(&r->st_lock);
}

/* --- rounds --- */

static size_t
closed_segments(const struct remote *r)
{
	return r->nsegs - (r->open_fd >= 0 ? 1 : 0);
}

/* One attempt at the round (started if none is under way). */
static void
round_try(struct remote *r)
{
	const struct rw_conf *c = &r->conf;
	int shards, nposts = 0;
	size_t max = (size_t)c->max_samples_per_send, off, k, *count;
	struct pw_label *labels;
	struct pw_sample *samples;
	struct pw_series **series;
	struct rw_post posts[64];
	int idx[64];
	struct herr err = HERR_INIT;
	char path[1300];
	int64_t now, wait = 0;
	bool all = true;

	if (r->cur == NULL) {
		seg_path(r, r->segs[0].seq, path, sizeof(path));
		if (read_file(path, &r->cur, &r->cur_len) < 0) {
			set_error(r, "cannot read segment '%s': %s", path, strerror(errno));
			drop_oldest(r);
			return;
		}
		r->cur_seq = r->segs[0].seq;
		r->ack_off = 0;
		r->cur_done = 0;
		r->round_end = 0;
	}
	if (r->round_end <= r->ack_off) {
		/* a new round: its end and shards are fixed until it is done */
		size_t *per;
		int64_t ts;
		double v;

		r->round_shards = rw_shards_decide(closed_segments(r) - 1, c->max_shards);
		r->round_done = 0;
		per = xcalloc((size_t)r->round_shards, sizeof(*per));
		for (off = r->ack_off; off < r->cur_len; off += k) {
			k = rw_record_get(r->cur + off, r->cur_len - off, &ts, &v, NULL);
			if (k == 0)
				break;
			size_t sh = rw_record_hash(r->cur + off, k) % (uint64_t)r->round_shards;
			if (per[sh] == max)
				break;    /* that shard's batch is full: the round ends here */
			per[sh]++;
		}
		free(per);
		r->round_end = off;
		if (off == r->ack_off) {   /* nothing whole left: a torn tail */
			r->ack_off = r->cur_len;
			goto done_segment;
		}
	}
	shards = r->round_shards;
	pthread_mutex_lock(&r->st_lock);
	r->shards = shards;
	pthread_mutex_unlock(&r->st_lock);
	/* the batches of the shards not done yet */
	count = xcalloc((size_t)shards, sizeof(*count));
	series = xcalloc((size_t)shards, sizeof(*series));
	samples = xcalloc((r->round_end - r->ack_off) / 22 + 1, sizeof(*samples));
	labels = xcalloc(((r->round_end - r->ack_off) / 22 + 1) * 4, sizeof(*labels));
	{
		size_t nsmp = 0, nlab = 0, cap_lab = ((r->round_end - r->ack_off) / 22 + 1) * 4;

		for (int i = 0; i < shards; i++)
			series[i] = xcalloc(max, sizeof(**series));
		for (off = r->ack_off; off < r->round_end; off += k) {
			int64_t ts;
			double v;
			int nl;
			size_t sh;

			k = rw_record_get(r->cur + off, r->round_end - off, &ts, &v, NULL);
			sh = rw_record_hash(r->cur + off, k) % (uint64_t)shards;
			if (r->round_done & (1ull << sh))
				continue;
			if (nlab + RW_LABELS_MAX > cap_lab) {
				/* labels point into the record: only the array grows */
				struct pw_label *old = labels;

				cap_lab = cap_lab * 2 + RW_LABELS_MAX;
				labels = xrealloc(labels, cap_lab * sizeof(*labels));
				for (int i = 0; i < shards; i++)
					for (size_t j = 0; j < count[i]; j++)
						series[i][j].labels = labels + (series[i][j].labels - old);
			}
			nl = rw_record_labels(r->cur + off, k, labels + nlab, RW_LABELS_MAX);
			if (nl < 0)
				continue;
			samples[nsmp] = (struct pw_sample){ v, ts };
			series[sh][count[sh]++] = (struct pw_series){ labels + nlab, (size_t)nl,
								      &samples[nsmp], 1 };
			nsmp++;
			nlab += (size_t)nl;
		}
	}
	for (int i = 0; i < shards; i++) {
		char *body = NULL;
		size_t blen = 0;

		if (r->round_done & (1ull << i))
			continue;
		if (count[i] == 0) {
			r->round_done |= 1ull << i;
			continue;
		}
		if (promwire_encode(series[i], count[i], &body, &blen, &err) < 0) {
			/* cannot be sent at all: dropped like a refusal */
			set_error(r, "cannot encode a batch: %s", err.msg);
			pthread_mutex_lock(&r->st_lock);
			r->dropped_4xx += count[i];
			pthread_mutex_unlock(&r->st_lock);
			r->round_done |= 1ull << i;
			continue;
		}
		posts[nposts] = (struct rw_post){ .body = body, .len = blen };
		idx[nposts++] = i;
	}
	if (nposts > 0 && rw_post_all(c, posts, nposts, &r->stop, &err) < 0) {
		set_error(r, "%s: %s", err.field, err.msg);
		for (int j = 0; j < nposts; j++)
			posts[j].rc = HERR_UNAVAIL, posts[j].status = 0, posts[j].answer[0] = '\0';
		wait = c->max_backoff_ms;
	}
	now = mono_ms();
	for (int j = 0; j < nposts; j++) {
		struct rw_post *p = &posts[j];
		size_t n = count[idx[j]];

		switch (rw_classify(p->rc, p->status)) {
		case RW_OK:
			r->round_done |= 1ull << idx[j];
			pthread_mutex_lock(&r->st_lock);
			r->sent += n;
			pthread_mutex_unlock(&r->st_lock);
			break;
		case RW_DROP:
			r->round_done |= 1ull << idx[j];
			pthread_mutex_lock(&r->st_lock);
			r->dropped_4xx += n;
			pthread_mutex_unlock(&r->st_lock);
			set_error(r, "refused with %ld: %s", p->status, p->answer);
			if (r->logged_ms == 0 || now - r->logged_ms >= LOG_EVERY_MS) {
				log_warn("remote_write '%s': %s refused %zu samples with %ld (not retried): %.200s",
					 r->name, c->url, n, p->status, p->answer);
				r->logged_ms = now;
			}
			break;
		case RW_RETRY:
			all = false;
			pthread_mutex_lock(&r->st_lock);
			r->retried += n;
			pthread_mutex_unlock(&r->st_lock);
			if (p->rc < 0 && !r->stop)
				set_error(r, "POST %s: %s", c->url, p->answer);
			else if (p->rc == 0)
				set_error(r, "answered %ld: %s", p->status, p->answer);
			if (p->status == 429 && p->retry_after_s > 0 &&
			    p->retry_after_s * 1000 > wait)
				wait = p->retry_after_s * 1000 < RETRY_AFTER_MAX_MS ? p->retry_after_s * 1000
										   : RETRY_AFTER_MAX_MS;
			break;
		}
		free((void *)p->body);
	}
	for (int i = 0; i < shards; i++)
		free(series[i]);
	free(series);
	free(samples);
	free(labels);
	free(count);
	if (!all) {
		int64_t b;

		r->failures++;
		b = rw_backoff_ms(r->failures, c->min_backoff_ms, c->max_backoff_ms,
				  randombytes_uniform(1000000) / 1e6);
		if (r->failures == 1)
			log_warn("remote_write '%s': %s; retrying", r->name, r->last_error);
		r->retry_at_ms = now + (wait > b ? wait : b);
		return;
	}
	if (r->failures > 0)
		log_info("remote_write '%s': sending again after %d failed attempts", r->name, r->failures);
	r->failures = 0;
	/* the round is done */
	{
		int64_t ts;
		double v;

		for (off = r->ack_off; off < r->round_end; off += k) {
			k = rw_record_get(r->cur + off, r->round_end - off, &ts, &v, NULL);
			r->cur_done++;
		}
	}
	r->ack_off = r->round_end;
	ack_write(r, r->cur_seq, r->ack_off);
done_segment:
	if (r->ack_off >= r->cur_len) {
		seg_path(r, r->cur_seq, path, sizeof(path));
		unlink(path);
		free(r->cur);
		r->cur = NULL;
		r->round_end = 0;
		memmove(r->segs, r->segs + 1, (r->nsegs - 1) * sizeof(*r->segs));
		r->nsegs--;
		ack_write(r, r->cur_seq + 1, 0);
	}
}

static void
nap_ms(int64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void *
remote_main(void *arg)
{
	struct remote *r = arg;
	char *spare = NULL;
	size_t spare_cap = 0;

	queue_load(r);
	while (!r->stop) {
		int64_t now;

		drain(r, &spare, &spare_cap);
		now = mono_ms();
		if (r->open_fd >= 0) {
			const struct seg *sg = &r->segs[r->nsegs - 1];
			bool idle = closed_segments(r) == 0;

			if (sg->bytes >= seg_limit(r) ||
			    (idle && (now - r->open_since_ms >= r->conf.batch_send_deadline_ms ||
				      sg->samples >= (uint64_t)r->conf.max_samples_per_send)))
				seg_close(r);
		}
		bound_and_count(r);
		if (closed_segments(r) == 0 || now < r->retry_at_ms) {
			int64_t nap = now < r->retry_at_ms ? r->retry_at_ms - now : 20;

			nap_ms(nap < 20 ? nap : 20);
			continue;
		}
		round_try(r);
	}
	/* what the buffer holds goes to disk: the next start sends it */
	drain(r, &spare, &spare_cap);
	seg_close(r);
	free(spare);
	return NULL;
}

/* --- the manager --- */

static const char *
str_or(const json_t *v)
{
	return json_string_value(v) ? json_string_value(v) : "";
}

static void
remote_free(struct remote *r)
{
	seg_close(r);
	rw_conf_release(&r->conf);
	json_decref(r->spec);
	free(r->spec_text);
	free(r->mem);
	free(r->segs);
	free(r->cur);
	pthread_mutex_destroy(&r->mem_lock);
	pthread_mutex_destroy(&r->st_lock);
	free(r);
}

static struct remote *
remote_new(struct server *s, const char *name, json_t *spec, char *text)
{
	struct herr err = HERR_INIT;
	struct remote *r;

	if (text == NULL)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->spec = json_deep_copy(spec);
	r->spec_text = text;
	r->srv = s;
	r->open_fd = -1;
	r->next_seq = 1;
	r->shards = 1;
	pthread_mutex_init(&r->mem_lock, NULL);
	pthread_mutex_init(&r->st_lock, NULL);
	snprintf(r->dir, sizeof(r->dir), "%s/remote-write/%s", s->data_dir, name);
	if (rw_parse(r->name, r->spec, &r->conf, &err) < 0) {
		log_warn("remote_write '%s': %s: %s", name, err.field, err.msg);
		r->conf.nrules = 0;
		remote_free(r);
		return NULL;
	}
	if (pthread_create(&r->thread, NULL, remote_main, r) != 0) {
		log_warn("remote_write '%s': cannot start its thread", name);
		remote_free(r);
		return NULL;
	}
	return r;
}

static void
remote_end(struct remote *r, bool deleted)
{
	pthread_join(r->thread, NULL);
	if (deleted) {
		char path[1300];
		DIR *d = opendir(r->dir);
		struct dirent *de;

		while (d && (de = readdir(d)) != NULL)
			if (de->d_name[0] != '.') {
				snprintf(path, sizeof(path), "%s/%s", r->dir, de->d_name);
				unlink(path);
			}
		if (d)
			closedir(d);
		rmdir(r->dir);
	}
	remote_free(r);
}

/* Only this thread changes the list (so it reads it without the lock);
 * the tap reads it under the read lock, which is never held across I/O or
 * a join. */
static void
manage_once(struct server *s)
{
	struct herr err = HERR_INIT;
	json_t *items = NULL, *x;
	struct remote *ending = NULL, *fresh = NULL, *r, **pp;
	size_t i;

	if (res_all(s->store, &kind_remote_write, NULL, &items, &err) < 0) {
		log_warn("remote_write: %s", err.msg);
		return;
	}
	/* gone or changed: out of the list, then ended (outside the lock) */
	pthread_rwlock_wrlock(&g_lock);
	for (pp = &g_remotes; (r = *pp) != NULL;) {
		bool same = false;

		json_array_foreach(items, i, x) {
			const char *name = json_string_value(json_object_get(x, "name"));
			char *text;

			if (name == NULL || strcmp(name, r->name) != 0)
				continue;
			text = json_dumps(json_object_get(x, "spec"), JSON_SORT_KEYS | JSON_COMPACT);
			same = text && strcmp(text, r->spec_text) == 0;
			free(text);
			break;
		}
		if (same) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		r->next = ending;
		ending = r;
	}
	pthread_rwlock_unlock(&g_lock);
	while ((r = ending) != NULL) {
		bool deleted = true;

		ending = r->next;
		json_array_foreach(items, i, x)
			if (strcmp(str_or(json_object_get(x, "name")), r->name) == 0)
				deleted = false;
		r->stop = 1;
		remote_end(r, deleted);   /* changed: the new one takes over the queue */
	}
	/* new or changed: started, then listed */
	json_array_foreach(items, i, x) {
		const char *name = json_string_value(json_object_get(x, "name"));
		bool known = false;

		if (name == NULL)
			continue;
		for (r = g_remotes; r; r = r->next)
			known |= strcmp(r->name, name) == 0;
		if (known)
			continue;
		r = remote_new(s, name, json_object_get(x, "spec"),
			       json_dumps(json_object_get(x, "spec"), JSON_SORT_KEYS | JSON_COMPACT));
		if (r) {
			r->next = fresh;
			fresh = r;
		}
	}
	json_decref(items);
	if (fresh) {
		pthread_rwlock_wrlock(&g_lock);
		for (r = fresh; r->next; r = r->next)
			;
		r->next = g_remotes;
		g_remotes = fresh;
		pthread_rwlock_unlock(&g_lock);
	}
}

static void *
manager_main(void *arg)
{
	struct server *s = arg;

	while (!s->stopping) {
		manage_once(s);
		for (int i = 0; i < 10 && !s->stopping; i++)
			nap_ms(100);
	}
	return NULL;
}

int
rwout_start(struct server *s, struct herr *err)
{
	__atomic_store_n(&metrics_store_hook, tap, __ATOMIC_RELEASE);
	if (pthread_create(&g_manager, NULL, manager_main, s) != 0)
		return herr_set(err, -errno, "cannot start the remote_write thread");
	g_started = true;
	return 0;
}

void
rwout_stop(struct server *s)
{
	struct remote *r;

	(void)s;
	if (!g_started)
		return;
	pthread_join(g_manager, NULL);
	g_started = false;
	pthread_rwlock_wrlock(&g_lock);
	for (r = g_remotes; r; r = r->next)
		r->stop = 1;
	pthread_rwlock_unlock(&g_lock);
	for (r = g_remotes; r; r = r->next)
		pthread_join(r->thread, NULL);
	__atomic_store_n(&metrics_store_hook, NULL, __ATOMIC_RELEASE);
	pthread_rwlock_wrlock(&g_lock);
	while ((r = g_remotes) != NULL) {
		g_remotes = r->next;
		remote_free(r);
	}
	pthread_rwlock_unlock(&g_lock);
}

json_t *
rwout_status(void)
{
	json_t *items = json_array();

	pthread_rwlock_rdlock(&g_lock);
	for (struct remote *r = g_remotes; r; r = r->next) {
		pthread_mutex_lock(&r->st_lock);
		json_array_append_new(
			items, json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:s,s:I}", "name", r->name,
					 "url", r->conf.url, "sent", (json_int_t)r->sent, "dropped_queue",
					 (json_int_t)r->dropped_queue, "dropped_4xx",
					 (json_int_t)r->dropped_4xx, "retried", (json_int_t)r->retried,
					 "pending_bytes", (json_int_t)r->pending_bytes, "pending_samples",
					 (json_int_t)r->pending_samples, "shards", r->shards, "last_error",
					 r->last_error, "last_error_at", (json_int_t)r->last_error_ms));
		pthread_mutex_unlock(&r->st_lock);
	}
	pthread_rwlock_unlock(&g_lock);
	return items;
}
