#!/usr/bin/env bats
# PromQL as a policy metric source (issue 20): a group of local hosts
# scales on an instant query to a real Prometheus (Debian's) that scrapes a
# static page whose value the test rewrites. The value crossing the
# scale-out rule adds a host; with Prometheus stopped (killed by its PID)
# the scale-in rule's value is unknown: the group does not scale in (a
# bounded wait, desired unchanged, a scale_nodata activity saying the
# PromQL value is unknown), and once a Prometheus serving the low value is
# back it does. A policy with a bad URL is refused at apply naming the
# field. Needs root (local hosts are network namespaces).

load lib
load prom

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start --push-interval 1s
	PDIR=$BATS_FILE_TMPDIR/prom
	mkdir -p "$PDIR/www"
	echo 'pq_load 50' >"$PDIR/www/metrics"
	page_start "$PDIR"
	cat >"$PDIR/prometheus.yml" <<-EOF
	global:
	  scrape_interval: 1s
	scrape_configs:
	  - job_name: page
	    static_configs:
	      - targets: ['127.0.0.1:$WPORT']
	EOF
	# the blueprint names Prometheus's port before it starts (prom.bash)
	PPORT=$(free_port)
	export PDIR PPORT
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR"
	cp -r "$BATS_TEST_DIRNAME/fixtures/metrics/scripts" "$BP_DIR/"
	cat >"$BP_DIR/pq.yaml" <<-YAML
	accounts:
	  - name: here
	    driver: local
	networks:
	  - name: pqnet
	    account: here
	    cidr: $(random_cidr)
	scripts:
	  - name: ok.sh
	    file: scripts/ok.sh
	templates:
	  - name: node
	    account: here
	    network: pqnet
	    init: [ok.sh]
	clusters:
	  - name: pq
	    groups:
	      - name: api
	        template: node
	        size: 1
	        min: 1
	        max: 2
	        policies:
	          - name: grow
	            source: prometheus
	            url: http://127.0.0.1:$PPORT
	            query: max(pq_load)
	            when: query > 100
	            adjust: +1
	            cooldown: 2s
	          - name: shrink
	            source: prometheus
	            url: http://127.0.0.1:$PPORT
	            query: max(pq_load)
	            when: query < 10
	            adjust: -1
	            cooldown: 2s
	YAML
	export BP_DIR
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	# the tests' processes, by the PIDs they wrote (a test's variables do
	# not reach teardown_file)
	prom_stop "$BATS_FILE_TMPDIR/prom"
	page_stop "$BATS_FILE_TMPDIR/prom"
	server_cleanup
}

setup() {
	require_root
	prom_require
}

prom_says() { # prom_says VALUE: Prometheus's max(pq_load) is VALUE
	curl -sf "http://127.0.0.1:$PPORT/api/v1/query?query=max(pq_load)" | grep -q "\"$1\"\]"
}

set_load() {
	echo "pq_load $1" >"$PDIR/www/metrics.tmp"
	mv "$PDIR/www/metrics.tmp" "$PDIR/www/metrics"
}

desired_is() {
	[ "$(herd group show pq/api --json | json '{desired}')" = "$1" ]
}

ready_count() {
	herd host ls --group pq/api --json | perl -MJSON::PP -e \
		'print scalar grep { $_->{state} eq "ready" } @{decode_json(join "", <STDIN>)->{items}}'
}

ready_is() { [ "$(ready_count)" = "$1" ]; }

# The newest activity id of the group (0 when none).
last_activity() {
	herd activity ls --group pq/api --json | perl -MJSON::PP -e '
		my $m = 0; $_->{id} > $m and $m = $_->{id} for @{decode_json(join "", <STDIN>)->{items}};
		print $m'
}

# nodata_after ID: a scale_nodata activity of shrink after ID saying the
# PromQL value is unknown
nodata_after() {
	herd activity ls --group pq/api --json | perl -MJSON::PP -e '
		my $after = shift;
		exit !grep { $_->{id} > $after && $_->{kind} eq "scale_nodata" &&
			     $_->{cause} eq "shrink" && $_->{reason} =~ /PromQL value is unknown/ }
			@{decode_json(join "", <STDIN>)->{items}}' "$1"
}

@test "a policy on a PromQL query scales out, and never in while Prometheus is gone" {
	herd apply -f "$BP_DIR/pq.yaml" >/dev/null
	wait_for 60 ready_is 1
	prom_start "$PDIR"
	wait_for 60 prom_says 50
	# 50: neither rule holds
	sleep 3
	desired_is 1
	set_load 500
	if ! wait_for 60 desired_is 2; then
		herd activity ls --group pq/api >&2
		tail -5 "$PDIR/log" >&2
		false
	fi
	herd activity ls --group pq/api --json | grep -q '"query > 100'
	# herd policy check shows the query's newest value
	run herd policy check pq/api
	[[ "$output" == *"promql      grow: max(pq_load) = 500"* ]]
	wait_for 60 ready_is 2
	# Prometheus stopped: the value is unknown, never a reason to scale in
	since=$(last_activity)
	prom_stop "$PDIR"
	set_load 0
	wait_for 60 nodata_after "$since"
	run herd policy check pq/api
	[[ "$output" == *"promql      shrink: max(pq_load) = unknown (query failed"* ]]
	sleep 10
	desired_is 2
	[ "$(herd activity ls --group pq/api --json | grep -c '"kind": *"scale_in"')" = 0 ]
	# a Prometheus that serves the low value again: now it scales in
	prom_start "$PDIR"
	wait_for 60 prom_says 0
	if ! wait_for 60 desired_is 1; then
		herd activity ls --group pq/api >&2
		false
	fi
}

@test "a PromQL policy with a bad URL is refused at apply, naming the field" {
	sed "s|url: http://127.0.0.1:$PPORT|url: ftp://127.0.0.1:$PPORT|" "$BP_DIR/pq.yaml" >"$BP_DIR/bad.yaml"
	sed -i 's/name: grow/name: grow2/; s/name: shrink/name: shrink2/' "$BP_DIR/bad.yaml"
	run herd apply -f "$BP_DIR/bad.yaml"
	[ "$status" -ne 0 ]
	[[ "$output" == *url* ]]
	[[ "$output" == *http://* ]]
	[ "$(herd policy ls | grep -c grow2)" = 0 ]
	# an empty query too
	sed "s|query: max(pq_load)|query: ''|" "$BP_DIR/pq.yaml" >"$BP_DIR/bad2.yaml"
	run herd apply -f "$BP_DIR/bad2.yaml"
	[ "$status" -ne 0 ]
	[[ "$output" == *query* ]]
}
