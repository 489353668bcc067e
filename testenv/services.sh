#!/usr/bin/env bash
# Real Apache Kafka (KRaft, one node) and OpenSearch (one node) on 127.0.0.1 for fleetstream's
# integration tests and demo, run from Maven Central jars with the machine's Java (17+).
#
#   services.sh up                   build/cache jars if needed, start both, wait, write env.sh
#                                    (testenv/env.sh; $FLEETSTREAM_TESTENV_RUN/env.sh when set)
#   services.sh down                 stop both and delete their data (logs are kept)
#   services.sh status               show what runs where (exit 3 when not all are up)
#   services.sh stop  kafka|opensearch   stop one service, keeping its data
#   services.sh start kafka|opensearch   start one service again and wait until it is ready
#   services.sh build [kafka|opensearch] only resolve the jars into testenv/.cache
#   services.sh env                  print the export lines of env.sh
#   services.sh pid kafka|opensearch print the pid of the running service (exit 1 if it is not)
#
# `up` prints the export lines on stdout (progress goes to stderr), so
# `eval "$(testenv/services.sh up)"` works as well as `. testenv/env.sh`.
# See testenv/README.md for ports and settings.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${FLEETSTREAM_TESTENV_CACHE:-$HERE/.cache}"
RUN="${FLEETSTREAM_TESTENV_RUN:-$HERE/.run}"
# env.sh goes with the run directory it describes: a session with its own
# FLEETSTREAM_TESTENV_RUN (and ports) must not overwrite, nor `down` delete, the checkout's.
if [ -n "${FLEETSTREAM_TESTENV_RUN:-}" ]; then ENV_FILE="$RUN/env.sh"; else ENV_FILE="$HERE/env.sh"; fi

KAFKA_PORT="${FLEETSTREAM_KAFKA_PORT:-19092}"
KAFKA_SCRAM_PORT="${FLEETSTREAM_KAFKA_SCRAM_PORT:-19093}"
KAFKA_CONTROLLER_PORT="${FLEETSTREAM_KAFKA_CONTROLLER_PORT:-19094}"
OPENSEARCH_PORT="${FLEETSTREAM_OPENSEARCH_PORT:-19200}"
OPENSEARCH_TRANSPORT_PORT="${FLEETSTREAM_OPENSEARCH_TRANSPORT_PORT:-19300}"
KAFKA_HEAP="${FLEETSTREAM_KAFKA_HEAP:--Xms256m -Xmx512m}"
OPENSEARCH_HEAP="${FLEETSTREAM_OPENSEARCH_HEAP:--Xms512m -Xmx1g}"
READY_TIMEOUT="${FLEETSTREAM_TESTENV_TIMEOUT:-180}"
SCRAM_USER="fleet"
SCRAM_PASSWORD="fleet-secret"
SCRAM_MECHANISM="SCRAM-SHA-512"

SERVICES=(kafka opensearch)

log() { echo "testenv: $*" >&2; }
die() { log "$*"; exit 1; }
now_ms() { date +%s%3N; }
since() { local d=$(($(now_ms) - $1)); printf '%d.%01ds' $((d / 1000)) $(((d % 1000) / 100)); }

java_bin() {
	local j
	if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then j="$JAVA_HOME/bin/java"; else j="$(command -v java || true)"; fi
	[ -n "$j" ] || die "java not found: install a JDK 17+ (e.g. apt-get install openjdk-17-jdk-headless) or set JAVA_HOME"
	echo "$j"
}

check_java() {
	local v
	v="$("$JAVA" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
	case "$v" in
	1.* | "" | [0-9] | 1[0-6]) die "need Java 17 or newer, $JAVA is '${v:-unknown}' (set JAVA_HOME)" ;;
	esac
}

# ---------------------------------------------------------------------------------------------
# jars

lib_dir() { echo "$CACHE/$1/lib"; }

# A fingerprint of the Maven description (and launcher sources): the cache is rebuilt when it changes.
fingerprint() {
	(cd "$HERE/$1" && find . -type f \( -name pom.xml -o -path './src/*' \) | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
}

build() {
	local svc=$1 lib stamp t0
	lib="$(lib_dir "$svc")"
	stamp="$(fingerprint "$svc")"
	if [ -f "$lib/.fingerprint" ] && [ "$(cat "$lib/.fingerprint")" = "$stamp" ]; then
		return 0
	fi
	command -v mvn >/dev/null || die "mvn not found: install Maven (e.g. apt-get install maven) to fetch the $svc jars"
	t0=$(now_ms)
	log "$svc: resolving jars with Maven into ${lib#"$PWD"/} (downloads only on the first run) ..."
	mkdir -p "$CACHE/$svc"
	rm -rf "$lib"
	local m2=()
	[ -n "${FLEETSTREAM_TESTENV_M2:-}" ] && m2=("-Dmaven.repo.local=$FLEETSTREAM_TESTENV_M2")
	if ! mvn -B -q -Dstyle.color=never "${m2[@]}" -f "$HERE/$svc/pom.xml" \
		"-Dfleetstream.cache=$CACHE/$svc" package >"$CACHE/$svc/build.log" 2>&1; then
		tail -n 40 "$CACHE/$svc/build.log" >&2
		die "$svc: Maven build failed (full log: $CACHE/$svc/build.log)"
	fi
	echo "$stamp" >"$lib/.fingerprint"
	log "$svc: jars ready in $(since "$t0") ($(find "$lib" -name '*.jar' | wc -l) jars)"
}

# ---------------------------------------------------------------------------------------------
# processes

dir_of() { echo "$RUN/$1"; }
marker() { echo "-Dfleetstream.testenv=$1:$RUN"; }

# pid_of SVC prints the pid of the running service, or fails when it is not running.
pid_of() {
	local f p
	f="$(dir_of "$1")/pid"
	[ -f "$f" ] || return 1
	p="$(cat "$f")"
	[ -n "$p" ] || return 1
	ps -ww -o args= -p "$p" 2>/dev/null | grep -qF -- "$(marker "$1")" || return 1
	echo "$p"
}

running() { pid_of "$1" >/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

main_port() { case $1 in kafka) echo "$KAFKA_PORT" ;; opensearch) echo "$OPENSEARCH_PORT" ;; esac; }

check_ports_free() {
	local svc=$1 p
	local ports=()
	case $svc in
	kafka) ports=("$KAFKA_PORT" "$KAFKA_SCRAM_PORT" "$KAFKA_CONTROLLER_PORT") ;;
	opensearch) ports=("$OPENSEARCH_PORT" "$OPENSEARCH_TRANSPORT_PORT") ;;
	esac
	for p in "${ports[@]}"; do
		if port_open "$p"; then
			die "$svc: port 127.0.0.1:$p is already in use by another program; pick other ports with the FLEETSTREAM_*_PORT variables (see testenv/README.md)"
		fi
	done
}

show_log_tail() {
	local svc=$1 d f
	d="$(dir_of "$svc")/logs"
	for f in "$d"/*.out "$d"/*.log; do
		[ -s "$f" ] || continue
		echo "----- last lines of $f -----" >&2
		tail -n 30 "$f" >&2
	done
}

# ---------------------------------------------------------------------------------------------
# Kafka

kafka_config() {
	local d
	d="$(dir_of kafka)"
	mkdir -p "$d/data" "$d/logs"
	cat >"$d/server.properties" <<EOF
# written by testenv/services.sh: one KRaft node, broker and controller
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SCRAM://127.0.0.1:$KAFKA_SCRAM_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SCRAM://127.0.0.1:$KAFKA_SCRAM_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SCRAM:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
sasl.enabled.mechanisms=$SCRAM_MECHANISM
listener.name.scram.sasl.enabled.mechanisms=$SCRAM_MECHANISM
listener.name.scram.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
# ACLs are enforced (tests deny the SCRAM user on their own resources), yet every resource
# without ACLs stays open to everyone; the PLAINTEXT and CONTROLLER listeners' principal,
# ANONYMOUS, is a super user, so the broker, the controller and plain clients keep full rights
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=true
super.users=User:ANONYMOUS
log.dirs=$d/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
num.network.threads=2
num.io.threads=4
log.retention.hours=24
log.segment.bytes=67108864
EOF
}

kafka_format() {
	local d lib id
	d="$(dir_of kafka)"
	lib="$(lib_dir kafka)"
	[ -f "$d/data/meta.properties" ] && return 0
	# a cluster id is 16 random bytes in URL-safe base64 without padding; one that starts with
	# '-' would read as an option to the storage tool (1 in 64), so draw again (as Kafka does)
	id=-
	while [ "${id#-}" != "$id" ]; do
		id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
	done
	if ! "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$HERE/kafka/tools-log4j2.xml" -cp "$lib/*" \
		kafka.tools.StorageTool format --cluster-id "$id" --config "$d/server.properties" \
		--add-scram "$SCRAM_MECHANISM=[name=$SCRAM_USER,password=$SCRAM_PASSWORD]" \
		>"$d/logs/format.log" 2>&1 9>&-; then
		cat "$d/logs/format.log" >&2
		die "kafka: formatting the storage failed"
	fi
}

kafka_launch() {
	local d lib
	d="$(dir_of kafka)"
	lib="$(lib_dir kafka)"
	kafka_config
	kafka_format
	if [ -f "$d/logs/server.log" ]; then wc -c <"$d/logs/server.log" | tr -d ' ' >"$d/logs/.offset"; else echo 0 >"$d/logs/.offset"; fi
	# shellcheck disable=SC2086 # heap options are a word list
	setsid "$JAVA" "$(marker kafka)" $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
		-XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError \
		-Djava.awt.headless=true -Dkafka.logs.dir="$d/logs" \
		-Dlog4j2.configurationFile="$HERE/kafka/log4j2.xml" \
		-cp "$lib/*" kafka.Kafka "$d/server.properties" \
		</dev/null >>"$d/logs/kafka.out" 2>&1 9>&- &
	echo $! >"$d/pid"
}

# kafka_ready: the broker answers a metadata request (list topics) on the plain listener.
kafka_ready() {
	local logs waited
	logs="$(dir_of kafka)/logs"
	port_open "$KAFKA_PORT" && port_open "$KAFKA_SCRAM_PORT" || return 1
	# Right after a launch, wait for the startup line too (the listeners open before the
	# broker can lead partitions). server.log is appended across restarts, so look only at
	# what this start wrote. A broker that was already running may have rolled its log since,
	# so this check is for fresh starts only. After KAFKA_STARTED_LINE_WAIT seconds a broker
	# that answers metadata requests is taken as ready, with a warning. (grep reads the whole
	# tail, without -q: with pipefail, grep -q leaving early made tail die of SIGPIPE, the
	# pipeline fail, and every restart of a broker that had logged more than a pipe's worth
	# after the line wait the full KAFKA_STARTED_LINE_WAIT: 60 s per restart in the fault
	# tests, once taken for "a restarted broker that never logged the line".)
	if [ "${KAFKA_FRESH:-0}" = 1 ] &&
		! tail -c +"$(($(cat "$logs/.offset" 2>/dev/null || echo 0) + 1))" "$logs/server.log" 2>/dev/null | grep -c 'Kafka Server started' >/dev/null; then
		waited=$(($(date +%s) - ${KAFKA_LAUNCHED_AT:-0}))
		[ "$waited" -ge "${KAFKA_STARTED_LINE_WAIT:-60}" ] || return 1
		kafka_answers || return 1
		log "kafka: no 'Kafka Server started' line after ${waited}s, but the broker answers metadata requests: taken as ready"
		return 0
	fi
	kafka_answers
}

# kafka_answers: a topic listing succeeds on the plain listener.
kafka_answers() {
	timeout 30 "$JAVA" -Xmx128m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$HERE/kafka/tools-log4j2.xml" \
		-cp "$(lib_dir kafka)/*" org.apache.kafka.tools.TopicCommand \
		--bootstrap-server "127.0.0.1:$KAFKA_PORT" --list >/dev/null 2>&1 9>&-
}

# ---------------------------------------------------------------------------------------------
# OpenSearch

opensearch_config() {
	local d
	d="$(dir_of opensearch)"
	mkdir -p "$d/config" "$d/data" "$d/logs"
	cp "$HERE/opensearch/log4j2.properties" "$d/config/log4j2.properties"
	cat >"$d/config/opensearch.yml" <<EOF
# written by testenv/services.sh: one node, loopback only, no security plugin
cluster.name: fleetstream
node.name: fleetstream-1
discovery.type: single-node
network.host: 127.0.0.1
http.port: $OPENSEARCH_PORT
transport.port: $OPENSEARCH_TRANSPORT_PORT
path.data: $d/data
path.logs: $d/logs
cluster.routing.allocation.disk.threshold_enabled: false
action.auto_create_index: true
action.destructive_requires_name: false
EOF
}

opensearch_launch() {
	local d lib
	d="$(dir_of opensearch)"
	lib="$(lib_dir opensearch)"
	opensearch_config
	# The flags follow the distribution's jvm.options where they matter on a laptop.
	# shellcheck disable=SC2086 # heap options are a word list
	setsid "$JAVA" "$(marker opensearch)" $OPENSEARCH_HEAP -XX:+UseG1GC -XX:G1ReservePercent=25 \
		-XX:InitiatingHeapOccupancyPercent=30 -Xss1m -XX:-OmitStackTraceInFastThrow \
		-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Dfile.encoding=UTF-8 -Djna.nosys=true \
		-Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true \
		-Dio.netty.recycler.maxCapacityPerThread=0 -Dio.netty.allocator.numDirectArenas=0 \
		-Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true -Djava.locale.providers=SPI,COMPAT \
		-Dopensearch.path.home="$d" -Dopensearch.path.conf="$d/config" \
		-cp "$lib/*" io.fleetstream.testenv.OpenSearchLauncher \
		</dev/null >>"$d/logs/opensearch.out" 2>&1 9>&- &
	echo $! >"$d/pid"
}

# opensearch_ready: cluster health is at least yellow.
opensearch_ready() {
	local body
	body="$(curl -fsS --max-time 5 "http://127.0.0.1:$OPENSEARCH_PORT/_cluster/health?wait_for_status=yellow&timeout=2s" 2>/dev/null)" || return 1
	grep -qE '"status":"(green|yellow)"' <<<"$body" && ! grep -q '"timed_out":true' <<<"$body"
}

# ---------------------------------------------------------------------------------------------
# one service

is_ready() { "${1}_ready"; }

# start_one SVC: start the service unless it runs, then wait until it is ready.
start_one() {
	local svc=$1 t0 d pid deadline what="ready"
	t0=$(now_ms)
	d="$(dir_of "$svc")"
	build "$svc"
	local fresh=0 launched
	launched=$(date +%s)
	if running "$svc"; then
		what="already running, ready"
	else
		fresh=1
		check_ports_free "$svc"
		mkdir -p "$d/logs"
		echo "===== testenv: $svc starting $(date -u +%FT%TZ) =====" >>"$d/logs/$svc.out"
		"${svc}_launch"
		log "$svc: starting (pid $(cat "$d/pid"), logs in $d/logs)"
	fi
	deadline=$(($(date +%s) + READY_TIMEOUT))
	while :; do
		if ! pid="$(pid_of "$svc")"; then
			# Right after the launch the background child may not have exec'd the JVM yet: its
			# arguments are still the shell's, without the marker. Only a launched process
			# that is gone has exited (CI run 44 stopped here on a live broker).
			if [ "$fresh" = 1 ] && kill -0 "$(cat "$d/pid" 2>/dev/null)" 2>/dev/null &&
				[ "$(date +%s)" -lt $((launched + 10)) ]; then
				sleep 0.1
				continue
			fi
			show_log_tail "$svc"
			die "$svc: the process exited during startup"
		fi
		if KAFKA_FRESH=$fresh KAFKA_LAUNCHED_AT=$launched is_ready "$svc"; then
			break
		fi
		if [ "$(date +%s)" -ge "$deadline" ]; then
			show_log_tail "$svc"
			# Stop only what this call started: a service that was running before stays.
			if [ "$fresh" = 1 ]; then stop_one "$svc" || true; fi
			die "$svc: not ready after ${READY_TIMEOUT}s (FLEETSTREAM_TESTENV_TIMEOUT)"
		fi
		sleep 0.5
	done
	log "$svc: $what on 127.0.0.1:$(main_port "$svc") in $(since "$t0") (pid $pid, rss $(rss_mb "$pid") MiB)"
}

rss_mb() { echo $(($(ps -o rss= -p "$1" 2>/dev/null || echo 0) / 1024)); }

# stop_one SVC: SIGTERM, then SIGKILL after 60 s. Data stays.
stop_one() {
	local svc=$1 pid i d
	d="$(dir_of "$svc")"
	if ! pid="$(pid_of "$svc")"; then
		rm -f "$d/pid"
		return 0
	fi
	log "$svc: stopping (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 600; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$svc: did not stop within 60s, killing it"
		kill -KILL "$pid" 2>/dev/null || true
		sleep 0.2
	fi
	rm -f "$d/pid"
}

# ---------------------------------------------------------------------------------------------
# env

env_lines() {
	cat <<EOF
export FLEETSTREAM_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export FLEETSTREAM_KAFKA_SCRAM_BROKERS=127.0.0.1:$KAFKA_SCRAM_PORT
export FLEETSTREAM_KAFKA_SCRAM_USER=$SCRAM_USER
export FLEETSTREAM_KAFKA_SCRAM_PASSWORD=$SCRAM_PASSWORD
export FLEETSTREAM_KAFKA_SCRAM_MECHANISM=$SCRAM_MECHANISM
export FLEETSTREAM_OPENSEARCH_URL=http://127.0.0.1:$OPENSEARCH_PORT
EOF
	# A run of its own also exports where it runs, so that what runs services.sh again with
	# these variables (testenv.StopService and StartService in fault tests) finds its services.
	if [ -n "${FLEETSTREAM_TESTENV_RUN:-}" ]; then
		local v
		for v in FLEETSTREAM_TESTENV_RUN FLEETSTREAM_TESTENV_CACHE FLEETSTREAM_KAFKA_PORT FLEETSTREAM_KAFKA_SCRAM_PORT \
			FLEETSTREAM_KAFKA_CONTROLLER_PORT FLEETSTREAM_OPENSEARCH_PORT FLEETSTREAM_OPENSEARCH_TRANSPORT_PORT; do
			if [ -n "${!v:-}" ]; then printf 'export %s=%q\n' "$v" "${!v}"; fi
		done
	fi
}

write_env() {
	{
		echo "# written by testenv/services.sh up; source it: . $ENV_FILE"
		env_lines
	} >"$ENV_FILE.tmp"
	mv "$ENV_FILE.tmp" "$ENV_FILE"
}

all_running() {
	local s
	for s in "${SERVICES[@]}"; do running "$s" || return 1; done
}

# ---------------------------------------------------------------------------------------------
# commands

lock() {
	mkdir -p "$RUN"
	exec 9>"$RUN/.lock"
	if command -v flock >/dev/null; then flock 9; fi
}

cmd_up() {
	local t0 s rc=0 pids=()
	t0=$(now_ms)
	for s in "${SERVICES[@]}"; do build "$s"; done
	# the services start in parallel: each JVM mostly waits on itself
	for s in "${SERVICES[@]}"; do
		start_one "$s" &
		pids+=($!)
	done
	for s in "${pids[@]}"; do wait "$s" || rc=1; done
	[ "$rc" -eq 0 ] || die "up failed (see above); stop what runs with: testenv/services.sh down"
	write_env
	log "all services ready in $(since "$t0"); variables in ${ENV_FILE#"$PWD"/}"
	env_lines
}

cmd_down() {
	local s pids=()
	for s in "${SERVICES[@]}"; do
		stop_one "$s" &
		pids+=($!)
	done
	for s in "${pids[@]}"; do wait "$s" || true; done
	rm -f "$ENV_FILE"
	for s in "${SERVICES[@]}"; do
		rm -rf "$(dir_of "$s")/data"
	done
	log "services stopped (data deleted, logs kept in $RUN)"
}

cmd_status() {
	local s pid rc=0
	for s in "${SERVICES[@]}"; do
		if pid="$(pid_of "$s")"; then
			if is_ready "$s"; then
				echo "$s: ready on 127.0.0.1:$(main_port "$s") (pid $pid, rss $(rss_mb "$pid") MiB)"
			else
				echo "$s: running but not ready on 127.0.0.1:$(main_port "$s") (pid $pid)"
				rc=3
			fi
		else
			echo "$s: stopped"
			rc=3
		fi
	done
	return "$rc"
}

check_svc() {
	case "${1:-}" in
	kafka | opensearch) ;;
	*) die "name a service: kafka or opensearch" ;;
	esac
}

usage() {
	sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

main() {
	local cmd="${1:-}"
	[ $# -gt 0 ] && shift
	case "$cmd" in
	up | down | start | stop | build) ;;
	status) JAVA="$(java_bin)"; cmd_status; return ;;
	env) env_lines; return ;;
	pid) check_svc "${1:-}"; pid_of "$1"; return ;;
	*) usage ;;
	esac
	JAVA="$(java_bin)"
	check_java
	lock
	case "$cmd" in
	up) cmd_up ;;
	down) cmd_down ;;
	start)
		check_svc "${1:-}"
		start_one "$1"
		if all_running; then write_env; fi
		;;
	stop)
		check_svc "${1:-}"
		stop_one "$1"
		log "$1: stopped (data kept; testenv/services.sh start $1 brings it back)"
		;;
	build)
		if [ $# -gt 0 ]; then check_svc "$1"; build "$1"; else for s in "${SERVICES[@]}"; do build "$s"; done; fi
		;;
	esac
}

main "$@"
