#!/usr/bin/env bash
# shellcheck disable=SC2016  # perl code in single quotes, on purpose
# bench/scale.sh - time from the push that carries the crossing sample to
# the group's desired size changing, over TRIALS (>= 50) trials, printed
# next to the push interval. Each trial: both hosts report 10, the group is
# set back to 2; then both report 40 and the policy (avg(busy) > 32, +1)
# fires. The crossing sample's time is the timestamp of the round that first
# holds 40 on every host (the agent stamps and pushes it at that instant);
# the decision's time is its activity's. Needs root (local hosts).
set -euo pipefail
HERD=${HERD_BIN:-$(dirname "$0")/../build/herd}
TRIALS=${BENCH_SCALE_TRIALS:-50}
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" != 0 ]; then echo "scale: skipped (needs root for local hosts)"; exit 0; fi
work=$(mktemp -d /tmp/herd-bench-scale.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	"$HERD" server --data "$work/data" --teardown >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
port=$((20000 + RANDOM % 12000))
# shellcheck source=bench/free-cidr.bash
. "$(dirname "$0")/free-cidr.bash"
cidr=$(free_cidr 24)
"$HERD" server --data "$work/data" --listen "127.0.0.1:$port" --push-interval 1s \
	--log-level warn 2>"$work/server.log" &
pid=$!
export HERD_URL="http://127.0.0.1:$port"
for _ in $(seq 50); do curl -sf "$HERD_URL/healthz" >/dev/null && break; sleep 0.1; done
export HERD_TOKEN
HERD_TOKEN=$(cat "$work/data/admin.token")
sed "s|CIDR|$cidr|" "$here/fixtures/scale.yaml" >"$work/scale.yaml"
"$HERD" apply -f "$work/scale.yaml" >/dev/null

jq_() { perl -MJSON::PP -e "my \$d = decode_json(join '', <STDIN>); $1"; }
ready_ids() {
	"$HERD" host ls --group bench/node --json |
		jq_ 'print join(" ", map { $_->{id} } grep { $_->{state} eq "ready" } @{$d->{items}})'
}
desired() { "$HERD" group show bench/node --json | jq_ 'print $d->{desired}'; }
set_all() { for id in $(ready_ids); do echo "$1" >"$work/data/hosts/$id/busy"; done; }
wait_until() { # wait_until SECONDS CMD...
	local end=$((SECONDS + $1)); shift
	until "$@"; do [ $SECONDS -lt $end ] || return 1; sleep 0.05; done
}
live_count() { "$HERD" host ls --group bench/node --json | jq_ 'print scalar @{$d->{items}}'; }
# two ready hosts and no third one still leaving (its samples would count in
# the crossing query, not in the autoscaler's aggregate)
two_ready() { [ "$(ready_ids | wc -w)" = 2 ] && [ "$(live_count)" = 2 ] && [ "$(desired)" = 2 ]; }
grown() { [ "$(desired)" = 3 ]; }

lat=()
missed=0
for t in $(seq "$TRIALS"); do
	settle() { # back to 2 hosts reporting 10 (a round of 40s may still scale out once)
		set_all 10
		[ "$(desired)" = 2 ] || "$HERD" group scale bench/node 2 >/dev/null
		two_ready
	}
	wait_until 60 settle || { echo "scale: trial $t: group did not settle"; exit 1; }
	set_all 10
	sleep 1.5
	# a round still carrying 40 may have scaled out again meanwhile: start over
	settle || wait_until 60 settle || { echo "scale: trial $t: group did not settle"; exit 1; }
	sleep 1.5
	[ "$(desired)" = 2 ] || { missed=$((missed + 1)); continue; }
	since=$(($(date +%s%3N) - 200))
	set_all 40
	wait_until 30 grown || { echo "scale: trial $t: no scale-out"; exit 1; }
	act=$("$HERD" activity ls --group bench/node --json | jq_ '
		my @a = grep { $_->{kind} eq "scale_out" && $_->{cause} eq "policy:grow" } @{$d->{items}};
		print $a[-1]{ts_ms}')
	# the round that first had 40 on both hosts
	cross=$(curl -sf -H "Authorization: Bearer $HERD_TOKEN" \
		"$HERD_URL/v1/metrics/query?metric=busy&group=node&cluster=bench&agg=min&from=$since&step=1s" |
		jq_ 'for my $p (@{$d->{points}}) {
		       if ($p->{series} >= 2 && $p->{value} ne "NaN" && $p->{value} >= 40) { print $p->{ts_ms}; last } }')
	if [ -n "$cross" ] && [ -n "$act" ] && [ "$act" -ge "$since" ]; then
		lat+=($((act - cross)))
	else
		missed=$((missed + 1))
	fi
done
printf '%s\n' "${lat[@]}" | sort -n >"$work/lat"
n=$(wc -l <"$work/lat")
[ "$n" -gt 0 ] || { echo "scale: no measurement"; exit 1; }
med=$(sed -n "$(((n + 1) / 2))p" "$work/lat")
p99=$(sed -n "$(((n * 99 + 99) / 100))p" "$work/lat")
echo "scale: push carrying the crossing sample -> desired changed, $n trials ($missed without an identifiable crossing round)"
echo "  median ${med} ms, p99 ${p99} ms, next to a push interval of 1000 ms (target: median <= 1000 ms)"
