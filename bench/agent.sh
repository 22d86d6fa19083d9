#!/usr/bin/env bash
# bench/agent.sh - the agent's cost per collection cycle next to
# node_exporter's (Debian prometheus-node-exporter) scraped at the same
# interval for the same number of cycles, both run side by side:
#   herd:          `herd agent --bench-collect N --interval-ms MS` (the real
#                  collectors, encoder and buffer; no server needed), which
#                  reports its own CPU per cycle (ns clocks) and RSS;
#   node_exporter: bound to 127.0.0.1 on a free port, scraped with curl;
#                  CPU from utime+stime in /proc/PID/stat (warm: after the
#                  first scrape), RSS from /proc/PID/status.
# Prints both and the ratios. A benchmark, not a test: no thresholds.
set -euo pipefail
HERD=${HERD_BIN:-$(dirname "$0")/../build/herd}
N=${BENCH_AGENT_CYCLES:-30}
MS=${BENCH_AGENT_INTERVAL_MS:-1000}
NE=/usr/bin/prometheus-node-exporter
work=$(mktemp -d /tmp/herd-bench-agent.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

if [ ! -x "$NE" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "node_exporter missing; run as root: apt-get install -y prometheus-node-exporter" >&2
		exit 1
	fi
	# installed, not started: no service of its own may come up here
	policy=/usr/sbin/policy-rc.d
	made_policy=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends prometheus-node-exporter >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null 2>&1; apt-get install -y -qq --no-install-recommends \
			prometheus-node-exporter >/dev/null; }
	[ "$made_policy" = 1 ] && rm -f "$policy"
fi

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# cpu_ticks PID: utime + stime (clock ticks), fields 14 and 15 after the comm
cpu_ticks() {
	sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
status_kb() { # status_kb PID FIELD
	awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"
}

port=$(free_port)
"$NE" --web.listen-address="127.0.0.1:$port" >"$work/ne.log" 2>&1 &
ne=$!
pids+=("$ne")
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/metrics" >/dev/null && break; sleep 0.1; done

# herd, alongside
"$HERD" agent --bench-collect "$N" --interval-ms "$MS" >"$work/herd.out" 2>"$work/herd.err" &
herd=$!
pids+=("$herd")

# node_exporter: one warm-up scrape, then N at the same interval
curl -sf "http://127.0.0.1:$port/metrics" >"$work/scrape.txt"
t0=$(cpu_ticks "$ne")
s0=$(date +%s%N)
for i in $(seq "$N"); do
	next=$((s0 + i * MS * 1000000))
	curl -sf "http://127.0.0.1:$port/metrics" >"$work/scrape.txt"
	now=$(date +%s%N)
	[ "$next" -gt "$now" ] && sleep "$(awk -v d=$((next - now)) 'BEGIN{printf "%.3f", d/1e9}')"
done
t1=$(cpu_ticks "$ne")
ne_rss=$(status_kb "$ne" VmRSS)
ne_hwm=$(status_kb "$ne" VmHWM)
ne_anon=$(status_kb "$ne" RssAnon)
ne_samples=$(grep -vc '^#' "$work/scrape.txt")
kill "$ne"
wait "$herd"

summary=$(grep '^summary ' "$work/herd.out") || { cat "$work/herd.err" >&2; exit 1; }
val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$summary"; }
hz=$(getconf CLK_TCK)
ne_cpu_us=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$N" 'BEGIN{printf "%.1f", t * 1e6 / hz / n}')

echo "$N cycles at ${MS} ms, run side by side"
printf '%-15s %12s %12s %10s %10s %10s %9s\n' "" "cpu_us/cycle" "rss_kb" "hwm_kb" "anon_kb" "series" "bytes"
printf '%-15s %12s %12s %10s %10s %10s %9s\n' "herd agent" "$(val proc_cpu_us_per_cycle)" \
	"$(val rss_kb)" "$(val hwm_kb)" "$(val anon_kb)" "$(val series)" "$(val batch_bytes)"
printf '%-15s %12s %12s %10s %10s %10s %9s\n' "node_exporter" "$ne_cpu_us" "$ne_rss" "$ne_hwm" \
	"$ne_anon" "$ne_samples" "$(wc -c <"$work/scrape.txt")"
echo "herd: collection thread alone $(val cpu_us_per_cycle) us/cycle (max $(val cpu_us_max));" \
	"RSS before any work (binary + shared libraries) $(val rss_start_kb) kB," \
	"file-backed $(val file_kb) kB"
awk -v hc="$(val proc_cpu_us_per_cycle)" -v nc="$ne_cpu_us" -v hr="$(val rss_kb)" -v nr="$ne_rss" \
	-v ha="$(val anon_kb)" -v na="$ne_anon" 'BEGIN {
	printf "ratio herd/node_exporter: cpu per cycle %.3f (target <= 0.1), rss %.3f (target <= 0.1, <= 2048 kB), anon rss %.3f\n",
		(nc > 0 ? hc / nc : 0), hr / nr, ha / na }'
