#!/usr/bin/env bash
# bench/remote-write.sh - remote_write out (issue 20): how fast herd catches
# up a backlog, beside Prometheus's own remote_write catching up a backlog
# of the same samples to the same receiver, in one run; and what a remote
# that is down costs the push path.
#   receiver:  a Prometheus (--web.enable-remote-write-receiver, no scrapes),
#              started fresh for each side; what it stored is read from its
#              own prometheus_tsdb_head_samples_appended_total, polled every
#              0.1 s: a side's time is from the first sample stored to the
#              last (so neither side's backoff while it was down counts);
#   herd:      one real local host (bench/herd-local.bash) pushes RW_PUSHES pushes of one batch of
#              RW_SERIES series (python3 http.client, one keep-alive
#              connection, every answer checked) while the receiver is down;
#              herd queues them (remote_write `r`, keep rule: this metric
#              only); then the receiver starts;
#   reference: a second Prometheus (the sender, its own receiver on) gets
#              the same shape of samples from herd live (remote_write `s`,
#              another metric) while the receiver is down, and its
#              remote_write queues them; then the receiver starts. Same queue
#              settings on both sides: max_samples_per_send 2000, max_shards
#              4, min_backoff 30ms, max_backoff 1s.
#   push cost: the pushes' p50/p99 (client side) with no remote_write, with
#              the remote down (the herd side's pushes), and with it up and
#              taking everything (the reference side's pushes).
# Prints no ratio when the reference delivered less than its backlog (issue
# 15's rule: a bench checks that the reference answered). Root only (a
# local host is a network namespace). A benchmark, not a test: no thresholds.
set -euo pipefail
cd "$(dirname "$0")/.."
HERD=$(realpath "${HERD_BIN:-build/herd}")
PUSHES=${RW_PUSHES:-500}
SERIES=${RW_SERIES:-1000}
N=$((PUSHES * SERIES))

if [ "$(id -u)" != 0 ]; then
	echo "remote-write: skipped (needs root for a local host)"
	exit 0
fi
if ! command -v prometheus >/dev/null; then
	echo "remote-write: skipped (prometheus is not installed: tools/deps.sh bench)"
	exit 0
fi
work=$(mktemp -d /tmp/herd-bench-rw.XXXXXX)
server_pid='' rpid='' spid=''
# shellcheck source=bench/herd-local.bash
. bench/herd-local.bash
stop() { # stop PID: SIGTERM, and wait until it is gone
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}
cleanup() {
	set +e
	stop "$rpid"
	stop "$spid"
	local_cleanup
	[ -n "${RW_KEEP:-}" ] && { echo "remote-write: kept $work" >&2; return; }
	rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "remote-write: FAILED at line $LINENO" >&2' ERR
die() { echo "remote-write: FAILED: $*" >&2; exit 1; }

# the real agent pushes once a minute: its own pushes stay out of the way
local_server_start --push-interval 60s
url=$HERD_URL
hport=${url##*:}
tok=$HERD_TOKEN
rport=$(local_free_port)
sport=$(local_free_port)
local_group_apply 1
local_scale_ready 1 60 || die "the local host did not become ready"
host=$(local_hosts | awk '{ print $1; exit }')
cred=$(local_host_credential "$host") || die "no credential for host $host"

# push.py METRIC: PUSHES pushes of one batch of SERIES series of METRIC (a
# new timestamp each, 10 ms apart from now on), back to back; prints "p50_ms p99_ms".
cat >"$work/push.py" <<'EOF_PY'
import http.client, json, sys, time
port, cred, metric, pushes, series = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
c = http.client.HTTPConnection("127.0.0.1", int(port))
h = {"Authorization": "Bearer " + cred, "Content-Type": "application/json"}
# from now on: Prometheus's remote_write skips samples older than its start
ts0 = int(time.time() * 1000) + 10
lat = []
for p in range(pushes):
    body = json.dumps({"batches": [{"ts_ms": ts0 + p * 10, "series": [
        {"name": metric, "labels": {"i": str(i)}, "value": p + i} for i in range(series)]}]})
    t = time.perf_counter()
    c.request("POST", "/v1/agent/metrics", body, h)
    r = c.getresponse()
    out = r.read()
    lat.append((time.perf_counter() - t) * 1000)
    if r.status != 200 or json.loads(out).get("accepted") != series:
        sys.exit("push %d: %d %s" % (p, r.status, out[:200]))
lat.sort()
print("%.1f %.1f" % (lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]))
EOF_PY
push() { python3 "$work/push.py" "$hport" "$cred" "$1" "$PUSHES" "$SERIES"; }

# rw FIELD NAME: a figure of herd's remote NAME.
rw() {
	curl -sf -H "Authorization: Bearer $tok" "$url/v1/remote-writes" | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		for (@{$d->{items}}) { print $_->{$ARGV[0]}, "\n" if $_->{name} eq $ARGV[1] }' "$1" "$2"
}
rw_is() { [ "$(rw "$1" "$2")" = "$3" ]; }
# appended PORT: samples a Prometheus stored (0 when it does not answer).
appended() {
	curl -sf "http://127.0.0.1:$1/metrics" 2>/dev/null |
		awk '/^prometheus_tsdb_head_samples_appended_total/ { n += $NF } END { printf "%d\n", n }'
}
appended_ge() { [ "$(appended "$1")" -ge "$2" ]; }
wait_until() { # wait_until SECONDS CMD...
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.1
	done
}
prom() { # prom NAME PORT [RECEIVER ARGS]: starts a Prometheus with its receiver on
	local name=$1 port=$2
	mkdir -p "$work/$name/data"
	prometheus --config.file="$work/$name.yml" --storage.tsdb.path="$work/$name/data" \
		--web.listen-address="127.0.0.1:$port" --web.enable-remote-write-receiver \
		--log.level=warn >>"$work/$name.log" 2>&1 &
	echo $!
}
# catch_up: starts the receiver fresh, times it from its first sample to N;
# prints "seconds stored" (stored < N when it timed out).
catch_up() {
	local t0='' t1='' n=0 end=$((SECONDS + 120))
	rm -rf "$work/r"
	rpid=$(prom r "$rport")
	while [ "$SECONDS" -lt "$end" ]; do
		n=$(appended "$rport")
		if [ "$n" -gt 0 ] && [ -z "$t0" ]; then t0=$(date +%s.%N); fi
		if [ "$n" -ge "$N" ]; then t1=$(date +%s.%N); break; fi
		sleep 0.1
	done
	stop "$rpid"
	rpid=''
	if [ -z "$t1" ]; then echo "0 $n"; return; fi
	echo "$(perl -e "printf '%.2f', $t1 - $t0") $n"
}

printf 'global:\n  scrape_interval: 1m\n' >"$work/r.yml"
cat >"$work/s.yml" <<EOF
global:
  scrape_interval: 1m
remote_write:
  - url: http://127.0.0.1:$rport/api/v1/write
    queue_config:
      max_samples_per_send: 2000
      min_shards: 1
      max_shards: 4
      min_backoff: 30ms
      max_backoff: 1s
EOF

# push cost with no remote_write
base=$(push rw_bench_none)

cat >"$work/rw.yaml" <<EOF
remote_writes:
  - name: r
    url: http://127.0.0.1:$rport/api/v1/write
    relabel:
      - action: keep
        source_labels: [__name__]
        regex: rw_bench_herd
    queue: { max_samples_per_send: 2000, max_shards: 4, min_backoff: 30ms, max_backoff: 1s }
  - name: s
    url: http://127.0.0.1:$sport/api/v1/write
    relabel:
      - action: keep
        source_labels: [__name__]
        regex: rw_bench_prom
    queue: { max_samples_per_send: 2000, max_shards: 4, min_backoff: 30ms, max_backoff: 1s }
EOF
"$HERD" apply -f "$work/rw.yaml" >/dev/null
wait_until 10 rw_is shards r 1 || die "remote r did not start"

# herd: the backlog, with the receiver down, then the catch-up
down=$(push rw_bench_herd)
wait_until 60 rw_is pending_samples r "$N" || die "herd queued $(rw pending_samples r) of $N"
read -r herd_s herd_n <<<"$(catch_up)"
[ "$(rw sent r)" = "$N" ] || echo "remote-write: herd says it sent $(rw sent r) of $N" >&2

# the reference: herd feeds the sender live, the sender queues for the receiver
spid=$(prom s "$sport")
wait_until 60 curl -sf "http://127.0.0.1:$sport/-/ready" >/dev/null || die "the sender did not start"
up=$(push rw_bench_prom)
wait_until 120 appended_ge "$sport" "$N" || die "the sender stored $(appended "$sport") of $N"
wait_until 60 rw_is pending_samples s 0 || die "herd did not drain to the sender"
read -r prom_s prom_n <<<"$(catch_up)"
stop "$spid"
spid=''

echo "backlog: $N samples ($PUSHES pushes x $SERIES series), same receiver (Prometheus $(prometheus --version 2>&1 | awk 'NR == 1 { print $3 }'))"
echo "push p50/p99 ms: no remote_write $base; remote down $down; remote up $up"
if [ "$herd_n" -lt "$N" ] || [ "$herd_s" = 0 ]; then
	echo "herd:       delivered $herd_n of $N in 120 s: no figure"
	exit 1
fi
herd_rate=$(perl -e "printf '%d', $N / ($herd_s > 0.1 ? $herd_s : 0.1)")
echo "herd:       $herd_rate samples/s ($N in ${herd_s} s, first to last stored)"
if [ "$prom_n" -lt "$N" ] || [ "$prom_s" = 0 ]; then
	echo "reference:  Prometheus's remote_write delivered $prom_n of $N in 120 s: no ratio"
	exit 0
fi
prom_rate=$(perl -e "printf '%d', $N / ($prom_s > 0.1 ? $prom_s : 0.1)")
echo "reference:  $prom_rate samples/s (Prometheus's remote_write, $N in ${prom_s} s)"
echo "ratio:      $(perl -e "printf '%.2f', $herd_rate / $prom_rate") (herd / Prometheus)"
