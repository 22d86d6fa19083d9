#!/usr/bin/env bash
# tests/e2e/0460-error-exporter.bash - a node_exporter stand-in for
# 0460-bench-agent.bats that answers every scrape with an error page: takes
# node_exporter's --web.listen-address=HOST:PORT (other flags ignored) and
# serves a directory listing there, so /metrics is a 404.
set -eu
addr=127.0.0.1:9100
for a in "$@"; do
	case $a in --web.listen-address=*) addr=${a#*=} ;; esac
done
cd /
exec python3 -m http.server --bind "${addr%:*}" "${addr##*:}"
