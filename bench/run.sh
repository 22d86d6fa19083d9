#!/usr/bin/env bash
# bench/run.sh - `make bench`: runs every bench/*.sh in turn and prints what
# each measured next to its reference. Benchmarks never fail the build on a
# figure; a script that breaks is reported and the rest still run.
cd "$(dirname "$0")" || exit 1
rc=0
for b in ./*.sh; do
	[ "$b" = ./run.sh ] && continue
	echo "== ${b#./}"
	if ! bash "$b"; then
		echo "!! ${b#./} failed"
		rc=1
	fi
	echo
done
exit $rc
