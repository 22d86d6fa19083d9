#!/usr/bin/env bash
# bench/host-mem.sh - what a local host costs the machine's memory: starts a
# server (HERD_BIN), measures /proc/meminfo, launches N idle hosts (default
# 20 and 100: BENCH_HOST_MEM="20 100") in one group, waits until every one is
# ready and 5 s more, measures again, and prints per host the drop of
# MemAvailable, the growth of Shmem (tmpfs: a copy of the agent binary in a
# host's /run was there) and, where hosts have memory cgroups (v1
# memory.usage_in_bytes, v2 memory.current), their mean usage. The machine
# is shared: MemAvailable moves with everything else running, so the Shmem
# and cgroup figures are the steadier ones. Root only; the trap removes every
# host, the server and its data dir. A benchmark, not a test: no thresholds.
set -euo pipefail
HERD=$(realpath "${HERD_BIN:-$(dirname "$0")/../build/herd}")
SIZES=${BENCH_HOST_MEM:-20 100}

if [ "$(id -u)" != 0 ]; then
	echo "host-mem: skipped (needs root for network namespaces)"
	exit 0
fi

work=$(mktemp -d /tmp/herd-bench-hostmem.XXXXXX)
server_pid=

cleanup() {
	set +e
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	if [ -d "$work/data" ]; then
		"$HERD" server --data "$work/data" --teardown >>"$work/server.log" 2>&1
	fi
	rm -rf "$work"
}
trap cleanup EXIT

meminfo_kb() { # meminfo_kb FIELD
	awk -v f="$1:" '$1 == f { print $2 }' /proc/meminfo
}

ready_count() {
	"$HERD" host ls --group hm/node --json | perl -MJSON::PP -e \
		'print scalar grep { $_->{state} eq "ready" } @{decode_json(join "", <STDIN>)->{items}}'
}

# The mean memory usage of this server's hosts' cgroups, in KiB ("-": none).
cgroup_kb() {
	local inst=$1 sum=0 n=0 f
	for f in /sys/fs/cgroup/memory/herd-"$inst"/*/memory.usage_in_bytes \
		 /sys/fs/cgroup/herd-"$inst"/*/memory.current; do
		[ -f "$f" ] || continue
		sum=$((sum + $(cat "$f")))
		n=$((n + 1))
	done
	if [ "$n" -gt 0 ]; then echo $((sum / n / 1024)); else echo -; fi
}

for n in $SIZES; do
	rm -rf "$work/data"
	mkdir -p "$work/data"
	port=$((20000 + RANDOM % 12000))
	export HERD_URL=http://127.0.0.1:$port
	"$HERD" server --data "$work/data" --listen "127.0.0.1:$port" >>"$work/server.log" 2>&1 &
	server_pid=$!
	for _ in $(seq 100); do curl -sf "$HERD_URL/healthz" >/dev/null && break; sleep 0.1; done
	HERD_TOKEN=$(cat "$work/data/admin.token")
	export HERD_TOKEN
	inst=$(curl -sf "$HERD_URL/healthz" | perl -MJSON::PP -e 'print decode_json(join "", <STDIN>)->{instance}')
	cat >"$work/hm.yaml" <<-EOF
		accounts:
		  - name: here
		    driver: local
		networks:
		  - name: hm-net
		    account: here
		    cidr: 198.19.$((RANDOM % 64 * 4)).0/22
		templates:
		  - name: node
		    account: here
		    network: hm-net
		clusters:
		  - name: hm
		    groups:
		      - name: node
		        template: node
		        size: $n
		        max: $n
	EOF
	sleep 2
	avail0=$(meminfo_kb MemAvailable)
	shmem0=$(meminfo_kb Shmem)
	"$HERD" apply -f "$work/hm.yaml" >/dev/null
	deadline=$((SECONDS + 120 + n))
	while [ "$(ready_count)" -lt "$n" ]; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "host-mem: $n hosts not ready in time" >&2
			exit 1
		fi
		sleep 0.5
	done
	sleep 5
	avail1=$(meminfo_kb MemAvailable)
	shmem1=$(meminfo_kb Shmem)
	printf 'host-mem: %d hosts: per host MemAvailable -%d KiB, Shmem +%d KiB, cgroup %s KiB\n' \
		"$n" $(((avail0 - avail1) / n)) $(((shmem1 - shmem0) / n)) "$(cgroup_kb "$inst")"
	kill "$server_pid"
	wait "$server_pid" 2>/dev/null || true
	server_pid=
	"$HERD" server --data "$work/data" --teardown >>"$work/server.log" 2>&1
done
