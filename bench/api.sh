#!/usr/bin/env bash
# bench/api.sh - GETs of herd's API beside nginx serving, as static files,
# the very bytes herd answered (same size, same content), in the same run:
#   cached    GET /v1/groups/node  (served from the API's GET cache)
#   single    GET /v1/groups/node  with Cache-Control: no-cache (one resource
#             answered from the store: the path every GET takes after a write)
#   uncached  GET /v1/groups       (a list: the cache never serves lists)
# Fair by construction, and checked before anything is measured:
#   - the reference answers 200 with herd's exact body (the files live in a
#     directory nginx's unprivileged workers can read); both servers are
#     asked once and compared byte for byte, and the bench stops loudly if
#     either is not a 200 of that body, or if wrk saw any non-2xx answer or
#     socket error during a round;
#   - the same worker count: herd's HTTP threads are one per core, at least
#     2 (src/server/httpd.c pool_size), and nginx gets as many
#     worker_processes; wrk sends both the same headers (the bearer token);
#   - BENCH_ROUNDS alternated rounds (herd, nginx, herd, nginx ...), each
#     BENCH_DURATION seconds: medians printed with the spread (min..max).
# Then writes (issue 15): the uncached GET again while BENCH_WRITERS clients
# PUT a script (each PUT a new version and its audit row: a real, fsynced
# change) as fast as they are answered; nginx's reference is the same GET
# while as many `dd oflag=dsync` processes write 4 KiB blocks beside it (the
# same pressure on the disk's sync path, no shared lock: what a write path
# that never blocks reads costs at best). The PUTs' own req/s and p50/p99
# are printed beside the disk's dsync rate (dd). With strace and root:
# fdatasync calls per change at 8 concurrent writers (group commit: < 1).
# A benchmark, not a test: the targets are printed beside the figures.
# Knobs: BENCH_ROUNDS, BENCH_DURATION (s), BENCH_CONNS, BENCH_WRITERS, and
# BENCH_WRITES=0 to stop after the GET rows.
set -euo pipefail
HERD=${HERD_BIN:-$(dirname "$0")/../build/herd}
DUR=${BENCH_DURATION:-3}
ROUNDS=${BENCH_ROUNDS:-5}
CONNS=${BENCH_CONNS:-32}
GROUPS_N=5
work=$(mktemp -d /tmp/herd-bench-api.XXXXXX)
www=$(mktemp -d /tmp/herd-bench-www.XXXXXX)   # no secrets: readable by nginx's workers
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work" "$www"
}
trap cleanup EXIT
trap 'echo "api: failed at line $LINENO (server log: $(tail -3 "$work/server.log" 2>/dev/null))" >&2' ERR
die() { echo "api: FAILED: $*" >&2; exit 1; }

for t in wrk nginx curl; do
	command -v "$t" >/dev/null || die "$t missing (tools/deps.sh bench installs it)"
done
# shellcheck source=bench/api-lib.bash
. "$(dirname "$0")/api-lib.bash"
cores=$(nproc)
workers=$((cores < 2 ? 2 : cores > 16 ? 16 : cores))

api_server "$work/data" "$work/server.log"
pids+=("$api_pid")
hp=${api_url##*:}
np=$((20000 + RANDOM % 12000))
[ "$hp" != "$np" ] || np=$((hp + 1))
tok=$api_tok
auth=(-H "Authorization: Bearer $tok" -H 'Content-Type: application/json')
api_fixtures "$api_url" "$tok" "$GROUPS_N"

# rows: name, herd path, file nginx serves, extra request header
rows=("cached|/v1/groups/node|node.json|" "single|/v1/groups/node|node.json|Cache-Control: no-cache"
	"uncached|/v1/groups|groups.json|")
chmod 0755 "$www"
for r in "${rows[@]}"; do
	IFS='|' read -r _ path file _ <<<"$r"
	code=$(curl -s "${auth[@]}" -o "$www/$file" -w '%{http_code}' "http://127.0.0.1:$hp$path")
	[ "$code" = 200 ] || die "herd answered $code to GET $path"
	chmod 0644 "$www/$file"
done

cat >"$work/nginx.conf" <<CONF
worker_processes $workers;
pid $work/nginx.pid;
error_log $work/nginx.err warn;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/json;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$np; root $www; }
}
CONF
nginx -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$np/" && break; sleep 0.1; done

# Both must answer 200 with the same bytes before anything is measured.
for r in "${rows[@]}"; do
	IFS='|' read -r name path file hdr <<<"$r"
	hc=$(curl -s "${auth[@]}" -H "${hdr:-X-Bench: 1}" -o "$work/h.body" -w '%{http_code}' "http://127.0.0.1:$hp$path")
	nc=$(curl -s "${auth[@]}" -H "${hdr:-X-Bench: 1}" -o "$work/n.body" -w '%{http_code}' "http://127.0.0.1:$np/$file")
	[ "$hc" = 200 ] || die "$name: herd answered $hc to GET $path"
	[ "$nc" = 200 ] || die "$name: nginx answered $nc to GET /$file ($(head -c 200 "$work/n.body"))"
	cmp -s "$work/h.body" "$work/n.body" ||
		die "$name: nginx's body ($(wc -c <"$work/n.body") bytes) is not herd's ($(wc -c <"$work/h.body") bytes)"
done

lua="$work/auth.lua"
api_lua_get "$tok" "$lua"
fresh="$work/fresh.lua"   # the single row: both servers get the same headers
api_lua_get "$tok" "$fresh" no-cache
# sample NAME URL [LUA]: one wrk round; prints "req/s p50_ms p99_ms".
sample() { api_sample "$1" "$2" "${3:-$lua}" "$CONNS" 2 "$DUR"; }
stats() { api_stats; }

echo "api: herd vs nginx serving herd's exact answer; $workers herd HTTP threads (one per core, >= 2)" \
	"vs $workers nginx workers; wrk -t2 -c$CONNS keep-alive; $ROUNDS alternated rounds of ${DUR}s;" \
	"median (min..max)"
for r in "${rows[@]}"; do
	IFS='|' read -r name path file hdr <<<"$r"
	l=$lua; [ -z "$hdr" ] || l=$fresh
	: >"$work/h.$name"; : >"$work/n.$name"
	for _ in $(seq "$ROUNDS"); do
		sample "$name herd" "http://127.0.0.1:$hp$path" "$l" >>"$work/h.$name"
		sample "$name nginx" "http://127.0.0.1:$np/$file" "$l" >>"$work/n.$name"
	done
	paste -d' ' "$work/h.$name" "$work/n.$name" | awk '{ print $1 / $4 }' >"$work/r.$name"
	printf '  %-8s GET %s%s (%d bytes, checked identical from both)\n' "$name" "$path" \
		"${hdr:+ ($hdr)}" "$(wc -c <"$www/$file")"
	api_row_print herd "$work/h.$name"
	api_row_print nginx "$work/n.$name"
	read -r q qlo qhi < <(stats <"$work/r.$name")
	printf '    ratio  %.2fx nginx (per round %.2f..%.2f; target >= 0.8x: %s)\n' "$q" "$qlo" "$qhi" \
		"$(awk -v q="$q" 'BEGIN { print (q >= 0.8) ? "pass" : "FAIL" }')"
done

[ "${BENCH_WRITES:-1}" != 0 ] || exit 0   # BENCH_WRITES=0: the GET rows only

# --- writes: GET alone (the uncached row above) / GET under writes / PUT ---
WRITERS=${BENCH_WRITERS:-4}
wlua="$work/write.lua"
api_lua_put "$tok" "$wlua"
# writes_bg SECONDS: WRITERS clients PUT for that long (wrk, in the background;
# its report in $work/w.out).
writes_bg() {
	wrk -t1 -c"$WRITERS" -d"${1}s" --latency -s "$wlua" "http://127.0.0.1:$hp/v1/scripts/bench.sh" \
		>"$work/w.out" 2>&1 &
	wpid=$!
}
# dsync_bg SECONDS: WRITERS dd processes writing 4 KiB dsync blocks.
dsync_bg() {
	ddpids=()
	for i in $(seq "$WRITERS"); do
		timeout -s INT "$1" dd if=/dev/zero of="$work/dd$i" bs=4k count=10000000 oflag=dsync \
			2>"$work/dd$i.err" &
		ddpids+=($!)
	done
}
# wrk_row FILE: "req/s p50 p99" of a finished wrk report; fails on errors.
wrk_row() { api_wrk_row writes <"$1"; }
: >"$work/h.wget"; : >"$work/n.wget"; : >"$work/h.put"; : >"$work/dd.rate"
for _ in $(seq "$ROUNDS"); do
	writes_bg $((DUR + 2))
	sleep 1
	sample "GET under writes herd" "http://127.0.0.1:$hp/v1/groups" >>"$work/h.wget"
	wait "$wpid"
	wrk_row "$work/w.out" >>"$work/h.put"
	dsync_bg $((DUR + 2))
	sleep 1
	sample "GET under writes nginx" "http://127.0.0.1:$np/groups.json" >>"$work/n.wget"
	for p in "${ddpids[@]}"; do wait "$p" || true; done
	# dd's last line: "N bytes (...) copied, T s, ..."
	cat "$work"/dd*.err | awk '/copied/ { b += $1; t = $(NF - 3) + 0; if (t > m) m = t }
		END { printf "%.0f\n", (m > 0 ? b / 4096 / m : 0) }' >>"$work/dd.rate"
	rm -f "$work"/dd[0-9]*
done
printf '  GET under writes: GET /v1/groups while %d clients PUT /v1/scripts/bench.sh (herd) /\n' "$WRITERS"
printf '                    while %d dd (bs=4k oflag=dsync) write beside nginx\n' "$WRITERS"
api_row_print herd "$work/h.wget"
api_row_print nginx "$work/n.wget"
read -r alone _ _ < <(cut -d' ' -f1 "$work/h.uncached" | stats)
read -r under _ _ < <(cut -d' ' -f1 "$work/h.wget" | stats)
read -r p99 _ _ < <(cut -d' ' -f3 "$work/h.wget" | stats)
printf '    herd   %.2fx its GET alone (target >= 0.5x: %s); p99 %.3f ms (target <= 20 ms: %s)\n' \
	"$(awk -v a="$alone" -v u="$under" 'BEGIN { print u / a }')" \
	"$(awk -v a="$alone" -v u="$under" 'BEGIN { print (u / a >= 0.5) ? "pass" : "FAIL" }')" \
	"$p99" "$(awk -v p="$p99" 'BEGIN { print (p <= 20) ? "pass" : "FAIL" }')"
read -r rm rlo rhi < <(cut -d' ' -f1 "$work/h.put" | stats)
read -r p50 _ _ < <(cut -d' ' -f2 "$work/h.put" | stats)
read -r p99 p99lo p99hi < <(cut -d' ' -f3 "$work/h.put" | stats)
read -r ddr ddlo ddhi < <(stats <"$work/dd.rate")
printf '  PUT /v1/scripts/bench.sh (%d clients, under the GET load): %.0f req/s (%.0f..%.0f)  p50 %.3f ms  p99 %.3f ms (%.3f..%.3f)\n' \
	"$WRITERS" "$rm" "$rlo" "$rhi" "$p50" "$p99" "$p99lo" "$p99hi"
printf '    reference: the disk takes %.0f dsync 4 KiB writes/s from %d dd (%.0f..%.0f); nginx has no write path\n' \
	"$ddr" "$WRITERS" "$ddlo" "$ddhi"

# fdatasync per change at 8 writers (strace on the server: root only)
if command -v strace >/dev/null && [ "$(id -u)" = 0 ]; then
	hpid=${pids[0]}
	strace -f -c -e trace=fdatasync,fsync -o "$work/strace.out" -p "$hpid" 2>/dev/null &
	spid=$!
	sleep 1
	wrk -t2 -c8 -d"${DUR}s" -s "$wlua" "http://127.0.0.1:$hp/v1/scripts/bench.sh" >"$work/w8.out" 2>&1
	kill -INT "$spid"; wait "$spid" 2>/dev/null || true
	syncs=$(awk '$NF == "fdatasync" || $NF == "fsync" { s += $4 } END { print s + 0 }' "$work/strace.out")
	puts=$(awk '/requests in/ { print $1 }' "$work/w8.out")
	printf '  fdatasync per change, 8 clients PUT for %ss under strace: %s syncs / %s changes = %.2f (one commit per change = 1.00)\n' \
		"$DUR" "$syncs" "$puts" "$(awk -v s="$syncs" -v p="$puts" 'BEGIN { print p ? s / p : 0 }')"
fi
