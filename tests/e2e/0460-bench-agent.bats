#!/usr/bin/env bats
# The agent footprint bench (issue 16): bench/agent.sh measures the whole
# agent in a local host next to node_exporter (matching collectors) and
# collectd in the same host, and must refuse to compare against a reference
# that did not work. Short runs (6 cycles of 1 s): the figures are the
# bench's (docs/agent.md); here only that every row and goal is printed, and
# that an exporter answering an error page fails the bench. Needs root (the
# local provider's namespaces), node_exporter and collectd.

load lib

BENCH=$BATS_TEST_DIRNAME/../../bench/agent.sh

setup() {
	require_root
	if [ ! -x /usr/bin/prometheus-node-exporter ] || [ ! -x /usr/sbin/collectd ]; then
		skip "node_exporter or collectd missing (tools/deps.sh bench)"
	fi
}

# bench_left: the bench's references still running (it stops them in its trap)
bench_left() {
	pgrep -af 'collectd -f -C /tmp/herd-bench-collectd/|(exporter|0460-error-exporter.bash) .*127\.0\.0\.1:9100'
}

teardown() {
	refute bench_left
}

run_bench() {
	HERD_BIN=$HERD BENCH_AGENT_CYCLES=6 BENCH_AGENT_WARMUP=1 "$@" bash "$BENCH"
}

@test "the agent, node_exporter and collectd in one host: a row each and the goals" {
	run run_bench
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"the host runs a copy of it"* ]]
	echo "$output" | grep -Eq '^  herd agent +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +([0-9]+|none) +[0-9]+$'
	echo "$output" | grep -Eq '^  node_exporter +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +([0-9]+|none) +[0-9]+$'
	echo "$output" | grep -Eq '^  collectd +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+\+[0-9]+ +([0-9]+|none) +[0-9]+$'
	echo "$output" | grep -q 'node_exporter answered 200 to all 6 scrapes'
	echo "$output" | grep -q 'collectd wrote [0-9]* load rows'
	[ "$(echo "$output" | grep -Ec '^  goal .* (pass|FAIL)')" = 3 ]
}

@test "an exporter answering an error page fails the bench, no figures" {
	run run_bench env BENCH_AGENT_NODE_EXPORTER="$BATS_TEST_DIRNAME/0460-error-exporter.bash"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"6 of 6 scrapes not HTTP 200"* ]]
	[[ "$output" != *"goal"* ]]
}
