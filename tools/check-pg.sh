#!/usr/bin/env bash
# check-pg.sh - make check's PostgreSQL pass (docs/ha.md, "Tests"): starts a
# throwaway PostgreSQL with tools/pg-tmp.sh in a temporary directory (a trap
# stops and removes it, even on failure or ^C), runs the store contract
# (test-store-contract) on it and then e2e files with HERD_TEST_PG set, so
# that every server of those files gets a fresh database of its own on it
# (tests/e2e/lib.bash). The files are the arguments, or by default the list
# below: the ones that cover the store within some 12 minutes.
#   tools/check-pg.sh                          the default list
#   tools/check-pg.sh tests/e2e/0040-scripts.bats ...   those files
# HERD_BIN names the server binary (default build/herd). TAP from prove.
set -eu

cd "$(dirname "$0")/.."
HERD_BIN=${HERD_BIN:-$PWD/build/herd}
UNIT=$(dirname "$HERD_BIN")/tests/test-store-contract

# The store's users: the API and its resources, hosts, scripts and runs,
# autoscale, refreshes and rolling runs, alerts, retention, drain, the
# bookkeeping, the QingCloud crash recovery and launch intents, the lease,
# the join retry.
DEFAULT_FILES="
tests/e2e/0010-api.bats
tests/e2e/0020-hosts.bats
tests/e2e/0040-scripts.bats
tests/e2e/0070-autoscale.bats
tests/e2e/0210-drain.bats
tests/e2e/0220-bookkeeping.bats
tests/e2e/0290-qingcloud-crash.bats
tests/e2e/0300-retention.bats
tests/e2e/0346-launch-intents.bats
tests/e2e/0470-alerts.bats
tests/e2e/0500-refresh.bats
tests/e2e/0510-rolling-run.bats
tests/e2e/0640-lease.bats
tests/e2e/0700-join-retry.bats
"

dir=$(mktemp -u /tmp/herd-pg-check.XXXXXX)   # nobody must reach it: not mktemp -d
trap 'tools/pg-tmp.sh stop "$dir"' EXIT
trap 'exit 130' INT TERM
dsn=$(tools/pg-tmp.sh start "$dir")
export HERD_BIN HERD_TEST_PG="$dsn" HERD_TEST_PG_DSN="$dsn"

if [ $# -eq 0 ]; then
	# shellcheck disable=SC2086 # the list is words
	set -- $DEFAULT_FILES
fi
CMOCKA_MESSAGE_OUTPUT=TAP tools/prove-report.sh "$UNIT" "$@"
