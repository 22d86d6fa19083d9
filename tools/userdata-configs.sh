#!/usr/bin/env bash
# userdata-configs.sh LOG - the agent config of every instance a fake
# QingCloud launched, one canonical JSON a line, from its call log (LOG):
# each accepted RunInstances' userdata_value (base64 of the bootstrap
# script), then the base64 config between <<'HERD_EOF' and HERD_EOF inside
# it - as a booting machine reads its own user data. For benches and tests
# that play agents for hosts the server launched (bench/agents.sh,
# bench/decision.sh, e2e 0330 and 0400).
set -eu
exec perl -MJSON::PP -MMIME::Base64 -ne '
	my $c = eval { decode_json($_) } or next;
	next unless $c->{action} eq "RunInstances" && !$c->{ret_code};
	my $s = decode_base64($c->{params}{userdata_value} // next);
	next unless $s =~ /<<\x27HERD_EOF\x27[^\n]*\n(.*?)^HERD_EOF$/ms;
	my $cfg = eval { decode_json(decode_base64($1)) } or next;
	print JSON::PP->new->canonical->encode($cfg), "\n"' "$1"
