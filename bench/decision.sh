#!/usr/bin/env bash
# shellcheck disable=SC2016  # perl code in single quotes, on purpose
# bench/decision.sh - push -> decision latency under load (issue 15: <= 1 s
# at 10,000 agents). For each N (DECISION_COUNTS, default "100 1000"): a
# fresh server (--push-interval DECISION_INTERVAL) and fake QingCloud
# (--instances none), groups bench/sim0, sim1, ... of at most 1,000 hosts
# (GROUP_MAX_SIZE) each, N hosts in all, launched by the server, and `herd bench agents` playing the N agents (join, heartbeats,
# pushes every DECISION_INTERVAL, parked long-polls) with a step metric: the
# first agent pushes step=100 in every odd period of DECISION_STEP (the
# others, and it in even periods, push step=0). Each group has one policy,
# `max(step) > 50, +1, mode: shadow`: the push that first carries 100 makes
# its condition true, and the autoscaler's decision is the policy's
# activity (shadow: `scale_blocked` "shadow mode: would scale out", recorded
# when the evaluation's reason changes). Shadow, because an action here would
# launch a host that never boots (--instances none) and a launching host
# blocks every later action (docs/autoscaling.md, guard 3): shadow is the
# first guard, after the window, the round rule and the condition, so the
# decision is taken at the instant an acting policy's would be; what it does
# not time is the action's own transaction. Per high period (a trial):
#   latency = ts_ms of the first activity of the policy at or after the send
#             time of the first push carrying 100 (printed by the bench, same
#             machine clock), minus that send time.
# DECISION_REMOTE_WRITE=URL adds a remote_write of every push to URL (a
# dead one shows whether a remote that is down slows the decision).
# DECISION_ALIGNED=1: the agents push at the multiples of the interval on
# the wall clock, as the real agent does (every agent at once); default:
# each agent every interval +-10 % (pushes spread out). DECISION_EDGE=1:
# the first agent pushes at once when its level crosses a threshold of its
# agent config (`herd bench agents --edge`: the agent's own detector), as
# the real agent with edge-triggered pushes. Besides push -> decision, each
# trial's change -> decision is timed:
#   change    = ts_ms of that activity minus the instant the first agent's
#               level changed (the start of its high period: the simulated
#               monitor sample), so it includes the wait for the push.
# DECISION_STORE=DSN: the server keeps its store there (`--store DSN`, e.g.
# an empty PostgreSQL database; one N only, since each N needs an empty
# store); default: SQLite in the data directory.
# DECISION_STEP_AGENT=first|last (default first): which agent pushes the
# step, the first of the configs or the last; aligned, every round's pushes
# are sent in config order, so first is the round's first push and last its
# last (the decision then waits for the whole round to be taken in).
# Prints the median and max per N of both. Needs the fake QingCloud; no root.
set -euo pipefail
cd "$(dirname "$0")/.."
HERD=$(realpath "${HERD_BIN:-build/herd}")
FAKE=$(realpath "${FAKE_QC_BIN:-build/fake-qingcloud}")
INTERVAL=${DECISION_INTERVAL:-5s}
STEP=${DECISION_STEP:-15}
TRIALS=${DECISION_TRIALS:-4}
counts=${DECISION_COUNTS:-100 1000}
aligned=()
[ "${DECISION_ALIGNED:-0}" = 1 ] && aligned=(--aligned)
edge=()
[ "${DECISION_EDGE:-0}" = 1 ] && edge=(--edge)
step_agent=${DECISION_STEP_AGENT:-first}
store=()
if [ -n "${DECISION_STORE:-}" ]; then
	store=(--store "$DECISION_STORE")
	[ "$(wc -w <<<"$counts")" = 1 ] || { echo "decision: DECISION_STORE takes one N (DECISION_COUNTS='$counts')" >&2; exit 1; }
fi

[ -x "$FAKE" ] || { echo "decision: skipped (no $FAKE: make build/fake-qingcloud)"; exit 0; }
work=$(mktemp -d /tmp/herd-bench-decision.XXXXXX)
spid='' fpid='' bpid=''
stop_all() {
	for p in $bpid $spid $fpid; do kill "$p" 2>/dev/null || true; done
	for p in $bpid $spid $fpid; do wait "$p" 2>/dev/null || true; done
	bpid='' spid='' fpid=''
}
cleanup() {
	stop_all
	[ -n "${DECISION_KEEP:-}" ] && { echo "decision: kept $work" >&2; return; }
	rm -rf "$work"
}
trap cleanup EXIT
die() { echo "decision: FAILED: $*" >&2; exit 1; }
free_port() { echo $((20000 + RANDOM % 12000)); }

# configs LOG: one agent config (JSON) a line, from RunInstances' user data
# (as bench/agents.sh reads them).
configs() {
	tools/userdata-configs.sh "$1"
}
ran() { grep -c '"action":"RunInstances".*"ret_code":0[,}]' "$1" || true; }

blueprint() { # blueprint N FAKE_URL
	local left=$1 g=0 size
	cat <<EOF
accounts:
  - name: sim-qc
    driver: qingcloud
    zone: pek3a
    access_key_id: QYBENCHAGENTS
    secret_file: $work/secret
    endpoint: $2
networks:
  - name: simnet
    account: sim-qc
    cidr: 198.$((18 + RANDOM % 2)).0.0/16
templates:
  - name: simt
    account: sim-qc
    network: simnet
    image: img-sim
    instance_type: c1m1
clusters:
  - name: bench
    groups:
EOF
	# the step agent is the first config, in whichever group: every group
	# has the policy, and a full group (1,000) records "at its max" instead
	while [ "$left" -gt 0 ]; do
		size=$((left < 1000 ? left : 1000))
		cat <<EOF
      - name: sim$g
        template: simt
        size: $size
        max: $((size < 1000 ? size + 1 : 1000))
        max_provision_time: 1h
        policies:
          - name: step-up
            when: max(step) > 50
            adjust: +1
            cooldown: 0s
            mode: shadow
EOF
		left=$((left - size)) g=$((g + 1))
	done
	# DECISION_REMOTE_WRITE=URL: every push also goes to a remote_write
	# queue (issue 20: a remote that is down must not slow the decision)
	if [ -n "${DECISION_REMOTE_WRITE:-}" ]; then
		cat <<EOF
remote_writes:
  - name: bench-remote
    url: $DECISION_REMOTE_WRITE
EOF
	fi
}

# latencies BENCH_OUT ACTIVITIES_JSON CHANGES: one line per high period:
# "sent_ms decision_ms latency_ms reason" (latency "-" when no decision),
# and into CHANGES "changed_ms decision_ms latency_ms".
latencies() {
	perl -MJSON::PP -e '
		my ($out, $acts, $chg) = @ARGV;
		open my $f, "<", $out or die; my @steps;
		open my $fc, ">", $chg or die;
		while (<$f>) { push @steps, [$1, $2, $3] if /^step: n=\d+ level=(\w+) value=\S+ sent_ms=(\d+) changed_ms=(\d+)/ }
		open my $fa, "<", $acts or die; my $d = decode_json(join "", <$fa>);
		my @acts = sort { $a->{ts_ms} <=> $b->{ts_ms} } grep {
			($_->{kind} eq "scale_blocked" && $_->{cause} eq "step-up") ||
			($_->{kind} eq "scale_out" && $_->{cause} eq "policy:step-up") } @{$d->{items}};
		for my $i (0 .. $#steps) {
			next unless $steps[$i][0] eq "high";
			my ($t, $end) = ($steps[$i][1], $i < $#steps ? $steps[$i + 1][1] : 9e15);
			my ($hit) = grep { $_->{ts_ms} >= $t && $_->{ts_ms} < $end } @acts;
			if ($hit) { (my $r = $hit->{reason} // "") =~ s/\s+/ /g;
				printf "%d %d %d %s\n", $t, $hit->{ts_ms}, $hit->{ts_ms} - $t, $r;
				printf $fc "%d %d %d\n", $steps[$i][2], $hit->{ts_ms}, $hit->{ts_ms} - $steps[$i][2] }
			else { printf "%d - - no decision in this period\n", $t;
				printf $fc "%d - -\n", $steps[$i][2] }
		}' "$1" "$2" "$3"
}

umask 077
printf 'DECISION-%s%s\n' "$RANDOM" "$RANDOM" >"$work/secret"
umask 022
rows=()
for n in $counts; do
	d=$work/n$n
	mkdir -p "$d"
	fport=$(free_port)
	furl="http://127.0.0.1:$fport/iaas/"
	"$FAKE" --listen "127.0.0.1:$fport" --state-dir "$d/fake" --access-key-id QYBENCHAGENTS \
		--secret-file "$work/secret" --zone pek3a --instances none --pending-ms 0 \
		--job-ms 0 --quota-instances $((n + 10)) --call-log "$d/calls.log" \
		>/dev/null 2>"$d/fake.log" &
	fpid=$!
	port=$(free_port)
	export HERD_URL="http://127.0.0.1:$port"
	"$HERD" server --data "$d/data" --listen "127.0.0.1:$port" --advertise-url "$HERD_URL" \
		--push-interval "$INTERVAL" --log-level warn --max-conns-per-addr $((2 * n + 256)) \
		"${store[@]}" 2>"$d/server.log" &
	spid=$!
	for _ in $(seq 100); do curl -sf "$HERD_URL/healthz" >/dev/null && curl -s -o /dev/null "$furl" && break; sleep 0.1; done
	HERD_TOKEN=$(cat "$d/data/admin.token")
	export HERD_TOKEN
	printf '%s\n' "$HERD_TOKEN" >"$d/token"
	blueprint "$n" "$furl" >"$d/bp.yaml"
	"$HERD" apply -f "$d/bp.yaml" >/dev/null
	end=$((SECONDS + 1200))
	until [ "$(ran "$d/calls.log")" -ge "$n" ]; do
		[ $SECONDS -lt $end ] || die "N=$n: the server launched $(ran "$d/calls.log") hosts in 1200 s"
		sleep 0.2
	done
	configs "$d/calls.log" >"$d/configs"
	[ "$(wc -l <"$d/configs")" -ge "$n" ] || die "N=$n: $(wc -l <"$d/configs") agent configs in $n RunInstances"
	# the activities before the bench (launches, readiness) are not read:
	# only those after since_id, at most 5000 (refused below if the cap is hit)
	since=$(curl -sf -H "Authorization: Bearer $HERD_TOKEN" \
		"$HERD_URL/v1/activities?cluster=bench&limit=1" |
		perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>); print $d->{items}[-1]{id} // 0')
	# period 0 (low) is the ramp: the joins; then TRIALS high periods
	"$HERD" bench agents --configs "$d/configs" --count "$n" --interval "$INTERVAL" "${aligned[@]}" "${edge[@]}" \
		--duration "$((STEP * (2 * TRIALS + 1)))s" --token-file "$d/token" \
		--step-metric step --step-value 100 --step-every "${STEP}s" --step-agent "$step_agent" \
		>"$d/bench.out" 2>"$d/bench.err" &
	bpid=$!
	wait "$bpid" || die "N=$n: herd bench agents failed: $(tail -3 "$d/bench.err")"
	bpid=
	# group by group (each has at most 1,000 hosts, so its joins' activities
	# stay under the 5,000 a page), merged into one list
	: >"$d/acts.lines"
	for ((g = 0; g * 1000 < n; g++)); do
		curl -sf -H "Authorization: Bearer $HERD_TOKEN" \
			"$HERD_URL/v1/activities?cluster=bench&group=sim$g&since_id=$since&limit=5000" >"$d/acts-$g.json"
		[ "$(perl -MJSON::PP -e 'print scalar @{decode_json(join "", <STDIN>)->{items}}' <"$d/acts-$g.json")" -lt 5000 ] ||
			die "N=$n: 5000 activities or more in sim$g during the bench: some trials' decisions may be cut off"
		cat "$d/acts-$g.json" >>"$d/acts.lines"
	done
	perl -MJSON::PP -e 'my @i; while (<STDIN>) { push @i, @{decode_json($_)->{items}} }
		print encode_json({ items => \@i })' <"$d/acts.lines" >"$d/acts.json"
	latencies "$d/bench.out" "$d/acts.json" "$d/chg" >"$d/lat"
	stop_all
	total=$(grep '^total:' "$d/bench.out")
	kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$total"; }
	echo "decision: N=$n (bench: $total)" >&2
	sed 's/^/  trial: /' "$d/lat" >&2
	sed 's/^/  change: /' "$d/chg" >&2
	awk '$3 != "-" {print $3}' "$d/lat" | sort -n >"$d/ms"
	k=$(wc -l <"$d/ms")
	miss=$(($(wc -l <"$d/lat") - k))
	med=- max=-
	if [ "$k" -gt 0 ]; then
		med=$(sed -n "$(((k + 1) / 2))p" "$d/ms")
		max=$(tail -1 "$d/ms")
	fi
	awk '$3 != "-" {print $3}' "$d/chg" | sort -n >"$d/cms"
	ck=$(wc -l <"$d/cms")
	cmed=- cmax=-
	if [ "$ck" -gt 0 ]; then
		cmed=$(sed -n "$(((ck + 1) / 2))p" "$d/cms")
		cmax=$(tail -1 "$d/cms")
	fi
	rows+=("$n|$k|$miss|$med|$max|$(tr '\n' ' ' <"$d/ms")|$(kv pushes_ok)/$(kv pushes_failed)|$(kv push_p50_ms)/$(kv push_p99_ms)|$cmed/$cmax")
done
pf() { awk -v v="$1" 'BEGIN { if (v == "-") print "n/a"; else print (v + 0 <= 1000 ? "pass" : "FAIL") }'; }
echo "push -> decision: server --push-interval $INTERVAL, agents push every $INTERVAL ($([ ${#aligned[@]} -gt 0 ] && echo aligned, as the agent || echo '+-10 %, spread')), edge pushes $([ ${#edge[@]} -gt 0 ] && echo on || echo off), step every ${STEP} s by the $step_agent agent; $(nproc) cores"
printf '%-6s %-8s %-8s %-22s %-12s %-30s %-14s %-15s %-15s\n' agents trials missed "median ms (<=1000)" "max ms" "all ms" "pushes ok/fail" "push p50/p99 ms" "change->dec med/max ms"
for r in "${rows[@]}"; do
	IFS='|' read -r n k miss med max all pushes plat chg <<<"$r"
	printf '%-6s %-8s %-8s %-22s %-12s %-30s %-14s %-15s %-15s\n' "$n" "$k" "$miss" "$med ($(pf "$med"))" "$max" "$all" "$pushes" "$plat" "$chg"
done
echo "machine load average at the end (other work shares the cores): $(cut -d" " -f1-3 /proc/loadavg)"
