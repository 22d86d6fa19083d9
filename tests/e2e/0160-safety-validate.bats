#!/usr/bin/env bats
# Refused at the door: values the API used to store and a controller or
# driver then ignored, replaced by a default or failed on (a health check
# path haproxy cannot take, durations like 'nan' or 'bogus', networks over
# loopback or multicast) now get 400 naming the field, from the API and from
# `herd apply` (FILE:LINE); the values next to them still pass.

load lib

setup_file() {
	server_start
	sv_api POST /v1/accounts '{"name":"sv-acct","driver":"local"}' >/dev/null
	sv_api POST /v1/networks "{\"name\":\"sv-net\",\"account\":\"sv-acct\",\"cidr\":\"$(random_cidr)\"}" >/dev/null
}

teardown_file() {
	server_cleanup
}

sv_api() { # sv_api METHOD PATH [BODY] -> prints "STATUS BODY"
	local m=$1 p=$2 b=${3:-} out
	out=$(mktemp "${BATS_FILE_TMPDIR:-/tmp}/sv-api.XXXXXX")
	if [ -n "$b" ]; then
		curl -s -o "$out" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $HERD_TOKEN" \
			-H 'Content-Type: application/json' --data-binary "$b" "$HERD_URL$p"
	else
		curl -s -o "$out" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL$p"
	fi
	echo " $(cat "$out")"
	rm -f "$out"
}

# refused FIELD: the last sv_api output is a 400 naming FIELD
refused() {
	echo "got: $output"
	[[ "$output" == "400 "* ]]
	[ "$(echo "${output#400 }" | json '{error}{field}')" = "$1" ]
	[ "$(echo "${output#400 }" | json '{error}{code}')" = invalid ]
}

# lb NAME HEALTH_CHECK_JSON [LISTEN]: creates an LB on a free port
lb() {
	local listen=${3:-127.0.0.1:$(free_port)}
	run sv_api POST /v1/lbs "{\"name\":\"$1\",\"network\":\"sv-net\",\"listen\":\"$listen\",\"backend_port\":8080,\"mode\":\"http\",\"health_check\":$2}"
}

@test "lb: a health check path haproxy cannot take is refused; a query string passes" {
	lb sv-lb1 '{"type":"http","path":"/a b#x"}'
	refused health_check.path
	lb sv-lb1 '{"type":"http","path":"/ok\"x"}'
	refused health_check.path
	lb sv-lb1 '{"type":"http","path":"/healthz?x=1"}'
	[[ "$output" == "201 "* ]]
	run sv_api DELETE /v1/lbs/sv-lb1
	[[ "$output" == "200 "* ]]
}

@test "lb: health check interval must parse and lie in 100ms-60s" {
	lb sv-lb2 '{"type":"tcp","interval":"bogus"}'
	refused health_check.interval
	lb sv-lb2 '{"type":"tcp","interval":"10ms"}'
	refused health_check.interval
	lb sv-lb2 '{"type":"tcp","interval":"2h"}'
	refused health_check.interval
	lb sv-lb2 '{"type":"tcp","interval":"1m"}'
	[[ "$output" == "201 "* ]]
	run sv_api DELETE /v1/lbs/sv-lb2
	[[ "$output" == "200 "* ]]
}

@test "lb: a listen address the driver would refuse is refused" {
	lb sv-lb3 '{"type":"tcp"}' "127.0.0.1: 80"
	refused listen
	lb sv-lb3 '{"type":"tcp"}' "127.0.0.1:+80"
	refused listen
	lb sv-lb3 '{"type":"tcp"}' "127.0.0.1:0"
	refused listen
	lb sv-lb3 '{"type":"tcp"}' "127.0.0.1:65536"
	refused listen
}

@test "durations: nan, exponents, hex and garbage are refused; 30s and 1m30s pass" {
	run sv_api POST /v1/templates '{"name":"sv-tpl","account":"sv-acct","network":"sv-net"}'
	[[ "$output" == "201 "* ]]
	run sv_api POST /v1/clusters '{"name":"sv-cl"}'
	[[ "$output" == "201 "* ]]
	for bad in nan NaN 1e3 0x10 +5s 5s5 5ss 1.5.5s 5m1h 1s1s; do
		run sv_api POST /v1/groups "{\"name\":\"sv-g\",\"cluster\":\"sv-cl\",\"template\":\"sv-tpl\",\"unhealthy_after\":\"$bad\"}"
		refused unhealthy_after
	done
	run sv_api POST /v1/groups '{"name":"sv-g","cluster":"sv-cl","template":"sv-tpl","unhealthy_after":"1m30s","max_provision_time":"30s"}'
	[[ "$output" == "201 "* ]]
	run sv_api GET /v1/groups/sv-g
	[ "$(echo "${output#200 }" | json '{unhealthy_after}')" = 1m30s ]
}

@test "durations the agent cannot use are refused: init_timeout and monitor interval under 1s" {
	run sv_api POST /v1/templates '{"name":"sv-tpl2","account":"sv-acct","network":"sv-net","init_timeout":"0s"}'
	refused init_timeout
	run sv_api POST /v1/templates '{"name":"sv-tpl2","account":"sv-acct","network":"sv-net","init_timeout":"500ms"}'
	refused init_timeout
	run sv_api POST /v1/templates '{"name":"sv-tpl2","account":"sv-acct","network":"sv-net","init_timeout":"10m"}'
	[[ "$output" == "201 "* ]]
	run sv_api POST /v1/monitors '{"name":"sv-mon","command":"echo 1","interval":"0s"}'
	refused interval
	run sv_api POST /v1/monitors '{"name":"sv-mon","command":"echo 1","timeout":"200ms"}'
	refused timeout
	run sv_api POST /v1/monitors '{"name":"sv-mon","command":"echo 1","interval":"2s","timeout":"1s"}'
	[[ "$output" == "201 "* ]]
}

@test "networks: loopback, this-network, link-local, multicast, reserved and bad prefixes are refused" {
	for bad in 127.0.0.0/8 127.5.0.0/16 0.0.0.0/8 169.254.0.0/16 224.0.0.0/8 239.1.2.0/24 \
		240.0.0.0/8 255.255.255.0/24 198.18.4.0/31 198.18.4.0/32 10.0.0.0/7 198.18.0.5/24 \
		198.18.4.0/24x " 198.18.4.0/24" 198.18.4.0/+24 198.18.4.0/024; do
		run sv_api POST /v1/networks "{\"name\":\"sv-bad\",\"account\":\"sv-acct\",\"cidr\":\"$bad\"}"
		refused cidr
	done
	run sv_api POST /v1/networks '{"name":"sv-ok","account":"sv-acct","cidr":"198.18.4.0/24"}'
	[[ "$output" == "201 "* ]]
	run sv_api DELETE /v1/networks/sv-ok
	[[ "$output" == "200 "* ]]
}

@test "blueprint: a bad health check path and a bad duration name FILE:LINE" {
	local f="$BATS_FILE_TMPDIR/sv-bad.yaml" line port
	port=$(free_port)
	cat >"$f" <<EOF
load_balancers:
  - name: sv-bp
    network: sv-net
    listen: 127.0.0.1:$port
    backend_port: 8080
    mode: http
    health_check:
      type: http
      path: /a b#x
EOF
	line=$(grep -n 'path: /a b' "$f" | cut -d: -f1)
	run herd apply -f "$f"
	[ "$status" -ne 0 ]
	[[ "$output" == *"sv-bad.yaml:$line:"*"health_check.path"* ]]
	run sv_api GET /v1/lbs/sv-bp
	[[ "$output" == "404 "* ]]
	cat >"$f" <<EOF
monitors:
  - name: sv-bpmon
    command: echo 1
    interval: nan
EOF
	run herd apply -f "$f"
	[ "$status" -ne 0 ]
	[[ "$output" == *"sv-bad.yaml:4:"*"interval"* ]]
}

@test "groups: termination least:<metric> must name a metric the TSDB can hold" {
	run sv_api POST /v1/templates '{"name":"sv-tpl3","account":"sv-acct","network":"sv-net"}'
	[[ "$output" == "201 "* ]]
	run sv_api POST /v1/clusters '{"name":"sv-cl3"}'
	[[ "$output" == "201 "* ]]
	for bad in 'least:a b' 'least:1x' 'least:busy;rm'; do
		run sv_api POST /v1/groups "{\"name\":\"sv-g3\",\"cluster\":\"sv-cl3\",\"template\":\"sv-tpl3\",\"termination\":\"$bad\"}"
		refused termination
	done
	run sv_api POST /v1/groups '{"name":"sv-g3","cluster":"sv-cl3","template":"sv-tpl3","termination":"least:busy"}'
	[[ "$output" == "201 "* ]]
}
