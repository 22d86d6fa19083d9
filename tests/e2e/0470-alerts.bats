#!/usr/bin/env bats
# Alerting (issue 17): rules declared in a blueprint refused at the door
# (FILE:LINE naming the field); a user rule on a monitor value goes pending,
# then firing after `for`, then resolved after recovery, each transition in
# the history exactly once; a silenced rule's events are recorded silenced;
# and the built-ins fire on real facts: a group held at its max while its
# policy wants more, a failed init script, a host whose PID 1 the test
# kills, a group whose policies take turns (group_flapping); the user rule's
# transitions reach a webhook receiver once each, the silenced ones never.
# Local provider; no timing thresholds: generous bounded waits.

load lib

setup_file() {
	require_root
	server_start --push-interval 1s
	export CIDR
	CIDR=$(random_cidr)
	mkdir -p "$BATS_FILE_TMPDIR/bp"
	cp -r "$BATS_TEST_DIRNAME/fixtures/alerts/." "$BATS_FILE_TMPDIR/bp/"
	sed -i "s|CIDR|$CIDR|" "$BATS_FILE_TMPDIR/bp/alerts.yaml"
	herd apply -f "$BATS_FILE_TMPDIR/bp/alerts.yaml" >/dev/null
	# the evaluator's events to a real receiver: a webhook (0480-webhook.py
	# checks the signature) taking rule hot
	HOOK=$BATS_FILE_TMPDIR/hook
	mkdir -p "$HOOK"
	printf 'hook-secret-%s\n' "$RANDOM" >"$HOOK/secret"
	chmod 600 "$HOOK/secret"
	HOOK_PORT=$(free_port)
	/usr/bin/python3 "$BATS_TEST_DIRNAME/0480-webhook.py" "$HOOK_PORT" "$HOOK/secret" "$HOOK" \
		>"$HOOK/log" 2>&1 &
	echo $! >"$BATS_FILE_TMPDIR/hook.pid"
	wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$HOOK_PORT" 2>/dev/null
	printf 'receivers:\n  - name: ops\n    type: webhook\n    url: http://127.0.0.1:%s/alerts\n    secret_file: %s\n    group_wait: 0s\n    match:\n      rules: [hot]\n' \
		"$HOOK_PORT" "$HOOK/secret" >"$BATS_FILE_TMPDIR/bp/receivers.yaml"
	herd apply -f "$BATS_FILE_TMPDIR/bp/receivers.yaml" >/dev/null
	export HOOK
	wait_for 90 ready_count_is 2
}

# The fake QingCloud a test started, stopped by its PID.
teardown() {
	if [ -f "$BATS_FILE_TMPDIR/fake.pid" ]; then
		kill "$(cat "$BATS_FILE_TMPDIR/fake.pid")" 2>/dev/null || true
		rm -f "$BATS_FILE_TMPDIR/fake.pid"
	fi
}

teardown_file() {
	if [ -f "$BATS_FILE_TMPDIR/hook.pid" ]; then
		kill "$(cat "$BATS_FILE_TMPDIR/hook.pid")" 2>/dev/null || true
		wait "$(cat "$BATS_FILE_TMPDIR/hook.pid")" 2>/dev/null || true
	fi
	server_cleanup
}

# hook_count RULE STATE [SILENCED]: alerts in the webhook's verified bodies
hook_count() {
	[ -f "$HOOK/bodies.jsonl" ] || { echo 0; return; }
	perl -MJSON::PP -ne '
		BEGIN { ($r, $st) = splice @ARGV, 0, 2; $n = 0 }
		for (@{decode_json($_)->{alerts}}) { $n++ if $_->{rule} eq $r && $_->{state} eq $st }
		END { print "$n\n" }' "$1" "$2" "$HOOK/bodies.jsonl"
}

hook_has() { [ "$(hook_count "$1" "$2")" -ge "$3" ]; }

ready_count_is() {
	[ "$(herd host ls --group al/node --json | perl -MJSON::PP -e \
		'print scalar grep { $_->{state} eq "ready" } @{decode_json(join "", <STDIN>)->{items}}')" -eq "$1" ]
}

# set_busy NAME VALUE: what that host's monitor will report.
set_busy() {
	local id
	id=$(herd host show "al/$1" --json | json '{id}')
	echo "$2" >"$HERD_DATA/hosts/$id/busy.tmp"
	mv "$HERD_DATA/hosts/$id/busy.tmp" "$HERD_DATA/hosts/$id/busy"
}

node_names() {
	herd host ls --group al/node --json | perl -MJSON::PP -e \
		'print join(" ", map { $_->{name} } grep { $_->{state} eq "ready" } @{decode_json(join "", <STDIN>)->{items}}), "\n"'
}

# cursor_at_newest RECEIVER: the receiver has passed every event recorded
cursor_at_newest() {
	local newest
	newest=$(herd alert history --limit 10000 --json | perl -MJSON::PP -e '
		my $m = 0; $m = $_->{id} for @{decode_json(join "", <STDIN>)->{items}}; print "$m\n"')
	[ "$(http GET /v1/alerts/receivers "$HERD_TOKEN" | cut -d' ' -f2- | perl -MJSON::PP -e '
		for (@{decode_json(join "", <STDIN>)->{items}}) { print "$_->{cursor}\n" if $_->{name} eq $ARGV[0] }' "$1")" -ge "$newest" ]
}

# alert_state RULE GROUP [KEY]: the instance's state in `herd alert ls`, or "".
alert_state() {
	herd alert ls --json | perl -MJSON::PP -e '
		my ($r, $g, $k) = @ARGV;
		for (@{decode_json(join "", <STDIN>)->{items}}) {
			next unless $_->{rule} eq $r && "$_->{cluster}/$_->{group}" eq $g;
			next if defined $k && $_->{key} ne $k;
			print "$_->{state}\n"; exit }' "$@"
}

alert_is() { # alert_is STATE RULE GROUP [KEY]
	local want=$1
	shift
	[ "$(alert_state "$@")" = "$want" ]
}

# events RULE STATE [SILENCED]: how many history events of RULE in STATE
# (not reminders), optionally only those with silenced = 0|1.
events() {
	herd alert history --rule "$1" --limit 10000 --json | perl -MJSON::PP -e '
		my ($st, $sil) = @ARGV;
		print scalar grep { $_->{state} eq $st && !$_->{repeat} &&
			(!defined $sil || ($_->{silenced} ? 1 : 0) == $sil) }
			@{decode_json(join "", <STDIN>)->{items}}' "$2" "${3:-}"
}

events_at_least() { # events_at_least N RULE STATE [SILENCED]
	local n=$1
	shift
	[ "$(events "$@")" -ge "$n" ]
}

@test "alert rules are refused at the door, naming FILE:LINE and the field" {
	local f="$BATS_FILE_TMPDIR/bp/bad.yaml"
	sed 's|avg(busy) > 36|avg(busy >> 36|' "$BATS_FILE_TMPDIR/bp/alerts.yaml" >"$f"
	run herd apply -f "$f" --dry-run
	[ "$status" -ne 0 ]
	[[ "$output" == *"bad.yaml:"*"alerts[0].when"* ]]
	sed 's|severity: critical|severity: page|' "$BATS_FILE_TMPDIR/bp/alerts.yaml" >"$f"
	run herd apply -f "$f" --dry-run
	[ "$status" -ne 0 ]
	[[ "$output" == *"alerts[0].severity"*"critical, warning or info"* ]]
	sed 's|{{hosts}}|{{nodes}}|' "$BATS_FILE_TMPDIR/bp/alerts.yaml" >"$f"
	run herd apply -f "$f" --dry-run
	[ "$status" -ne 0 ]
	[[ "$output" == *"alerts[0].summary"*"nodes"* ]]
	sed 's|for: 3s|for: soon|' "$BATS_FILE_TMPDIR/bp/alerts.yaml" >"$f"
	run herd apply -f "$f" --dry-run
	[ "$status" -ne 0 ]
	[[ "$output" == *"alerts[0].for"* ]]
	# the rules in force: built-ins (one overridden by the group) and the user rule
	herd alert show hot --group al/node --json | grep -q '"origin": "group al/node"'
	[ "$(herd alert show agent_silent --group al/node --json | json '{rules}[0]{severity}')" = critical ]
	[ "$(herd alert show host_failed --group al/node --json | json '{rules}[0]{origin}')" = builtin ]
	run herd alert ls --bogus
	[ "$status" -ne 0 ]
}

@test "a user rule goes pending, fires after for, resolves after recovery; once each in the history; group_at_max fires" {
	local h
	[ "$(events hot firing)" -eq 0 ]
	for h in $(node_names); do set_busy "$h" 40; done
	wait_for 60 alert_is pending hot al/node
	wait_for 60 alert_is firing hot al/node
	herd alert ls | grep -q "hot"
	herd alert ls --json | grep -q '"summary": "al/node busy 40 on '
	# the policy wants a third host; the group is at its max of 2
	wait_for 60 alert_is firing group_at_max al/node grow
	for h in $(node_names); do set_busy "$h" 25; done
	wait_for 60 alert_is "" hot al/node
	wait_for 60 alert_is "" group_at_max al/node grow
	[ "$(events hot firing)" -eq 1 ]
	[ "$(events hot resolved)" -eq 1 ]
	herd alert history --rule hot | grep -q resolved
	herd alert history --rule hot --json | grep -q '"team": "ops"'
	# the webhook got both transitions, signed, once each
	wait_for 60 hook_has hot resolved 1
	[ "$(hook_count hot firing)" -eq 1 ]
	[ "$(hook_count hot resolved)" -eq 1 ]
	[ ! -s "$HOOK/bad.log" ]
}

@test "a silenced rule records silenced events; the silence can be listed and deleted" {
	local h id
	herd alert silence hot --group al/node --for 1h --reason "planned load test"
	herd alert silences | grep -q "planned load test"
	for h in $(node_names); do set_busy "$h" 40; done
	wait_for 60 events_at_least 1 hot firing 1
	alert_is firing hot al/node
	[ "$(herd alert ls --json | json '{items}[0]{silenced}')" = 1 ] ||
		herd alert ls --json | grep -q '"silenced": true'
	for h in $(node_names); do set_busy "$h" 25; done
	wait_for 60 events_at_least 1 hot resolved 1
	# nothing of the silenced instance reached the webhook (its receiver
	# is past those events once its cursor is: delivery is in order)
	wait_for 60 cursor_at_newest ops
	[ "$(hook_count hot firing)" -eq 1 ]
	[ "$(hook_count hot resolved)" -eq 1 ]
	id=$(herd alert silences --json | json '{items}[0]{id}')
	herd alert unsilence "$id"
	[ "$(herd alert silences --json | json_count '{items}')" -eq 0 ]
	run herd alert silence hot --for soon --reason x
	[ "$status" -ne 0 ]
	[[ "$output" == *"for"* ]]
}

@test "built-ins: a failed init script fires init_script_failed and host_failed" {
	local host
	wait_for 120 events_at_least 1 init_script_failed firing
	host=$(herd alert history --rule init_script_failed --json | json '{items}[0]{key}')
	[[ "$host" == broken-* ]]
	herd alert history --rule init_script_failed --json | grep -q "missing package\|exit"
	wait_for 60 events_at_least 1 host_failed firing
}

@test "built-ins: a host whose PID 1 is killed fires agent_silent (severity overridden)" {
	local name id pid
	name=$(node_names | cut -d' ' -f1)
	id=$(herd host show "al/$name" --json | json '{id}')
	pid=$(cat "$HERD_DATA/hosts/$id/pid")
	kill -9 "$pid"
	wait_for 120 events_at_least 1 agent_silent firing
	herd alert history --rule agent_silent --json | grep -q "\"key\": \"$name\""
	herd alert history --rule agent_silent --json | grep -q '"severity": "critical"'
}

@test "built-ins: an account with a wrong secret fires launch_failing" {
	local fake=${FAKE_QC_BIN:-$BATS_TEST_DIRNAME/../../build/fake-qingcloud} port dir fpid
	[ -x "$fake" ] || skip "fake QingCloud not built ($fake)"
	dir=$(mktemp -d "$BATS_FILE_TMPDIR/fqc.XXXXXX")
	port=$(free_port)
	echo "RIGHT-$RANDOM$RANDOM" >"$dir/secret"
	echo "WRONG-$RANDOM$RANDOM" >"$dir/wrong"
	chmod 600 "$dir/secret" "$dir/wrong"
	"$fake" --listen "127.0.0.1:$port" --state-dir "$dir/state" --access-key-id QYACCESSKEYIDEXAMPLE \
		--secret-file "$dir/secret" --zone pek3a 2>>"$dir/fake.log" &
	fpid=$!
	echo "$fpid" >"$BATS_FILE_TMPDIR/fake.pid"   # teardown stops it even on failure
	wait_for 10 curl -s -o /dev/null "http://127.0.0.1:$port/iaas/"
	cat >"$dir/qc.yaml" <<YAML
accounts:
  - name: qc-wrong
    driver: qingcloud
    zone: pek3a
    access_key_id: QYACCESSKEYIDEXAMPLE
    secret_file: $dir/wrong
    endpoint: http://127.0.0.1:$port/iaas/
networks:
  - name: qc-net
    account: qc-wrong
    cidr: $(random_cidr)
templates:
  - name: qc-node
    account: qc-wrong
    network: qc-net
    image: img-test
    instance_type: c1m1
clusters:
  - name: qc
    groups:
      - name: g
        template: qc-node
        size: 1
YAML
	herd apply -f "$dir/qc.yaml" >/dev/null
	wait_for 120 events_at_least 1 launch_failing firing
	herd alert history --rule launch_failing --json | grep -q '"group": "g"'
	herd alert ls --json | grep -q '"rule": "launch_failing"'
	herd delete -f "$dir/qc.yaml" --timeout 60s >/dev/null || true
}

# policy_turns GROUP: how many scale activities of the group's policies
policy_turns() {
	herd activity ls --group "$1" --json 2>/dev/null | perl -MJSON::PP -e '
		print scalar grep { $_->{kind} =~ /^scale_(out|in)$/ && $_->{cause} =~ /^policy:/ }
			@{decode_json(join "", <STDIN>)->{items}}'
}

@test "built-ins: a group whose policies keep changing direction fires group_flapping" {
	herd apply -f "$BATS_FILE_TMPDIR/bp/flap.yaml" >/dev/null
	# the rule is in force for the group, and nothing has flapped yet
	[ "$(herd alert show group_flapping --group fl/flap --json | json '{rules}[0]{origin}')" = builtin ]
	wait_for 120 alert_is firing group_flapping fl/flap
	# what fired it: more than 3 changes of direction by its policies
	[ "$(policy_turns fl/flap)" -ge 5 ]
	herd alert ls --json | grep -q '"summary": "fl/flap is flapping: its policies changed direction'
	events_at_least 1 group_flapping firing
	# the group that does not flap has none
	[ -z "$(alert_state group_flapping al/node)" ]
	herd delete -f "$BATS_FILE_TMPDIR/bp/flap.yaml" --timeout 2m >/dev/null
	# its group gone, its alert resolves
	wait_for 60 events_at_least 1 group_flapping resolved
}
