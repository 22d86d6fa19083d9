# bench/api-lib.bash - sourced by bench/api.sh and bench/store.sh: a herd
# server with the API benches' fixtures (one cluster c of GROUPS_N groups,
# node and g2.., on a 198.18.250.0/24 network), wrk's scripts (the bearer
# token, the no-cache GET, the script PUT) and the parsing of wrk's reports
# into "req/s p50_ms p99_ms" rows. Not a bench itself (not *.sh). The caller
# defines die MESSAGE (prints it and exits non-zero) and sets HERD.

# shellcheck disable=SC2034  # api_pid, api_url and api_tok are for the caller

# api_server DATA LOG [SERVER ARGS...]: starts `herd server --data DATA` on a
# free 127.0.0.1 port (retried if another process takes it first); sets
# api_pid and api_url, and api_tok to its admin token.
api_server() {
	local data=$1 log=$2 port
	shift 2
	for _ in $(seq 5); do
		for _ in $(seq 50); do
			port=$((20000 + RANDOM % 12000))
			(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
		done
		api_url=http://127.0.0.1:$port
		"$HERD" server --data "$data" --listen "127.0.0.1:$port" --log-level warn "$@" 2>>"$log" &
		api_pid=$!
		for _ in $(seq 100); do
			if curl -sf "$api_url/healthz" >/dev/null; then
				api_tok=$(cat "$data/admin.token")
				return 0
			fi
			kill -0 "$api_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill "$api_pid" 2>/dev/null || true
		wait "$api_pid" 2>/dev/null || true
	done
	die "the herd server did not start: $(tail -3 "$log")"
}

# api_fixtures URL TOKEN GROUPS_N: the account, network, template, cluster c
# and its groups node, g2 .. gGROUPS_N (size 0), each POST checked.
api_fixtures() {
	local url=$1 tok=$2 i
	post() {
		curl -sf -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
			-X POST -d "$2" "$url/v1/$1" >/dev/null || die "POST /v1/$1 to $url failed"
	}
	post accounts '{"name":"here","driver":"local"}'
	post networks '{"name":"vpc1","account":"here","cidr":"198.18.250.0/24"}'
	post templates '{"name":"t","account":"here","network":"vpc1"}'
	post clusters '{"name":"c"}'
	post groups '{"name":"node","cluster":"c","template":"t","size":0,"max":6}'
	for i in $(seq 2 "$3"); do
		post groups "{\"name\":\"g$i\",\"cluster\":\"c\",\"template\":\"t\",\"size\":0,\"max\":6}"
	done
	post scripts '{"name":"bench.sh","content":"#!/bin/sh\ntrue\n"}'
}

# api_lua_get TOKEN FILE [no-cache]: wrk's script for a GET with the bearer
# token (and Cache-Control: no-cache).
api_lua_get() {
	printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$1" >"$2"
	[ "${3:-}" != no-cache ] || printf 'wrk.headers["Cache-Control"] = "no-cache"\n' >>"$2"
}

# api_lua_put TOKEN FILE: wrk's script PUTting a new version of the script
# bench.sh each request (a real, fsynced change: the version and its audit
# row).
api_lua_put() {
	cat >"$2" <<LUA
math.randomseed(os.time())
request = function()
  return wrk.format("PUT", "/v1/scripts/bench.sh",
    { ["Authorization"] = "Bearer $1", ["Content-Type"] = "application/json" },
    '{"name":"bench.sh","content":"#!/bin/sh\\\\necho ' .. math.random(1000000000) .. '\\\\n"}')
end
LUA
}

# api_wrk_row NAME: reads a wrk --latency report; prints "req/s p50_ms
# p99_ms"; dies on any non-2xx answer or socket error.
api_wrk_row() {
	local out
	out=$(cat)
	if grep -q -e 'Non-2xx' -e 'Socket errors' <<<"$out"; then
		die "$1: $(grep -e 'Non-2xx' -e 'Socket errors' <<<"$out")"
	fi
	awk 'function ms(v) {
		if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
		if (v ~ /m$/) return v * 60000; if (v ~ /s$/) return v * 1000; return v }
	/Requests\/sec/ { r = $2 } $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
	END { if (r == "") exit 1; printf "%s %.3f %.3f\n", r, p50, p99 }' <<<"$out"
}

# api_sample NAME URL LUA CONNS THREADS SECONDS [TIMEOUT]: one wrk round
# (an answer slower than TIMEOUT, wrk's 2s by default, is a socket error);
# prints "req/s p50_ms p99_ms"; dies on any non-2xx answer or socket error.
api_sample() {
	wrk -t"$5" -c"$4" -d"${6}s" --timeout "${7:-2s}" --latency -s "$3" "$2" 2>&1 | api_wrk_row "$1 ($2)"
}

# api_stats: reads one number per line; prints "median min max".
api_stats() {
	sort -g | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%g %g %g\n", m, v[1], v[NR] }'
}

# api_row_print WHO FILE: one printed row from FILE's "req/s p50 p99" lines:
# the medians, with the spread of req/s and p99.
api_row_print() {
	local rm rlo rhi p50 p99 p99lo p99hi
	read -r rm rlo rhi < <(cut -d' ' -f1 "$2" | api_stats)
	read -r p50 _ _ < <(cut -d' ' -f2 "$2" | api_stats)
	read -r p99 p99lo p99hi < <(cut -d' ' -f3 "$2" | api_stats)
	printf '    %-6s %9.0f req/s (%.0f..%.0f)  p50 %.3f ms  p99 %.3f ms (%.3f..%.3f)\n' \
		"$1" "$rm" "$rlo" "$rhi" "$p50" "$p99" "$p99lo" "$p99hi"
}
