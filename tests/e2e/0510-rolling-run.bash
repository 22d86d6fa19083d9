# 0510-rolling-run.bash - helpers of 0510-rolling-run.bats: the scripts a
# rolling run executes on the lb fixtures' web hosts, a bounded request loop
# with a sampler of the LB's members, and how to read their results.
# shellcheck disable=SC2016,SC2034 # scripts for the hosts, used by the .bats

# put_script NAME TEXT: stores script NAME with content TEXT (POST /v1/scripts).
put_script() {
	local body
	body=$(perl -MJSON::PP -e 'print encode_json({name => $ARGV[0], content => $ARGV[1]})' "$1" "$2")
	http POST /v1/scripts "$HERD_TOKEN" "$body" | grep -q '^201 '
}

# What the web hosts' server is (the fixture's web.sh), started again by
# the upgrade: serves /var/lib/herd/www on the host's private address.
WEB_START='cd /var/lib/herd/www
setsid nohup python3 -c "
import http.server, socketserver, sys
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
S((sys.argv[1], 8080), http.server.SimpleHTTPRequestHandler).serve_forever()
" "$HERD_PRIVATE_IP" >/var/lib/herd/www.log 2>&1 </dev/null &'

# The pid of this host's listener on port 8080 (the host has its own
# network and pid namespaces: only its own server can answer).
WEB_PID='pid=$(ss -ltnpH "sport = :8080" | sed -n "s/.*pid=\([0-9]*\).*/\1/p" | head -n 1)'

# upgrade.sh: an in-place upgrade that stops the service for a second
# (requests sent to the host meanwhile fail), then serves "NAME v2".
UPGRADE_SH="#!/bin/sh
set -e
$WEB_PID
[ -n \"\$pid\" ] && kill \"\$pid\"
sleep 1
echo \"\$(hostname) v2\" >/var/lib/herd/www/index.html
$WEB_START
i=0
until curl -sf -o /dev/null \"http://\$HERD_PRIVATE_IP:8080/\"; do
	i=\$((i + 1))
	[ \"\$i\" -lt 100 ] || exit 1
	sleep 0.05
done
echo upgraded
"

# fails.sh: leaves a mark, then fails.
FAILS_SH='#!/bin/sh
touch /var/lib/herd/ran-fails
echo "this upgrade fails" >&2
exit 3
'

# stops.sh: stops the service and succeeds: the LB check fails after it.
STOPS_SH="#!/bin/sh
touch /var/lib/herd/ran-stops
$WEB_PID
[ -n \"\$pid\" ] && kill \"\$pid\"
exit 0
"

# starts.sh: starts the service again (after stops.sh).
STARTS_SH="#!/bin/sh
$WEB_START
sleep 0.5
"

# counts.sh: appends a line per run to a file, then takes a second.
COUNTS_SH='#!/bin/sh
echo ran >>/var/lib/herd/ran-counts
sleep 1
'

# ran_twice: how many of site/web's hosts ran counts.sh more than once.
ran_twice() {
	local n=0 id
	for id in $(herd host ls --group site/web --json | perl -MJSON::PP -e '
		print "$_->{id}\n" for @{decode_json(join "", <STDIN>)->{items}}'); do
		if [ "$(in_host "$id" cat /var/lib/herd/ran-counts | grep -c .)" -gt 1 ]; then n=$((n + 1)); fi
	done
	echo "$n"
}

# out_of_lb: how many of the group's 4 hosts are not active and UP in LB web.
out_of_lb() {
	herd lb show web --json 2>/dev/null | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print 4 - scalar(grep { $_->{intent} eq "active" && $_->{status} eq "UP" } @{$d->{members}}), "\n"'
}

# loop_start: a bounded request loop (at most 3,000 requests and 180 s,
# loopback only) writing codes to $LOOP_DIR/codes, and a sampler writing
# out_of_lb to $LOOP_DIR/out every few tenths of a second; pids in
# $LOOP_DIR/pids. loop_stop ends both.
loop_start() {
	LOOP_DIR=$BATS_FILE_TMPDIR/loop
	mkdir -p "$LOOP_DIR"
	: >"$LOOP_DIR/codes"
	: >"$LOOP_DIR/out"
	rm -f "$LOOP_DIR/stop" "$LOOP_DIR/pids"
	(
		end=$((SECONDS + 180)) n=0
		while [ ! -e "$LOOP_DIR/stop" ] && [ "$n" -lt 3000 ] && [ "$SECONDS" -lt "$end" ]; do
			curl -s -o /dev/null -w '%{http_code}\n' --max-time 5 "http://127.0.0.1:$LB_PORT/" >>"$LOOP_DIR/codes"
			n=$((n + 1))
		done
	) &
	echo $! >>"$LOOP_DIR/pids"
	(
		end=$((SECONDS + 180)) n=0
		while [ ! -e "$LOOP_DIR/stop" ] && [ "$n" -lt 1000 ] && [ "$SECONDS" -lt "$end" ]; do
			out_of_lb >>"$LOOP_DIR/out"
			n=$((n + 1))
			sleep 0.2
		done
	) &
	echo $! >>"$LOOP_DIR/pids"
}

loop_stop() {
	local pid
	[ -n "${LOOP_DIR:-}" ] && [ -f "$LOOP_DIR/pids" ] || return 0
	touch "$LOOP_DIR/stop"
	while read -r pid; do
		wait "$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
	done <"$LOOP_DIR/pids"
	rm -f "$LOOP_DIR/pids"
}

# ran_on FILE: how many of site/web's hosts have FILE.
ran_on() {
	local n=0 id
	for id in $(herd host ls --group site/web --json | perl -MJSON::PP -e '
		print "$_->{id}\n" for @{decode_json(join "", <STDIN>)->{items}}'); do
		if in_host "$id" test -e "$1"; then n=$((n + 1)); fi
	done
	echo "$n"
}

# run_hosts ID: "host state phase" for each host of run ID, one a line.
run_hosts() {
	herd run show "$1" --json | perl -MJSON::PP -e '
		print "$_->{host} $_->{state} $_->{phase}\n" for @{decode_json(join "", <STDIN>)->{hosts}}'
}
