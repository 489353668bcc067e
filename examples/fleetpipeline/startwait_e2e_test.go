// The start's waits end to end: the job started while Kafka or OpenSearch is stopped waits
// for it and then runs, or gives up after its flag's bound; what will not pass fails at once;
// a stop while it waits exits 1; and a missing input topic fails the start before the job
// makes any topic.

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/testenv"
)

// produceTelemetry writes 600 events of six cabs over ten minutes of event time an hour ago
// to topic, and returns them. The producer is closed when the test ends.
func produceTelemetry(t *testing.T, s services, topic string) []*sarama.ProducerMessage {
	t.Helper()
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
	msgs := telemetryMessages(topic, base, 600)
	prod := syncProducer(t, strings.Split(s.brokers, ","), sarama.NewHashPartitioner)
	require.NoError(t, prod.SendMessages(msgs))
	return msgs
}

// requireCabStats requires that the run's cab-stats documents are one per cab and minute of
// msgs, each counting that minute's events of its cab, and that zone demand counted every
// event.
func requireCabStats(t *testing.T, s services, r pipelineRun, msgs []*sarama.ProducerMessage) {
	t.Helper()
	want := map[string]int64{}
	for _, m := range msgs {
		b, err := m.Value.Encode()
		require.NoError(t, err)
		var e struct {
			CabID string    `json:"cab_id"`
			TS    time.Time `json:"ts"`
		}
		require.NoError(t, json.Unmarshal(b, &e))
		want[e.CabID+" "+e.TS.Truncate(time.Minute).Format(time.RFC3339)]++
	}
	got := map[string]int64{}
	osc := newOS(t, s)
	for _, d := range byID(t, osc.docs(r.index("cab-stats"))) {
		var st struct {
			CabID       string    `json:"cab_id"`
			WindowStart time.Time `json:"window_start"`
			Events      int64     `json:"events"`
		}
		require.NoError(t, json.Unmarshal(d.Source, &st))
		got[st.CabID+" "+st.WindowStart.UTC().Format(time.RFC3339)] += st.Events
	}
	require.Equal(t, want, got, "cab-stats: a document per cab and minute, with its events")
	osc.refresh(r.index("zone-demand"))
	require.EqualValues(t, len(msgs), int64(osc.sum(r.index("zone-demand"), "events")), "zone demand: every event")
}

// TestFaultStartWaitsForOpenSearch: OpenSearch stopped at the job's start. For longer than
// -opensearch-timeout: the job waits that long, saying so, then exits 1 naming the URL, the
// step and the wait (it exited 1 at once, in 0.02 s). Started within it: the job waits, then
// runs and writes every window.
func TestFaultStartWaitsForOpenSearch(t *testing.T) {
	testenv.FaultTest(t)
	s := needServices(t)
	r := newRun(t, s, testenv.UniqueName(t, "start-waits-os"), "start-waits-os")
	msgs := produceTelemetry(t, s, r.topic)

	testenv.StopService(t, "opensearch")
	stopped := true
	t.Cleanup(func() {
		if stopped {
			testenv.StartService(t, "opensearch")
		}
	})

	const bound = 2 * time.Second
	began := time.Now()
	p := start(t, "fleetpipeline (gives up)", pipelineBin, r.args(s, "-opensearch-timeout", bound.String())...)
	err := p.wait(t, time.Minute)
	took := time.Since(began)
	out := p.out.String()
	require.Error(t, err, "output:\n%s", out)
	require.Equal(t, 1, p.cmd.ProcessState.ExitCode(), "output:\n%s", out)
	require.Contains(t, out, "fleetpipeline: index templates: waiting for OpenSearch at "+s.opensearch+" (-opensearch): connection refused; giving up in ")
	require.Regexp(t, regexp.QuoteMeta("fleetpipeline: index templates: gave up after 2s (-opensearch-timeout) and ")+`\d+ attempts? `+
		regexp.QuoteMeta("waiting for OpenSearch at "+s.opensearch+" (-opensearch); the last: ")+`.*connection refused: check that the URL`, out)
	require.GreaterOrEqual(t, took, bound)

	p = start(t, "fleetpipeline", pipelineBin, r.args(s, "-opensearch-timeout", "2m")...)
	waitFor(t, time.Minute, 20*time.Millisecond, "the job waiting for OpenSearch", func() bool {
		return strings.Contains(p.out.String(), "waiting for OpenSearch at "+s.opensearch) || p.exited()
	})
	require.False(t, p.exited(), "the job must wait for OpenSearch; output:\n%s", p.out.String())
	testenv.StartService(t, "opensearch")
	stopped = false
	out = p.succeed(t, 2*time.Minute)
	require.Contains(t, out, "fleetpipeline: index templates: OpenSearch at "+s.opensearch+" (-opensearch) answered after ")
	records, deadLetters, late := summary(t, out)
	require.EqualValues(t, len(msgs), records)
	require.Zero(t, deadLetters)
	require.Zero(t, late)
	requireCabStats(t, s, r, msgs)
}

// TestFaultStartWaitsForKafka: Kafka stopped at the job's start. For longer than
// -kafka-timeout: the job waits that long, saying so, then exits 1 naming the brokers, the
// step and the wait (it exited 1 after sarama's 2.5 s of retries). Started within it: the job
// waits, then runs and writes every window.
func TestFaultStartWaitsForKafka(t *testing.T) {
	testenv.FaultTest(t)
	s := needServices(t)
	r := newRun(t, s, testenv.UniqueName(t, "start-waits-kafka"), "start-waits-kafka")
	msgs := produceTelemetry(t, s, r.topic)

	testenv.StopService(t, "kafka")
	stopped := true
	t.Cleanup(func() {
		if stopped {
			testenv.StartService(t, "kafka")
		}
	})

	// Above sarama's own retries of a refused connection (2.5 s), so that an attempt ends
	// within the bound and the error quotes it.
	const bound = 4 * time.Second
	began := time.Now()
	p := start(t, "fleetpipeline (gives up)", pipelineBin, r.args(s, "-kafka-timeout", bound.String())...)
	err := p.wait(t, time.Minute)
	took := time.Since(began)
	out := p.out.String()
	require.Error(t, err, "output:\n%s", out)
	require.Equal(t, 1, p.cmd.ProcessState.ExitCode(), "output:\n%s", out)
	step := "-topic " + r.topic
	require.Contains(t, out, "fleetpipeline: "+step+": waiting for Kafka at "+s.brokers+" (-brokers): connection refused; giving up in ")
	require.Regexp(t, regexp.QuoteMeta("fleetpipeline: "+step+": gave up after 4s (-kafka-timeout) and ")+`\d+ attempts? `+
		regexp.QuoteMeta("waiting for Kafka at "+s.brokers+" (-brokers); the last: ")+`.*connection refused: check that the address`, out)
	require.GreaterOrEqual(t, took, bound)

	p = start(t, "fleetpipeline", pipelineBin, r.args(s, "-kafka-timeout", "2m")...)
	waitFor(t, time.Minute, 20*time.Millisecond, "the job waiting for Kafka", func() bool {
		return strings.Contains(p.out.String(), "waiting for Kafka at "+s.brokers) || p.exited()
	})
	require.False(t, p.exited(), "the job must wait for Kafka; output:\n%s", p.out.String())
	testenv.StartService(t, "kafka")
	stopped = false
	out = p.succeed(t, 2*time.Minute)
	require.Contains(t, out, "fleetpipeline: "+step+": Kafka at "+s.brokers+" (-brokers) answered after ")
	records, deadLetters, late := summary(t, out)
	require.EqualValues(t, len(msgs), records)
	require.Zero(t, deadLetters)
	require.Zero(t, late)
	requireCabStats(t, s, r, msgs)
}

// TestStopWhileWaitingForKafka: a stop (Ctrl-C) while the job waits for brokers that refuse
// connections ends it at once, exit 1: it did not start, and says what it waited for.
func TestStopWhileWaitingForKafka(t *testing.T) {
	dead := deadAddr(t)
	p := start(t, "fleetpipeline", pipelineBin, "-brokers", dead, "-opensearch", "http://"+deadAddr(t), "-http=")
	waitFor(t, time.Minute, 20*time.Millisecond, "the job waiting for Kafka", func() bool {
		return strings.Contains(p.out.String(), "waiting for Kafka at "+dead) || p.exited()
	})
	require.False(t, p.exited(), "output:\n%s", p.out.String())
	stopped := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	err := p.wait(t, time.Minute)
	took := time.Since(stopped)
	out := p.out.String()
	require.Error(t, err, "output:\n%s", out)
	require.Equal(t, 1, p.cmd.ProcessState.ExitCode(), "output:\n%s", out)
	require.Contains(t, out, "fleetpipeline: -topic cab-telemetry: stopped (SIGINT or SIGTERM) after waiting ")
	require.Contains(t, out, " for Kafka at "+dead+" (-brokers); the job did not start; the last attempt: ")
	require.Less(t, took, 10*time.Second, "at once, not after -kafka-timeout (3m)")
}

// TestKafkaWrongPasswordAtOnce: a refused password will not pass: the start fails at its
// first attempt, not after -kafka-timeout.
func TestKafkaWrongPasswordAtOnce(t *testing.T) {
	t.Parallel()
	sc := testenv.KafkaSCRAM(t)
	c := testConfig(t, "-brokers", strings.Join(sc.Brokers, ","), "-kafka-sasl", sc.Mechanism, "-kafka-user", sc.User,
		"-kafka-password", "not-"+sc.Password, "-kafka-timeout", "1m")
	err := c.checkInputs(t.Context(), c.kafka.Config(), nil)
	require.ErrorIs(t, err, sarama.ErrSASLAuthenticationFailed)
	require.ErrorContains(t, err, "-topic cab-telemetry: kafka: connect to ")
	require.NotContains(t, err.Error(), "gave up")
	require.NotContains(t, err.Error(), "not-"+sc.Password)
}

// TestTemplatesPermanentAtOnce: answers that will not change (credentials refused, something
// that is not OpenSearch) fail the start at the first attempt, not after -opensearch-timeout.
func TestTemplatesPermanentAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(w http.ResponseWriter)
		says   string
	}{
		{"credentials refused", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"unauthorized"}`)
		}, "status 401"},
		{"a web page", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html><body>welcome</body></html>")
		}, opensearch.ErrNotOpenSearch.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var puts atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPut {
					puts.Add(1)
				}
				tc.answer(w)
			}))
			t.Cleanup(srv.Close)
			cl, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{srv.URL}})
			require.NoError(t, err)
			t.Cleanup(func() { _ = cl.Close() })
			c := testConfig(t, "-opensearch-timeout", "1m")
			err = c.ensureTemplates(t.Context(), cl, []string{srv.URL}, nil)
			require.ErrorContains(t, err, "index templates: ")
			require.ErrorContains(t, err, tc.says)
			require.NotContains(t, err.Error(), "gave up")
			require.EqualValues(t, 1, puts.Load(), "one attempt")
		})
	}
}

// TestMissingInputCreatesNothing: a mistyped input topic fails the start, exit 1, before the
// job makes any topic: -topic nosuchtopic made nosuchtopic.dlq and the alerts topic before
// the Source found its topic missing (on MSK those stay, replicated).
func TestMissingInputCreatesNothing(t *testing.T) {
	t.Parallel()
	s := needServices(t)
	for _, tc := range []struct {
		name string
		args func(r pipelineRun, missing string) []string
		says func(missing string) string
	}{
		{"-topic", func(r pipelineRun, missing string) []string { return []string{"-topic", missing} },
			func(missing string) string {
				return fmt.Sprintf("fleetpipeline: -topic %s: source topic %q does not exist: check the name", missing, missing)
			}},
		{"-requests-topic", func(r pipelineRun, missing string) []string { return []string{"-requests-topic", missing} },
			func(missing string) string {
				return fmt.Sprintf("fleetpipeline: -requests-topic %s: source topic %q does not exist: check the name", missing, missing)
			}},
		{"-registry-topic", func(r pipelineRun, missing string) []string {
			return []string{"-registry-topic", missing, "-rekey-by-cab"}
		},
			func(missing string) string {
				return "fleetpipeline: -registry-topic " + missing + ": no such topic: check the name"
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := pipelineRun{
				topic:  testenv.UniqueName(t, "missing-input"),
				group:  testenv.UniqueName(t, "missing-input-group"),
				name:   testenv.UniqueName(t, "missing-input-name"),
				tag:    testenv.UniqueName(t, "missing-input"),
				alerts: testenv.UniqueName(t, "missing-input-alerts"),
			}
			missing := testenv.UniqueName(t, "nosuchtopic")
			if tc.name != "-topic" {
				ensureTopic(t, s, r.topic) // the telemetry topic is there; another input is not
			}
			p := start(t, "fleetpipeline", pipelineBin, r.args(s, tc.args(r, missing)...)...)
			err := p.wait(t, time.Minute)
			out := p.out.String()
			require.Error(t, err, "output:\n%s", out)
			require.Equal(t, 1, p.cmd.ProcessState.ExitCode(), "output:\n%s", out)
			require.Contains(t, out, tc.says(missing))

			made := topicsNamed(t, s, missing, r.alerts, r.group)
			if tc.name != "-topic" {
				made = append(made, topicsNamed(t, s, r.topic+".dlq")...)
			}
			require.Empty(t, made, "topics made by a start that failed on a missing input")
		})
	}
}

// topicsNamed returns the topics of the cluster whose names start with one of prefixes.
func topicsNamed(t *testing.T, s services, prefixes ...string) []string {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	admin, err := sarama.NewClusterAdmin(strings.Split(s.brokers, ","), cfg)
	require.NoError(t, err)
	defer admin.Close()
	topics, err := admin.ListTopics()
	require.NoError(t, err)
	var found []string
	for name := range topics {
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				found = append(found, name)
			}
		}
	}
	return found
}
