#!/usr/bin/env bash
# bench/api.sh - requests/s and p99 of GET /v1/groups/NAME (keep-alive, wrk)
# next to nginx serving a static JSON file of the same size, in the same run.
# Prints both and the ratio. A benchmark, not a test: no thresholds.
set -euo pipefail
HERD=${HERD_BIN:-$(dirname "$0")/../build/herd}
DUR=${BENCH_DURATION:-5}
CONNS=${BENCH_CONNS:-32}
work=$(mktemp -d /tmp/herd-bench-api.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "api: failed at line $LINENO (server log: $(tail -3 "$work/server.log" 2>/dev/null))" >&2' ERR

port() { echo $((20000 + RANDOM % 30000)); }
hp=$(port); np=$(port)

"$HERD" server --data "$work/data" --listen "127.0.0.1:$hp" --log-level warn 2>"$work/server.log" &
pids+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$hp/healthz" >/dev/null && break; sleep 0.1; done
tok=$(cat "$work/data/admin.token")
auth=(-H "Authorization: Bearer $tok" -H 'Content-Type: application/json')
curl -sf "${auth[@]}" -X POST -d '{"name":"here","driver":"local"}' "http://127.0.0.1:$hp/v1/accounts" >/dev/null
curl -sf "${auth[@]}" -X POST -d '{"name":"vpc1","account":"here","cidr":"198.18.250.0/24"}' "http://127.0.0.1:$hp/v1/networks" >/dev/null
curl -sf "${auth[@]}" -X POST -d '{"name":"t","account":"here","network":"vpc1"}' "http://127.0.0.1:$hp/v1/templates" >/dev/null
curl -sf "${auth[@]}" -X POST -d '{"name":"c"}' "http://127.0.0.1:$hp/v1/clusters" >/dev/null
curl -sf "${auth[@]}" -X POST -d '{"name":"node","cluster":"c","template":"t","size":0,"max":6}' "http://127.0.0.1:$hp/v1/groups" >/dev/null
body=$(curl -sf "${auth[@]}" "http://127.0.0.1:$hp/v1/groups/node")

mkdir -p "$work/www"
printf '%s\n' "$body" >"$work/www/node.json"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx.err warn;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/json;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$np; root $work/www; }
}
CONF
nginx -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$np/node.json" >/dev/null && break; sleep 0.1; done

lua="$work/auth.lua"
printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$tok" >"$lua"
run_wrk() { wrk -t2 -c"$CONNS" -d"${DUR}s" --latency "$@" 2>&1; }
h=$(run_wrk -s "$lua" "http://127.0.0.1:$hp/v1/groups/node")
n=$(run_wrk "http://127.0.0.1:$np/node.json")
rps() { awk '/Requests\/sec/ {print $2}'; }
p99() { awk '$1 == "99%" {print $2}'; }
hr=$(echo "$h" | rps); nr=$(echo "$n" | rps)
echo "api: GET /v1/groups/node (${#body} bytes, $CONNS connections, ${DUR}s, keep-alive)"
printf '  herd   %10s req/s  p99 %s\n' "$hr" "$(echo "$h" | p99)"
printf '  nginx  %10s req/s  p99 %s  (same-size static file)\n' "$nr" "$(echo "$n" | p99)"
awk -v a="$hr" -v b="$nr" 'BEGIN { printf "  ratio  %.2fx nginx (target >= 0.8x)\n", a / b }'
