#!/usr/bin/env bash
# bench/hostpage.sh - SQLite time of a host list page at N hosts (issue 15,
# docs/scale.md "The host list at 1,000 hosts"): a late page against the
# first, the generic query beside the one written for the page's shape.
# bench/hostpage-sql.c, built by make as build/hostpage-bench; BENCH_HOSTPAGE_HOSTS
# (default 1000) hosts in one group. Figures, not pass/fail.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
HOSTS=${BENCH_HOSTPAGE_HOSTS:-1000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

make -s "$BUILD/hostpage-bench"   # up to date with the model
"$BUILD/hostpage-bench" "$tmp" "$HOSTS"
