#!/bin/sh
# queue_drain.sh - before_terminate for a node: stop taking new items, let
# the running ones finish (up to DRAIN_WAIT seconds), and say what happened.
set -eu
touch /run/queue/draining
left=$(find /run/queue/busy.d -type f 2>/dev/null | wc -l)
echo "draining $HERD_HOST: $left item(s) running"
waited=0
while [ "$left" -gt 0 ] && [ "$waited" -lt "${DRAIN_WAIT:-120}" ]; do
	sleep 1
	waited=$((waited + 1))
	left=$(find /run/queue/busy.d -type f 2>/dev/null | wc -l)
done
echo "drained $HERD_HOST after ${waited}s ($left item(s) left)"
