#!/usr/bin/env bats
# Three servers on one PostgreSQL (issue 19, docs/ha.md): Debian's
# PostgreSQL (tools/pg-tmp.sh), the fake QingCloud (--instances none: no
# agent boots, hosts stay booting), three `herd server` processes with their
# own --data dirs, one --store, plain HTTP on 127.0.0.1 and --lease-ttl 3s.
# Each actuation is traced to its server: the fake's call log keeps each
# call's User-Agent (`herd/<version> (server <id>)`), each activity the
# server and lease epoch it was made under.
#   1. one server leads; every server answers reads; a write on a follower
#      is carried out by the leader (its calls, its activities);
#   2. the leader is kill -9ed mid-scale-out (failpoint
#      qingcloud_run_answered=hang@3 on server 1: the second launch of the
#      scale-out done, the later ones answered by RunInstances, not recorded): another leads at epoch + 1 within TTL + 2 renew periods
#      (5 s; the figure is printed), and the scale-out completes exactly
#      once: one successful RunInstances per host id, the fake's live
#      instances are exactly the store's live hosts;
#   3. the leader is SIGSTOPped for longer than the lease while a launch's
#      intent is stored and its provider call not yet made (failpoint
#      launch_intent_stored=sleep:8000 on servers 2 and 3; the stop comes
#      during the sleep); a new leader resolves that intent and completes
#      the scale-out; then the old one is SIGCONTed: it steps down and makes
#      no call (none in the fake's log with its User-Agent) and records no
#      activity;
#   4. after both: every server answers, a scale-in written on each follower
#      is carried out by the leader, and the restarted server 1, a follower
#      throughout, never tried a provider call.
# The cases run in order on one set of servers. Needs root (PostgreSQL runs
# as nobody).

load lib
load qingcloud
load 0650-ha-failover

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	[ -x "$FAKE" ] || return 0
	HA=$(mktemp -d "$BATS_FILE_TMPDIR/ha.XXXXXX")
	PG_DIR=$(mktemp -u /tmp/herd-pg-0650.XXXXXX)
	PG_DSN=$("$PG_TMP" start "$PG_DIR")
	CIDR=$(random_cidr)
	export HA PG_DIR PG_DSN CIDR
	# the fake: no instance boots
	fq_init HA "$HA/fq"
	fq_start --instances none --pending-ms 2000 --job-ms 1000
	# server 1 first, so it leads; 2 and 3 follow
	srv_start 1 qingcloud_run_answered=hang@3
	wait_for 20 leads 1
	srv_start 2 launch_intent_stored=sleep:8000
	srv_start 3 launch_intent_stored=sleep:8000
	for i in 1 2 3; do
		self_id "$i" >"$HA/d$i/id"
	done
	INST=$(curl -sf "$(srv_url 1)/healthz" | json '{instance}')
	export INST
	bp >"$HA/ha.yaml"
	on 2 apply -f "$HA/ha.yaml" >&2
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	[ -n "${HA:-}" ] || return 0
	for i in 1 2 3; do
		srv_stop "$i"
	done
	fq_stop
	[ -z "${PG_DIR:-}" ] || "$PG_TMP" stop "$PG_DIR"
	if [ -n "${HA_KEEP:-}" ]; then
		echo "# kept $HA" >&3
	else
		rm -rf "$HA"
	fi
}

setup() {
	require_root
	fq_require
}

id_of() {
	cat "$HA/d$1/id"
}

@test "three servers: one leads, every one answers, a write on a follower is carried out by the leader" {
	local i e aid
	e=$(lease_on 1 | awk '{print $2}')
	[ "$e" -ge 1 ]
	for i in 1 2 3; do
		[ "$(lease_on "$i")" = "$(id_of 1) $e live" ]
		[ "$(servers "$i" | json_count '{servers}')" -eq 3 ]
		on "$i" server status | grep -q "$(id_of 1) *leader"
		on "$i" group ls >/dev/null
	done
	aid=$(last_activity_id 1)
	run on 3 group scale ha/g 1
	[ "$status" -eq 0 ]
	wait_for 60 converged 2 1
	# the leader made the call, and recorded it under its epoch
	calls_from 0 RunInstances
	[ "$(calls_from 0 RunInstances | grep -c "(server $(id_of 1))")" -eq 1 ]
	[ "$(calls_from 0 | herd_calls | grep -vc "(server $(id_of 1))")" -eq 0 ]
	activities_since "$aid" 1
	activities_since "$aid" 1 | grep -q "^[0-9]* $(id_of 1) $e launch "
}

@test "the leader kill -9ed mid-scale-out: a new leader at epoch + 1 within 5 s, the scale-out completes exactly once" {
	local e t0 t1 took n aid
	e=$(lease_on 2 | awk '{print $2}')
	[ "$(lease_on 2)" = "$(id_of 1) $e live" ]
	aid=$(last_activity_id 2)
	run on 2 group scale ha/g 4
	[ "$status" -eq 0 ]
	# RunInstances answered for the scale-out's second host, not recorded
	wait_for 60 logged 1 "failpoint 'qingcloud_run_answered': hanging"
	store_hosts 2
	t0=$(date +%s%3N)
	srv_kill9 1
	wait_for 30 new_leader_on 2 "$(id_of 1)" $((e + 1))
	t1=$(date +%s%3N)
	took=$((t1 - t0))
	n=$(leader_index)
	echo "takeover: server $n at epoch $((e + 1)), ${took} ms after kill -9 (lease TTL ${TTL_S}s)"
	echo "# takeover after kill -9: ${took} ms (TTL ${TTL_S} s)" >&3
	[ "$took" -le $((TTL_S * 1000 + 2 * TTL_S * 1000 / 3)) ]
	[ "$(lease_on 3)" = "$(id_of "$n") $((e + 1)) live" ]
	wait_for 120 converged "$n" 4
	echo "store: $(store_live "$n" | tr '\n' ' ')"
	echo "fake:  $(fq_host_ids | tr '\n' ' ')"
	# exactly once: no host id launched twice, no instance the store does
	# not know, no live host without its instance (converged)
	one_run_per_host
	[ -z "$(fq_host_ids | uniq -d)" ]
	# the new leader adopted what server 1 had made, under its epoch
	activities_since "$aid" "$n"
	activities_since "$aid" "$n" | grep -q "^[0-9]* $(id_of "$n") $((e + 1)) adopt "
	# server 1 back as a new process: three servers again (its log from here
	# is the new process's: case 4)
	stat -c %s "$HA/d1/server.log" >"$HA/d1/start.off"
	srv_start 1
	self_id 1 >"$HA/d1/id"
	[ "$(lease_on 1)" = "$(id_of "$n") $((e + 1)) live" ]
}

@test "the leader SIGSTOPped past its lease mid-launch: a new leader acts; SIGCONTed, the old one steps down and makes 0 calls, 0 activities" {
	local l f e id sleeps t0 took n mark aid cut cut_name
	l=$(leader_index)
	[ -n "$l" ]
	id=$(id_of "$l")
	e=$(lease_on "$l" | awk '{print $2}')
	f=$(((l % 3) + 1))
	sleeps=$(grep -c "failpoint 'launch_intent_stored': sleeping" "$HA/d$l/server.log" || true)
	run on "$f" group scale ha/g 5
	[ "$status" -eq 0 ]
	more_sleeps() {
		[ "$(grep -c "failpoint 'launch_intent_stored': sleeping" "$HA/d$l/server.log")" -gt "$sleeps" ]
	}
	# the intent is stored; the launch's worker has not called the provider
	wait_for 30 more_sleeps
	kill -STOP "$(srv_pid "$l")"
	t0=$(date +%s%3N)
	store_hosts "$f"
	cut=$(store_hosts "$f" | awk '$3 == "launching" {print $1}')
	cut_name=$(store_hosts "$f" | awk -v id="$cut" '$1 == id {print $2}')
	echo "stopped with the intent of host $cut ($cut_name) stored"
	[ "$(grep -c . <<<"$cut")" -eq 1 ]
	wait_for 30 new_leader_on "$f" "$id" $((e + 1))
	took=$(($(date +%s%3N) - t0))
	n=$(leader_index)
	echo "takeover: server $n at epoch $((e + 1)), ${took} ms after SIGSTOP of server $l"
	echo "# takeover after SIGSTOP: ${took} ms (TTL ${TTL_S} s)" >&3
	[ "$n" != "$l" ]
	# the new leader resolves the stopped one's intent (never launched) and
	# launches in its place
	wait_for 120 converged "$n" 5
	calls_from 0 RunInstances | grep "(server $(id_of "$n"))"
	mark=$(call_lines)
	aid=$(last_activity_id "$n")
	kill -CONT "$(srv_pid "$l")"
	wait_for 30 logged "$l" "controller lease: stepping down at epoch $e"
	# its launch worker woke up and is done (with the lease gone: no call)
	wait_for 30 logged "$l" "launch $cut ended"
	# a pass of each of its controllers has come and gone meanwhile; it
	# answers again
	on "$l" server status | grep -q "$(id_of "$n") *leader"
	echo "calls since SIGCONT:"
	calls_from "$mark"
	[ "$(calls_from "$mark" | grep -c "(server $id)")" -eq 0 ]
	# (every call made since: the new leader's, or this test's own)
	[ "$(calls_from "$mark" | herd_calls | grep -vc "(server $(id_of "$n"))")" -eq 0 ]
	logged "$l" "launch of $cut_name in ha/g not made: this server does not hold the controller lease"
	# the host whose intent it held when stopped was never launched (the new
	# leader failed it and launched another)
	[ "$(calls_from 0 RunInstances | grep -cF "herd-$INST-$cut" || true)" -eq 0 ]
	echo "activities since SIGCONT:"
	activities_since "$aid" "$n"
	[ "$(activities_since "$aid" "$n" | awk -v id="$id" '$2 == id' | grep -c .)" -eq 0 ]
	converged "$n" 5
	one_run_per_host
}

@test "after both: every server answers; a scale-in written on each follower is carried out by the leader" {
	local n e i f size=5 aid mark
	# a case 3 that failed between SIGSTOP and SIGCONT leaves a server stopped
	for i in 1 2 3; do kill -CONT "$(srv_pid "$i")" 2>/dev/null || true; done
	n=$(leader_index)
	[ -n "$n" ]
	e=$(lease_on "$n" | awk '{print $2}')
	for i in 1 2 3; do
		[ "$(lease_on "$i")" = "$(id_of "$n") $e live" ]
		[ "$(store_live "$i" | grep -c .)" -eq "$size" ]
	done
	aid=$(last_activity_id "$n")
	mark=$(call_lines)
	for f in 1 2 3; do
		[ "$f" != "$n" ] || continue
		size=$((size - 1))
		run on "$f" group scale ha/g "$size"
		[ "$status" -eq 0 ]
		wait_for 60 converged "$n" "$size"
	done
	calls_from "$mark"
	# every call since: the leader's
	[ "$(calls_from "$mark" TerminateInstances | grep -c "(server $(id_of "$n"))")" -ge 2 ]
	[ "$(calls_from "$mark" | herd_calls | grep -vc "(server $(id_of "$n"))")" -eq 0 ]
	activities_since "$aid" "$n"
	activities_since "$aid" "$n" | grep -q "^[0-9]* $(id_of "$n") $e terminate "
	# a server that has only followed since it started (server 1 restarted
	# in case 2, or the one that never led; at least one of them, whichever
	# case 3's takeover picked) never tried a provider call (the gate would
	# refuse it: a follower sets up nothing)
	local pure=0 off log
	for i in 1 2 3; do
		off=$(cat "$HA/d$i/start.off" 2>/dev/null || echo 0)
		log=$(tail -c +"$((off + 1))" "$HA/d$i/server.log")
		if grep -q "controller lease: leading" <<<"$log"; then
			continue
		fi
		pure=$((pure + 1))
		echo "server $i has only followed"
		[ "$(grep -c "not calling the provider" <<<"$log" || true)" -eq 0 ]
	done
	[ "$pure" -ge 1 ]
}
