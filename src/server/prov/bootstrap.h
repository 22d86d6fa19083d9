/* bootstrap.h - how a cloud host becomes a herd host: the agent binary the
 * server serves to booting hosts (its own executable, opened and hashed once
 * at start), and the POSIX sh user-data script that fetches it with the
 * host's join token, checks its SHA-256, installs it and starts the agent.
 * Cloud drivers (prov-qingcloud.c) call bootstrap_script(); the API serves
 * the binary (api-agent-binary.c). */
#ifndef HERD_BOOTSTRAP_H
#define HERD_BOOTSTRAP_H

#include <stdint.h>

#include "herr.h"

/* QingCloud takes an `exec` user-data script of at most 4 KiB
 * (qingcloud-docs content/compute/vm/manual/userdata.md, "User Data" 3).
 * The API carries it base64-encoded (4/3 larger), so the script itself is
 * kept to BOOTSTRAP_SCRIPT_MAX bytes: its base64 stays under 4096 too. */
#define BOOTSTRAP_SCRIPT_MAX 3000
#define BOOTSTRAP_CONFIG_MAX 1500     /* bytes of agent config JSON we embed */
#define BOOTSTRAP_CA_PATH "/etc/herd/ca.pem"

/* Where the script puts things on the host (fixed: never user text). */
#define BOOTSTRAP_AGENT_PATH "/usr/local/bin/herd"
#define BOOTSTRAP_CONFIG_PATH "/etc/herd/agent.json"
#define BOOTSTRAP_UNIT_PATH "/etc/systemd/system/herd-agent.service"
#define BOOTSTRAP_LOG_PATH "/var/log/herd-agent.log"

/* The headers GET /v1/agent/binary takes and answers. */
#define AGENT_BIN_HDR_HOST "X-Herd-Host-Id"
#define AGENT_BIN_HDR_TOKEN "X-Herd-Join-Token"
#define AGENT_BIN_HDR_SHA256 "X-Herd-Agent-Sha256"

/* The agent binary: herd-agent (the static host-side build), or the server's
 * own executable when there is none. */
struct agent_bin {
	int fd;                 /* read-only, kept open */
	uint64_t size_bytes;
	char sha256[65];        /* lowercase hex */
};

/* The agent binary hosts get: path (opened on the first agent_bin_get);
 * without a call, the running server's own executable, /proc/self/exe.
 * Call it once, before anything serves. */
void agent_bin_use(const char *path);
/* Writes "DIR/herd-agent" for self_bin "DIR/herd" into out: 0, or -1 when
 * self_bin has no directory or out is too small. */
int agent_bin_beside(const char *self_bin, char *out, size_t outsz);

/* The agent binary (see agent_bin_use), opened and hashed on the first call
 * (the server calls it at start): /proc/self/exe names the running image
 * even after the file on disk is replaced, and the open fd keeps serving
 * exactly the bytes that were hashed (a running executable cannot be
 * written: ETXTBSY). Thread-safe; the answer is borrowed for the life of
 * the process. NULL with err set (-errno) when it cannot be read. */
const struct agent_bin *agent_bin_get(struct herr *err);
/* agent_bin_get()'s sha256, or NULL when the binary cannot be read. */
const char *agent_bin_sha256(void);

/* What the script needs; every string borrowed. */
struct bootstrap_in {
	const char *server_url;   /* how the host reaches the server: http(s)://,
				     only [A-Za-z0-9:/._-] (no IPv6 brackets) */
	const char *agent_sha256; /* 64 lowercase hex: agent_bin_get()->sha256 */
	const char *host_id;      /* [A-Za-z0-9-], at most 63 */
	const char *join_token;   /* [A-Za-z0-9_-], at most 200 */
	const char *config_json;  /* agent config (host_spec.user_data), at most
				     BOOTSTRAP_CONFIG_MAX bytes: only base64 of it
				     reaches the script */
	const char *ca_sha256;    /* the server's CA (https with a CA of its own):
				     SHA-256 of its DER, 64 lowercase hex; the
				     script fetches GET /v1/tls/ca, checks it and
				     verifies the download with it; or NULL */
};

/* Builds the user-data script for in into *out (owned, NUL-terminated, at
 * most BOOTSTRAP_SCRIPT_MAX bytes). Values from users or the server appear
 * in it only as base64 or as tokens checked against a small charset, so
 * nothing they contain can become shell text. HERR_INVALID naming the
 * field (server_url, agent_sha256, host_id, join_token, config, ca_sha256) or
 * HERR_TOOBIG when the script would pass BOOTSTRAP_SCRIPT_MAX. */
int bootstrap_script(const struct bootstrap_in *in, char **out, struct herr *err);

#endif
