#!/usr/bin/env bash
# pg-tmp.sh - a throwaway PostgreSQL for tests (docs/ha.md):
#   pg-tmp.sh start DIR   creates DIR (it must not exist), runs Debian's
#                         initdb and pg_ctl in it and prints a DSN for herd
#                         (`herd server --store DSN`, HERD_TEST_PG_DSN);
#   pg-tmp.sh restart DIR stops that server and starts it again (its clients
#                         lose their connections);
#   pg-tmp.sh stop DIR    stops that server (pg_ctl stop, then its PID) and
#                         removes DIR.
# The server listens on a Unix socket in DIR only (no TCP port to collide
# with other runs), trusts local connections (the socket directory is 0700)
# and keeps fsync on. PostgreSQL refuses to run as root: run as root, this
# script runs initdb and the server as the unprivileged user `nobody`, so DIR's
# parent must be searchable by it (mktemp -d under /tmp is not: pass e.g.
# /tmp/herd-pg.XXXX made with mktemp -u, or a subdirectory of a 0755 dir).
set -eu

if [ -z "${PG_BIN:-}" ]; then
	for b in /usr/lib/postgresql/*/bin; do
		[ -x "$b/initdb" ] && PG_BIN=$b   # the glob sorts 15 before 16 (same digit count)
	done
fi
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_USER=nobody

usage() {
	echo "usage: pg-tmp.sh start|restart|stop DIR" >&2
	exit 2
}

# Runs a PostgreSQL program as the owner of the cluster.
as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$PG_USER" -- "$@"
	else
		"$@"
	fi
}

# Starts the server of DIR: the socket in DIR/sock only, fsync on.
pg_start() {
	as_owner "$PG_BIN/pg_ctl" -D "$1/data" -l "$1/data/server.log" -w -t 30 \
		-o "-c listen_addresses= -c unix_socket_directories=$1/sock -c fsync=on -c max_connections=200" \
		start >/dev/null || { cat "$1/data/server.log" >&2; exit 1; }
}

start() {
	local dir=$1 i
	[ -x "$PG_BIN/initdb" ] || { echo "pg-tmp.sh: no initdb in '$PG_BIN' (apt-get install postgresql)" >&2; exit 1; }
	[ ! -e "$dir" ] || { echo "pg-tmp.sh: '$dir' exists; give a new directory" >&2; exit 1; }
	mkdir -m 0700 "$dir"
	[ "$(id -u)" = 0 ] && chown "$PG_USER" "$dir"
	if ! as_owner test -w "$dir"; then
		echo "pg-tmp.sh: user $PG_USER cannot reach '$dir' (a parent directory is private)" >&2
		rmdir "$dir"
		exit 1
	fi
	as_owner mkdir -m 0700 "$dir/data" "$dir/sock"
	as_owner "$PG_BIN/initdb" -D "$dir/data" -U herd --auth=trust -E UTF8 --locale=C.UTF-8 \
		>"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
	pg_start "$dir"
	for i in $(seq 1 50); do
		if as_owner "$PG_BIN/createdb" -h "$dir/sock" -U herd herd 2>/dev/null; then
			echo "postgresql://herd@/herd?host=$dir/sock"
			return 0
		fi
		sleep 0.1
	done
	echo "pg-tmp.sh: cannot create database 'herd' (after $i tries)" >&2
	exit 1
}

stop() {
	local dir=$1 pid=
	[ -d "$dir/data" ] || return 0
	[ -f "$dir/data/postmaster.pid" ] && pid=$(head -n 1 "$dir/data/postmaster.pid")
	as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null || true
		sleep 0.2
	fi
	rm -rf -- "$dir"
}

restart() {
	[ -d "$1/data" ] || { echo "pg-tmp.sh: no server in '$1'" >&2; exit 1; }
	as_owner "$PG_BIN/pg_ctl" -D "$1/data" -m fast -w -t 30 stop >/dev/null
	pg_start "$1"
}

[ $# -eq 2 ] || usage
case "$1" in
start) start "$2" ;;
restart) restart "$2" ;;
stop) stop "$2" ;;
*) usage ;;
esac
