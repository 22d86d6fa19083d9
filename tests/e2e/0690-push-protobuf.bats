#!/usr/bin/env bats
# The agents' push in protobuf (issue 15; proto/push.proto,
# docs/agent-metrics.md "Wire format"): POST /v1/agent/metrics with
# Content-Type application/x-protobuf is stored as the same push in JSON
# is (same answer, same values, NaN and infinities included), a body herd
# cannot read or a bad value is a 400 naming its field (labels by index),
# the agent configuration offers the format, and herd_agent_pushes_total
# counts pushes by format. Bodies made by tests/tools/push-pb from the
# JSON. One local host (a network namespace) for its credential: needs
# root.

load lib

PUSH_PB=${PUSH_PB_BIN:-$(dirname "$HERD")/tests/push-pb}

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	[ -x "$PUSH_PB" ] || { echo "no $PUSH_PB: make build/tests/push-pb" >&2; return 1; }
	server_start
	mkdir -p "$BATS_FILE_TMPDIR/bp"
	cp -r "$BATS_TEST_DIRNAME/fixtures/metrics/scripts" "$BATS_FILE_TMPDIR/bp/"
	sed -e "s|@CIDR@|$(random_cidr)|" -e 's|size: 2|size: 1|' -e 's|^  - name: mx$|  - name: pp|' \
		"$BATS_TEST_DIRNAME/fixtures/metrics/metrics.yaml" >"$BATS_FILE_TMPDIR/bp/pp.yaml"
	herd apply -f "$BATS_FILE_TMPDIR/bp/pp.yaml" >/dev/null
	wait_for 60 host_ready
	ID1=$(herd host show pp/node-1 --json | json '{id}')
	CRED1=$(in_host "$ID1" cat /run/herd/host.json | json '{credential}')
	export ID1 CRED1
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_cleanup
}

setup() {
	require_root
}

teardown() {
	agent_resume
}

# agent_pause / agent_resume: node-1's own agent pushes protobuf too (every
# push interval), so a test that counts herd_agent_pushes_total stops it
# (SIGSTOP: its threads and pushes) for its few seconds, a push already
# sent given 2 s to be counted first; teardown resumes it whatever happened.
agent_pause() {
	kill -STOP "$(cat "$HERD_DATA/hosts/$ID1/pid")"
	sleep 2
}
agent_resume() {
	kill -CONT "$(cat "$HERD_DATA/hosts/$ID1/pid")" 2>/dev/null || true
}

host_ready() {
	[ "$(herd host show pp/node-1 --json 2>/dev/null | json '{state}')" = ready ]
}

# pb_push JSON [CONTENT-TYPE]: the JSON push sent as protobuf (push-pb);
# prints "STATUS BODY".
pb_push() {
	local out code body
	out=$(mktemp)
	body=$(mktemp)
	echo "$1" | "$PUSH_PB" >"$body"
	code=$(curl -s -X POST -H "Authorization: Bearer $CRED1" \
		-H "Content-Type: ${2:-application/x-protobuf}" --data-binary "@$body" \
		-o "$out" -w '%{http_code}' "$HERD_URL/v1/agent/metrics")
	echo "$code $(cat "$out")"
	rm -f "$out" "$body"
}

# raw_push FILE: FILE's bytes as a protobuf push; prints "STATUS BODY".
raw_push() {
	local out code
	out=$(mktemp)
	code=$(curl -s -X POST -H "Authorization: Bearer $CRED1" \
		-H 'Content-Type: application/x-protobuf' --data-binary "@$1" \
		-o "$out" -w '%{http_code}' "$HERD_URL/v1/agent/metrics")
	echo "$code $(cat "$out")"
	rm -f "$out"
}

# pushes FORMAT: herd_agent_pushes_total{format="FORMAT"}.
pushes() {
	curl -sf -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/metrics" |
		awk -v f="herd_agent_pushes_total{format=\"$1\"}" '$1 == f { print $2 }'
}

# body PREFIX TS: a push of two batches of series PREFIX (one label k per
# value: NaN, infinities, a fraction, a large and a negative number) and
# a monitor PREFIX_mon, at TS and TS + 1 s.
body() {
	local s="{\"name\":\"$1\",\"labels\":{\"k\":\"n\"},\"value\":\"NaN\"},
		{\"name\":\"$1\",\"labels\":{\"k\":\"p\"},\"value\":\"+Inf\"},
		{\"name\":\"$1\",\"labels\":{\"k\":\"m\"},\"value\":\"-Inf\"},
		{\"name\":\"$1\",\"labels\":{\"k\":\"f\",\"z\":\"two words\"},\"value\":12.625},
		{\"name\":\"$1\",\"labels\":{\"k\":\"b\"},\"value\":1e300},
		{\"name\":\"$1\",\"labels\":{\"k\":\"g\"},\"value\":-0.25}"
	echo "{\"batches\":[{\"ts_ms\":$2,\"series\":[$s]},
		{\"ts_ms\":$(($2 + 1000)),\"series\":[$s],
		 \"monitors\":[{\"name\":\"$1_mon\",\"state\":\"failed\",\"error\":\"boom\"}]}]}"
}

# exposed METRIC: its series on /metrics, labels then value, the metric's
# own name and the monitor label cut, sorted.
exposed() {
	curl -sf -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/metrics" |
		grep -E "^$1[{ ]" | sed -e "s/^$1//" -e "s/monitor=\"[a-z_]*\"//" | sort
}

@test "the agent configuration offers the protobuf body" {
	run http GET /v1/agent/config "$CRED1"
	[[ "$output" == "200 "* ]]
	[ "$(echo "${output#200 }" | json '{push_formats}')" = '["json","protobuf"]' ]
}

@test "a protobuf push is stored as the same push in JSON: same answer, same values" {
	local ts j p j0 p0
	agent_pause
	ts=$(($(date +%s%3N) - 5000))
	j0=$(pushes json)
	p0=$(pushes protobuf)
	[ -n "$j0" ] && [ -n "$p0" ]
	j=$(http POST /v1/agent/metrics "$CRED1" "$(body t_pj "$ts")")
	p=$(pb_push "$(body t_pp "$ts")")
	echo "json: $j" >&2
	echo "protobuf: $p" >&2
	[[ "$j" == "200 "* ]]
	[ "$(echo "${j#200 }" | json '{accepted}')" = 13 ]
	# the same answer, byte for byte
	[ "$p" = "$j" ]
	# the same series and values (NaN, +Inf, -Inf too), read back on /metrics
	exposed t_pj >"$BATS_TEST_TMPDIR/j"
	exposed t_pp >"$BATS_TEST_TMPDIR/p"
	cat "$BATS_TEST_TMPDIR/p" >&2
	[ "$(wc -l <"$BATS_TEST_TMPDIR/p")" = 6 ]
	grep -q 'k="n".* NaN' "$BATS_TEST_TMPDIR/p"
	grep -q 'k="p".* +Inf' "$BATS_TEST_TMPDIR/p"
	grep -q 'k="m".* -Inf' "$BATS_TEST_TMPDIR/p"
	grep -q 'z="two words".* 12.625' "$BATS_TEST_TMPDIR/p"
	diff "$BATS_TEST_TMPDIR/j" "$BATS_TEST_TMPDIR/p"
	# the monitor's state
	run http GET "/v1/metrics/monitors?host=pp/node-1" "$HERD_TOKEN"
	[ "$(echo "${output#200 }" | perl -MJSON::PP -e '
		print join(",", map { "$_->{monitor}=$_->{state}:$_->{error}" }
			grep { $_->{monitor} =~ /^t_p/ } @{decode_json(join "", <STDIN>)->{items}})')" = \
		"t_pj_mon=failed:boom,t_pp_mon=failed:boom" ]
	# counted by format
	[ "$(pushes json)" -ge $((j0 + 1)) ]
	[ "$(pushes protobuf)" = $((p0 + 1)) ]
}

@test "an empty protobuf body is a push of no batches; parameters after the type are allowed" {
	local p0 out
	agent_pause
	p0=$(pushes protobuf)
	: >"$BATS_TEST_TMPDIR/empty"
	out=$(raw_push "$BATS_TEST_TMPDIR/empty")
	[[ "$out" == "200 "* ]]
	[ "$(echo "${out#200 }" | json '{accepted}')" = 0 ]
	out=$(pb_push "{\"batches\":[{\"ts_ms\":$(($(date +%s%3N) - 3000)),\"series\":[{\"name\":\"t_pq\",\"value\":7}]}]}" \
		'Application/X-Protobuf; proto=herd.Push')
	[[ "$out" == "200 "* ]]
	[ "$(echo "${out#200 }" | json '{accepted}')" = 1 ]
	[ "$(pushes protobuf)" = $((p0 + 2)) ]
}

@test "bad protobuf bodies are a 400 naming the field, and nothing is stored" {
	local ts out p0
	agent_pause
	ts=$(($(date +%s%3N) - 2000))
	p0=$(pushes protobuf)
	printf '\377\377\377\377' >"$BATS_TEST_TMPDIR/garbage"
	out=$(raw_push "$BATS_TEST_TMPDIR/garbage")
	echo "$out" >&2
	[[ "$out" == "400 "* ]]
	[ "$(echo "${out#400 }" | json '{error}{field}')" = body ]
	[ "$(echo "${out#400 }" | json '{error}{code}')" = invalid ]

	out=$(pb_push "{\"batches\":[{\"ts_ms\":$ts,\"series\":[{\"name\":\"t_ok\",\"value\":1},{\"name\":\"9bad\",\"value\":1}]}]}")
	echo "$out" >&2
	[[ "$out" == "400 "* ]]
	[ "$(echo "${out#400 }" | json '{error}{field}')" = "batches[0].series[1].name" ]

	out=$(pb_push "{\"batches\":[{\"ts_ms\":$ts,\"series\":[{\"name\":\"t_ok\",\"value\":1,\"labels\":{\"a\":\"1\",\"host\":\"x\"}}]}]}")
	echo "$out" >&2
	[[ "$out" == "400 "* ]]
	[ "$(echo "${out#400 }" | json '{error}{field}')" = "batches[0].series[0].labels[1].name" ]
	# the same mistake in JSON names the label by its name, same message
	run http POST /v1/agent/metrics "$CRED1" "{\"batches\":[{\"ts_ms\":$ts,\"series\":[{\"name\":\"t_ok\",\"value\":1,\"labels\":{\"a\":\"1\",\"host\":\"x\"}}]}]}"
	[[ "$output" == "400 "* ]]
	[ "$(echo "${output#400 }" | json '{error}{field}')" = "batches[0].series[0].labels.host" ]
	[ "$(echo "${output#400 }" | json '{error}{message}')" = "$(echo "${out#400 }" | json '{error}{message}')" ]

	out=$(pb_push "{\"batches\":[{\"ts_ms\":$ts,\"monitors\":[{\"name\":\"m\",\"state\":\"odd\"}]}]}")
	[[ "$out" == "400 "* ]]
	[ "$(echo "${out#400 }" | json '{error}{field}')" = "batches[0].monitors[0].state" ]

	out=$(pb_push "{\"batches\":[{\"ts_ms\":-5}]}")
	[[ "$out" == "400 "* ]]
	[ "$(echo "${out#400 }" | json '{error}{field}')" = "batches[0].ts_ms" ]

	# none of it stored, none counted
	[ -z "$(exposed t_ok)" ]
	[ "$(pushes protobuf)" = "$p0" ]
}

# pb_raw TS KIND BYTES: a protobuf push of one batch at TS, made byte by
# byte (push-pb takes JSON, which cannot carry text that is not UTF-8):
# KIND label (series t_u8, label k = BYTES), mname (a monitor named BYTES)
# or merror (monitor m, state failed, error BYTES). BYTES in perl's "\x"
# notation.
pb_raw() {
	perl -e '
		sub v { my $n = shift; my $o = ""; while ($n >= 0x80) { $o .= chr(($n & 0x7f) | 0x80); $n >>= 7 } $o . chr($n) }
		sub ld { my ($f, $b) = @_; v(($f << 3) | 2) . v(length $b) . $b }
		my ($ts, $kind, $bytes) = @ARGV;
		$bytes = eval "\"$bytes\"";
		my $in = $kind eq "label" ? ld(2, ld(1, "t_u8") . chr(0x11) . pack("d<", 1) . ld(3, ld(1, "k") . ld(2, $bytes)))
			: $kind eq "mname" ? ld(3, ld(1, $bytes) . ld(2, "ok"))
			: ld(3, ld(1, "m") . ld(2, "failed") . ld(3, $bytes));
		print ld(1, v(0x08) . v($ts) . $in)' "$@"
}

@test "text that is not UTF-8 is a 400 naming its field; UTF-8 is stored and read back" {
	local ts out
	ts=$(($(date +%s%3N) - 2000))
	for c in 'label|a\xff|batches[0].series[0].labels[0].value' \
		'label|\xc3|batches[0].series[0].labels[0].value' \
		'mname|m\xed\xa0\x80|batches[0].monitors[0].name' \
		'merror|\xfe|batches[0].monitors[0].error'; do
		IFS='|' read -r kind bytes field <<<"$c"
		pb_raw "$ts" "$kind" "$bytes" >"$BATS_TEST_TMPDIR/u8"
		out=$(raw_push "$BATS_TEST_TMPDIR/u8")
		echo "$kind $bytes: $out" >&2
		[[ "$out" == "400 "* ]]
		[ "$(echo "${out#400 }" | json '{error}{field}')" = "$field" ]
		[[ "$(echo "${out#400 }" | json '{error}{message}')" == *UTF-8* ]]
	done
	[ -z "$(exposed t_u8)" ]
	# the same bytes made right: stored, and the JSON answers show them
	pb_raw "$ts" label 'caf\xc3\xa9' >"$BATS_TEST_TMPDIR/u8"
	out=$(raw_push "$BATS_TEST_TMPDIR/u8")
	[[ "$out" == "200 "* ]]
	run http GET "/v1/metrics/latest?metric=t_u8&cluster=pp" "$HERD_TOKEN"
	echo "$output" >&2
	[[ "$output" == "200 "* ]]
	[[ "$output" == *'"k":"café"'* || "$output" == *'"k":"caf\u00e9"'* ]]
	# a monitor error kept to 255 bytes is cut between characters, never
	# through one: 254 bytes, then "é" (2 bytes) at the cut
	err="$(printf 'a%.0s' $(seq 254))ééé"
	run http POST /v1/agent/metrics "$CRED1" "{\"batches\":[{\"ts_ms\":$ts,\"monitors\":[{\"name\":\"u8cut\",\"state\":\"failed\",\"error\":\"$err\"}]}]}"
	[[ "$output" == "200 "* ]]
	run http GET "/v1/metrics/monitors?host=node-1&cluster=pp" "$HERD_TOKEN"
	[[ "$output" == "200 "* ]]
	got=$(echo "${output#200 }" | perl -MJSON::PP -e 'for (@{decode_json(join "", <STDIN>)->{items}}) {
		print $_->{error} if $_->{monitor} eq "u8cut" }')
	[ "$got" = "$(printf 'a%.0s' $(seq 254))" ]
}

@test "a JSON body is still read as JSON without a Content-Type or with another one" {
	local ts out
	ts=$(($(date +%s%3N) - 1000))
	out=$(curl -s -X POST -H "Authorization: Bearer $CRED1" -H 'Content-Type: text/plain' \
		--data-binary "{\"batches\":[{\"ts_ms\":$ts,\"series\":[{\"name\":\"t_pt\",\"value\":3}]}]}" \
		"$HERD_URL/v1/agent/metrics")
	[ "$(echo "$out" | json '{accepted}')" = 1 ]
	# a JSON body sent as protobuf is no Push
	out=$(curl -s -X POST -H "Authorization: Bearer $CRED1" -H 'Content-Type: application/x-protobuf' \
		--data-binary "{\"batches\":[{\"ts_ms\":$ts,\"series\":[{\"name\":\"t_pt\",\"value\":3}]}]}" \
		-w ' %{http_code}' "$HERD_URL/v1/agent/metrics")
	[[ "$out" == *" 400" ]]
	[ "$(echo "${out% 400}" | json '{error}{field}')" = body ]
}
