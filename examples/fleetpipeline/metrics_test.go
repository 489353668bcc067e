// The fleet job's operator endpoints against the real services: /metrics parses as the
// Prometheus text format and counts what the job consumed; /healthz and /readyz answer.

package main

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/testenv"
)

var metricsURL = regexp.MustCompile(`metrics=(http://[0-9.:]+/metrics)`)

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	s := needServices(t)
	topic := testenv.UniqueName(t, "e2e-metrics")
	r := newRun(t, s, topic, "e2e-metrics")
	brokers := testenv.KafkaBrokers(t)
	prod := syncProducer(t, brokers, sarama.NewHashPartitioner)
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
	var msgs []*sarama.ProducerMessage
	for i := range 20_000 {
		cab := fmt.Sprintf("CAB-M%d", i%50)
		v := fmt.Sprintf(`{"cab_id":%q,"ts":%q,"lat":41.15,"lon":-8.61,"speed_kmh":40,"status":"hired"}`,
			cab, base.Add(time.Duration(i)*100*time.Millisecond).Format(time.RFC3339Nano))
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(cab), Value: sarama.StringEncoder(v)})
	}
	msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("CAB-M0"), Value: sarama.StringEncoder("not json")})
	require.NoError(t, prod.SendMessages(msgs))

	// A long idle wait keeps the job up while the test scrapes it (the last flag wins).
	p := start(t, "fleetpipeline", pipelineBin, r.args(s, "-exit-when-idle", "8s")...)
	var url string
	waitFor(t, time.Minute, 50*time.Millisecond, "the metrics address in the log", func() bool {
		m := metricsURL.FindStringSubmatch(p.out.String())
		if m != nil {
			url = m[1]
		}
		return m != nil || p.exited()
	})
	require.NotEmpty(t, url, "no metrics address logged")
	get := func(path string) (int, string) {
		resp, err := http.Get(url[:len(url)-len("/metrics")] + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	families := func(body string) map[string]*dto.MetricFamily {
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(strings.NewReader(body))
		require.NoError(t, err, "the /metrics body parses as the Prometheus text format")
		return families
	}
	value := func(body, name string) float64 {
		f, ok := families(body)[name]
		if !ok {
			return -1
		}
		m := f.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	// The pipeline's input is what the source pushed: every message but the dead-lettered one.
	waitFor(t, time.Minute, 100*time.Millisecond, "every record counted in /metrics", func() bool {
		code, body := get("/metrics")
		return code == http.StatusOK && value(body, "fleetstream_input_records_total") == float64(len(msgs)-1)
	})
	// Caught up: every input partition read to its end (read lag 0); the commit lag is what
	// open windows hold back.
	byPartition := func(body, name string) map[string]float64 {
		out := make(map[string]float64)
		if f, ok := families(body)[name]; ok {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "partition" && strings.HasPrefix(l.GetValue(), topic+"/") {
						out[l.GetValue()] = m.GetGauge().GetValue()
					}
				}
			}
		}
		return out
	}
	var body string
	waitFor(t, time.Minute, 100*time.Millisecond, "a read lag of 0 on every input partition", func() bool {
		_, body = get("/metrics")
		lags := byPartition(body, "fleetstream_source_read_lag_records")
		for _, l := range lags {
			if l != 0 {
				return false
			}
		}
		return len(lags) == 6
	})
	readOff, commitLag, held := byPartition(body, "fleetstream_source_read_offset"),
		byPartition(body, "fleetstream_source_commit_lag_records"), byPartition(body, "fleetstream_source_held_back_records")
	var read float64
	for part, off := range readOff {
		read += off
		require.Equal(t, commitLag[part], held[part], "%s: caught up, the commit lag is what open windows hold back", part)
	}
	require.EqualValues(t, len(msgs), read, "the read offsets add up to every message produced")
	require.EqualValues(t, 1, value(body, "fleetstream_source_dead_letters_total"))
	require.Positive(t, value(body, "fleetstream_batches_total"))
	// The zone repartition's counters: zone demand goes through it in two phases, as one
	// partial per zone, window and input partition (the events of a cab-minute share a
	// zone), packed into messages.
	reps, repMsgs := value(body, "fleetstream_repartition_sent_records_total"), value(body, "fleetstream_repartition_sent_messages_total")
	require.Positive(t, reps)
	require.Less(t, reps, float64(len(msgs))/10, "partials through the zone repartition, far fewer than events")
	require.Positive(t, repMsgs)
	require.LessOrEqual(t, repMsgs, reps, "records packed into messages")
	require.Positive(t, value(body, "fleetstream_repartition_sent_bytes_total"))
	code, text := get("/healthz")
	require.Equal(t, http.StatusOK, code, text)
	code, text = get("/readyz")
	require.Equal(t, http.StatusOK, code, text)
	p.succeed(t, time.Minute)
}

// TestMetricsOnlyOutputsThatRun: /metrics listed the sinks of outputs that were off
// (-zone-demand=false, -alerts=false) with every counter at 0, as if those outputs ran and
// wrote nothing; a dashboard or an alert on them could not tell. Only the outputs that run
// have a sink label, as in the summary.
func TestMetricsOnlyOutputsThatRun(t *testing.T) {
	t.Parallel()
	s := needServices(t)
	r := newRun(t, s, testenv.UniqueName(t, "e2e-metrics-off"), "e2e-metrics-off")
	p := start(t, "fleetpipeline", pipelineBin, r.args(s, "-exit-when-idle", "0", "-zone-demand=false", "-alerts=false", "-procs", "1")...)
	var url string
	waitFor(t, time.Minute, 50*time.Millisecond, "the job running, its metrics address logged", func() bool {
		if m := metricsURL.FindStringSubmatch(p.out.String()); m != nil {
			url = m[1]
		}
		return url != "" && strings.Contains(p.out.String(), "fleetpipeline: running") || p.exited()
	})
	require.False(t, p.exited(), "the job ended")
	require.Contains(t, p.out.String(), "procs=1\n", "-procs sets GOMAXPROCS")
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	sinks := map[string]bool{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "sink" {
					sinks[l.GetValue()] = true
				}
			}
		}
	}
	require.True(t, sinks["cab-stats"], "the cab-stats sink, which runs: %v", sinks)
	require.False(t, sinks["zone-demand"], "zone demand is off (-zone-demand=false)")
	require.False(t, sinks["cab-alerts"], "alerts are off (-alerts=false)")
}
