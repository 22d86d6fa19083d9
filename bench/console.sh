#!/usr/bin/env bash
# bench/console.sh - the console's speed (issue 8): time from navigation to
# the first chart drawn on a group page of 20 hosts with 1 h of data, in
# headless Chromium, median of 5 loads each with an empty cache; and the
# bytes that page transfers (target: under 150 KB, uPlot included), with
# the data it then asks the API for counted apart.
#
# The data: 20 real local hosts, and 1 h of a monitor's points (one every
# 5 s, 720 per host) pushed through the agents' own endpoint with each
# host's credential. An hour of real time is too long for a benchmark, so
# the bench backfills the past hour: its monitor's command never succeeds,
# so no agent pushes that series itself and the backfill stays in order.
#
# BENCH_CONSOLE_HOSTS=N past 50 (or BENCH_CONSOLE_SIM=1): the hosts are
# launched by the server on the fake QingCloud (--instances none: nothing
# boots), and the bench plays their agents' first steps itself, as a booting
# machine would with its user data: join with the one-time token, report
# ready, then the same backfill with the credential the join answered (the
# group has unhealthy_after: 0s, so hosts that then fall silent stay). Past
# 20 hosts the page charts the group's aggregates (min/avg/max), so the
# reference draws those three answers. BENCH_CONSOLE_WEB=DIR serves another
# console (e.g. an older web/) to compare; BENCH_CONSOLE_SELECTOR then says
# what its first chart is.
# Besides the page, it prints the sizes of one monitor's latest values for
# the whole group (what the page asked before issue 15) and for the first
# page's 50 hosts (GET /v1/metrics/latest?hosts=, what it asks now).
# Reference, same run, same browser: a bare page drawing the same answer
# with uPlot from a static file (no app, no API round trips); the ratio is
# the console's cost over drawing alone. Root only (network namespaces);
# everything made is removed by the trap. A benchmark, not a test.
set -euo pipefail
HERD=$(realpath "${HERD_BIN:-$(dirname "$0")/../build/herd}")
REPO=$(cd "$(dirname "$0")/.." && pwd)
HOSTS=${BENCH_CONSOLE_HOSTS:-20}
SIM=${BENCH_CONSOLE_SIM:-$([ "$HOSTS" -gt 50 ] && echo 1 || echo 0)}
WEB_SRC=${BENCH_CONSOLE_WEB:-$REPO/web}
FAKE=${FAKE_QC_BIN:-$REPO/build/fake-qingcloud}
PER_HOST_MAX=20   # web/js/pages/group.js: past this, aggregates only
RUNS=${BENCH_RUNS:-5}
SPAN_S=${BENCH_SPAN_S:-3600}
STEP_S=5

if [ "$SIM" = 1 ] && [ ! -x "$FAKE" ]; then
	echo "console: skipped (BENCH_CONSOLE_HOSTS=$HOSTS needs the fake QingCloud: make build/fake-qingcloud)"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "console: skipped (needs root for network namespaces)"
	exit 0
fi
if [ ! -x /usr/bin/chromium ] || [ ! -d "$REPO/web/node_modules/playwright-core" ] ||
	[ ! -f "$REPO/web/vendor/uPlot.iife.min.js" ]; then
	echo "console: skipped (needs chromium, and make web for playwright-core and uPlot)"
	exit 0
fi

work=$(mktemp -d /tmp/herd-bench-console.XXXXXX)
server_pid=
fake_pid=
cleanup() {
	set +e
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	# the teardown terminates the instances through the fake: it must still run
	[ -d "$work/data" ] && "$HERD" server --data "$work/data" --teardown >>"$work/server.log" 2>&1
	if [ -n "$fake_pid" ]; then
		kill "$fake_pid" 2>/dev/null
		wait "$fake_pid" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# The console's files, plus the reference page.
mkdir -p "$work/web"
(cd "$WEB_SRC" && tar --exclude=node_modules -cf - .) | tar -xf - -C "$work/web"
cat >"$work/web/bench.html" <<'EOF'
<!doctype html>
<html><head><meta charset="utf-8"><title>reference</title>
<link rel="stylesheet" href="/ui/vendor/uPlot.min.css">
<script src="/ui/vendor/uPlot.iife.min.js" defer></script>
<script type="module" src="/ui/bench.js"></script>
</head><body><div id="main"></div></body></html>
EOF
cat >"$work/web/bench.js" <<'EOF'
// The reference: the same answer, parsed, aligned and drawn by uPlot.
import { Chart } from './js/chart.js';
import { parseSeries } from './js/metrics.js';
const r = await (await fetch('/ui/bench-data.json')).json();
new Chart(document.getElementById('main'), { title: 'reference', metric: 'benchload' })
	.set(parseSeries(r), [], Number(new URLSearchParams(location.search).get('step')));
EOF

port=$((20000 + RANDOM % 30000))
url=http://127.0.0.1:$port
# simulated hosts are joined from here; local ones reach the server on their
# network's gateway, so only those get the default
advertise=()
[ "$SIM" != 1 ] || advertise=(--advertise-url "$url")
"$HERD" server --data "$work/data" --listen "127.0.0.1:$port" --web "$work/web" \
	"${advertise[@]}" --log-level warn >>"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.1; done
if ! curl -sf "$url/healthz" >/dev/null; then
	echo "console: the server did not start:" >&2
	tail -5 "$work/server.log" >&2
	exit 1
fi
tok=$(cat "$work/data/admin.token")
export HERD_URL=$url HERD_TOKEN=$tok

# shellcheck source=bench/free-cidr.bash
. "$(dirname "$0")/free-cidr.bash"
if [ "$HOSTS" -gt 250 ]; then
	cidr=$(free_cidr 20)
else
	cidr=$(free_cidr 24)
fi
if [ "$SIM" = 1 ]; then
	fq_port=$((20000 + RANDOM % 30000))
	[ "$fq_port" != "$port" ] || fq_port=$((port + 1))
	umask 077
	printf 'CONSOLE-%s%s\n' "$RANDOM" "$RANDOM" >"$work/fq.secret"
	umask 022
	"$FAKE" --listen "127.0.0.1:$fq_port" --state-dir "$work/fq" --access-key-id QYCONSOLEBENCH \
		--secret-file "$work/fq.secret" --zone pek3a --instances none --pending-ms 0 --job-ms 0 \
		--quota-instances $((HOSTS + 10)) --call-log "$work/fq.calls" >/dev/null 2>>"$work/fq.log" &
	fake_pid=$!
	for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$fq_port/iaas/" && break; sleep 0.1; done
	account="driver: qingcloud
    zone: pek3a
    access_key_id: QYCONSOLEBENCH
    secret_file: $work/fq.secret
    endpoint: http://127.0.0.1:$fq_port/iaas/"
	tmpl_extra="
    image: img-bench
    instance_type: c1m1"
	group_extra="
        unhealthy_after: 0s          # the bench plays the agents' join, not their heartbeats
        max_provision_time: 1h"
else
	account="driver: local"
	tmpl_extra=
	group_extra=
fi
cat >"$work/bench.yaml" <<EOF
accounts:
  - name: here
    $account
networks:
  - name: benchnet
    account: here
    cidr: $cidr
templates:
  - name: web
    account: here
    network: benchnet$tmpl_extra
monitors:
  - name: benchload
    command: cat /nonexistent/benchload
    interval: 5s
clusters:
  - name: bench
    groups:
      - name: web
        template: web
        size: $HOSTS
        max: $HOSTS$group_extra
        monitors: [benchload]
        policies:                     # drawn as a threshold; max = size, so it cannot act
          - name: grow
            when: avg(benchload) > 80
            adjust: +1
EOF
t_apply=$(date +%s%N)
"$HERD" apply -f "$work/bench.yaml" >/dev/null

# sim_join: the agents' first steps for the simulated hosts, as each would
# take them from its user data (RunInstances' userdata_value in the fake's
# call log: the base64 agent config inside the bootstrap script): join
# (POST /v1/agent/join), report ready; prints each host's credential.
sim_join() {
	perl -MJSON::PP -MMIME::Base64 -MHTTP::Tiny -e '
		my ($url, $log, $want) = @ARGV;
		my $http = HTTP::Tiny->new(keep_alive => 1, timeout => 30);
		my (%seen, @cfg);
		open my $f, "<", $log or die "no call log\n";
		while (<$f>) {
			my $c = eval { decode_json($_) } or next;
			next unless $c->{action} eq "RunInstances" && !$c->{ret_code};
			my $s = decode_base64($c->{params}{userdata_value} // next);
			next unless $s =~ /<<\x27HERD_EOF\x27[^\n]*\n(.*?)^HERD_EOF$/ms;
			my $cfg = eval { decode_json(decode_base64($1)) } or next;
			push @cfg, $cfg unless $seen{$cfg->{host_id}}++;
		}
		die scalar(@cfg) . " of $want hosts launched\n" if @cfg < $want;
		for my $cfg (@cfg) {
			my $r = $http->post("$url/v1/agent/join", { headers => { "content-type" => "application/json" },
				content => encode_json({ host_id => $cfg->{host_id}, join_token => $cfg->{join_token} }) });
			die "join: $r->{status} $r->{content}\n" unless $r->{success};
			my $cred = decode_json($r->{content})->{credential};
			$r = $http->post("$url/v1/agent/state", { headers => { "content-type" => "application/json",
				authorization => "Bearer $cred" }, content => q({"state":"ready"}) });
			die "state: $r->{status} $r->{content}\n" unless $r->{success};
			print "$cred\n";
		}' "$url" "$work/fq.calls" "$HOSTS"
}

launched() {
	[ -f "$work/fq.calls" ] && [ "$(grep -c '"RunInstances"' "$work/fq.calls")" -ge "$HOSTS" ]
}
if [ "$SIM" = 1 ]; then
	for _ in $(seq 6000); do launched && break; sleep 0.2; done
	sim_join >"$work/creds"
fi

ready() {
	"$HERD" host ls --group bench/web --json | perl -MJSON::PP -e '
		print scalar grep { $_->{state} eq "ready" } @{decode_json(join "", <STDIN>)->{items}}'
}
for _ in $(seq 600); do [ "$(ready)" -ge "$HOSTS" ] && break; sleep 0.2; done
ready_s=$(awk -v a="$t_apply" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
if [ "$(ready)" -lt "$HOSTS" ]; then
	echo "console: only $(ready) of $HOSTS hosts became ready" >&2
	exit 1
fi

has_metrics=0
curl -sf -H "Authorization: Bearer $tok" "$url/v1/endpoints" | grep -q '"/v1/metrics/query"' && has_metrics=1

t0=$(date +%s%N)
points=0
if [ "$has_metrics" = 1 ]; then
	# 1 h of points per host, 100 batches a request, with the host's own credential
	now_ms=$(($(date +%s) * 1000))
	if [ "$SIM" = 1 ]; then
		mapfile -t creds <"$work/creds"
	else
		mapfile -t creds < <(find "$work/data/hosts" -name credential.json -exec perl -MJSON::PP -e '
			local $/; open my $f, "<", $ARGV[0] or exit; print decode_json(<$f>)->{credential}, "\n"' {} \;)
	fi
	# one process, keep-alive: 1,000 hosts are ~8,000 requests
	printf '%s\n' "${creds[@]}" | perl -MHTTP::Tiny -e '
		my ($url, $now, $span, $step) = @ARGV;
		my $http = HTTP::Tiny->new(keep_alive => 1, timeout => 60);
		my $i = 0;
		while (my $cred = <STDIN>) {
			chomp $cred;
			$i++;
			my @b;
			my $send = sub {
				my $r = $http->post("$url/v1/agent/metrics", { headers => { "content-type" => "application/json",
					authorization => "Bearer $cred" }, content => "{\"batches\":[" . join(",", @b) . "],\"dropped\":0}" });
				die "push: $r->{status} $r->{content}\n" unless $r->{success};
				@b = ();
			};
			for (my $t = $now - $span * 1000; $t < $now; $t += $step * 1000) {
				my $v = sprintf "%.2f", 30 + 20 * sin($t / 600000 + $i) + ($t / 1000 % 7);
				push @b, qq({"ts_ms":$t,"monitors":[],"series":[{"name":"benchload","value":$v}]});
				$send->() if @b == 100;
			}
			$send->() if @b;
		}' "$url" "$now_ms" "$SPAN_S" "$STEP_S"
	points=$((${#creds[@]} * SPAN_S / STEP_S))
	load_s=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	step=$(((SPAN_S + 199) / 200))   # as the console asks (web/js/metrics.js stepFor)
	[ "$step" -ge "$STEP_S" ] || step=$STEP_S
	q="$url/v1/metrics/query?metric=benchload&cluster=bench&group=web&since=${SPAN_S}s&step=${step}s"
	if [ "$HOSTS" -gt "$PER_HOST_MAX" ]; then
		# what the page draws past PER_HOST_MAX hosts: the three aggregates
		to_ms=$(($(date +%s) / step * step * 1000))   # one step grid, as the page asks
		for a in avg min max; do
			curl -sf -H "Authorization: Bearer $tok" "$q&agg=$a&to=$to_ms" >"$work/agg-$a.json"
		done
		perl -MJSON::PP -e 'print encode_json({ series => [ map {
			local $/; open my $f, "<", $_ or die; my $d = decode_json(<$f>);
			{ name => "$d->{agg}(benchload)", points => $d->{points} } } @ARGV ] })' \
			"$work"/agg-{avg,min,max}.json >"$work/web/bench-data.json"
		selector='.chart[data-metric="benchload:group"][data-series="3"] canvas'
	else
		curl -sf -H "Authorization: Bearer $tok" "$q" >"$work/web/bench-data.json"
		selector=".chart[data-metric=\"benchload\"][data-series=\"$HOSTS\"] canvas"
	fi
	selector=${BENCH_CONSOLE_SELECTOR:-$selector}
	gzip -9 -n -c "$work/web/bench-data.json" >"$work/web/bench-data.json.gz"
	series=$(perl -MJSON::PP -e 'local $/; my $d = decode_json(<STDIN>);
		my $l = $d->{series} || $d->{items} || []; print scalar @$l' <"$work/web/bench-data.json")
	echo "console: $HOSTS hosts ready ${ready_s}s after apply$([ "$SIM" = 1 ] && echo " (fake QingCloud, joined by the bench)"); $points points of benchload pushed in ${load_s}s; the page's chart draws $series series"

	page() { # page NAME URL-PATH QUERY HASH SELECTOR
		HERD_URL=$url TOKEN=$tok URL_PATH=$2 QUERY=$3 PAGE=$4 SELECTOR=$5 RUNS=$RUNS \
			node "$REPO/bench/console.mjs" >"$work/$1.json"
	}
	# the per-host query on its own (what the page asks up to PER_HOST_MAX
	# hosts, and what it asked at any size before issue 15), and one aggregate
	qtime=$(curl -s -o /dev/null -w '%{size_download} %{time_total}' -H "Authorization: Bearer $tok" "$q")
	atime=$(curl -s -o /dev/null -w '%{size_download} %{time_total}' -H "Authorization: Bearer $tok" "$q&agg=avg")
	# the table's latest values of a monitor: the whole group's (what the
	# page asked before) and its page's 50 hosts' (hosts=, what it asks now)
	lq="$url/v1/metrics/latest?metric=benchload&cluster=bench&group=web"
	page_hosts=$(curl -sf -H "Authorization: Bearer $tok" "$url/v1/hosts?cluster=bench&group=web&limit=50" |
		perl -MJSON::PP -e 'local $/; print join ",", map { $_->{name} } @{decode_json(<STDIN>)->{items}}')
	ltime=$(curl -s -o /dev/null -w '%{size_download} %{time_total}' -H "Authorization: Bearer $tok" "$lq")
	lhtime=$(curl -s -o /dev/null -w '%{size_download} %{time_total}' -H "Authorization: Bearer $tok" \
		"$lq&hosts=$page_hosts")
	page herd / "?window=$SPAN_S" '#/group/bench/web' "$selector"
	page ref /ui/bench.html "?step=$step" '' '.chart.has-data canvas'
	perl -MJSON::PP -e '
		local $/;
		open my $f, "<", $ARGV[0]; my $h = decode_json(<$f>);
		open my $g, "<", $ARGV[1]; my $r = decode_json(<$g>);
		my ($n, $span, $runs) = @ARGV[2..4];
		printf "console: group page, %d hosts x %d min, first chart drawn (median of %d, empty cache)\n", $n, $span / 60, $runs;
		printf "  herd       %7.0f ms  (min %.0f, max %.0f)\n", $h->{median_ms}, $h->{min_ms}, $h->{max_ms};
		printf "  reference  %7.0f ms  (bare uPlot page drawing the same answer from a static file)\n", $r->{median_ms};
		printf "  ratio      %.2fx the reference\n", $h->{median_ms} / $r->{median_ms};
		printf "  page       %.1f KB transferred in %d requests, uPlot included (%.1f KB uncompressed); target 150 KB: %s\n",
			$h->{wire_bytes} / 1024, $h->{requests}, $h->{raw_bytes} / 1024, $h->{wire_bytes} < 150 * 1024 ? "under" : "OVER";
		printf "  data       %.1f KB in %d API answers (JSON, not compressed); page + data %.1f KB\n",
			$h->{data_bytes} / 1024, $h->{data_requests}, ($h->{wire_bytes} + $h->{data_bytes}) / 1024;
		printf "  charts     %s (metric:series x points)\n", join(" ", @{$h->{series}});
		printf "  table      %d host rows\n", $h->{rows};
		printf "  errors     %s\n", @{$h->{errors}} ? join("; ", @{$h->{errors}}) : "none";
	' "$work/herd.json" "$work/ref.json" "$HOSTS" "$SPAN_S" "$RUNS"
	read -r qbytes qs <<<"$qtime"
	awk -v b="$qbytes" -v s="$qs" -v st="$step" \
		'BEGIN { printf "  query      per-host series, step %ss: %.1f KB answered in %.0f ms (curl)\n", st, b / 1024, s * 1000 }'
	read -r abytes as <<<"$atime"
	awk -v b="$abytes" -v s="$as" \
		'BEGIN { printf "  aggregate  agg=avg over the group: %.1f KB answered in %.0f ms (curl)\n", b / 1024, s * 1000 }'
	read -r lbytes ls <<<"$ltime"
	read -r lhbytes lhs <<<"$lhtime"
	awk -v b="$lbytes" -v s="$ls" -v hb="$lhbytes" -v hs="$lhs" \
		'BEGIN { printf "  latest     one monitor, the whole group: %.1f KB in %.0f ms; the page'"'"'s 50 hosts (hosts=): %.1f KB in %.0f ms (curl)\n", b / 1024, s * 1000, hb / 1024, hs * 1000 }'
else
	# No metric store in this server yet: the page without charts.
	HERD_URL=$url TOKEN=$tok PAGE='#/group/bench/web' MARK=none RUNS=$RUNS \
		SELECTOR="#hosts tr[data-host]:nth-child($HOSTS)" node "$REPO/bench/console.mjs" >"$work/herd.json"
	perl -MJSON::PP -e '
		local $/; my $h = decode_json(<STDIN>);
		printf "console: no metrics endpoints in this server: group page of %d hosts, table shown (median of %d)\n", $ARGV[0], $ARGV[1];
		printf "  herd   %7.0f ms; page %.1f KB in %d requests (%.1f KB uncompressed; target 150 KB); data %.1f KB\n",
			$h->{median_ms}, $h->{wire_bytes} / 1024, $h->{requests}, $h->{raw_bytes} / 1024, $h->{data_bytes} / 1024;
	' "$HOSTS" "$RUNS" <"$work/herd.json"
fi
