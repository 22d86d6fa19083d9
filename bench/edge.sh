#!/usr/bin/env bash
# bench/edge.sh - edge-triggered pushes (issue 16: a value changed on a host
# -> the group's decision in <= 100 ms plus the rule's `for:`). Runs
# bench/decision.sh with the agents aligned (as the real agent) at each push
# interval of EDGE_INTERVALS (default "5s 1s"), edge pushes off (the
# reference: today's interval pushes) and on, EDGE_COUNT agents (default
# 100), and prints change -> decision per row:
#   t0  = the instant the first simulated agent's value changed (the start
#         of its high period: what a monitor's sample is to the real agent);
#         nothing is subtracted, so the row includes the wait for a push;
#   t1  = ts_ms of the autoscaler's decision (the shadow policy's activity,
#         `max(step) > 50`, no `for:`), same machine clock.
# Needs the fake QingCloud (as decision.sh); no root.
set -euo pipefail
cd "$(dirname "$0")"
intervals=${EDGE_INTERVALS:-5s 1s}
rows=()
for iv in $intervals; do
	for e in 0 1; do
		out=$(DECISION_COUNTS=${EDGE_COUNT:-100} DECISION_INTERVAL=$iv DECISION_ALIGNED=1 \
			DECISION_EDGE=$e DECISION_STEP=${EDGE_STEP:-12} DECISION_TRIALS=${EDGE_TRIALS:-4} \
			bash ./decision.sh 2>&1) || { echo "$out" | tail -5; echo "edge: FAILED at $iv edge=$e"; exit 1; }
		case $out in *"skipped"*) echo "$out"; exit 0 ;; esac
		# the last row of decision.sh's table: its last column is change->decision med/max
		last=$(echo "$out" | grep -E '^[0-9]+ +[0-9]+ +[0-9]+ ' | tail -1)
		rows+=("$iv|$([ $e = 1 ] && echo on || echo off)|$(echo "$last" | awk '{print $2 "|" $3 "|" $NF}')")
	done
done
echo "change -> decision (t0: the value changed on the agent; t1: the decision's activity), agents aligned, ${EDGE_COUNT:-100} agents; $(nproc) cores"
printf '%-9s %-6s %-7s %-7s %-28s\n' interval edge trials missed "median/max ms (goal <= 100)"
for r in "${rows[@]}"; do
	IFS='|' read -r iv e k miss mm <<<"$r"
	med=${mm%/*}
	v=$(awk -v m="$med" 'BEGIN { if (m == "-") print "n/a"; else print (m + 0 <= 100 ? "pass" : "over") }')
	printf '%-9s %-6s %-7s %-7s %-28s\n' "$iv" "$e" "$k" "$miss" "$mm ($v)"
done
echo "machine load average at the end (other work shares the cores): $(cut -d" " -f1-3 /proc/loadavg)"
