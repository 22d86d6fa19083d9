#!/usr/bin/env bash
# check-layers.sh - fails (exit 1, naming the files) when the server's
# layering rules (docs/architecture.md, "Server: the layers") are broken:
#   1. controllers (ctl/, scale/) and the model (model/) never include api/;
#   2. SQL statements live only in store/ and model/;
#   3. hosts.state is written only by model/host.c, the host state machine;
#   4. libpq (PostgreSQL) is called only by its store backend, store-pg.c.
# `make check` runs it.
set -eu
cd "$(dirname "$0")/.."
rc=0

includes=$(grep -rn '#include "api/' src/server/ctl src/server/scale src/server/model || true)
if [ -n "$includes" ]; then
	echo "check-layers: controllers and the model must not include api/ headers:" >&2
	echo "$includes" >&2
	rc=1
fi

sql=$(grep -rlE '"(SELECT|INSERT|UPDATE|DELETE) ' src/server | grep -v -e /store/ -e /model/ || true)
if [ -n "$sql" ]; then
	echo "check-layers: SQL belongs to src/server/model/ (or store/); found in:" >&2
	echo "$sql" >&2
	rc=1
fi

writers=$(grep -rlE 'UPDATE hosts SET ([a-z_]+ = [^,]*, )*state' src/server | sort || true)
if [ "$writers" != "src/server/model/host.c" ]; then
	echo "check-layers: hosts.state must be written only by src/server/model/host.c; written by:" >&2
	echo "$writers" >&2
	rc=1
fi
pq=$(grep -rlE '#include <libpq|\<PQ[a-z]+\(' src | grep -v '^src/server/store/store-pg.c$' || true)
if [ -n "$pq" ]; then
	echo "check-layers: libpq belongs to src/server/store/store-pg.c; called in:" >&2
	echo "$pq" >&2
	rc=1
fi
exit $rc
