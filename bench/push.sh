#!/usr/bin/env bash
# shellcheck disable=SC2016  # python code in single quotes, on purpose
# bench/push.sh - what a push costs the server, per pushed sample, beside
# what storing a sample costs the metric store itself, in the same run:
#   herd:      one real local host (its credential); BENCH_PUSH_PUSHES
#              pushes per round, each one batch of 31 samples shaped as the
#              agent's (29 host series with their labels, a custom metric,
#              one monitor), sent back to back on one keep-alive connection
#              (python3 http.client, bodies made before the clock starts), every
#              answer checked (200, all samples accepted). Server CPU = the
#              sum of its threads' run time (/proc/PID/task/*/schedstat, ns)
#              over the round, less the same server's CPU over an idle
#              stretch of the same length right after (its own timers, the
#              real agent's heartbeats), divided by the samples stored;
#   reference: `tsdb-bench ingest` (bench/tsdb-bench.c): one thread
#              appending the same 32-series host shape straight into the
#              store, CPU per sample (ingest_samples_per_cpu_s).
#   catch-up:  PUSHES / BENCH_PUSH_BATCHES pushes (default 10 batches each,
#              as an agent sends after an outage, up to 100) of the same
#              batches, on series of their own, measured the same way;
#   decode:    jansson alone (json_loadb with JSON_REJECT_DUPLICATES, as
#              the server parses a body, then json_decref) looping over
#              the one-batch body: CPU per sample, no HTTP, no store;
#   protobuf:  the one-batch and the catch-up shapes again with protobuf
#              bodies (Content-Type application/x-protobuf, made from the
#              same JSON by build/tests/push-pb before the clock starts, on
#              series of their own: cp_, cq_), and pushwire_decode alone
#              looping over the one-batch body as jansson does above;
#   floor:     the same pushes with no samples ({"batches":[]}), measured
#              the same way: what a request costs the server before any
#              sample (HTTP, TCP, authentication, JSON, the answer); shown
#              per push, and per sample as if spread over 31 samples.
# Rounds alternate (herd, reference, herd, ...); medians with min..max.
# Also prints herd_agent_config_builds_total before and after: the agent
# configuration is computed per change, not per push. Root only (a local
# host is a network namespace). A benchmark, not a test: no thresholds.
# BENCH_PUSH_PERF=PREFIX records a profile of the server per round kind
# (perf record -F 1999, PREFIX-push-R.data ...; its figures then count perf).
set -euo pipefail
cd "$(dirname "$0")/.."
HERD=$(realpath "${HERD_BIN:-build/herd}")
BUILD=${BUILD:-build}
ROUNDS=${BENCH_ROUNDS:-5}
PUSHES=${BENCH_PUSH_PUSHES:-2000}
BATCHES=${BENCH_PUSH_BATCHES:-10}   # batches per push of the catch-up shape
PERF=${BENCH_PUSH_PERF:-}   # a path prefix: perf record the server per kind of round
# (call graphs by BENCH_PUSH_PERF_CG: fp, the default, or dwarf)
STEP_MS=5000

if [ "$(id -u)" != 0 ]; then
	echo "push: skipped (needs root for a local host)"
	exit 0
fi
work=$(mktemp -d /tmp/herd-bench-push.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	"$HERD" server --data "$work/data" --teardown >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
die() { echo "push: FAILED: $*" >&2; exit 1; }
trap 'echo "push: FAILED at line $LINENO" >&2' ERR

[ -f "$BUILD/libherd.a" ] || make -s "$BUILD/libherd.a"
PUSH_PB=$BUILD/tests/push-pb
[ -x "$PUSH_PB" ] || make -s "$PUSH_PB"
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -O2 -Isrc -Isrc/lib -Isrc/server -o "$work/tsdb-bench" \
	bench/tsdb-bench.c "$BUILD/libherd.a" \
	$(pkg-config --libs libmicrohttpd libcurl jansson sqlite3 yaml-0.1 libsodium libnl-route-3.0) \
	-lm -pthread

# the decode alone: jansson parsing one push's body (and freeing it) as
# the server's req_json does, in a loop; CPU per sample
cat >"$work/jdecode.c" <<'EOF_C'
#include <jansson.h>
#include <stdlib.h>
#include <stdio.h>
#include <time.h>
int
main(int argc, char **argv)
{
	static char body[1 << 20];
	FILE *f = fopen(argv[1], "r");
	size_t n = f ? fread(body, 1, sizeof(body), f) : 0;
	struct timespec a, b;
	json_error_t e;
	int iters = 20000;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
	for (int i = 0; i < iters; i++) {
		json_t *j = json_loadb(body, n, JSON_REJECT_DUPLICATES, &e);
		if (j == NULL)
			return 1;
		json_decref(j);
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
	printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / iters / (argc > 2 ? atoi(argv[2]) : 31));
	return 0;
}
EOF_C
# shellcheck disable=SC2046
cc -O2 -o "$work/jdecode" "$work/jdecode.c" $(pkg-config --cflags --libs jansson)

# the same for the protobuf body: pushwire_decode (as the server's handler
# calls it) and the arena released, in a loop; CPU per sample
cat >"$work/pdecode.c" <<'EOF_C'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "pushwire.h"
int
main(int argc, char **argv)
{
	static char body[1 << 20];
	static struct pushwire_arena a;
	FILE *f = fopen(argv[1], "r");
	size_t n = f ? fread(body, 1, sizeof(body), f) : 0;
	struct timespec t0, t1;
	struct pushwire_push w;
	struct herr err = HERR_INIT;
	int iters = 200000;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	for (int i = 0; i < iters; i++) {
		if (pushwire_decode(body, n, 100, &a, &w, &err) < 0 || w.nbatches != 1)
			return 1;
		pushwire_arena_release(&a);
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	printf("%.1f\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / iters / (argc > 2 ? atoi(argv[2]) : 31));
	return 0;
}
EOF_C
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -O2 -Isrc/lib -o "$work/pdecode" "$work/pdecode.c" "$BUILD/libherd.a" \
	$(pkg-config --libs libprotobuf-c)

port=$((20000 + RANDOM % 12000))
url="http://127.0.0.1:$port"
# the real agent pushes once a minute: its own pushes stay out of the way
"$HERD" server --data "$work/data" --listen "127.0.0.1:$port" --push-interval 60s \
	--log-level warn 2>"$work/server.log" &
pid=$!
for _ in $(seq 50); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.1; done
tok=$(cat "$work/data/admin.token")
export HERD_URL=$url HERD_TOKEN=$tok
cat >"$work/bench.yaml" <<EOF
accounts:
  - name: here
    driver: local
networks:
  - name: pushnet
    account: here
    cidr: 198.$((18 + RANDOM % 2)).$((RANDOM % 256)).0/24
templates:
  - name: node
    account: here
    network: pushnet
monitors:
  - name: busy
    command: cat /nonexistent/busy
    interval: 60s
clusters:
  - name: bench
    groups:
      - name: node
        template: node
        size: 1
        monitors: [busy]
EOF
"$HERD" apply -f "$work/bench.yaml" >/dev/null
cred=
for _ in $(seq 600); do
	f=$(find "$work/data/hosts" -name credential.json 2>/dev/null | head -1 || true)
	if [ -n "$f" ] && "$HERD" host ls --group bench/node --json | grep -q '"ready"'; then
		cred=$(perl -MJSON::PP -e 'local $/; open my $f, "<", $ARGV[0] or exit;
			print decode_json(<$f>)->{credential}' "$f")
		break
	fi
	sleep 0.2
done
[ -n "$cred" ] || die "the host did not become ready"

# server CPU so far, ns: every thread's run time
cpu_ns() { cat /proc/"$pid"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
builds() {
	{ curl -sf -H "Authorization: Bearer $tok" "$url/metrics" || true; } |
		awk '$1 == "herd_agent_config_builds_total" { print $2 }'
}
# pusher ROUND [empty|batches|pb|pb-batches]: sends PUSHES pushes of round
# ROUND (its own time range, so every sample is new and in order), or as
# many empty ones, or PUSHES / BATCHES pushes of BATCHES batches each (the
# agent's catch-up shape, on series of their own: bq_ for bp_); pb: the
# same pushes as protobuf bodies (push-pb), on series of their own (cp_,
# cq_); prints "samples pushes wall_s".
pusher() {
	python3 -c '
import http.client, math, re, subprocess, sys, time
url, cred, n, rnd, rounds, step, per = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:8])
mode = sys.argv[8] if len(sys.argv) > 8 else ""
pushpb = sys.argv[9] if len(sys.argv) > 9 else ""
pb = mode.startswith("pb")
if pb:
	mode = mode[3:]
empty, k = mode == "empty", per if mode == "batches" else 1
pre = ("cq" if k > 1 else "cp") if pb else ("bq" if k > 1 else "bp")
defs = [("cpu_busy_pct", "scope", "machine")]
defs += [("cpu_mode_pct", "mode", m) for m in "user nice system idle iowait irq softirq steal".split()]
defs += [(m, "scope", "machine") for m in ("load1", "load5", "load15", "mem_total_bytes",
	"mem_available_bytes", "mem_used_bytes", "mem_used_pct")]
defs += [(m, "mount", "/") for m in ("disk_used_bytes", "disk_free_bytes", "disk_used_pct")]
defs += [("net_%s_per_s" % x, "iface", i) for i in ("eth0", "lo")
	for x in ("rx_bytes", "tx_bytes", "rx_errors", "tx_errors")]
defs += [("procs", "scope", "host"), ("uptime_s", "scope", "machine")]
now = int(time.time() * 1000) // step * step
t0 = now - (rounds - rnd) * n * step - 60000
def batch(i):
	s = ["{\"name\":\"%s_%s\",\"labels\":{\"%s\":\"%s\"},\"value\":%.3f}"
		% (pre, m, lk, lv, 50 + 40 * math.sin(i / 30 + len(m))) for m, lk, lv in defs]
	s.append("{\"name\":\"%s_busy\",\"value\":%d}" % (pre, i % 17))
	return ("{\"ts_ms\":%d,\"series\":[%s],\"monitors\":[{\"name\":\"%s_busy\",\"state\":\"ok\"}]}"
		% (t0 + i * step, ",".join(s), pre))
if mode == "body":   # one push, printed, for the decode-alone rows
	sys.stdout.write("{\"batches\":[%s]}" % batch(0))
	sys.exit(0)
bodies = []
for p in range(n // k):
	bodies.append(b"{\"batches\":[]}" if empty else ("{\"batches\":[%s]}"
		% ",".join(batch(p * k + j) for j in range(k))).encode())
	if pb:
		bodies[-1] = subprocess.run([pushpb], input=bodies[-1], stdout=subprocess.PIPE,
			check=True).stdout
host, port = url.split("//")[1].split(":")
c = http.client.HTTPConnection(host, int(port))
hdr = {"Authorization": "Bearer " + cred,
	"Content-Type": "application/x-protobuf" if pb else "application/json"}
want = 0 if empty else 31 * k
acc, w = 0, time.time()
for b in bodies:   # bytes: headers and body leave in one send (no Nagle stall)
	c.request("POST", "/v1/agent/metrics", b, hdr)
	r = c.getresponse()
	t = r.read().decode()
	m = re.search(r"\"accepted\":(\d+)", t)
	if r.status != 200 or not m or int(m.group(1)) != want:
		sys.exit("push: %d %s" % (r.status, t[:300]))
	acc += 31 if empty else want
print(acc, len(bodies), "%.3f" % (time.time() - w))
' "$url" "$cred" "$PUSHES" "$1" "$ROUNDS" "$STEP_MS" "$BATCHES" "${2:-}" "$PUSH_PB"
}
# measure ROUND [empty|batches|pb|pb-batches]: the pusher's server CPU less an idle
# stretch as long; prints "ns/sample us/push idle_ms" (ns/sample over 31
# for empty pushes).
measure() {
	local c0 c1 c2 samples pushes wall perf=
	if [ -n "$PERF" ]; then
		perf record -q -F 1999 --call-graph "${BENCH_PUSH_PERF_CG:-fp}" -p "$pid" \
			-o "$PERF-${2:-push}-$1.data" 2>/dev/null &
		perf=$!
		sleep 0.5
	fi
	c0=$(cpu_ns)
	read -r samples pushes wall < <(pusher "$@") || die "round $1: the pushes failed"
	c1=$(cpu_ns)
	if [ -n "$perf" ]; then
		kill -INT "$perf"
		wait "$perf" || true
	fi
	sleep "$wall"
	c2=$(cpu_ns)
	awk -v a="$c0" -v b="$c1" -v c="$c2" -v n="$samples" -v p="$pushes" \
		'BEGIN { busy = b - a; idle = c - b; printf "%.1f %.1f %.1f\n", (busy - idle) / n, (busy - idle) / p / 1000, idle / 1e6 }'
}
stats() { sort -g | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%g %g %g\n", m, v[1], v[NR] }'; }

b0=$(builds)
: >"$work/herd"; : >"$work/ref"; : >"$work/floor"; : >"$work/multi"; : >"$work/decode"
: >"$work/pb"; : >"$work/pbmulti"; : >"$work/pdec"
pusher 0 body >"$work/body.json"
"$PUSH_PB" <"$work/body.json" >"$work/body.pb"
for r in $(seq 0 $((ROUNDS - 1))); do
	# the pusher makes its bodies first: the clock starts at its first
	# push; then idle, the same length: what the server spends anyway
	measure "$r" >>"$work/herd"
	measure "$r" empty >>"$work/floor"
	measure "$r" batches >>"$work/multi"
	measure "$r" pb >>"$work/pb"
	measure "$r" pb-batches >>"$work/pbmulti"
	"$work/jdecode" "$work/body.json" >>"$work/decode" || die "the decode alone failed"
	"$work/pdecode" "$work/body.pb" >>"$work/pdec" || die "the protobuf decode alone failed"
	"$work/tsdb-bench" ingest "$work/ref-$r" 2>/dev/null |
		awk '$1 == "ingest_samples_per_cpu_s" { printf "%.1f\n", 1e9 / $2 }' >>"$work/ref"
	rm -rf "$work/ref-$r"
done
b1=$(builds)

read -r hs hslo hshi < <(cut -d' ' -f1 "$work/herd" | stats)
read -r hp hplo hphi < <(cut -d' ' -f2 "$work/herd" | stats)
read -r idle _ _ < <(cut -d' ' -f3 "$work/herd" | stats)
read -r rs rslo rshi < <(stats <"$work/ref")
read -r fs fslo fshi < <(cut -d' ' -f1 "$work/floor" | stats)
read -r fp fplo fphi < <(cut -d' ' -f2 "$work/floor" | stats)
read -r ms mslo mshi < <(cut -d' ' -f1 "$work/multi" | stats)
read -r mp mplo mphi < <(cut -d' ' -f2 "$work/multi" | stats)
read -r ds dslo dshi < <(stats <"$work/decode")
paste -d' ' "$work/decode" "$work/ref" | awk '{ print $1 / $2 }' >"$work/dratio"
read -r dq dqlo dqhi < <(stats <"$work/dratio")
paste -d' ' "$work/herd" "$work/ref" | awk '{ print $1 / $4 }' >"$work/ratio"
read -r q qlo qhi < <(stats <"$work/ratio")
paste -d' ' "$work/multi" "$work/ref" | awk '{ print $1 / $4 }' >"$work/mratio"
read -r mq mqlo mqhi < <(stats <"$work/mratio")
read -r ps pslo pshi < <(cut -d' ' -f1 "$work/pb" | stats)
read -r pp pplo pphi < <(cut -d' ' -f2 "$work/pb" | stats)
paste -d' ' "$work/pb" "$work/ref" | awk '{ print $1 / $4 }' >"$work/pratio"
read -r pq pqlo pqhi < <(stats <"$work/pratio")
read -r pms pmslo pmshi < <(cut -d' ' -f1 "$work/pbmulti" | stats)
read -r pmp pmplo pmphi < <(cut -d' ' -f2 "$work/pbmulti" | stats)
paste -d' ' "$work/pbmulti" "$work/ref" | awk '{ print $1 / $4 }' >"$work/pmratio"
read -r pmq pmqlo pmqhi < <(stats <"$work/pmratio")
read -r pds pdslo pdshi < <(stats <"$work/pdec")
paste -d' ' "$work/pdec" "$work/ref" | awk '{ print $1 / $2 }' >"$work/pdratio"
read -r pdq pdqlo pdqhi < <(stats <"$work/pdratio")
echo "push: server CPU per pushed sample beside the metric store's own; $ROUNDS alternated rounds;" \
	"median (min..max)"
printf '  herd push     %8.0f ns/sample (%.0f..%.0f)  = %.1f us/push of 31 samples (%.1f..%.1f);' \
	"$hs" "$hslo" "$hshi" "$hp" "$hplo" "$hphi"
printf ' %d pushes a round on one keep-alive connection, idle server CPU %.1f ms subtracted\n' \
	"$PUSHES" "$idle"
printf '  tsdb ingest   %8.0f ns/sample (%.0f..%.0f)  (tsdb-bench ingest: one thread, 100 hosts x 720 steps, no HTTP)\n' \
	"$rs" "$rslo" "$rshi"
printf '  empty push    %8.1f us/push (%.1f..%.1f)  = %.0f ns/sample if spread over 31 (%.0f..%.0f): the per-request floor\n' \
	"$fp" "$fplo" "$fphi" "$fs" "$fslo" "$fshi"
printf '  ratio         %.2fx the store'"'"'s own cost (per round %.2f..%.2f; target <= 3x): one batch a push, the agent'"'"'s steady state\n' "$q" "$qlo" "$qhi"
printf '  %2d-batch push %8.0f ns/sample (%.0f..%.0f)  = %.1f us/push of %d samples (%.1f..%.1f); %d pushes a round\n' \
	"$BATCHES" "$ms" "$mslo" "$mshi" "$mp" $((31 * BATCHES)) "$mplo" "$mphi" $((PUSHES / BATCHES))
printf '  ratio         %.2fx the store'"'"'s own cost (per round %.2f..%.2f; target <= 3x): %d batches a push, the agent catching up after an outage\n' \
	"$mq" "$mqlo" "$mqhi" "$BATCHES"
printf '  json decode   %8.0f ns/sample (%.0f..%.0f)  = %.2fx the store'"'"'s (%.2f..%.2f): jansson'"'"'s json_loadb + json_decref of the one-batch body alone, no server\n' \
	"$ds" "$dslo" "$dshi" "$dq" "$dqlo" "$dqhi"
printf '  protobuf push %8.0f ns/sample (%.0f..%.0f)  = %.1f us/push of 31 samples (%.1f..%.1f); body %d bytes (JSON %d)\n' \
	"$ps" "$pslo" "$pshi" "$pp" "$pplo" "$pphi" "$(wc -c <"$work/body.pb")" "$(wc -c <"$work/body.json")"
printf '  ratio         %.2fx the store'"'"'s own cost (per round %.2f..%.2f; target <= 3x): one batch a push in protobuf\n' "$pq" "$pqlo" "$pqhi"
printf '  %2d-batch pb   %8.0f ns/sample (%.0f..%.0f)  = %.1f us/push of %d samples (%.1f..%.1f)\n' \
	"$BATCHES" "$pms" "$pmslo" "$pmshi" "$pmp" $((31 * BATCHES)) "$pmplo" "$pmphi"
printf '  ratio         %.2fx the store'"'"'s own cost (per round %.2f..%.2f; target <= 3x): %d batches a push in protobuf\n' \
	"$pmq" "$pmqlo" "$pmqhi" "$BATCHES"
printf '  pb decode     %8.0f ns/sample (%.0f..%.0f)  = %.2fx the store'"'"'s (%.2f..%.2f): pushwire_decode + arena release of the one-batch body alone, no server\n' \
	"$pds" "$pdslo" "$pdshi" "$pdq" "$pdqlo" "$pdqhi"
if [ -n "$b0" ] && [ -n "$b1" ]; then
	echo "  agent configuration computed $((b1 - b0)) times for $((ROUNDS * (4 * PUSHES + 2 * (PUSHES / BATCHES)))) pushes (herd_agent_config_builds_total)"
else
	echo "  agent configuration: this server does not count its computations (no herd_agent_config_builds_total)"
fi
