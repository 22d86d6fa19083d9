#!/usr/bin/env bash
# bench/store.sh - herd on PostgreSQL beside herd on SQLite, in the same run
# (issue 19, docs/ha.md "Speed: PostgreSQL beside SQLite"). Two servers of
# the same binary with the same fixtures (bench/api-lib.bash: one cluster of
# 5 groups and a script), one on SQLite in its data directory (WAL,
# synchronous=FULL, as herd always runs it), one on a throwaway PostgreSQL
# (tools/pg-tmp.sh: Debian's server on a Unix socket, fsync on,
# synchronous_commit on: both settings printed from the server):
#   uncached  GET /v1/groups       (a list: never served from the GET cache)
#   single    GET /v1/groups/node  with Cache-Control: no-cache (one resource
#             read from the store)
#   PUT       PUT /v1/scripts/bench.sh by BENCH_WRITERS clients (each a new
#             version and its audit row, committed and synced), alone
# Before anything is measured both servers are asked each GET once: each
# must answer 200, and the two bodies must be the same bytes once the
# fields that are each server's own (the times a row was made or changed)
# are taken out; wrk's non-2xx answers and socket errors stop the bench.
# Rounds alternate (sqlite, pg, sqlite, pg ...), BENCH_ROUNDS of each,
# BENCH_DURATION seconds, wrk -t2 -cBENCH_CONNS (the PUTs: -t1
# -cBENCH_WRITERS), wrk's timeout 10 s (not its 2 s: on a shared machine a
# commit's sync can take seconds; slow is measured in p99, only no answer
# fails); medians printed with the spread (min..max) and the ratio
# PostgreSQL/SQLite (per round, then its median).
# Then push -> decision: bench/decision.sh with DECISION_STORE, STORE_DEC_N
# aligned agents (default 100), pushes every 1 s, STORE_DEC_TRIALS trials
# (default 3) a run, STORE_DEC_ROUNDS alternated runs per store (default 2),
# each on a fresh server and, for PostgreSQL, a fresh database;
# STORE_DEC_ROUNDS=0 leaves it out. A benchmark, not a test: there is no
# target, the ratio is the figure. Skipped when PostgreSQL is not installed.
# No root needed (as root, PostgreSQL runs as nobody: pg-tmp.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
HERD=$(realpath "${HERD_BIN:-build/herd}")
export HERD_BIN=$HERD
DUR=${BENCH_DURATION:-3}
ROUNDS=${BENCH_ROUNDS:-5}
CONNS=${BENCH_CONNS:-32}
WRITERS=${BENCH_WRITERS:-4}
DEC_N=${STORE_DEC_N:-100}
DEC_TRIALS=${STORE_DEC_TRIALS:-3}
DEC_ROUNDS=${STORE_DEC_ROUNDS:-2}
GROUPS_N=5
die() { echo "store: FAILED: $*" >&2; exit 1; }

for t in wrk curl psql perl; do
	command -v "$t" >/dev/null || die "$t missing (tools/deps.sh bench installs it)"
done
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && [ -z "${PG_BIN:-}" ]; then
	echo "store: skipped (no PostgreSQL server: apt-get install postgresql)"
	exit 0
fi
work=$(mktemp -d /tmp/herd-bench-store.XXXXXX)
pgdir=$(mktemp -u /tmp/herd-bench-pg.XXXXXX)   # nobody must reach it: not mktemp -d
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	tools/pg-tmp.sh stop "$pgdir"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck source=bench/api-lib.bash
. bench/api-lib.bash

dsn=$(tools/pg-tmp.sh start "$pgdir")
pgq() { psql "$dsn" -XAtqc "$1"; }
# newdb NAME: creates database NAME on the throwaway server; prints its DSN.
newdb() {
	pgq "CREATE DATABASE $1" >/dev/null || die "cannot create database $1"
	echo "postgresql://herd@/$1?host=$pgdir/sock"
}
pgver=$(pgq 'SHOW server_version')
pgsync="fsync=$(pgq 'SHOW fsync'), synchronous_commit=$(pgq 'SHOW synchronous_commit')"

# the two servers: sqlite then pg (arrays indexed as stores)
stores=(sqlite pg)
declare -A url tok
api_server "$work/sqlite" "$work/sqlite.log"
pids+=("$api_pid"); url[sqlite]=$api_url; tok[sqlite]=$api_tok
api_dsn=$(newdb bench_api)
api_server "$work/pg" "$work/pg.log" --store "$api_dsn"
pids+=("$api_pid"); url[pg]=$api_url; tok[pg]=$api_tok
for s in "${stores[@]}"; do
	api_fixtures "${url[$s]}" "${tok[$s]}" "$GROUPS_N"
	api_lua_get "${tok[$s]}" "$work/get.$s.lua"
	api_lua_get "${tok[$s]}" "$work/fresh.$s.lua" no-cache
	api_lua_put "${tok[$s]}" "$work/put.$s.lua"
done

# comparable FILE: the JSON body without the fields that are each server's
# own (the times "created" and "updated"), canonical (sorted keys).
comparable() {
	perl -MJSON::PP -e '
		sub strip { my $v = shift;
			if (ref $v eq "HASH") { delete $v->{$_} for grep { /^(created|updated)$/ } keys %$v; strip($_) for values %$v }
			elsif (ref $v eq "ARRAY") { strip($_) for @$v } }
		my $d = decode_json(join "", <STDIN>); strip($d);
		print JSON::PP->new->canonical->pretty->encode($d)' <"$1"
}
# rows: name, path, lua (get or fresh)
rows=("uncached|/v1/groups|get" "single|/v1/groups/node|fresh")
for r in "${rows[@]}"; do
	IFS='|' read -r name path lua <<<"$r"
	hdr=(-H 'X-Bench: 1')
	[ "$lua" = fresh ] && hdr=(-H 'Cache-Control: no-cache')
	for s in "${stores[@]}"; do
		code=$(curl -s -H "Authorization: Bearer ${tok[$s]}" "${hdr[@]}" -o "$work/$name.$s.body" \
			-w '%{http_code}' "${url[$s]}$path")
		[ "$code" = 200 ] || die "$name: the $s server answered $code to GET $path"
		comparable "$work/$name.$s.body" >"$work/$name.$s.cmp" || die "$name: $s's answer is not JSON"
	done
	cmp -s "$work/$name.sqlite.cmp" "$work/$name.pg.cmp" ||
		die "$name: GET $path differs between the stores: $(diff "$work/$name.sqlite.cmp" "$work/$name.pg.cmp" | head -20)"
done

cores=$(nproc)
workers=$((cores < 2 ? 2 : cores > 16 ? 16 : cores))
echo "store: herd on SQLite (WAL, synchronous=FULL) vs herd on PostgreSQL $pgver (Unix socket, $pgsync);" \
	"same binary and fixtures; $workers HTTP threads each (one per core, >= 2); $cores cores shared by both" \
	"servers, PostgreSQL and wrk; $ROUNDS alternated rounds (sqlite, pg, ...) of ${DUR}s, wrk --timeout 10s; median (min..max)"
# ratios FILE_SQLITE FILE_PG COLUMN: per round pg/sqlite of that column.
ratios() { paste -d' ' "$1" "$2" | awk -v c="$3" '{ print $(c + 3) / $c }'; }
# report NAME TITLE: the two rows and the ratios of req/s and p99.
report() {
	local q qlo qhi l llo lhi
	echo "  $2"
	api_row_print sqlite "$work/$1.sqlite"
	api_row_print pg "$work/$1.pg"
	read -r q qlo qhi < <(ratios "$work/$1.sqlite" "$work/$1.pg" 1 | api_stats)
	read -r l llo lhi < <(ratios "$work/$1.sqlite" "$work/$1.pg" 3 | api_stats)
	printf '    ratio  pg/sqlite req/s %.2fx (per round %.2f..%.2f), p99 %.2fx (%.2f..%.2f)\n' \
		"$q" "$qlo" "$qhi" "$l" "$llo" "$lhi"
}
for r in "${rows[@]}"; do
	IFS='|' read -r name path lua <<<"$r"
	: >"$work/$name.sqlite"; : >"$work/$name.pg"
	for _ in $(seq "$ROUNDS"); do
		for s in "${stores[@]}"; do
			api_sample "$name $s" "${url[$s]}$path" "$work/$lua.$s.lua" "$CONNS" 2 "$DUR" 10s >>"$work/$name.$s"
		done
	done
	extra=
	[ "$lua" = fresh ] && extra=' (Cache-Control: no-cache)'
	report "$name" "$(printf '%-8s GET %s%s (%d bytes; the same from both but for the created/updated times), wrk -t2 -c%d' \
		"$name" "$path" "$extra" "$(wc -c <"$work/$name.sqlite.body")" "$CONNS")"
done
: >"$work/put.sqlite"; : >"$work/put.pg"
# PostgreSQL's WAL syncs per change: pg_stat_wal's wal_sync (the whole
# server's, and nothing else writes to it) over the pg server's PUTs (the
# script versions it stored)
versions() { psql "$api_dsn" -XAtqc 'SELECT count(*) FROM script_versions'; }
syncs() { pgq 'SELECT wal_sync FROM pg_stat_wal'; }
v0=$(versions) w0=$(syncs) wpg=0
for _ in $(seq "$ROUNDS"); do
	for s in "${stores[@]}"; do
		[ "$s" = pg ] && w1=$(syncs)
		api_sample "PUT $s" "${url[$s]}/v1/scripts/bench.sh" "$work/put.$s.lua" "$WRITERS" 1 "$DUR" 10s >>"$work/put.$s"
		[ "$s" = pg ] && wpg=$((wpg + $(syncs) - w1))
	done
done
v1=$(versions)
report put "$(printf 'PUT      /v1/scripts/bench.sh (a new version and its audit row each), wrk -t1 -c%d, no other load' "$WRITERS")"
printf '    pg: %d WAL syncs (pg_stat_wal) in its rounds for %d changes = %.2f a change (%d in the whole PUT part)\n' \
	"$wpg" "$((v1 - v0))" "$(awk -v s="$wpg" -v c="$((v1 - v0))" 'BEGIN { print (c > 0 ? s / c : 0) }')" \
	"$(($(syncs) - w0))"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done   # the API servers are done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()

# --- push -> decision: bench/decision.sh once per store and round ---
[ "$DEC_ROUNDS" -gt 0 ] || exit 0
: >"$work/dec.sqlite"; : >"$work/dec.pg"; : >"$work/miss.sqlite"; : >"$work/miss.pg"
for i in $(seq "$DEC_ROUNDS"); do
	for s in "${stores[@]}"; do
		st=
		[ "$s" = pg ] && st=$(newdb "bench_dec$i")
		out=$(DECISION_COUNTS=$DEC_N DECISION_INTERVAL=1s DECISION_STEP=6 DECISION_TRIALS=$DEC_TRIALS \
			DECISION_ALIGNED=1 DECISION_EDGE=0 DECISION_STORE=$st bash bench/decision.sh 2>&1) ||
			die "decision.sh on $s: $(tail -5 <<<"$out")"
		case $out in *"decision: skipped"*) echo "  push -> decision: $out"; exit 0 ;; esac
		# its per-trial lines: "  trial: sent_ms decision_ms latency_ms reason"
		awk '$1 == "trial:" && $4 != "-" { print $4 }' <<<"$out" >>"$work/dec.$s"
		awk '$1 == "trial:" && $4 == "-"' <<<"$out" >>"$work/miss.$s"
	done
done
echo "  push -> decision (bench/decision.sh: $DEC_N agents aligned, pushes every 1 s, a shadow policy" \
	"max(step) > 50; $DEC_ROUNDS alternated runs per store of $DEC_TRIALS trials, a fresh server and store each)"
for s in "${stores[@]}"; do
	[ -s "$work/dec.$s" ] || die "push -> decision on $s: no trial reached a decision"
	read -r m lo hi < <(api_stats <"$work/dec.$s")
	printf '    %-6s median %.0f ms, max %.0f ms (min %.0f; %d trials, %d without a decision; all: %s)\n' \
		"$s" "$m" "$hi" "$lo" "$(wc -l <"$work/dec.$s")" "$(wc -l <"$work/miss.$s")" \
		"$(sort -n "$work/dec.$s" | tr '\n' ' ' | sed 's/ $//')"
done
read -r ms _ _ < <(api_stats <"$work/dec.sqlite")
read -r mp _ _ < <(api_stats <"$work/dec.pg")
printf '    ratio  pg/sqlite median %.2fx\n' "$(awk -v a="$ms" -v b="$mp" 'BEGIN { print (a > 0 ? b / a : 0) }')"
echo "machine load average at the end (other work shares the cores): $(cut -d' ' -f1-3 /proc/loadavg)"
