/* agent-contract.h - what herd's agent and server must agree on, defined
 * once (the agent includes lib/, never server/): where a host keeps the
 * agent's config and its state, which the local provider prepares, and the
 * limits of the metrics push (POST /v1/agent/metrics) both ends enforce.
 * Each side's own limits stay with it: the agent's buffer in agent/push.h,
 * per-batch limits in api/api-metrics.c. */
#ifndef HERD_AGENT_CONTRACT_H
#define HERD_AGENT_CONTRACT_H

#define AGENT_CONFIG "/run/herd/agent.json"   /* inside the host: server URL, join token */
#define HOST_STATE_DIR "/var/lib/herd"        /* inside the host: persistent state */

/* The agent sends at most this many batches in one request; the server
 * refuses more (400 naming "batches"). */
#define PUSH_MAX_BATCHES_PER_REQUEST 100

/* The agent config (GET /v1/agent/config) lists at most this many
 * thresholds ({"metric","op","value"}) a host's values are watched for: a
 * crossing is pushed at once (docs/metrics.md). The server lists no more,
 * the agent reads no more. */
#define PUSH_MAX_THRESHOLDS 64

#endif
