#!/usr/bin/env bats
# Safety (issue 12), metric series quotas: one host with its own credential
# tries to create 1.1 million series. It gets its quota (10,000), the rest
# is refused and counted (push answer, `herd host show`, one activity, not
# one per push); a new host of another cluster is still fully stored and
# counted by the group aggregate; /metrics answers 200 (streamed);
# /v1/metrics/latest is paginated; the server's peak RSS stays under
# 500 MB; and with quotas raised to 400,000 series, SIGTERM ends the server
# within 5 s. Needs root (local hosts are network namespaces).

load lib

FLOOD_PUSHES=110        # x 10,000 series = 1.1 million
FLOOD_PER_PUSH=10000

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start --push-interval 1s
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR"
	cp -r "$BATS_TEST_DIRNAME/fixtures/metrics/scripts" "$BP_DIR/"
	CIDR=$(random_cidr)
	write_blueprint qa 1 >"$BP_DIR/qa.yaml"
	herd apply -f "$BP_DIR/qa.yaml" >/dev/null
	wait_for 90 group_ready qa 1
	ID1=$(herd host show qa/node-1 --json | json '{id}')
	CRED1=$(in_host "$ID1" cat /run/herd/host.json | json '{credential}')
	VIEWER=$(herd token create --role viewer --name quota-viewer)
	export BP_DIR CIDR ID1 CRED1 VIEWER
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_cleanup
}

setup() {
	require_root
}

# write_blueprint CLUSTER SIZE [FIELD: VALUE]: a cluster with one group of
# SIZE local hosts on this file's network (one network serves both
# clusters), and an optional field of the cluster.
write_blueprint() {
	cat <<EOF
accounts:
  - name: here
    driver: local
networks:
  - name: qnet
    account: here
    cidr: $CIDR
scripts:
  - name: ok.sh
    file: scripts/ok.sh
templates:
  - name: node
    account: here
    network: qnet
    init: [ok.sh]
clusters:
  - name: $1
    ${3:-description: quota test}
    groups:
      - name: node
        template: node
        size: $2
EOF
}

# group_ready CLUSTER N: N hosts of CLUSTER/node are ready.
group_ready() {
	[ "$(herd host ls --group "$1/node" --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print scalar(grep { $_->{state} eq "ready" } @{$d->{items}})')" = "$2" ]
}

# flood_body K TS: push K's 10,000 new series, all at TS.
flood_body() {
	perl -e 'my ($k, $ts, $n) = @ARGV;
		print "{\"batches\":[{\"ts_ms\":$ts,\"series\":[";
		print join(",", map { "{\"name\":\"flood\",\"labels\":{\"i\":\"" . ($k * $n + $_) . "\"},\"value\":1}" } 0 .. $n - 1);
		print "]}]}"' "$1" "$2" "$FLOOD_PER_PUSH"
}

server_pid() { cat "$HERD_DATA/server.pid"; }

# running PID: the process exists and has not exited (a zombie has: its
# parent, the file's setup, reaps it only later).
running() {
	[ -r "/proc/$1/status" ] && ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"
}

# The server's peak resident memory, MB.
server_hwm_mb() {
	awk '/^VmHWM:/ { print int($2 / 1024) }' "/proc/$(server_pid)/status"
}

@test "one host floods 1.1M series: quota kept, refusals counted and reported once" {
	local ts body out accepted=0 k
	ts=$(($(date +%s%3N) - 2000))
	body=$BATS_FILE_TMPDIR/flood.json
	for ((k = 0; k < FLOOD_PUSHES; k++)); do
		flood_body "$k" "$ts" >"$body"
		out=$(http POST /v1/agent/metrics "$CRED1" "@$body")
		[[ "$out" == "200 "* ]] || { echo "push $k: $out"; false; }
		accepted=$((accepted + $(echo "${out#200 }" | json '{accepted}')))
	done
	echo "accepted $accepted; last answer: ${out:0:300}"
	# the host's quota (its agent has a few series of its own too)
	[ "$accepted" -le 10000 ]
	[ "$accepted" -ge 9000 ]
	[ "$(echo "${out#200 }" | json '{refused}{reason}')" = host_quota ]
	[ "$(echo "${out#200 }" | json '{refused}{series}')" = "$FLOOD_PER_PUSH" ]
	# counted per host, visible in host show
	run herd host show qa/node-1 --json
	[ "$status" -eq 0 ]
	echo "$output" | json '{metrics}'
	[ "$(echo "$output" | json '{metrics}{series}')" -le 10000 ]
	[ "$(echo "$output" | json '{metrics}{max_series}')" = 10000 ]
	[ "$(echo "$output" | json '{metrics}{refused}')" -ge 1090000 ]
	[ "$(echo "$output" | json '{metrics}{refused_reason}')" = host_quota ]
	run herd host show qa/node-1
	[ "$status" -eq 0 ]
	[[ "$output" == *"new series refused (host_quota"* ]]
	# one activity, not one per push
	run herd activity ls --cluster qa --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print scalar(grep { $_->{kind} eq "metrics_refused" } @{$d->{items}})')" = 1 ]
}

@test "a new host of another cluster is fully stored and counted by its group" {
	write_blueprint qb 2 >"$BP_DIR/qb.yaml"
	herd apply -f "$BP_DIR/qb.yaml" >/dev/null
	wait_for 90 group_ready qb 2
	# both hosts' agents push cpu_busy_pct (the machine's and, in its
	# cgroup, the host's own: scope="host"): both hosts' series stored ...
	latest_two() {
		[ "$(http GET "/v1/metrics/latest?metric=cpu_busy_pct&group=node&cluster=qb" "$VIEWER" |
			cut -d' ' -f2- | perl -MJSON::PP -e '
			my %h = map { ($_->{host} => 1) } grep { $_->{labels}{scope} eq "machine" }
				@{decode_json(join "", <STDIN>)->{items}};
			print scalar keys %h')" = 2 ]
	}
	wait_for 30 latest_two
	# ... and the group aggregate counts 2 hosts
	agg_two() {
		http GET "/v1/metrics/query?metric=cpu_busy_pct&group=qb/node&agg=avg&since=1m&step=5s" "$VIEWER" |
			cut -d' ' -f2- | perl -MJSON::PP -e '
			my $d = decode_json(join "", <STDIN>);
			my @s = map { $_->{series} } @{$d->{points}};
			exit((grep { $_ == 2 } @s) ? 0 : 1)'
	}
	wait_for 30 agg_two
	run herd host show qb/node-1 --json
	[ "$(echo "$output" | json '{metrics}{refused}')" = 0 ]
}

@test "/metrics answers 200 with everything, streamed" {
	local code
	code=$(curl -s -o "$BATS_FILE_TMPDIR/expo.txt" -w '%{http_code}' \
		-H "Authorization: Bearer $VIEWER" "$HERD_URL/metrics")
	[ "$code" = 200 ]
	grep -q '^herd_tsdb_series [0-9]' "$BATS_FILE_TMPDIR/expo.txt"
	[ "$(grep -c '^flood{' "$BATS_FILE_TMPDIR/expo.txt")" -ge 9000 ]
	[ "$(grep -c '^# TYPE flood untyped$' "$BATS_FILE_TMPDIR/expo.txt")" = 1 ]
	grep -q '^cpu_busy_ratio{.*cluster="qb"' "$BATS_FILE_TMPDIR/expo.txt"
	# the metric list counts in the store, without a copy per series
	local out n
	out=$(http GET "/v1/metrics?cluster=qa" "$VIEWER")
	[[ "$out" == "200 "* ]]
	n=$(echo "${out#200 }" | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print map { $_->{series} } grep { $_->{name} eq "flood" } @{$d->{items}}')
	[ "$n" -ge 9000 ]
	[ "$n" -le 10000 ]
}

@test "/v1/metrics/latest is paginated; bad limit or cursor name the field" {
	local out next n total=0 pages=0
	out=$(http GET "/v1/metrics/latest" "$VIEWER")
	[[ "$out" == "200 "* ]]
	# the default page is 1000 series, with a cursor
	[ "$(echo "${out#200 }" | json_count '{items}')" = 1000 ]
	next=$(echo "${out#200 }" | json '{next}')
	[ -n "$next" ]
	# following the cursor walks the whole store exactly once (bounded)
	next=
	while ((pages < 20)); do
		out=$(http GET "/v1/metrics/latest?limit=5000${next:+&after=$next}" "$VIEWER")
		[[ "$out" == "200 "* ]]
		n=$(echo "${out#200 }" | json_count '{items}')
		[ "$n" -le 5000 ]
		total=$((total + n))
		pages=$((pages + 1))
		next=$(echo "${out#200 }" | json '{next}')
		[ -n "$next" ] || break
	done
	[ -z "$next" ]
	[ "$total" -ge 9000 ]
	[ "$total" -le 11000 ]
	run http GET "/v1/metrics/latest?limit=0" "$VIEWER"
	[[ "$output" == "400 "*'"field":"limit"'* ]]
	run http GET "/v1/metrics/latest?limit=100000" "$VIEWER"
	[[ "$output" == "400 "*'"field":"limit"'* ]]
	run http GET "/v1/metrics/latest?after=x1" "$VIEWER"
	[[ "$output" == "400 "*'"field":"after"'* ]]
	# the CLI follows the cursor
	run herd top --group qb/node --once
	[ "$status" -eq 0 ]
	[[ "$output" == *"qb/node-1"* ]]
}

@test "a cluster's own quota comes from its spec, validated" {
	write_blueprint qa 1 "series_per_host: 0" >"$BP_DIR/qa0.yaml"
	run herd apply -f "$BP_DIR/qa0.yaml"
	[ "$status" -ne 0 ]
	[[ "$output" == *series_per_host* ]]
	write_blueprint qa 1 "series_per_host: 12000" >"$BP_DIR/qa1.yaml"
	run herd apply -f "$BP_DIR/qa1.yaml"
	[ "$status" -eq 0 ]
	run herd host show qa/node-1 --json
	[ "$(echo "$output" | json '{metrics}{max_series}')" = 12000 ]
	local ts body out
	ts=$(($(date +%s%3N) - 1000))
	body=$BATS_FILE_TMPDIR/flood.json
	flood_body 200 "$ts" >"$body"
	out=$(http POST /v1/agent/metrics "$CRED1" "@$body")
	[[ "$out" == "200 "* ]]
	# 2,000 more fit now
	[ "$(echo "${out#200 }" | json '{accepted}')" -ge 1900 ]
	[ "$(echo "${out#200 }" | json '{refused}{reason}')" = host_quota ]
}

@test "server peak RSS stayed under 500 MB" {
	local mb
	mb=$(server_hwm_mb)
	echo "VmHWM ${mb} MB"
	[ "$mb" -lt 500 ]
}

@test "SIGTERM with 400,000 series finishes within 5 s" {
	local ts body out k pid t0 ms
	# quotas raised by the cluster's spec (a cluster still gets at most half
	# of the store's 1,000,000)
	write_blueprint qa 1 "series_per_host: 1000000
    series_per_cluster: 1000000" >"$BP_DIR/qa2.yaml"
	run herd apply -f "$BP_DIR/qa2.yaml"
	[ "$status" -eq 0 ]
	ts=$(($(date +%s%3N) - 500))
	body=$BATS_FILE_TMPDIR/flood.json
	for ((k = 300; k < 340; k++)); do
		flood_body "$k" "$ts" >"$body"
		out=$(http POST /v1/agent/metrics "$CRED1" "@$body")
		[[ "$out" == "200 "* ]] || { echo "push $k: ${out:0:300}"; false; }
	done
	out=$(curl -s -H "Authorization: Bearer $VIEWER" "$HERD_URL/metrics" | awk '$1 == "herd_tsdb_series" { print $2 }')
	echo "series: $out"
	[ "$out" -ge 400000 ]
	pid=$(server_pid)
	t0=$(date +%s%3N)
	kill -TERM "$pid"
	for _ in $(seq 1 600); do
		running "$pid" || break
		sleep 0.05
	done
	ms=$(($(date +%s%3N) - t0))
	echo "SIGTERM to exit: $ms ms"
	run running "$pid"
	[ "$status" -ne 0 ]
	[ "$ms" -le 5000 ]
}
