# 0650-ha-failover.bash - helpers of 0650-ha-failover.bats: three herd
# servers on one PostgreSQL (tools/pg-tmp.sh), each with its own data dir
# and port on 127.0.0.1, and the fake QingCloud they all call
# (qingcloud.bash, in $HA/fq). Server I (1..3) lives in $HA/dI (server.log,
# server.pid, admin.token, port).

export PG_TMP=$BATS_TEST_DIRNAME/../../tools/pg-tmp.sh
KEY_ID=QYHAFAILOVERKEY
TTL_S=3

# srv_start I [FAILPOINTS]: starts server I (a new process, a new server
# id) on the shared store, with HERD_FAILPOINTS=FAILPOINTS.
srv_start() {
	local d=$HA/d$1 port
	mkdir -p "$d"
	[ -f "$d/port" ] || free_port >"$d/port"
	port=$(cat "$d/port")
	HERD_FAILPOINTS=${2:-} "$HERD" server --data "$d" --store "$PG_DSN" \
		--listen "127.0.0.1:$port" --lease-ttl "${TTL_S}s" --log-level debug \
		>>"$d/server.log" 2>&1 &
	echo $! >"$d/server.pid"
	wait_for 20 curl -sf "http://127.0.0.1:$port/healthz" >/dev/null
}

srv_pid() {
	cat "$HA/d$1/server.pid"
}

srv_url() {
	echo "http://127.0.0.1:$(cat "$HA/d$1/port")"
}

# srv_stop I: SIGTERM (SIGCONT first: it may be stopped), then SIGKILL.
srv_stop() {
	local pid
	[ -f "$HA/d$1/server.pid" ] || return 0
	pid=$(srv_pid "$1")
	kill -CONT "$pid" 2>/dev/null || true
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -f "$HA/d$1/server.pid"
}

srv_gone() {
	! kill -0 "$1" 2>/dev/null
}

# srv_kill9 I: server I dies as in a crash.
srv_kill9() {
	local pid
	pid=$(srv_pid "$1")
	kill -9 "$pid"
	wait_for 10 srv_gone "$pid"
	wait "$pid" 2>/dev/null || true
	rm -f "$HA/d$1/server.pid"
}

# on I CMD...: the CLI against server I. Tokens live in the store: the
# admin token the first server made (in its data dir only) works on all.
on() {
	local i=$1
	shift
	HERD_URL=$(srv_url "$i") HERD_TOKEN=$(cat "$HA/d1/admin.token") "$HERD" "$@"
}

# servers I: GET /v1/servers on server I.
servers() {
	curl -sf --max-time 10 -H "Authorization: Bearer $(cat "$HA/d1/admin.token")" "$(srv_url "$1")/v1/servers"
}

# self_id I: server I's id.
self_id() {
	servers "$1" | json '{self}'
}

# lease_on I: "holder epoch live" as server I sees the lease.
lease_on() {
	servers "$1" | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>); my $l = $d->{lease} // {};
		printf "%s %d %s\n", $l->{holder} // "-", $l->{epoch} // 0, $l->{live} ? "live" : "lapsed"'
}

# leads I: server I holds a live lease, as it sees it.
leads() {
	local l
	l=$(lease_on "$1") || return 1
	[ "${l%% *}" = "$(self_id "$1")" ] && [ "${l##* }" = live ]
}

# leader_index: the I (1..3) of the server holding the lease, as the
# first answering server sees it; nothing when none or unknown.
leader_index() {
	local i j holder
	for i in 1 2 3; do
		[ -f "$HA/d$i/server.pid" ] || continue
		holder=$(lease_on "$i" | awk '$3 == "live" {print $1}') || continue
		for j in 1 2 3; do
			[ -f "$HA/d$j/id" ] && [ "$(cat "$HA/d$j/id")" = "$holder" ] && echo "$j"
		done
		return 0
	done
}

# new_leader_on I OLD_ID EPOCH: server I sees a live lease held by another
# server than OLD_ID at EPOCH.
new_leader_on() {
	local l holder epoch live
	l=$(lease_on "$1") || return 1
	read -r holder epoch live <<<"$l"
	[ "$holder" != "$2" ] && [ "$holder" != - ] && [ "$epoch" -eq "$3" ] && [ "$live" = live ]
}

bp() {
	cat <<YAML
accounts:
  - name: ha-qc
    driver: qingcloud
    zone: pek3a
    access_key_id: $KEY_ID
    secret_file: $FQ_DIR/secret
    endpoint: $FQ_URL
networks:
  - name: hanet
    account: ha-qc
    cidr: $CIDR
templates:
  - name: hat
    account: ha-qc
    network: hanet
    image: img-ha
    instance_type: c1m1
clusters:
  - name: ha
    groups:
      - name: g
        template: hat
        size: 0
        max: 20
        # no agent boots on the fake (--instances none): keep them booting
        max_provision_time: 1h
YAML
}

# store_hosts I: "id name state" of the cluster's hosts, read on server I.
store_hosts() {
	on "$1" host ls --cluster ha --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print "$_->{id} $_->{name} $_->{state}\n" for @{$d->{items}}'
}

# store_live I: the ids of the hosts the provider should have, sorted.
store_live() {
	store_hosts "$1" | awk '$3 != "failed" && $3 != "terminated" {print $1}' | sort
}

# converged I N: N live hosts (server I's view), none launching or
# terminating, and the fake has exactly those, each once: no duplicate,
# no orphan.
converged() {
	local live
	live=$(store_live "$1")
	[ "$(grep -c . <<<"$live")" -eq "$2" ] || return 1
	! store_hosts "$1" | awk '{print $3}' | grep -Eq '^(launching|terminating)$' || return 1
	[ "$(fq_host_ids)" = "$live" ]
}

# calls_from LINE [ACTION]: the fake's accepted calls after line LINE of its
# call log, "action user_agent instance_name-or-instances", one a line.
calls_from() {
	tail -n "+$(($1 + 1))" "$FQ_DIR/calls.log" | ACTION=${2:-} perl -MJSON::PP -ne '
		my $c = decode_json($_);
		next if $ENV{ACTION} ne "" && $c->{action} ne $ENV{ACTION};
		my $p = $c->{params};
		my $what = $p->{instance_name} // join(",", map { $p->{$_} } grep { /^instances\./ } sort keys %$p);
		print "$c->{action}\t$c->{user_agent}\t$what\t$c->{ret_code}\n"'
}

# herd_calls: of calls_from's lines, those a herd server made (not this
# test's own look at the fake, qc).
herd_calls() {
	awk -F'\t' '$2 ~ /^herd\//'
}

# one_run_per_host: no host id was ever given two successful RunInstances.
one_run_per_host() {
	local ok
	ok=$(calls_from 0 RunInstances | awk -F'\t' '$4 == 0 {print $3}')
	echo "successful RunInstances: $(grep -c . <<<"$ok"), distinct: $(sort -u <<<"$ok" | grep -c .)"
	[ -z "$(sort <<<"$ok" | uniq -d)" ]
}

call_lines() {
	wc -l <"$FQ_DIR/calls.log"
}

# activities_since ID I: "id server epoch kind host" of the activities after
# id ID, read on server I (every cluster: crash recovery's name only the host).
activities_since() {
	on "$2" activity ls --json --limit 5000 | SINCE=$1 perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		for (@{$d->{items}}) {
			next unless $_->{id} > $ENV{SINCE};
			printf "%d %s %d %s %s\n", $_->{id}, $_->{server} || "-", $_->{epoch}, $_->{kind},
				$_->{host} || "-";
		}'
}

last_activity_id() {
	on "$1" activity ls --json --limit 1 | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>); my $i = $d->{items};
		print @$i ? $i->[-1]{id} : 0, "\n"'
}

# logged I TEXT: server I's log says TEXT.
logged() {
	grep -qF "$2" "$HA/d$1/server.log"
}
