#!/bin/sh
# queue_master_installer.sh - the master of the queue demo: a real work
# queue (Redis, from Debian) bound to this host's private address. Stands in
# for the seed's k8s_master_installer.sh.
set -eu
: "${HERD_PRIVATE_IP:?HERD_PRIVATE_IP is not set}"
dir=/var/lib/herd/redis
mkdir -p "$dir"
redis-server --bind "$HERD_PRIVATE_IP" --port 6379 --protected-mode no \
	--daemonize yes --dir "$dir" --save '' --appendonly no \
	--logfile "$dir/redis.log" --pidfile /run/redis.pid
# Ready only when it answers.
i=0
until redis-cli -h "$HERD_PRIVATE_IP" ping >/dev/null 2>&1; do
	i=$((i + 1))
	[ "$i" -lt 50 ] || { echo "redis did not start" >&2; exit 1; }
	sleep 0.1
done
echo "queue ready on $HERD_PRIVATE_IP:6379"
