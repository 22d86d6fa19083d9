#!/bin/sh
# load.sh ADDR PORT COUNT SECONDS - pushes COUNT long-running items of
# SECONDS each onto the queue (through the load balancer's listener).
set -eu
addr=${1:?usage: load.sh ADDR PORT COUNT SECONDS}
port=${2:?}
count=${3:-150}
secs=${4:-60}
i=1
while [ "$i" -le "$count" ]; do
	printf 'RPUSH queue item%d:%d\r\n' "$i" "$secs"
	i=$((i + 1))
done | redis-cli -h "$addr" -p "$port" --pipe >/dev/null
echo "pushed $count items of ${secs}s"
