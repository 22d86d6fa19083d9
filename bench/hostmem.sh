#!/usr/bin/env bash
# bench/hostmem.sh - the machine's memory per local host at BENCH_HOSTMEM_HOSTS
# (100) hosts: a real `herd server` with the local provider scales one group
# of an empty template from 0 to 100 ready hosts (bounded wait), and the
# script reads, before and after, with the same server running:
#   MemAvailable:   /proc/meminfo, the median of 3 reads 1 s apart on each
#                   side; the delta holds everything the hosts cost (their
#                   processes, each host's tmpfs /run and /tmp, netns, veths,
#                   the kernel's share) and the server's own growth (shown
#                   apart), and whatever else the machine did meanwhile;
#   PSS of the hosts' processes: every process whose PID namespace is a
#                   host's (/proc/*/ns/pid), Pss of /proc/PID/smaps_rollup,
#                   summed (pages shared with the server count partly to it);
#   of which:       the deltas of Slab + KernelStack + PageTables (the
#                   kernel's part) and of Shmem (tmpfs) in /proc/meminfo;
#   tmpfs:          the used bytes of each host's /run and /tmp (statfs
#                   through /proc/PID/root), summed: the agent binary's copy
#                   and the config; the pages of it a process maps are in
#                   its PSS too.
# Each divided by the number of hosts. BENCH_HOSTMEM=0 skips it (a quick
# `make bench`). Root only (network namespaces). A benchmark: no thresholds.
set -euo pipefail
if [ "${BENCH_HOSTMEM:-1}" = 0 ]; then
	echo "hostmem: skipped (BENCH_HOSTMEM=0)"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "hostmem: skipped (needs root for network namespaces)"
	exit 0
fi
here=$(cd "$(dirname "$0")" && pwd)
HERD=$(realpath "${HERD_BIN:-$here/../build/herd}")
H=${BENCH_HOSTMEM_HOSTS:-100}
WAIT_S=${BENCH_HOSTMEM_WAIT_S:-300}

work=$(mktemp -d /tmp/herd-bench-hostmem.XXXXXX)
server_pid=
# shellcheck source=bench/herd-local.bash
. "$here/herd-local.bash"
cleanup() {
	set +e
	local_cleanup
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

avail_kb() {
	local v=()
	for i in 1 2 3; do
		v+=("$(awk '$1 == "MemAvailable:" { print $2 }' /proc/meminfo)")
		[ "$i" = 3 ] || sleep 1
	done
	printf '%s\n' "${v[@]}" | sort -n | sed -n 2p
}
# kernel_kb: Slab + KernelStack + PageTables (what netns, veths, sockets
# and processes cost the kernel); shmem_kb: Shmem (tmpfs among it)
kernel_kb() { awk '$1 ~ /^(Slab|KernelStack|PageTables):$/ { s += $2 } END { print s }' /proc/meminfo; }
shmem_kb() { awk '$1 == "Shmem:" { print $2 }' /proc/meminfo; }
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }
# cgroup_kb INSTANCE: the mean memory usage of this server's hosts' cgroups
# (v1 memory.usage_in_bytes, v2 memory.current), in kB; "-" when none
cgroup_kb() {
	local sum=0 n=0 f
	for f in /sys/fs/cgroup/memory/herd-"$1"/*/memory.usage_in_bytes \
		/sys/fs/cgroup/herd-"$1"/*/memory.current; do
		[ -f "$f" ] || continue
		sum=$((sum + $(cat "$f")))
		n=$((n + 1))
	done
	if [ "$n" -gt 0 ]; then echo $((sum / n / 1024)); else echo -; fi
}

# copies, as bench/agent.sh: hosts run the herd-agent beside the server's binary
cp "$HERD" "$work/herd"
agent_bin=$(dirname "$HERD")/herd-agent
[ -x "$agent_bin" ] && cp "$agent_bin" "$work/herd-agent"
HERD=$work/herd
local_server_start --push-interval 5s   # the default, as deployed
local_group_apply "$H"
sleep 2
a0=$(avail_kb)
s0=$(rss_kb "$server_pid") k0=$(kernel_kb) m0=$(shmem_kb)
t0=$SECONDS
local_scale_ready "$H" "$WAIT_S"
took=$((SECONDS - t0))
sleep 5   # the agents' first pushes and heartbeats
a1=$(avail_kb)
s1=$(rss_kb "$server_pid") k1=$(kernel_kb) m1=$(shmem_kb)

# the hosts' PID namespaces, from their PID 1s
declare -A hostns=()
pids1=()
while read -r id _; do
	p=$(local_host_pid "$id")
	pids1+=("$p")
	hostns[$(readlink "/proc/$p/ns/pid")]=1
done < <(local_hosts)
pss=0 procs=0
for d in /proc/[0-9]*; do
	ns=$(readlink "$d/ns/pid" 2>/dev/null) || continue
	[ -n "${hostns[$ns]:-}" ] || continue
	k=$(awk '$1 == "Pss:" { print $2 }' "$d/smaps_rollup" 2>/dev/null) || continue
	pss=$((pss + ${k:-0}))
	procs=$((procs + 1))
done
inst=$(curl -sf "$HERD_URL/healthz" | perl -MJSON::PP -e 'print decode_json(join "", <STDIN>)->{instance}')
cg=$(cgroup_kb "$inst")
tmpfs=0
for p in "${pids1[@]}"; do
	for m in run tmp; do
		b=$(stat -f -c '%b %f %S' "/proc/$p/root/$m" | awk '{ printf "%d", ($1 - $2) * $3 / 1024 }')
		tmpfs=$((tmpfs + b))
	done
done

awk -v h="$H" -v da=$((a0 - a1)) -v ds=$((s1 - s0)) -v pss="$pss" -v procs="$procs" -v tf="$tmpfs" \
	-v took="$took" -v dk=$((k1 - k0)) -v dm=$((m1 - m0)) -v cg="$cg" 'BEGIN {
	printf "hostmem: the machine'"'"'s memory per local host, %d hosts of an empty template (ready in %d s)\n", h, took
	printf "  MemAvailable delta        %8.0f kB/host  (%d kB in all; server RSS grew %d kB of it)\n", da / h, da, ds
	printf "    of which kernel        %8.0f kB/host  (Slab + KernelStack + PageTables delta)\n", dk / h
	printf "    of which Shmem         %8.0f kB/host  (tmpfs and shared memory delta)\n", dm / h
	printf "  PSS of the hosts'"'"' procs  %8.0f kB/host  (%d processes)\n", pss / h, procs
	printf "  tmpfs /run + /tmp         %8.0f kB/host  (files; the pages of them a process maps count in its PSS too)\n", tf / h
	printf "  the host'"'"'s memory cgroup  %8s kB/host  (mean usage: its processes and the page cache charged to it)\n", cg
}'
