#!/usr/bin/env bash
# prove-report.sh FILE...: prove over FILE... (unit binaries and bats files,
# all TAP) as `make check` runs them, failing cases shown with their
# diagnostics (bats: the assertion's file and line, the command that
# failed, the case's output), and, when anything failed, those cases again
# at the very end, where a log that is cut to its tail (a CI summary) still
# shows what failed and why, not only which case. Exit status: prove's.
set -uo pipefail
log=$(mktemp "${TMPDIR:-/tmp}/herd-prove.XXXXXX")
trap 'rm -f "$log" "$log.fail"' EXIT
prove --source Executable --timer --failures --comments "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
	# each failing case with every diagnostic line after it ...
	awk '/^\[[0-9:]+\] / { file = $2 }
	     /^not ok/ { print file ": " $0; keep = 1; next }
	     keep && /^#/ { print; next }
	     { keep = 0 }' "$log" >"$log.fail"
	echo
	echo "== failing cases, again, with their diagnostics (at most 300 lines):"
	head -n 300 "$log.fail"
	# ... then only where each failed, last of all: the case, bats' trace
	# down to the command that failed (at most 8 lines), and the case's
	# last line of output (a wait_for's "timed out waiting for: ...")
	echo
	echo "== where they failed:"
	awk 'function flush() {
		if (hdr != "") {
			print hdr
			for (i = 1; i <= nt; i++) print t[i]
			if (last != "") print last
		}
		hdr = ""; nt = 0; last = ""; trace = 0
	}
	/^[^#]/ { flush(); hdr = $0; trace = 1; next }
	trace && nt < 8 { t[++nt] = $0; if ($0 ~ /'"'"' failed$/) trace = 0; next }
	{ trace = 0; last = $0 }
	END { flush() }' "$log.fail" | head -n 120
fi
exit "$rc"
