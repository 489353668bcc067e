package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestBadClockAndAbsurdValuesLoseNothing is issue 11's defects 1, 2 and 5 end to end, on the
// real services: among 2,400 good events of three cabs, a cab sends one event stamped 2099
// (before its event #800), one stamped in year 9999, one with a 600-character cab id, one
// with speed 1.5e308, and, later, one an hour older than its window (late). Before the fix
// the 2099 event made every later event of its partition late (120 of 200 windows missing).
// Now: every good event is counted in cab stats and zone demand, nothing counts late but the
// late one, each bad or late record is in the dead-letter topic with its reason, no cab is
// reported silent, and the job exits 0.
func TestBadClockAndAbsurdValuesLoseNothing(t *testing.T) {
	t.Parallel()
	s := needServices(t)
	topic := testenv.UniqueName(t, "e2e-clock")
	r := newRun(t, s, topic, "e2e-clock")
	brokers := testenv.KafkaBrokers(t)

	prod := syncProducer(t, brokers, sarama.NewHashPartitioner)

	base := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	event := func(cab string, ts time.Time, speed string) string {
		return fmt.Sprintf(`{"cab_id":%q,"ts":%q,"lat":41.15,"lon":-8.61,"speed_kmh":%s,"status":"hired"}`,
			cab, ts.Format(time.RFC3339Nano), speed)
	}
	var msgs []*sarama.ProducerMessage
	send := func(cab, value string) {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(cab), Value: sarama.StringEncoder(value)})
	}
	cabs := []string{"CAB-R1", "CAB-R2", "CAB-R3"}
	bad := map[string]string{ // value -> the reason its dead letter must carry
		event("CAB-R1", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), "30"): stream.ReasonEventTime,
		event("CAB-R2", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), "30"): "",
		event(strings.Repeat("C", 600), base, "30"):                        stream.ReasonInvalid,
		event("CAB-R3", base.Add(time.Minute), "1.5e308"):                  stream.ReasonInvalid,
	}
	good := 0
	for i := range 800 {
		ts := base.Add(time.Duration(i) * 10 * time.Second)
		if i == 266 { // before event #800 of the 2,400
			for v := range bad {
				var d struct {
					CabID string `json:"cab_id"`
				}
				require.NoError(t, json.Unmarshal([]byte(v), &d))
				send(d.CabID, v)
			}
		}
		for _, cab := range cabs {
			send(cab, event(cab, ts, "42"))
			good++
		}
	}
	lateValue := event("CAB-R1", base.Add(-time.Hour), "42") // an hour behind its partition
	send("CAB-R1", lateValue)
	require.NoError(t, prod.SendMessages(msgs))

	out := start(t, "fleetpipeline", pipelineBin, r.args(s)...).succeed(t, 2*time.Minute)
	records, deadLetters, late := summary(t, out)
	require.EqualValues(t, len(msgs), records, "records consumed")
	require.EqualValues(t, len(bad), deadLetters, "records dead-lettered by the source")
	require.Positive(t, late, "the late record is counted")

	c := newOS(t, s)
	stats := r.index("cab-stats")
	c.refresh(stats)
	require.EqualValues(t, good, int64(c.sum(stats, "events")), "every good event is in the cab stats")
	require.EqualValues(t, len(cabs)*((799*10)/60+1), c.count(stats), "every cab-minute window is there")
	zones := r.index("zone-demand")
	c.refresh(zones)
	zoneEvents := int64(c.sum(zones, "events"))
	alerts := r.index("cab-alerts")
	c.refresh(alerts)
	silent := c.search(alerts, map[string]any{"size": 0, "track_total_hits": true,
		"query": map[string]any{"term": map[string]any{"type": "device_silent"}}})
	require.EqualValues(t, 0, silent["hits"].(map[string]any)["total"].(map[string]any)["value"], "no cab was reported silent")

	// The dead-letter topic holds the bad records and the late one, each with its reason.
	dlq := readTopic(t, brokers, topic+".dlq", int(deadLetters+late), 30*time.Second)
	reasons := map[string][]string{}
	for _, m := range dlq {
		h := map[string]string{}
		for _, rh := range m.Headers {
			h[string(rh.Key)] = string(rh.Value)
		}
		require.Equal(t, topic, h[kafka.HeaderSourceTopic], "dead letter %q names its source", m.Value)
		require.NotEmpty(t, h[kafka.HeaderSourceOffset])
		require.NotEmpty(t, h[kafka.HeaderError])
		reasons[string(m.Value)] = append(reasons[string(m.Value)], h[kafka.HeaderReason])
		t.Logf("dead letter (%s): %.120s", h[kafka.HeaderReason], h[kafka.HeaderError])
	}
	for v, reason := range bad {
		require.Len(t, reasons[v], 1, "dead letters of %.80s", v)
		if reason != "" {
			require.Equal(t, reason, reasons[v][0], "reason of %.80s", v)
		}
	}
	var lateReasons []string
	for v, rs := range reasons {
		var d struct {
			CabID string    `json:"cab_id"`
			TS    time.Time `json:"ts"`
		}
		if json.Unmarshal([]byte(v), &d) == nil && d.CabID == "CAB-R1" && d.TS.Equal(base.Add(-time.Hour)) {
			lateReasons = append(lateReasons, rs...)
		}
	}
	require.NotEmpty(t, lateReasons, "the late record is in the dead letters (%s)", lateValue)
	for _, rs := range lateReasons {
		require.Equal(t, stream.ReasonLate, rs)
	}
	// Zone demand runs after the repartition by zone, where the watermark is the minimum over
	// every partition: the record an hour behind its own partition is late there only if
	// every partition had passed its window when it arrived. Either way it is counted once,
	// in the zone demand or in its dead letters (there, as the zone sample the repartition
	// carried: its zone, cab, speed and pickup flag).
	zoneLate := 0
	for _, m := range dlq {
		if !strings.HasPrefix(headerValue(m, kafka.HeaderError), "zone-demand:") {
			continue
		}
		var zs struct {
			Zone  string `json:"zone"`
			CabID string `json:"cab_id"`
		}
		require.NoError(t, json.Unmarshal(m.Value, &zs), "a zone-demand dead letter is a zone sample: %s", m.Value)
		require.Equal(t, "CAB-R1", zs.CabID, "the only record late for zone demand is the late one: %s", m.Value)
		require.NotEmpty(t, zs.Zone)
		zoneLate++
	}
	require.LessOrEqual(t, zoneLate, 1)
	require.EqualValues(t, good+1-zoneLate, zoneEvents, "every good event is in the zone demand, and the late one unless it was late there")
}

// TestKeyLimitLosesNothing is issue 11's defect 10 end to end: with -max-cabs 2 and three
// cabs, the alert tracker holds two; the third cab's events go to the dead-letter topic with
// reason key_limit, so zone demand (which reads the tracker) plus those dead letters account
// for every event, and so do cab stats plus their own key-limit dead letters. Each dead letter
// names the input record it refused (its topic, partition and offset), also through the cab
// repartition of -rekey-by-cab, whose topic is purged once committed: before, the tracker's
// named <group>-cabs-repartition there.
func TestKeyLimitLosesNothing(t *testing.T) {
	t.Parallel()
	for name, extra := range map[string][]string{"keyed by cab": nil, "rekey-by-cab": {"-rekey-by-cab"}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			keyLimitLosesNothing(t, extra)
		})
	}
}

func keyLimitLosesNothing(t *testing.T, extra []string) {
	s := needServices(t)
	topic := testenv.UniqueName(t, "e2e-keys")
	r := newRun(t, s, topic, "e2e-keys")
	brokers := testenv.KafkaBrokers(t)
	prod := syncProducer(t, brokers, sarama.NewHashPartitioner)
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	var msgs []*sarama.ProducerMessage
	for i := range 60 {
		for _, cab := range []string{"CAB-K1", "CAB-K2", "CAB-K3"} {
			v := fmt.Sprintf(`{"cab_id":%q,"ts":%q,"lat":41.15,"lon":-8.61,"speed_kmh":40,"status":"hired"}`,
				cab, base.Add(time.Duration(i)*10*time.Second).Format(time.RFC3339))
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(cab), Value: sarama.StringEncoder(v)})
		}
	}
	require.NoError(t, prod.SendMessages(msgs))
	cabAt := map[string]string{} // "partition/offset" -> cab
	for _, m := range msgs {
		cabAt[fmt.Sprintf("%d/%d", m.Partition, m.Offset)] = string(m.Key.(sarama.StringEncoder))
	}

	out := start(t, "fleetpipeline", pipelineBin, r.args(s, append([]string{"-max-cabs", "2"}, extra...)...)...).succeed(t, 2*time.Minute)
	records, deadLetters, late := summary(t, out)
	require.EqualValues(t, len(msgs), records)
	require.Zero(t, deadLetters)
	require.Zero(t, late)

	c := newOS(t, s)
	zones, stats := r.index("zone-demand"), r.index("cab-stats")
	c.refresh(zones)
	c.refresh(stats)
	zoneEvents, statEvents := int64(c.sum(zones, "events")), int64(c.sum(stats, "events"))

	var refusedByTracker, refusedByStats int64
	want := 0
	if n := len(msgs) - int(zoneEvents); n > 0 {
		want += n
	}
	if n := len(msgs) - int(statEvents); n > 0 {
		want += n
	}
	require.Positive(t, want, "the third cab was refused somewhere")
	for _, m := range readTopic(t, brokers, topic+".dlq", want, 30*time.Second) {
		h := map[string]string{}
		for _, rh := range m.Headers {
			h[string(rh.Key)] = string(rh.Value)
		}
		require.Equal(t, stream.ReasonKeyLimit, h[kafka.HeaderReason])
		require.Equal(t, topic, h[kafka.HeaderSourceTopic], "%s names the input topic", h[kafka.HeaderError])
		at := h[kafka.HeaderSourcePartition] + "/" + h[kafka.HeaderSourceOffset]
		require.Equal(t, string(m.Key), cabAt[at], "%s names its input record (%s)", h[kafka.HeaderError], at)
		switch {
		case strings.HasPrefix(h[kafka.HeaderError], "telemetry: cab tracker"):
			refusedByTracker++
		case strings.HasPrefix(h[kafka.HeaderError], "cab-stats: window: key limit reached"):
			refusedByStats++
		default:
			t.Fatalf("unexpected key-limit dead letter: %s", h[kafka.HeaderError])
		}
	}
	require.EqualValues(t, 60, refusedByTracker, "one cab's events past the tracker's limit")
	require.EqualValues(t, len(msgs), zoneEvents+refusedByTracker, "zone demand + dead letters = every event")
	require.EqualValues(t, len(msgs), statEvents+refusedByStats, "cab stats + dead letters = every event")
}

// headerValue returns the value of a message's header, "" if absent.
func headerValue(m *sarama.ConsumerMessage, key string) string {
	for _, h := range m.Headers {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}
