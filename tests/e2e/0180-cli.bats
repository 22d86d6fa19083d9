#!/usr/bin/env bats
# The admin CLI's grammar (issue 13): options parsed with getopt_long, so a
# mistyped option, a missing option value or an extra argument exits 2 with
# the command's usage line on stderr; --json on every read command (run logs
# and top included); a group, host or cluster that does not exist is an
# error, not an empty answer; the generated help is grammatical and lists
# each command once. Most tests need only a server; the run logs and top
# tests need root (local hosts are network namespaces).

load lib

setup_file() {
	server_start
	BP=$BATS_FILE_TMPDIR/cli.yaml
	cat >"$BP" <<EOF
accounts:
  - name: cli-here
    driver: local
networks:
  - name: cli-net
    account: cli-here
    cidr: $(random_cidr)
scripts:
  - name: cli-hello.sh
    content: |
      #!/bin/sh
      echo "hello from \$HERD_HOST"
      echo "to stderr" >&2
templates:
  - name: cli-node
    account: cli-here
    network: cli-net
clusters:
  - name: cli
    groups:
      - name: web
        template: cli-node
        size: 1
EOF
	export BP
}

teardown_file() {
	server_cleanup
}

# usage_error CMD...: runs herd CMD, expects exit 2, "herd: " and a usage
# line on stderr and nothing on stdout.
usage_error() {
	run --separate-stderr "$HERD" "$@"
	echo "exit $status; stdout: $output; stderr: $stderr"
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	[[ "$stderr" == *"herd: "* ]]
	[[ "$stderr" == *"usage: herd "* ]]
}

cluster_ready() {
	[ "$(herd host ls --group cli/web --json | json '{items}[0]{state}')" = ready ]
}

# with_cluster: applies the blueprint once (root: hosts are namespaces) and
# waits for its one host.
with_cluster() {
	require_root
	herd apply -f "$BP" >/dev/null
	wait_for 90 cluster_ready
}

@test "a mistyped option exits 2 with the usage line, for several commands" {
	usage_error host ls --grop web
	[[ "$stderr" == *"'--grop'"* ]]
	[[ "$stderr" == *"usage: herd host ls"* ]]
	usage_error activity ls --limt 1
	[[ "$stderr" == *"'--limt'"* ]]
	usage_error account ls --nmae x
	usage_error group show x --jsn
	usage_error metrics query m --group x --sine 5m
	usage_error token ls --role admin
	usage_error run ls --scrpit x
	usage_error top --once --grop x
	usage_error policy simulate a/b/c --sincee 1h
	usage_error apply -f x.yaml --dryrun
	usage_error host ls -x
	# herd meta (on a host) parses the same way
	run --separate-stderr env HERD_META_CONFIG=/nonexistent "$HERD" meta group x --wiat
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"unknown option '--wiat'"* ]]
	[[ "$stderr" == *"usage: herd meta group"* ]]
}

@test "a missing option value or an extra argument exits 2 with the usage line" {
	usage_error activity ls --limit
	[[ "$stderr" == *"--limit"* ]]
	usage_error host ls extra
	[[ "$stderr" == *"'extra'"* ]]
	usage_error account show a b
	usage_error whoami me
	usage_error group scale g 1 2
	usage_error host show
	usage_error run logs
}

@test "options still parse in every accepted form" {
	run herd host ls --group=nosuch-x --json
	[ "$status" -ne 2 ]
	run herd activity ls --limit 1 --json
	[ "$status" -eq 0 ]
	echo "$output" | json '{items}' >/dev/null
	run herd --json activity ls --limit=1
	[ "$status" -eq 0 ]
	echo "$output" | json '{items}' >/dev/null
	run herd activity ls --limit 1 --server "$HERD_URL" --token "$HERD_TOKEN"
	[ "$status" -eq 0 ]
	run herd account ls -h
	[ "$status" -eq 0 ]
	[[ "$output" == "usage: herd account ls"* ]]
	# after --, a word that looks like an option is a name
	run --separate-stderr herd account show -- --x
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"'--x'"* ]]
}

@test "unknown names are errors: metrics query, metrics ls, host ls, activity ls, top" {
	run --separate-stderr herd metrics query m --group nosuch
	echo "exit $status; stdout: $output; stderr: $stderr"
	[ "$status" -ne 0 ]
	[[ "$stderr" == *"'nosuch'"* ]]
	[ -z "$output" ]
	run --separate-stderr herd metrics query m --host nosuch-host
	[ "$status" -ne 0 ]
	[[ "$stderr" == *"'nosuch-host'"* ]]
	run --separate-stderr herd metrics ls --group nosuch
	[ "$status" -ne 0 ]
	[[ "$stderr" == *"'nosuch'"* ]]
	run --separate-stderr herd host ls --group nosuch
	[ "$status" -ne 0 ]
	[[ "$stderr" == *"'nosuch'"* ]]
	run --separate-stderr herd host ls --cluster nosuch-cl
	[ "$status" -ne 0 ]
	[[ "$stderr" == *"'nosuch-cl'"* ]]
	run --separate-stderr herd activity ls --group nosuch
	[ "$status" -ne 0 ]
	[[ "$stderr" == *"'nosuch'"* ]]
	run --separate-stderr herd top --once --group nosuch
	[ "$status" -ne 0 ]
	[[ "$stderr" == *"'nosuch'"* ]]
	run --separate-stderr herd run ls --host nosuch-host
	[ "$status" -ne 0 ]
	[[ "$stderr" == *"'nosuch-host'"* ]]
}

@test "help is grammatical and lists each command once" {
	run herd --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"Delete an account"* ]]
	[[ "$output" == *"List policies"* ]]
	[[ "$output" == *"List load balancers"* ]]
	[[ "$output" != *"policys"* ]]
	[[ "$output" != *" a account"* ]]
	[[ "$output" != *" a lb"* ]]
	dups=$(echo "$output" | awk '$1 == "herd" { print $2, $3 }' | sort | uniq -d)
	echo "duplicates: $dups"
	[ -z "$dups" ]
	[ "$(echo "$output" | grep -c '^  herd lb show')" -eq 1 ]
}

@test "run logs --json and top --json print JSON" {
	with_cluster
	out=$(herd script run cli-hello.sh --group cli/web --wait --json)
	id=$(echo "$out" | json '{id}')
	run herd run logs "$id" --json
	[ "$status" -eq 0 ]
	echo "$output"
	[ "$(echo "$output" | json '{id}')" = "$id" ]
	[ -n "$(echo "$output" | json '{hosts}[0]{host}')" ]
	[[ "$(echo "$output" | json '{hosts}[0]{stdout}')" == "hello from "* ]]
	[ "$(echo "$output" | json '{hosts}[0]{stderr}')" = "to stderr" ]
	# --follow on an ended run: the same object
	run herd run logs "$id" --follow --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | json '{id}')" = "$id" ]
	run herd top --json --group cli/web
	[ "$status" -eq 0 ]
	echo "$output"
	[ "$(echo "$output" | json '{hosts}[0]{cluster}')" = cli ]
	[ "$(echo "$output" | json '{hosts}[0]{group}')" = web ]
	[ "$(echo "$output" | json '{hosts}[0]{state}')" = ready ]
	echo "$output" | json '{hosts}[0]{monitors}' >/dev/null
	# the group exists now: an empty query is not an error
	run herd metrics query no_such_metric --group cli/web
	[ "$status" -eq 0 ]
}
