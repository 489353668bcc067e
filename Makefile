# fleetstream make targets. `make test` is the README's test command and what CI runs.
GO       ?= go
PKGS     ?= ./...
# make test fuzzes each target for FUZZTIME (its seed corpus also runs in the unit tests);
# fuzz longer by hand, e.g. make fuzz FUZZTIME=5m.
FUZZTIME ?= 6s
# Minimizing a new interesting input takes up to a minute by default, during which the fuzzer
# reports 0 execs/sec and can run past -fuzztime: keep it short. The engine can still end a
# run with "context deadline exceeded" and no failing input when -fuzztime expires during a
# minimization; make fuzz runs such a target once more (a real failure writes its input and
# fails at once).
FUZZMINIMIZE ?= 2s
# FUZZPARALLEL, if set, is the number of fuzzing workers (default: GOMAXPROCS).
FUZZPARALLEL ?=
# Every go command builds with -trimpath: the build cache's keys then leave out the
# checkout's directory, so a fresh clone reuses what an earlier run on the machine compiled
# and analysed instead of doing it all again (go vet and staticcheck alone took 240 CPU-s of
# make test's 2 cores in every new clone, and 1 s with the cache; the -race, test and fuzz
# builds likewise). Packages changed since are built as before. File names in stack traces
# and test failures are the module's (github.com/fleetstream/fleetstream/...).
export GOFLAGS := -trimpath $(filter-out -trimpath,$(GOFLAGS))

.PHONY: test test-go test-faults test-cpu check lint fmt vet fuzz bench bench-nexmark bench-e2e services-up services-down demo dashboards

# test starts the real Kafka and OpenSearch (testenv), runs lint, the whole suite with
# -race and a short fuzz run with integration tests required (a skip fails), and stops the
# services afterwards even when a test fails. The status page's browser test needs Chromium:
# testenv/chromium.sh installs Debian's package when none is on the PATH.
test:
	./testenv/chromium.sh >/dev/null
	./testenv/with-services.sh $(MAKE) --no-print-directory test-go

# Fault tests (TestFault*) stop and restart the shared services, so they run after the main
# run, one package at a time.
# The offline sweeps run on one goroutine: the fleet job's crash sweeps, join's and window's
# (streamtest drives a graph synchronously), the compact decoder's comparison with the general
# one and the tracker's and simulator's long runs. The race detector has nothing to watch
# there and would cost them four times the CPU (232 CPU-s against 60 for the fleet job's
# alone; about 160 s of the -race run for the others): they run without -race, after the main
# run, beside the fault tests. The engine's concurrency is raced by stream's own tests and
# the end-to-end ones.
OFFLINE_SWEEPS := ^(TestCrashReplayOffline|TestRekeyByCabOffline|TestNewReleaseKeepsStateOffline|TestCrashSweep|TestReaderOfWindowAfterCrash|TestDecodeCompactMatchesGeneral|TestTrackRandomReplay|TestTrackReplayEveryRecord|TestCleanStream|TestInjectedFaults|TestSupplyCrashReplayOffline|TestSupplyRebalanceReplayOffline)$$
SWEEP_PKGS := ./examples/fleetpipeline/ ./join/ ./window/ ./telemetry/ ./telemetry/fleetsim/
# The packages of SWEEP_PKGS that make test covers (all of them for ./..., else those named).
OFFLINE_PKGS := $(if $(filter ./...,$(PKGS)),$(SWEEP_PKGS),$(filter $(SWEEP_PKGS),$(addsuffix /,$(PKGS:%/=%))))
# The packages that have fault tests (all of PKGS when it is not ./...): the fault step runs
# one package at a time, and each other package would only start its test binary for nothing.
FAULT_PKGS ?= $(if $(filter ./...,$(PKGS)),$(sort $(dir $(shell grep -rl --include='*_test.go' '^func TestFault' .))),$(PKGS))

# After the main run, the fault tests mostly wait for a service to stop or start (about half
# a core on average), each package's one after the other: the kafka package's (263 s) on the
# main run's services, the others' (fleetpipeline, opensearch, testenv: 270 s) on a set of
# their own (FAULT_ENV: another run directory and ports). vet, staticcheck, the offline sweeps
# and the fuzzing, which need the CPU and no service, run beside them (testenv/concurrently.sh
# prints each one's output after). One fault step after the other took 10.3 min.
test-go: fmt
	FLEETSTREAM_REQUIRE_SERVICES=1 $(GO) test -race -count=1 -timeout 60m -skip '^TestFault|$(OFFLINE_SWEEPS)' $(PKGS)
	./testenv/concurrently.sh \
	  '$(MAKE) --no-print-directory test-faults FAULT_PKGS="$(filter ./kafka/,$(FAULT_PKGS))"' \
	  '$(if $(filter-out ./kafka/,$(FAULT_PKGS)),$(FAULT_ENV) ./testenv/with-services.sh $(MAKE) --no-print-directory test-faults NORACE_PKGS= FAULT_PKGS="$(filter-out ./kafka/,$(FAULT_PKGS))",true)' \
	  '$(MAKE) --no-print-directory test-cpu FUZZ_DIRS="$(FUZZ_FIRST)"' \
	  '$(if $(FUZZ_REST),$(MAKE) --no-print-directory fuzz FUZZPARALLEL=1 FUZZ_DIRS="$(FUZZ_REST)",true)'

# make test fuzzes in two lanes: test-cpu's (after vet and the sweeps) and one of its own, each
# one target at a time (a target fuzzes for FUZZTIME whatever its workers, after building its
# instrumented binary: about 25 s each in a fresh clone, 18 targets; test-cpu alone took 605 s).
FUZZ_FIRST = $(filter ./kafka ./opensearch ./window,$(FUZZ_DIRS))
FUZZ_REST = $(filter-out $(FUZZ_FIRST),$(FUZZ_DIRS))

# FAULT_ENV is a second set of services for fault tests: a run directory and ports of its own.
FAULT_ENV := FLEETSTREAM_TESTENV_RUN=$(CURDIR)/testenv/.run-faults FLEETSTREAM_KAFKA_PORT=19192 \
  FLEETSTREAM_KAFKA_SCRAM_PORT=19193 FLEETSTREAM_KAFKA_CONTROLLER_PORT=19194 \
  FLEETSTREAM_OPENSEARCH_PORT=19292 FLEETSTREAM_OPENSEARCH_TRANSPORT_PORT=19392

# Tests built without -race (a data race inside sarama, see their files) run in the fault step,
# without -race, when make test covers their package.
NORACE_TESTS := ^(TestExactlyOnceFencedStops|TestFaultExactlyOnceBrokerRestart)$$
NORACE_PKGS := $(if $(filter ./... ./kafka ./kafka/,$(PKGS)),./kafka/)

test-faults:
	$(if $(FAULT_PKGS),FLEETSTREAM_REQUIRE_SERVICES=1 FLEETSTREAM_FAULT_TESTS=1 $(GO) test -race -count=1 -timeout 30m -p 1 -run '^TestFault' $(FAULT_PKGS))
	$(if $(NORACE_PKGS),FLEETSTREAM_REQUIRE_SERVICES=1 FLEETSTREAM_FAULT_TESTS=1 $(GO) test -count=1 -timeout 15m -p 1 -run '$(NORACE_TESTS)' $(NORACE_PKGS))

# test-cpu is what make test runs beside the fault tests; the fuzzing takes one core of two.
test-cpu: vet
	$(if $(OFFLINE_PKGS),$(GO) test -count=1 -timeout 30m -run '$(OFFLINE_SWEEPS)' $(OFFLINE_PKGS))
	$(MAKE) --no-print-directory fuzz FUZZPARALLEL=1

# check is the edit-test loop: lint and every test that needs no service (integration tests
# skip without the services' addresses), without -race, with -short (fewer crash points). `make test` is the full suite.
check: lint
	env -u FLEETSTREAM_KAFKA_BROKERS -u FLEETSTREAM_OPENSEARCH_URL -u FLEETSTREAM_REQUIRE_SERVICES \
	  $(GO) test -short -count=1 -skip '^TestFault' $(PKGS)

lint: fmt vet

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; git ls-files --others --exclude-standard '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

# FUZZ_DIRS are the packages make fuzz fuzzes (default: every one with a Fuzz target).
FUZZ_DIRS ?= $(sort $(patsubst %/,%,$(dir $(shell grep -rl --include='*_test.go' '^func Fuzz' .))))

fuzz:
	@for t in $(FUZZ_DIRS); do \
	  for f in $$(grep -h '^func Fuzz' $$t/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "fuzz $$t $$f ($(FUZZTIME))"; \
	    for try in 1 2; do \
	      out=$$($(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) $(if $(FUZZPARALLEL),-parallel=$(FUZZPARALLEL)) $$t 2>&1); rc=$$?; \
	      echo "$$out" | tail -n 4; \
	      [ $$rc -eq 0 ] && break; \
	      if echo "$$out" | grep -q 'Failing input written' || ! echo "$$out" | grep -q 'context deadline exceeded'; then \
	        echo "$$out"; exit 1; \
	      fi; \
	      echo "fuzz: $$f ended on the fuzzing engine's own deadline (context deadline exceeded, no failing input); running it once more"; \
	    done; \
	    [ $$rc -eq 0 ] || exit 1; \
	  done; \
	done

# bench runs every benchmark six times into .bench/new.txt and summarises it with benchstat;
# compare two runs with `go tool benchstat .bench/old.txt .bench/new.txt`. The Kafka and
# OpenSearch benchmarks need the services (make services-up; . testenv/env.sh).
bench:
	@mkdir -p .bench
	$(GO) test -run='^$$' -bench=. -benchmem -count=6 -timeout 60m $(PKGS) | tee .bench/new.txt
	$(GO) tool benchstat .bench/new.txt

# bench-nexmark runs the Nexmark queries q0, q1, q2, q3, q5, q7, q8 and q11 in memory (no services)
# and prints each one's events/s per core beside Flink 1.13's; NEXMARK_FLAGS="-events 10000000".
bench-nexmark:
	$(GO) run ./bench/nexmark/cmd/nexmark $(NEXMARK_FLAGS)

# bench-e2e measures fleetpipeline against the real services (testenv): drain throughput,
# CPU-s per million events and peak RSS on the `make demo` data, and window close -> cab stats
# acknowledged p50/p99 following a producer; knobs BENCH_SIM_EVENTS, BENCH_RATES (bench/e2e.sh).
bench-e2e:
	./bench/e2e.sh

# demo runs the main job end to end: services, Porto + simulated replay, fleet pipeline, summary.
demo:
	./examples/demo.sh

services-up:
	./testenv/services.sh up

services-down:
	./testenv/services.sh down

DASHBOARDS_URL ?= http://127.0.0.1:15601

# dashboards imports the saved objects (index patterns, visualizations, dashboard) into an
# OpenSearch Dashboards, such as the one docker-compose.yml starts.
dashboards:
	curl -fsS -X POST "$(DASHBOARDS_URL)/api/saved_objects/_import?overwrite=true" \
	  -H 'osd-xsrf: true' --form file=@dashboards/fleetstream.ndjson
	@echo
