#!/bin/sh
# queue_busy.sh - the `busy` monitor: work items in progress on this node.
set -eu
if [ -d /run/queue/busy.d ]; then
	find /run/queue/busy.d -type f | wc -l
else
	echo 0
fi
