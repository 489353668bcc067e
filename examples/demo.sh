#!/usr/bin/env bash
# make demo: start Kafka and OpenSearch (testenv), replay the Porto taxi sample and a
# simulated fleet into Kafka, run the fleet pipeline until the topic is drained, and print
# a summary read back from OpenSearch. The services stay up afterwards so you can look at
# the data; `make services-down` stops them.
#
# Environment: DEMO_TOPIC (cab-telemetry-demo-<time>), DEMO_GROUP (fleetpipeline-demo-<time>),
# DEMO_SIM_EVENTS (500000), DEMO_INDEX_TAG (none). Documents have the same ids in every run
# (pipeline name, key, window), so a second run updates them instead of adding more.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each run replays the same event times (Porto 2013, then the simulated fleet), so it gets a
# topic and group of its own: appending old event times behind newer ones in one topic would
# make them late, as it would in production.
run=$(date +%Y%m%d-%H%M%S)
topic=${DEMO_TOPIC:-cab-telemetry-demo-$run}
group=${DEMO_GROUP:-fleetpipeline-demo-$run}
sim=${DEMO_SIM_EVENTS:-500000}
tag=()
if [ -n "${DEMO_INDEX_TAG:-}" ]; then tag=(-index-tag "$DEMO_INDEX_TAG"); fi

echo "== 1/4 starting Kafka and OpenSearch (testenv)"
# up prints the export lines of env.sh (testenv/env.sh, or in $FLEETSTREAM_TESTENV_RUN).
exports=$(./testenv/services.sh up)
eval "$exports"
echo "   Kafka $FLEETSTREAM_KAFKA_BROKERS, OpenSearch $FLEETSTREAM_OPENSEARCH_URL"

mkdir -p bin
go build -o bin/ ./examples/replay ./examples/fleetpipeline ./examples/fleetreport

echo "== 2/4 replaying the Porto sample and $sim simulated events into $topic, ride requests into $topic-requests, the fleet registry into cab-registry"
bin/replay -topic "$topic" -source porto,sim -sim-events "$sim" -requests-topic "$topic-requests" -registry-topic cab-registry

echo "== 3/4 running the fleet pipeline until the topic is drained"
start=$(date +%s%3N)
bin/fleetpipeline -topic "$topic" -requests-topic "$topic-requests" -registry-topic cab-registry -group "$group" -exit-when-idle 5s "${tag[@]}"
ms=$(($(date +%s%3N) - start))
echo "   pipeline finished in $((ms / 1000)).$(((ms % 1000) / 100)) s"

echo "== 4/4 summary from OpenSearch"
bin/fleetreport "${tag[@]}"

u=$FLEETSTREAM_OPENSEARCH_URL
cat <<TXT

Look at the data:
  curl -s '$u/_cat/indices/cab-*,zone-*?v'
  curl -s '$u/cab-stats-*/_search?size=3&sort=max_speed_kmh:desc&pretty'
  curl -s '$u/cab-alerts-*/_search?q=type:speeding&size=3&pretty'
  curl -s '$u/zone-supply-*/_search?size=3&sort=requests:desc&pretty'
  curl -s '$u/ride-pickups-*/_search?size=0&pretty' -H 'Content-Type: application/json' \\
       -d '{"aggs":{"wait":{"percentiles":{"field":"wait_s"}}}}'
  curl -s '$u/zone-demand-*/_search?size=0&pretty' -H 'Content-Type: application/json' \\
       -d '{"aggs":{"grid":{"geohash_grid":{"field":"location","precision":5}}}}'
Dashboards: with Docker, 'make services-down && docker compose up -d --wait' gives Kafka and
OpenSearch on the same ports as testenv plus OpenSearch Dashboards on http://127.0.0.1:15601;
run 'make demo' again, then 'make dashboards' to import the saved objects (dashboard
"fleetstream: cab fleet").
Stop the services: make services-down
TXT
