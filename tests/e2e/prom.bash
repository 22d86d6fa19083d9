# prom.bash - a real Prometheus (Debian's) and a static page for it to
# scrape, for the e2e tests that talk to one. Each runs on 127.0.0.1 with
# its files in a dir of the test's and writes its PID there, so that a test
# that restarts it, and teardown_file (which sees no test's variables),
# stop it by that PID. Loaded after lib.bash (free_port, wait_for).
# shellcheck shell=bash

# prom_require: skips the test when Prometheus is not installed. For setup.
prom_require() {
	command -v prometheus >/dev/null ||
		skip "prometheus is not installed (apt-get install -y prometheus; tools/deps.sh check does)"
}

# pid_file_stop FILE: stops the process whose PID is in FILE (SIGTERM, and
# waits until it is gone; SIGKILL after 30 s) and removes FILE. Nothing
# when there is no FILE.
pid_file_stop() {
	local pid
	[ -f "$1" ] || return 0
	pid=$(cat "$1")
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 300); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -f "$1"
}

# prom_start DIR [OPTION]...: starts Prometheus on DIR/prometheus.yml (the
# caller writes it), its TSDB in DIR/data (kept across restarts), its output
# appended to DIR/log, its PID in DIR/prom.pid; OPTIONs are added to its
# command line (e.g. --web.enable-remote-write-receiver). Listens on PPORT
# when set (a restart keeps its port; a blueprint may name it first), else
# on a free port. Waits until it is ready (60 s); exports PPORT PROM_URL
# PROM_PID.
prom_start() {
	local dir=$1
	shift
	PPORT=${PPORT:-$(free_port)}
	PROM_URL="http://127.0.0.1:$PPORT"
	mkdir -p "$dir/data"
	prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
		--web.listen-address="127.0.0.1:$PPORT" "$@" >>"$dir/log" 2>&1 3>&- &
	PROM_PID=$!
	echo "$PROM_PID" >"$dir/prom.pid"
	export PPORT PROM_URL PROM_PID
	wait_for 60 curl -sf "$PROM_URL/-/ready" >/dev/null
}

# prom_stop DIR: stops the Prometheus prom_start DIR started, by its PID
# (pid_file_stop: it is gone when this returns).
prom_stop() {
	pid_file_stop "$1/prom.pid"
	PROM_PID=
}

# page_start DIR: serves the files of DIR/www (the page Prometheus scrapes)
# over HTTP on a free port (python3 -m http.server), its log in
# DIR/www.log, its PID in DIR/www.pid. Waits until it answers; exports WPORT
# WEB_PID.
page_start() {
	WPORT=$(free_port)
	mkdir -p "$1/www"
	python3 -m http.server "$WPORT" --bind 127.0.0.1 --directory "$1/www" \
		>>"$1/www.log" 2>&1 3>&- &
	WEB_PID=$!
	echo "$WEB_PID" >"$1/www.pid"
	export WPORT WEB_PID
	wait_for 10 curl -s -o /dev/null "http://127.0.0.1:$WPORT/"
}

# page_stop DIR: stops the server page_start DIR started, by its PID.
page_stop() {
	pid_file_stop "$1/www.pid"
	WEB_PID=
}
