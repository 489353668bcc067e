#!/usr/bin/env bash
# with-services.sh CMD... : start Kafka and OpenSearch (services.sh up), export their addresses
# (the lines of env.sh that up prints), run CMD, and stop the services afterwards whatever
# happens. Exits with CMD's status.
# `make test` runs the suite this way.
#
# FLEETSTREAM_TESTENV_KEEP=1 leaves the services running at the end (and their data).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -eq 0 ]; then
	echo "usage: testenv/with-services.sh CMD [ARGS...]" >&2
	exit 2
fi

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	if [ "${FLEETSTREAM_TESTENV_KEEP:-}" = 1 ]; then
		echo "with-services: leaving the services running (FLEETSTREAM_TESTENV_KEEP=1)" >&2
	else
		"$HERE/services.sh" down || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$(date +%s%3N)
# up prints the export lines of env.sh (wherever FLEETSTREAM_TESTENV_RUN puts it).
if ! exports="$("$HERE/services.sh" up)"; then
	echo "with-services: the services did not start (see above)" >&2
	exit 1
fi
ms=$(($(date +%s%3N) - start))
printf 'with-services: Kafka and OpenSearch ready in %d.%01ds\n' $((ms / 1000)) $(((ms % 1000) / 100)) >&2
eval "$exports"

"$@"
status=$?
exit "$status"
