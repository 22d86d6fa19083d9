/* api-agent-binary.c - GET /v1/agent/binary: the agent a booting cloud host
 * installs (prov/bootstrap.c's user data fetches it). It is the server's own
 * executable, opened and hashed once (agent_bin_get), streamed from that fd
 * in chunks, with its SHA-256 in a header. The caller proves it is a host
 * being made by showing that host's join token, which stays unspent: the
 * agent joins with it afterwards. Rate limits are the per-address
 * connection limits every client has (httpd.c). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api.h"
#include "log.h"
#include "model/host.h"
#include "prov/bootstrap.h"
#include "util.h"

/* libmicrohttpd's content reader: the next bytes of the binary at pos. */
static ssize_t
bin_read(void *cls, uint64_t pos, char *out, size_t max)
{
	const struct agent_bin *b = cls;
	ssize_t r;

	if (pos >= b->size_bytes)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (max > b->size_bytes - pos)
		max = (size_t)(b->size_bytes - pos);
	do
		r = pread(b->fd, out, max, (off_t)pos);
	while (r < 0 && errno == EINTR);
	return r > 0 ? r : MHD_CONTENT_READER_END_WITH_ERROR;
}

void
api_agent_binary(struct req *rq)
{
	struct herr err = HERR_INIT;
	const char *id = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, AGENT_BIN_HDR_HOST);
	const char *tok = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						      AGENT_BIN_HDR_TOKEN);
	const struct agent_bin *b;

	if (id == NULL || tok == NULL || strlen(id) > 63 || strlen(tok) > 200)
		return reply_errf(rq, HERR_AUTH, id == NULL || strlen(id) > 63 ? AGENT_BIN_HDR_HOST
									   : AGENT_BIN_HDR_TOKEN,
				  "a host id and its join token are required (headers "
				  AGENT_BIN_HDR_HOST " and " AGENT_BIN_HDR_TOKEN ")");
	if (host_join_token_check(rq->srv->store, id, tok, now_ms(), &err) < 0)
		return reply_err(rq, &err);
	if ((b = agent_bin_get(&err)) == NULL) {
		log_err("agent binary: %s", err.msg);
		return reply_errf(rq, HERR_UNAVAIL, "", "the agent binary cannot be read");
	}
	log_info("host %s fetches the agent binary (%llu bytes, sha256 %s)", id,
		 (unsigned long long)b->size_bytes, b->sha256);
	rq->status = 200;
	rq->ctype = "application/octet-stream";
	rq->stream = bin_read;
	rq->stream_cls = (void *)b;
	rq->stream_free = NULL;
}

void
agent_binary_add_headers(struct req *rq, struct MHD_Response *r)
{
	struct herr err = HERR_INIT;
	const struct agent_bin *b;

	if (rq->route == NULL || rq->route->fn != api_agent_binary || rq->status != 200 ||
	    (b = agent_bin_get(&err)) == NULL)
		return;
	MHD_add_response_header(r, AGENT_BIN_HDR_SHA256, b->sha256);
}
