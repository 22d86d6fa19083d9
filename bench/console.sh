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
# Reference, same run, same browser: a bare page drawing the same answer
# with uPlot from a static file (no app, no API round trips); the ratio is
# the console's cost over drawing alone. Root only (network namespaces);
# everything made is removed by the trap. A benchmark, not a test.
set -euo pipefail
HERD=$(realpath "${HERD_BIN:-$(dirname "$0")/../build/herd}")
REPO=$(cd "$(dirname "$0")/.." && pwd)
HOSTS=${BENCH_CONSOLE_HOSTS:-20}
RUNS=${BENCH_RUNS:-5}
SPAN_S=${BENCH_SPAN_S:-3600}
STEP_S=5

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
cleanup() {
	set +e
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	[ -d "$work/data" ] && "$HERD" server --data "$work/data" --teardown >>"$work/server.log" 2>&1
	rm -rf "$work"
}
trap cleanup EXIT

# The console's files, plus the reference page.
mkdir -p "$work/web"
(cd "$REPO/web" && tar --exclude=node_modules -cf - .) | tar -xf - -C "$work/web"
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
"$HERD" server --data "$work/data" --listen "127.0.0.1:$port" --web "$work/web" \
	--log-level warn >>"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.1; done
if ! curl -sf "$url/healthz" >/dev/null; then
	echo "console: the server did not start:" >&2
	tail -5 "$work/server.log" >&2
	exit 1
fi
tok=$(cat "$work/data/admin.token")
export HERD_URL=$url HERD_TOKEN=$tok

cat >"$work/bench.yaml" <<EOF
accounts:
  - name: here
    driver: local
networks:
  - name: benchnet
    account: here
    cidr: 198.$((18 + RANDOM % 2)).$((RANDOM % 256)).0/24
templates:
  - name: web
    account: here
    network: benchnet
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
        max: $HOSTS
        monitors: [benchload]
        policies:                     # drawn as a threshold; max = size, so it cannot act
          - name: grow
            when: avg(benchload) > 80
            adjust: +1
EOF
"$HERD" apply -f "$work/bench.yaml" >/dev/null

ready() {
	"$HERD" host ls --group bench/web --json | perl -MJSON::PP -e '
		print scalar grep { $_->{state} eq "ready" } @{decode_json(join "", <STDIN>)->{items}}'
}
for _ in $(seq 600); do [ "$(ready)" -ge "$HOSTS" ] && break; sleep 0.2; done
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
	i=0
	mapfile -t creds < <(find "$work/data/hosts" -name credential.json -exec perl -MJSON::PP -e '
		local $/; open my $f, "<", $ARGV[0] or exit; print decode_json(<$f>)->{credential}, "\n"' {} \;)
	for cred in "${creds[@]}"; do
		i=$((i + 1))
		perl -e '
			my ($now, $span, $step, $i) = @ARGV;
			my @b;
			for (my $t = $now - $span * 1000; $t < $now; $t += $step * 1000) {
				my $v = sprintf "%.2f", 30 + 20 * sin($t / 600000 + $i) + ($t / 1000 % 7);
				push @b, qq({"ts_ms":$t,"monitors":[],"series":[{"name":"benchload","value":$v}]});
				if (@b == 100) { print "{\"batches\":[", join(",", @b), "],\"dropped\":0}\n"; @b = () }
			}
			print "{\"batches\":[", join(",", @b), "],\"dropped\":0}\n" if @b;
		' "$now_ms" "$SPAN_S" "$STEP_S" "$i" | while read -r body; do
			curl -sf -o /dev/null -H "Authorization: Bearer $cred" -H 'Content-Type: application/json' \
				--data-binary "$body" "$url/v1/agent/metrics"
		done
		points=$((points + SPAN_S / STEP_S))
	done
	load_s=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	step=$(((SPAN_S + 199) / 200))   # as the console asks (web/js/metrics.js stepFor)
	[ "$step" -ge "$STEP_S" ] || step=$STEP_S
	curl -sf -H "Authorization: Bearer $tok" \
		"$url/v1/metrics/query?metric=benchload&cluster=bench&group=web&since=${SPAN_S}s&step=${step}s" \
		>"$work/web/bench-data.json"
	gzip -9 -n -c "$work/web/bench-data.json" >"$work/web/bench-data.json.gz"
	series=$(perl -MJSON::PP -e 'local $/; my $d = decode_json(<STDIN>);
		my $l = $d->{series} || $d->{items} || []; print scalar @$l' <"$work/web/bench-data.json")
	echo "console: $HOSTS hosts ready; $points points of benchload pushed in ${load_s}s; the query answers $series series"

	page() { # page NAME URL-PATH QUERY HASH SELECTOR
		HERD_URL=$url TOKEN=$tok URL_PATH=$2 QUERY=$3 PAGE=$4 SELECTOR=$5 RUNS=$RUNS \
			node "$REPO/bench/console.mjs" >"$work/$1.json"
	}
	# the per-host query on its own, as the page asks it (server time)
	qtime=$(curl -s -o /dev/null -w '%{size_download} %{time_total}' -H "Authorization: Bearer $tok" \
		"$url/v1/metrics/query?metric=benchload&cluster=bench&group=web&since=${SPAN_S}s&step=${step}s")
	page herd / "?window=$SPAN_S" '#/group/bench/web' \
		".chart[data-metric=\"benchload\"][data-series=\"$HOSTS\"] canvas"
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
		printf "  charts     %s\n", join(" ", @{$h->{series}});
		printf "  errors     %s\n", @{$h->{errors}} ? join("; ", @{$h->{errors}}) : "none";
	' "$work/herd.json" "$work/ref.json" "$HOSTS" "$SPAN_S" "$RUNS"
	read -r qbytes qs <<<"$qtime"
	awk -v b="$qbytes" -v s="$qs" -v st="$step" \
		'BEGIN { printf "  query      per-host series, step %ss: %.1f KB answered in %.0f ms (curl)\n", st, b / 1024, s * 1000 }'
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
