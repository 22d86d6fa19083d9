#!/usr/bin/env bash
# shellcheck disable=SC2016  # perl code in single quotes, on purpose
# demo.sh - the seed's story on this machine, narrated: a master with a work
# queue, three nodes that find it, 150 long-running items for 3 x 40 slots
# (120 running, 30 waiting), avg(busy) crossing 32, a fourth node joining
# and taking the 30, then the load ending and a node drained and removed.
# Started by `make demo` (as root: hosts are network namespaces). Cleans up
# everything on exit or Ctrl-C; DEMO_KEEP=1 leaves it running.
#
# HERD_PROVIDER=qingcloud runs the same story on the fake QingCloud
# (build/fake-qingcloud --instances netns): the hosts are instances booted
# from RunInstances' user data (herd's bootstrap), the blueprint is
# tests/e2e/fixtures/qingcloud/queue.yaml (the load balancer is a QingCloud
# load balancer in the VxNet: the items go to the address `herd lb show
# queue` reports, port 6379, which this machine reaches over the VxNet's
# bridge), and the server also listens on 0.0.0.0:PORT2, the port the
# account's server_url gives the instances (at the router's address).
set -euo pipefail

HERD=${HERD_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/herd}
here=$(cd "$(dirname "$0")" && pwd)
PROVIDER=${HERD_PROVIDER:-local}
FAKE=${FAKE_QC_BIN:-$(dirname "$HERD")/fake-qingcloud}
case "$PROVIDER" in
local) ;;
qingcloud)
	if [ ! -x "$FAKE" ]; then
		echo "demo: HERD_PROVIDER=qingcloud needs the fake QingCloud: make build/fake-qingcloud" >&2
		exit 1
	fi ;;
*)
	echo "demo: HERD_PROVIDER: want local or qingcloud, not '$PROVIDER'" >&2
	exit 1 ;;
esac
ITEMS=${DEMO_ITEMS:-150}
ITEM_SECONDS=${DEMO_ITEM_SECONDS:-45}
TIMEOUT=${DEMO_TIMEOUT:-420}

if [ "$(id -u)" != 0 ]; then
	echo "demo: needs root (hosts are network namespaces on this machine)" >&2
	exit 1
fi

work=$(mktemp -d /tmp/herd-demo.XXXXXX)
port=$((20000 + RANDOM % 12000))
lbport=$((20000 + RANDOM % 12000))
while [ "$lbport" = "$port" ]; do lbport=$((20000 + RANDOM % 12000)); done
# a /24 of 198.18.0.0/15 this machine does not route yet (herd refuses a
# local network that overlaps one: its bridge would take that traffic)
for _ in $(seq 10); do
	cidr="198.$((18 + RANDOM % 2)).$((RANDOM % 256)).0/24"
	[ -z "$(ip -4 route show table all root "$cidr" 2>/dev/null)" ] && break
done
server_pid=
fake_pid=
# where the items are pushed: the load balancer (local: 127.0.0.1:LBPORT;
# qingcloud: the QingCloud LB's address, once the master is its member)
qaddr=127.0.0.1
qport=$lbport
start_s=$SECONDS

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "${DEMO_KEEP:-}" ] && [ "$rc" = 0 ]; then
		echo
		echo "DEMO_KEEP=1: still running. Console: $HERD_URL/  token: $HERD_TOKEN"
		echo "Stop it with: kill $server_pid; $HERD server --data $work/data --teardown;${fake_pid:+ kill $fake_pid;} rm -rf $work"
		return
	fi
	echo
	echo "== cleaning up"
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		"$HERD" delete -f "$work/cluster.yaml" --timeout 60s >/dev/null 2>&1 || true
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	"$HERD" server --data "$work/data" --teardown >/dev/null 2>&1 || true
	if [ -n "$fake_pid" ]; then
		# SIGTERM: the fake removes its namespaces, bridges and haproxy
		kill "$fake_pid" 2>/dev/null || true
		wait "$fake_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
	echo "   hosts, namespaces, bridge, HAProxy and data removed"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '[%4ss] %s\n' "$((SECONDS - start_s))" "$*"; }
api() { curl -sf -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL$1"; }
pj() { perl -MJSON::PP -e "my \$d = decode_json(join '', <STDIN>); $1"; }
# qingcloud: the LB `queue` has an address and its member (the master) is up
lb_serving() {
	"$HERD" lb show queue --json 2>/dev/null | pj '
		exit !($d->{engine}{address} && @{$d->{members}} == 1 && $d->{members}[0]{status} eq "up")'
}

# --- start ----------------------------------------------------------------
mkdir -p "$work/scripts"
cp "$here"/scripts/*.sh "$work/scripts/"
extra_listen=()
if [ "$PROVIDER" = qingcloud ]; then
	fqport=$((20000 + RANDOM % 12000))
	port2=$((20000 + RANDOM % 12000))
	while [ "$fqport" = "$port" ] || [ "$port2" = "$port" ] || [ "$port2" = "$fqport" ]; do
		fqport=$((20000 + RANDOM % 12000))
		port2=$((20000 + RANDOM % 12000))
	done
	(umask 077 && printf 'DEMO-%s%s\n' "$RANDOM" "$RANDOM" >"$work/qc-secret")
	"$FAKE" --listen "127.0.0.1:$fqport" --state-dir "$work/fq" --access-key-id QYDEMO \
		--secret-file "$work/qc-secret" --zone pek3a --instances netns --pending-ms 1000 \
		--job-ms 600 --call-log "$work/qc-calls.log" >/dev/null 2>"$work/fake.log" &
	fake_pid=$!
	for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$fqport/iaas/" && break; sleep 0.1; done
	sed -e "s|CIDR|$cidr|" -e "s|KEY_ID|QYDEMO|" -e "s|SECRET_FILE|$work/qc-secret|" \
		-e "s|ENDPOINT|http://127.0.0.1:$fqport/iaas/|" \
		-e "s|SERVER_URL|http://${cidr%.0/24}.1:$port2|" \
		"$here/../../tests/e2e/fixtures/qingcloud/queue.yaml" >"$work/cluster.yaml"
	# plain HTTP on every address (--tls never, logged as insecure): the
	# fake's instances are this machine's namespaces
	extra_listen=(--listen "0.0.0.0:$port2" --tls never)
else
	sed -e "s|CIDR|$cidr|" -e "s|LISTEN|127.0.0.1:$lbport|" "$here/cluster.yaml" >"$work/cluster.yaml"
fi
"$HERD" server --data "$work/data" --listen "127.0.0.1:$port" "${extra_listen[@]}" --push-interval 2s \
	>"$work/server.log" 2>&1 &
server_pid=$!
export HERD_URL="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$HERD_URL/healthz" >/dev/null && break; sleep 0.1; done
export HERD_TOKEN
HERD_TOKEN=$(cat "$work/data/admin.token")

where="network  $cidr, queue load balancer on 127.0.0.1:$lbport"
bp_shown=examples/queue/cluster.yaml
if [ "$PROVIDER" = qingcloud ]; then
	where="provider qingcloud: the fake at http://127.0.0.1:$fqport/iaas/ (calls: $work/qc-calls.log)
  network  $cidr, queue load balancer: a QingCloud LB in the VxNet, port 6379 (herd lb show queue)"
	bp_shown=tests/e2e/fixtures/qingcloud/queue.yaml
fi
cat <<EOF
herd demo: the seed's Kubernetes-on-a-cloud story, on this machine
  console  $HERD_URL/      (sign in with the token below)
  token    $HERD_TOKEN
  $where
  load     $ITEMS items of ${ITEM_SECONDS}s for nodes of 40 slots; rules: avg(busy) > 32 -> +1, min(busy) < 20 -> -1

EOF
say "herd apply -f $bp_shown"
"$HERD" apply -f "$work/cluster.yaml" | sed 's/^/         /'

# --- narration --------------------------------------------------------------
last_act=0
declare -A seen_ready=()
t_push=0 t_decision=0 t_ready4=0 t_node4_busy=0 t_scalein=0
victim='' pushed=0 scaled_out=0

activities() {
	api "/v1/activities?cluster=demo&since_id=$last_act&limit=500" | pj '
		for my $a (@{$d->{items}}) {
			next if $a->{kind} =~ /^(scale_nodata|launch)$/;
			next if $a->{kind} eq "scale_blocked" && $a->{reason} !~ /cooldown|capacity/;
			my $r = $a->{reason};
			$r = "policy $a->{cause}: $r" if $a->{kind} eq "scale_blocked";
			if ($a->{kind} eq "drained" && ($a->{inputs}{stdout} // "") ne "") {
				(my $o = $a->{inputs}{stdout}) =~ s/\s+$//; $o =~ s/\n/; /g; $r .= " (output: $o)";
			}
			print join("\x1f", $a->{id}, $a->{ts_ms}, $a->{kind}, $a->{host}, $r), "\n";
		}
		my @a = @{$d->{items}}; print join("\x1f", "#last", (@a ? $a[-1]{id} : 0)), "\n"'
}

status_line() {
	local busy waiting finished running
	busy=$(api "/v1/metrics/latest?metric=busy&group=node&cluster=demo" | pj '
		my %b; for my $s (@{$d->{items} // $d->{series} // []}) {
			my $h = $s->{host} // $s->{labels}{host}; $b{$h} = $s->{value} }
		print join(" ", map { "$_=$b{$_}" } sort { ($a =~ /(\d+)$/)[0] <=> ($b =~ /(\d+)$/)[0] } keys %b)' 2>/dev/null || true)
	waiting=$(redis-cli -h "$qaddr" -p "$qport" LLEN queue 2>/dev/null || echo "?")
	finished=$(redis-cli -h "$qaddr" -p "$qport" GET "done" 2>/dev/null || echo "?")
	running=0
	for kv in $busy; do running=$((running + ${kv#*=})); done
	say "busy per node: ${busy:-none yet} | $running running, $waiting waiting, ${finished:-0} done"
	BUSY=$busy
}

BUSY=''
tick=0
while :; do
	if [ $((SECONDS - start_s)) -gt "$TIMEOUT" ]; then
		say "the demo did not finish in ${TIMEOUT}s; server log: $work/server.log" >&2
		exit 1
	fi
	while IFS=$'\x1f' read -r id ts kind host reason; do
		if [ "$id" = "#last" ]; then
			[ "$ts" != 0 ] && last_act=$ts
			continue
		fi
		case "$kind" in
		host_ready)
			[ -n "${seen_ready[$host]:-}" ] && continue
			seen_ready[$host]=1
			say "host $host is ready"
			if [ "$host" = node-4 ]; then t_ready4=$ts; fi ;;
		scale_out)
			say "SCALE OUT: $reason"
			if [ "$t_decision" = 0 ]; then t_decision=$ts; fi
			scaled_out=1 ;;
		scale_in)
			say "SCALE IN: $reason"
			if [ "$t_scalein" = 0 ]; then t_scalein=$ts; fi ;;
		drain) say "$reason" ;;
		drained) say "$reason" ;;
		host_terminated)
			say "host $host removed ($reason)"
			if [ -z "$victim" ] && [ "$t_scalein" != 0 ]; then victim=$host; fi ;;
		scale_blocked) say "$reason" ;;
		*) say "$kind $host: $reason" ;;
		esac
	done < <(activities)

	ready_nodes=$(api "/v1/hosts?cluster=demo&group=node" | pj 'print scalar grep { $_->{state} eq "ready" } @{$d->{items}}')
	if [ "$pushed" = 0 ] && [ "${ready_nodes:-0}" -ge 3 ] && [ -n "${seen_ready[master-1]:-}" ] &&
		{ [ "$PROVIDER" != qingcloud ] || lb_serving; }; then
		sleep 2
		if [ "$PROVIDER" = qingcloud ]; then
			qaddr=$("$HERD" lb show queue | sed -n 's/^address: \([0-9.]*\).*/\1/p')
			qport=6379
			say "pushing $ITEMS items of ${ITEM_SECONDS}s through the QingCloud load balancer ($qaddr:$qport, in the VxNet)"
		else
			say "pushing $ITEMS items of ${ITEM_SECONDS}s through the load balancer (127.0.0.1:$lbport)"
		fi
		sh "$here/scripts/load.sh" "$qaddr" "$qport" "$ITEMS" "$ITEM_SECONDS" | sed 's/^/         /'
		pushed=1
		t_push=$(date +%s%3N)
	fi
	if [ $((tick % 2)) = 0 ] && [ "$pushed" = 1 ]; then
		status_line
		if [ "$t_node4_busy" = 0 ] && [[ " $BUSY " == *" node-4="* ]] && [[ " $BUSY " != *" node-4=0 "* ]]; then
			t_node4_busy=$(date +%s%3N)
			say "node-4 runs work: the waiting items started on it"
		fi
	fi
	if [ -n "$victim" ]; then
		break
	fi
	tick=$((tick + 1))
	sleep 1
done

# --- summary -----------------------------------------------------------------
echo
echo "== timeline (herd activity ls --group node)"
"$HERD" activity ls --cluster demo --group node --json | pj '
	for my $a (@{$d->{items}}) {
		next unless $a->{kind} =~ /^(scale_out|scale_in|launch|host_ready|drain|drained|host_terminated|reclaim)$/;
		printf "  %s  %-16s %-8s %s\n", substr($a->{time}, 11, 12), $a->{kind}, $a->{host}, $a->{reason} }'
crossing=$(api "/v1/metrics/query?metric=busy&group=node&cluster=demo&agg=avg&from=$t_push&step=2s" | pj '
	for my $p (@{$d->{points}}) { if ($p->{value} ne "NaN" && $p->{value} > 32) { print $p->{ts_ms}; last } }' || true)
echo
echo "== summary"
printf '  %-48s %s\n' "scale-out" "3 -> 4 nodes, caused by avg(busy) crossing 32"
if [ "$PROVIDER" = qingcloud ]; then
	export QADDR=$qaddr
	printf '  %-48s %s\n' "RunInstances / TerminateInstances answered 0" "$(perl -MJSON::PP -ne '
		my $c = decode_json($_); $n{$c->{action}}++ unless $c->{ret_code};
		END { print $n{RunInstances} // 0, " / ", $n{TerminateInstances} // 0 }' "$work/qc-calls.log")"
	printf '  %-48s %s\n' "the master joined the QingCloud load balancer" "$(perl -MJSON::PP -ne '
		my $c = decode_json($_); next if $c->{ret_code};
		$a //= $. if $c->{action} eq "AddLoadBalancerBackends";
		if ($a && $c->{action} eq "UpdateLoadBalancers") {
			print "AddLoadBalancerBackends (call $a), then UpdateLoadBalancers (call $.); items pushed to $ENV{QADDR}:6379";
			last }' "$work/qc-calls.log")"
fi
if [ -n "$crossing" ] && [ "$t_decision" != 0 ]; then
	printf '  %-48s %s ms (the rule must hold for 6s: three 2s rounds)\n' "threshold crossing -> decision" "$((t_decision - crossing))"
fi
if [ "$t_ready4" != 0 ] && [ "$t_decision" != 0 ]; then
	printf '  %-48s %s ms\n' "decision -> node-4 ready" "$((t_ready4 - t_decision))"
fi
if [ "$t_node4_busy" != 0 ]; then
	printf '  %-48s %s\n' "node-4 ran the waiting items" "yes"
fi
printf '  %-48s %s\n' "scale-in" "a node drained (queue_drain.sh) and removed: $victim"
printf '  %-48s %ss\n' "demo time" "$((SECONDS - start_s))"
[ "$scaled_out" = 1 ] && [ "$t_node4_busy" != 0 ] && [ -n "$victim" ]
