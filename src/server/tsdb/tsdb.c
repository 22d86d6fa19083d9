/* tsdb.c - herd's metric store (see tsdb.h for the model and the files):
 * series with a raw head (at most chunk_max_samples, cut at aligned
 * chunk_span_ms boundaries so the series of one host cut together and share
 * their timestamp block), chunks in mmapped block files, a WAL with group
 * commit, checkpoints, retention, block compaction, and the queries.
 * Written for herd. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "chunk.h"
#include "index.h"
#include "log.h"
#include "tsdb.h"
#include "util.h"
#include "xalloc.h"

#define BLOCK_CAP ((size_t)256 << 20)   /* largest block file, bytes */
#define BLOCK_MAGIC "HERDTSB1"
#define REC_MAX ((size_t)256 << 20)     /* largest record accepted on load */
#define NO_TS INT64_MIN

enum { REC_SERIES = 1, REC_TSCOL = 2, REC_CHUNK = 3, REC_SAMPLES = 4, REC_HEAD = 5, REC_COVERS = 6 };

struct tblock {
	uint64_t seq;
	int fd;
	uint8_t *map;
	size_t map_len;       /* mapped bytes */
	size_t size;          /* bytes written (logical end) */
	int64_t mint_ms, maxt_ms;
	int64_t opened_ms;    /* wall clock, for rotation */
	uint32_t nextlocal;   /* series ids local to this file */
	uint64_t cover_last;  /* a merged block replaces seq..cover_last (else seq) */
	bool busy;            /* a compaction source: retention leaves it */
	int src;              /* its index among the sources of that compaction */
	char path[1100];
};

struct tchunk {
	int64_t mint_ms, maxt_ms;
	const uint8_t *ts, *val;
	uint8_t *own;         /* heap copy until written to a block */
	uint32_t ts_len, val_len;
	uint32_t n;
	struct tblock *blk;   /* NULL while on the heap */
};

struct tseries {
	uint32_t id;
	struct tchunk *chunks;      /* oldest first */
	uint32_t nchunks, capchunks;
	int64_t *hts;               /* head: raw samples */
	double *hv;
	uint32_t hn, hcap;
	int64_t hbucket;            /* floor(hts[0] / chunk_span_ms) */
	int64_t last_ts;            /* NO_TS: no sample */
	double last_v;
	uint32_t wal_epoch;         /* declared in the WAL of this epoch */
	uint64_t local_seq;         /* declared in this block ... */
	uint32_t local_id;          /* ... under this id */
	struct owner *oh, *oc;      /* its host and cluster (NULL: no such label) */
};

/* A host ("h" cluster NUL host) or a cluster ("c" cluster): its series and
 * refusals. Kept until close: there are as many as hosts in the retention. */
struct owner {
	struct owner *next;
	uint32_t hash, len;
	size_t series;
	uint64_t refused;           /* new series refused */
	enum tsdb_refusal reason;   /* of the last */
	int64_t refused_ms;
	int64_t noted_ms;           /* last refusal reported (info.note) */
	char key[];
};

struct tscol_ent {
	uint32_t hash, len;
	uint64_t off;               /* record offset in the current block; 0 = empty */
};

struct wbuf {
	uint8_t *p;
	size_t len, cap;
};

struct tsdb {
	char dir[1024];
	struct tsdb_opts o;
	pthread_rwlock_t lock;
	struct tsdb_index *ix;
	struct tseries **series;    /* by id */
	uint32_t capseries;
	struct tblock **blocks;     /* oldest first */
	size_t nblocks, capblocks;
	uint64_t next_seq;
	struct tblock *cur;         /* written at checkpoints */
	struct tscol_ent *tsc;      /* timestamp blocks of cur, for sharing */
	size_t tsccap, tscused;
	uint8_t *scratch;           /* encoder output */
	size_t scratch_len;
	int64_t *dts;               /* decoder buffers */
	double *dv;
	struct tsdb_stats st;       /* counters, under lock */
	struct owner **own;         /* owners by hash (chained) */
	size_t owncap, ownused;
	uint32_t max_n;             /* most samples in any chunk: query buffers */

	/* WAL */
	int wal_fd;
	uint32_t wal_epoch;
	uint64_t wal_size;          /* bytes since the last checkpoint */
	pthread_mutex_t wal_mu;     /* guards the four below */
	pthread_cond_t wal_cv;
	uint64_t wal_written;       /* logical bytes written, ever */
	uint64_t wal_synced;
	bool wal_syncing;
	uint64_t fsyncs;
	struct wbuf app_decl, app_smp; /* an append's WAL records, under lock:
					* kept between appends (no malloc each) */

	/* the WAL syncer (sync_interval_ms > 0), under wal_mu */
	pthread_t sync_thr;
	bool sync_running, sync_stop;
	bool sync_failing;          /* the syncer's own: logged once */
	pthread_cond_t sync_cv;

	/* background checkpoints */
	pthread_t thr;
	bool thr_running;
	pthread_mutex_t bg_mu;
	pthread_cond_t bg_cv;
	bool bg_stop, bg_kick;
	bool opened;                /* tsdb_open succeeded: close checkpoints */

	pthread_mutex_t cmp_mu;     /* one compaction at a time */
	int64_t cutoff_ms;          /* of the last retention: older chunks are gone */
};

/* --- small helpers --- */

static int64_t
db_now(const struct tsdb *db)
{
	return db->o.clock_ms ? db->o.clock_ms() : now_ms();
}

static uint32_t crc_tab[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_tab[i] = c;
	}
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t c, const uint8_t *p, size_t n)
{
	uint64_t c64 = c;

	while (n >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c64 = __builtin_ia32_crc32di(c64, v);
		p += 8;
		n -= 8;
	}
	c = (uint32_t)c64;
	while (n--)
		c = __builtin_ia32_crc32qi(c, *p++);
	return c;
}
#endif

/* CRC-32C (Castagnoli) of p. */
static uint32_t
crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return ~crc32c_hw(c, p, n);
#endif
	pthread_once(&crc_once, crc_init);
	while (n--)
		c = crc_tab[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

static inline uint32_t
get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void
put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline uint64_t
zz(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t
unzz(uint64_t u)
{
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static inline int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static void
wb_reserve(struct wbuf *b, size_t n)
{
	if (b->len + n <= b->cap)
		return;
	while (b->len + n > b->cap)
		b->cap = b->cap ? b->cap * 2 : 4096;
	b->p = xrealloc(b->p, b->cap);
}

static void
wb_add(struct wbuf *b, const void *p, size_t n)
{
	wb_reserve(b, n);
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void
wb_uvarint(struct wbuf *b, uint64_t v)
{
	wb_reserve(b, 10);
	b->len += chunk_put_uvarint(b->p + b->len, v);
}

/* A record: u32 length, u32 CRC-32C of the payload, payload (type first). */
static size_t
rec_begin(struct wbuf *b, uint8_t type)
{
	size_t at = b->len;

	wb_reserve(b, 9);
	b->len += 8;
	b->p[b->len++] = type;
	return at;
}

static void
rec_end(struct wbuf *b, size_t at)
{
	uint32_t len = (uint32_t)(b->len - at - 8);

	put_le32(b->p + at, len);
	put_le32(b->p + at + 4, crc32c(b->p + at + 8, len));
}

/* Reads the record at off of p[0..size). Returns the payload length and
 * sets *payload, 0 at a clean end (zeros), or -1 with *why on damage. */
static long
rec_read(const uint8_t *p, size_t size, size_t off, const uint8_t **payload, const char **why)
{
	uint32_t len;

	if (off == size)
		return 0;
	if (size - off < 8) {
		*why = "truncated record header";
		return -1;
	}
	len = get_le32(p + off);
	if (len == 0 && get_le32(p + off + 4) == 0)
		return 0;
	if (len == 0 || len > REC_MAX || len > size - off - 8) {
		*why = len > size - off - 8 ? "truncated record" : "bad record length";
		return -1;
	}
	if (crc32c(p + off + 8, len) != get_le32(p + off + 4)) {
		*why = "checksum mismatch";
		return -1;
	}
	*payload = p + off + 8;
	return (long)len;
}

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Whether key is a well-formed canonical key (metric, then name/value
 * pairs, each NUL-terminated), as read from a file. */
static bool
key_ok(const uint8_t *k, size_t len)
{
	size_t strings = 0, start = 0;

	if (len == 0 || len > TSDB_KEY_MAX || k[len - 1] != '\0' || k[0] == '\0')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (k[i] != '\0')
			continue;
		if (i == start && strings % 2 == 1)
			return false; /* empty label name */
		strings++;
		start = i + 1;
	}
	return strings % 2 == 1 && (strings - 1) / 2 <= TSDB_MAX_LABELS;
}

bool
tsdb_metric_name_ok(const char *s)
{
	size_t n = 0;

	if (s == NULL)
		return false;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
		      (n > 0 && c >= '0' && c <= '9')))
			return false;
	}
	return n > 0 && n <= TSDB_NAME_MAX;
}

bool
tsdb_label_name_ok(const char *s)
{
	size_t n = 0;

	if (s == NULL)
		return false;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		      (n > 0 && c >= '0' && c <= '9')))
			return false;
	}
	return n > 0 && n <= TSDB_NAME_MAX;
}

void
tsdb_opts_default(struct tsdb_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->retention_ms = TSDB_DEFAULT_RETENTION_MS;
	o->chunk_span_ms = 30 * 60 * 1000;
	o->chunk_max_samples = 360;
	o->checkpoint_interval_ms = 5 * 60 * 1000;
	o->wal_max_bytes = (size_t)64 << 20;
	o->block_span_ms = 2 * 3600 * 1000;
	o->max_series = 1000000;
	o->host_max_series = TSDB_HOST_MAX_SERIES;
	o->cluster_max_series = TSDB_CLUSTER_MAX_SERIES;
	o->compact_span_ms = 24 * 3600 * 1000;
	o->compact_max_bytes = (size_t)64 << 20;
	o->compact_max_blocks = 16;
}

/* --- owners (quotas) --- */

static uint32_t
own_hash(const char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 16777619u;
	return h;
}

/* The owner kind ('h' or 'c') of cluster [+ host], created when create. */
static struct owner *
owner_get(struct tsdb *db, char kind, const char *cluster, const char *host, bool create)
{
	char k[2 + 2 * TSDB_VALUE_MAX + 2];
	size_t cl = strlen(cluster), hl = host ? strlen(host) : 0, len;
	uint32_t hv;
	struct owner *o;

	if (cl > TSDB_VALUE_MAX || hl > TSDB_VALUE_MAX)
		return NULL; /* not a key the store can hold anyway */
	k[0] = kind;
	memcpy(k + 1, cluster, cl + 1);
	len = cl + 2;
	if (host) {
		memcpy(k + len, host, hl + 1);
		len += hl + 1;
	}
	hv = own_hash(k, len);
	if (db->owncap)
		for (o = db->own[hv & (db->owncap - 1)]; o; o = o->next)
			if (o->hash == hv && o->len == len && memcmp(o->key, k, len) == 0)
				return o;
	if (!create)
		return NULL;
	if (db->ownused + 1 > db->owncap) {
		size_t cap = db->owncap ? db->owncap * 2 : 256;
		struct owner **t = xcalloc(cap, sizeof(*t));
		for (size_t i = 0; i < db->owncap; i++)
			while (db->own[i]) {
				struct owner *n = db->own[i]->next;
				db->own[i]->next = t[db->own[i]->hash & (cap - 1)];
				t[db->own[i]->hash & (cap - 1)] = db->own[i];
				db->own[i] = n;
			}
		free(db->own);
		db->own = t;
		db->owncap = cap;
	}
	o = xcalloc(1, sizeof(*o) + len);
	memcpy(o->key, k, len);
	o->len = (uint32_t)len;
	o->hash = hv;
	o->next = db->own[hv & (db->owncap - 1)];
	db->own[hv & (db->owncap - 1)] = o;
	db->ownused++;
	return o;
}

/* The owners of a series key (either may be NULL). */
static void
owners_of(struct tsdb *db, const char *key, size_t len, bool create, struct owner **oh,
	  struct owner **oc)
{
	const char *cluster = index_key_label(key, len, "cluster");
	const char *host = index_key_label(key, len, "host");

	*oc = *oh = NULL;
	if (cluster[0])
		*oc = owner_get(db, 'c', cluster, NULL, create);
	if (host[0])
		*oh = owner_get(db, 'h', cluster, host, create);
}

static void
owners_free(struct tsdb *db)
{
	for (size_t i = 0; i < db->owncap; i++)
		while (db->own[i]) {
			struct owner *n = db->own[i]->next;
			free(db->own[i]);
			db->own[i] = n;
		}
	free(db->own);
}

const char *
tsdb_refusal_name(enum tsdb_refusal r)
{
	switch (r) {
	case TSDB_REFUSED_HOST: return "host_quota";
	case TSDB_REFUSED_CLUSTER: return "cluster_quota";
	case TSDB_REFUSED_STORE: return "store_full";
	case TSDB_REFUSED_NONE: break;
	}
	return "";
}

bool
tsdb_note_decide(int64_t now, int64_t noted)
{
	return noted == 0 || now - noted >= TSDB_NOTE_INTERVAL_MS || now < noted;
}

/* --- series --- */

static struct tseries *
series_new(struct tsdb *db, const char *key, size_t len)
{
	struct tseries *s = xcalloc(1, sizeof(*s));

	s->id = index_add(db->ix, key, len);
	s->last_ts = NO_TS;
	s->wal_epoch = UINT32_MAX;
	s->local_seq = UINT64_MAX;
	if (s->id >= db->capseries) {
		uint32_t cap = db->capseries ? db->capseries : 1024;
		while (cap <= s->id)
			cap *= 2;
		db->series = xrealloc(db->series, cap * sizeof(*db->series));
		memset(db->series + db->capseries, 0, (cap - db->capseries) * sizeof(*db->series));
		db->capseries = cap;
	}
	db->series[s->id] = s;
	db->st.series++;
	owners_of(db, key, len, true, &s->oh, &s->oc);
	if (s->oh)
		s->oh->series++;
	if (s->oc)
		s->oc->series++;
	return s;
}

static void
series_free(struct tsdb *db, struct tseries *s)
{
	for (uint32_t i = 0; i < s->nchunks; i++)
		free(s->chunks[i].own);
	db->st.chunks -= s->nchunks;
	db->st.head_samples -= s->hn;
	db->st.series--;
	if (s->oh)
		s->oh->series--;
	if (s->oc)
		s->oc->series--;
	index_remove(db->ix, s->id);
	db->series[s->id] = NULL;
	free(s->chunks);
	free(s->hts);
	free(s->hv);
	free(s);
}

static struct tchunk *
chunk_push(struct tseries *s)
{
	if (s->nchunks == s->capchunks) {
		s->capchunks = s->capchunks ? s->capchunks * 2 : 4;
		s->chunks = xrealloc(s->chunks, s->capchunks * sizeof(*s->chunks));
	}
	memset(&s->chunks[s->nchunks], 0, sizeof(s->chunks[0]));
	return &s->chunks[s->nchunks++];
}

/* Encodes the head into a heap chunk (written to a block at the next
 * checkpoint). */
static void
series_cut(struct tsdb *db, struct tseries *s)
{
	size_t need = chunk_ts_bound(s->hn) + chunk_val_bound(s->hn), tl, vl;
	struct tchunk *c;

	if (need > db->scratch_len) {
		db->scratch_len = need;
		db->scratch = xrealloc(db->scratch, need);
	}
	tl = chunk_ts_encode(s->hts, s->hn, db->scratch);
	vl = chunk_val_encode(s->hv, s->hn, db->scratch + tl);
	c = chunk_push(s);
	c->own = xmalloc(tl + vl);
	memcpy(c->own, db->scratch, tl + vl);
	c->ts = c->own;
	c->ts_len = (uint32_t)tl;
	c->val = c->own + tl;
	c->val_len = (uint32_t)vl;
	c->n = s->hn;
	if (c->n > db->max_n)
		db->max_n = c->n;
	c->mint_ms = s->hts[0];
	c->maxt_ms = s->hts[s->hn - 1];
	db->st.chunks++;
	db->st.head_samples -= s->hn;
	s->hn = 0;
}

/* Adds one sample; false when rejected (out of order or duplicate). */
static bool
series_add(struct tsdb *db, struct tseries *s, int64_t ts, double v)
{
	int64_t bucket;

	if (s->last_ts != NO_TS && ts <= s->last_ts) {
		if (ts < s->last_ts) {
			db->st.out_of_order++;
			return false;
		}
		if (s->hn > 0 && s->hts[s->hn - 1] == ts) {
			s->hv[s->hn - 1] = v;
			s->last_v = v;
			db->st.appended++;
			return true;
		}
		db->st.duplicates++;
		return false;
	}
	bucket = floor_div(ts, db->o.chunk_span_ms);
	if (s->hn > 0 && (s->hn >= db->o.chunk_max_samples || bucket != s->hbucket))
		series_cut(db, s);
	if (s->hn == s->hcap) {
		uint32_t cap = s->hcap ? s->hcap * 2 : 8;
		if (cap > db->o.chunk_max_samples)
			cap = db->o.chunk_max_samples;
		s->hts = xrealloc(s->hts, cap * sizeof(*s->hts));
		s->hv = xrealloc(s->hv, cap * sizeof(*s->hv));
		s->hcap = cap;
	}
	if (s->hn == 0)
		s->hbucket = bucket;
	s->hts[s->hn] = ts;
	s->hv[s->hn++] = v;
	s->last_ts = ts;
	s->last_v = v;
	db->st.head_samples++;
	db->st.appended++;
	return true;
}

static struct tseries *
series_get(struct tsdb *db, const uint8_t *key, size_t len)
{
	uint32_t id = index_find(db->ix, (const char *)key, len);

	if (id != INDEX_NONE)
		return db->series[id];
	if (db->st.series >= db->o.max_series)
		return NULL;
	return series_new(db, (const char *)key, len);
}

static int64_t
series_first_ts(const struct tseries *s)
{
	if (s->nchunks)
		return s->chunks[0].mint_ms;
	return s->hn ? s->hts[0] : NO_TS;
}

/* Decodes chunk c into db-sized buffers (dts/dv hold CHUNK_MAX_SAMPLES).
 * Returns the sample count, or -1 for a damaged chunk. */
static long
chunk_load(const struct tchunk *c, int64_t *ts, double *v)
{
	size_t n;

	if (chunk_ts_decode(c->ts, c->ts_len, ts, c->n, &n, NULL) < 0 ||
	    chunk_val_decode(c->val, c->val_len, n, v, NULL) < 0)
		return -1;
	return (long)n;
}

/* --- blocks --- */

static void
block_free(struct tblock *b)
{
	if (b->map)
		munmap(b->map, b->map_len);
	if (b->fd >= 0)
		close(b->fd);
	free(b);
}

static void
blocks_push(struct tsdb *db, struct tblock *b)
{
	if (db->nblocks == db->capblocks) {
		db->capblocks = db->capblocks ? db->capblocks * 2 : 16;
		db->blocks = xrealloc(db->blocks, db->capblocks * sizeof(*db->blocks));
	}
	db->blocks[db->nblocks++] = b;
	db->st.blocks++;
}

/* Seals the current block: trimmed to its size and synced. */
static int
block_seal(struct tsdb *db, struct herr *err)
{
	struct tblock *b = db->cur;

	if (b == NULL)
		return 0;
	if (ftruncate(b->fd, (off_t)b->size) < 0 || (!db->o.no_fsync && fdatasync(b->fd) < 0))
		return herr_set(err, -errno, "cannot seal block '%s': %s", b->path, strerror(errno));
	db->cur = NULL;
	db->tscused = 0;
	memset(db->tsc, 0, db->tsccap * sizeof(*db->tsc));
	return 0;
}

static int
block_create(struct tsdb *db, int64_t now, struct herr *err)
{
	struct tblock *b = xcalloc(1, sizeof(*b));

	b->seq = db->next_seq++;
	b->cover_last = b->seq;
	b->fd = -1;
	b->mint_ms = INT64_MAX;
	b->maxt_ms = NO_TS;
	b->opened_ms = now;
	snprintf(b->path, sizeof(b->path), "%s/blocks/b-%016" PRIu64, db->dir, b->seq);
	b->fd = open(b->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (b->fd < 0)
		goto fail;
	if (pwrite(b->fd, BLOCK_MAGIC, 8, 0) != 8 || ftruncate(b->fd, (off_t)BLOCK_CAP) < 0)
		goto fail;
	b->map = mmap(NULL, BLOCK_CAP, PROT_READ, MAP_SHARED, b->fd, 0);
	if (b->map == MAP_FAILED) {
		b->map = NULL;
		goto fail;
	}
	b->map_len = BLOCK_CAP;
	b->size = 8;
	if (!db->o.no_fsync) {
		char bdir[1100];
		snprintf(bdir, sizeof(bdir), "%s/blocks", db->dir);
		fsync_dir(bdir);
	}
	blocks_push(db, b);
	db->cur = b;
	return 0;
fail:
	herr_set(err, -errno, "cannot create block '%s': %s", b->path, strerror(errno));
	if (b->fd >= 0)
		unlink(b->path);
	block_free(b);
	return err->code;
}

/* Shared timestamp blocks: the offset of an identical TSCOL record in the
 * current block (written or still in wb), or 0. */
static uint64_t
tsc_find(struct tsdb *db, const struct wbuf *wb, const uint8_t *p, uint32_t len, uint32_t hv)
{
	for (size_t h = hv & (db->tsccap - 1);; h = (h + 1) & (db->tsccap - 1)) {
		struct tscol_ent *e = &db->tsc[h];
		const uint8_t *q;
		if (e->off == 0)
			return 0;
		if (e->hash != hv || e->len != len)
			continue;
		q = e->off < db->cur->size ? db->cur->map + e->off + 9
					   : wb->p + (e->off - db->cur->size) + 9;
		if (memcmp(q, p, len) == 0)
			return e->off;
	}
}

static void
tsc_add(struct tsdb *db, uint32_t hv, uint32_t len, uint64_t off)
{
	size_t h;

	if ((db->tscused + 1) * 2 > db->tsccap) {
		/* the table only speeds up sharing: start over when full */
		memset(db->tsc, 0, db->tsccap * sizeof(*db->tsc));
		db->tscused = 0;
	}
	for (h = hv & (db->tsccap - 1); db->tsc[h].off; h = (h + 1) & (db->tsccap - 1))
		;
	db->tsc[h] = (struct tscol_ent){ hv, len, off };
	db->tscused++;
}

struct fixup {
	struct tchunk *c;
	uint64_t ts_off, val_off;
};

/* Writes wb at the end of the current block and points the chunks of fx
 * into the mapping. */
static int
block_flush(struct tsdb *db, struct wbuf *wb, struct fixup *fx, size_t *nfx, struct herr *err)
{
	struct tblock *b = db->cur;
	size_t done = 0;

	while (done < wb->len) {
		ssize_t w = pwrite(b->fd, wb->p + done, wb->len - done, (off_t)(b->size + done));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return herr_set(err, -errno, "cannot write block '%s': %s", b->path,
					strerror(errno));
		}
		done += (size_t)w;
	}
	b->size += wb->len;
	db->st.block_bytes += wb->len;
	wb->len = 0;
	for (size_t i = 0; i < *nfx; i++) {
		struct tchunk *c = fx[i].c;
		c->ts = b->map + fx[i].ts_off;
		c->val = b->map + fx[i].val_off;
		c->blk = b;
		xfree(&c->own);
		if (c->mint_ms < b->mint_ms)
			b->mint_ms = c->mint_ms;
		if (c->maxt_ms > b->maxt_ms)
			b->maxt_ms = c->maxt_ms;
	}
	*nfx = 0;
	return 0;
}

/* Writes every heap chunk to the current block (rotating it as needed). */
static int
write_chunks(struct tsdb *db, int64_t now, struct herr *err)
{
	struct wbuf wb = { 0 };
	struct fixup *fx = NULL;
	size_t nfx = 0, capfx = 0;
	int rc = 0;

	if (db->cur &&
	    (now - db->cur->opened_ms >= db->o.block_span_ms || now < db->cur->opened_ms) &&
	    (rc = block_seal(db, err)) < 0)
		return rc;
	for (uint32_t id = 0; id < index_end(db->ix); id++) {
		struct tseries *s = db->series[id];
		uint32_t first;
		const char *key;
		size_t klen;

		if (s == NULL || s->nchunks == 0 || s->chunks[s->nchunks - 1].blk)
			continue;
		for (first = s->nchunks; first > 0 && s->chunks[first - 1].blk == NULL; first--)
			;
		key = index_get(db->ix, s->id, &klen);
		for (uint32_t i = first; i < s->nchunks; i++) {
			struct tchunk *c = &s->chunks[i];
			size_t need = klen + c->ts_len + c->val_len + 100, at;
			uint32_t hv = crc32c(c->ts, c->ts_len);
			uint64_t base, tsoff;

			if (db->cur && db->cur->size + wb.len + need > BLOCK_CAP) {
				if ((rc = block_flush(db, &wb, fx, &nfx, err)) < 0 ||
				    (rc = block_seal(db, err)) < 0)
					goto out;
			}
			if (db->cur == NULL && (rc = block_create(db, now, err)) < 0)
				goto out;
			base = db->cur->size;
			if (s->local_seq != db->cur->seq) {
				s->local_seq = db->cur->seq;
				s->local_id = db->cur->nextlocal++;
				at = rec_begin(&wb, REC_SERIES);
				wb_uvarint(&wb, s->local_id);
				wb_uvarint(&wb, klen);
				wb_add(&wb, key, klen);
				rec_end(&wb, at);
			}
			tsoff = tsc_find(db, &wb, c->ts, c->ts_len, hv);
			if (tsoff == 0) {
				tsoff = base + wb.len;
				at = rec_begin(&wb, REC_TSCOL);
				wb_add(&wb, c->ts, c->ts_len);
				rec_end(&wb, at);
				tsc_add(db, hv, c->ts_len, tsoff);
			}
			at = rec_begin(&wb, REC_CHUNK);
			wb_uvarint(&wb, s->local_id);
			wb_uvarint(&wb, tsoff);
			wb_uvarint(&wb, zz(c->mint_ms));
			wb_uvarint(&wb, zz(c->maxt_ms));
			if (nfx == capfx) {
				capfx = capfx ? capfx * 2 : 256;
				fx = xrealloc(fx, capfx * sizeof(*fx));
			}
			fx[nfx++] = (struct fixup){ c, tsoff + 9, base + wb.len };
			wb_add(&wb, c->val, c->val_len);
			rec_end(&wb, at);
			if (wb.len >= ((size_t)4 << 20) && (rc = block_flush(db, &wb, fx, &nfx, err)) < 0)
				goto out;
		}
	}
	if (wb.len && (rc = block_flush(db, &wb, fx, &nfx, err)) < 0)
		goto out;
	if (db->cur && !db->o.no_fsync && fdatasync(db->cur->fd) < 0)
		rc = herr_set(err, -errno, "cannot sync block '%s': %s", db->cur->path, strerror(errno));
out:
	if (rc < 0 && db->cur) {
		/* What this attempt declared (series ids, shared timestamp blocks)
		 * may not be on disk: the next attempt starts a new block. What
		 * the old one holds up to its size stays valid. */
		if (ftruncate(db->cur->fd, (off_t)db->cur->size) < 0)
			log_warn("tsdb: cannot trim block '%s': %s", db->cur->path, strerror(errno));
		db->cur = NULL;
		db->tscused = 0;
		memset(db->tsc, 0, db->tsccap * sizeof(*db->tsc));
	}
	free(wb.p);
	free(fx);
	return rc;
}

/* Loads one block file: its chunks go to their series (created as
 * needed). A damaged tail is logged and cut off. */
static void
block_load(struct tsdb *db, const char *path, uint64_t seq, int64_t cutoff)
{
	struct tblock *b = xcalloc(1, sizeof(*b));
	struct tseries **local = NULL;
	uint64_t *tscols = NULL;
	size_t nlocal = 0, ntsc = 0, captsc = 0, off = 8, kept = 0;
	const char *why = NULL;
	struct stat sb;

	b->seq = seq;
	b->cover_last = seq;
	b->mint_ms = INT64_MAX;
	b->maxt_ms = NO_TS;
	snprintf(b->path, sizeof(b->path), "%s", path);
	b->fd = open(path, O_RDWR | O_CLOEXEC);
	if (b->fd < 0 || fstat(b->fd, &sb) < 0) {
		log_warn("tsdb: cannot open block '%s': %s: skipped", path, strerror(errno));
		goto drop;
	}
	if (sb.st_size < 8) {
		log_warn("tsdb: block '%s' is empty: removed", path);
		goto unlink;
	}
	b->map_len = (size_t)sb.st_size;
	b->map = mmap(NULL, b->map_len, PROT_READ, MAP_SHARED, b->fd, 0);
	if (b->map == MAP_FAILED) {
		b->map = NULL;
		log_warn("tsdb: cannot map block '%s': %s: skipped", path, strerror(errno));
		goto drop;
	}
	if (memcmp(b->map, BLOCK_MAGIC, 8) != 0) {
		log_warn("tsdb: '%s' is not a block file: skipped", path);
		goto drop;
	}
	for (;;) {
		const uint8_t *p, *end;
		long len = rec_read(b->map, b->map_len, off, &p, &why);
		uint64_t a, c, mint, maxt;
		size_t k, k2, k3, k4, n;

		if (len <= 0)
			break;
		end = p + len;
		switch (p[0]) {
		case REC_SERIES:
			if ((k = chunk_get_uvarint(p + 1, (size_t)(end - p - 1), &a)) == 0 ||
			    (k2 = chunk_get_uvarint(p + 1 + k, (size_t)(end - p - 1 - k), &c)) == 0 ||
			    c != (uint64_t)(end - p - 1 - k - k2) || !key_ok(p + 1 + k + k2, c) ||
			    a != nlocal || a > (1u << 24)) {
				why = "bad series record";
				goto damaged;
			}
			local = xrealloc(local, (nlocal + 1) * sizeof(*local));
			local[nlocal++] = series_get(db, p + 1 + k + k2, c);
			break;
		case REC_COVERS:
			/* what it replaces was settled before loading (covers_read) */
			if ((k = chunk_get_uvarint(p + 1, (size_t)(end - p - 1), &a)) == 0 ||
			    chunk_get_uvarint(p + 1 + k, (size_t)(end - p - 1 - k), &c) == 0 ||
			    a != seq || c < seq) {
				why = "bad covers record";
				goto damaged;
			}
			b->cover_last = c;
			break;
		case REC_TSCOL:
			if (ntsc == captsc) {
				captsc = captsc ? captsc * 2 : 64;
				tscols = xrealloc(tscols, captsc * sizeof(*tscols));
			}
			tscols[ntsc++] = off;
			break;
		case REC_CHUNK: {
			struct tseries *s;
			struct tchunk *ch;
			const uint8_t *tsp;
			uint32_t tslen;
			size_t lo = 0, hi = ntsc;

			if ((k = chunk_get_uvarint(p + 1, (size_t)(end - p - 1), &a)) == 0 ||
			    (k2 = chunk_get_uvarint(p + 1 + k, (size_t)(end - p - 1 - k), &c)) == 0 ||
			    (k3 = chunk_get_uvarint(p + 1 + k + k2, (size_t)(end - p - 1 - k - k2), &mint)) == 0 ||
			    (k4 = chunk_get_uvarint(p + 1 + k + k2 + k3, (size_t)(end - p - 1 - k - k2 - k3), &maxt)) == 0 ||
			    a >= nlocal) {
				why = "bad chunk record";
				goto damaged;
			}
			while (lo < hi) {
				size_t mid = (lo + hi) / 2;
				if (tscols[mid] < c)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo == ntsc || tscols[lo] != c) {
				why = "chunk refers to a missing timestamp block";
				goto damaged;
			}
			tsp = b->map + c + 9;
			tslen = get_le32(b->map + c) - 1;
			if (chunk_ts_decode(tsp, tslen, NULL, 0, &n, NULL) < 0 || n == 0) {
				why = "bad timestamp block";
				goto damaged;
			}
			s = local[a];
			if (s == NULL || unzz(maxt) < cutoff)
				break; /* series limit, or expired */
			if (s->nchunks && s->chunks[s->nchunks - 1].maxt_ms >= unzz(mint))
				break; /* already have it */
			ch = chunk_push(s);
			ch->mint_ms = unzz(mint);
			ch->maxt_ms = unzz(maxt);
			ch->ts = tsp;
			ch->ts_len = tslen;
			ch->val = p + 1 + k + k2 + k3 + k4;
			ch->val_len = (uint32_t)(end - ch->val);
			ch->n = (uint32_t)n;
			if (ch->n > db->max_n)
				db->max_n = ch->n;
			ch->blk = b;
			s->last_ts = ch->maxt_ms; /* last_v: see load_finish */
			db->st.chunks++;
			kept++;
			if (ch->mint_ms < b->mint_ms)
				b->mint_ms = ch->mint_ms;
			if (ch->maxt_ms > b->maxt_ms)
				b->maxt_ms = ch->maxt_ms;
			break;
		}
		default:
			why = "unknown record type";
			goto damaged;
		}
		off += 8 + (size_t)len;
	}
	if (why) {
damaged:
		log_warn("tsdb: block '%s': %s at offset %zu: skipped the last %zu bytes", path, why,
			 off, b->map_len - off);
	}
	if (off < b->map_len && ftruncate(b->fd, (off_t)off) < 0)
		log_warn("tsdb: cannot trim block '%s': %s", path, strerror(errno));
	b->size = off < b->map_len ? off : b->map_len;
	if (kept == 0) {
		log_info("tsdb: block '%s' holds no live chunks: removed", path);
		goto unlink;
	}
	db->st.block_bytes += b->size;
	blocks_push(db, b);
	free(local);
	free(tscols);
	return;
unlink:
	unlink(path);
drop:
	/* chunks pushed from this block must go: it only happens with kept == 0 */
	free(local);
	free(tscols);
	block_free(b);
}

/* --- WAL --- */

/* Waits until the WAL holds everything up to `end` on disk (group commit:
 * one appender fsyncs for all who wrote before it). */
static int
wal_sync(struct tsdb *db, uint64_t end, struct herr *err)
{
	int rc = 0;

	pthread_mutex_lock(&db->wal_mu);
	while (db->wal_synced < end) {
		if (!db->wal_syncing) {
			uint64_t target = db->wal_written;
			db->wal_syncing = true;
			pthread_mutex_unlock(&db->wal_mu);
			if (!db->o.no_fsync && fdatasync(db->wal_fd) < 0)
				rc = -errno;
			pthread_mutex_lock(&db->wal_mu);
			db->wal_syncing = false;
			db->fsyncs++;
			if (rc == 0 && target > db->wal_synced)
				db->wal_synced = target;
			pthread_cond_broadcast(&db->wal_cv);
			if (rc < 0)
				break;
		} else {
			pthread_cond_wait(&db->wal_cv, &db->wal_mu);
		}
	}
	pthread_mutex_unlock(&db->wal_mu);
	if (rc < 0)
		return herr_set(err, rc, "cannot sync the metrics WAL: %s", strerror(-rc));
	return 0;
}

/* The WAL syncer (sync_interval_ms > 0): every interval, fdatasyncs what
 * appenders wrote since the last sync (nothing when nothing was). A failure
 * is logged once until a sync succeeds again; the samples stay in the page
 * cache and the next checkpoint writes them out or fails loudly too. */
static void *
sync_main(void *arg)
{
	struct tsdb *db = arg;

	pthread_mutex_lock(&db->wal_mu);
	while (!db->sync_stop) {
		struct timespec ts;
		struct herr err = HERR_INIT;
		uint64_t end;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += db->o.sync_interval_ms / 1000;
		ts.tv_nsec += (db->o.sync_interval_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		while (!db->sync_stop)
			if (pthread_cond_timedwait(&db->sync_cv, &db->wal_mu, &ts) != 0)
				break;
		if (db->sync_stop || db->wal_synced >= db->wal_written)
			continue;
		end = db->wal_written;
		pthread_mutex_unlock(&db->wal_mu);
		if (wal_sync(db, end, &err) < 0) {
			if (!db->sync_failing)
				log_err("tsdb: %s (retrying every %lld ms)", err.msg,
					(long long)db->o.sync_interval_ms);
			db->sync_failing = true;
		} else if (db->sync_failing) {
			log_info("tsdb: the metrics WAL syncs again");
			db->sync_failing = false;
		}
		pthread_mutex_lock(&db->wal_mu);
	}
	pthread_mutex_unlock(&db->wal_mu);
	return NULL;
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Replays the WAL into memory; a damaged tail is logged and cut off. */
static void
wal_replay(struct tsdb *db, const char *path, int64_t cutoff)
{
	struct tseries **map = NULL;
	size_t cap = 0, off = 0, batches = 0, samples = 0, len;
	const char *why = NULL;
	char *data = file_read(path, (size_t)4 << 30, &len);

	if (data == NULL) {
		if (errno != ENOENT)
			log_warn("tsdb: cannot read the WAL '%s': %s: skipped", path, strerror(errno));
		return;
	}
	for (;;) {
		const uint8_t *p, *end;
		long rl = rec_read((const uint8_t *)data, len, off, &p, &why);
		uint64_t a, c;
		size_t k, k2;

		if (rl <= 0)
			break;
		end = p + rl;
		if (p[0] == REC_SERIES) {
			if ((k = chunk_get_uvarint(p + 1, (size_t)(end - p - 1), &a)) == 0 ||
			    (k2 = chunk_get_uvarint(p + 1 + k, (size_t)(end - p - 1 - k), &c)) == 0 ||
			    c != (uint64_t)(end - p - 1 - k - k2) || !key_ok(p + 1 + k + k2, c) ||
			    a > (1u << 26)) {
				why = "bad series record";
				break;
			}
			if (a >= cap) {
				size_t nc = cap ? cap : 1024;
				while (nc <= a)
					nc *= 2;
				map = xrealloc(map, nc * sizeof(*map));
				memset(map + cap, 0, (nc - cap) * sizeof(*map));
				cap = nc;
			}
			map[a] = series_get(db, p + 1 + k + k2, c);
		} else if (p[0] == REC_SAMPLES) {
			const uint8_t *q = p + 1;
			uint64_t tsz, cnt;
			int64_t ts;

			if ((k = chunk_get_uvarint(q, (size_t)(end - q), &tsz)) == 0 ||
			    (k2 = chunk_get_uvarint(q + k, (size_t)(end - q - k), &cnt)) == 0) {
				why = "bad samples record";
				break;
			}
			q += k + k2;
			ts = unzz(tsz);
			for (uint64_t i = 0; i < cnt; i++) {
				double v;
				if ((k = chunk_get_uvarint(q, (size_t)(end - q), &a)) == 0 || end - q - (long)k < 8)
					break;
				memcpy(&v, q + k, 8);
				q += k + 8;
				if (a < cap && map[a] && ts >= cutoff && series_add(db, map[a], ts, v))
					samples++;
			}
			batches++;
		} else {
			why = "unknown record type";
			break;
		}
		off += 8 + (size_t)rl;
	}
	if (why)
		log_warn("tsdb: WAL '%s': %s at offset %zu: skipped the last %zu bytes"
			 " (replayed %zu batches, %zu samples before it)",
			 path, why, off, len - off, batches, samples);
	else if (batches)
		log_info("tsdb: WAL '%s': replayed %zu batches, %zu samples", path, batches, samples);
	free(map);
	free(data);
}

/* --- head snapshot --- */

static int
write_head(struct tsdb *db, struct herr *err)
{
	char path[1100], tmp[1100];
	struct wbuf wb = { 0 };
	uint32_t local = 0;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/head.snap", db->dir);
	snprintf(tmp, sizeof(tmp), "%s/head.snap.tmp", db->dir);
	for (uint32_t id = 0; id < index_end(db->ix); id++) {
		struct tseries *s = db->series[id];
		const char *key;
		size_t klen, at;

		if (s == NULL || s->hn == 0)
			continue;
		key = index_get(db->ix, id, &klen);
		at = rec_begin(&wb, REC_SERIES);
		wb_uvarint(&wb, local);
		wb_uvarint(&wb, klen);
		wb_add(&wb, key, klen);
		rec_end(&wb, at);
		at = rec_begin(&wb, REC_HEAD);
		wb_uvarint(&wb, local++);
		wb_reserve(&wb, chunk_bound(s->hn));
		wb.len += chunk_encode(s->hts, s->hv, s->hn, wb.p + wb.len);
		rec_end(&wb, at);
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (wb.len && write_all(fd, wb.p, wb.len) < 0) ||
	    (!db->o.no_fsync && fdatasync(fd) < 0)) {
		rc = herr_set(err, -errno, "cannot write '%s': %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		rc = herr_set(err, -errno, "cannot rename '%s': %s", tmp, strerror(errno));
		goto out;
	}
	if (!db->o.no_fsync)
		fsync_dir(db->dir);
out:
	free(wb.p);
	return rc;
}

static void
head_load(struct tsdb *db, const char *path, int64_t cutoff)
{
	struct tseries **local = NULL;
	size_t nlocal = 0, off = 0, len;
	const char *why = NULL;
	char *data = file_read(path, (size_t)4 << 30, &len);

	if (data == NULL) {
		if (errno != ENOENT)
			log_warn("tsdb: cannot read '%s': %s: skipped", path, strerror(errno));
		return;
	}
	for (;;) {
		const uint8_t *p, *end;
		long rl = rec_read((const uint8_t *)data, len, off, &p, &why);
		uint64_t a, c;
		size_t k, k2;

		if (rl <= 0)
			break;
		end = p + rl;
		if ((k = chunk_get_uvarint(p + 1, (size_t)(end - p - 1), &a)) == 0) {
			why = "bad record";
			break;
		}
		if (p[0] == REC_SERIES) {
			if ((k2 = chunk_get_uvarint(p + 1 + k, (size_t)(end - p - 1 - k), &c)) == 0 ||
			    c != (uint64_t)(end - p - 1 - k - k2) || !key_ok(p + 1 + k + k2, c) ||
			    a != nlocal) {
				why = "bad series record";
				break;
			}
			local = xrealloc(local, (nlocal + 1) * sizeof(*local));
			local[nlocal++] = series_get(db, p + 1 + k + k2, c);
		} else if (p[0] == REC_HEAD) {
			int n;
			if (a >= nlocal ||
			    (n = chunk_decode(p + 1 + k, (size_t)(end - p - 1 - k), db->dts, db->dv,
					      CHUNK_MAX_SAMPLES)) < 0) {
				why = "bad head record";
				break;
			}
			for (int i = 0; i < n && local[a]; i++)
				if (db->dts[i] >= cutoff &&
				    (local[a]->last_ts == NO_TS || db->dts[i] > local[a]->last_ts))
					series_add(db, local[a], db->dts[i], db->dv[i]);
		} else {
			why = "unknown record type";
			break;
		}
		off += 8 + (size_t)rl;
	}
	if (why)
		log_warn("tsdb: head snapshot '%s': %s at offset %zu: skipped the last %zu bytes",
			 path, why, off, len - off);
	free(local);
	free(data);
}

/* After loading: each series' newest value comes from its last chunk
 * unless the head has newer ones. */
static void
load_finish(struct tsdb *db)
{
	for (uint32_t id = 0; id < index_end(db->ix); id++) {
		struct tseries *s = db->series[id];
		long n;

		if (s == NULL)
			continue;
		if (s->hn) {
			s->last_ts = s->hts[s->hn - 1];
			s->last_v = s->hv[s->hn - 1];
		} else if (s->nchunks) {
			n = chunk_load(&s->chunks[s->nchunks - 1], db->dts, db->dv);
			if (n > 0) {
				s->last_ts = db->dts[n - 1];
				s->last_v = db->dv[n - 1];
			}
		}
	}
}

/* --- retention --- */

static void
retain(struct tsdb *db, int64_t now)
{
	int64_t cutoff = now - db->o.retention_ms;
	size_t j = 0;

	if (cutoff > db->cutoff_ms)
		db->cutoff_ms = cutoff;
	for (uint32_t id = 0; id < index_end(db->ix); id++) {
		struct tseries *s = db->series[id];
		uint32_t k = 0;

		if (s == NULL)
			continue;
		while (k < s->nchunks && s->chunks[k].maxt_ms < cutoff)
			free(s->chunks[k++].own);
		if (k) {
			memmove(s->chunks, s->chunks + k, (s->nchunks - k) * sizeof(*s->chunks));
			s->nchunks -= k;
			db->st.chunks -= k;
		}
		if (s->nchunks == 0 && (s->hn == 0 || s->hts[s->hn - 1] < cutoff))
			series_free(db, s);
	}
	for (size_t i = 0; i < db->nblocks; i++) {
		struct tblock *b = db->blocks[i];
		if (b != db->cur && !b->busy && b->maxt_ms < cutoff) {
			log_info("tsdb: block '%s' is past the retention: removed", b->path);
			unlink(b->path);
			db->st.block_bytes -= b->size;
			db->st.blocks--;
			block_free(b);
			continue;
		}
		db->blocks[j++] = b;
	}
	db->nblocks = j;
}

/* --- compaction (see tsdb.h) --- */

/* Where a source chunk went: the offset of its value bytes in the source,
 * those of its timestamp record and value bytes in the merged block. */
struct cmove {
	uint64_t src_val, ts_off, val_off;
};

/* What one merge works on, filled under the lock, used off it. */
struct cjob {
	struct tblock **src;        /* consecutive sealed blocks, oldest first */
	size_t nsrc;
	int64_t cutoff;             /* chunks ending before it are left out */
	uint64_t first, last;       /* sequences the merged block covers */
	struct cmove **moves;       /* per source, in source order */
	size_t *nmoves;
	int64_t mint_ms, maxt_ms;   /* of the merged block */
	size_t chunks;              /* written */
	int fd;                     /* the merged file, still open */
	uint64_t size;
	char tmp[1200], path[1200];
};

/* Under the lock: picks the oldest run of >= 2 consecutive sealed blocks
 * whose oldest chunks fall in one compact_span_ms window that is over
 * (the newest block starts in a later one), within the bounds, and marks
 * them busy. Returns false when nothing is due. */
static bool
compact_pick(struct tsdb *db, struct cjob *j)
{
	int64_t span = db->o.compact_span_ms, newest;
	size_t n = db->nblocks;

	if (span <= 0 || n < 3)
		return false;
	newest = floor_div(db->blocks[n - 1]->mint_ms, span);
	for (size_t i = 0; i + 1 < n - 1;) {
		int64_t win = floor_div(db->blocks[i]->mint_ms, span);
		uint64_t bytes = db->blocks[i]->size;
		size_t e = i + 1;

		/* never the newest block nor the one being written */
		while (e < n - 1 && db->blocks[e] != db->cur && e - i < db->o.compact_max_blocks &&
		       floor_div(db->blocks[e]->mint_ms, span) == win &&
		       bytes + db->blocks[e]->size <= db->o.compact_max_bytes) {
			bytes += db->blocks[e]->size;
			e++;
		}
		if (e - i >= 2 && win < newest && db->blocks[i] != db->cur) {
			j->nsrc = e - i;
			j->src = xcalloc(j->nsrc, sizeof(*j->src));
			for (size_t k = 0; k < j->nsrc; k++) {
				j->src[k] = db->blocks[i + k];
				j->src[k]->busy = true;
				j->src[k]->src = (int)k;
			}
			j->cutoff = db->cutoff_ms;
			j->first = j->src[0]->seq;
			j->last = j->src[j->nsrc - 1]->cover_last;
			return true;
		}
		i = e;
	}
	return false;
}

/* Index of the first of sorted offs[0..n) equal to v, or n. */
static size_t
off_find(const uint64_t *offs, size_t n, uint64_t v)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (offs[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && offs[lo] == v ? lo : n;
}

static int
compact_flush(struct cjob *j, struct wbuf *wb, struct herr *err)
{
	int rc = write_all(j->fd, wb->p, wb->len);

	if (rc < 0)
		return herr_set(err, rc, "cannot write '%s': %s", j->tmp, strerror(-rc));
	j->size += wb->len;
	wb->len = 0;
	return 0;
}

/* Copies the live chunk records of one source into wb (flushed to the
 * merged file as it grows): series declared once per merged block (ix
 * gives their merged ids), timestamp records copied when first used. A
 * damaged tail ends the source, as it does on load. */
static int
compact_source(struct cjob *j, size_t si, struct tsdb_index *ix, struct wbuf *wb,
	       struct herr *err)
{
	const struct tblock *b = j->src[si];
	uint32_t *local = NULL;         /* source local id -> merged id */
	size_t nlocal = 0, ntsc = 0, captsc = 0, capmv = 0, off = 8;
	uint64_t *tsc_src = NULL, *tsc_new = NULL;
	const uint8_t **keys = NULL, *p0;
	size_t *klens = NULL;
	const char *why = NULL;
	int rc = 0;

	for (;;) {
		const uint8_t *p, *end;
		long len = rec_read(b->map, b->size, off, &p, &why);
		uint64_t a, c, mint, maxt;
		size_t k, k2, k3, k4, t;

		if (len <= 0)
			break;
		end = p + len;
		if (p[0] == REC_SERIES) {
			if ((k = chunk_get_uvarint(p + 1, (size_t)(end - p - 1), &a)) == 0 ||
			    (k2 = chunk_get_uvarint(p + 1 + k, (size_t)(end - p - 1 - k), &c)) == 0 ||
			    c != (uint64_t)(end - p - 1 - k - k2) || !key_ok(p + 1 + k + k2, c) ||
			    a != nlocal)
				break;
			local = xrealloc(local, (nlocal + 1) * sizeof(*local));
			keys = xrealloc(keys, (nlocal + 1) * sizeof(*keys));
			klens = xrealloc(klens, (nlocal + 1) * sizeof(*klens));
			local[nlocal] = INDEX_NONE;
			keys[nlocal] = p + 1 + k + k2;
			klens[nlocal++] = c;
		} else if (p[0] == REC_TSCOL) {
			if (ntsc == captsc) {
				captsc = captsc ? captsc * 2 : 64;
				tsc_src = xrealloc(tsc_src, captsc * sizeof(*tsc_src));
				tsc_new = xrealloc(tsc_new, captsc * sizeof(*tsc_new));
			}
			tsc_src[ntsc] = off;
			tsc_new[ntsc++] = 0;
		} else if (p[0] == REC_CHUNK) {
			uint64_t base;
			size_t at;

			if ((k = chunk_get_uvarint(p + 1, (size_t)(end - p - 1), &a)) == 0 ||
			    (k2 = chunk_get_uvarint(p + 1 + k, (size_t)(end - p - 1 - k), &c)) == 0 ||
			    (k3 = chunk_get_uvarint(p + 1 + k + k2, (size_t)(end - p - 1 - k - k2), &mint)) == 0 ||
			    (k4 = chunk_get_uvarint(p + 1 + k + k2 + k3, (size_t)(end - p - 1 - k - k2 - k3), &maxt)) == 0 ||
			    a >= nlocal || (t = off_find(tsc_src, ntsc, c)) == ntsc)
				break;
			if (unzz(maxt) < j->cutoff)
				goto next; /* past the retention: not carried over */
			if (local[a] == INDEX_NONE) {
				uint32_t id = index_find(ix, (const char *)keys[a], klens[a]);
				if (id == INDEX_NONE) {
					id = index_add(ix, (const char *)keys[a], klens[a]);
					at = rec_begin(wb, REC_SERIES);
					wb_uvarint(wb, id);
					wb_uvarint(wb, klens[a]);
					wb_add(wb, keys[a], klens[a]);
					rec_end(wb, at);
				}
				local[a] = id;
			}
			if (tsc_new[t] == 0) {
				uint32_t tl = get_le32(b->map + c);
				tsc_new[t] = j->size + wb->len;
				wb_add(wb, b->map + c, 8 + (size_t)tl); /* the record as it is */
			}
			base = j->size;
			at = rec_begin(wb, REC_CHUNK);
			wb_uvarint(wb, local[a]);
			wb_uvarint(wb, tsc_new[t]);
			wb_uvarint(wb, mint);
			wb_uvarint(wb, maxt);
			if (j->nmoves[si] == capmv) {
				capmv = capmv ? capmv * 2 : 1024;
				j->moves[si] = xrealloc(j->moves[si], capmv * sizeof(**j->moves));
			}
			j->moves[si][j->nmoves[si]++] = (struct cmove){
				(uint64_t)(p + 1 + k + k2 + k3 + k4 - b->map), tsc_new[t] + 9,
				base + wb->len };
			wb_add(wb, p + 1 + k + k2 + k3 + k4, (size_t)(end - (p + 1 + k + k2 + k3 + k4)));
			rec_end(wb, at);
			if (unzz(mint) < j->mint_ms)
				j->mint_ms = unzz(mint);
			if (unzz(maxt) > j->maxt_ms)
				j->maxt_ms = unzz(maxt);
			j->chunks++;
			if (wb->len >= ((size_t)4 << 20) && (rc = compact_flush(j, wb, err)) < 0)
				break;
		} else if (p[0] != REC_COVERS) {
			break;
		}
next:
		off += 8 + (size_t)len;
	}
	if (rc == 0 && off < b->size && (why || rec_read(b->map, b->size, off, &p0, &why) != 0))
		/* loading cut damage off already: this block changed under us */
		rc = herr_set(err, HERR_INVALID, "block '%s' is damaged at offset %zu: not merged",
			      b->path, off);
	free(local);
	free(keys);
	free(klens);
	free(tsc_src);
	free(tsc_new);
	return rc;
}

/* Off the lock: writes the merged block to its temporary name, syncs it
 * and renames it over the first source. */
static int
compact_write(struct tsdb *db, struct cjob *j, struct herr *err)
{
	struct tsdb_index *ix = index_new();
	struct wbuf wb = { 0 };
	size_t at;
	int rc = 0;

	snprintf(j->path, sizeof(j->path), "%s/blocks/b-%016" PRIu64, db->dir, j->first);
	snprintf(j->tmp, sizeof(j->tmp), "%s.tmp", j->path);
	j->fd = open(j->tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		rc = herr_set(err, -errno, "cannot create '%s': %s", j->tmp, strerror(errno));
		goto out;
	}
	j->moves = xcalloc(j->nsrc, sizeof(*j->moves));
	j->nmoves = xcalloc(j->nsrc, sizeof(*j->nmoves));
	j->mint_ms = INT64_MAX;
	j->maxt_ms = NO_TS;
	wb_add(&wb, BLOCK_MAGIC, 8);
	at = rec_begin(&wb, REC_COVERS);
	wb_uvarint(&wb, j->first);
	wb_uvarint(&wb, j->last);
	rec_end(&wb, at);
	for (size_t i = 0; i < j->nsrc && rc == 0; i++)
		rc = compact_source(j, i, ix, &wb, err);
	if (rc == 0 && wb.len)
		rc = compact_flush(j, &wb, err);
	if (rc == 0 && !db->o.no_fsync && fdatasync(j->fd) < 0)
		rc = herr_set(err, -errno, "cannot sync '%s': %s", j->tmp, strerror(errno));
	if (rc == 0 && rename(j->tmp, j->path) < 0)
		rc = herr_set(err, -errno, "cannot rename '%s': %s", j->tmp, strerror(errno));
	if (rc < 0) {
		unlink(j->tmp);
		goto out;
	}
	if (!db->o.no_fsync) {
		char bdir[1100];
		snprintf(bdir, sizeof(bdir), "%s/blocks", db->dir);
		fsync_dir(bdir);
	}
out:
	index_free(ix);
	free(wb.p);
	return rc;
}

/* The merged-block location of a source chunk, or NULL (left out). */
static const struct cmove *
compact_moved(const struct cjob *j, const struct tchunk *c)
{
	size_t si = (size_t)c->blk->src, lo = 0, hi = j->nmoves[si];
	uint64_t v = (uint64_t)(c->val - c->blk->map);

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (j->moves[si][mid].src_val < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < j->nmoves[si] && j->moves[si][lo].src_val == v ? &j->moves[si][lo] : NULL;
}

/* Under the lock: points every chunk of the sources into the merged block
 * and puts it in their place in the block list. A series' chunks are in
 * time order, so only those between the sources' oldest and newest are
 * looked at (found by bisection): the lock is held for about one day's
 * chunks, not the whole store's. */
static void
compact_swap(struct tsdb *db, struct cjob *j, struct tblock *m)
{
	int64_t lo_ms = INT64_MAX, hi_ms = INT64_MIN;
	size_t at = 0, k = 0, lost = 0;

	for (k = 0; k < j->nsrc; k++) {
		lo_ms = j->src[k]->mint_ms < lo_ms ? j->src[k]->mint_ms : lo_ms;
		hi_ms = j->src[k]->maxt_ms > hi_ms ? j->src[k]->maxt_ms : hi_ms;
	}
	for (uint32_t id = 0; id < index_end(db->ix); id++) {
		struct tseries *s = db->series[id];
		uint32_t lo = 0, hi, i, keep;

		if (s == NULL)
			continue;
		for (hi = s->nchunks; lo < hi;) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (s->chunks[mid].maxt_ms < lo_ms)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (i = keep = lo; i < s->nchunks && s->chunks[i].mint_ms <= hi_ms; i++) {
			struct tchunk *c = &s->chunks[i];
			if (c->blk && c->blk->busy) {
				const struct cmove *mv = compact_moved(j, c);
				if (mv == NULL) {
					/* only an expired chunk can be missing */
					db->st.chunks--;
					lost++;
					continue;
				}
				c->ts = m->map + mv->ts_off;
				c->val = m->map + mv->val_off;
				c->blk = m;
			}
			s->chunks[keep++] = *c;
		}
		if (keep != i) {
			memmove(s->chunks + keep, s->chunks + i, (s->nchunks - i) * sizeof(*s->chunks));
			s->nchunks -= i - keep;
		}
	}
	while (db->blocks[at] != j->src[0])
		at++;
	db->blocks[at] = m;
	memmove(db->blocks + at + 1, db->blocks + at + j->nsrc,
		(db->nblocks - at - j->nsrc) * sizeof(*db->blocks));
	db->nblocks -= j->nsrc - 1;
	db->st.blocks -= j->nsrc - 1;
	for (k = 0; k < j->nsrc; k++)
		db->st.block_bytes -= j->src[k]->size;
	db->st.block_bytes += m->size;
	db->st.compactions++;
	if (lost)
		log_warn("tsdb: %zu chunks past the retention went with their blocks", lost);
}

static void
cjob_release(struct cjob *j)
{
	for (size_t i = 0; j->moves && i < j->nsrc; i++)
		free(j->moves[i]);
	free(j->moves);
	free(j->nmoves);
	free(j->src);
}

int
tsdb_compact(struct tsdb *db, struct herr *err)
{
	struct cjob j = { .fd = -1 };
	struct timespec t0, t1;
	struct tblock *m;
	uint64_t hold_us;
	int rc;

	pthread_mutex_lock(&db->cmp_mu);
	pthread_rwlock_wrlock(&db->lock);
	rc = compact_pick(db, &j) ? 1 : 0;
	pthread_rwlock_unlock(&db->lock);
	if (rc == 0)
		goto out;
	if ((rc = compact_write(db, &j, err)) < 0)
		goto out_unbusy;
	m = xcalloc(1, sizeof(*m));
	m->seq = j.first;
	m->cover_last = j.last;
	m->fd = j.fd;
	j.fd = -1;
	m->size = m->map_len = (size_t)j.size;
	m->mint_ms = j.mint_ms;
	m->maxt_ms = j.maxt_ms;
	snprintf(m->path, sizeof(m->path), "%s", j.path);
	m->map = mmap(NULL, m->map_len, PROT_READ, MAP_SHARED, m->fd, 0);
	if (m->map == MAP_FAILED) {
		/* on disk the merge is done (the next open finishes it); this
		 * process keeps reading the sources it still has mapped */
		m->map = NULL;
		rc = herr_set(err, -errno, "cannot map '%s': %s", m->path, strerror(errno));
		block_free(m);
		goto out_unbusy;
	}
	pthread_rwlock_wrlock(&db->lock);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	compact_swap(db, &j, m);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	hold_us = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
	if (hold_us > db->st.compact_hold_us)
		db->st.compact_hold_us = hold_us;
	pthread_rwlock_unlock(&db->lock);
	log_info("tsdb: merged %zu blocks (b-%016" PRIu64 "..%016" PRIu64 ") into '%s': %zu chunks, "
		 "%" PRIu64 " bytes, %" PRIu64 " us under the lock", j.nsrc, j.first, j.last, m->path,
		 j.chunks, j.size, hold_us);
	for (size_t k = 1; k < j.nsrc; k++)
		unlink(j.src[k]->path);
	if (!db->o.no_fsync) {
		char bdir[1100];
		snprintf(bdir, sizeof(bdir), "%s/blocks", db->dir);
		fsync_dir(bdir);
	}
	for (size_t k = 0; k < j.nsrc; k++)
		block_free(j.src[k]); /* the first one's name is the merged block's now */
	rc = 1;
	goto out;
out_unbusy:
	if (j.fd >= 0)
		close(j.fd);
	pthread_rwlock_wrlock(&db->lock);
	for (size_t k = 0; k < j.nsrc; k++)
		j.src[k]->busy = false;
	pthread_rwlock_unlock(&db->lock);
out:
	cjob_release(&j);
	pthread_mutex_unlock(&db->cmp_mu);
	return rc;
}

/* --- open / checkpoint / close --- */

static int
checkpoint_locked(struct tsdb *db, int64_t now, struct herr *err)
{
	int rc;

	if ((rc = write_chunks(db, now, err)) < 0 || (rc = write_head(db, err)) < 0)
		return rc;
	if (ftruncate(db->wal_fd, 0) < 0 || (!db->o.no_fsync && fdatasync(db->wal_fd) < 0))
		return herr_set(err, -errno, "cannot empty the metrics WAL: %s", strerror(errno));
	db->wal_epoch++;
	db->wal_size = 0;
	pthread_mutex_lock(&db->wal_mu);
	db->wal_synced = db->wal_written; /* all of it is in head.snap and the blocks */
	pthread_cond_broadcast(&db->wal_cv);
	pthread_mutex_unlock(&db->wal_mu);
	retain(db, now);
	db->st.checkpoints++;
	return 0;
}

int
tsdb_checkpoint(struct tsdb *db, int64_t now, struct herr *err)
{
	int rc;

	if (now == 0)
		now = db_now(db);
	pthread_rwlock_wrlock(&db->lock);
	rc = checkpoint_locked(db, now, err);
	pthread_rwlock_unlock(&db->lock);
	return rc;
}

static void *
bg_main(void *arg)
{
	struct tsdb *db = arg;

	pthread_mutex_lock(&db->bg_mu);
	while (!db->bg_stop) {
		struct timespec ts;
		struct herr err = HERR_INIT;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += db->o.checkpoint_interval_ms / 1000;
		ts.tv_nsec += (db->o.checkpoint_interval_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		while (!db->bg_stop && !db->bg_kick)
			if (pthread_cond_timedwait(&db->bg_cv, &db->bg_mu, &ts) != 0)
				break;
		if (db->bg_stop)
			break;
		db->bg_kick = false;
		pthread_mutex_unlock(&db->bg_mu);
		if (tsdb_checkpoint(db, 0, &err) == 0) {
			/* a few merges at most: usually one window ends a day */
			for (int k = 0; k < 4; k++) {
				int rc = tsdb_compact(db, &err);
				if (rc < 0)
					log_err("tsdb: compaction failed (the blocks stay as they "
						"are): %s", err.msg);
				if (rc <= 0)
					break;
			}
		} else {
			log_err("tsdb: checkpoint failed (the WAL keeps the samples): %s", err.msg);
			/* a full disk: retry in 10 s, whatever the WAL size says */
			pthread_mutex_lock(&db->bg_mu);
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 10;
			while (!db->bg_stop &&
			       pthread_cond_timedwait(&db->bg_cv, &db->bg_mu, &ts) == 0)
				;
			db->bg_kick = false;
			continue;
		}
		pthread_mutex_lock(&db->bg_mu);
	}
	pthread_mutex_unlock(&db->bg_mu);
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The last sequence a merged block replaces (its COVERS record, the
 * first after the magic), or its own seq for a plain block. */
static uint64_t
covers_read(const char *path, uint64_t seq)
{
	uint8_t h[64];
	const uint8_t *p;
	const char *why = NULL;
	uint64_t first, last;
	ssize_t n;
	long len;
	size_t k;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return seq;
	n = pread(fd, h, sizeof(h), 0);
	close(fd);
	if (n < 8 || memcmp(h, BLOCK_MAGIC, 8) != 0 ||
	    (len = rec_read(h, (size_t)n, 8, &p, &why)) <= 0 || p[0] != REC_COVERS ||
	    (k = chunk_get_uvarint(p + 1, (size_t)len - 1, &first)) == 0 ||
	    chunk_get_uvarint(p + 1 + k, (size_t)len - 1 - k, &last) == 0 || first != seq ||
	    last < seq)
		return seq;
	return last;
}

/* Finishes a compaction a crash interrupted: the files a merged block
 * covers are redundant (the merge was renamed into place before any of
 * them was unlinked) and go before anything is loaded. Keeps next_seq past
 * every covered sequence. Returns how many of seqs (sorted) remain. */
static size_t
covers_settle(struct tsdb *db, const char *bdir, uint64_t *seqs, size_t nseq)
{
	uint64_t upto = 0;   /* covered up to here by an earlier block */
	bool any = false;
	size_t j = 0;

	for (size_t i = 0; i < nseq; i++) {
		char bp[1200];
		uint64_t last;

		snprintf(bp, sizeof(bp), "%s/b-%016" PRIu64, bdir, seqs[i]);
		if (any && seqs[i] <= upto) {
			log_info("tsdb: block '%s' was merged by an interrupted compaction: removed",
				 bp);
			unlink(bp);
			continue;
		}
		last = covers_read(bp, seqs[i]);
		if (last > seqs[i]) {
			any = true;
			upto = last;
		}
		if (last + 1 > db->next_seq)
			db->next_seq = last + 1;
		seqs[j++] = seqs[i];
	}
	if (j < nseq && !db->o.no_fsync)
		fsync_dir(bdir);
	return j;
}

struct tsdb *
tsdb_open(const char *dir, const struct tsdb_opts *opts, struct herr *err)
{
	struct tsdb *db = xcalloc(1, sizeof(*db));
	pthread_rwlockattr_t ra;
	char path[1100];
	uint64_t *seqs = NULL;
	size_t nseq = 0;
	DIR *d;
	struct dirent *e;
	int64_t cutoff;

	if (opts)
		db->o = *opts;
	else
		tsdb_opts_default(&db->o);
	{
		struct tsdb_opts dflt;
		tsdb_opts_default(&dflt);
		if (db->o.retention_ms <= 0)
			db->o.retention_ms = dflt.retention_ms;
		if (db->o.chunk_span_ms <= 0)
			db->o.chunk_span_ms = dflt.chunk_span_ms;
		if (db->o.chunk_max_samples < 2 || db->o.chunk_max_samples > CHUNK_MAX_SAMPLES)
			db->o.chunk_max_samples = dflt.chunk_max_samples;
		if (db->o.checkpoint_interval_ms == 0)
			db->o.checkpoint_interval_ms = dflt.checkpoint_interval_ms;
		if (db->o.wal_max_bytes == 0)
			db->o.wal_max_bytes = dflt.wal_max_bytes;
		if (db->o.block_span_ms <= 0)
			db->o.block_span_ms = dflt.block_span_ms;
		if (db->o.max_series == 0)
			db->o.max_series = dflt.max_series;
		if (db->o.host_max_series == 0)
			db->o.host_max_series = dflt.host_max_series;
		if (db->o.cluster_max_series == 0)
			db->o.cluster_max_series = dflt.cluster_max_series;
		if (db->o.compact_span_ms == 0)
			db->o.compact_span_ms = dflt.compact_span_ms;
		if (db->o.compact_max_bytes == 0 || db->o.compact_max_bytes > BLOCK_CAP / 2)
			db->o.compact_max_bytes = dflt.compact_max_bytes;
		if (db->o.compact_max_blocks < 2)
			db->o.compact_max_blocks = dflt.compact_max_blocks;
		if (db->o.sync_interval_ms < 0)
			db->o.sync_interval_ms = 0;
	}
	snprintf(db->dir, sizeof(db->dir), "%s", dir);
	snprintf(path, sizeof(path), "%s/blocks", dir);
	if (mkdir_p(path, 0700) < 0) {
		herr_set(err, -errno, "cannot create '%s': %s", path, strerror(errno));
		free(db);
		return NULL;
	}
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&db->lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&db->wal_mu, NULL);
	pthread_cond_init(&db->wal_cv, NULL);
	pthread_cond_init(&db->sync_cv, NULL);
	pthread_mutex_init(&db->bg_mu, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_cond_init(&db->bg_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	db->ix = index_new();
	db->tsccap = 8192;
	db->tsc = xcalloc(db->tsccap, sizeof(*db->tsc));
	db->dts = xmalloc(CHUNK_MAX_SAMPLES * sizeof(*db->dts));
	db->dv = xmalloc(CHUNK_MAX_SAMPLES * sizeof(*db->dv));
	db->wal_fd = -1;
	pthread_mutex_init(&db->cmp_mu, NULL);
	cutoff = db_now(db) - db->o.retention_ms;
	db->cutoff_ms = cutoff;

	/* blocks, oldest first */
	if ((d = opendir(path)) == NULL) {
		herr_set(err, -errno, "cannot read '%s': %s", path, strerror(errno));
		goto fail;
	}
	while ((e = readdir(d)) != NULL) {
		char *end;
		unsigned long long v;
		if (strncmp(e->d_name, "b-", 2) != 0)
			continue;
		v = strtoull(e->d_name + 2, &end, 10);
		if (strcmp(end, ".tmp") == 0) {
			char tp[1400];
			/* a merge that never reached its rename: the sources are intact */
			snprintf(tp, sizeof(tp), "%s/%s", path, e->d_name);
			log_info("tsdb: '%s' is an unfinished compaction: removed", tp);
			unlink(tp);
			continue;
		}
		if (*end)
			continue;
		seqs = xrealloc(seqs, (nseq + 1) * sizeof(*seqs));
		seqs[nseq++] = v;
	}
	closedir(d);
	if (nseq)
		qsort(seqs, nseq, sizeof(*seqs), cmp_u64);
	nseq = covers_settle(db, path, seqs, nseq);
	for (size_t i = 0; i < nseq; i++) {
		char bp[1200];
		snprintf(bp, sizeof(bp), "%s/b-%016" PRIu64, path, seqs[i]);
		block_load(db, bp, seqs[i], cutoff);
		if (seqs[i] + 1 > db->next_seq)
			db->next_seq = seqs[i] + 1;
	}
	free(seqs);
	/* the head as of the last checkpoint, then the WAL since */
	snprintf(path, sizeof(path), "%s/head.snap", dir);
	head_load(db, path, cutoff);
	snprintf(path, sizeof(path), "%s/wal", dir);
	wal_replay(db, path, cutoff);
	load_finish(db);
	db->wal_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (db->wal_fd < 0) {
		herr_set(err, -errno, "cannot open '%s': %s", path, strerror(errno));
		goto fail;
	}
	/* Replayed ids belong to the old WAL: start a clean one now. */
	if (tsdb_checkpoint(db, 0, err) < 0)
		goto fail;
	/* replays count old duplicates: the counters start now */
	db->st.appended = db->st.out_of_order = db->st.duplicates = db->st.too_old = 0;
	if (db->o.checkpoint_interval_ms > 0) {
		if (pthread_create(&db->thr, NULL, bg_main, db) != 0) {
			herr_set(err, -EAGAIN, "cannot start the metrics checkpoint thread");
			goto fail;
		}
		db->thr_running = true;
	}
	if (db->o.sync_interval_ms > 0) {
		if (pthread_create(&db->sync_thr, NULL, sync_main, db) != 0) {
			herr_set(err, -EAGAIN, "cannot start the metrics WAL sync thread");
			goto fail;
		}
		db->sync_running = true;
	}
	log_info("tsdb: %s: %zu series, %zu chunks in %zu blocks", dir, db->st.series,
		 db->st.chunks, db->nblocks);
	db->opened = true;
	return db;
fail:
	tsdb_close(db);
	return NULL;
}

void
tsdb_close(struct tsdb *db)
{
	struct herr err = HERR_INIT;

	if (db == NULL)
		return;
	if (db->thr_running) {
		pthread_mutex_lock(&db->bg_mu);
		db->bg_stop = true;
		pthread_cond_broadcast(&db->bg_cv);
		pthread_mutex_unlock(&db->bg_mu);
		pthread_join(db->thr, NULL);
	}
	if (db->sync_running) {
		pthread_mutex_lock(&db->wal_mu);
		db->sync_stop = true;
		pthread_cond_broadcast(&db->sync_cv);
		pthread_mutex_unlock(&db->wal_mu);
		pthread_join(db->sync_thr, NULL);
	}
	if (db->opened && tsdb_checkpoint(db, 0, &err) < 0)
		log_err("tsdb: final checkpoint failed: %s", err.msg);
	if (db->cur)
		block_seal(db, &err);
	/* the index goes as a whole: no per-series removal */
	for (uint32_t id = 0; db->ix && id < index_end(db->ix); id++) {
		struct tseries *se = db->series[id];
		if (se == NULL)
			continue;
		for (uint32_t i = 0; i < se->nchunks; i++)
			free(se->chunks[i].own);
		free(se->chunks);
		free(se->hts);
		free(se->hv);
		free(se);
	}
	owners_free(db);
	free(db->app_decl.p);
	free(db->app_smp.p);
	for (size_t i = 0; i < db->nblocks; i++)
		block_free(db->blocks[i]);
	if (db->wal_fd >= 0)
		close(db->wal_fd);
	index_free(db->ix);
	free(db->series);
	free(db->blocks);
	free(db->tsc);
	free(db->scratch);
	free(db->dts);
	free(db->dv);
	pthread_rwlock_destroy(&db->lock);
	pthread_mutex_destroy(&db->wal_mu);
	pthread_cond_destroy(&db->wal_cv);
	pthread_cond_destroy(&db->sync_cv);
	pthread_mutex_destroy(&db->bg_mu);
	pthread_cond_destroy(&db->bg_cv);
	pthread_mutex_destroy(&db->cmp_mu);
	free(db);
}

/* --- append --- */

static int
check_sample(const struct tsdb_sample *s, size_t i, struct herr *err)
{
	if (!tsdb_metric_name_ok(s->metric))
		return herr_field(err, HERR_INVALID, "name",
				  "sample %zu: invalid metric name '%.64s'", i, s->metric ? s->metric : "");
	if (s->nlabels > TSDB_MAX_LABELS)
		return herr_field(err, HERR_INVALID, "labels", "sample %zu: more than %d labels", i,
				  TSDB_MAX_LABELS);
	for (size_t j = 0; j < s->nlabels; j++) {
		if (!tsdb_label_name_ok(s->labels[j].name) || strncmp(s->labels[j].name, "__", 2) == 0)
			return herr_field(err, HERR_INVALID, "labels",
					  "sample %zu: invalid label name '%.64s'", i,
					  s->labels[j].name ? s->labels[j].name : "");
		for (size_t k = 0; k < j; k++)
			if (strcmp(s->labels[k].name, s->labels[j].name) == 0)
				return herr_field(err, HERR_INVALID, "labels",
						  "sample %zu: label '%s' given twice", i,
						  s->labels[j].name);
		if (s->labels[j].value == NULL || strlen(s->labels[j].value) > TSDB_VALUE_MAX)
			return herr_field(err, HERR_INVALID, "labels",
					  "sample %zu: label '%s' must be a string of at most %d bytes",
					  i, s->labels[j].name, TSDB_VALUE_MAX);
	}
	return 0;
}

/* The series of key for an append: existing, or new within the quotas.
 * NULL when refused (counted on its host, or its cluster without one). */
static struct tseries *
series_get_q(struct tsdb *db, const char *key, size_t len, const struct tsdb_limits *lim,
	     int64_t now, struct tsdb_append_info *info)
{
	uint32_t id = index_find(db->ix, key, len);
	size_t hmax = lim && lim->host_max_series ? lim->host_max_series : db->o.host_max_series;
	size_t cmax = lim && lim->cluster_max_series ? lim->cluster_max_series
						      : db->o.cluster_max_series;
	enum tsdb_refusal why = TSDB_REFUSED_NONE;
	struct owner *oh, *oc, *who;

	if (id != INDEX_NONE)
		return db->series[id];
	if (cmax > db->o.max_series / 2)
		cmax = db->o.max_series / 2;
	owners_of(db, key, len, true, &oh, &oc);
	if (oh && oh->series >= hmax)
		why = TSDB_REFUSED_HOST;
	else if (oc && oc->series >= cmax)
		why = TSDB_REFUSED_CLUSTER;
	else if (db->st.series >= db->o.max_series)
		why = TSDB_REFUSED_STORE;
	if (why == TSDB_REFUSED_NONE)
		return series_new(db, key, len);
	db->st.series_limited++;
	info->refused++;
	info->reason = why;
	if ((who = oh ? oh : oc) != NULL) {
		who->refused++;
		who->reason = why;
		who->refused_ms = now;
		if (tsdb_note_decide(now, who->noted_ms)) {
			who->noted_ms = now;
			info->note = true;
		}
		info->host_refused = who->refused;
	}
	return NULL;
}

/* The append buffers stay between appends, up to APP_BUF_KEEP bytes each
 * (a first push of thousands of series does not pin its peak). */
#define APP_BUF_KEEP ((size_t)64 << 10)

static void
app_bufs_trim(struct tsdb *db)
{
	struct wbuf *b[2] = { &db->app_decl, &db->app_smp };

	for (int i = 0; i < 2; i++)
		if (b[i]->cap > APP_BUF_KEEP) {
			free(b[i]->p);
			memset(b[i], 0, sizeof(*b[i]));
		}
}

int
tsdb_append(struct tsdb *db, int64_t ts, const struct tsdb_sample *s, size_t n,
	    struct herr *err)
{
	return tsdb_append_q(db, ts, s, n, NULL, NULL, err);
}

int
tsdb_append_q(struct tsdb *db, int64_t ts, const struct tsdb_sample *s, size_t n,
	      const struct tsdb_limits *lim, struct tsdb_append_info *info, struct herr *err)
{
	struct tsdb_append_info dummy;
	struct wbuf *decl = &db->app_decl, *smp = &db->app_smp;
	char key[TSDB_KEY_MAX];
	size_t at, cnt_at, stored = 0;
	int64_t now = db_now(db), cutoff = now - db->o.retention_ms;
	uint64_t end = 0;
	bool kick;
	int rc = 0, klen;

	if (info == NULL)
		info = &dummy;
	memset(info, 0, sizeof(*info));
	for (size_t i = 0; i < n; i++)
		if ((rc = check_sample(&s[i], i, err)) < 0)
			return rc;
	if (n == 0)
		return 0;
	pthread_rwlock_wrlock(&db->lock);
	decl->len = smp->len = 0;
	at = rec_begin(smp, REC_SAMPLES);
	wb_uvarint(smp, zz(ts));
	wb_reserve(smp, 10);
	cnt_at = smp->len;
	smp->len += 5; /* sample count, patched below as a fixed-width varint */
	for (size_t i = 0; i < n; i++) {
		struct tseries *se;
		uint8_t b8[8];

		if ((klen = index_key(s[i].metric, s[i].labels, s[i].nlabels, key, sizeof(key), err)) < 0) {
			rc = klen;
			break;
		}
		if (ts < cutoff) {
			db->st.too_old++;
			continue;
		}
		if ((se = series_get_q(db, key, (size_t)klen, lim, now, info)) == NULL)
			continue;
		if (!series_add(db, se, ts, s[i].value))
			continue;
		if (se->wal_epoch != db->wal_epoch) {
			size_t da = rec_begin(decl, REC_SERIES);
			wb_uvarint(decl, se->id);
			wb_uvarint(decl, (uint64_t)klen);
			wb_add(decl, key, (size_t)klen);
			rec_end(decl, da);
			se->wal_epoch = db->wal_epoch;
		}
		wb_uvarint(smp, se->id);
		memcpy(b8, &s[i].value, 8);
		wb_add(smp, b8, 8);
		stored++;
	}
	if (stored) {
		/* fixed 5-byte varint for the count */
		uint64_t c = stored;
		for (int k = 0; k < 5; k++) {
			smp->p[cnt_at + k] = (uint8_t)((c & 0x7f) | (k < 4 ? 0x80 : 0));
			c >>= 7;
		}
		rec_end(smp, at);
		{
			struct iovec iov[2] = { { decl->p, decl->len }, { smp->p, smp->len } };
			size_t total = decl->len + smp->len;
			ssize_t w = writev(db->wal_fd, iov, 2);
			if (w < 0 || (size_t)w != total) {
				int e = w < 0 ? errno : EIO;
				/* a short write leaves a torn record: cut it off */
				if (w > 0 && ftruncate(db->wal_fd, (off_t)db->wal_size) < 0)
					log_err("tsdb: cannot cut a torn WAL record: %s", strerror(errno));
				rc = herr_set(err, -e, "cannot write the metrics WAL: %s", strerror(e));
			} else {
				db->wal_size += total;
				pthread_mutex_lock(&db->wal_mu);
				db->wal_written += total;
				end = db->wal_written;
				pthread_mutex_unlock(&db->wal_mu);
			}
		}
	}
	kick = db->wal_size > db->o.wal_max_bytes;
	if (info->refused && rc == 0) {
		/* the pushing host (the first sample's labels name it), for the
		 * report: only when something was refused, pushes stay cheap */
		struct owner *oh, *oc;
		if ((klen = index_key(s[0].metric, s[0].labels, s[0].nlabels, key, sizeof(key),
				      err)) >= 0) {
			owners_of(db, key, (size_t)klen, false, &oh, &oc);
			if (oh) {
				info->host_series = oh->series;
				info->host_refused = oh->refused;
			}
		}
		info->host_max = lim && lim->host_max_series ? lim->host_max_series
							     : db->o.host_max_series;
	}
	app_bufs_trim(db);
	pthread_rwlock_unlock(&db->lock);
	if (rc < 0)
		return rc;
	if (kick && db->thr_running) {
		pthread_mutex_lock(&db->bg_mu);
		db->bg_kick = true;
		pthread_cond_signal(&db->bg_cv);
		pthread_mutex_unlock(&db->bg_mu);
	}
	/* with a sync interval, the syncer makes it durable within it */
	if (stored && db->o.sync_interval_ms == 0 && (rc = wal_sync(db, end, err)) < 0)
		return rc;
	return (int)stored;
}

/* --- queries --- */

/* Calls fn for each sample of s with from <= ts <= to, oldest first. */
typedef void (*sample_fn)(void *arg, int64_t ts, double v);

static void
series_scan(struct tsdb *db, const struct tseries *s, int64_t from, int64_t to, int64_t *ts,
	    double *v, sample_fn fn, void *arg)
{
	for (uint32_t i = 0; i < s->nchunks; i++) {
		const struct tchunk *c = &s->chunks[i];
		long n;

		if (c->maxt_ms < from)
			continue;
		if (c->mint_ms > to)
			return;
		if ((n = chunk_load(c, ts, v)) < 0) {
			log_warn("tsdb: a damaged chunk of series %u was skipped", s->id);
			continue;
		}
		for (long k = 0; k < n; k++)
			if (ts[k] >= from && ts[k] <= to)
				fn(arg, ts[k], v[k]);
	}
	for (uint32_t k = 0; k < s->hn; k++)
		if (s->hts[k] >= from && s->hts[k] <= to)
			fn(arg, s->hts[k], s->hv[k]);
}

struct qbuf {
	int64_t *ts;
	double *v;
};

/* Under the lock: big enough for any chunk of db. */
static void
qbuf_init(struct tsdb *db, struct qbuf *q)
{
	size_t n = db->max_n ? db->max_n : 1;

	q->ts = xmalloc(n * sizeof(*q->ts));
	q->v = xmalloc(n * sizeof(*q->v));
}

static void
qbuf_release(struct qbuf *q)
{
	free(q->ts);
	free(q->v);
}

static void
info_fill(struct tsdb *db, const struct tseries *s, struct tsdb_series_info *out)
{
	size_t klen;
	const char *key = index_get(db->ix, s->id, &klen);
	struct tsdb_label tmp[TSDB_MAX_LABELS];
	const char *metric;
	size_t n = index_key_split(key, klen, &metric, tmp, TSDB_MAX_LABELS);
	char *copy;

	out->labels = xmalloc(n * sizeof(*out->labels) + klen + 1);
	copy = (char *)(out->labels + n);
	memcpy(copy, key, klen);
	out->metric = copy;
	for (size_t i = 0; i < n; i++) {
		out->labels[i].name = copy + (tmp[i].name - key);
		out->labels[i].value = copy + (tmp[i].value - key);
	}
	out->nlabels = n;
	out->first_ts_ms = series_first_ts(s);
	out->last_ts_ms = s->last_ts;
	out->last_value = s->last_v;
}

static int
cmp_key(const void *a, const void *b, void *arg)
{
	const struct tsdb_index *ix = arg;
	size_t la, lb;
	const char *ka = index_get(ix, *(const uint32_t *)a, &la);
	const char *kb = index_get(ix, *(const uint32_t *)b, &lb);
	int c = memcmp(ka, kb, la < lb ? la : lb);

	return c ? c : (la < lb ? -1 : la > lb);
}

/* Selected ids, ordered by key. */
static size_t
select_sorted(struct tsdb *db, const char *metric, const struct tsdb_matcher *m, size_t nm,
	      uint32_t **ids)
{
	size_t n = index_select(db->ix, metric, m, nm, ids);

	if (n)
		qsort_r(*ids, n, sizeof(**ids), cmp_key, db->ix);
	return n;
}

struct range_acc {
	struct tsdb_range_series *r;
	size_t cap;
	size_t *total, max;
	bool over;
};

static void
range_cb(void *arg, int64_t ts, double v)
{
	struct range_acc *a = arg;

	if (++*a->total > a->max) {
		a->over = true;
		return;
	}
	if (a->r->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->r->ts_ms = xrealloc(a->r->ts_ms, a->cap * sizeof(int64_t));
		a->r->values = xrealloc(a->r->values, a->cap * sizeof(double));
	}
	a->r->ts_ms[a->r->n] = ts;
	a->r->values[a->r->n++] = v;
}

int
tsdb_range(struct tsdb *db, const char *metric, const struct tsdb_matcher *m, size_t nm,
	   int64_t from, int64_t to, size_t max_points, struct tsdb_range_series **out,
	   size_t *nout, struct herr *err)
{
	uint32_t *ids;
	size_t n, total = 0, k = 0;
	struct tsdb_range_series *r;
	struct qbuf q;
	int rc = 0;

	*out = NULL;
	*nout = 0;
	pthread_rwlock_rdlock(&db->lock);
	qbuf_init(db, &q);
	n = select_sorted(db, metric, m, nm, &ids);
	r = xcalloc(n ? n : 1, sizeof(*r));
	for (size_t i = 0; i < n; i++) {
		const struct tseries *s = db->series[ids[i]];
		struct range_acc a = { &r[k], 0, &total, max_points, false };

		if (s->last_ts == NO_TS || s->last_ts < from || series_first_ts(s) > to)
			continue;
		series_scan(db, s, from, to, q.ts, q.v, range_cb, &a);
		if (a.over) {
			k++;
			rc = herr_set(err, HERR_TOOBIG, "more than %zu points: narrow the range or set a step",
				      max_points);
			break;
		}
		if (r[k].n == 0)
			continue;
		info_fill(db, s, &r[k].info);
		k++;
	}
	pthread_rwlock_unlock(&db->lock);
	free(ids);
	qbuf_release(&q);
	if (rc < 0) {
		tsdb_range_free(r, k);
		return rc;
	}
	*out = r;
	*nout = k;
	return 0;
}

void
tsdb_range_free(struct tsdb_range_series *r, size_t n)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(r[i].info.labels);
		free(r[i].ts_ms);
		free(r[i].values);
	}
	free(r);
}

struct agg_acc {
	int64_t first, step;
	size_t nsteps;
	double *sum, *min, *max;
	int *cnt;
	long slot;           /* the step of the pending sample, -1 none */
	double pending;
};

static inline void
agg_commit(struct agg_acc *a)
{
	long k = a->slot;
	double v = a->pending;

	if (k < 0 || isnan(v))
		return;
	if (a->cnt[k] == 0) {
		a->min[k] = a->max[k] = v;
	} else {
		if (v < a->min[k])
			a->min[k] = v;
		if (v > a->max[k])
			a->max[k] = v;
	}
	a->sum[k] += v;
	a->cnt[k]++;
}

static void
agg_cb(void *arg, int64_t ts, double v)
{
	struct agg_acc *a = arg;
	/* the step ending at or after ts */
	int64_t t = -floor_div(-ts, a->step) * a->step;
	long k = (long)((t - a->first) / a->step);

	if (k != a->slot) {
		agg_commit(a);
		a->slot = k;
	}
	a->pending = v;
}

int
tsdb_agg(struct tsdb *db, const char *metric, const struct tsdb_matcher *m, size_t nm,
	 enum expr_agg agg, int64_t from, int64_t to, int64_t step,
	 struct tsdb_agg_point **out, size_t *nout, struct herr *err)
{
	struct agg_acc a = { 0 };
	struct tsdb_agg_point *p;
	int64_t first, last;
	uint32_t *ids;
	size_t n;
	struct qbuf q;

	*out = NULL;
	*nout = 0;
	if (step < 1)
		return herr_field(err, HERR_INVALID, "step", "must be at least 1 ms");
	first = -floor_div(-from, step) * step;
	last = floor_div(to, step) * step;
	if (first > last)
		return 0;
	if ((last - first) / step + 1 > TSDB_MAX_STEPS)
		return herr_field(err, HERR_INVALID, "step",
				  "more than %d steps: use a larger step or a shorter window",
				  TSDB_MAX_STEPS);
	a.first = first;
	a.step = step;
	a.nsteps = (size_t)((last - first) / step + 1);
	a.sum = xcalloc(a.nsteps, sizeof(double));
	a.min = xcalloc(a.nsteps, sizeof(double));
	a.max = xcalloc(a.nsteps, sizeof(double));
	a.cnt = xcalloc(a.nsteps, sizeof(int));
	pthread_rwlock_rdlock(&db->lock);
	qbuf_init(db, &q);
	n = index_select(db->ix, metric, m, nm, &ids);
	for (size_t i = 0; i < n; i++) {
		const struct tseries *s = db->series[ids[i]];
		if (s->last_ts == NO_TS || s->last_ts <= first - step)
			continue;
		a.slot = -1;
		series_scan(db, s, first - step + 1, last, q.ts, q.v, agg_cb, &a);
		agg_commit(&a);
	}
	pthread_rwlock_unlock(&db->lock);
	free(ids);
	qbuf_release(&q);
	p = xmalloc(a.nsteps * sizeof(*p));
	for (size_t k = 0; k < a.nsteps; k++) {
		double v = NAN;
		if (a.cnt[k]) {
			switch (agg) {
			case AGG_AVG: v = a.sum[k] / a.cnt[k]; break;
			case AGG_MIN: v = a.min[k]; break;
			case AGG_MAX: v = a.max[k]; break;
			case AGG_SUM: v = a.sum[k]; break;
			case AGG_COUNT: v = a.cnt[k]; break;
			}
		}
		p[k] = (struct tsdb_agg_point){ first + (int64_t)k * step, v, a.cnt[k] };
	}
	free(a.sum);
	free(a.min);
	free(a.max);
	free(a.cnt);
	*out = p;
	*nout = a.nsteps;
	return 0;
}

static int
list_series(struct tsdb *db, const char *metric, const struct tsdb_matcher *m, size_t nm,
	    int64_t since, struct tsdb_series_info **out, size_t *nout)
{
	uint32_t *ids;
	size_t n, k = 0;
	struct tsdb_series_info *r;

	pthread_rwlock_rdlock(&db->lock);
	n = select_sorted(db, metric, m, nm, &ids);
	r = xcalloc(n ? n : 1, sizeof(*r));
	for (size_t i = 0; i < n; i++) {
		const struct tseries *s = db->series[ids[i]];
		if (s->last_ts == NO_TS || s->last_ts < since)
			continue;
		info_fill(db, s, &r[k++]);
	}
	pthread_rwlock_unlock(&db->lock);
	free(ids);
	*out = r;
	*nout = k;
	return 0;
}

int
tsdb_latest(struct tsdb *db, const char *metric, const struct tsdb_matcher *m, size_t nm,
	    int64_t since, struct tsdb_series_info **out, size_t *nout, struct herr *err)
{
	return list_series(db, metric, m, nm, since, out, nout);
}

int
tsdb_series(struct tsdb *db, const char *metric, const struct tsdb_matcher *m, size_t nm,
	    struct tsdb_series_info **out, size_t *nout, struct herr *err)
{
	return list_series(db, metric, m, nm, INT64_MIN + 1, out, nout);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* The ids of the series matching metric, m and any one set of alt, each
 * set looked up by itself (its own smallest posting), in increasing order
 * without repeats; *ids owned. Under the lock. */
static size_t
select_any(const struct tsdb *db, const char *metric, const struct tsdb_matcher *m, size_t nm,
	   const struct tsdb_match_set *alt, size_t nalt, uint32_t **ids)
{
	uint32_t *all = NULL;
	size_t n = 0, k = 0;

	for (size_t a = 0; a < nalt; a++) {
		struct tsdb_matcher *both = xmalloc((nm + alt[a].nm + 1) * sizeof(*both));
		uint32_t *one;
		size_t c;

		if (nm)
			memcpy(both, m, nm * sizeof(*both));
		if (alt[a].nm)
			memcpy(both + nm, alt[a].m, alt[a].nm * sizeof(*both));
		c = index_select(db->ix, metric, both, nm + alt[a].nm, &one);
		free(both);
		if (c) {
			all = xrealloc(all, (n + c) * sizeof(*all));
			memcpy(all + n, one, c * sizeof(*all));
			n += c;
		}
		free(one);
	}
	if (n)
		qsort(all, n, sizeof(*all), cmp_u32);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || all[k - 1] != all[i])
			all[k++] = all[i];
	*ids = all;
	return k;
}

/* tsdb_latest_page, and tsdb_latest_page_any when any. */
static int
latest_page(struct tsdb *db, const char *metric, const struct tsdb_matcher *m, size_t nm, bool any,
	    const struct tsdb_match_set *alt, size_t nalt, int64_t since, uint32_t *cursor,
	    size_t limit, struct tsdb_series_info **out, size_t *nout)
{
	uint32_t *ids = NULL, *page, end;
	size_t n = 0, k = 0, looked = 0, budget, i = 0;
	struct tsdb_series_info *r;
	bool all = metric == NULL && !any;
	uint32_t at = *cursor;

	if (limit == 0)
		limit = 1;
	budget = limit > SIZE_MAX / 64 ? SIZE_MAX : limit * 64;
	for (size_t j = 0; j < nm && all; j++)
		if (!m[j].neg && m[j].value && m[j].value[0])
			all = false;
	r = xcalloc(limit, sizeof(*r));
	page = xmalloc(limit * sizeof(*page));
	pthread_rwlock_rdlock(&db->lock);
	end = index_end(db->ix);
	if (!all) {
		/* postings are sorted by id: start at the cursor */
		size_t lo = 0, hi;
		n = any ? select_any(db, metric, m, nm, alt, nalt, &ids)
			: index_select(db->ix, metric, m, nm, &ids);
		hi = n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (ids[mid] < at)
				lo = mid + 1;
			else
				hi = mid;
		}
		i = lo;
	}
	for (;;) {
		uint32_t id;
		const struct tseries *se;
		size_t klen;
		const char *key;

		if (all ? at >= end : i >= n) {
			at = UINT32_MAX;
			break;
		}
		if (k == limit || looked == budget)
			break;
		id = all ? at : ids[i++];
		at = id + 1;
		looked++;
		se = db->series[id];
		if (se == NULL || se->last_ts == NO_TS || se->last_ts < since)
			continue;
		if (all && ((key = index_get(db->ix, id, &klen)) == NULL ||
			    !index_key_matches(key, klen, NULL, m, nm)))
			continue;
		page[k++] = id;
	}
	if (!all && at != UINT32_MAX)
		at = i < n ? ids[i] : UINT32_MAX;
	/* a page reads like the whole listing did: by metric, then labels */
	if (k)
		qsort_r(page, k, sizeof(*page), cmp_key, db->ix);
	for (size_t j = 0; j < k; j++)
		info_fill(db, db->series[page[j]], &r[j]);
	pthread_rwlock_unlock(&db->lock);
	free(ids);
	free(page);
	*cursor = at;
	*out = r;
	*nout = k;
	return 0;
}

int
tsdb_latest_page(struct tsdb *db, const char *metric, const struct tsdb_matcher *m, size_t nm,
		 int64_t since, uint32_t *cursor, size_t limit, struct tsdb_series_info **out,
		 size_t *nout, struct herr *err)
{
	return latest_page(db, metric, m, nm, false, NULL, 0, since, cursor, limit, out, nout);
}

int
tsdb_latest_page_any(struct tsdb *db, const char *metric, const struct tsdb_matcher *m, size_t nm,
		     const struct tsdb_match_set *alt, size_t nalt, int64_t since, uint32_t *cursor,
		     size_t limit, struct tsdb_series_info **out, size_t *nout, struct herr *err)
{
	return latest_page(db, metric, m, nm, true, alt, nalt, since, cursor, limit, out, nout);
}

static int
cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
tsdb_metric_counts(struct tsdb *db, const struct tsdb_matcher *m, size_t nm,
		   struct tsdb_metric_count **out, size_t *nout)
{
	struct tsdb_metric_count *r;
	char **names;
	size_t nn, k = 0;

	pthread_rwlock_rdlock(&db->lock);
	nn = index_names(db->ix, &names);
	pthread_rwlock_unlock(&db->lock);
	if (nn)
		qsort(names, nn, sizeof(*names), cmp_strp);
	r = xcalloc(nn ? nn : 1, sizeof(*r));
	for (size_t i = 0; i < nn; i++) {
		uint32_t *ids;
		size_t n, cnt = 0;
		int64_t last = NO_TS;

		pthread_rwlock_rdlock(&db->lock);
		n = index_select(db->ix, names[i], m, nm, &ids);
		for (size_t j = 0; j < n; j++) {
			const struct tseries *s = db->series[ids[j]];
			if (s == NULL || s->last_ts == NO_TS)
				continue;
			cnt++;
			if (s->last_ts > last)
				last = s->last_ts;
		}
		pthread_rwlock_unlock(&db->lock);
		free(ids);
		if (cnt == 0) {
			free(names[i]);
			continue;
		}
		r[k++] = (struct tsdb_metric_count){ names[i], cnt, last };
	}
	free(names);
	*out = r;
	*nout = k;
	return 0;
}

void
tsdb_metric_counts_free(struct tsdb_metric_count *c, size_t n)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(c[i].name);
	free(c);
}

void
tsdb_series_free(struct tsdb_series_info *s, size_t n)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(s[i].labels);
	free(s);
}

/* Shortest text that reads back as v; Prometheus spellings for the rest. */
static void
fmt_value(double v, char *out, size_t n)
{
	if (isnan(v))
		snprintf(out, n, "NaN");
	else if (isinf(v))
		snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
	else {
		snprintf(out, n, "%.15g", v);
		if (strtod(out, NULL) != v)
			snprintf(out, n, "%.17g", v);
	}
}

static int
add_escaped(struct buf *b, const char *s)
{
	for (const char *p = s; *p; p++) {
		const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
		int rc = esc ? buf_adds(b, esc) : buf_add(b, p, 1);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* One series in exposition format (no TYPE line), under the name name
 * (NULL: its own) with its value times scale; returns buf's code. */
static int
expose_one(struct tsdb *db, const struct tseries *s, const char *name, double scale,
	   struct buf *out)
{
	struct tsdb_label l[TSDB_MAX_LABELS];
	const char *metric, *key;
	size_t klen, nl;
	char val[40];
	int rc;

	key = index_get(db->ix, s->id, &klen);
	nl = index_key_split(key, klen, &metric, l, TSDB_MAX_LABELS);
	rc = buf_adds(out, name ? name : metric);
	for (size_t j = 0; j < nl && rc == 0; j++) {
		rc = buf_addf(out, "%s%s=\"", j ? "," : "{", l[j].name);
		if (rc == 0)
			rc = add_escaped(out, l[j].value);
		if (rc == 0)
			rc = buf_add(out, "\"", 1);
	}
	if (rc == 0 && nl)
		rc = buf_add(out, "}", 1);
	if (scale != 1.0 && isfinite(s->last_v))
		snprintf(val, sizeof(val), "%.15g", s->last_v * scale); /* no exact round trip to keep */
	else
		fmt_value(s->last_v, val, sizeof(val));
	if (rc == 0)
		rc = buf_addf(out, " %s %" PRId64 "\n", val, s->last_ts);
	return rc;
}

int
tsdb_expose(struct tsdb *db, struct buf *out, int64_t since, struct herr *err)
{
	uint32_t *ids;
	size_t n;
	const char *last_metric = NULL;
	int rc = 0;

	pthread_rwlock_rdlock(&db->lock);
	n = select_sorted(db, NULL, NULL, 0, &ids);
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct tseries *s = db->series[ids[i]];
		const char *metric;

		if (s->last_ts == NO_TS || s->last_ts < since)
			continue;
		metric = index_get(db->ix, s->id, NULL);
		if (last_metric == NULL || strcmp(last_metric, metric) != 0) {
			rc = buf_addf(out, "# TYPE %s untyped\n", metric);
			last_metric = metric;
		}
		if (rc == 0)
			rc = expose_one(db, s, NULL, 1.0, out);
	}
	pthread_rwlock_unlock(&db->lock);
	free(ids);
	if (rc < 0)
		return herr_set(err, HERR_TOOBIG, "the exposition is larger than %zu bytes", out->max);
	return 0;
}

/* A family's HELP (when it has one) and TYPE lines; returns buf's code. */
static int
expose_header(const struct tsdb_expose_family *f, struct buf *out)
{
	int rc = 0;

	if (f->help)
		rc = buf_addf(out, "# HELP %s %s\n", f->name, f->help);
	if (rc == 0)
		rc = buf_addf(out, "# TYPE %s %s\n", f->name, f->type);
	return rc;
}

struct tsdb_expose_cursor {
	char **names;       /* metric names, sorted */
	size_t n, at;       /* names; the one being written */
	uint32_t next_id;   /* in names[at]: the next id to write */
	bool typed;         /* names[at]'s TYPE line is written */
	bool named;         /* fam is names[at]'s */
	struct tsdb_expose_family fam;
	tsdb_expose_family_fn family;
	int64_t since;
};

void
tsdb_expose_set_family(struct tsdb_expose_cursor *c, tsdb_expose_family_fn fn)
{
	c->family = fn;
}


struct tsdb_expose_cursor *
tsdb_expose_begin(struct tsdb *db, int64_t since)
{
	struct tsdb_expose_cursor *c = xcalloc(1, sizeof(*c));

	pthread_rwlock_rdlock(&db->lock);
	c->n = index_names(db->ix, &c->names);
	pthread_rwlock_unlock(&db->lock);
	if (c->n)
		qsort(c->names, c->n, sizeof(*c->names), cmp_strp);
	c->since = since;
	return c;
}

bool
tsdb_expose_next(struct tsdb *db, struct tsdb_expose_cursor *c, struct buf *out,
		 size_t max_series)
{
	uint32_t ids[256];
	size_t done = 0;

	if (max_series > sizeof(ids) / sizeof(ids[0]))
		max_series = sizeof(ids) / sizeof(ids[0]);
	if (max_series == 0)
		max_series = 1;
	pthread_rwlock_rdlock(&db->lock);
	while (c->at < c->n && done < max_series) {
		size_t k;

		if (!c->named) {
			c->fam = (struct tsdb_expose_family){ c->names[c->at], "untyped", NULL, 1.0 };
			if (c->family)
				c->family(c->names[c->at], &c->fam);
			c->named = true;
		}
		k = c->fam.name == NULL ? 0 :
		    index_posting_from(db->ix, "__name__", c->names[c->at], c->next_id, ids,
				       max_series - done);
		if (k == 0) {
			c->at++;
			c->next_id = 0;
			c->typed = false;
			c->named = false;
			continue;
		}
		for (size_t i = 0; i < k; i++) {
			const struct tseries *s = db->series[ids[i]];
			size_t mark = out->len;

			c->next_id = ids[i] + 1;
			done++;
			if (s == NULL || s->last_ts == NO_TS || s->last_ts < c->since)
				continue;
			if (!c->typed) {
				if (expose_header(&c->fam, out) < 0) {
					out->len = mark;
					continue; /* out is full: skipped */
				}
				c->typed = true;
				mark = out->len; /* a skipped series keeps its family's header */
			}
			if (expose_one(db, s, c->fam.name, c->fam.scale, out) < 0)
				out->len = mark; /* larger than out can take: skipped */
		}
	}
	pthread_rwlock_unlock(&db->lock);
	return c->at < c->n;
}

void
tsdb_expose_end(struct tsdb_expose_cursor *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++)
		free(c->names[i]);
	free(c->names);
	free(c);
}

void
tsdb_owner_stats(struct tsdb *db, const char *cluster, const char *host,
		 struct tsdb_owner_stats *out)
{
	struct owner *o, *oc;

	memset(out, 0, sizeof(*out));
	pthread_rwlock_rdlock(&db->lock);
	o = owner_get(db, host ? 'h' : 'c', cluster, host, false);
	oc = host ? owner_get(db, 'c', cluster, NULL, false) : o;
	if (o) {
		out->series = o->series;
		out->refused = o->refused;
		out->reason = o->reason;
		out->refused_ms = o->refused_ms;
	}
	out->cluster_series = oc ? oc->series : 0;
	out->max_series = host ? db->o.host_max_series : db->o.cluster_max_series;
	pthread_rwlock_unlock(&db->lock);
}

void
tsdb_stats(struct tsdb *db, struct tsdb_stats *st)
{
	pthread_rwlock_rdlock(&db->lock);
	*st = db->st;
	st->wal_bytes = db->wal_size;
	pthread_rwlock_unlock(&db->lock);
	pthread_mutex_lock(&db->wal_mu);
	st->fsyncs = db->fsyncs;
	st->wal_unsynced = db->wal_written - db->wal_synced;
	pthread_mutex_unlock(&db->wal_mu);
}
