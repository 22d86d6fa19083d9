#!/usr/bin/env bash
# check-banned.sh [DIR...] - fails (exit 1, each use on stderr as FILE:LINE)
# when C sources call a function banned from herd: unbounded copies and
# formats (strcpy, strcat, sprintf, gets) and conversions that cannot report
# an error (atoi, atol, atoll, atof). Use snprintf, memcpy with a checked length, and
# strtol/strtoll with range checks. Comment lines are not looked at. `make
# check` runs it on src/ (the default).
set -eu

banned='strcpy|strcat|sprintf|atoi|atoll|atol|atof|gets'
[ $# -gt 0 ] || set -- src

# a call: the name not preceded by an identifier character (so snprintf,
# vsnprintf and my_atoi pass) and followed by "("; comment lines are skipped
hits=$(grep -rnE --include='*.c' --include='*.h' \
	"(^|[^A-Za-z0-9_])($banned)[[:space:]]*\\(" "$@" |
	grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/?\*|//)' || true)
if [ -n "$hits" ]; then
	echo "$hits" >&2
	echo "check-banned: $(printf '%s\n' "$hits" | wc -l) use(s) of a banned function ($banned)" >&2
	exit 1
fi
