#!/usr/bin/env bats
# Each local host's own resources (issue 16): every local host runs in a
# cgroup of its own with its template's limits applied (this machine: cgroup
# v1's cpu, cpuacct and memory hierarchies; v2 where the machine has it), and
# its agent reports the cgroup's cpu_busy_pct and mem_used_bytes with
# scope="host" beside the machine's. A group of 2 hosts limited to 20 % of a
# core: one burns CPU (a script run bounded by its own timeout), the other
# idles; the burner's own figure is near its limit, the idle one's near 0,
# and a policy on cpu_busy_pct (which reads the hosts' own figures) scales
# the group out. The agent binary is one read-only copy bound into every
# host. No timing thresholds: generous waits only.

load lib

setup_file() {
	require_root
	server_start
	local bp=$BATS_FILE_TMPDIR/bp
	mkdir -p "$bp/scripts"
	# bounded twice: its own 120 s, and the run's --timeout
	cat >"$bp/scripts/burn.sh" <<-'EOF'
		#!/bin/sh
		exec timeout 120 sh -c 'while :; do :; done'
	EOF
	cat >"$bp/cg.yaml" <<-EOF
		accounts:
		  - name: here
		    driver: local
		networks:
		  - name: cg-net
		    account: here
		    cidr: $(random_cidr)
		scripts:
		  - name: burn.sh
		    file: scripts/burn.sh
		templates:
		  - name: node
		    account: here
		    network: cg-net
		    limit_cpu_pct: 20
		    limit_memory_mb: 256
		clusters:
		  - name: cg
		    groups:
		      - name: node
		        template: node
		        size: 2
		        min: 2
		        max: 3
		        policies:
		          - name: grow
		            when: avg(cpu_busy_pct) > 30
		            for: 5s
		            adjust: +1
		            cooldown: 10m
	EOF
	herd apply -f "$bp/cg.yaml" >/dev/null
	wait_for 60 ready_count_is 2
}

teardown_file() {
	if [ -f "$BATS_FILE_TMPDIR/burn" ]; then
		herd run cancel "$(cat "$BATS_FILE_TMPDIR/burn")" >/dev/null 2>&1 || true
	fi
	local inst
	inst=$(instance_id 2>/dev/null || true)
	server_cleanup
	# nothing of this server's cgroups left (v1 hierarchies and v2)
	if [ -n "$inst" ]; then
		for d in /sys/fs/cgroup/herd-"$inst" /sys/fs/cgroup/{cpu,cpuacct,memory}/herd-"$inst"; do
			if [ -e "$d" ]; then
				echo "leftover cgroup $d" >&2
				return 1
			fi
		done
	fi
}

instance_id() {
	curl -sf "$HERD_URL/healthz" | json '{instance}'
}

ready_count_is() {
	[ "$(herd host ls --group cg/node --json | perl -MJSON::PP -e \
		'print scalar grep { $_->{state} eq "ready" } @{decode_json(join "", <STDIN>)->{items}}')" -eq "$1" ]
}

host_failed() { # host_failed CLUSTER/NAME
	[ "$(herd host show "$1" --json | json '{state}')" = failed ]
}

host_id() { # host_id NAME
	herd host show "cg/$1" --json | json '{id}'
}

# last_value NAME METRIC SCOPE: the newest value of that host's series with
# that scope label ("" when there is none yet).
last_value() {
	herd metrics query "$2" --host "cg/$1" --since 1m --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		for my $s (@{$d->{series}}) {
			next unless ($s->{labels}{scope} // "") eq $ARGV[0];
			my @p = grep { defined $_->[1] } @{$s->{points}};
			print $p[-1][1], "\n" if @p;
		}' "$3"
}

has_value() { # has_value NAME METRIC SCOPE
	[ -n "$(last_value "$@")" ]
}

# value_is NAME METRIC SCOPE OP NUMBER: the newest value compares so.
value_is() {
	local v
	v=$(last_value "$1" "$2" "$3")
	[ -n "$v" ] && perl -e 'exit !(eval "$ARGV[0] $ARGV[1] $ARGV[2]")' "$v" "$4" "$5"
}

desired() {
	herd group show cg/node --json | json '{desired}'
}

desired_is() {
	[ "$(desired)" = "$1" ]
}

@test "each local host has its own cgroup with the template's limits, shown by host show" {
	local id inst
	inst=$(instance_id)
	[ -n "$inst" ]
	for n in 1 2; do
		id=$(host_id "node-$n")
		if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
			d=/sys/fs/cgroup/herd-$inst/$id
			[ "$(cat "$d/cpu.max")" = "20000 100000" ]
			[ "$(cat "$d/memory.max")" = $((256 << 20)) ]
		else
			[ "$(cat "/sys/fs/cgroup/cpu/herd-$inst/$id/cpu.cfs_quota_us")" = 20000 ]
			[ "$(cat "/sys/fs/cgroup/cpu/herd-$inst/$id/cpu.cfs_period_us")" = 100000 ]
			[ "$(cat "/sys/fs/cgroup/memory/herd-$inst/$id/memory.limit_in_bytes")" = $((256 << 20)) ]
			d=/sys/fs/cgroup/cpuacct/herd-$inst/$id
		fi
		# the host's PID 1 is in it
		grep -qx "$(cat "$HERD_DATA/hosts/$id/pid")" "$d/cgroup.procs"
		# and `herd host show` (GET /v1/hosts/ID) shows the limits in effect and where
		run herd host show "cg/node-$n"
		echo "$output"
		[[ "$output" == *"limit_cpu_pct "*" 20"* ]]
		[[ "$output" == *"limit_memory_mb "*" 256"* ]]
		[[ "$output" == *"cgroup "*"herd-$inst/$id"* ]]
		[ "$(herd host show "cg/node-$n" --json | json '{limit_cpu_pct}')" = 20 ]
	done
}

@test "the agent binary is one read-only copy bound into every host" {
	local id1 id2 copy
	id1=$(host_id node-1)
	id2=$(host_id node-2)
	copy=$(ls "$HERD_DATA"/bin/herd-*)
	[ "$(echo "$copy" | wc -l)" -eq 1 ]
	# the binary hosts run: herd-agent beside the server's, else the server's
	local agent=$HERD
	[ -x "$(dirname "$HERD")/herd-agent" ] && agent=$(dirname "$HERD")/herd-agent
	cmp "$copy" "$agent"
	# the same file (device and inode) in both hosts, read-only
	[ "$(in_host "$id1" stat -c %d:%i /run/herd/bin/herd)" = "$(stat -c %d:%i "$copy")" ]
	[ "$(in_host "$id2" stat -c %d:%i /run/herd/bin/herd)" = "$(stat -c %d:%i "$copy")" ]
	refute in_host "$id1" sh -c 'echo x >>/run/herd/bin/herd'
	# the binary hosts run: herd-agent beside the server's, else the server's
	local agent=$HERD
	[ -x "$(dirname "$HERD")/herd-agent" ] && agent=$(dirname "$HERD")/herd-agent
	cmp "$copy" "$agent"
	# and `herd meta` still works from a host
	in_host "$id1" env -i /run/herd/bin/herd meta self --json | grep -q "$id1"
}

@test "a host that burns CPU reports its own cpu_busy_pct near its limit, its idle sibling near 0; a policy on it scales out" {
	# both report the machine's figure and their own memory
	for n in 1 2; do
		wait_for 30 has_value "node-$n" cpu_busy_pct machine
		wait_for 30 has_value "node-$n" cpu_busy_pct host
		wait_for 30 value_is "node-$n" mem_used_bytes host '>' 0
		value_is "node-$n" mem_limit_bytes host '==' $((256 << 20))
	done
	[ "$(desired)" = 2 ]
	run herd script run burn.sh --host cg/node-1 --timeout 3m --json
	echo "$output"
	[ "$status" -eq 0 ]
	BURN_RUN=$(echo "$output" | json '{id}')
	echo "$BURN_RUN" >"$BATS_FILE_TMPDIR/burn"
	# more than half its limit: 100 % is the whole 20 % quota
	wait_for 60 value_is node-1 cpu_busy_pct host '>' 50
	# the idle sibling's own figure stays near 0 meanwhile
	value_is node-2 cpu_busy_pct host '<' 5
	wait_for 60 desired_is 3
	herd activity ls --group cg/node --json | grep -q 'grow'
	herd run cancel "$BURN_RUN" >/dev/null 2>&1 || true
}

@test "a limit the kernel refuses fails the launch, and host show says which limit and why" {
	# a second server, its own data dir and port, told that the kernel
	# refuses limits (HERD_FAILPOINTS: no real kernel here refuses 20 %)
	(
		HERD_DATA=$(mktemp -d "$BATS_FILE_TMPDIR/herd-data-refuse.XXXXXX")
		HERD_PORT=$(free_port)
		export HERD_DATA HERD_PORT HERD_FAILPOINTS=local_cgroup_limits=error
		server_start
		trap server_cleanup EXIT
		sed -e "s|name: cg$|name: cgr|" -e "s|cg-net|cgr-net|" \
			-e "s|cidr: .*|cidr: $(random_cidr)|" "$BATS_FILE_TMPDIR/bp/cg.yaml" \
			>"$BATS_FILE_TMPDIR/bp/cgr.yaml"
		herd apply -f "$BATS_FILE_TMPDIR/bp/cgr.yaml" >/dev/null
		wait_for 60 host_failed cgr/node-1
		run herd host show cgr/node-1
		echo "$output"
		[[ "$output" == *"limit_cpu_pct 20, limit_memory_mb 256"*"cannot be applied"*"Invalid argument"* ]]
	)
}
