#!/usr/bin/env bats
# The script library and script runs (issue 6): built-in scripts loaded
# read-only with a new version only when they change; runs on a group of
# local hosts with a record, output and exit code per host; hosts not ready
# reported as skipped; --follow showing output while the script runs;
# timeouts and cancels that take the script's children too; parameters that
# reach scripts only as environment variables; --parallel; a replayed
# delivery that does not run twice; roles and the audit trail.
#
# The Kubernetes scripts cannot run here (they need the internet and real
# VMs): what is tested of them is their syntax (bash -n), shellcheck, and
# what their HERD_DRY_RUN=1 mode prints. In a dry run the scripts do not ask
# herd for the master's address (nothing is faked): they print the
# `herd meta` command they would run and use a placeholder. The join
# service's access check is tested for real, on local hosts, with real
# `herd meta` (see the last test). Tests that need hosts need root.

load lib

setup_file() {
	# the built-in scripts come from a copy, so that a test can change one
	SCRIPTS_DIR=$BATS_FILE_TMPDIR/builtin
	mkdir -p "$SCRIPTS_DIR"
	cp "$BATS_TEST_DIRNAME"/../../scripts/*.sh "$SCRIPTS_DIR/"
	export SCRIPTS_DIR
	server_start --scripts "$SCRIPTS_DIR"
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR"
	cp -r "$BATS_TEST_DIRNAME/fixtures/runs/scripts" "$BP_DIR/"
	sed "s|@CIDR@|$(random_cidr)|" "$BATS_TEST_DIRNAME/fixtures/runs/cluster.yaml" >"$BP_DIR/cluster.yaml"
	export BP=$BP_DIR/cluster.yaml
}

teardown_file() {
	server_cleanup
}

# field_of "STATUS BODY": the error's field.
field_of() {
	echo "${1#* }" | json '{error}{field}'
}

# host_of RUN_JSON HOST KEY: a key of one host's record in a run.
host_of() {
	perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		for (@{$d->{hosts}}) { if ($_->{host} eq $ARGV[0]) { my $v = $_->{$ARGV[1]};
			print defined $v ? "$v\n" : "null\n" } }' "$2" "$3" <<<"$1"
}

host_id() { # host_id NAME
	herd host show "rt/$1" --json | json '{id}'
}

# pidns_cmdlines NAME: the command line of every process in that host's
# PID namespace (the host's PID 1 is in $HERD_DATA/hosts/<id>/pid).
pidns_cmdlines() {
	local id pid1 ns p
	id=$(host_id "$1")
	pid1=$(cat "$HERD_DATA/hosts/$id/pid")
	ns=$(readlink "/proc/$pid1/ns/pid")
	for p in /proc/[0-9]*; do
		if [ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$ns" ]; then
			tr '\0' ' ' 2>/dev/null <"$p/cmdline"
			echo
		fi
	done
	return 0
}

has_proc() { # has_proc NAME PATTERN
	pidns_cmdlines "$1" | grep -q -- "$2"
}

run_state() { # run_state ID
	herd run show "$1" --json | json '{state}'
}

run_ended() { # run_ended ID
	[ "$(run_state "$1")" != running ]
}

group_ready() {
	[ "$(herd host ls --group rt/node --json | json_count '{items}')" -eq 3 ] &&
		[ "$(herd host ls --group rt/node | grep -c ' ready ')" -eq 3 ] &&
		[ "$(herd host ls --group rt/slow | grep -c ' initializing ')" -eq 1 ]
}

@test "built-in scripts are loaded read-only, with a new version only when one changes" {
	run herd script ls --json
	[ "$status" -eq 0 ]
	for s in k8s_master_installer.sh k8s_node_installer.sh k8s_ui_installer.sh \
		k8s_pods_per_node.sh k8s_drain_node.sh; do
		[[ "$output" == *"\"$s\""* ]]
		[ "$(herd script show "$s" --json | json '{builtin}')" = true ]
		[ "$(herd script show "$s" --json | json '{latest}')" = 1 ]
	done
	[[ "$(herd script show k8s_pods_per_node.sh --json | json '{description}')" == *"pods running on this Kubernetes node"* ]]
	# read-only: an update is refused, naming why
	run http PUT /v1/scripts/k8s_ui_installer.sh "$HERD_TOKEN" '{"name":"k8s_ui_installer.sh","content":"#!/bin/sh\ntrue\n"}'
	[[ "$output" == "403 "* ]]
	[[ "$output" == *"read-only"* ]]
	# a restart with one file changed: that one gets version 2, no other moves
	echo "# changed by the test" >>"$SCRIPTS_DIR/k8s_drain_node.sh"
	server_stop
	server_start --scripts "$SCRIPTS_DIR"
	[ "$(herd script show k8s_drain_node.sh --json | json '{latest}')" = 2 ]
	[ "$(herd script show k8s_node_installer.sh --json | json '{latest}')" = 1 ]
	server_stop
	server_start --scripts "$SCRIPTS_DIR"
	[ "$(herd script show k8s_drain_node.sh --json | json '{latest}')" = 2 ]
	run http GET /v1/scripts/k8s_drain_node.sh/versions "$HERD_TOKEN"
	[ "$(echo "${output#200 }" | json_count '{items}')" -eq 2 ]
}

@test "the built-in scripts pass bash -n and shellcheck" {
	for f in "$BATS_TEST_DIRNAME"/../../scripts/*.sh; do
		bash -n "$f"
	done
	run shellcheck -x "$BATS_TEST_DIRNAME"/../../scripts/*.sh
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "dry runs print what the Kubernetes scripts would do, and change nothing" {
	S=$BATS_TEST_DIRNAME/../../scripts
	# the node installer: finds the master with herd meta (printed, not run), then joins it
	run env HERD_DRY_RUN=1 HERD_HOST=node-7 bash "$S/k8s_node_installer.sh"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"+ herd meta group k8s-master private_ip --wait"* ]]
	[[ "$output" == *"+ kubeadm join "*"--node-name node-7"* ]]
	[[ "$output" == *"http://MASTER_IP:8765/join/node-7"* ]]
	[[ "$output" == *"dry run: nothing was changed"* ]]
	# the master installer: the image mirror and pause image given by env reach kubeadm and containerd
	run env HERD_DRY_RUN=1 HERD_HOST=master-1 HERD_PRIVATE_IP=198.18.0.2 \
		K8S_IMAGE_REPOSITORY=registry.example.cn/k8s K8S_PAUSE_IMAGE=registry.example.cn/k8s/pause:3.9 \
		K8S_VERSION=1.30.2 K8S_POD_CIDR=10.50.0.0/16 bash "$S/k8s_master_installer.sh"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"+ kubeadm init --image-repository registry.example.cn/k8s --pod-network-cidr 10.50.0.0/16"*"--kubernetes-version v1.30.2"* ]]
	[[ "$output" == *'sandbox_image = "registry.example.cn/k8s/pause:3.9"'* ]]
	[[ "$output" == *"pkgs.k8s.io/core:/stable:/v1.30/deb"* ]]
	[[ "$output" == *"bind=198.18.0.2"* ]]
	# the join service it installs is valid shell too
	echo "$output" | sed -n '/write \/usr\/local\/libexec\/herd-k8s-joind/,/^+ write/p' | sed -n 's/^|   //p' >"$BATS_FILE_TMPDIR/joind"
	[ "$(head -n 1 "$BATS_FILE_TMPDIR/joind")" = "#!/usr/bin/env bash" ]
	bash -n "$BATS_FILE_TMPDIR/joind"
	shellcheck "$BATS_FILE_TMPDIR/joind"
	# bad input is refused before anything is done
	run env HERD_DRY_RUN=1 HERD_HOST=master-1 HERD_PRIVATE_IP=198.18.0.2 K8S_VERSION='1.30; reboot' \
		bash "$S/k8s_master_installer.sh"
	[ "$status" -ne 0 ]
	[[ "$output" == *"not a version"* ]]
	run env HERD_DRY_RUN=1 HERD_HOST=node-7 bash "$S/k8s_drain_node.sh"
	[ "$status" -eq 0 ]
	[[ "$output" == *"+ herd meta group k8s-master private_ip"* ]]
	[[ "$output" == *"/drain/node-7"* ]]
	run env HERD_DRY_RUN=1 HERD_HOST=node-7 bash "$S/k8s_pods_per_node.sh"
	[ "$status" -eq 0 ]
	[[ "$output" == *"crictl"*"pods --state ready"* ]]
	run env HERD_DRY_RUN=1 K8S_DASHBOARD_REGISTRY=registry.example.cn bash "$S/k8s_ui_installer.sh"
	[ "$status" -eq 0 ]
	[[ "$output" == *"registry.example.cn/kubernetesui/"* ]]
}

@test "the cluster comes up: 3 ready nodes and one host still initializing" {
	require_root
	run herd apply -f "$BP"
	[ "$status" -eq 0 ]
	wait_for 30 group_ready
}

@test "a viewer cannot run scripts (403); bad input names the field" {
	require_root
	viewer=$(herd token create --role viewer --name runs-viewer)
	run http POST /v1/runs "$viewer" '{"script":"who.sh","group":"rt/node"}'
	[[ "$output" == "403 "* ]]
	run env HERD_TOKEN="$viewer" "$HERD" script run who.sh --group rt/node
	[ "$status" -ne 0 ]
	[[ "$output" == *"role 'viewer' may not"* ]]
	# a viewer sees runs, but not the values of their parameters
	run http GET /v1/runs "$viewer"
	[[ "$output" == "200 "* ]]

	run http POST /v1/runs "$HERD_TOKEN" '{"script":"who.sh","group":"rt/node","env":{"1X":"v"}}'
	[[ "$output" == "400 "* ]]
	[ "$(field_of "$output")" = env.1X ]
	run http POST /v1/runs "$HERD_TOKEN" '{"script":"who.sh","group":"rt/node","env":{"HERD_HOST":"x"}}'
	[[ "$output" == "400 "* ]]
	[ "$(field_of "$output")" = env.HERD_HOST ]
	big=$(head -c 4097 /dev/zero | tr '\0' a)
	run http POST /v1/runs "$HERD_TOKEN" "{\"script\":\"who.sh\",\"group\":\"rt/node\",\"env\":{\"BIG\":\"$big\"}}"
	[[ "$output" == "400 "* ]]
	[ "$(field_of "$output")" = env.BIG ]
	many=$(perl -e 'print join(",", map { "\"V$_\":\"x\"" } 1..65)')
	run http POST /v1/runs "$HERD_TOKEN" "{\"script\":\"who.sh\",\"group\":\"rt/node\",\"env\":{$many}}"
	[[ "$output" == "400 "* ]]
	[ "$(field_of "$output")" = env ]
	run http POST /v1/runs "$HERD_TOKEN" '{"script":"who.sh","group":"rt/node","env":{"N":1}}'
	[[ "$output" == "400 "* ]]
	[ "$(field_of "$output")" = env.N ]
	run http POST /v1/runs "$HERD_TOKEN" '{"script":"who.sh","group":"rt/node","host":"node-1"}'
	[[ "$output" == "400 "* ]]
	run http POST /v1/runs "$HERD_TOKEN" '{"script":"who.sh"}'
	[[ "$output" == "400 "* ]]
	run http POST /v1/runs "$HERD_TOKEN" '{"script":"nope.sh","group":"rt/node"}'
	[[ "$output" == "404 "* ]]
	[ "$(field_of "$output")" = script ]
	run http POST /v1/runs "$HERD_TOKEN" '{"script":"who.sh","group":"rt/nope"}'
	[[ "$output" == "404 "* ]]
	[ "$(field_of "$output")" = group ]
	run http POST /v1/runs "$HERD_TOKEN" '{"script":"who.sh","group":"rt/node","timeout":"soon"}'
	[[ "$output" == "400 "* ]]
	[ "$(field_of "$output")" = timeout ]
	run http POST /v1/runs "$HERD_TOKEN" '{"script":"who.sh","group":"rt/node","parallel":-1}'
	[[ "$output" == "400 "* ]]
	[ "$(field_of "$output")" = parallel ]
	run http POST /v1/runs "$HERD_TOKEN" '{"script":"who.sh","group":"rt/node","colour":"red"}'
	[[ "$output" == "400 "* ]]
	[ "$(field_of "$output")" = colour ]
	run herd script run who.sh --group rt/node --env NOEQUALS
	[ "$status" -ne 0 ]
	[[ "$output" == *"want NAME=VALUE"* ]]
	# nothing of that made a run
	[ "$(herd run ls --json | json_count '{items}')" -eq 0 ]
}

@test "a run on a group of 3: a record per host, each one's output and exit code; node-2 fails" {
	require_root
	run herd script run who.sh --group rt/node --wait --json
	echo "$output"
	[ "$status" -eq 1 ]   # not every host succeeded
	r=$output
	[ "$(echo "$r" | json_count '{hosts}')" -eq 3 ]
	[ "$(echo "$r" | json '{state}')" = failed ]
	[ "$(host_of "$r" node-1 state)" = succeeded ]
	[ "$(host_of "$r" node-1 exit_code)" = 0 ]
	[ "$(host_of "$r" node-3 state)" = succeeded ]
	[ "$(host_of "$r" node-2 state)" = failed ]
	[ "$(host_of "$r" node-2 exit_code)" = 3 ]
	[ "$(host_of "$r" node-2 reason)" = "exited with code 3" ]
	id=$(echo "$r" | json '{id}')
	for n in 1 2 3; do
		run herd run logs "$id" --host "node-$n"
		[ "$status" -eq 0 ]
		[ "${lines[0]}" = "hello from node-$n" ]
	done
	# the failed host's error output is kept too
	run herd run logs "$id" --host node-2
	[[ "$output" == *"node-2 fails on purpose"* ]]
	# all hosts at once: prefixed lines
	run herd run logs "$id"
	[[ "$output" == *"node-1 | hello from node-1"* ]]
	[[ "$output" == *"node-3 | hello from node-3"* ]]
	# the table
	run herd run show "$id"
	[[ "$output" == *"node-2"*"failed"*"3"*"exited with code 3"* ]]
	run herd run ls
	[[ "$output" == *"who.sh"*"rt/node"*"failed"*"2 succeeded, 1 failed"* ]]
	# the runs that included a host
	[ "$(herd run ls --host rt/node-2 --json | json '{items}->[0]{id}')" = "$id" ]
	[ "$(herd run ls --host slow-1 --json | json_count '{items}')" -eq 0 ]
}

@test "a run on the cluster reports the host that is not ready as skipped, with the reason" {
	require_root
	run herd script run who.sh --cluster rt --wait --json
	r=$output
	[ "$(echo "$r" | json_count '{hosts}')" -eq 4 ]
	[ "$(host_of "$r" slow-1 state)" = skipped ]
	[[ "$(host_of "$r" slow-1 reason)" == *"initializing"* ]]
	[ "$(host_of "$r" node-1 state)" = succeeded ]
	[ "$(echo "$r" | json '{counts}{skipped}')" = 1 ]
}

@test "--follow shows the first line while the script still runs" {
	require_root
	id=$(herd script run tick.sh --host rt/node-1 --json | json '{id}')
	out=$BATS_FILE_TMPDIR/follow.out
	herd run logs "$id" --host node-1 --follow >"$out" 2>&1 &
	follower=$!
	wait_for 30 grep -q '^line 1$' "$out"
	# the moment the first line is there, the run is still going
	state=$(run_state "$id")
	lines_now=$(grep -c '^line' "$out")
	echo "state when line 1 arrived: $state; lines: $lines_now"
	[ "$state" = running ]
	[ "$lines_now" -lt 5 ]
	wait "$follower"
	[ "$(grep -c '^line' "$out")" -eq 5 ]
	[ "$(run_state "$id")" = succeeded ]
}

@test "a script past --timeout is timed out, and its children are gone from the host" {
	require_root
	id=$(herd script run hang.sh --host rt/node-3 --timeout 3s --json | json '{id}')
	# the child is there while the script runs...
	wait_for 20 has_proc node-3 'sleep 987654'
	wait_for 30 run_ended "$id"
	r=$(herd run show "$id" --json)
	[ "$(host_of "$r" node-3 state)" = timed_out ]
	[[ "$(host_of "$r" node-3 reason)" == "timed out after 3"* ]]
	# ...and gone with it
	run has_proc node-3 'sleep 987654'
	[ "$status" -ne 0 ]
	run herd run logs "$id" --host node-3
	[[ "$output" == *started* ]]
}

@test "cancel stops a running script on every host, children included" {
	require_root
	id=$(herd script run hang.sh --group rt/node --json | json '{id}')
	wait_for 20 has_proc node-1 'sleep 987654'
	wait_for 20 has_proc node-2 'sleep 987654'
	run herd run cancel "$id"
	[ "$status" -eq 0 ]
	wait_for 30 run_ended "$id"
	r=$(herd run show "$id" --json)
	[ "$(echo "$r" | json '{state}')" = cancelled ]
	for n in 1 2 3; do
		[ "$(host_of "$r" "node-$n" state)" = cancelled ]
		run has_proc "node-$n" 'sleep 987654'
		[ "$status" -ne 0 ]
	done
	# a second cancel is harmless; an ended run cannot be cancelled
	run herd run cancel "$id"
	[ "$status" -eq 0 ]
	done_id=$(herd run ls --script who.sh --json | json '{items}->[0]{id}')
	run herd run cancel "$done_id"
	[ "$status" -ne 0 ]
	[[ "$output" == *"already ended"* ]]
}

@test "a parameter reaches the script as that literal string and runs nothing" {
	require_root
	rm -f /pwned "$BATS_FILE_TMPDIR/pwned"
	value='$(touch pwned); `id`'
	run herd script run echo_env.sh --host rt/node-1 --env "X=$value" --wait --json
	[ "$status" -eq 0 ]
	id=$(echo "$output" | json '{id}')
	run herd run logs "$id" --host node-1
	[ "$output" = "$value" ]
	# scripts run in / of the shared filesystem: no file was made there
	[ ! -e /pwned ]
	# operators see the value; the API keeps it as given
	[ "$(herd run show "$id" --json | json '{env}{X}')" = "$value" ]
}

@test "--parallel 1 runs one host at a time" {
	require_root
	r=$(herd script run who.sh --group rt/node --parallel 1 --wait --json || true)
	[ "$(echo "$r" | json '{parallel}')" = 1 ]
	# sorted by start, each host starts after the one before it ended
	perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		my @h = sort { $a->{started_ms} <=> $b->{started_ms} } @{$d->{hosts}};
		die "not 3 hosts\n" unless @h == 3;
		for my $i (1 .. $#h) {
			die "$h[$i]{host} started before $h[$i-1]{host} ended\n"
				if $h[$i]{started_ms} < $h[$i-1]{ended_ms};
		}' <<<"$r"
}

@test "a replayed start of a delivery is refused (409); the script ran once" {
	require_root
	hid=$(host_id node-1)
	cred=$(json '{credential}' <"$HERD_DATA/hosts/$hid/$hid/credential.json")
	rm -f "$HERD_DATA/hosts/$hid/once.log"
	id=$(herd script run once.sh --host rt/node-1 --wait --json | json '{id}')
	[ "$(grep -c . "$HERD_DATA/hosts/$hid/once.log")" -eq 1 ]
	run http POST "/v1/agent/runs/$id-$hid/start" "$cred" '{"nonce":"replayed"}'
	[[ "$output" == "409 "* ]]
	[[ "$output" == *"already succeeded"* ]]
	# the server does not hand it out again
	run http GET /v1/agent/commands "$cred"
	[[ "$output" == "200 "* ]]
	[ "$(echo "${output#200 }" | json_count '{commands}')" -eq 0 ]
	# another host's credential cannot touch this delivery
	hid2=$(host_id node-2)
	cred2=$(json '{credential}' <"$HERD_DATA/hosts/$hid2/$hid2/credential.json")
	run http POST "/v1/agent/runs/$id-$hid/result" "$cred2" '{"exit_code":0}'
	[[ "$output" == "404 "* ]]
	[ "$(grep -c . "$HERD_DATA/hosts/$hid/once.log")" -eq 1 ]
}

@test "the agent remembers what it ran: a delivery handed out again is not run twice" {
	require_root
	hid=$(host_id node-1)
	id=$(herd run ls --script once.sh --json | json '{items}->[0]{id}')
	[ "$(grep -c . "$HERD_DATA/hosts/$hid/once.log")" -eq 1 ]
	# as after restoring the store from a backup: the server thinks the
	# delivery was never run, and hands it out again
	store_sql "UPDATE run_hosts SET state = 'queued', delivered_ms = 0,
		started_ms = 0, ended_ms = 0, reason = '' WHERE run_id = $id;
		UPDATE runs SET state = 'running', ended_ms = 0 WHERE id = $id;"
	# a new run wakes the agents' long-polls
	herd script run who.sh --host rt/node-3 --wait >/dev/null
	wait_for 30 run_ended "$id"
	r=$(herd run show "$id" --json)
	[ "$(host_of "$r" node-1 state)" = failed ]
	[[ "$(host_of "$r" node-1 reason)" == *"already ran this delivery"* ]]
	[ "$(grep -c . "$HERD_DATA/hosts/$hid/once.log")" -eq 1 ]
}

@test "every run is audited with the script version's hash" {
	require_root
	r=$(herd run ls --script once.sh --json)
	hash=$(echo "$r" | json '{items}->[0]{hash}')
	[ "$hash" = "$(herd script show once.sh --json | json '{hash}')" ]
	run herd audit ls --json
	[[ "$output" == *"script once.sh version 1 sha256:$hash on host rt/node-1"* ]]
}

@test "the join service hands a join command only to a node host asking from its own address" {
	require_root
	S=$BATS_TEST_DIRNAME/../../scripts
	joind=$(HERD_DRY_RUN=1 HERD_HOST=master-1 HERD_PRIVATE_IP=198.18.0.2 bash "$S/k8s_master_installer.sh" |
		sed -n '/write \/usr\/local\/libexec\/herd-k8s-joind/,/^+ write/p' | sed -n 's/^|   //p')
	ip2=$(herd host show rt/node-2 --json | json '{private_ip}')
	ip3=$(herd host show rt/node-3 --json | json '{private_ip}')
	check() { # check ASK FROM: the status line the service answers
		herd script run joind_check.sh --host rt/node-1 --env "JOIND=$joind" --env "ASK=$1" \
			--env "FROM=$2" --wait --json >/dev/null || true
		herd run logs "$(herd run ls --script joind_check.sh --limit 1 --json | json '{items}->[0]{id}')" --host node-1
	}
	# node-2 from its own address passes herd's check (then kubeadm, absent here, fails)
	run check node-2 "$ip2"
	echo "$output"
	[[ "$output" == "HTTP/1.0 500"* ]]
	# from another address, an unknown host, a host of another group: refused
	run check node-2 "$ip3"
	[[ "$output" == "HTTP/1.0 403"* ]]
	run check nobody-9 "$ip2"
	[[ "$output" == "HTTP/1.0 403"* ]]
	ips=$(herd host show rt/slow-1 --json | json '{private_ip}')
	run check slow-1 "$ips"
	[[ "$output" == "HTTP/1.0 403"* ]]
}
