#!/usr/bin/env bats
# Safety (issue 12): script parameters are data, files are private, and the
# CLI does not let a host write to the operator's terminal.
#
# - a run's env names that change how bash, the loader or an interpreter
#   starts (BASH_ENV, LD_*, PYTHON*, ...) are refused with a 400 naming
#   env.NAME: the issue's finding, BASH_ENV=$(touch CANARY), ran as root on
#   the host before the script started;
# - the audit row of a run names the env variables, never their values;
# - herd.db, its -wal/-shm and admin.token are 0600 whatever the umask and
#   the data dir's mode, and a restart mends older files;
# - host-supplied text in `herd host ls/show` and `herd activity ls` has its
#   control characters escaped (\x1b, \n);
# - `herd login URL` reads the token from stdin or --token-file.
# Tests that need hosts need root.

load lib

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start
	CANARY=/var/tmp/herd-0100-canary.$$.$RANDOM
	export CANARY
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR/scripts"
	printf '#!/bin/bash\necho hello\n' >"$BP_DIR/scripts/hello.sh"
	cat >"$BP_DIR/cluster.yaml" <<EOF
accounts:
  - name: here
    driver: local
networks:
  - name: safety-net
    account: here
    cidr: $(random_cidr)
scripts:
  - name: hello.sh
    file: scripts/hello.sh
templates:
  - name: plain
    account: here
    network: safety-net
clusters:
  - name: se
    groups:
      - name: web
        template: plain
        size: 1
      - name: bad
        template: plain
        size: 1
EOF
	export BP=$BP_DIR/cluster.yaml
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	# the permission test's own server, if a failure left it running
	if [ -f "$BATS_FILE_TMPDIR/perm.pid" ]; then
		kill "$(cat "$BATS_FILE_TMPDIR/perm.pid")" 2>/dev/null || true
		wait_for 10 perm_gone || kill -9 "$(cat "$BATS_FILE_TMPDIR/perm.pid")" 2>/dev/null || true
		rm -rf "$BATS_FILE_TMPDIR/perm-data"
	fi
	rm -f "${CANARY:-}"
	server_cleanup
}

setup() {
	require_root
}

perm_gone() {
	! kill -0 "$(cat "$BATS_FILE_TMPDIR/perm.pid")" 2>/dev/null
}

groups_ready() {
	[ "$(herd host ls --group se/web | grep -c ' ready ')" -eq 1 ] &&
		[ "$(herd host ls --group se/bad | grep -c ' ready ')" -eq 1 ]
}

@test "the cluster comes up: one ready host in each group" {
	run herd apply -f "$BP"
	[ "$status" -eq 0 ]
	wait_for 30 groups_ready
}

@test "the issue's finding: BASH_ENV=\$(touch CANARY) is refused, naming env.BASH_ENV, and runs nothing" {
	# hosts have their own /tmp but share the rest of the machine's files
	canary=$CANARY
	rm -f "$canary"
	run herd script run hello.sh --host se/web-1 --env "BASH_ENV=\$(touch $canary; echo /dev/null)" --wait
	echo "$output"
	[ ! -e "$canary" ]
	[ "$status" -ne 0 ]
	[[ "$output" == *"env.BASH_ENV"* ]]
	[[ "$output" == *"run commands before the script"* ]]
	# nothing was recorded as a run either
	[ "$(herd run ls --script hello.sh --json | json_count '{items}')" -eq 0 ]
}

@test "names that change how a shell, the loader or an interpreter starts are refused; plain ones pass" {
	for name in BASH_ENV ENV BASH_FUNC_x SHELLOPTS BASHOPTS PS4 IFS CDPATH GLOBIGNORE \
		LD_PRELOAD LD_LIBRARY_PATH GCONV_PATH GLIBC_TUNABLES LOCPATH NLSPATH HOSTALIASES \
		MALLOC_CHECK_ PYTHONPATH PYTHONSTARTUP PERL5OPT PERLLIB RUBYOPT NODE_OPTIONS \
		NODE_PATH JAVA_TOOL_OPTIONS _JAVA_OPTIONS JDK_JAVA_OPTIONS OPENSSL_CONF \
		OPENSSL_ENGINES LUA_INIT TCLLIBPATH ZDOTDIR PATH HOME SHELL TMPDIR HERD_HOST \
		http_proxy ld_preload Bash_Env; do
		run http POST /v1/runs "$HERD_TOKEN" \
			"{\"script\":\"hello.sh\",\"host\":\"se/web-1\",\"env\":{\"$name\":\"x\"}}"
		echo "$name: $output"
		[[ "$output" == "400 "* ]]
		[ "$(echo "${output#* }" | json '{error}{field}')" = "env.$name" ]
	done
	run http POST /v1/runs "$HERD_TOKEN" \
		'{"script":"hello.sh","host":"se/web-1","env":{"K8S_VERSION":"1.30","POD_CIDR":"x","_X1":"y"}}'
	echo "$output"
	[[ "$output" == "201 "* ]]
}

@test "the audit row of a run names its env variables, never their values" {
	run herd script run hello.sh --host se/web-1 --env K8S_VERSION=s3cr3t-v4lue \
		--env POD_CIDR=10.244.0.0/16 --wait --json
	[ "$status" -eq 0 ]
	id=$(echo "$output" | json '{id}')
	run herd audit ls --json
	detail=$(echo "$output" | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		for (@{$d->{items}}) { print "$_->{detail}\n" if $_->{detail} =~ /^run $ARGV[0]:/ }' "$id")
	echo "detail: $detail"
	[[ "$detail" == *"env K8S_VERSION,POD_CIDR"* ]]
	[[ "$output" != *"s3cr3t"* ]]
	[[ "$output" != *"10.244.0.0"* ]]
}

# stat_modes DIR: "NAME MODE" for the store's and the token's files.
stat_modes() {
	local f
	for f in herd.db herd.db-wal herd.db-shm admin.token; do
		echo "$f $(stat -c %a "$1/$f" 2>/dev/null || echo missing)"
	done
}

@test "herd.db, -wal, -shm and admin.token are 0600 with umask 000 and a 0777 data dir; a restart mends them" {
	skip_on_pg "the modes of SQLite's files (its server runs on SQLite in either pass)"
	d=$BATS_FILE_TMPDIR/perm-data
	mkdir -p "$d"
	chmod 0777 "$d"
	port=$(free_port)
	(umask 000; exec "$HERD" server --data "$d" --listen "127.0.0.1:$port" >>"$BATS_FILE_TMPDIR/perm.log" 2>&1) &
	echo $! >"$BATS_FILE_TMPDIR/perm.pid"
	wait_for 10 curl -sf "http://127.0.0.1:$port/healthz" >/dev/null
	tok=$(cat "$d/admin.token")
	# write something: a token and its audit row
	HERD_URL=http://127.0.0.1:$port HERD_TOKEN=$tok herd token create --role viewer --name perm-v >/dev/null
	run stat_modes "$d"
	echo "$output"
	[ "$output" = "$(printf 'herd.db 600\nherd.db-wal 600\nherd.db-shm 600\nadmin.token 600')" ]
	kill "$(cat "$BATS_FILE_TMPDIR/perm.pid")"
	wait_for 10 perm_gone
	# files left readable by an older herd are mended on the next start
	chmod 0644 "$d/herd.db" "$d/admin.token"
	[ -e "$d/herd.db-wal" ] && chmod 0644 "$d/herd.db-wal"
	(umask 000; exec "$HERD" server --data "$d" --listen "127.0.0.1:$port" >>"$BATS_FILE_TMPDIR/perm.log" 2>&1) &
	echo $! >"$BATS_FILE_TMPDIR/perm.pid"
	wait_for 10 curl -sf "http://127.0.0.1:$port/healthz" >/dev/null
	HERD_URL=http://127.0.0.1:$port HERD_TOKEN=$tok herd token create --role viewer --name perm-w >/dev/null
	run stat_modes "$d"
	echo "$output"
	[ "$output" = "$(printf 'herd.db 600\nherd.db-wal 600\nherd.db-shm 600\nadmin.token 600')" ]
	kill "$(cat "$BATS_FILE_TMPDIR/perm.pid")"
	wait_for 10 perm_gone
	rm -rf "$d"
	rm -f "$BATS_FILE_TMPDIR/perm.pid"
}

@test "a host's state reason with ESC and a newline is shown escaped by host ls, host show and activity ls" {
	hid=$(herd host show se/bad-1 --json | json '{id}')
	cred=$(json '{credential}' <"$HERD_DATA/hosts/$hid/$hid/credential.json")
	run http POST /v1/agent/state "$cred" '{"state":"failed","reason":"boom\u001b[2J\u001b]0;pwned\u0007\nFAKE ROW\u009b31m"}'
	echo "$output"
	[[ "$output" == "200 "* ]]
	for cmd in "host ls --all" "host show se/bad-1" "activity ls"; do
		# shellcheck disable=SC2086
		run herd $cmd
		echo "herd $cmd: $output" | cat -v
		[ "$status" -eq 0 ]
		[[ "$output" != *$'\e'* ]]
		[[ "$output" != *$'\a'* ]]
		[[ "$output" != *$'\xc2\x9b'* ]]
		[[ "$output" != *$'\n'"FAKE ROW"* ]]
		[[ "$output" == *'boom\x1b[2J\x1b]0;pwned\x07\nFAKE ROW\u009b31m'* ]]
	done
	# --json stays JSON, with the text as the host sent it
	[ "$(herd host show se/bad-1 --json | json '{reason}')" = "$(printf 'boom\e[2J\e]0;pwned\a\nFAKE ROW\xc2\x9b31m')" ]
}

@test "herd login reads the token from stdin or --token-file, never needing it on the command line" {
	home=$BATS_FILE_TMPDIR/login-home
	mkdir -p "$home"
	run env HOME="$home" "$HERD" login "$HERD_URL" <<<"$HERD_TOKEN"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(json '{token}' <"$home/.config/herd/config")" = "$HERD_TOKEN" ]
	[ "$(stat -c %a "$home/.config/herd/config")" = 600 ]
	rm -f "$home/.config/herd/config"
	printf '%s\n' "$HERD_TOKEN" >"$home/tok"
	run env HOME="$home" "$HERD" login "$HERD_URL" --token-file "$home/tok" </dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(json '{token}' <"$home/.config/herd/config")" = "$HERD_TOKEN" ]
	# a wrong token is refused and nothing is saved
	rm -f "$home/.config/herd/config"
	run env HOME="$home" "$HERD" login "$HERD_URL" <<<"not-a-token"
	[ "$status" -ne 0 ]
	[ ! -e "$home/.config/herd/config" ]
	# an empty stdin is an error, not an empty token
	run env HOME="$home" "$HERD" login "$HERD_URL" </dev/null
	[ "$status" -ne 0 ]
	[[ "$output" == *"token"* ]]
	# the help says why the argument form is discouraged
	run "$HERD" login --help
	[[ "$output" == *"ps"* ]]
}
