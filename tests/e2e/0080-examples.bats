#!/usr/bin/env bats
# The examples (issue 9): examples/kubernetes-qingcloud/, the seed's own
# Kubernetes-on-QingCloud setup as a blueprint. Tested here without a
# QingCloud: the dry run; the built-in scripts it names exist; a real apply
# stores everything, launches nothing (no secret file here) and says why;
# delete removes it all. Its apply against the fake QingCloud is e2e 0285. Its pods monitor
# runs here under /bin/sh with a stand-in for crictl (containerd cannot run
# here); its own script k8s_max_pods.sh is checked with bash -n, shellcheck,
# its dry run, and a real edit of a kubelet configuration file (systemctl
# stands in for systemd). (examples/queue/ has its own test.)

load lib

setup_file() {
	server_start
	EX=$(cd "$BATS_TEST_DIRNAME/../../examples/kubernetes-qingcloud" && pwd)
	export EX BP=$EX/cluster.yaml
}

teardown_file() {
	server_cleanup
}

@test "kubernetes-qingcloud: the dry run succeeds, lists what it would create, and creates nothing" {
	run herd apply --dry-run -f "$BP"
	echo "$output"
	[ "$status" -eq 0 ]
	for what in "account qingcloud" "network k8s-vpc" "lb k8s-api" "script k8s_max_pods.sh" \
		"monitor pods" "template k8s-master" "template k8s-node" "cluster k8s" \
		"group k8s/k8s-master" "group k8s/k8s-node" "policy k8s/k8s-node/grow" \
		"policy k8s/k8s-node/shrink"; do
		grep -qx "+ would create $what" <<<"$output"
	done
	[ "$(grep -c '^+ would create ' <<<"$output")" -eq 12 ]
	# the README shows the same list
	diff <(grep '^+ would create ' <<<"$output") <(grep '^+ would create ' "$EX/README.md")
	[ "$(herd group ls --json | json_count '{items}')" -eq 0 ]
	[ "$(herd account ls --json | json_count '{items}')" -eq 0 ]
}

@test "kubernetes-qingcloud: every script its blueprint and README name is a built-in or its own" {
	names=$(cat "$BP" "$EX/README.md" | grep -oE '\b[A-Za-z0-9_]+\.sh\b' | sort -u)
	[ -n "$names" ]
	for n in $names; do
		if [ -f "$EX/scripts/$n" ]; then
			grep -q "name: $n" "$BP"
			continue
		fi
		run herd script show "$n" --json
		[ "$status" -eq 0 ] || { echo "$n: $output"; false; }
		[ "$(echo "$output" | json '{builtin}')" = true ] || { echo "$n: not a built-in"; false; }
	done
	# the ones the templates and policies use, by name
	for n in k8s_master_installer.sh k8s_node_installer.sh k8s_ui_installer.sh k8s_drain_node.sh \
		k8s_pods_per_node.sh; do
		grep -qx "$n" <<<"$names"
	done
}

@test "kubernetes-qingcloud: a built-in script cannot be declared again in the blueprint" {
	d=$BATS_TEST_TMPDIR/bp
	mkdir -p "$d"
	cp -r "$EX"/* "$d/"
	perl -0pi -e 's|^scripts:\n|scripts:\n  - name: k8s_master_installer.sh\n    file: '"$BATS_TEST_DIRNAME"'/../../scripts/k8s_master_installer.sh\n|m' \
		"$d/cluster.yaml"
	run herd apply --dry-run -f "$d/cluster.yaml"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"built-in scripts are read-only"* ]]
}

@test "kubernetes-qingcloud: a real apply stores it all, launches nothing, says why; delete removes it" {
	run herd apply -f "$BP"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(herd group ls --json | json_count '{items}')" -eq 2 ]
	[ "$(herd template show k8s-node --json | json '{init}')" = '["k8s_node_installer.sh","k8s_max_pods.sh"]' ]
	[ "$(herd policy show shrink --json | json '{before_terminate}')" = k8s_drain_node.sh ]
	# no secret file on this machine: the driver opens nothing at QingCloud
	# (its apply against the fake QingCloud is e2e 0285)
	wait_for 10 grep -q "cannot launch a host in k8s/k8s-master: .*cannot open secret file '/etc/herd/qingcloud.secret'" \
		"$HERD_DATA/server.log"
	# the LB's driver (qingcloud) cannot open the account either, and says so
	wait_for 10 bash -c "'$HERD' lb show k8s-api | grep -q \"problem: cannot open secret file '/etc/herd/qingcloud.secret'\""
	[ "$(herd host ls --all --json | json_count '{items}')" -eq 0 ]
	# the nodes wait for the master: not one launch was tried for them
	run grep -q "cannot launch a host in k8s/k8s-node" "$HERD_DATA/server.log"
	[ "$status" -eq 1 ]
	run herd apply -f "$BP"
	[ "$status" -eq 0 ]
	[[ "$output" == "no changes"* ]]
	run herd delete -f "$BP"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(herd group ls --json | json_count '{items}')" -eq 0 ]
	[ "$(herd account ls --json | json_count '{items}')" -eq 0 ]
	run herd script show k8s_max_pods.sh
	[ "$status" -ne 0 ]
	herd script show k8s_master_installer.sh >/dev/null
}

@test "kubernetes-qingcloud: the pods monitor counts pods, says 0 for none, and fails when crictl fails" {
	run herd apply -f "$BP"
	[ "$status" -eq 0 ]
	cmd=$(herd monitor show pods --json | json '{command}')
	[[ "$cmd" == *crictl* ]]
	bin=$BATS_TEST_TMPDIR/bin
	mkdir -p "$bin"
	stub() { # stub EXIT LINES...: a crictl that prints LINES and exits EXIT
		local code=$1
		shift
		printf '#!/bin/sh\n[ "$*" = "--runtime-endpoint unix:///run/containerd/containerd.sock pods --state ready --quiet" ] || exit 9\n' >"$bin/crictl"
		for l in "$@"; do
			printf 'echo %s\n' "$l" >>"$bin/crictl"
		done
		printf 'exit %s\n' "$code" >>"$bin/crictl"
		chmod +x "$bin/crictl"
	}
	stub 0 3f2a1c 9b8e7d 11aa22
	run env PATH="$bin:$PATH" /bin/sh -c "$cmd"
	[ "$status" -eq 0 ]
	[ "$output" = 3 ]
	stub 0
	run env PATH="$bin:$PATH" /bin/sh -c "$cmd"
	[ "$status" -eq 0 ]
	[ "$output" = 0 ]
	stub 1 "connect: connection refused >&2"
	run env PATH="$bin:$PATH" /bin/sh -c "$cmd"
	[ "$status" -ne 0 ]
	[[ "$output" != *0* ]]
	run herd delete -f "$BP"
	[ "$status" -eq 0 ]
}

@test "kubernetes-qingcloud: k8s_max_pods.sh passes bash -n and shellcheck, and its dry run changes nothing" {
	S=$EX/scripts/k8s_max_pods.sh
	bash -n "$S"
	run shellcheck -x "$S"
	echo "$output"
	[ "$status" -eq 0 ]
	cfg=$BATS_TEST_TMPDIR/config.yaml
	printf 'kind: KubeletConfiguration\n' >"$cfg"
	run env HERD_DRY_RUN=1 K8S_KUBELET_CONFIG="$cfg" bash "$S"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"+ set maxPods: 40 in $cfg"* ]]
	[[ "$output" == *"+ systemctl restart kubelet"* ]]
	[ "$(cat "$cfg")" = "kind: KubeletConfiguration" ]
	run env K8S_MAX_PODS='40; reboot' HERD_DRY_RUN=1 bash "$S"
	[ "$status" -ne 0 ]
	[[ "$output" == *"K8S_MAX_PODS '40; reboot' is not a number of pods"* ]]
}

@test "kubernetes-qingcloud: k8s_max_pods.sh sets maxPods in the kubelet's configuration, once" {
	require_root
	S=$EX/scripts/k8s_max_pods.sh
	bin=$BATS_TEST_TMPDIR/bin
	mkdir -p "$bin"
	printf '#!/bin/sh\necho "$*" >>%s/systemctl.calls\n' "$BATS_TEST_TMPDIR" >"$bin/systemctl"
	chmod +x "$bin/systemctl"
	cfg=$BATS_TEST_TMPDIR/config.yaml
	# as kubeadm writes it, here without a final newline
	printf 'apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd' >"$cfg"
	chmod 0644 "$cfg"
	run env PATH="$bin:$PATH" K8S_KUBELET_CONFIG="$cfg" HERD_HOST=k8s-node-1 bash "$S"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"the kubelet of k8s-node-1 now accepts 40 pods"* ]]
	[ "$(tail -n 2 "$cfg")" = "$(printf 'cgroupDriver: systemd\nmaxPods: 40')" ]
	[ "$(stat -c %a "$cfg")" = 644 ]
	[ "$(cat "$BATS_TEST_TMPDIR/systemctl.calls")" = "restart kubelet" ]
	# again: nothing to do, no restart
	run env PATH="$bin:$PATH" K8S_KUBELET_CONFIG="$cfg" bash "$S"
	[ "$status" -eq 0 ]
	[[ "$output" == *"maxPods is already 40"* ]]
	[ "$(wc -l <"$BATS_TEST_TMPDIR/systemctl.calls")" -eq 1 ]
	# another value replaces the line
	run env PATH="$bin:$PATH" K8S_KUBELET_CONFIG="$cfg" K8S_MAX_PODS=60 bash "$S"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^maxPods:' "$cfg")" -eq 1 ]
	grep -qx 'maxPods: 60' "$cfg"
	[ ! -e "$cfg.herd-tmp" ]
	# no configuration yet: a clear error
	run env PATH="$bin:$PATH" K8S_KUBELET_CONFIG="$BATS_TEST_TMPDIR/none.yaml" bash "$S"
	[ "$status" -ne 0 ]
	[[ "$output" == *"run this after k8s_node_installer.sh"* ]]
}
