# bench/herd-local.bash - sourced by bench/agent.sh, bench/hostmem.sh and
# bench/remote-write.sh: a real `herd server` on a free 127.0.0.1 port with
# the local provider and one group (bench/g) of a trivial template (an empty
# init script) on a 198.18.x.0/22 network, and the calls they need. The caller sets
# HERD (the binary), work (its temp dir) and server_pid= before sourcing, and
# calls local_cleanup from its EXIT trap (stops the server, tears down every
# host and network the data dir made). Not a bench itself (not *.sh).

# shellcheck disable=SC2154  # work and HERD are the caller's
# shellcheck source=bench/free-cidr.bash
. "$(dirname "${BASH_SOURCE[0]}")/free-cidr.bash"
# local_free_port: a TCP port of 127.0.0.1 that nothing listens on now (for
# the server, or a bench's other listeners).
local_free_port() {
	local port
	for _ in $(seq 50); do
		port=$((20000 + RANDOM % 30000))
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
	done
	echo "$port"
}

# local_server_start [SERVER ARGS...]: starts the server (retried if another
# process takes the port first); exports HERD_URL and HERD_TOKEN.
local_server_start() {
	local started=0 port
	for _ in $(seq 5); do
		port=$(local_free_port)
		export HERD_URL=http://127.0.0.1:$port
		"$HERD" server --data "$work/data" --listen "127.0.0.1:$port" --log-level warn "$@" \
			>>"$work/server.log" 2>&1 &
		server_pid=$!
		for _ in $(seq 200); do
			curl -sf "$HERD_URL/healthz" >/dev/null && started=1 && break
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.05
		done
		[ "$started" = 1 ] && break
		wait "$server_pid" 2>/dev/null || true
		server_pid=
	done
	if [ "$started" != 1 ]; then
		echo "the herd server did not start:" >&2
		cat "$work/server.log" >&2
		return 1
	fi
	HERD_TOKEN=$(cat "$work/data/admin.token")
	export HERD_TOKEN
}

# local_group_apply MAX: the blueprint (account, network 198.18.x.0/22 with a
# random x nothing routes yet: bench/free-cidr.bash),
# the empty script, template, cluster bench with group g of size 0).
local_group_apply() {
	local cidr
	cidr=$(free_cidr 22 18)
	mkdir -p "$work/bp/scripts"
	printf '#!/bin/sh\nexit 0\n' >"$work/bp/scripts/empty.sh"
	cat >"$work/bp/bench.yaml" <<-EOF
		accounts:
		  - name: here
		    driver: local
		networks:
		  - name: benchnet
		    account: here
		    cidr: $cidr
		scripts:
		  - name: empty.sh
		    file: scripts/empty.sh
		templates:
		  - name: bench
		    account: here
		    network: benchnet
		    init: [empty.sh]
		clusters:
		  - name: bench
		    groups:
		      - name: g
		        template: bench
		        size: 0
		        max: $1
	EOF
	"$HERD" apply -f "$work/bp/bench.yaml" >/dev/null
}

# local_hosts: the group's live hosts, one "id state" line each.
local_hosts() {
	"$HERD" host ls --group bench/g --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		printf "%s %s\n", $_->{id}, $_->{state} for @{$d->{items}}'
}

# local_scale_ready N SECONDS: scales bench/g to N and waits until N hosts
# are ready; fails (with the states seen) after SECONDS.
local_scale_ready() {
	local n=$1 deadline=$((SECONDS + $2)) lines
	"$HERD" group scale bench/g "$n" >/dev/null
	while :; do
		lines=$(local_hosts)
		[ "$(awk '$2 == "ready"' <<<"$lines" | grep -c .)" -eq "$n" ] && return 0
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "$n host(s) not ready after $2 s:" >&2
			awk '{ print $2 }' <<<"$lines" | sort | uniq -c >&2
			return 1
		fi
		sleep 0.2
	done
}

# local_host_credential ID: the agent credential of host ID (from the
# credential.json its agent wrote when it joined: the host is ready).
local_host_credential() {
	local f
	f=$(find "$work/data/hosts/$1" -name credential.json 2>/dev/null | head -1)
	[ -n "$f" ] || return 1
	perl -MJSON::PP -e 'local $/; open my $f, "<", $ARGV[0] or exit 1;
		print decode_json(<$f>)->{credential}' "$f"
}

# local_host_pid ID: the host's PID 1 (the agent) as the machine sees it.
local_host_pid() {
	cat "$work/data/hosts/$1/pid"
}

local_cleanup() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	[ -d "$work/data" ] && "$HERD" server --data "$work/data" --teardown >>"$work/server.log" 2>&1
}
