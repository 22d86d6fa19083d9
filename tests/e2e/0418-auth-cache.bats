#!/usr/bin/env bats
# The API's credentials cache (api.c: a resolved token is remembered so a
# busy client costs no store lookup per request) never outlives the token:
# a token in the cache that is deleted is refused on the very next request,
# and a token made again under the same name with another role is seen with
# that role at once (tokens are immutable: a role change is a new token).

load lib

setup_file() {
	server_start
}

teardown_file() {
	server_cleanup
}

# code TOKEN METHOD PATH [BODY]: the HTTP status of one request.
code() {
	local args=(-s -o /dev/null -w '%{http_code}' -X "$2" -H "Authorization: Bearer $1")
	[ -z "${4:-}" ] || args+=(-H 'Content-Type: application/json' -d "$4")
	curl "${args[@]}" "$HERD_URL$3"
}

# make_token NAME ROLE: prints the new token's text.
make_token() {
	herd token create --role "$2" --name "$1" --json | json '{token}'
}

@test "a cached token that is deleted is refused on the very next request" {
	for i in $(seq 10); do
		tok=$(make_token "cached$i" viewer)
		[[ "$tok" == hd_* ]]
		# answered (and so cached) several times, on several connections
		for _ in 1 2 3; do
			[ "$(code "$tok" GET /v1/groups)" = 200 ]
		done
		[ "$(code "$HERD_TOKEN" DELETE "/v1/tokens/cached$i")" = 200 ]
		[ "$(code "$tok" GET /v1/groups)" = 401 ]
		[ "$(code "$tok" GET /v1/whoami)" = 401 ]
	done
}

@test "a token made again under the same name with another role is seen with it at once" {
	old=$(make_token swap viewer)
	[ "$(code "$old" GET /v1/groups)" = 200 ]
	[ "$(code "$old" POST /v1/clusters '{"name":"swap1"}')" = 403 ]
	[ "$(code "$HERD_TOKEN" DELETE /v1/tokens/swap)" = 200 ]
	new=$(make_token swap admin)
	[ "$(code "$old" GET /v1/groups)" = 401 ]
	[ "$(code "$new" POST /v1/clusters '{"name":"swap1"}')" = 201 ]
	run curl -s -H "Authorization: Bearer $new" "$HERD_URL/v1/whoami"
	[ "$(echo "$output" | json "{role}")" = admin ]
	[ "$(code "$HERD_TOKEN" DELETE /v1/tokens/swap)" = 200 ]
	[ "$(code "$new" GET /v1/groups)" = 401 ]
	[ "$(code "$new" POST /v1/clusters '{"name":"swap2"}')" = 401 ]
}
