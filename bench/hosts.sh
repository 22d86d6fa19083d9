#!/usr/bin/env bash
# bench/hosts.sh - median time from `herd group scale` to every new agent
# `ready` (empty init script) on the local provider, for 1 host and for 20,
# next to the same namespace + veth + bridge + address + route setup done
# with the `ip` command in the same run. Prints both and the ratio. Root only
# (network namespaces); everything made is removed by the trap. A benchmark,
# not a test: no thresholds.
set -euo pipefail
HERD=$(realpath "${HERD_BIN:-$(dirname "$0")/../build/herd}")
TRIALS_1=${BENCH_TRIALS_1:-10}
TRIALS_20=${BENCH_TRIALS_20:-3}
BIG=${BENCH_HOSTS:-20}

if [ "$(id -u)" != 0 ]; then
	echo "hosts: skipped (needs root for network namespaces)"
	exit 0
fi

work=$(mktemp -d /tmp/herd-bench-hosts.XXXXXX)
ref=hbr$$                      # the ip reference's names: hbr<pid>...
ref_br=${ref}br
octet=$((RANDOM % 256))
herd_cidr=198.18.$octet.0/24   # herd's network; the reference uses 198.19.x
ref_net=198.19.$octet
server_pid=

cleanup() {
	set +e
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	[ -d "$work/data" ] && "$HERD" server --data "$work/data" --teardown >>"$work/server.log" 2>&1
	ref_clean
	ip link del "$ref_br" 2>/dev/null
	rm -rf "$work"
}

# Removes the reference's namespaces and veths (the bridge stays).
ref_clean() {
	local ns
	for ns in $(ip netns list | awk '{print $1}' | grep "^$ref-" || true); do
		ip netns del "$ns" 2>/dev/null || true
	done
	for l in $(ip -o link | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^${ref}v" || true); do
		ip link del "$l" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# --- herd -------------------------------------------------------------------

# A private copy: a rebuild of build/herd during the run changes nothing here.
cp "$HERD" "$work/herd"
HERD=$work/herd
# A free port; another process may take it first, so the start is retried.
started=0
for _ in $(seq 5); do
	for _ in $(seq 50); do
		port=$((20000 + RANDOM % 30000))
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
	done
	export HERD_URL=http://127.0.0.1:$port
	"$HERD" server --data "$work/data" --listen "127.0.0.1:$port" --log-level warn \
		>>"$work/server.log" 2>&1 &
	server_pid=$!
	for _ in $(seq 200); do
		curl -sf "$HERD_URL/healthz" >/dev/null && started=1 && break
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.05
	done
	[ "$started" = 1 ] && break
	wait "$server_pid" 2>/dev/null || true
	server_pid=
done
if [ "$started" != 1 ]; then
	echo "hosts: the herd server did not start:" >&2
	cat "$work/server.log" >&2
	exit 1
fi
HERD_TOKEN=$(cat "$work/data/admin.token")
export HERD_TOKEN

mkdir -p "$work/bp/scripts"
printf '#!/bin/sh\nexit 0\n' >"$work/bp/scripts/empty.sh"
cat >"$work/bp/bench.yaml" <<EOF
accounts:
  - name: here
    driver: local
networks:
  - name: benchnet
    account: here
    cidr: $herd_cidr
scripts:
  - name: empty.sh
    file: scripts/empty.sh
templates:
  - name: bench
    account: here
    network: benchnet
    init: [empty.sh]
clusters:
  - name: bench
    groups:
      - name: g
        template: bench
        size: 0
        max: 100
EOF
"$HERD" apply -f "$work/bp/bench.yaml" >/dev/null

# hosts_json: the live hosts of the group, as "state created_ms ready_after_ms launch_ms" lines.
hosts_lines() {
	"$HERD" host ls --group bench/g --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		printf "%s %s %s %s\n", $_->{state}, $_->{created_ms},
			$_->{ready_after_ms} // "-", $_->{launch_ms} // "-" for @{$d->{items}}'
}

# herd_trial N: scales 0 -> N, waits for N ready, prints "total_ms launch_ms
# ready_after_ms" (the last two: medians over the N hosts), then scales to 0
# and waits until the hosts are gone.
herd_trial() {
	local n=$1 t0 lines deadline
	t0=$(now_ms)
	"$HERD" group scale bench/g "$n" >/dev/null
	deadline=$((SECONDS + 60))
	while :; do
		lines=$(hosts_lines)
		[ "$(awk '$1 == "ready"' <<<"$lines" | grep -c .)" -eq "$n" ] && break
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "hosts: $n host(s) not ready after 60 s:" >&2
			echo "$lines" >&2
			return 1
		fi
		sleep 0.01
	done
	# the server's own timestamps: no polling delay in the figure
	awk -v t0="$t0" '{ r = $2 + $3; if (r > m) m = r } END { print m - t0 }' <<<"$lines"
	awk '{ print $4 }' <<<"$lines" | median
	awk '{ print $3 }' <<<"$lines" | median
	"$HERD" group scale bench/g 0 >/dev/null
	deadline=$((SECONDS + 60))
	while [ -n "$(hosts_lines)" ]; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "hosts: hosts not terminated after 60 s" >&2
			return 1
		fi
		sleep 0.02
	done
}

# herd_series N TRIALS: prints "median_total median_launch median_ready".
herd_series() {
	local n=$1 totals=() launches=() readies=() out
	for _ in $(seq "$2"); do
		out=$(herd_trial "$n")
		totals+=("$(sed -n 1p <<<"$out")")
		launches+=("$(sed -n 2p <<<"$out")")
		readies+=("$(sed -n 3p <<<"$out")")
	done
	echo "$(printf '%s\n' "${totals[@]}" | median) $(printf '%s\n' "${launches[@]}" | median)" \
		"$(printf '%s\n' "${readies[@]}" | median) ${totals[*]}"
}

# A first host makes the bridge and warms caches: not counted.
herd_trial 1 >/dev/null

# --- the ip reference -------------------------------------------------------

ip link add "$ref_br" type bridge
ip addr add "$ref_net.1/24" dev "$ref_br"
ip link set "$ref_br" up

# ip_trial N: N namespaces, each with a veth on the bridge, an address, lo and
# eth0 up and a default route, as the local provider makes them; prints ms.
ip_trial() {
	local n=$1 t0 t1 i ns v
	t0=$(now_ms)
	for i in $(seq "$n"); do
		ns=$ref-$i v=${ref}v$i
		ip netns add "$ns"
		ip link add "$v" type veth peer name eth0 netns "$ns"
		ip link set "$v" master "$ref_br"
		ip link set "$v" up
		ip -n "$ns" link set lo up
		ip -n "$ns" link set eth0 up
		ip -n "$ns" addr add "$ref_net.$((i + 1))/24" dev eth0
		ip -n "$ns" route add default via "$ref_net.1"
	done
	t1=$(now_ms)
	ref_clean
	echo $((t1 - t0))
}

ip_series() {
	local all=()
	for _ in $(seq "$2"); do
		all+=("$(ip_trial "$1")")
	done
	echo "$(printf '%s\n' "${all[@]}" | median) ${all[*]}"
}

# --- run and print ------------------------------------------------------------

read -r h1 h1_launch h1_ready h1_all < <(herd_series 1 "$TRIALS_1")
read -r i1 i1_all < <(ip_series 1 "$TRIALS_1")
read -r h20 h20_launch h20_ready h20_all < <(herd_series "$BIG" "$TRIALS_20")
read -r i20 i20_all < <(ip_series "$BIG" "$TRIALS_20")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "-" }'; }
echo "hosts: \`herd group scale\` -> all new agents ready (empty init script), median ms"
echo "       next to \`ip\` making the same netns + veth + bridge port + address + route"
printf '  %-9s herd %6s ms   ip %6s ms   ratio %sx   (per host: launch %s ms, created->ready %s ms)\n' \
	"1 host" "$h1" "$i1" "$(ratio "$h1" "$i1")" "$h1_launch" "$h1_ready"
printf '  %-9s herd %6s ms   ip %6s ms   ratio %sx   (per host: launch %s ms, created->ready %s ms)\n' \
	"$BIG hosts" "$h20" "$i20" "$(ratio "$h20" "$i20")" "$h20_launch" "$h20_ready"
echo "  trials: herd 1: $h1_all | ip 1: $i1_all | herd $BIG: $h20_all | ip $BIG: $i20_all"
