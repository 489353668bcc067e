#!/usr/bin/env bash
# concurrently.sh CMD... : run each CMD (one shell command line per argument) at the same
# time, each with its output kept aside, then print each one's output in the order given,
# headed by the command, its time and its exit status. Exits 0 if every CMD did, else with
# the status of the first (in the order given) that failed.
#
# `make test` runs its steps that leave the CPU idle (the fault tests wait on service
# restarts) beside those that need the CPU and no service (lint, fuzzing).
set -uo pipefail
if [ $# -eq 0 ]; then
	echo "usage: testenv/concurrently.sh CMD [CMD...]" >&2
	exit 2
fi
dir=$(mktemp -d)
pids=()
# shellcheck disable=SC2317 # called by the traps
stop() {
	for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || kill "$p" 2>/dev/null; done
	rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

set -m # each CMD in a process group of its own, so that stop ends its children too
i=0
for cmd in "$@"; do
	(
		start=$(date +%s)
		bash -c "$cmd" >"$dir/$i.out" 2>&1
		rc=$?
		echo "$rc $(($(date +%s) - start))" >"$dir/$i.rc"
	) &
	pids+=($!)
	i=$((i + 1))
done
set +m

status=0
i=0
for cmd in "$@"; do
	wait "${pids[$i]}"
	read -r rc secs <"$dir/$i.rc" || { rc=1 secs=?; }
	echo "== $cmd (${secs}s, exit $rc)"
	cat "$dir/$i.out"
	if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then
		status=$rc
	fi
	i=$((i + 1))
done
pids=()
exit "$status"
