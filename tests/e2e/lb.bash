# lb.bash - shared by the load-balancer e2e files (0050, 0150): a server
# with the fixtures/lb blueprint (group site/web behind LB `web` on a free
# port below the ephemeral range), and what they ask of it.

# lb_setup_file: starts the server and writes the blueprint; sets BP CIDR
# LB_PORT INST.
lb_setup_file() {
	server_start
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR"
	cp -r "$BATS_TEST_DIRNAME/fixtures/lb/scripts" "$BP_DIR/"
	CIDR=$(random_cidr)
	# below the ephemeral range: a client socket of a request loop must not
	# hold the listener's port when HAProxy reloads
	LB_PORT=$(free_port)
	while [ "$LB_PORT" -ge 32768 ]; do LB_PORT=$(free_port); done
	sed "s|@CIDR@|$CIDR|; s|@PORT@|$LB_PORT|" "$BATS_TEST_DIRNAME/fixtures/lb/lb.yaml" >"$BP_DIR/lb.yaml"
	INST=$(curl -sf "$HERD_URL/healthz" | json '{instance}')
	export BP=$BP_DIR/lb.yaml CIDR LB_PORT INST
}

# get: one request to the listener; prints "CODE BODY".
get() {
	local out code
	out=$(mktemp)
	code=$(curl -s -o "$out" -w '%{http_code}' --max-time 5 "http://127.0.0.1:$LB_PORT/") || true
	echo "$code $(cat "$out")"
	rm -f "$out"
}

# members_serving N: the LB has exactly N members, all active and UP.
members_serving() {
	local j
	j=$(herd lb show web --json 2>/dev/null) || return 1
	[ "$(echo "$j" | json_count '{members}')" -eq "$1" ] || return 1
	[ "$(echo "$j" | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print scalar(grep { $_->{intent} eq "active" && $_->{status} eq "UP" } @{$d->{members}})')" -eq "$1" ]
}

group_ready() { # group_ready N: site/web has exactly N hosts, all ready
	local lines
	lines=$(herd host ls --group site/web --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>); print "$_->{state}\n" for @{$d->{items}}')
	[ "$(grep -c . <<<"$lines")" -eq "$1" ] && [ "$(grep -c '^ready$' <<<"$lines")" -eq "$1" ]
}

# seen N: the distinct bodies of N requests, sorted, one a line; fails on a
# response other than 200.
seen() {
	local r
	for _ in $(seq 1 "$1"); do
		r=$(get)
		[ "${r%% *}" = 200 ] || { echo "bad response: $r" >&2; return 1; }
		echo "${r#* }"
	done | sort -u
}

dead() { # dead PID: no such process, or a zombie (HAProxy outlives the
	# server, so its parent may be an init that reaps late)
	! kill -0 "$1" 2>/dev/null || [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" = Z ]
}

haproxy_pid() {
	cat "$HERD_DATA/lb/haproxy.pid" 2>/dev/null
}

# haproxy_of_data_dir: pids of processes running this data dir's haproxy.cfg.
haproxy_of_data_dir() {
	pgrep -f "haproxy -f $HERD_DATA/lb/haproxy.cfg" || true
}
