#!/usr/bin/env bats
# Query parameters that name a position in a list (issue 15's pages):
# a value that is not a number is refused naming the parameter, never read
# as 0 (which would silently answer the list from its start).

load lib

setup_file() {
	server_start
}

teardown_file() {
	server_cleanup
}

@test "activities: since_id that is not an id is refused naming since_id" {
	for v in abc -1 12x ""; do
		run http GET "/v1/activities?since_id=$v" "$HERD_TOKEN"
		echo "$v: $output"
		[[ "$output" == "400 "* ]]
		[[ "$output" == *'"since_id"'* ]]
	done
	run http GET "/v1/activities?since_id=0" "$HERD_TOKEN"
	[[ "$output" == "200 "* ]]
}

@test "run logs: after that is not a seq is refused naming after" {
	for v in abc -2 3y ""; do
		run http GET "/v1/runs/1/logs?after=$v" "$HERD_TOKEN"
		echo "$v: $output"
		[[ "$output" == "400 "* ]]
		[[ "$output" == *'"after"'* ]]
	done
	# -1 is "from the start" (what herd run logs sends first): no run 1 here
	run http GET "/v1/runs/1/logs?after=-1" "$HERD_TOKEN"
	[[ "$output" == "404 "* ]]
}
