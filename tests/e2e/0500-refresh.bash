# 0500-refresh.bash - what 0500-refresh.bats asks of its load-balanced
# group lbc/web: its blueprint, requests to its listener, its refresh.

# lb_blueprint INIT TIMEOUT: writes the LB blueprint with that init list
# and init_timeout; prints its path.
lb_blueprint() {
	sed -e "s|@CIDR@|$LB_CIDR|" -e "s|@PORT@|$LB_PORT|" -e "s|@INIT@|$1|" -e "s|@TIMEOUT@|$2|" \
		"$BATS_TEST_DIRNAME/fixtures/refresh/refresh-lb.yaml" >"$BP_DIR/refresh-lb.yaml"
	echo "$BP_DIR/refresh-lb.yaml"
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

# refresh_state CLUSTER/GROUP: its latest refresh's state.
refresh_state() {
	herd group refresh "$1" --status --json | json '{state}'
}

refresh_is() { # refresh_is CLUSTER/GROUP STATE
	[ "$(refresh_state "$1")" = "$2" ]
}

# versions CLUSTER/GROUP: "state version" of each host not terminated.
versions() {
	herd host ls --group "$1" --json | perl -MJSON::PP -e '
		print "$_->{state} $_->{template_version}\n" for @{decode_json(join "", <STDIN>)->{items}}'
}

# loop_start: a bounded request loop (at most 6,000 requests and 240 s,
# loopback only) writing each status code to $BATS_FILE_TMPDIR/codes, and a
# sampler writing the number of ready hosts of lbc/web to .../ready, until
# $BATS_FILE_TMPDIR/stop exists.
loop_start() {
	local stop=$BATS_FILE_TMPDIR/stop
	: >"$BATS_FILE_TMPDIR/codes"
	: >"$BATS_FILE_TMPDIR/ready"
	rm -f "$stop"
	(
		end=$((SECONDS + 240)) n=0
		while [ ! -e "$stop" ] && [ "$n" -lt 6000 ] && [ "$SECONDS" -lt "$end" ]; do
			curl -s -o /dev/null -w '%{http_code}\n' --max-time 5 \
				"http://127.0.0.1:$LB_PORT/" >>"$BATS_FILE_TMPDIR/codes"
			n=$((n + 1))
		done
	) &
	echo $! >"$BATS_FILE_TMPDIR/loop.pid"
	(
		end=$((SECONDS + 240))
		while [ ! -e "$stop" ] && [ "$SECONDS" -lt "$end" ]; do
			versions lbc/web | grep -c '^ready ' >>"$BATS_FILE_TMPDIR/ready" || true
			sleep 0.2
		done
	) &
	echo $! >"$BATS_FILE_TMPDIR/sampler.pid"
}

# loop_stop: stops both (they end on the stop file) and waits for them.
loop_stop() {
	local f
	touch "$BATS_FILE_TMPDIR/stop"
	for f in loop sampler; do
		if [ -f "$BATS_FILE_TMPDIR/$f.pid" ]; then
			wait "$(cat "$BATS_FILE_TMPDIR/$f.pid")" 2>/dev/null || true
			rm -f "$BATS_FILE_TMPDIR/$f.pid"
		fi
	done
}

# activities CLUSTER/GROUP: "kind host" of each activity of the group, oldest first.
activities() {
	herd activity ls --group "$1" --limit 1000 --json | perl -MJSON::PP -e '
		my @a = @{decode_json(join "", <STDIN>)->{items}};
		printf "%s %s\n", $_->{kind}, $_->{host} // "-" for @a'
}

# seen_bodies N: the distinct bodies of N requests, sorted, one a line;
# fails on a response other than 200.
seen_bodies() {
	local r
	for _ in $(seq 1 "$1"); do
		r=$(get)
		[ "${r%% *}" = 200 ] || { echo "bad response: $r" >&2; return 1; }
		echo "${r#* }"
	done | sort -u
}
