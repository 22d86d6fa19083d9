#!/usr/bin/env bash
# bench/agent.sh - the whole agent process in a host next to node_exporter and
# collectd in the same host, measured in the same run over the same cycles.
#   herd:          a real `herd server` (--push-interval BENCH_AGENT_INTERVAL_S)
#                  with the local provider, one host of an empty template; its
#                  PID 1 (<data>/hosts/<id>/pid) is the agent: joined, pushing,
#                  heartbeating and long-polling as on any host;
#   node_exporter: Debian prometheus-node-exporter started in the host's net,
#                  mount, pid and uts namespaces (nsenter) with only the
#                  matching collectors (cpu, loadavg, meminfo, filesystem,
#                  netdev, time, processes), scraped from inside the host once
#                  per interval (the scraper's own cost is not counted);
#   collectd:      Debian collectd-core in the same namespaces, plugins cpu,
#                  load, memory, df, interface, processes, values written by
#                  the csv plugin to the host's /tmp every interval.
# After BENCH_AGENT_WARMUP cycles, BENCH_AGENT_CYCLES cycles are measured in
# one window for all three: CPU per cycle in ns from the first field of
# /proc/PID/task/*/schedstat (summed over threads, delta / cycles); then RSS
# and PSS (/proc/PID/smaps_rollup), the stripped binary size (strip -o of a
# copy) and the shared libraries (NEEDED entries; the .so files mapped). The
# agent binary is HERD_AGENT_BIN (default build/herd-agent if it exists, else
# HERD_BIN); the script says which, and which binary the host really runs.
# Each reference is checked to have worked (HTTP 200 with every expected
# metric family; collectd's csv rows). Prints the issue's goals, pass/fail.
# Root only (network namespaces). A benchmark: figures never fail it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
HERD=$(realpath "${HERD_BIN:-$here/../build/herd}")
if [ -n "${HERD_AGENT_BIN:-}" ]; then
	AGENT_BIN=$(realpath "$HERD_AGENT_BIN")
elif [ -x "$here/../build/herd-agent" ]; then
	AGENT_BIN=$(realpath "$here/../build/herd-agent")
else
	AGENT_BIN=$HERD
fi
N=${BENCH_AGENT_CYCLES:-30}
WARM=${BENCH_AGENT_WARMUP:-5}
S=${BENCH_AGENT_INTERVAL_S:-1}
NE=${BENCH_AGENT_NODE_EXPORTER:-/usr/bin/prometheus-node-exporter}   # another one: tests
CD=/usr/sbin/collectd

if [ "$(id -u)" != 0 ]; then
	echo "agent: skipped (needs root for network namespaces)"
	exit 0
fi
for b in "$NE" "$CD"; do
	if [ ! -x "$b" ]; then
		echo "agent: $b missing; run tools/deps.sh bench (prometheus-node-exporter, collectd-core)" >&2
		exit 1
	fi
done

work=$(mktemp -d /tmp/herd-bench-agent.XXXXXX)
server_pid=
ref_pids=()   # nsenter processes; each waits for its reference
# shellcheck source=bench/herd-local.bash
. "$here/herd-local.bash"
cleanup() {
	set +e
	for p in "${ref_pids[@]}"; do
		pkill_child "$p"
		wait "$p" 2>/dev/null
	done
	local_cleanup
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# child_of PID: the one child of PID (nsenter forks the reference into the
# host's PID namespace and waits for it).
child_of() {
	local c=
	for _ in $(seq 100); do
		c=$(cat "/proc/$1/task/$1/children" 2>/dev/null) && [ -n "$c" ] && break
		sleep 0.05
	done
	echo "${c%% *}"
}
# pkill_child NSENTER_PID: stops nsenter's child by its pid (nsenter exits with it).
pkill_child() {
	local c
	c=$(cat "/proc/$1/task/$1/children" 2>/dev/null) || return 0
	[ -n "$c" ] && kill "${c%% *}" 2>/dev/null
	return 0
}
# cpu_ns PID: ns on CPU of every thread of PID (schedstat's first field).
cpu_ns() {
	cat "/proc/$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d\n", s }'
}
rollup_kb() { # rollup_kb PID FIELD
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/smaps_rollup"
}
stripped_size() {
	strip -o "$work/stripped" "$1" 2>/dev/null || cp "$1" "$work/stripped"
	stat -c %s "$work/stripped"
	rm -f "$work/stripped"
}
needed() { # needed FILE: NEEDED entries, "none" for a static binary
	local n
	n=$(readelf -d "$1" 2>/dev/null | grep -c '(NEEDED)' || true)
	[ "$n" = 0 ] && n=none
	echo "$n"
}
# rss_parts PID: Rss of the executable's mappings, of the shared objects'
# (text, data and the pages the loader relocated) and of the rest (heap,
# stacks, other anonymous memory), in kB, from /proc/PID/smaps
rss_parts() {
	local exe
	exe=$(readlink "/proc/$1/exe")
	awk -v exe="$exe" '$1 ~ /^[0-9a-f]+-[0-9a-f]+$/ { k = ($6 == exe) ? "e" : ($6 ~ /\.so([.-]|$)/) ? "l" : "o"; next }
		$1 == "Rss:" { r[k] += $2 } END { printf "%d %d %d\n", r["e"], r["l"], r["o"] }' "/proc/$1/smaps"
}
mapped_so() { # mapped_so PID: distinct shared objects mapped (libraries and plugins)
	awk '$6 ~ /\.so([.-]|$)/ { print $6 }' "/proc/$1/maps" | sort -u | grep -c . || true
}

# --- herd: a server, one host -------------------------------------------------

# copies: a rebuild of build/ during the run changes nothing here; the server
# gives hosts the herd-agent beside its own binary (else itself)
cp "$HERD" "$work/herd"
[ "$AGENT_BIN" = "$HERD" ] || cp "$AGENT_BIN" "$work/herd-agent"
HERD=$work/herd
local_server_start --push-interval "${S}s"
local_group_apply 1
local_scale_ready 1 60
host=$(local_hosts | awk '{ print $1; exit }')
hname=$("$HERD" host show "$host" --json | perl -MJSON::PP -e 'print decode_json(join "", <STDIN>)->{name}')
agent=$(local_host_pid "$host")
[ -r "/proc/$agent/smaps_rollup" ] || { echo "agent: host $host has no PID 1" >&2; exit 1; }

# --- the references, in the host's namespaces ------------------------------------

ns=(nsenter -t "$agent" -n -m -p -u --)
"${ns[@]}" "$NE" --collector.disable-defaults --collector.cpu --collector.loadavg \
	--collector.meminfo --collector.filesystem --collector.netdev --collector.time \
	--collector.processes --web.listen-address=127.0.0.1:9100 >"$work/ne.log" 2>&1 &
ref_pids+=($!)
ne=$(child_of "$!")

# collectd's files live in the host's own /tmp (a tmpfs of the host's mount
# namespace), reached from here through /proc/PID/root.
cdir=/tmp/herd-bench-collectd
hroot=/proc/$agent/root
mkdir -p "$hroot$cdir"
cat >"$hroot$cdir/collectd.conf" <<EOF
Hostname "bench"
FQDNLookup false
Interval $S
BaseDir "$cdir"
PIDFile "$cdir/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin cpu
LoadPlugin load
LoadPlugin memory
LoadPlugin df
LoadPlugin interface
LoadPlugin processes
LoadPlugin csv
<Plugin csv>
  DataDir "$cdir/csv"
  StoreRates false
</Plugin>
EOF
"${ns[@]}" "$CD" -f -C "$cdir/collectd.conf" >"$work/collectd.log" 2>&1 &
ref_pids+=($!)
cd_pid=$(child_of "$!")
if [ -z "$ne" ] || [ -z "$cd_pid" ]; then
	echo "agent: a reference did not start" >&2
	cat "$work"/*.log >&2
	exit 1
fi

# scrape: one node_exporter scrape from inside the host; the HTTP code
scrape() {
	nsenter -t "$agent" -n -- curl -s -o "$work/scrape.txt" -w '%{http_code}' \
		--max-time 5 http://127.0.0.1:9100/metrics || true
}
for _ in $(seq 50); do [ "$(scrape)" = 200 ] && break; sleep 0.1; done

# cycles K: K cycles of S seconds on a fixed grid, a scrape at the start of each
cycles() {
	local t0 i next now
	t0=$(date +%s%N)
	for i in $(seq "$1"); do
		scrape >>"$work/codes"
		echo >>"$work/codes"
		next=$((t0 + i * S * 1000000000))
		now=$(date +%s%N)
		[ "$next" -gt "$now" ] && sleep "$(awk -v d=$((next - now)) 'BEGIN { printf "%.3f", d / 1e9 }')"
	done
}

# host_field F: a string field of `herd host show --json` (times are ISO
# 8601 UTC, so later is greater)
host_field() {
	"$HERD" host show "$host" --json | perl -MJSON::PP -e 'print decode_json(join "", <STDIN>)->{$ARGV[0]} // ""' "$1"
}

cycles "$WARM"
: >"$work/codes"
csv_rows() { find "$hroot$cdir/csv" -type f -path '*/load/*' -exec cat {} + 2>/dev/null | grep -c '^[0-9]' || true; }
rows0=$(csv_rows)
hb0=$(host_field heartbeat)
w0=$(date +%s%3N)
a0=$(cpu_ns "$agent") n0=$(cpu_ns "$ne") c0=$(cpu_ns "$cd_pid")
cycles "$N"
a1=$(cpu_ns "$agent") n1=$(cpu_ns "$ne") c1=$(cpu_ns "$cd_pid")
w1=$(date +%s%3N)
rows1=$(csv_rows)
hb1=$(host_field heartbeat)

# --- did each one work? ----------------------------------------------------------

fail=0
bad=$(grep -vc '^200$' "$work/codes" || true)
missing=
for f in node_cpu_seconds_total node_load1 node_memory_MemAvailable_bytes node_filesystem_avail_bytes \
	node_network_receive_bytes_total node_time_seconds node_processes_threads; do
	grep -q "^${f}[{ ]" "$work/scrape.txt" || missing="$missing $f"
done
if [ "$bad" != 0 ] || [ -n "$missing" ]; then
	echo "agent: node_exporter: $bad of $N scrapes not HTTP 200; families missing:${missing:- none}" >&2
	fail=1
fi
if [ "$((rows1 - rows0))" -lt $((N / 2)) ]; then
	echo "agent: collectd wrote $((rows1 - rows0)) load rows in $N cycles" >&2
	cat "$work/collectd.log" >&2
	fail=1
fi
pushes=$(curl -sf -H "Authorization: Bearer $HERD_TOKEN" \
	"$HERD_URL/v1/metrics/query?metric=load1&host=$hname&since=5m" |
	perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>); my $n = 0;
		for my $s (@{$d->{series}}) { $n += grep { $_->[0] >= $ARGV[0] && $_->[0] <= $ARGV[1] } @{$s->{points}} }
		print $n' "$w0" "$w1")
# heartbeats go every 5 s (the join answer's heartbeat_s): a shorter window may see none
hb_seen="heartbeat advanced"
hb_ok=1
if [ $((N * S)) -le 5 ]; then
	hb_seen="heartbeat not checked (window <= 5 s)"
elif [[ ! "$hb1" > "$hb0" ]]; then
	hb_ok=0
fi
if [ "$pushes" -lt $((N / 2)) ] || [ "$hb_ok" = 0 ]; then
	echo "agent: the agent stored $pushes samples of load1 in $N cycles; heartbeat $hb0 -> $hb1" >&2
	fail=1
fi
# the long-poll: an established connection from the host to the server's port
polls=$(nsenter -t "$agent" -n -- ss -Htn state established "dport = :${HERD_URL##*:}" | grep -c . || true)
[ "$fail" = 0 ] || exit 1

# --- figures ---------------------------------------------------------------------

ran=$(readlink "/proc/$agent/exe")
same="the host runs a copy of it"
cmp -s "$AGENT_BIN" "/proc/$agent/exe" || same="the host runs ANOTHER binary ($ran): its size and libraries are not these"
per() { echo $((($2 - $1) / N)); }
a_ns=$(per "$a0" "$a1") n_ns=$(per "$n0" "$n1") c_ns=$(per "$c0" "$c1")
a_rss=$(rollup_kb "$agent" Rss) n_rss=$(rollup_kb "$ne" Rss) c_rss=$(rollup_kb "$cd_pid" Rss)
a_pss=$(rollup_kb "$agent" Pss) n_pss=$(rollup_kb "$ne" Pss) c_pss=$(rollup_kb "$cd_pid" Pss)
a_anon=$(rollup_kb "$agent" Anonymous) n_anon=$(rollup_kb "$ne" Anonymous) c_anon=$(rollup_kb "$cd_pid" Anonymous)
a_size=$(stripped_size "$AGENT_BIN") n_size=$(stripped_size "$NE") c_size=$(stripped_size "$CD")
a_needed=$(needed "$AGENT_BIN")
libs_note=
[ "$a_needed" = none ] || libs_note=" (dynamic: its $a_needed NEEDED libraries are not counted)"
c_plug=0
for p in cpu load memory df interface processes csv; do
	c_plug=$((c_plug + $(stripped_size "/usr/lib/collectd/$p.so")))
done

echo "agent: $AGENT_BIN measured in host $host (PID $agent); $same"
echo "  $N cycles of ${S} s after $WARM warm-up, one window for all three, the same host's namespaces;"
echo "  the agent stored $pushes load1 samples, $hb_seen, $polls connection(s) to the server;"
echo "  node_exporter answered 200 to all $N scrapes, with all 7 collectors' families (scraper not counted); collectd wrote $((rows1 - rows0)) load rows"
printf '  %-14s %12s %9s %9s %9s %12s %8s %8s\n' "" "cpu_ns/cycle" "rss_kb" "pss_kb" "anon_kb" "bin_stripped" "NEEDED" "so_maps"
printf '  %-14s %12s %9s %9s %9s %12s %8s %8s\n' "herd agent" "$a_ns" "$a_rss" "$a_pss" "$a_anon" "$a_size" \
	"$a_needed" "$(mapped_so "$agent")"
printf '  %-14s %12s %9s %9s %9s %12s %8s %8s\n' "node_exporter" "$n_ns" "$n_rss" "$n_pss" "$n_anon" "$n_size" \
	"$(needed "$NE")" "$(mapped_so "$ne")"
printf '  %-14s %12s %9s %9s %9s %12s %8s %8s\n' "collectd" "$c_ns" "$c_rss" "$c_pss" "$c_anon" "$c_size+$c_plug" \
	"$(needed "$CD")" "$(mapped_so "$cd_pid")"
read -r pe pl po < <(rss_parts "$agent")
echo "  herd agent's RSS: executable $pe kB, shared libraries $pl kB, the rest (heap, stacks, anonymous) $po kB"
awk -v ln="$libs_note" -v ac="$a_ns" -v nc="$n_ns" -v cc="$c_ns" -v ar="$a_rss" -v nr="$n_rss" -v cr="$c_rss" \
	-v ap="$a_pss" -v np="$n_pss" -v as="$a_size" 'function pf(ok) { return ok ? "pass" : "FAIL" } BEGIN {
	printf "  ratio herd/node_exporter: cpu %.3f, rss %.3f, pss %.3f; herd/collectd: cpu %.3f, rss %.3f\n",
		ac / nc, ar / nr, ap / np, ac / cc, ar / cr
	printf "  goal rss <= 2048 kB and <= 0.1x node_exporter: %d kB, %.3fx  %s\n", ar, ar / nr, pf(ar <= 2048 && ar <= 0.1 * nr)
	printf "  goal cpu per cycle <= 0.1x node_exporter per scrape: %.3fx  %s\n", ac / nc, pf(ac <= 0.1 * nc)
	printf "  goal binary <= 1.5 MiB (1572864 B) stripped: %d B  %s%s\n", as, pf(as <= 1572864), ln
}'
