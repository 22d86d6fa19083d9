#!/usr/bin/env bats
# Local hosts cannot read the server's data dir (issue 12): a host runs as
# root on the machine's files, so the server's admin.token and herd.db
# would be one `cat` away for any script an operator may run. Each host's
# mount namespace covers the data dir with an empty read-only tmpfs. The
# data dir here is deliberately NOT under /tmp (the hosts' own /tmp tmpfs
# would hide it and prove nothing).

load lib

setup_file() {
	require_root
	HERD_DATA=$(mktemp -d /var/tmp/herd-mask.XXXXXX)
	export HERD_DATA
	server_start
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR"
	sed -e "s|@CIDR@|$(random_cidr)|" -e "s|@DATA@|$HERD_DATA|g" \
		"$BATS_TEST_DIRNAME/fixtures/local-mask/cluster.yaml" >"$BP_DIR/cluster.yaml"
	export BP=$BP_DIR/cluster.yaml
}

teardown_file() {
	server_cleanup
}

@test "a script on a local host cannot read the server's admin token or database" {
	require_root
	herd apply -f "$BP"
	wait_for 60 bash -c "[ \"\$($HERD host ls --json | perl -MJSON::PP -e '
		my \$d = decode_json(join \"\", <STDIN>);
		print scalar grep { \$_->{state} eq \"ready\" } @{\$d->{items}}')\" = 1 ]"
	run herd script run peek.sh --group mk/box --wait --json
	echo "$output"
	[ "$status" -eq 0 ]
	id=$(echo "$output" | json '{id}')
	run herd run logs "$id"
	echo "$output"
	token=$(cat "$HERD_DATA/admin.token")
	[ -n "$token" ]
	# the script ran (its own state dir is still there) ...
	[[ "$output" == *"state: "*"agent.log"* ]]
	# ... and saw neither the token nor the database
	[[ "$output" != *"$token"* ]]
	[[ "$output" != *"herd.db"* ]]
	[[ "$output" == *"Permission denied"* || "$output" == *"No such file"* ]]
	# the server's own view is untouched (on PostgreSQL no herd.db)
	[ -f "$HERD_DATA/admin.token" ]
	on_pg || [ -f "$HERD_DATA/herd.db" ]
}
