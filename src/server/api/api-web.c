/* api-web.c - the console: static files of the web directory (--web) served
 * at "/" and "/ui/...", same origin as the API. Each answer has its content
 * type, an ETag and Last-Modified (a match is a 304), the precompressed
 * ".gz" twin the build made when the client takes gzip, and a strict
 * Content-Security-Policy. Files are read at request time, at most
 * WEB_FILE_MAX bytes; a path is checked segment by segment and then
 * resolved, so neither "..", an encoded one, nor a symlink leaves the
 * directory. Also GET /v1/endpoints: the route table, so the console knows
 * which optional endpoints this server has without probing (a probe's 404
 * is a console error in browsers). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api.h"
#include "log.h"
#include "xalloc.h"

#define WEB_FILE_MAX  ((size_t)8 << 20)  /* bytes: larger files are refused */
#define WEB_DEPTH_MAX 8                  /* path segments under the root */
#define WEB_SEG_MAX   128                /* bytes in one path segment */

#define WEB_CSP                                                                       \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;" \
	" connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
/* JSON answers are never documents: nothing may load from or frame them. */
#define API_CSP "default-src 'none'; frame-ancestors 'none'"

/* What a file answer adds to the common headers (rq->state). */
struct web_hdrs {
	char etag[64];
	char last_modified[40];
	bool gzip;      /* Content-Encoding: gzip */
	bool vary;      /* Vary: Accept-Encoding (a .gz twin exists) */
};

static pthread_mutex_t root_lock = PTHREAD_MUTEX_INITIALIZER;
static char root[PATH_MAX];     /* resolved web directory; "" = none */
static bool root_done;

static bool
is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The web directory, resolved once: --web, else ../web beside the binary
 * (a build tree), else /usr/share/herd/web (a package). NULL if none. */
static const char *
web_root(struct server *s)
{
	char cand[PATH_MAX + 16];

	pthread_mutex_lock(&root_lock);
	if (!root_done) {
		root_done = true;
		if (s->web_dir[0]) {
			snprintf(cand, sizeof(cand), "%s", s->web_dir);
		} else {
			char *slash;

			snprintf(cand, sizeof(cand), "%s", s->self_bin);
			slash = strrchr(cand, '/');
			if (slash)
				snprintf(slash, sizeof(cand) - (size_t)(slash - cand), "/../web");
			if (slash == NULL || !is_dir(cand))
				snprintf(cand, sizeof(cand), "%s", "/usr/share/herd/web");
		}
		if (!is_dir(cand) || realpath(cand, root) == NULL) {
			root[0] = '\0';
			log_warn("console: no web directory at '%s': the console is not served", cand);
		} else {
			log_info("console: serving %s", root);
		}
	}
	pthread_mutex_unlock(&root_lock);
	return root[0] ? root : NULL;
}

static const struct {
	const char *ext;
	const char *ctype;
} ctypes[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".mjs", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".svg", "image/svg+xml" },
	{ ".json", "application/json" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
	{ ".txt", "text/plain; charset=utf-8" },
	{ ".woff2", "font/woff2" },
};

/* The content type of name by its extension; NULL: not served at all (so
 * .gz twins, scripts and dotfiles cannot be fetched as such). */
static const char *
ctype_for(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (dot == NULL || strchr(dot, '/'))
		return NULL;
	for (size_t i = 0; i < sizeof(ctypes) / sizeof(ctypes[0]); i++)
		if (strcmp(dot, ctypes[i].ext) == 0)
			return ctypes[i].ctype;
	return NULL;
}

/* A relative path is served only if every segment is 1..WEB_SEG_MAX of
 * [A-Za-z0-9._-], does not start with '.', and there are at most
 * WEB_DEPTH_MAX of them. MHD has already decoded %XX, so "%2e%2e" arrives
 * here as ".." and is refused like it. */
static bool
rel_is_safe(const char *rel)
{
	int depth = 0;
	size_t seg = 0;

	if (*rel == '\0')
		return false;
	for (const char *c = rel;; c++) {
		if (*c == '/' || *c == '\0') {
			if (seg == 0 || ++depth > WEB_DEPTH_MAX)
				return false;
			if (*c == '\0')
				return true;
			seg = 0;
			continue;
		}
		if (seg == 0 && *c == '.')
			return false;
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-'))
			return false;
		if (++seg > WEB_SEG_MAX)
			return false;
	}
}

/* web/ also holds what builds it (npm's files), which is not the console. */
static bool
is_build_file(const char *rel)
{
	return strcmp(rel, "package.json") == 0 || strcmp(rel, "package-lock.json") == 0 ||
	       strncmp(rel, "node_modules/", 13) == 0;
}

/* Opens root/rel for reading if, resolved, it is a regular file inside
 * root. Returns the fd (st filled) or -1. */
static int
open_inside(const char *dir, const char *rel, struct stat *st)
{
	char path[PATH_MAX * 2], real[PATH_MAX];
	size_t n = strlen(dir);
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, rel) >= sizeof(path))
		return -1;
	if (realpath(path, real) == NULL)
		return -1;
	if (strncmp(real, dir, n) != 0 || real[n] != '/')
		return -1;
	fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || (size_t)st->st_size > WEB_FILE_MAX) {
		close(fd);
		return -1;
	}
	return fd;
}

static char *
read_all(int fd, size_t n)
{
	char *p = xmalloc(n ? n : 1);
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(p);
			return NULL;
		}
		got += (size_t)r;
	}
	return p;
}

/* True if Accept-Encoding names gzip without q=0. */
static bool
takes_gzip(struct req *rq)
{
	const char *ae = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_ACCEPT_ENCODING);
	const char *g;

	if (ae == NULL || (g = strcasestr(ae, "gzip")) == NULL)
		return false;
	g += 4;
	while (*g == ' ')
		g++;
	if (*g == ';') {
		const char *q = strchr(g, '=');
		const char *end = strchr(g, ',');
		if (q && (end == NULL || q < end) && strtod(q + 1, NULL) <= 0.0)
			return false;
	}
	return true;
}

/* If-None-Match (a list, or "*") against etag; else If-Modified-Since. */
static bool
not_modified(struct req *rq, const struct web_hdrs *h, time_t mtime)
{
	const char *inm = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_IF_NONE_MATCH);
	const char *ims;
	struct tm tm;

	if (inm)
		return strcmp(inm, "*") == 0 || strstr(inm, h->etag) != NULL;
	ims = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
					  MHD_HTTP_HEADER_IF_MODIFIED_SINCE);
	memset(&tm, 0, sizeof(tm));
	if (ims && strptime(ims, "%a, %d %b %Y %H:%M:%S GMT", &tm))
		return mtime <= timegm(&tm);
	return false;
}

static void
serve(struct req *rq, const char *rel)
{
	const char *dir = web_root(rq->srv), *ctype;
	struct stat st, gst;
	struct web_hdrs *h;
	char gzrel[PATH_MAX];
	int fd, gfd = -1;
	struct tm tm;
	char *data;

	if (dir == NULL)
		return reply_errf(rq, HERR_NOTFOUND, "", "the console is not installed on this server"
				  " (no web directory; see herd server --web)");
	if (!rel_is_safe(rel) || is_build_file(rel) || (ctype = ctype_for(rel)) == NULL ||
	    (fd = open_inside(dir, rel, &st)) < 0)
		return reply_errf(rq, HERR_NOTFOUND, "", "no such file: %s", rq->path);
	h = xcalloc(1, sizeof(*h));
	rq->state = h;
	rq->state_free = free;
	/* The build's gzip -k twin, if it is at least as new as the file. */
	snprintf(gzrel, sizeof(gzrel), "%s.gz", rel);
	gfd = open_inside(dir, gzrel, &gst);
	if (gfd >= 0 && gst.st_mtime < st.st_mtime) {
		close(gfd);
		gfd = -1;
	}
	h->vary = gfd >= 0;
	if (gfd >= 0 && takes_gzip(rq)) {
		close(fd);
		fd = gfd;
		gfd = -1;
		h->gzip = true;
	} else if (gfd >= 0) {
		close(gfd);
	}
	snprintf(h->etag, sizeof(h->etag), "\"%llx-%llx%s\"",
		 (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
			 (unsigned long long)st.st_mtim.tv_nsec,
		 (unsigned long long)st.st_size, h->gzip ? "-gz" : "");
	gmtime_r(&st.st_mtime, &tm);
	strftime(h->last_modified, sizeof(h->last_modified), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	/* Asked with ?v=VERSION (index.html does so for vendored files): the
	 * answer for that URL never changes. Otherwise revalidate each time:
	 * the ES modules are not renamed by content, an ETag check is cheap. */
	rq->cache_control = req_query(rq, "v") ? "public, max-age=31536000, immutable" : "no-cache";
	if (not_modified(rq, h, st.st_mtime)) {
		close(fd);
		return reply_raw(rq, 304, ctype, (char *)"", 0, true);
	}
	if (h->gzip)
		fstat(fd, &st);
	data = read_all(fd, (size_t)st.st_size);
	close(fd);
	if (data == NULL)
		return reply_errf(rq, -EIO, "", "cannot read %s", rq->path);
	reply_raw(rq, 200, ctype, data, (size_t)st.st_size, false);
}

/* GET / and GET /ui/ : the console's page. */
void
api_web_index(struct req *rq)
{
	serve(rq, "index.html");
}

/* GET /ui/PATH: a file of the web directory. */
void
api_web_file(struct req *rq)
{
	const char *rel = req_param(rq, 0);

	serve(rq, rel && *rel ? rel : "index.html");
}

/* GET /v1/endpoints: {"items":[{"method","path","role"}]} from routes.def. */
void
api_web_endpoints(struct req *rq)
{
	static const struct {
		const char *method, *path;
		enum role role;
	} table[] = {
#define ROUTE(m, p, r, f, a) { m, p, r },
#include "routes.def"
#undef ROUTE
	};
	json_t *items = json_array();

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (table[i].role == ROLE_HOST || strcmp(table[i].method, "HEAD") == 0 ||
		    strncmp(table[i].path, "/v1/", 4) != 0 ||
		    strncmp(table[i].path, "/v1/agent/", 10) == 0)
			continue;
		json_array_append_new(items, json_pack("{s:s,s:s,s:s}", "method", table[i].method,
						       "path", table[i].path, "role",
						       role_name(table[i].role)));
	}
	reply_json(rq, 200, json_pack("{s:o}", "items", items));
}

void
web_add_headers(struct req *rq, struct MHD_Response *r)
{
	bool web = rq->route && (rq->route->fn == api_web_file || rq->route->fn == api_web_index);
	const struct web_hdrs *h = web ? rq->state : NULL;

	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "Content-Security-Policy", web ? WEB_CSP : API_CSP);
	if (h == NULL)
		return;
	MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, h->etag);
	MHD_add_response_header(r, MHD_HTTP_HEADER_LAST_MODIFIED, h->last_modified);
	if (h->vary)
		MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
	if (h->gzip && rq->status == 200)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
}
