#!/usr/bin/env bash
# bench/hostpage.sh - SQLite time of a host list page at N hosts (issue 15,
# docs/scale.md "The host list at 1,000 hosts"): a late page against the
# first, the generic query beside the one written for the page's shape.
# Builds bench/hostpage-sql.c against build/libherd.a; BENCH_HOSTPAGE_HOSTS
# (default 1000) hosts in one group. Figures, not pass/fail.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
HOSTS=${BENCH_HOSTPAGE_HOSTS:-1000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[ -f "$BUILD/libherd.a" ] || make -s "$BUILD/libherd.a"
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -O2 -Isrc -Isrc/lib -Isrc/server -o "$tmp/hostpage-sql" \
	bench/hostpage-sql.c "$BUILD/libherd.a" \
	$(pkg-config --libs libmicrohttpd libcurl jansson sqlite3 yaml-0.1 libsodium libnl-route-3.0 gnutls libpq libprotobuf-c) \
	-lsnappy -lm -pthread
"$tmp/hostpage-sql" "$tmp" "$HOSTS"
