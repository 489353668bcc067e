#!/usr/bin/env bash
# make bench-e2e: end-to-end benchmark of examples/fleetpipeline against the real Kafka and
# OpenSearch of testenv. It starts the services, produces the `make demo` data once (the Porto
# sample + BENCH_SIM_EVENTS simulated events) to a fresh topic and measures
#
#  1. drain: fleetpipeline reads the whole topic and exits 2 s after it caught up
#     (-exit-when-idle), BENCH_DRAINS times, each with a group and indexes of its own (the
#     last line gives the median); events/s, CPU-seconds (user+sys of the fleetpipeline process) per
#     million events, peak RSS;
#  2. follow: for each rate of BENCH_RATES, fleetpipeline runs on an empty fresh topic while
#     `replay -source sim -rate R` produces about BENCH_FOLLOW_SECONDS worth of events; the
#     pipeline's own "window close to cab stats acknowledged: median, p99" line gives the
#     latency from a window's closing batch to its cab-stats documents acknowledged.
#
# How the drain time is measured: fleetpipeline's summary counts from before it connects,
# and includes the consumer group join and the idle wait. Its stderr (run with -v and a
# status line every 100 ms) is time-stamped line by line as it arrives, and
#   drain = (last batch done) - (first record of the topic read) - (idle gap)
# as issue 15 defines it ("from first record to last document acknowledged"). Until
# 2026-12-05 it counted from the first partition assigned (of the input or of the
# repartition's consumer, the job's two group members), so it also held the group's second
# join when the repartition's consumer joined first (about 0.3 s in most runs: the first
# member learns of the rebalance at its next heartbeat) and the Kafka client's wait before
# its first fetch (0.1 s); the report gives that figure and the time between the two beside.
# where the idle gap is the part of the -exit-when-idle wait during which every consumed
# record had already been processed (the first status line whose total equals the final
# count, to 100 ms). The time after the input ends, when the remaining windows close and
# their documents are written, counts: the drain ends at the last document acknowledged,
# the end of the run's last batch (its outputs written, its commit started). Until
# 2026-12-05 it ended at the summary, printed once the Kafka clients had closed too (about
# 0.1 s later); the report gives that figure beside it.
#
# Before the drain, unmeasured warm-up runs (drains of the Porto sample and
# BENCH_WARMUP_EVENTS simulated events, on a topic of their own, each into indexes of its own,
# until one is not 5 % faster than the one before, at most BENCH_WARMUP_RUNS) warm the
# services' JVMs, as a running deployment's are (one run of simulated events left them at
# half speed on 2026-12-05: 172,544 events/s against 296,848 on services up for hours), and
# the script waits (at most BENCH_SETTLE seconds) until Kafka and OpenSearch together use
# less than a tenth of a core for two seconds in a row. The first drain after `services.sh up`
# found OpenSearch still compiling: 21 CPU-s of OpenSearch during a 15 s drain after a
# 100,000-event warm-up without the wait, and its first bulks took 1.3-1.9 s instead of
# 0.1-0.3. The measured drain still creates its own indexes.
#
# CPU and peak RSS come from /usr/bin/time -v (GNU time); without it, from polling
# /proc/<pid>/stat and VmHWM in /proc/<pid>/status every 100 ms (CPU of the last 100 ms lost).
# The CPU time Kafka and OpenSearch use while fleetpipeline drains (their /proc/<pid>/stat
# before and after the run) is reported beside it: the services share the machine's cores
# with the job, so the drain cannot be faster than the cores can serve all three. Of each,
# the part its JIT compiler threads used is shown (their /proc/<pid>/task/*/stat): after a
# dozen drains both JVMs still compiled 50-200 methods a drain on 2026-12-06 (Kafka 0.1-0.4,
# OpenSearch 0.45-0.5 CPU-s), each drain's new topics and indexes taking paths still cold,
# work a long-running deployment's services do not do for each batch. After the
# drain, bench/osfloor has OpenSearch index the drain's documents again, alone (best of three
# runs, with its CPU time): the floor that indexing puts under a drain on this machine.
#
# Environment: BENCH_SIM_EVENTS (500000), BENCH_WARMUP_EVENTS (1000000; 0: no warm-up),
# BENCH_WARMUP_RUNS (10), BENCH_DRAINS (3: drains measured, their median reported),
# BENCH_SETTLE (120), BENCH_RATES ("20000 100000"), BENCH_FOLLOW_SECONDS
# (10), BENCH_FLAGS (more fleetpipeline flags for every run, e.g. "-max-batch 100000"),
# BENCH_IDLE (2s: -exit-when-idle of the drain), BENCH_FOLLOW_IDLE (10s: of the follow
# runs; long enough for replay to generate its events), BENCH_DIR (.bench/e2e-<time>: logs),
# FLEETSTREAM_TESTENV_KEEP=1 (leave the services running), and testenv's FLEETSTREAM_*_PORT.
# The last line is
#   bench-e2e: drain N events/s, C CPU-s per million events, peak RSS M MiB, p99 L ms at R/s
# with R the highest rate of BENCH_RATES (100000 by default).
set -euo pipefail
cd "$(dirname "$0")/.."

run=$(date +%Y%m%d-%H%M%S)
sim=${BENCH_SIM_EVENTS:-500000}
warmup=${BENCH_WARMUP_EVENTS:-1000000}
warmup_runs=${BENCH_WARMUP_RUNS:-10}
drains=${BENCH_DRAINS:-3}
[[ $drains =~ ^[1-9][0-9]*$ ]] || { echo "bench-e2e: BENCH_DRAINS: $drains: want a positive integer" >&2; exit 1; }
settle_max=${BENCH_SETTLE:-120}
read -r -a rates <<<"${BENCH_RATES:-20000 100000}"
for r in "${rates[@]}"; do
	[[ $r =~ ^[1-9][0-9]*$ ]] || { echo "bench-e2e: BENCH_RATES: $r: want events per second, a positive integer" >&2; exit 1; }
done
read -r -a extra <<<"${BENCH_FLAGS:-}"
follow_s=${BENCH_FOLLOW_SECONDS:-10}
idle=${BENCH_IDLE:-2s}
follow_idle=${BENCH_FOLLOW_IDLE:-10s}
dir=${BENCH_DIR:-.bench/e2e-$run}
mkdir -p "$dir"

log() { echo "bench-e2e: $*" >&2; }
die() { log "$*"; exit 1; }
seconds() { # a Go duration of hours, minutes, seconds and milliseconds (2s, 500ms, 1m30s) in seconds
	awk -v d="$1" 'BEGIN {
		if (d !~ /^([0-9]+(\.[0-9]*)?(h|m|s|ms))+$/) exit 1
		while (d != "") {
			match(d, /^[0-9.]+/); v = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
			if (d ~ /^ms/) { t += v / 1000; d = substr(d, 3) }
			else { u = substr(d, 1, 1); t += v * (u == "h" ? 3600 : u == "m" ? 60 : 1); d = substr(d, 2) }
		}
		print t + 0
	}'
}
idle_s=$(seconds "$idle") || die "BENCH_IDLE=$idle: want a Go duration, e.g. 2s, 500ms or 1m30s"

# ---------------------------------------------------------------------------------------------
# services and cleanup

started=0
children=()
killtree() { # the process and its descendants (fleetpipeline runs under /usr/bin/time)
	local c
	for c in $(pgrep -P "$1" 2>/dev/null); do killtree "$c"; done
	kill -TERM "$1" 2>/dev/null || true
}
cleanup() {
	local p
	for p in "${children[@]}"; do killtree "$p"; done
	if [ "$started" = 1 ] && [ "${FLEETSTREAM_TESTENV_KEEP:-}" != 1 ]; then
		log "stopping the services (FLEETSTREAM_TESTENV_KEEP=1 keeps them)"
		./testenv/services.sh down >/dev/null 2>&1 || true
	elif [ "$started" = part ]; then
		log "leaving the services up: one of them was running before bench-e2e started (stop both with testenv/services.sh down)"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# started: 1 when neither service ran before (cleanup stops both), "part" when one of them
# did: services.sh down stops both together, so cleanup then leaves them up rather than stop
# a service someone else started.
running=$(./testenv/services.sh status 2>/dev/null | grep -c ': ready' || true)
case $running in
0) started=1 ;;
1) started=part ;;
esac
log "starting Kafka and OpenSearch (testenv)"
# Not eval "$(services.sh up)" || ...: eval of the empty output of a failed up succeeds.
exports=$(./testenv/services.sh up 2>"$dir/services.log") || { cat "$dir/services.log" >&2; die "testenv failed"; }
eval "$exports"
brokers=$FLEETSTREAM_KAFKA_BROKERS
osurl=$FLEETSTREAM_OPENSEARCH_URL
log "Kafka $brokers, OpenSearch $osurl, logs in $dir"

mkdir -p bin
go build -o bin/ ./examples/replay ./examples/fleetpipeline ./bench/osfloor

# ---------------------------------------------------------------------------------------------
# measuring one fleetpipeline run

# stamp prefixes each line of its input with the time it arrived (seconds since the epoch).
stamp() {
	local l
	while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done
}

# measured OUT CMD... runs CMD, writing "user_s sys_s maxrss_kib" to OUT; CMD's stderr stays.
if [ -x /usr/bin/time ] && /usr/bin/time -v -o /dev/null true 2>/dev/null; then
	measured() {
		local out=$1 rc=0
		shift
		/usr/bin/time -v -o "$out.time" "$@" || rc=$?
		awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } /Maximum resident/ { m = $2 }
			END { print u, s, m }' "$out.time" >"$out"
		return "$rc"
	}
else
	measured() {
		local out=$1 pid hz u=0 s=0 m=0 st rc=0
		shift
		hz=$(getconf CLK_TCK)
		"$@" &
		pid=$!
		while kill -0 "$pid" 2>/dev/null; do
			if st=$(cat "/proc/$pid/stat" 2>/dev/null); then
				read -r u s <<<"$(echo "${st##*) }" | awk '{ print $12, $13 }')"
				m=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo "$m")
			fi
			sleep 0.1
		done
		wait "$pid" || rc=$?
		echo "$((u / hz)).$(printf '%02d' $((u % hz * 100 / hz))) $((s / hz)).$(printf '%02d' $((s % hz * 100 / hz))) $m" >"$out"
		return "$rc"
	}
fi

# cpu_of PID prints the CPU-seconds (user+sys) the process has used so far, or - when the
# process is unknown or gone (the report then shows - for that service, not 0).
cpu_of() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || { echo -; return; }
	echo "${st##*) }" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($12 + $13) / hz }'
}
# The services' process ids, looked up once (0 if unknown: their CPU then reads -).
kafka_pid=$(./testenv/services.sh pid kafka 2>/dev/null) || { kafka_pid=0; log "Kafka's process id not found: its CPU time is not reported"; }
opensearch_pid=$(./testenv/services.sh pid opensearch 2>/dev/null) || { opensearch_pid=0; log "OpenSearch's process id not found: its CPU time is not reported"; }
# services_cpu prints "kafka_s opensearch_s", the CPU-seconds the two services have used so far.
services_cpu() { echo "$(cpu_of "$kafka_pid") $(cpu_of "$opensearch_pid")"; }
# jit_of PID prints the CPU-seconds the JVM's JIT compiler threads (HotSpot's "C1/C2
# CompilerThreadN") have used so far, or - when the process is unknown or gone. A JVM that has
# run for hours compiles little; the services of a benchmark keep compiling for many drains
# (each creates topics and indexes, whose code paths are cold), and that CPU is not the job's
# workload: the report shows it beside each service's total.
jit_of() {
	[ -d "/proc/$1/task" ] && [ "$1" != 0 ] || { echo -; return; }
	local t st total=0
	for t in /proc/"$1"/task/*; do
		case "$(cat "$t/comm" 2>/dev/null)" in
		C[12]\ CompilerThre*)
			# The name, in parentheses, holds a space: the fields counted after it.
			st=$(cat "$t/stat" 2>/dev/null) || continue
			total=$((total + $(echo "${st##*) }" | awk '{ print $12 + $13 }')))
			;;
		esac
	done
	awk -v t="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f\n", t / hz }'
}
services_jit() { echo "$(jit_of "$kafka_pid") $(jit_of "$opensearch_pid")"; }
# used A B [N] prints the CPU-seconds used between two readings of cpu_of (divided by N), or -
# if either is unknown.
used() {
	awk -v a="$1" -v b="$2" -v n="${3:-1}" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.2f\n", (b - a) / n }'
}

# settle waits until Kafka and OpenSearch together used under 0.1 CPU-s in each of two
# seconds in a row (their JIT compilers done), at most settle_max seconds; it logs the wait.
settle() {
	local t0=$SECONDS quiet=0 a b
	if [ "$kafka_pid" = 0 ] || [ "$opensearch_pid" = 0 ]; then
		log "not waiting for the services to go quiet: their CPU time cannot be read"
		return
	fi
	while [ $((SECONDS - t0)) -lt "$settle_max" ] && [ "$quiet" -lt 2 ]; do
		a=$(services_cpu)
		sleep 1
		b=$(services_cpu)
		if awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); exit !((y[1] - x[1]) + (y[2] - x[2]) < 0.1) }'; then
			quiet=$((quiet + 1))
		else
			quiet=0
		fi
	done
	if [ "$quiet" -ge 2 ]; then
		log "the services are quiet after $((SECONDS - t0)) s"
	else
		log "the services did not go quiet in ${settle_max} s; measuring anyway"
	fi
}

# pipeline TAG IDLE LOG: fleetpipeline on topic bench-TAG, stderr time-stamped into LOG,
# resources into LOG.res.
pipeline() { # TAG IDLE OUT [TOPIC]: one run of fleetpipeline, its own group and indexes
	local tag=$1 idle=$2 out=$3 topic=${4:-bench-$1}
	measured "$out.res" bin/fleetpipeline -brokers "$brokers" -opensearch "$osurl" \
		-topic "$topic" -group "bench-$tag" -index-tag "b$tag" -http '' \
		-exit-when-idle "$idle" -status-every 100ms -v "${extra[@]}" 2>&1 | stamp >"$out"
}

consumed() { sed -n 's/.*fleetpipeline: consumed \([0-9]*\) records.*/\1/p' "$1"; }

# awk's ms(d): a Go duration (850µs, 77ms, 1.2s, 1m2.5s) in milliseconds.
awk_ms='function ms(d) {
	if (d ~ /ms$/) return substr(d, 1, length(d) - 2) + 0
	if (d ~ /(µs|us)$/) { sub(/(µs|us)$/, "", d); return d / 1000 }
	if (d ~ /ns$/) return substr(d, 1, length(d) - 2) / 1e6
	if (d ~ /m[0-9.]+s$/) { split(d, a, "m"); return (a[1] * 60 + substr(a[2], 1, length(a[2]) - 1)) * 1000 }
	if (d ~ /s$/) return substr(d, 1, length(d) - 1) * 1000
	return d + 0
}'

# latency LOG prints "p50_ms p99_ms batches" from the summary.
latency() {
	awk "$awk_ms"'
		/window close to cab stats acknowledged/ {
			for (i = 1; i <= NF; i++) { if ($i == "median") m = $(i + 1); if ($i == "p99") p = $(i + 1) }
			sub(/,$/, "", m); n = $(NF - 1); sub(/^\(/, "", n)
			printf "%.1f %.1f %d\n", ms(m), ms(p), n; found = 1
		}
		END { if (!found) print "- - 0" }' "$1"
}

# ---------------------------------------------------------------------------------------------
# 1. drain

if [ "$warmup" -gt 0 ]; then
	log "warming the services up: the Porto sample and $warmup simulated events through fleetpipeline, $warmup_runs times (not measured)"
	bin/replay -brokers "$brokers" -topic "bench-warmup-$run" -source porto,sim -sim-events "$warmup" -quiet 2>&1 | tail -n 1 >&2
	# Until a run is not 5 % faster than the one before (the JVMs keep compiling for minutes
	# after they start: on fresh services the first runs took 8.96, 5.49 and 4.39 s), at most
	# BENCH_WARMUP_RUNS runs.
	prev=
	for i in $(seq "$warmup_runs"); do
		pipeline "warmup$i-$run" "$idle" "$dir/warmup$i.log" "bench-warmup-$run" || { tail -n 20 "$dir/warmup$i.log" >&2; die "fleetpipeline failed on the warm-up"; }
		took=$(awk '/kafka: first record/ && !t0 { t0 = $1 }
			/fleetpipeline: batch done/ && !/ records=0 / { last = $1 }
			END { if (t0 && last) printf "%.2f", last - t0; else print 0 }' "$dir/warmup$i.log")
		log "warm-up run $i: ${took} s from its first record to its last batch with records"
		if [ -n "$prev" ] && awk -v a="$took" -v b="$prev" 'BEGIN { exit !(a > 0.95 * b) }'; then
			break
		fi
		prev=$took
	done
fi
settle

topic=bench-drain-$run
log "producing the demo data (Porto + $sim simulated events) to $topic"
bin/replay -brokers "$brokers" -topic "$topic" -source porto,sim -sim-events "$sim" -quiet 2>&1 | tail -n 1 >&2
# drain I: drain number I of the topic (its own group and indexes), setting the d_* figures,
# the services' k_* and o_* CPU, and n, the records it consumed.
drain() {
	read -r k0 o0 <<<"$(services_cpu)"
	read -r kj0 oj0 <<<"$(services_jit)"
	pipeline "drain$1-$run" "$idle" "$dir/drain$1.log" "$topic" || { tail -n 20 "$dir/drain$1.log" >&2; die "fleetpipeline failed on drain $1"; }
	read -r k1 o1 <<<"$(services_cpu)"
	read -r kj1 oj1 <<<"$(services_jit)"
	n=$(consumed "$dir/drain$1.log")
	[ -n "$n" ] && [ "$n" -gt 0 ] || die "drain $1 consumed nothing (see $dir/drain$1.log)"
	read -r d_s d_rate d_close d_old_rate d_join d_join_rate <<<"$(awk -v n="$n" -v idle="$idle_s" -v topic="$topic" '
		/kafka: partition assigned/ && !ta { ta = $1 }
		/kafka: first record/ && index($0, " topic=" topic " ") && !t0 { t0 = $1 }
		/fleetpipeline: running/ && !run { run = $1 }
		/ending the input/ && !tin { tin = $1 }
		/ rec\/s  total / && !tdone { for (i = 1; i <= NF; i++) if ($i == "total" && $(i + 1) == n) tdone = $1 }
		/fleetpipeline: batch done/ { tlast = $1 }
		/fleetpipeline: consumed/ { tend = $1 }
		END {
			if (!ta) ta = run
			if (!t0) t0 = ta
			if (!tlast) tlast = tend
			gap = 0
			if (tin && tdone && tdone < tin) { from = tin - idle; if (tdone > from) from = tdone; gap = tin - from }
			d = tlast - t0 - gap
			printf "%.2f %.0f %.2f %.0f %.2f %.0f\n", d, n / d, tend - tlast, n / (tend - t0 - gap), t0 - ta, n / (tlast - ta - gap)
		}' "$dir/drain$1.log")"
	read -r d_u d_sys d_kib <"$dir/drain$1.log.res"
	d_cpu=$(awk -v u="$d_u" -v s="$d_sys" 'BEGIN { printf "%.2f", u + s }')
	d_cpum=$(awk -v c="$d_cpu" -v n="$n" 'BEGIN { printf "%.1f", c / n * 1e6 }')
	d_rss=$((d_kib / 1024))
	# The wall time of the whole run (summary printed minus "running"), to put the CPU in.
	d_wall=$(awk '/fleetpipeline: running/ && !run { run = $1 } /fleetpipeline: consumed/ { tend = $1 }
		END { printf "%.2f", tend - run }' "$dir/drain$1.log")
	# Where the drain's batches spent their time, from the -v "batch done" lines: processing (the
	# graph), outputs (OpenSearch bulks, Kafka sends), commits (each runs beside the next batch;
	# the time batches still waited for them), and the batches that took records. (Lines without
	# the commit figures, from before they existed, count 0.)
	read -r d_batches d_proc d_out d_commit d_wait <<<"$(awk "$awk_ms"'
		/fleetpipeline: batch done/ {
			r = 0; pt = 0; ot = 0; ct = 0; cw = 0
			for (i = 1; i <= NF; i++) {
				split($i, kv, "=")
				if (kv[1] == "records") r = kv[2] + 0
				if (kv[1] == "processing") pt = ms(kv[2])
				if (kv[1] == "output") ot = ms(kv[2])
				if (kv[1] == "commit") ct = ms(kv[2])
				if (kv[1] == "commit_wait") cw = ms(kv[2])
			}
			if (r > 0) nb++
			proc += pt; out += ot; com += ct; wait += cw
		}
		END { printf "%d %.2f %.2f %.2f %.2f\n", nb, proc / 1000, out / 1000, com / 1000, wait / 1000 }' "$dir/drain$1.log")"
	k_cpu=$(used "$k0" "$k1")
	o_cpu=$(used "$o0" "$o1")
	k_jit=$(used "$kj0" "$kj1")
	o_jit=$(used "$oj0" "$oj1")
}

# BENCH_DRAINS drains, one after the other; the report gives each one's figures, and its last
# line the median throughput and CPU per million events and the highest peak RSS: one drain's
# figures moved by 10-20 % from run to run on 2026-12-07 (the services' state, the machine's
# own noise), more than the changes they were meant to show.
drates=() cpums=() rsss=() drows=()
for i in $(seq "$drains"); do
	log "draining $topic ($i of $drains)"
	drain "$i"
	[ "$i" = 1 ] || [ "$n" = "$n1" ] || die "drain $i consumed $n records, drain 1 $n1"
	n1=$n
	# The median of CPU per million events from the CPU-seconds, not from d_cpum, rounded to
	# one decimal (1.06, 1.19 and 1.29 gave 1.20).
	drates+=("$d_rate") cpums+=("$(awk -v c="$d_cpu" -v n="$n" 'BEGIN { printf "%.4f", c / n * 1e6 }')") rsss+=("$d_rss")
	drows+=("$(printf '| drain %d (Porto + %s sim) | %s in %s s | %s events/s | - | %s (%s CPU-s) | %d |' "$i" "$sim" "$n" "$d_s" "$d_rate" "$d_cpum" "$d_cpu" "$d_rss")")
	[ "$i" = "$drains" ] || settle
done
# median prints the median of its arguments, in full (awk's print of a mean of two would round
# it to 6 digits: 1234567.5 as 1.23457e+06).
median() { printf '%s\n' "$@" | LC_ALL=C sort -g | awk '{ v[NR] = $1 } END { printf "%.6f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
m_rate=$(median "${drates[@]}")
m_rate=$(awk -v r="$m_rate" 'BEGIN { printf "%.0f", r }')
m_cpum=$(awk -v c="$(median "${cpums[@]}")" 'BEGIN { printf "%.2f", c }')
m_rss=$(printf '%s\n' "${rsss[@]}" | sort -n | tail -n 1)

# The floor under the drain: OpenSearch alone indexing the drain's documents (bench/osfloor,
# three runs into fresh copies of the drain's indexes), with its CPU time per run.
settle
log "OpenSearch alone: indexing the drain's documents again (bench/osfloor)"
read -r _ o0 <<<"$(services_cpu)"
floor=$(bin/osfloor -opensearch "$osurl" -from "*-bdrain1-$run-*" -events "$n" -runs 3) || die "osfloor failed"
read -r _ o1 <<<"$(services_cpu)"
floor_cpu=$(used "$o0" "$o1" 3)

# ---------------------------------------------------------------------------------------------
# 2. following a producer

rows=()
last_p99=- last_rate=-
for r in "${rates[@]}"; do
	tag=follow$r-$run
	events=$((r * follow_s))
	log "following a producer at $r events/s ($events events)"
	bin/replay -brokers "$brokers" -topic "bench-$tag" -source sim -sim-events 1 -skip 1 -quiet >/dev/null 2>&1 # the empty topic
	settle
	pipeline "$tag" "$follow_idle" "$dir/$tag.log" &
	children+=("$!")
	for _ in $(seq 600); do
		grep -q 'kafka: partition assigned' "$dir/$tag.log" 2>/dev/null && break
		sleep 0.1
	done
	grep -q 'kafka: partition assigned' "$dir/$tag.log" || die "fleetpipeline got no partition in 60 s (see $dir/$tag.log)"
	bin/replay -brokers "$brokers" -topic "bench-$tag" -source sim -sim-events "$events" -rate "$r" -quiet 2>&1 | tail -n 1 >&2
	wait "${children[-1]}" || { tail -n 20 "$dir/$tag.log" >&2; die "fleetpipeline failed following $r events/s"; }
	unset 'children[-1]'
	read -r p50 p99 batches <<<"$(latency "$dir/$tag.log")"
	read -r u s kib <"$dir/$tag.log.res"
	fn=$(consumed "$dir/$tag.log")
	# The latency of a run that did not read all it was sent (it stopped early, or the
	# producer was slower than the idle wait) would describe part of the load only.
	[ "$fn" = "$events" ] || die "following $r events/s, fleetpipeline consumed ${fn:-nothing} of the $events events produced (see $dir/$tag.log)"
	cpum=$(awk -v u="$u" -v s="$s" -v n="$fn" 'BEGIN { if (n > 0) printf "%.1f", (u + s) / n * 1e6; else print "-" }')
	rows+=("$(printf '| follow %s/s | %s | %s ms | %s ms (%s batches) | %s | %d |' "$r" "$fn" "$p50" "$p99" "$batches" "$cpum" $((kib / 1024)))")
	if [ "$last_rate" = - ] || [ "$r" -gt "$last_rate" ]; then
		last_p99=$p99 last_rate=$r # the last line's: the highest rate's
	fi
done

# ---------------------------------------------------------------------------------------------
# report (the services are stopped first, so that the summary line is the last one printed)

cleanup
started=0 children=()

echo
echo "fleetpipeline end to end, $(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
echo
echo "| run | events | throughput / p50 | p99 | CPU-s per million events | peak RSS MiB |"
echo "|---|---|---|---|---|---|"
for row in "${drows[@]}"; do echo "$row"; done
for row in "${rows[@]}"; do echo "$row"; done
echo
echo "While fleetpipeline drained the last time ($d_wall s from start to summary, $(nproc) cores: $(awk -v w="$d_wall" -v n="$(nproc)" 'BEGIN { printf "%.1f", w * n }') core-seconds):" \
	"fleetpipeline $d_cpu, Kafka $k_cpu (its JIT compiler $k_jit), OpenSearch $o_cpu (its JIT compiler $o_jit) CPU-s."
echo "That drain's $d_s s: $d_batches batches with records; all batches together spent $d_proc s processing and $d_out s in outputs; their commits took $d_commit s, of which they waited $d_wait s." \
	"The run ended $d_close s after its last batch (its last commit, the Kafka clients closed): $d_old_rate events/s to the summary line." \
	"The first record came $d_join s after the first partition was assigned (the group's joins, the first fetch): $d_join_rate events/s counted from there."
echo "${floor#osfloor: } (OpenSearch $floor_cpu CPU-s a run, indexes created first, not timed)."
echo
p99i=$(awk -v p="$last_p99" 'BEGIN { if (p == "-") print "-"; else if (p == int(p)) printf "%d", p; else printf "%.1f", p }')
echo "bench-e2e: drain $m_rate events/s, $m_cpum CPU-s per million events, peak RSS $m_rss MiB, p99 $p99i ms at $last_rate/s"
