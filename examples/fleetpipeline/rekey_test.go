package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestRekeyByCabEndToEnd: the Porto sample produced without keys (round-robin over six
// partitions, as an IoT hub that does not key by cab) through fleetpipeline -rekey-by-cab
// gives, on the real Kafka and OpenSearch, the events per cab and minute computed from the
// CSV alone, and one zone demand document per zone and window (the zone repartition) that
// agrees with the keyed run's but for the tracker's order-dependent verdicts. Without the
// flag the job counts the split cabs and says how to fix it (issue 13, item 7).
func TestRekeyByCabEndToEnd(t *testing.T) {
	t.Parallel()
	s := needServices(t)
	keyedRun, _ := portoRun(t)
	topic := testenv.UniqueName(t, "rekey")
	r := newRun(t, s, topic, "rekey")
	replay(t, s, topic, "-source", "porto", "-unkeyed")
	out := start(t, "fleetpipeline", pipelineBin, r.args(s, "-rekey-by-cab")...).succeed(t, 3*time.Minute)
	records, deadLetters, late := summary(t, out)
	require.EqualValues(t, portoPoints, records)
	require.Zero(t, deadLetters)
	require.Zero(t, late)
	require.Contains(t, out, "0 cabs seen on several partitions")

	want, _, _ := portoCounts(t, portoCSV(t))
	c := newOS(t, s)
	got := map[cabWindow]int64{}
	for _, d := range c.docs(r.index("cab-stats")) {
		var cs cabStatsDoc
		require.NoError(t, json.Unmarshal(d.Source, &cs))
		k := cabWindow{cs.CabID, cs.WindowStart.Unix()}
		if _, dup := got[k]; dup {
			t.Fatalf("two documents for cab %s, window %v", cs.CabID, cs.WindowStart)
		}
		got[k] = cs.Events
	}
	require.Equal(t, want, got, "events per (cab, minute) of the unkeyed input")

	zones := func(pattern string) map[string]float64 {
		m := map[string]float64{}
		for _, d := range c.docs(pattern) {
			var z struct {
				Zone   string    `json:"zone"`
				Start  time.Time `json:"window_start"`
				Events float64   `json:"events"`
			}
			require.NoError(t, json.Unmarshal(d.Source, &z))
			k := z.Zone + "@" + z.Start.Format(time.RFC3339)
			_, dup := m[k]
			require.False(t, dup, "two documents for zone window %s", k)
			m[k] = z.Events
		}
		return m
	}
	// Zone demand counts what the tracker keeps (no exact duplicate, no GPS jump), and the
	// tracker reads a cab's events in arrival order, which rekeying changes (a cab's events
	// come from six partitions): the counts agree with the keyed run's but for the few
	// events whose duplicate or jump verdict depends on that order.
	wantZones, gotZones := zones(keyedRun.index("zone-demand")), zones(r.index("zone-demand"))
	require.NotEmpty(t, wantZones)
	var wantSum, gotSum, differ float64
	for k, v := range wantZones {
		wantSum += v
		if gotZones[k] != v {
			differ++
		}
	}
	for _, v := range gotZones {
		gotSum += v
	}
	t.Logf("zone demand: keyed %d windows / %.0f events, rekeyed %d windows / %.0f events, %.0f windows differ",
		len(wantZones), wantSum, len(gotZones), gotSum, differ)
	require.InDelta(t, wantSum, gotSum, wantSum*0.005, "events in zone demand")
	require.Less(t, differ, float64(len(wantZones))*0.03, "zone windows that differ")

	// Without the flag, the same topic splits cabs over partitions: counted and warned.
	r2 := newRun(t, s, topic, "rekey-off")
	out = start(t, "fleetpipeline", pipelineBin, r2.args(s)...).succeed(t, 3*time.Minute)
	require.Regexp(t, `[1-9]\d* cabs seen on several partitions \(produce keyed by cab_id or run with -rekey-by-cab\)`, out)
	require.Contains(t, out, "run with -rekey-by-cab", "the warning names the fix")
}

// TestRekeyByCabAlertsExactlyOnce: with -rekey-by-cab the alerts come from the cab
// repartition's records, so the alerts topic's exactly-once producer is bound to that
// repartition's source: its replay after a crash is what emits alerts again. The unkeyed
// Porto + simulator input runs through two SIGKILLs (after committed batches with alerts) and
// a last run to the end; the alerts topic, read with read_committed, then holds each alert of
// the run's OpenSearch index exactly once (the tracker's verdicts depend on the arrival order
// through the repartition, so they are compared with this run's own documents, not with a
// keyed run's).
func TestRekeyByCabAlertsExactlyOnce(t *testing.T) {
	t.Parallel()
	s := needServices(t)
	topic := testenv.UniqueName(t, "rekey-eos")
	r := newRun(t, s, topic, "rekey-eos")
	start(t, "replay", replayBin, "-brokers", s.brokers, "-topic", topic, "-porto", portoCSV(t), "-quiet",
		"-source", "porto,sim", "-sim-events", "60000", "-unkeyed").succeed(t, time.Minute)
	args := r.args(s, "-rekey-by-cab")
	cabsTopic := r.group + "-cabs-repartition"
	for i := range 2 {
		p := start(t, fmt.Sprintf("fleetpipeline (crash %d)", i+1), pipelineBin, args...)
		// Progress is the group's commits on the input or on the cab repartition: the input's
		// Source may commit all of it before the first crash, and the run after it then only
		// replays the repartition (where the alerts come from).
		progress := func() int64 {
			_, _, in := groupOffsets(t, s, topic, r.group)
			_, _, cabs := groupOffsets(t, s, cabsTopic, r.group)
			return in + cabs
		}
		cabsPer, _, cabsSum := groupOffsets(t, s, cabsTopic, r.group)
		t.Logf("committed offsets of %s by partition: %v", cabsTopic, cabsPer)
		committed := committedOffsets(t, s, topic, r.group) + cabsSum
		waitFor(t, 2*time.Minute, 50*time.Millisecond, "a committed batch with alerts", func() bool {
			require.False(t, p.exited(), "fleetpipeline ended before the crash:\n%s", tail(p.out.String(), 3000))
			if !strings.Contains(p.out.String(), "alerts ") || alertsSeen(p) == 0 {
				return false
			}
			return progress() > committed
		})
		p.kill(t)
		t.Logf("crash %d after %d alerts", i+1, alertsSeen(p))
	}
	start(t, "fleetpipeline (last)", pipelineBin, args...).succeed(t, 3*time.Minute)

	c := newOS(t, s)
	want := map[string]bool{}
	for _, d := range c.docs(r.index("cab-alerts")) {
		want[d.ID] = true
	}
	require.NotEmpty(t, want)
	got := committedAlerts(t, strings.Split(s.brokers, ","), r.alerts)
	var twice, missing, extra []string
	for id, n := range got {
		if n > 1 {
			twice = append(twice, id)
		}
		if !want[id] {
			extra = append(extra, id)
		}
	}
	for id := range want {
		if got[id] == 0 {
			missing = append(missing, id)
		}
	}
	t.Logf("alerts: %d in OpenSearch, %d distinct in the topic", len(want), len(got))
	require.Empty(t, twice, "alerts read more than once with read_committed")
	require.Empty(t, missing, "alerts in OpenSearch but not in the topic")
	require.Empty(t, extra, "alerts in the topic but not in OpenSearch")
}

var alertsRE = regexp.MustCompile(`alerts (\d+)`)

// alertsSeen returns the alerts count of the process's last status line.
func alertsSeen(p *proc) int64 {
	m := alertsRE.FindAllStringSubmatch(p.out.String(), -1)
	if len(m) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(m[len(m)-1][1], 10, 64)
	return n
}

// TestRekeyByCabLateDeadLetterNamesInput: an event late for the cab stats after the cab
// repartition of -rekey-by-cab is dead-lettered with the telemetry topic's name, partition
// and offset in its headers (the input record, which a reprocessing can read), not the cab
// repartition's, whose records are purged as soon as they are committed. Events of three
// cabs spread round-robin over the six partitions are read first; the late one, an hour
// behind them, is produced to a partition of our choice while the job runs. Before the fix
// its dead letters named <group>-cabs-repartition and that topic's partition and offset.
func TestRekeyByCabLateDeadLetterNamesInput(t *testing.T) {
	t.Parallel()
	s := needServices(t)
	topic := testenv.UniqueName(t, "rekey-late")
	r := newRun(t, s, topic, "rekey-late")
	brokers := testenv.KafkaBrokers(t)
	prod := syncProducer(t, brokers, sarama.NewManualPartitioner) // unkeyed by cab: the partitions we say

	base := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	event := func(cab string, ts time.Time) sarama.Encoder {
		return sarama.StringEncoder(fmt.Sprintf(`{"cab_id":%q,"ts":%q,"lat":41.15,"lon":-8.61,"speed_kmh":30,"status":"hired"}`,
			cab, ts.Format(time.RFC3339Nano)))
	}
	var msgs []*sarama.ProducerMessage
	for i := range 600 {
		cab := fmt.Sprintf("CAB-L%d", i%3)
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: int32(i % 6), Key: sarama.StringEncoder(cab),
			Value: event(cab, base.Add(time.Duration(i/3)*30*time.Second))})
	}
	require.NoError(t, prod.SendMessages(msgs))

	p := start(t, "fleetpipeline", pipelineBin, r.args(s, "-rekey-by-cab", "-exit-when-idle", "10s")...)
	waitFor(t, 2*time.Minute, 50*time.Millisecond, "the events read", func() bool {
		require.False(t, p.exited(), "fleetpipeline ended early:\n%s", tail(p.out.String(), 3000))
		records, _ := progress(p)
		return records == int64(len(msgs))
	})
	late := &sarama.ProducerMessage{Topic: topic, Partition: 4, Key: sarama.StringEncoder("CAB-L1"), Value: event("CAB-L1", base.Add(-time.Hour))}
	part, off, err := prod.SendMessage(late)
	require.NoError(t, err)
	require.EqualValues(t, 4, part)
	out := p.succeed(t, 2*time.Minute)
	records, deadLetters, lateN := summary(t, out)
	require.EqualValues(t, len(msgs)+1, records)
	require.Zero(t, deadLetters)
	require.Positive(t, lateN, "the late event is counted")

	cabStats := 0
	for _, m := range readTopic(t, brokers, topic+".dlq", int(lateN), 30*time.Second) {
		require.Equal(t, stream.ReasonLate, headerValue(m, kafka.HeaderReason), "dead letter %s", m.Value)
		t.Logf("dead letter: %s at %s/%s/%s", headerValue(m, kafka.HeaderError), headerValue(m, kafka.HeaderSourceTopic),
			headerValue(m, kafka.HeaderSourcePartition), headerValue(m, kafka.HeaderSourceOffset))
		require.Equal(t, topic, headerValue(m, kafka.HeaderSourceTopic), "the late event's dead letter names the input topic")
		require.Equal(t, "4", headerValue(m, kafka.HeaderSourcePartition))
		require.Equal(t, strconv.FormatInt(off, 10), headerValue(m, kafka.HeaderSourceOffset))
		if strings.HasPrefix(headerValue(m, kafka.HeaderError), "cab-stats:") {
			cabStats++
		}
	}
	require.Equal(t, 1, cabStats, "the late event's cab-stats dead letter")
}
