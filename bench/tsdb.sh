#!/usr/bin/env bash
# bench/tsdb.sh - the metric store (issue 4): bytes per sample beside what
# Prometheus's TSDB stores for the same samples (promtool backfills the same
# generated data into its blocks: chunk files compared), encode/decode ns
# per sample, ingest samples/s per core, the group average over 1 h of
# 100 hosts, and the time to close a store of 400,000 series (SIGTERM) beside
# one write + fsync of the bytes it leaves, and block compaction: a week at
# 50 hosts merged, beside a plain copy (read, write, fsync) of the same
# block files, with query times before and after. Builds bench/tsdb-bench.c against build/libherd.a. Figures, not
# pass/fail: targets are printed beside them.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
HOSTS=${BENCH_TSDB_HOSTS:-10}   # for the size comparison (1 h each)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[ -f "$BUILD/libherd.a" ] || make -s "$BUILD/libherd.a"
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -O2 -Isrc -Isrc/lib -Isrc/server -o "$tmp/tsdb-bench" \
	bench/tsdb-bench.c "$BUILD/libherd.a" \
	$(pkg-config --libs libmicrohttpd libcurl jansson sqlite3 yaml-0.1 libsodium libnl-route-3.0) \
	-lm -pthread
b="$tmp/tsdb-bench"

get() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }

# --- size: herd's blocks vs Prometheus's chunks, same samples ---
"$b" size "$HOSTS" 721 "$tmp/herd" >"$tmp/size" 2>/dev/null
samples=$(get herd_samples_in_chunks "$tmp/size")
hbytes=$(get herd_block_bytes "$tmp/size")
series=$(get herd_series "$tmp/size")
echo "store size: $HOSTS hosts x 1 h at 5 s, $series series, $samples samples"
awk -v b="$hbytes" -v n="$samples" 'BEGIN { printf "  herd        %7.3f B/sample  (%d bytes of block files: chunks, shared timestamp blocks, series, record headers)\n", b / n, b }'
if command -v promtool >/dev/null; then
	"$b" openmetrics "$HOSTS" 720 >"$tmp/om.txt"
	promtool tsdb create-blocks-from openmetrics -q "$tmp/om.txt" "$tmp/prom" >/dev/null
	pbytes=$(cat "$tmp"/prom/*/chunks/* | wc -c)
	awk -v b="$pbytes" -v n="$samples" 'BEGIN { printf "  prometheus  %7.3f B/sample  (%d bytes of chunk files from promtool'"'"'s backfill of the same samples)\n", b / n, b }'
	awk -v h="$hbytes" -v p="$pbytes" -v n="$samples" 'BEGIN { printf "  raw          16.000 B/sample\n  ratio herd/prometheus %.2f (target <= 0.75); herd %.3f B/sample (target <= 1.3); herd/raw %.3f\n", h / p, h / n, h / n / 16 }'
else
	echo "  prometheus  (promtool not installed: apt-get install prometheus)"
	awk -v h="$hbytes" -v n="$samples" 'BEGIN { printf "  raw          16.000 B/sample\n  herd %.3f B/sample (target <= 1.3); herd/raw %.3f\n", h / n, h / n / 16 }'
fi

# --- codec ---
"$b" codec >"$tmp/codec"
awk '$1 == "codec_encode_ns_per_sample" { e = $2 } $1 == "codec_decode_ns_per_sample" { d = $2 }
	$1 == "codec_bytes_per_sample" { s = $2 }
	END { printf "codec (chunks of 360, 20 hosts): encode %.1f ns/sample (target <= 15), decode %.1f ns/sample (target <= 8), %.3f B/sample encoded\n", e, d, s }' "$tmp/codec"

# --- ingest ---
"$b" ingest "$tmp" >"$tmp/ingest" 2>/dev/null
awk '{ v[$1] = $2 } END {
	printf "ingest: %.2f M samples per CPU second on one thread, WAL without fsync (target >= 1 M)\n", v["ingest_samples_per_cpu_s"] / 1e6
	printf "        durable: %.0f k samples/s, 4 appenders, %d batches of 32 in %d fsyncs (group commit)\n", v["durable_samples_per_s"] / 1e3, v["durable_batches"], v["durable_fsyncs"] }' "$tmp/ingest"

# --- query ---
"$b" query 100 "$tmp/query" >"$tmp/q" 2>/dev/null
awk '{ v[$1] = $2 } END {
	printf "query: avg(cpu_busy_pct) of a group of %d hosts over 1 h at 10 s steps (%d samples): median %.3f ms, p90 %.3f ms\n", v["query_hosts"], v["query_samples"], v["query_median_ms"], v["query_p90_ms"] }' "$tmp/q"

# --- close (SIGTERM) ---
CLOSE_SERIES=${BENCH_TSDB_CLOSE_SERIES:-400000}
mkdir -p "$tmp/close"
"$b" close "$CLOSE_SERIES" "$tmp/close" >"$tmp/c" 2>/dev/null
awk '{ v[$1] = $2 } END {
	printf "close: %d series in %.3f s (target <= 5 s: systemd'"'"'s stop timeout leaves room), reference: the same %.1f MB written with one fsync in %.3f s\n", v["close_series"], v["close_s"], v["close_bytes"] / 1e6, v["close_ref_s"] }' "$tmp/c"

# --- compaction ---
CH=${BENCH_TSDB_COMPACT_HOSTS:-50}
CD=${BENCH_TSDB_COMPACT_DAYS:-7}
mkdir -p "$tmp/compact"
"$b" compact "$CH" "$CD" "$tmp/compact" >"$tmp/cp" 2>/dev/null
awk '{ v[$1] = $2 } END {
	printf "compact: %d days at 1 min of %d hosts (%d series): %d blocks (%.1f MB) -> %d (%.1f MB) in %d merges, %.3f s; reference: a plain copy of the %.1f MB of block files with one fsync %.3f s; ratio %.2f\n", v["compact_days"], v["compact_hosts"], v["compact_series"], v["compact_blocks_before"], v["compact_bytes_before"] / 1e6, v["compact_blocks_after"], v["compact_bytes_after"] / 1e6, v["compact_merges"], v["compact_s"], v["compact_ref_bytes"] / 1e6, v["compact_ref_s"], v["compact_s"] / v["compact_ref_s"]
	printf "         queries (median of 21): avg of the group over a day at 5 min %.3f ms before, %.3f ms after; an hour raw across a day edge %.3f ms before, %.3f ms after\n", v["compact_agg_ms_before"], v["compact_agg_ms_after"], v["compact_raw_ms_before"], v["compact_raw_ms_after"]
	printf "         the store'"'"'s lock held at most %.3f ms per merge (repointing chunks; the file is written outside it)\n", v["compact_hold_ms"] }' "$tmp/cp"
