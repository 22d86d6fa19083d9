#!/usr/bin/env bats
# The foundation: auth and roles, validation errors naming the field, limits,
# blueprints (idempotent apply, exact dry-run, file:line errors), durability
# across kill -9, tokens and the audit trail.

load lib

setup_file() {
	server_start
}

teardown_file() {
	server_cleanup
}

api() { # api METHOD PATH [BODY] -> prints "STATUS BODY"
	local m=$1 p=$2 b=${3:-}
	if [ -n "$b" ]; then
		curl -s -o /tmp/herd-api.$$ -w '%{http_code}' -X "$m" -H "Authorization: Bearer $HERD_TOKEN" \
			-H 'Content-Type: application/json' --data-binary "$b" "$HERD_URL$p"
	else
		curl -s -o /tmp/herd-api.$$ -w '%{http_code}' -X "$m" -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL$p"
	fi
	echo " $(cat /tmp/herd-api.$$)"
	rm -f /tmp/herd-api.$$
}

@test "first start writes the admin token with mode 0600" {
	[ -f "$HERD_DATA/admin.token" ]
	[ "$(stat -c %a "$HERD_DATA/admin.token")" = 600 ]
	grep -q "admin token written to $HERD_DATA/admin.token" "$HERD_DATA/server.log"
}

@test "healthz needs no token; the API does (401), viewers cannot write (403), admins can (201)" {
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$HERD_URL/healthz")" = 200 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$HERD_URL/v1/groups")" = 401 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer hd_nope' "$HERD_URL/v1/groups")" = 401 ]
	viewer=$(herd token create --role viewer --name v1)
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $viewer" "$HERD_URL/v1/groups")" = 200 ]
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $viewer" \
		-X POST -d '{"name":"acct1","driver":"local"}' "$HERD_URL/v1/accounts")
	[ "$code" = 403 ]
	run api POST /v1/accounts '{"name":"acct1","driver":"local"}'
	[[ "$output" == "201 "* ]]
	# the viewer's CLI gets a message and a non-zero exit
	run env HERD_TOKEN="$viewer" "$HERD" account rm acct1
	[ "$status" -ne 0 ]
	[[ "$output" == *"role 'viewer' may not"* ]]
}

@test "tokens: created once with --json, listed without secrets, removed" {
	run herd token create --role operator --name op1 --json
	[ "$status" -eq 0 ]
	tok=$(echo "$output" | json '{token}')
	[ "$(echo "$output" | json '{role}')" = operator ]
	[ "$(echo "$output" | json '{name}')" = op1 ]
	[[ "$tok" == hd_* ]]
	run herd token ls --json
	[[ "$output" == *'"op1"'* ]]
	[[ "$output" != *"$tok"* ]]
	dump=$(store_dump)
	[[ "$dump" == *op1* ]]
	[[ "$dump" != *"$tok"* ]]
	run herd token rm op1
	[ "$status" -eq 0 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "$HERD_URL/v1/groups")" = 401 ]
}

@test "bad input: names, unknown fields, nesting, types name the field" {
	run api POST /v1/accounts '{"name":"../x","driver":"local"}'
	[[ "$output" == "400 "* ]]
	[ "$(echo "${output#400 }" | json '{error}{field}')" = name ]
	run api POST /v1/accounts '{"name":"A B","driver":"local"}'
	[[ "$output" == "400 "* ]]
	[ "$(echo "${output#400 }" | json '{error}{field}')" = name ]
	run api POST /v1/accounts '{"name":"ok1","driver":"local","colour":"red"}'
	[[ "$output" == "400 "* ]]
	[ "$(echo "${output#400 }" | json '{error}{field}')" = colour ]
	run api POST /v1/networks '{"name":"n1","account":"here-not","cidr":"198.18.0.0/33"}'
	[[ "$output" == "400 "* ]]
	[ "$(echo "${output#400 }" | json '{error}{field}')" = cidr ]
	run api POST /v1/networks '{"name":"n1","account":"nobody","cidr":"198.18.0.0/24"}'
	[[ "$output" == "400 "* ]]
	[ "$(echo "${output#400 }" | json '{error}{field}')" = account ]
	deep=$(perl -e 'print "{\"name\":\"x\",\"labels\":" . ("[" x 10000) . ("]" x 10000) . "}"')
	run api POST /v1/accounts "$deep"
	[[ "$output" == "400 "* ]]
	[[ "$output" == *"nested deeper"* ]]
	run api POST /v1/accounts 'not json'
	[[ "$output" == "400 "* ]]
}

@test "a 100 MB body is refused with 413 at once, and the server does not grow" {
	rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
	start=$(date +%s%N)
	code=$(head -c 100000000 /dev/zero | curl -s -o /dev/null -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $HERD_TOKEN" -H 'Content-Type: application/json' \
		--data-binary @- "$HERD_URL/v1/accounts" || true)
	elapsed_ms=$((($(date +%s%N) - start) / 1000000))
	[ "$code" = 413 ]
	# chunked, no Content-Length: refused once the limit is passed
	code=$(head -c 100000000 /dev/zero | curl -s -o /dev/null -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $HERD_TOKEN" -H 'Transfer-Encoding: chunked' \
		--data-binary @- "$HERD_URL/v1/accounts" || true)
	[ "$code" = 413 ]
	rss_after=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
	echo "# 413 after ${elapsed_ms} ms; RSS ${rss_before} -> ${rss_after} kB" >&3
	[ $((rss_after - rss_before)) -lt 8192 ]
}

@test "keep-alive: two requests share one connection" {
	run curl -sv -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/v1/groups" "$HERD_URL/v1/groups"
	[[ "$output" == *"Re-using existing connection"* ]] || [[ "$output" == *"Reusing existing"* ]]
}

@test "apply creates every declared resource; a second apply changes nothing" {
	run herd apply -f "$BATS_TEST_DIRNAME/fixtures/api.yaml"
	[ "$status" -eq 0 ]
	[[ "$output" == *"create network vpc1"* ]]
	[[ "$output" == *"create policy demo/node/shrink"* ]]
	for k in account network lb script template monitor cluster group policy; do
		run herd "$k" ls --json
		[ "$status" -eq 0 ]
		[ "$(echo "$output" | json '{items}->[0]{name}')" != "" ]
	done
	[ "$(herd group show demo/node --json | json '{max}')" = 6 ]
	[ "$(herd script show hello.sh --json | json '{latest}')" = 1 ]
	run herd apply -f "$BATS_TEST_DIRNAME/fixtures/api.yaml"
	[ "$status" -eq 0 ]
	[[ "$output" == "no changes"* ]]
}

@test "dry-run lists exactly the changes and changes nothing" {
	sed -e 's/max: 6/max: 8/' -e 's/cooldown: 60s/cooldown: 90s/' \
		"$BATS_TEST_DIRNAME/fixtures/api.yaml" >"$BATS_FILE_TMPDIR/mod.yaml"
	cp -r "$BATS_TEST_DIRNAME/fixtures/scripts" "$BATS_FILE_TMPDIR/"
	run herd apply -f "$BATS_FILE_TMPDIR/mod.yaml" --dry-run
	[ "$status" -eq 0 ]
	echo "$output"
	[ "$(echo "$output" | wc -l)" -eq 2 ]
	[[ "$output" == *"would update group demo/node (max)"* ]]
	[[ "$output" == *"would update policy demo/node/shrink (cooldown)"* ]]
	[ "$(herd group show demo/node --json | json '{max}')" = 6 ]
}

@test "a blueprint mistake names its line and changes nothing" {
	awk '{print} /name: grow/ {getline; print "            when: avg(busy) >> 32"; next}' \
		"$BATS_TEST_DIRNAME/fixtures/api.yaml" >"$BATS_FILE_TMPDIR/bad.yaml"
	cp -r "$BATS_TEST_DIRNAME/fixtures/scripts" "$BATS_FILE_TMPDIR/"
	sed -i 's/max: 6/max: 7/' "$BATS_FILE_TMPDIR/bad.yaml"
	line=$(grep -n 'avg(busy) >>' "$BATS_FILE_TMPDIR/bad.yaml" | cut -d: -f1)
	run herd apply -f "$BATS_FILE_TMPDIR/bad.yaml"
	[ "$status" -ne 0 ]
	[[ "$output" == *"bad.yaml:$line:"* ]]
	[ "$(herd group show demo/node --json | json '{max}')" = 6 ]
	# a YAML syntax error names its line too
	printf 'accounts:\n  - name: x\n    driver: [local\n' >"$BATS_FILE_TMPDIR/syntax.yaml"
	run herd apply -f "$BATS_FILE_TMPDIR/syntax.yaml"
	[ "$status" -ne 0 ]
	[[ "$output" == *"syntax.yaml:"[0-9]* ]]
}

@test "deleting something still referenced is refused naming the referrer (409)" {
	run api DELETE /v1/templates/node
	[[ "$output" == "409 "* ]]
	[[ "$output" == *"group 'demo/node'"* ]]
	run herd network rm vpc1
	[ "$status" -ne 0 ]
	[[ "$output" == *"still referred to by"* ]]
}

@test "lists paginate" {
	for i in 1 2 3 4 5; do api POST /v1/accounts "{\"name\":\"page$i\",\"driver\":\"local\"}" >/dev/null; done
	run api GET '/v1/accounts?limit=2'
	[[ "$output" == "200 "* ]]
	[ "$(echo "${output#200 }" | json_count '{items}')" -eq 2 ]
	next=$(echo "${output#200 }" | json '{next}')
	[ -n "$next" ]
	run api GET "/v1/accounts?limit=2&after=$next"
	[ "$(echo "${output#200 }" | json '{items}->[0]{name}')" != "$(api GET '/v1/accounts?limit=2' | sed 's/^200 //' | json '{items}->[0]{name}')" ]
	# the CLI follows the pages
	[ "$(herd account ls --json | json_count '{items}')" -ge 7 ]
}

@test "every mutation is audited (who, what, result)" {
	run herd audit ls --json
	[ "$status" -eq 0 ]
	[[ "$output" == *'"/v1/apply"'* ]]
	[[ "$output" == *'"status": 403'* ]]
	[[ "$output" == *'"who": "v1"'* ]]
}

@test "a write acknowledged with 201 survives kill -9" {
	run api POST /v1/accounts '{"name":"durable","driver":"local"}'
	[[ "$output" == "201 "* ]]
	kill -9 "$SERVER_PID"
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
	server_start
	run herd account show durable --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | json '{driver}')" = local ]
}

@test "CLI: --help everywhere, version, errors on stderr with non-zero exit" {
	run herd version
	[[ "$output" == "herd "* ]]
	run herd group scale --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"usage: herd group scale"* ]]
	run herd group show nosuchgroup
	[ "$status" -ne 0 ]
	[[ "$output" == *"no group named 'nosuchgroup'"* ]]
	run herd frobnicate
	[ "$status" -eq 2 ]
	run herd group scale demo/node 99
	[ "$status" -ne 0 ]
	[[ "$output" == *"desired"* ]]
}

@test "herd login saves the server and token" {
	export HOME=$BATS_FILE_TMPDIR/home
	mkdir -p "$HOME"
	run env -u HERD_URL -u HERD_TOKEN "$HERD" login "$HERD_URL" "$HERD_TOKEN"
	[ "$status" -eq 0 ]
	[ "$(stat -c %a "$HOME/.config/herd/config")" = 600 ]
	run env -u HERD_URL -u HERD_TOKEN "$HERD" whoami
	[ "$status" -eq 0 ]
	[[ "$output" == "admin (admin)" ]]
}
