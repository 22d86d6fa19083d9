#!/usr/bin/env bash
# bench/hosts.sh - median time from `herd group scale` to every new agent
# `ready` (empty init script) on the local provider, for 1 host and for 20
# (BENCH_HOSTS), next to a fair shell reference in the same run, trials
# alternated (herd, reference, herd, ...): per host, one `ip -batch` in the
# machine's netns (netns + veth with its peer made inside + bridge port),
# one `ip -n NS -batch` inside (lo, eth0, address, default route) and one
# process started by `unshare` in its own PID/UTS/mount namespaces, hosts one
# after another, done when every process has started. Prints both and the
# ratio. Hosts run the herd-agent beside the herd binary, as `make` installs
# them (the server's fallback, herd itself, costs each host a dynamic link);
# the wait for `ready` starts no process (see hosts_count); each trial starts
# half a second after the last one's cleanup, so neither side pays for the
# kernel's deferred work of the other's removed namespaces. Root only
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
# shellcheck source=bench/free-cidr.bash
. "$(dirname "$0")/free-cidr.bash"
herd_cidr=$(free_cidr 22 18)   # herd's network (1,021 hosts); the reference's is in 198.19
ref_cidr=$(free_cidr 22 19)
octet=${ref_cidr#198.19.}
octet=${octet%%.*}
ref_net=198.19.$octet
server_pid=
ref_pids=()
# How long a trial may take: 60 s, and 60 ms more per host past 1,000/60 s.
TRIAL_S=$((60 + BIG * 60 / 1000))
POLL=0.01

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

# Removes the reference's processes, namespaces and veths (the bridge stays).
ref_clean() {
	local ns pid
	# unshare --fork ignores SIGTERM; its child dies with it (--kill-child)
	for pid in "${ref_pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	ref_pids=()
	rm -f "$work"/ref-up.*
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
# hosts run the herd-agent beside the server's binary, as installed (else herd
# itself, dynamically linked, with a warning in the server log)
agent_src=$(dirname "$HERD")/herd-agent
agent_used="herd (no herd-agent beside $HERD)"
if [ -x "$agent_src" ]; then
	cp "$agent_src" "$work/herd-agent"
	agent_used=herd-agent
fi
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
        max: $((BIG > 100 ? BIG : 100))
EOF
"$HERD" apply -f "$work/bp/bench.yaml" >/dev/null

# hosts_json: the live hosts of the group, as "state created_ms ready_after_ms launch_ms" lines.
hosts_lines() {
	"$HERD" host ls --group bench/g --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		printf "%s %s %s %s\n", $_->{state}, $_->{created_ms},
			$_->{ready_after_ms} // "-", $_->{launch_ms} // "-" for @{$d->{items}}'
}

# hosts_count [STATE]: sets count to the number of the group's live hosts (in
# STATE), read from the list's "total" with bash's own /dev/tcp: a poll
# starts no process (a `herd host ls | perl` poll cost ~20 ms of CPU, taken
# from the hosts being measured on a 2-core machine; the reference's wait
# costs it nothing comparable). 1 on no answer.
hosts_count() {
	local body=
	count=
	exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
	printf 'GET /v1/hosts?cluster=bench&group=g&limit=1%s HTTP/1.0\r\nAuthorization: Bearer %s\r\n\r\n' \
		"${1:+&state=$1}" "$HERD_TOKEN" >&3
	IFS= read -r -d '' body <&3 || true
	exec 3<&-
	[[ $body =~ \"total\":([0-9]+) ]] || return 1
	count=${BASH_REMATCH[1]}
}

# pause: sleeps POLL without starting a process (read times out on a FIFO
# nobody writes).
mkfifo "$work/tick"
exec 4<>"$work/tick"
pause() { read -r -t "$POLL" -u 4 _ || true; }

# herd_trial N: scales 0 -> N, waits for N ready, prints "total_ms launch_ms
# ready_after_ms" (the last two: medians over the N hosts), then scales to 0
# and waits until the hosts are gone.
herd_trial() {
	local n=$1 t0 lines deadline
	t0=$(now_ms)
	"$HERD" group scale bench/g "$n" >/dev/null
	deadline=$((SECONDS + TRIAL_S))
	while ! { hosts_count ready && [ "$count" -eq "$n" ]; }; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "hosts: $n host(s) not ready after $TRIAL_S s:" >&2
			hosts_lines | awk '{ print $1 }' | sort | uniq -c >&2
			return 1
		fi
		pause
	done
	lines=$(hosts_lines)
	# the server's own timestamps: no polling delay in the figure
	awk -v t0="$t0" '{ r = $2 + $3; if (r > m) m = r } END { print m - t0 }' <<<"$lines"
	awk '{ print $4 }' <<<"$lines" | median
	awk '{ print $3 }' <<<"$lines" | median
	"$HERD" group scale bench/g 0 >/dev/null
	deadline=$((SECONDS + TRIAL_S))
	while ! { hosts_count && [ "$count" -eq 0 ]; }; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "hosts: hosts not terminated after $TRIAL_S s" >&2
			return 1
		fi
		pause
	done
}

# A first host makes the bridge and warms caches: not counted.
herd_trial 1 >/dev/null

# --- the reference ----------------------------------------------------------

ip link add "$ref_br" type bridge
ip addr add "$ref_net.1/22" dev "$ref_br"
ip link set "$ref_br" up

# ref_addr I: the Ith host's address in the reference's /22.
ref_addr() { echo "198.19.$((octet + ($1 + 1) / 256)).$((($1 + 1) % 256))"; }

# ip_trial N: N hosts, one after another, as the local provider makes them:
# a netns with a veth on the bridge (peer made inside as eth0), lo and eth0
# up, an address and a default route (two `ip -batch` processes), then one
# process in new PID/UTS/mount namespaces inside that netns (`unshare`),
# which says it started; prints ms until all N have.
ip_trial() {
	local n=$1 t0 t1 i ns v
	t0=$(now_ms)
	for i in $(seq "$n"); do
		ns=$ref-$i v=${ref}v$i
		ip -batch - <<-EOF
			netns add $ns
			link add $v type veth peer name eth0 netns $ns
			link set $v master $ref_br up
		EOF
		ip -n "$ns" -batch - <<-EOF
			link set lo up
			link set eth0 up
			addr add $(ref_addr "$i")/22 dev eth0
			route add default via $ref_net.1
		EOF
		# shellcheck disable=SC2016  # $1 is the inner shell's, on purpose
		nsenter --net="/run/netns/$ns" unshare --pid --uts --mount --fork --kill-child \
			sh -c ': >"$1"; exec sleep 600' sh "$work/ref-up.$i" </dev/null >/dev/null 2>&1 &
		ref_pids+=($!)
	done
	while [ "$(find "$work" -maxdepth 1 -name 'ref-up.*' | grep -c .)" -lt "$n" ]; do
		sleep 0.001
	done
	t1=$(now_ms)
	ref_clean
	echo $((t1 - t0))
}

# series N TRIALS: herd and the reference alternated, TRIALS each; prints
# "herd_median herd_launch herd_ready ref_median" then the herd and the
# reference trials ("a,b,c" each).
series() {
	local n=$1 totals=() launches=() readies=() refs=() out
	for _ in $(seq "$2"); do
		sleep 0.5   # settle: see the header
		out=$(herd_trial "$n")
		totals+=("$(sed -n 1p <<<"$out")")
		launches+=("$(sed -n 2p <<<"$out")")
		readies+=("$(sed -n 3p <<<"$out")")
		sleep 0.5
		refs+=("$(ip_trial "$n")")
	done
	echo "$(printf '%s\n' "${totals[@]}" | median) $(printf '%s\n' "${launches[@]}" | median)" \
		"$(printf '%s\n' "${readies[@]}" | median) $(printf '%s\n' "${refs[@]}" | median)" \
		"$(IFS=,; echo "${totals[*]}") $(IFS=,; echo "${refs[*]}")"
}

# --- run and print ------------------------------------------------------------

read -r h1 h1_launch h1_ready i1 h1_all i1_all < <(series 1 "$TRIALS_1")
read -r h20 h20_launch h20_ready i20 h20_all i20_all < <(series "$BIG" "$TRIALS_20")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo "hosts: \`herd group scale\` -> all new agents ready (empty init script), median ms"
echo "       next to ip -batch + unshare making the same netns + veth + bridge port + address"
echo "       + route + one process per host, hosts one after another (trials alternated);"
echo "       hosts run $agent_used"
printf '  %-10s herd %6s ms   ref %6s ms   ratio %sx   (per host: launch %s ms, created->ready %s ms)\n' \
	"1 host" "$h1" "$i1" "$(ratio "$h1" "$i1")" "$h1_launch" "$h1_ready"
printf '  %-10s herd %6s ms   ref %6s ms   ratio %sx   (per host: launch %s ms, created->ready %s ms)\n' \
	"$BIG hosts" "$h20" "$i20" "$(ratio "$h20" "$i20")" "$h20_launch" "$h20_ready"
echo "  trials: herd 1: $h1_all | ref 1: $i1_all | herd $BIG: $h20_all | ref $BIG: $i20_all"
