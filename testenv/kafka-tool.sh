#!/usr/bin/env bash
# Runs a main class on the Kafka classpath of testenv (Kafka server + kafka-tools jars), e.g.
#
#   testenv/kafka-tool.sh org.apache.kafka.tools.ConsumerPerformance \
#       --bootstrap-server 127.0.0.1:19092 --topic t --messages 100000
#   testenv/kafka-tool.sh org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:19092 --list
#
# The jars are resolved first if needed (testenv/services.sh build kafka). JVM options come from
# FLEETSTREAM_KAFKA_TOOL_OPTS (default -Xmx512m); logging is warnings to stderr.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${FLEETSTREAM_TESTENV_CACHE:-$HERE/.cache}"
if [ $# -eq 0 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
	sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
"$HERE/services.sh" build kafka
if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then JAVA="$JAVA_HOME/bin/java"; else JAVA=java; fi
# shellcheck disable=SC2086 # options are a word list
exec "$JAVA" ${FLEETSTREAM_KAFKA_TOOL_OPTS:--Xmx512m} -Djava.awt.headless=true \
	-Dlog4j2.configurationFile="$HERE/kafka/tools-log4j2.xml" \
	-cp "$CACHE/kafka/lib/*" "$@"
