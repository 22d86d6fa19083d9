#!/usr/bin/env bash
# check-layers.sh - fails (exit 1, naming the files) when the layering rules
# issue 13 sets are broken where they already hold: hosts.state is written
# only by src/server/model/host.c, the host state machine. `make check` runs
# it. (The rules that do not hold yet — no SQL outside store/ and model/,
# no api/ includes from ctl/ and scale/ — join here as they come true.)
set -eu
cd "$(dirname "$0")/.."

writers=$(grep -rlE 'UPDATE hosts SET ([a-z_]+ = [^,]*, )*state' src/server | sort || true)
if [ "$writers" != "src/server/model/host.c" ]; then
	echo "check-layers: hosts.state must be written only by src/server/model/host.c; written by:" >&2
	echo "$writers" >&2
	exit 1
fi
