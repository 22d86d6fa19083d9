#!/bin/sh
# queue_node_installer.sh - a node of the queue demo: finds the master with
# `herd meta` (as the seed's nodes found the Kubernetes master) and starts a
# worker pool of QUEUE_SLOTS (40) slots. Each slot takes an item "id:seconds"
# from the master's queue, marks itself busy while it "works" for that many
# seconds, and counts it done. The `busy` monitor counts busy slots.
set -eu
MASTER=$(herd meta group master private_ip --wait --timeout 2m | head -n1)
[ -n "$MASTER" ] || { echo "no master found" >&2; exit 1; }
slots=${QUEUE_SLOTS:-40}
mkdir -p /run/queue/busy.d
echo "$MASTER" >/run/queue/master
cat >/run/queue/slot.sh <<'SLOT'
#!/bin/sh
# One worker slot: $1 = slot number. Stops taking work once /run/queue/draining exists.
slot=$1
master=$(cat /run/queue/master)
while [ ! -e /run/queue/draining ]; do
	item=$(redis-cli --raw -h "$master" BLPOP queue 1 2>/dev/null | sed -n 2p) || item=
	[ -n "$item" ] || continue
	echo "$item" >"/run/queue/busy.d/$slot"
	sleep "${item#*:}"
	rm -f "/run/queue/busy.d/$slot"
	redis-cli -h "$master" INCR done >/dev/null 2>&1 || true
done
SLOT
chmod +x /run/queue/slot.sh
i=1
while [ "$i" -le "$slots" ]; do
	setsid /run/queue/slot.sh "$i" </dev/null >/dev/null 2>&1 &
	i=$((i + 1))
done
echo "worker pool of $slots slots on $HERD_HOST, queue at $MASTER:6379"
