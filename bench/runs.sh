#!/usr/bin/env bash
# bench/runs.sh - how long `herd script run true.sh --group G --wait` takes
# on 20 local hosts, from the command to every host's output and exit code
# recorded (the run has ended), median of 10. Beside it, the anchor: the
# same 20 hosts each running `true` directly (nsenter into all 20 at once,
# no control plane), median of 10 too. Target: herd <= 1 s. A benchmark,
# not a test: no thresholds. Needs root (local hosts are namespaces).
set -euo pipefail
HERD=${HERD_BIN:-$(dirname "$0")/../build/herd}
HOSTS=${BENCH_HOSTS:-20}
ROUNDS=${BENCH_ROUNDS:-10}
if [ "$(id -u)" != 0 ]; then
	echo "runs: skipped (needs root for local hosts)"
	exit 0
fi
work=$(mktemp -d /tmp/herd-bench-runs.XXXXXX)
pid=
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	[ -z "$pid" ] || wait "$pid" 2>/dev/null || true
	"$HERD" server --data "$work/data" --teardown >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

port=$((20000 + RANDOM % 30000))
# shellcheck source=bench/free-cidr.bash
. "$(dirname "$0")/free-cidr.bash"
cidr=$(free_cidr 24)
"$HERD" server --data "$work/data" --listen "127.0.0.1:$port" --log-level warn 2>"$work/server.log" &
pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
export HERD_URL=http://127.0.0.1:$port HERD_TOKEN
HERD_TOKEN=$(cat "$work/data/admin.token")
printf '#!/bin/sh\ntrue\n' >"$work/true.sh"
cat >"$work/bench.yaml" <<EOF
accounts:
  - name: here
    driver: local
networks:
  - name: benchnet
    account: here
    cidr: $cidr
scripts:
  - name: true.sh
    file: true.sh
templates:
  - name: t
    account: here
    network: benchnet
clusters:
  - name: bench
    groups:
      - name: g
        template: t
        size: $HOSTS
        max: $HOSTS
EOF
"$HERD" apply -f "$work/bench.yaml" >/dev/null
for _ in $(seq 600); do
	[ "$("$HERD" host ls --group bench/g | grep -c ' ready ')" -eq "$HOSTS" ] && break
	sleep 0.1
done
[ "$("$HERD" host ls --group bench/g | grep -c ' ready ')" -eq "$HOSTS" ] || {
	echo "runs: the $HOSTS hosts did not get ready" >&2
	exit 1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }

# one warm-up each, not counted
"$HERD" script run true.sh --group bench/g --wait >/dev/null
herd_ms=()
for _ in $(seq "$ROUNDS"); do
	t0=$(now_ms)
	"$HERD" script run true.sh --group bench/g --wait --json >"$work/run.json"
	herd_ms+=($(($(now_ms) - t0)))
	ok=$(perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>); print $d->{counts}{succeeded}' <"$work/run.json")
	[ "$ok" -eq "$HOSTS" ] || { echo "runs: only $ok of $HOSTS hosts succeeded" >&2; exit 1; }
done

pids=()
for d in "$work"/data/hosts/*/; do
	pids+=("$(cat "$d/pid")")
done
anchor_round() {
	local p kids=()
	for p in "${pids[@]}"; do
		nsenter -t "$p" -m -u -n -p -- true &
		kids+=($!)
	done
	wait "${kids[@]}"
}
anchor_round
anchor_ms=()
for _ in $(seq "$ROUNDS"); do
	t0=$(now_ms)
	anchor_round
	anchor_ms+=($(($(now_ms) - t0)))
done

h=$(printf '%s\n' "${herd_ms[@]}" | median)
a=$(printf '%s\n' "${anchor_ms[@]}" | median)
echo "runs: herd script run --group (${HOSTS} hosts, true) to all results recorded: median ${h} ms of ${ROUNDS} (all: ${herd_ms[*]})"
echo "runs: anchor, nsenter + true on the same ${HOSTS} hosts at once: median ${a} ms (all: ${anchor_ms[*]})"
awk -v h="$h" -v a="$a" 'BEGIN { printf "runs: herd / anchor = %.1fx; target herd <= 1000 ms: %s\n", (a > 0 ? h / a : 0), (h <= 1000 ? "met" : "NOT met") }'
