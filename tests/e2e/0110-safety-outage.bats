#!/usr/bin/env bats
# Safety (issue 12): an outage of herd is not an outage of its hosts. After
# a kill -9 longer than unhealthy_after and a restart, or a SIGSTOP as long,
# every host survives (silence counts from when herd could hear again); a
# host that really went silent is still replaced once that grace is over;
# and the only host of a group is terminated only after its replacement is
# ready. Needs root.

load lib

UA=8   # unhealthy_after (s); agents beat every 5 s

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start
	CIDR=$(random_cidr)
	BP=$BATS_FILE_TMPDIR/outage.yaml
	cat >"$BP" <<EOF
accounts:
  - name: here
    driver: local
networks:
  - name: net
    account: here
    cidr: $CIDR
templates:
  - name: plain
    account: here
    network: net
clusters:
  - name: safe
    groups:
      - name: db
        template: plain
        size: 1
        unhealthy_after: ${UA}s
      - name: web
        template: plain
        size: 2
        unhealthy_after: ${UA}s
EOF
	STOPPED=$BATS_FILE_TMPDIR/stopped   # pids this file SIGSTOPped
	: >"$STOPPED"
	export BP CIDR STOPPED
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	# agents this file stopped: let them go (teardown kills them anyway)
	while read -r pid; do
		kill -CONT "$pid" 2>/dev/null || true
	done <"$STOPPED"
	echo "# teardown: server pid $(cat "$HERD_DATA/server.pid" 2>&1)" >&3
	server_cleanup
}

setup() {
	require_root
}

# "group name state id" per live host of cluster safe, sorted by name.
host_lines() {
	herd host ls --json --cluster safe | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		printf "%s %s %s %s\n", @$_{qw(group name state id)}
			for sort { $a->{name} cmp $b->{name} } @{$d->{items}}'
}

# group_ready GROUP N: exactly N live hosts, all ready.
group_ready() {
	local lines
	lines=$(host_lines | awk -v g="$1" '$1 == g')
	[ "$(grep -c . <<<"$lines")" -eq "$2" ] && [ "$(awk '$3 == "ready"' <<<"$lines" | grep -c .)" -eq "$2" ]
}

all_ready() {
	group_ready db 1 && group_ready web 2
}

# host_field NAME FIELD
host_field() {
	herd host show "safe/$1" --json | json "{$2}"
}

# activities_since MS: "kind host message" per activity of cluster safe at or
# after MS, oldest first.
activities_since() {
	herd activity ls --json --cluster safe | perl -MJSON::PP -e '
		my $since = shift;
		my @a = grep { $_->{ts_ms} >= $since } @{decode_json(join "", <STDIN>)->{items}};
		printf "%s %s %s\n", $_->{kind}, $_->{host} // "-", $_->{reason} // ""
			for sort { $a->{id} <=> $b->{id} } @a' "$1"
}

state_is() { # state_is NAME STATE
	[ "$(host_field "$1" state)" = "$2" ]
}

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# kill -9 the server (each test runs in its own subshell: the pid file knows
# the current one).
server_kill() {
	SERVER_PID=$(cat "$HERD_DATA/server.pid")
	kill -9 "$SERVER_PID"
	wait "$SERVER_PID" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	SERVER_PID=
}

# kill -9 the server, let SECONDS pass, start it again on the same data dir
# and port.
outage() {
	server_kill
	sleep "$1"
	server_start
}

# stop_agent ID: the host stays, its agent (its PID 1) stops beating.
stop_agent() {
	local pid
	pid=$(cat "$HERD_DATA/hosts/$1/pid")
	[ -n "$pid" ]
	echo "$pid" >>"$STOPPED"
	kill -STOP "$pid"
}

@test "kill -9 of the server for 2x unhealthy_after: after the restart no host is lost" {
	run herd apply -f "$BP"
	[ "$status" -eq 0 ]
	wait_for 60 all_ready
	before=$(host_lines)

	killed=$(now_ms)   # (the first pass runs before server_start returns)
	outage $((2 * UA))
	# the grace, and then a few passes
	sleep $((UA + 4))

	# the same hosts (ids), all ready
	echo "before: $before"
	echo "after:  $(host_lines)"
	[ "$(host_lines)" = "$before" ]
	# nothing marked unhealthy, terminated or launched since the restart
	acts=$(activities_since "$killed")
	echo "activities since the restart: $acts"
	refute grep -Eq '^(host_unhealthy|terminate|launch|host_terminated) ' <<<"$acts"
	# the hosts kept by the grace say so
	grep -q '^wait ' <<<"$acts"
	grep -q 'herd has listened only' <<<"$acts"
}

@test "the server suspended (SIGSTOP) for 2x unhealthy_after: after it resumes no host is lost" {
	run herd apply -f "$BP"
	[ "$status" -eq 0 ]
	wait_for 60 all_ready
	before=$(host_lines)
	pid=$(cat "$HERD_DATA/server.pid")

	stopped=$(now_ms)
	echo "$pid" >>"$STOPPED"
	kill -STOP "$pid"
	sleep $((2 * UA))
	kill -CONT "$pid"
	sleep $((UA + 4))

	echo "before: $before"
	echo "after:  $(host_lines)"
	[ "$(host_lines)" = "$before" ]
	acts=$(activities_since "$stopped")
	echo "activities since the pause: $acts"
	refute grep -Eq '^(host_unhealthy|terminate|launch|host_terminated) ' <<<"$acts"
	grep -q 'no pass for' "$HERD_DATA/server.log"
}

@test "a host silent through the outage and after it is replaced once the grace is over; the others stay" {
	wait_for 60 all_ready
	keep=$(host_lines | grep -v ' web-1 ')
	old=$(host_field web-1 id)

	server_kill
	stop_agent "$old"
	sleep $((2 * UA))
	restarted=$(now_ms)   # the grace starts at the first pass, after this
	server_start

	# replaced: the silent one terminated, a new ready web host
	wait_for 90 state_is web-1 terminated
	wait_for 90 all_ready
	[ "$(host_lines | grep -c " $old\$")" -eq 0 ]
	# the other hosts are the same ones
	[ "$(host_lines | grep -v '^web ' )" = "$(grep -v '^web ' <<<"$keep")" ]
	[ "$(host_lines | grep -c ' web-2 ready ')" -eq 1 ]
	# and web-1 was given the whole grace before it counted as silent
	unhealthy_ms=$(herd activity ls --json --cluster safe | perl -MJSON::PP -e '
		my ($u) = grep { $_->{kind} eq "host_unhealthy" && $_->{host} eq "web-1" }
			@{decode_json(join "", <STDIN>)->{items}};
		print $u ? $u->{ts_ms} : 0' )
	echo "restarted $restarted, web-1 unhealthy $unhealthy_ms"
	[ "$unhealthy_ms" -ge $((restarted + UA * 1000)) ]
}

@test "the only host of a group goes silent: a replacement is launched first, the silent one terminated once it is ready" {
	wait_for 60 all_ready
	since=$(now_ms)
	stop_agent "$(host_field db-1 id)"

	wait_for 90 state_is db-1 terminated
	wait_for 90 group_ready db 1
	acts=$(activities_since "$since")
	echo "$acts"
	# order: db-1 unhealthy, kept (wait), replacement launched and ready, then db-1 terminated
	perl -e '
		my @l = <STDIN>;
		my %at;
		for my $i (0..$#l) {
			my ($k, $h) = split / /, $l[$i];
			$at{"$k $h"} //= $i;
		}
		for my $k ("host_unhealthy db-1", "wait db-1", "launch db-2", "host_ready db-2", "terminate db-1") {
			die "missing: $k\n" unless defined $at{$k};
		}
		die "terminated before the replacement was ready\n"
			if $at{"terminate db-1"} < $at{"host_ready db-2"};
		die "replacement launched after the termination\n"
			if $at{"launch db-2"} > $at{"terminate db-1"};' <<<"$acts"
	grep -q 'no ready host' <<<"$acts"
	# and no healthy host was scaled in meanwhile
	refute grep -q 'scale_in\|newest first' <<<"$acts"
}
