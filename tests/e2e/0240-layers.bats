#!/usr/bin/env bats
# Layers (issue 13): an API handler never calls a provider. Deleting a
# network (DELETE, or apply's removal) records the deletion with the
# resource's delete; the controller removes the bridge on its next pass and
# says so in the activity log. The record outlives a crash: a provider that
# fails, then a kill -9, leave the job to the restarted server. Needs root.

load lib

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR"
	export BP_DIR
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_cleanup
}

setup() {
	require_root
}

# write_bp FILE NET CIDR: local account a-NET, network NET, a template on it
# and group ly/NET of one host (launching one makes the bridge).
write_bp() {
	cat >"$1" <<YAML
accounts:
  - name: a-$2
    driver: local
networks:
  - name: $2
    account: a-$2
    cidr: $3
templates:
  - name: t-$2
    account: a-$2
    network: $2
clusters:
  - name: ly
    groups:
      - name: $2
        template: t-$2
        size: 1
        max: 2
YAML
}

# bridge NET: the local provider's bridge of network NET (prov-local.c:
# "herd" + the first 8 hex digits of sha256(instance/NET)).
bridge() {
	local inst
	inst=$(curl -sf "$HERD_URL/healthz" | json '{instance}')
	echo "herd$(printf '%s/%s' "$inst" "$1" | sha256sum | cut -c1-8)"
}

has_link() {
	ip link show "$1" >/dev/null 2>&1
}

no_link() {
	! ip link show "$1" >/dev/null 2>&1
}

# live_hosts GROUP: how many of ly/GROUP's hosts are not terminated.
live_hosts() {
	herd host ls --group "ly/$1" --json | perl -MJSON::PP -e '
		print scalar grep { $_->{state} ne "terminated" } @{decode_json(join "", <STDIN>)->{items}}'
}

no_live_hosts() {
	[ "$(live_hosts "$1")" = 0 ]
}

# removed_activity NET: the reason of the activity saying NET's bridge went.
removed_activity() {
	herd activity ls --json | perl -MJSON::PP -e '
		my $n = shift;
		for (@{decode_json(join "", <STDIN>)->{items}}) {
			print "$_->{reason}\n" if $_->{kind} eq "network_removed" && $_->{reason} =~ /\b\Q$n\E\b/;
		}' "$1"
}

has_removed_activity() {
	[ -n "$(removed_activity "$1")" ]
}

db() {
	store_sql "$@"
}

# make_net NET: applies NET's blueprint, waits for its bridge, then empties
# and deletes its group and template: only the network is left to delete.
make_net() {
	write_bp "$BP_DIR/$1.yaml" "$1" "$(random_cidr)"
	run herd apply -f "$BP_DIR/$1.yaml"
	echo "$output"
	[ "$status" -eq 0 ]
	wait_for 30 has_link "$(bridge "$1")"
	run herd group scale "ly/$1" 0
	[ "$status" -eq 0 ]
	wait_for 60 no_live_hosts "$1"
	run herd group rm "ly/$1"
	echo "$output"
	[ "$status" -eq 0 ]
	run http DELETE "/v1/templates/t-$1" "$HERD_TOKEN"
	echo "$output"
	[[ "$output" == "200 "* ]]
}

@test "deleting a network: the controller removes its bridge and says so" {
	make_net lynet1
	run http DELETE /v1/networks/lynet1 "$HERD_TOKEN"
	echo "$output"
	[[ "$output" == "200 "* ]]
	wait_for 15 no_link "$(bridge lynet1)"
	wait_for 15 has_removed_activity lynet1
	echo "activity: $(removed_activity lynet1)"
	[[ "$(removed_activity lynet1)" == *"deleted"* ]]
	[ "$(db "SELECT COUNT(*) FROM networks_gone")" = 0 ]
}

@test "a network deleted with its account after a restart: its bridge still goes" {
	make_net lynet4
	# a restarted server has opened no account yet
	server_stop
	server_start
	has_link "$(bridge lynet4)"
	run http DELETE /v1/networks/lynet4 "$HERD_TOKEN"
	[[ "$output" == "200 "* ]]
	run http DELETE /v1/accounts/a-lynet4 "$HERD_TOKEN"
	echo "$output"
	[[ "$output" == "200 "* ]]
	wait_for 15 no_link "$(bridge lynet4)"
	wait_for 15 has_removed_activity lynet4
	[ "$(db "SELECT COUNT(*) FROM networks_gone")" = 0 ]
}

@test "a removal the provider fails is kept, and a restart after kill -9 finishes it" {
	make_net lynet2
	server_stop
	HERD_FAILPOINTS=prov_net_delete=error server_start
	run http DELETE /v1/networks/lynet2 "$HERD_TOKEN"
	echo "$output"
	[[ "$output" == "200 "* ]]
	# the handler answered without the provider; passes fail and retry
	wait_for 15 grep -q "remove network 'lynet2'" "$HERD_DATA/server.log"
	sleep 2
	has_link "$(bridge lynet2)"
	[ "$(db "SELECT name FROM networks_gone")" = lynet2 ]
	refute has_removed_activity lynet2

	kill -9 "$SERVER_PID"
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
	server_start
	wait_for 15 no_link "$(bridge lynet2)"
	wait_for 15 has_removed_activity lynet2
	[ "$(db "SELECT COUNT(*) FROM networks_gone")" = 0 ]
}

# group_desired GROUP: ly/GROUP's desired size.
group_desired() {
	curl -sf -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/v1/groups/$1?cluster=ly" |
		json '{desired}'
}

@test "terminating a host by request: desired drops by one, the activity names who, the host goes" {
	write_bp "$BP_DIR/lynet3.yaml" lynet3 "$(random_cidr)"
	run herd apply -f "$BP_DIR/lynet3.yaml"
	[ "$status" -eq 0 ]
	wait_for 30 herd host ls --group ly/lynet3 --json
	has_host() { [ "$(live_hosts lynet3)" = 1 ]; }
	wait_for 30 has_host
	[ "$(group_desired lynet3)" = 1 ]
	run http POST "/v1/hosts/lynet3-1/terminate?cluster=ly" "$HERD_TOKEN"
	echo "$output"
	[[ "$output" == "200 "* ]]
	[ "$(group_desired lynet3)" = 0 ]
	wait_for 60 no_live_hosts lynet3
	herd activity ls --json --cluster ly --group lynet3 | perl -MJSON::PP -e '
		exit !grep { $_->{kind} eq "terminate" && $_->{cause} eq "manual"
			     && $_->{reason} =~ /^lynet3-1 terminated by / } @{decode_json(join "", <STDIN>)->{items}}'
}
