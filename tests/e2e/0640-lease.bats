#!/usr/bin/env bats
# One active controller (issue 19), on one server with SQLite: the server
# takes the controller lease at start (epoch >= 1) and `herd server status`
# shows it leading; a restart takes it again at the next epoch at once (the
# data dir's lock says the earlier holder is dead: no wait for its TTL) and
# its controllers act: a scale-out completes. Several servers on one store
# need the PostgreSQL backend (docs/ha.md); their fencing is unit-tested
# (tests/unit/test-lease.c). The scale-out needs root (a local network).

load lib

setup_file() {
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR"
	cat >"$BP_DIR/lease.yaml" <<-EOF
		accounts:
		  - name: here
		    driver: local
		networks:
		  - name: lsnet
		    account: here
		    cidr: $(random_cidr)
		templates:
		  - name: ls
		    account: here
		    network: lsnet
		clusters:
		  - name: ls
		    groups:
		      - name: g
		        template: ls
		        size: 0
		        max: 5
	EOF
	export BP=$BP_DIR/lease.yaml
}

teardown() {
	server_cleanup
}

# status_field EXPR: a field of `herd server status --json`.
status_field() {
	herd server status --json | json "$1"
}

# hosts_are N [STATE]: ls/g has N hosts (in STATE, when given).
hosts_are() {
	[ "$(herd host ls --json --group ls/g | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print scalar(grep { !$ARGV[0] || $_->{state} eq $ARGV[0] } @{$d->{items}}), "\n"' \
		"${2:-}")" -eq "$1" ]
}

@test "the one server leads at epoch >= 1 and says so" {
	server_start
	run herd server status
	[ "$status" -eq 0 ]
	[[ "$output" == *"leader: "*"epoch "* ]]
	[[ "$output" == *" leader "*"(answering)"* ]]
	[ "$(status_field '{lease}{live}')" = true ]
	[ "$(status_field '{lease}{epoch}')" -ge 1 ]
	[ "$(status_field '{lease}{holder}')" = "$(status_field '{self}')" ]
	[ "$(status_field '{self_acting}')" = true ]
	[ "$(herd server status --json | json_count '{servers}')" -eq 1 ]
	[ "$(status_field '{servers}[0]{leader}')" = true ]
}

@test "a restart takes the lease at the next epoch and its controllers act" {
	[ "$(id -u)" = 0 ] || skip "needs root (a local network)"
	server_start
	herd apply -f "$BP"
	e1=$(status_field '{lease}{epoch}')
	id1=$(status_field '{self}')
	[ "$e1" -ge 1 ]
	server_stop
	unset HERD_PORT
	server_start
	e2=$(status_field '{lease}{epoch}')
	[ "$e2" -eq $((e1 + 1)) ]
	[ "$(status_field '{lease}{holder}')" != "$id1" ]
	[ "$(status_field '{lease}{holder}')" = "$(status_field '{self}')" ]
	# the earlier process is listed too, not leading
	[ "$(herd server status --json | json_count '{servers}')" -eq 2 ]
	herd server status | grep -q "$id1 *standby"
	herd group scale ls/g 2
	wait_for 60 hosts_are 2 ready
	[ "$(status_field '{lease}{epoch}')" -eq "$e2" ]
	herd group scale ls/g 0
	wait_for 30 hosts_are 0
}
