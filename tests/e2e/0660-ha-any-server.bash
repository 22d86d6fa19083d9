# 0660-ha-any-server.bash - helpers of 0660-ha-any-server.bats: a second
# server (B) on the same PostgreSQL as lib.bash's server (A), and an agent
# played with curl (the fake QingCloud both reach: qingcloud.bash).
# shellcheck shell=bash

# b_start: starts server B on $PG_DSN with its own data dir and port; sets
# B_DATA B_PORT B_URL (B's PID in $B_DATA/server.pid).
b_start() {
	B_DATA=${B_DATA:-$(mktemp -d "$BATS_FILE_TMPDIR/herd-b.XXXXXX")}
	B_PORT=${B_PORT:-$(free_port)}
	B_URL="http://127.0.0.1:$B_PORT"
	"$HERD" server --data "$B_DATA" --store "$PG_DSN" --listen "127.0.0.1:$B_PORT" \
		--log-level debug "$@" >>"$B_DATA/server.log" 2>&1 &
	echo $! >"$B_DATA/server.pid"
	wait_for 10 curl -sf "$B_URL/healthz" >/dev/null
	export B_DATA B_PORT B_URL
}

# b_stop: stops server B (SIGTERM, then SIGKILL after 10 s) and removes its
# data dir.
b_stop() {
	local pid
	[ -n "${B_DATA:-}" ] && [ -f "$B_DATA/server.pid" ] || return 0
	pid=$(cat "$B_DATA/server.pid")
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	[ -n "${HERD_KEEP:-}" ] || rm -rf "$B_DATA"
}

# config_of CLUSTER/GROUP: the agent config of that group's (first) host.
config_of() {
	local id
	id=$(herd host ls --group "$1" --json | json '{items}[0]{id}')
	fq_configs | grep "\"host_id\":\"$id\""
}

# at URL METHOD PATH TOKEN [BODY]: http (lib.bash) against another server.
at() {
	local url=$1
	shift
	HERD_URL=$url http "$@"
}

# leads URL: the server at URL holds the controller lease and may act.
leads() {
	[ "$(curl -sf -H "Authorization: Bearer $HERD_TOKEN" "$1/v1/servers" | json '{self_acting}')" = true ]
}

# b_log_has OFFSET TEXT: B's log holds TEXT after OFFSET bytes.
b_log_has() {
	tail -c +"$(($1 + 1))" "$B_DATA/server.log" | grep -qF "$2"
}

# activity_of CLUSTER GROUP KIND CAUSE: the first such activity (JSON), or
# nothing.
activity_of() {
	curl -sf -H "Authorization: Bearer $HERD_TOKEN" \
		"$HERD_URL/v1/activities?cluster=$1&group=$2&limit=200" |
		perl -MJSON::PP -e '
			my ($k, $c) = @ARGV; my $d = decode_json(join "", <STDIN>);
			my ($a) = grep { $_->{kind} eq $k && ($_->{cause} // "") eq $c } @{$d->{items}};
			print JSON::PP->new->canonical->encode($a), "\n" if $a' "$3" "$4"
}

has_activity() {
	[ -n "$(activity_of "$@")" ]
}
