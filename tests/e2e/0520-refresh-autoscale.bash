# 0520-refresh-autoscale.bash - what 0520-refresh-autoscale.bats asks of
# group as/web: its blueprint, its hosts' versions, its activities with
# their causes, and a bounded sampler of its ready hosts.

# blueprint TIMEOUT: writes the blueprint with that init_timeout (a change
# of it is a new template version); prints its path.
blueprint() {
	sed -e "s|@CIDR@|$CIDR|" -e "s|@TIMEOUT@|$1|" \
		"$BATS_TEST_DIRNAME/fixtures/refresh-autoscale/refresh-autoscale.yaml" \
		>"$BP_DIR/refresh-autoscale.yaml"
	echo "$BP_DIR/refresh-autoscale.yaml"
}

# host_versions: "name state version" of each host of as/web not
# terminated, by name.
host_versions() {
	herd host ls --group as/web --json | perl -MJSON::PP -e '
		printf "%s %s %s\n", $_->{name}, $_->{state}, $_->{template_version}
			for sort { $a->{name} cmp $b->{name} } @{decode_json(join "", <STDIN>)->{items}}'
}

# live_is N: as/web has N hosts on their way or in service (not draining,
# terminating, failed).
live_is() {
	[ "$(host_versions | grep -cE ' (launching|booting|initializing|ready|unhealthy) ')" -eq "$1" ]
}

# ready_is N: as/web has N ready hosts.
ready_is() {
	[ "$(host_versions | grep -c ' ready ')" -eq "$1" ]
}

# causes: "kind host cause" of each activity of as/web, oldest first.
causes() {
	herd activity ls --group as/web --limit 1000 --json | perl -MJSON::PP -e '
		printf "%s %s %s\n", $_->{kind}, $_->{host} // "-", $_->{cause} // "-"
			for @{decode_json(join "", <STDIN>)->{items}}'
}

# sampler_start: the number of ready hosts of as/web every 0.2 s into
# $BATS_FILE_TMPDIR/ready, at most 600 samples, until .../stop exists.
sampler_start() {
	: >"$BATS_FILE_TMPDIR/ready"
	rm -f "$BATS_FILE_TMPDIR/stop"
	(
		n=0
		while [ ! -e "$BATS_FILE_TMPDIR/stop" ] && [ "$n" -lt 600 ]; do
			host_versions | grep -c ' ready ' >>"$BATS_FILE_TMPDIR/ready" || true
			n=$((n + 1))
			sleep 0.2
		done
	) &
	echo $! >"$BATS_FILE_TMPDIR/sampler.pid"
}

# sampler_stop: stops it (it ends on the stop file) and waits for it.
sampler_stop() {
	touch "$BATS_FILE_TMPDIR/stop"
	if [ -f "$BATS_FILE_TMPDIR/sampler.pid" ]; then
		wait "$(cat "$BATS_FILE_TMPDIR/sampler.pid")" 2>/dev/null || true
		rm -f "$BATS_FILE_TMPDIR/sampler.pid"
	fi
}
