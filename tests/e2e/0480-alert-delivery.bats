#!/usr/bin/env bats
# Alert delivery (issue 17, "Channels"): herd's receivers with real parts.
# Debian's prometheus-alertmanager gets herd's alerts through its v2 API
# (amtool shows them with herd's labels, a resolved event ends them); a local
# SMTP server (python3-aiosmtpd) gets the email; a webhook receiver
# (0480-webhook.py, stdlib) checks the HMAC; a receiver down for 30 s gets its
# notification after it comes back, exactly once; a silenced event sends
# nothing; a receiver refusing with 400 has the notification dropped and
# counted. Events are written with store_sql (sqlite3 or psql) into the
# running server's store, as the evaluator writes them, so each channel's cases (down, 400,
# silenced) are driven exactly; the evaluator's own events reaching a
# webhook (rule fires and resolves, silenced sends nothing) is 0470's.

load lib

PY=/usr/bin/python3

setup_file() {
	command -v prometheus-alertmanager >/dev/null || return 0
	"$PY" -c 'import aiosmtpd' 2>/dev/null || return 0
	server_start
	T=$BATS_FILE_TMPDIR
	RUN=r$$x$RANDOM
	mkdir -p "$T/am" "$T/hook" "$T/late"
	printf 's3cret-%s\n' "$RUN" >"$T/secret"
	chmod 600 "$T/secret"
	AM_PORT=$(free_port)
	printf 'route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n' >"$T/am/am.yml"
	prometheus-alertmanager --config.file="$T/am/am.yml" --storage.path="$T/am/data" \
		--web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= \
		>"$T/am/log" 2>&1 &
	echo $! >"$T/am.pid"
	SMTP_PORT=$(free_port)
	"$PY" -u -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" >"$T/smtp.out" 2>&1 &
	echo $! >"$T/smtp.pid"
	HOOK_PORT=$(free_port)
	"$PY" "$BATS_TEST_DIRNAME/0480-webhook.py" "$HOOK_PORT" "$T/secret" "$T/hook" \
		>"$T/hook/log" 2>&1 &
	echo $! >"$T/hook.pid"
	LATE_PORT=$(free_port)
	wait_for 30 curl -sf "http://127.0.0.1:$AM_PORT/-/ready" -o /dev/null
	wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$SMTP_PORT" 2>/dev/null
	wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$HOOK_PORT" 2>/dev/null
	cat >"$T/receivers.yaml" <<YAML
receivers:
  - name: hook
    type: webhook
    url: http://127.0.0.1:$HOOK_PORT/alerts
    secret_file: $T/secret
    group_wait: 1s
    match:
      rules: [hook_$RUN, silence_$RUN]
  - name: mail
    type: email
    url: smtp://127.0.0.1:$SMTP_PORT
    from: herd@example.org
    to: [ops@example.org]
    group_wait: 1s
    match:
      rules: [mail_$RUN]
  - name: am
    type: alertmanager
    url: http://127.0.0.1:$AM_PORT
    group_wait: 0s
    match:
      rules: [am_$RUN]
  - name: late
    type: webhook
    url: http://127.0.0.1:$LATE_PORT/alerts
    secret_file: $T/secret
    group_wait: 0s
    match:
      rules: [late_$RUN]
  - name: reject
    type: webhook
    url: http://127.0.0.1:$HOOK_PORT/reject
    group_wait: 0s
    match:
      rules: [reject_$RUN]
YAML
	herd apply -f "$T/receivers.yaml" >/dev/null
	# the worker creates each receiver's cursor at the newest event: wait
	# until it has, so the events below are after it
	wait_for 30 cursors_made
	export T RUN AM_PORT SMTP_PORT HOOK_PORT LATE_PORT
}

teardown_file() {
	local f
	for f in am smtp hook late; do
		if [ -f "$T/$f.pid" ]; then
			kill "$(cat "$T/$f.pid")" 2>/dev/null || true
			wait "$(cat "$T/$f.pid")" 2>/dev/null || true
		fi
	done
	[ -n "${HERD_DATA:-}" ] && server_cleanup
	return 0
}

setup() {
	command -v prometheus-alertmanager >/dev/null || skip "needs prometheus-alertmanager"
	"$PY" -c 'import aiosmtpd' 2>/dev/null || skip "needs python3-aiosmtpd"
}

cursors_made() {
	store_sql "SELECT COUNT(*) FROM alert_deliveries" |
		grep -qx 5
}

# add_event RULE STATE [SILENCED] [KEY]: records an alert transition as the
# evaluator would (same columns, same transaction shape); prints its id.
add_event() {
	local now
	now=$(($(date +%s%N) / 1000000))
	store_sql "INSERT INTO alert_events (ts_ms, rule, cluster, grp, key, state, severity, summary,
		 labels, value, started_ms, repeat, silenced) VALUES ($now, '$1', 'c-$RUN', 'node',
		 '${4:-node-1}', '$2', 'critical', 'summary of $1 $2 on ${4:-node-1}',
		 '{\"team\":\"ops\"}', 37.5, $now, 0, ${3:-0}) RETURNING id;"
}

receiver_field() {   # receiver_field NAME FIELD
	curl -sf -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/v1/alerts/receivers" |
		json "{items}" | perl -MJSON::PP -e '
			for (@{decode_json(join "", <STDIN>)}) {
				print $_->{$ARGV[1]} // "", "\n" if $_->{name} eq $ARGV[0] }' "$1" "$2"
}

# bodies_with ID: how many webhook bodies received carry event ID.
bodies_with() {
	[ -f "$T/${2:-hook}/bodies.jsonl" ] || { echo 0; return; }
	ID=$1 perl -MJSON::PP -ne '$n += grep { $_ == $ENV{ID} } @{decode_json($_)->{event_ids}};
		END { print $n + 0, "\n" }' <"$T/${2:-hook}/bodies.jsonl"
}

# bodies_are ID N [DIR]: N bodies carry event ID (for wait_for, which runs
# the command again each time: a "$(...)" in its arguments would not be)
bodies_are() {
	[ "$(bodies_with "$1" "${3:-hook}")" = "$2" ]
}

field_is() {   # field_is RECEIVER FIELD VALUE
	[ "$(receiver_field "$1" "$2")" = "$3" ]
}

field_ge() {   # field_ge RECEIVER FIELD N
	[ "$(receiver_field "$1" "$2")" -ge "$3" ]
}

@test "a bad receiver is refused naming its field and line" {
	cat >"$T/bad.yaml" <<'YAML'
receivers:
  - name: nomail
    type: email
    url: smtp://127.0.0.1:25
    to: [ops@example.org]
YAML
	run herd apply -f "$T/bad.yaml"
	[ "$status" -ne 0 ]
	[[ "$output" == *"bad.yaml:2"* ]]
	[[ "$output" == *"from"* ]]
	printf 'receivers:\n  - name: x\n    type: pager\n    url: http://127.0.0.1:1\n' >"$T/bad2.yaml"
	run herd apply -f "$T/bad2.yaml"
	[ "$status" -ne 0 ]
	[[ "$output" == *"type"* ]]
	[[ "$output" == *"pager"* ]]
}

@test "the webhook gets a firing alert, signed, with its event id and a fingerprint" {
	id=$(add_event "hook_$RUN" firing)
	wait_for 60 bodies_are "$id" 1
	[ ! -s "$T/hook/bad.log" ]
	line=$(grep "\"hook_$RUN\"" "$T/hook/bodies.jsonl" | head -1)
	[ "$(echo "$line" | json '{alerts}[0]{state}')" = firing ]
	[ "$(echo "$line" | json '{alerts}[0]{summary}')" = "summary of hook_$RUN firing on node-1" ]
	[[ "$(echo "$line" | json '{alerts}[0]{fingerprint}')" =~ ^[0-9a-f]{16}$ ]]
	[ "$(echo "$line" | json '{receiver}')" = hook ]
}

@test "a silenced event sends nothing" {
	sid=$(add_event "silence_$RUN" firing 1)
	# a later event to the same receiver: delivery is in order, so once it
	# is in, the silenced one was passed over (or sent before it)
	id=$(add_event "hook_$RUN" resolved)
	wait_for 60 bodies_are "$id" 1
	[ "$(bodies_with "$sid")" = 0 ]
	refute grep -q "silence_$RUN" "$T/hook/bodies.jsonl"
}

@test "Alertmanager shows herd's alert with its labels, and the resolved event ends it" {
	add_event "am_$RUN" firing >/dev/null
	q() {
		amtool alert query --alertmanager.url="http://127.0.0.1:$AM_PORT" -o json \
			"alertname=am_$RUN"
	}
	wait_for 60 bash -c "$(declare -f q); q | grep -q am_$RUN"
	out=$(q)
	[ "$(echo "$out" | json '[0]{labels}{cluster}')" = "c-$RUN" ]
	[ "$(echo "$out" | json '[0]{labels}{group}')" = node ]
	[ "$(echo "$out" | json '[0]{labels}{key}')" = node-1 ]
	[ "$(echo "$out" | json '[0]{labels}{severity}')" = critical ]
	[ "$(echo "$out" | json '[0]{labels}{team}')" = ops ]
	[ "$(echo "$out" | json '[0]{annotations}{summary}')" = "summary of am_$RUN firing on node-1" ]
	add_event "am_$RUN" resolved >/dev/null
	wait_for 60 bash -c "$(declare -f q); ! q | grep -q am_$RUN"
}

@test "the SMTP server receives the email with the alert's summary" {
	add_event "mail_$RUN" firing >/dev/null
	wait_for 60 grep -q "summary of mail_$RUN firing on node-1" "$T/smtp.out"
	grep -q "Subject: \[herd\] FIRING mail_$RUN c-$RUN/node" "$T/smtp.out"
	grep -q "ops@example.org" "$T/smtp.out"
	[ "$(receiver_field mail sent)" -ge 1 ]
}

@test "a receiver down for 30 s gets the notification after it comes back, exactly once" {
	id=$(add_event "late_$RUN" firing)
	start=$SECONDS
	wait_for 60 field_ge late failures 2
	[ -n "$(receiver_field late last_error)" ]
	[ -n "$(receiver_field late next_retry_at)" ]
	[ "$(receiver_field late sent)" = 0 ]
	sleep $((30 - (SECONDS - start) > 0 ? 30 - (SECONDS - start) : 0))
	"$PY" "$BATS_TEST_DIRNAME/0480-webhook.py" "$LATE_PORT" "$T/secret" "$T/late" \
		>"$T/late/log" 2>&1 &
	echo $! >"$T/late.pid"
	# the backoff after 30 s of failures is at most 32 s
	wait_for 120 bodies_are "$id" 1 late
	id2=$(add_event "late_$RUN" resolved)
	wait_for 60 bodies_are "$id2" 1 late
	[ "$(bodies_with "$id" late)" = 1 ]
	[ "$(receiver_field late sent)" = 2 ]
	[ "$(receiver_field late cursor)" = "$id2" ]
	[ "$(receiver_field late failures)" = 0 ]
}

@test "a receiver answering 400 has the notification dropped, counted and recorded" {
	add_event "reject_$RUN" firing >/dev/null
	wait_for 60 field_is reject dropped 1
	[[ "$(receiver_field reject last_error)" == *400* ]]
	curl -sf "$HERD_URL/metrics" -H "Authorization: Bearer $HERD_TOKEN" >"$T/metrics"
	grep -qx 'herd_alert_notifications_total{receiver="reject",result="dropped"} 1' "$T/metrics"
	grep -q '^herd_alert_notifications_total{receiver="hook",result="sent"} [1-9]' "$T/metrics"
	herd activity ls --json | grep -q "receiver 'reject' refused"
}
