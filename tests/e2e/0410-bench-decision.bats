#!/usr/bin/env bats
# Push -> decision, measured (issue 15): `herd bench agents --step-metric`
# makes its first agent push a metric high in every other period and prints
# the send time of each change; bench/decision.sh runs it against a real
# server and fake QingCloud with a shadow policy on that metric and times
# every high period's decision from the push that made the condition true.
# Here at 5 agents, with agents that push spread out and aligned: every high
# period must have its decision, found after its crossing push (no timing
# threshold: the figures are the bench's, docs/scale.md). Needs root for the
# harness's conventions only (no namespaces are made).

load lib

FAKE=${FAKE_QC_BIN:-$BATS_TEST_DIRNAME/../../build/fake-qingcloud}
BENCH=$BATS_TEST_DIRNAME/../../bench/decision.sh

setup() {
	require_root
	[ -x "$FAKE" ] || skip "fake QingCloud not built ($FAKE)"
}

# run_bench [aligned [first|last]]: bench/decision.sh at 5 agents, 2 high
# periods of 4 s, the step pushed by the first agent or the last.
run_bench() {
	HERD_BIN=$HERD FAKE_QC_BIN=$FAKE DECISION_COUNTS=5 DECISION_INTERVAL=1s \
		DECISION_STEP=4 DECISION_TRIALS=2 DECISION_ALIGNED=${1:-0} \
		DECISION_STEP_AGENT=${2:-first} "$BENCH"
}

# check_row OUTPUT: the row of 5 agents says 2 trials, 0 missed, and every
# trial's decision is the policy's shadow decision at or after its push.
check_row() {
	echo "$1" | grep -E '^5 +2 +0 +[0-9]+ \(' ||
		{ echo "no row '5 2 0 MS' in: $1"; return 1; }
	[ "$(echo "$1" | grep -c '^  trial: [0-9]* [0-9]* [0-9]* shadow mode: would scale out to 6$')" = 2 ] ||
		{ echo "not two shadow decisions in: $1"; return 1; }
}

@test "a decision is timed for every high period (pushes spread out)" {
	run run_bench 0
	echo "$output"
	[ "$status" -eq 0 ]
	check_row "$output"
}

@test "a decision is timed for every high period (pushes aligned, as the agent; the last agent's step)" {
	run run_bench 1 last
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q 'aligned, as the agent'
	echo "$output" | grep -q 'by the last agent'
	check_row "$output"
}

@test "bench agents refuses a partial or invalid step metric or step agent" {
	printf '{"host_id":"h-1","join_token":"abc"}\n' >"$BATS_TEST_TMPDIR/cfg"
	run herd bench agents --configs "$BATS_TEST_TMPDIR/cfg" --count 1 --step-metric step
	[ "$status" -eq 2 ]
	[[ "$output" == *"go together"* ]]
	run herd bench agents --configs "$BATS_TEST_TMPDIR/cfg" --count 1 --step-metric 'a;b' \
		--step-value 1 --step-every 2s
	[ "$status" -eq 2 ]
	[[ "$output" == *"invalid --step-metric"* ]]
	run herd bench agents --configs "$BATS_TEST_TMPDIR/cfg" --count 1 --step-metric s \
		--step-value nan --step-every 2s
	[ "$status" -eq 2 ]
	[[ "$output" == *"invalid --step-value"* ]]
	run herd bench agents --configs "$BATS_TEST_TMPDIR/cfg" --count 1 --step-metric s \
		--step-value 5 --step-every 10ms
	[ "$status" -eq 2 ]
	[[ "$output" == *"invalid --step-every"* ]]
	run herd bench agents --configs "$BATS_TEST_TMPDIR/cfg" --count 1 --step-metric s \
		--step-value 5 --step-every 2s --step-agent middle
	[ "$status" -eq 2 ]
	[[ "$output" == *"invalid --step-agent 'middle': want first or last"* ]]
	run herd bench agents --configs "$BATS_TEST_TMPDIR/cfg" --count 1 --step-agent last
	[ "$status" -eq 2 ]
	[[ "$output" == *"--step-agent needs --step-metric"* ]]
}
