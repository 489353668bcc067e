#!/usr/bin/env bash
# Compares the kafka.Source pipeline with Kafka's own ConsumerPerformance on the same topic:
# fills a 6-partition topic with 1,000,000 records of ~200 bytes, consumes it with
# BenchmarkSource (no-op sink) and with org.apache.kafka.tools.ConsumerPerformance, and prints
# records/s, MB/s, their ratio and the Go process's peak RSS. Needs the testenv services
# (./testenv/services.sh up).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
env_sh="${FLEETSTREAM_TESTENV_RUN:-testenv}/env.sh" # where services.sh up wrote it
# shellcheck disable=SC1090
[ -f "$env_sh" ] && . "$env_sh"
: "${FLEETSTREAM_KAFKA_BROKERS:?start the services: ./testenv/services.sh up}"
TOPIC="fs-bench-$(date +%s)-$$"
export FLEETSTREAM_BENCH_TOPIC="$TOPIC"
cleanup() {
	testenv/kafka-tool.sh org.apache.kafka.tools.TopicCommand --bootstrap-server "$FLEETSTREAM_KAFKA_BROKERS" \
		--delete --topic "$TOPIC" >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "filling $TOPIC (1,000,000 records, 6 partitions)..." >&2
go test -count=1 -tags benchfill -run '^TestFillBenchTopic$' ./kafka/ >/dev/null

# One read of the topic first, not measured: on a broker that just started, whichever consumer
# reads first pays for its warm-up (the run right after `services.sh up` measured 0.67x, the
# next two 1.35x and 1.13x).
echo "warming the broker (one ConsumerPerformance read, not measured)..." >&2
testenv/kafka-tool.sh org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$FLEETSTREAM_KAFKA_BROKERS" \
	--topic "$TOPIC" --messages 1000000 --group "fs-bench-warm-$$" --timeout 60000 >/dev/null 2>&1 || true

echo "fleetstream (BenchmarkSource)..." >&2
GO_OUT="$(go test -count=1 -run '^$' -bench '^BenchmarkSource$' -benchtime 1x ./kafka/ | grep '^BenchmarkSource')"
echo "$GO_OUT" >&2

echo "ConsumerPerformance..." >&2
CP_OUT="$(testenv/kafka-tool.sh org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$FLEETSTREAM_KAFKA_BROKERS" \
	--topic "$TOPIC" --messages 1000000 --group "fs-bench-cp-$$" --timeout 60000 2>/dev/null | tail -1)"
echo "$CP_OUT" >&2

metric() { awk -v u="$2" '{for (i = 2; i <= NF; i++) if ($i == u) print $(i-1)}' <<<"$1"; }
GO_RPS="$(metric "$GO_OUT" records/s)"
GO_MBS="$(metric "$GO_OUT" MB/s)"
GO_RSS="$(metric "$GO_OUT" VmHWM-MiB)"
# start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
# rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec (its MB are MiB)
field() { awk -F', ' -v i="$1" '{print $i}' <<<"$CP_OUT"; }
CP_MBS="$(field 4)"
CP_RPS="$(field 6)"
CP_FETCH_RPS="$(field 10)"
awk -v grps="$GO_RPS" -v gmbs="$GO_MBS" -v grss="$GO_RSS" -v crps="$CP_RPS" -v cmbs="$CP_MBS" -v cfrps="$CP_FETCH_RPS" 'BEGIN {
	printf "%-28s %12s %10s\n", "", "records/s", "MB/s"
	printf "%-28s %12.0f %10.1f   (peak RSS %.0f MiB)\n", "fleetstream kafka.Source", grps, gmbs, grss
	printf "%-28s %12.0f %10.1f   (fetch only: %.0f records/s)\n", "Kafka ConsumerPerformance", crps, cmbs * 1.048576, cfrps
	printf "%-28s %12.2fx\n", "ratio (records/s)", grps / crps
}'
