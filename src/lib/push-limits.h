/* push-limits.h - the limits of the agents' metrics push (POST
 * /v1/agent/metrics) that both ends must agree on, defined once: the agent
 * sends at most this many batches in one request and the server refuses
 * more (400 naming "batches"). Each side's own limits stay with it: the
 * agent's buffer in agent/push.h, per-batch limits in api/api-metrics.c. */
#ifndef HERD_PUSH_LIMITS_H
#define HERD_PUSH_LIMITS_H

#define PUSH_MAX_BATCHES_PER_REQUEST 100

#endif
