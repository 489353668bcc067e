package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/testenv"
)

// The Porto sample, as the issue states it.
const (
	portoPoints = 47304
	portoCabs   = 308
)

// portoFixture is one pipeline run over the whole Porto sample, shared by the end-to-end and
// the dashboards tests (whichever comes first runs it).
var portoFixture struct {
	mu       sync.Mutex
	done     bool
	ok       bool
	run      pipelineRun
	out      string
	services services // for TestMain, which deletes the run's indexes at the end
}

func portoRun(t *testing.T) (pipelineRun, string) {
	t.Helper()
	f := &portoFixture
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		require.True(t, f.ok, "the shared Porto pipeline run failed in another test")
		return f.run, f.out
	}
	f.done = true
	s := needServices(t)
	topic := testenv.UniqueName(t, "e2e-porto")
	r := namedRun(t, s, topic, "e2e-porto")
	f.run, f.services = r, s
	t0 := time.Now()
	replay(t, s, topic, "-source", "porto")
	t1 := time.Now()
	out := start(t, "fleetpipeline", pipelineBin, r.args(s)...).succeed(t, 2*time.Minute)
	t.Logf("Porto: replay %v, fleetpipeline %v", t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
	f.run, f.out, f.ok = r, out, true
	return r, out
}

// cabWindow is a cab and the start of a stats window (Unix seconds).
type cabWindow struct {
	cab   string
	start int64
}

// portoCounts computes, from the CSV alone, the events per cab and one-minute window:
// point i of a trip is at TIMESTAMP + 15 s × i, the cab is "PORTO-" + TAXI_ID, and exact
// duplicates (same cab, time and position) count once.
func portoCounts(t *testing.T, path string) (counts map[cabWindow]int64, points, duplicates int) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	require.NoError(t, err)
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	for _, c := range []string{"TAXI_ID", "TIMESTAMP", "POLYLINE"} {
		require.Contains(t, col, c)
	}
	type point struct {
		cab      string
		ts       int64
		lat, lon float64
	}
	seen := map[point]bool{}
	counts = map[cabWindow]int64{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		ts, err := strconv.ParseInt(rec[col["TIMESTAMP"]], 10, 64)
		require.NoError(t, err)
		var poly [][2]float64 // [lon, lat]
		require.NoError(t, json.Unmarshal([]byte(rec[col["POLYLINE"]]), &poly))
		cab := "PORTO-" + rec[col["TAXI_ID"]]
		for i, p := range poly {
			points++
			pt := point{cab, ts + 15*int64(i), p[1], p[0]}
			if seen[pt] {
				duplicates++
				continue
			}
			seen[pt] = true
			counts[cabWindow{cab, pt.ts - pt.ts%60}]++
		}
	}
	return counts, points, duplicates
}

// cabStatsDoc is the part of a cab-stats document the tests look at.
type cabStatsDoc struct {
	CabID       string    `json:"cab_id"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Events      int64     `json:"events"`
}

func TestPortoEndToEnd(t *testing.T) {
	t.Parallel()
	s := needServices(t)
	r, out := portoRun(t)

	records, deadLetters, late := summary(t, out)
	require.EqualValues(t, portoPoints, records, "records consumed")
	require.Zero(t, deadLetters, "dead letters")
	require.Zero(t, late, "late events")

	want, points, dups := portoCounts(t, portoCSV(t))
	require.Equal(t, portoPoints, points, "points in the CSV")
	t.Logf("Porto sample: %d points, %d exact duplicates, %d (cab, minute) windows", points, dups, len(want))
	cabs := map[string]bool{}
	var wantSum int64
	for k, n := range want {
		cabs[k.cab] = true
		wantSum += n
	}
	require.Len(t, cabs, portoCabs)

	c := newOS(t, s)
	docs := c.docs(r.index("cab-stats"))
	ids := byID(t, docs)
	require.Len(t, ids, len(docs))
	got := map[cabWindow]int64{}
	var sum int64
	for _, d := range docs {
		var cs cabStatsDoc
		require.NoError(t, json.Unmarshal(d.Source, &cs), "document %s", d.ID)
		require.Equal(t, time.Minute, cs.WindowEnd.Sub(cs.WindowStart), "document %s", d.ID)
		k := cabWindow{cs.CabID, cs.WindowStart.Unix()}
		if _, dup := got[k]; dup { // not require.NotContains: that is linear in the map
			t.Fatalf("two documents for cab %s, window %v", cs.CabID, cs.WindowStart)
		}
		got[k] = cs.Events
		sum += cs.Events
	}
	require.EqualValues(t, portoPoints-dups, sum, "sum of events over cab-stats")
	require.Equal(t, want, got, "events per (cab, minute)")
	require.EqualValues(t, portoPoints-dups, int64(c.sum(r.index("cab-stats"), "events")), "sum aggregation of events")
	require.EqualValues(t, len(want), c.count(r.index("cab-stats")), "_count of cab-stats")
}

var windowsRE = regexp.MustCompile(`total (\d+) .* windows (\d+)`)

// progress returns the records and windows of the process's last status line.
func progress(p *proc) (records, windows int64) {
	m := windowsRE.FindAllStringSubmatch(p.out.String(), -1)
	if len(m) == 0 {
		return 0, 0
	}
	records, _ = strconv.ParseInt(m[len(m)-1][1], 10, 64)
	windows, _ = strconv.ParseInt(m[len(m)-1][2], 10, 64)
	return records, windows
}

// sources decodes every document of pattern, by id.
func sources(t *testing.T, c *osClient, pattern string) map[string]map[string]any {
	t.Helper()
	m := map[string]map[string]any{}
	for id, d := range byID(t, c.docs(pattern)) {
		var v map[string]any
		require.NoError(t, json.Unmarshal(d.Source, &v))
		m[id] = v
	}
	return m
}

// TestCrashRestartSameResults kills the pipeline with SIGKILL twice (midway through the
// stream, while the rest of it is not yet in the topic; then while it catches up after a
// restart), restarts it with the same group until it is idle, and compares every document with
// those of an uninterrupted run.
func TestCrashRestartSameResults(t *testing.T) {
	t.Parallel()
	s := needServices(t)
	topic := testenv.UniqueName(t, "e2e-crash")
	// newRun creates the topic, so the pipeline can start while replay is still producing.
	crashed := newRun(t, s, topic, "e2e-crash")
	clean := newRun(t, s, topic, "e2e-clean")
	clean.name = crashed.name // the same document ids

	// The replay is split in two at firstPart: the first crash comes after the first part is
	// in the topic and before the second is produced, whatever the speed of the machine.
	const total, firstPart = portoPoints + 200_000, 120_000
	replay := func(part ...string) *proc {
		return start(t, "replay", replayBin, append([]string{"-brokers", s.brokers, "-topic", topic,
			"-porto", portoCSV(t), "-quiet", "-source", "porto,sim", "-sim-events", "200000"}, part...)...)
	}
	replay("-limit", fmt.Sprint(firstPart)).succeed(t, time.Minute)
	args := crashed.args(s, "-stats-window", "1m")
	t0 := time.Now()

	// Crash 1: midway, after a batch with window documents was acknowledged and committed,
	// and after the zone repartition's commit moved: the restart then resumes the zone merge
	// window from a checkpoint with the watermark it had fired on (package stream, "Replay of
	// a repartitioned partition").
	p1 := start(t, "fleetpipeline (crash 1)", pipelineBin, args...)
	// The window count moves when a batch's outputs ran, before its commit: wait for the
	// commit itself.
	waitFor(t, time.Minute, 50*time.Millisecond, "a committed batch with window documents, and a zone repartition commit", func() bool {
		require.False(t, p1.exited(), "fleetpipeline (crash 1) ended early")
		if r, w := progress(p1); r == 0 || w == 0 {
			return false
		}
		_, _, sum := groupOffsets(t, s, topic, crashed.group)
		_, _, zones := groupOffsets(t, s, crashed.group+"-zones-repartition", crashed.group)
		return sum > 0 && zones > 0
	})
	p1.kill(t)
	rec1, win1 := progress(p1)
	committed := committedOffsets(t, s, topic, crashed.group)
	zones1 := committedOffsets(t, s, crashed.group+"-zones-repartition", crashed.group)
	t.Logf("crash 1 after %d records and %d windows (%v); %d offsets committed, %d of the zone repartition", rec1, win1, time.Since(t0).Round(time.Millisecond), committed, zones1)
	require.Positive(t, committed, "offsets committed before crash 1")
	require.LessOrEqual(t, committed, int64(firstPart), "offsets committed before crash 1")
	replay("-skip", fmt.Sprint(firstPart)).succeed(t, time.Minute)

	// Crash 2: while the restarted pipeline catches up, once it wrote window documents but
	// before its first batch is acknowledged.
	p2 := start(t, "fleetpipeline (crash 2)", pipelineBin, args...)
	waitFor(t, time.Minute, time.Millisecond, "window documents after the restart", func() bool {
		require.False(t, p2.exited(), "fleetpipeline (crash 2) ended early")
		_, w := progress(p2)
		return w > 0
	})
	p2.kill(t)
	rec2, win2 := progress(p2)
	committed2 := committedOffsets(t, s, topic, crashed.group)
	t.Logf("crash 2 after %d records and %d windows; %d offsets committed", rec2, win2, committed2)
	require.Less(t, committed2, int64(total), "offsets committed before crash 2")

	// The last restart runs until idle, next to an uninterrupted run with its own group.
	p3 := start(t, "fleetpipeline (restart)", pipelineBin, args...)
	ref := start(t, "fleetpipeline (uninterrupted)", pipelineBin, clean.args(s, "-stats-window", "1m")...)
	out3 := p3.succeed(t, 2*time.Minute)
	outRef := ref.succeed(t, 2*time.Minute)
	// The zone merge window's commit follows its oldest open window (it stayed at the first
	// offset, never committed, and a restart replayed the whole repartition, before).
	zones := committedOffsets(t, s, crashed.group+"-zones-repartition", crashed.group)
	require.Positive(t, zones, "offsets of the zone repartition committed")
	t.Logf("crash test took %v", time.Since(t0).Round(time.Millisecond))

	recRef, dlRef, lateRef := summary(t, outRef)
	require.EqualValues(t, total, recRef, "records of the uninterrupted run")
	require.Positive(t, dlRef, "the simulated fleet sends malformed records")
	_, _, late3 := summary(t, out3)
	t.Logf("late events: uninterrupted %d, after restart %d", lateRef, late3)

	requireAlertsExactlyOnce(t, strings.Split(s.brokers, ","), crashed.alerts, clean.alerts)

	c := newOS(t, s)
	for _, base := range []string{"cab-stats", "zone-demand", "cab-alerts"} {
		want := sources(t, c, clean.index(base))
		got := sources(t, c, crashed.index(base))
		require.NotEmpty(t, want, base)
		t.Logf("%s: %d documents", base, len(want))
		var missing, extra, differ []string
		for id, w := range want {
			g, ok := got[id]
			switch {
			case !ok:
				missing = append(missing, id)
			case fmt.Sprint(g) != fmt.Sprint(w):
				differ = append(differ, id)
			}
		}
		for id := range got {
			if _, ok := want[id]; !ok {
				extra = append(extra, id)
			}
		}
		if len(missing)+len(extra)+len(differ) > 0 {
			ex := func(ids []string) string {
				if len(ids) == 0 {
					return ""
				}
				return fmt.Sprintf("e.g. %s: uninterrupted %v, crashed %v", ids[0], want[ids[0]], got[ids[0]])
			}
			t.Errorf("%s after crashes (topic %s, group %s) differs from the uninterrupted run: %d missing (%s), %d extra (%s), %d different (%s)",
				base, topic, crashed.group, len(missing), ex(missing), len(extra), ex(extra), len(differ), ex(differ))
			for _, id := range differ[:min(len(differ), 5)] {
				t.Logf("%s %s:\n\tuninterrupted %v\n\tcrashed       %v", base, id, want[id], got[id])
			}
		}
	}
}

// TestBadMessagesDeadLettered produces malformed records among valid ones: each one lands in
// <topic>.dlq with the source headers, and none is counted in the stats.
func TestBadMessagesDeadLettered(t *testing.T) {
	t.Parallel()
	s := needServices(t)
	topic := testenv.UniqueName(t, "e2e-bad")
	r := newRun(t, s, topic, "e2e-bad")
	brokers := testenv.KafkaBrokers(t)

	prod := syncProducer(t, brokers, sarama.NewHashPartitioner)
	var err error

	base := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	valid := func(cab string, i int) []byte {
		return fmt.Appendf(nil, `{"cab_id":%q,"ts":%q,"lat":%.5f,"lon":%.5f,"speed_kmh":30,"status":"hired"}`,
			cab, base.Add(time.Duration(i)*10*time.Second).Format(time.RFC3339), 41.15+float64(i)*0.0005, -8.61)
	}
	ts := base.Add(5 * time.Second).Format(time.RFC3339)
	type bad struct {
		key, value, reason string // reason: the dead letter's, "decode" (not JSON) or "invalid" (refused values)
		partition          int32
		offset             int64
	}
	bads := []*bad{
		{key: "CAB-B1", value: `this is not JSON`, reason: "decode"},
		{key: "CAB-B2", value: fmt.Sprintf(`{"cab_id":"CAB-B2","ts":%q,"lat":123.4,"lon":-8.61}`, ts), reason: "invalid"},
		{key: "", value: fmt.Sprintf(`{"ts":%q,"lat":41.15,"lon":-8.61}`, ts), reason: "invalid"},
		{key: "CAB-B1", value: `{"cab_id":"CAB-B1","ts":"yesterday","lat":41.15,"lon":-8.61}`, reason: "invalid"},
	}
	cabs := []string{"CAB-B1", "CAB-B2", "CAB-B3"}
	const perCab = 30 // 5 minutes at 10 s: 5 one-minute windows per cab
	validCount, sentBad := 0, 0
	for i := range perCab {
		for _, cab := range cabs {
			_, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(cab), Value: sarama.ByteEncoder(valid(cab, i))})
			require.NoError(t, err)
			validCount++
		}
		if i%7 == 3 && i/7 < len(bads) { // the bad ones in between
			b := bads[i/7]
			msg := &sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(b.value)}
			if b.key != "" {
				msg.Key = sarama.StringEncoder(b.key)
			}
			b.partition, b.offset, err = prod.SendMessage(msg)
			require.NoError(t, err)
			sentBad++
		}
	}
	require.Equal(t, len(bads), sentBad, "bad records produced")

	out := start(t, "fleetpipeline", pipelineBin, r.args(s)...).succeed(t, 2*time.Minute)
	records, deadLetters, _ := summary(t, out)
	require.EqualValues(t, validCount+len(bads), records, "records consumed")
	require.EqualValues(t, len(bads), deadLetters, "dead letters")

	// The dead-letter topic holds exactly the bad records, with their origin.
	dlq := readTopic(t, brokers, topic+".dlq", len(bads), 30*time.Second)
	require.Len(t, dlq, len(bads))
	for _, b := range bads {
		var m *sarama.ConsumerMessage
		for _, d := range dlq {
			if string(d.Value) == b.value {
				m = d
			}
		}
		require.NotNil(t, m, "dead letter of %q", b.value)
		h := map[string]string{}
		for _, rh := range m.Headers {
			h[string(rh.Key)] = string(rh.Value)
		}
		require.Equal(t, b.key, string(m.Key), "key of %q", b.value)
		require.Equal(t, topic, h[kafka.HeaderSourceTopic], "headers of %q", b.value)
		require.Equal(t, strconv.Itoa(int(b.partition)), h[kafka.HeaderSourcePartition], "headers of %q", b.value)
		require.Equal(t, strconv.FormatInt(b.offset, 10), h[kafka.HeaderSourceOffset], "headers of %q", b.value)
		require.NotEmpty(t, h[kafka.HeaderError], "headers of %q", b.value)
		require.Equal(t, b.reason, h[kafka.HeaderReason], "reason of %q", b.value)
		t.Logf("dead letter %q: %s", b.value, h[kafka.HeaderError])
	}

	c := newOS(t, s)
	pattern := r.index("cab-stats")
	c.refresh(pattern)
	require.EqualValues(t, validCount, int64(c.sum(pattern, "events")), "sum of events == valid events")
	zones := r.index("zone-demand")
	c.refresh(zones)
	require.EqualValues(t, validCount, int64(c.sum(zones, "events")), "zone demand: sum of events == valid events (no jumps here)")
	docs := c.docs(pattern)
	byID(t, docs)
	perCabEvents := map[string]int64{}
	for _, d := range docs {
		var cs cabStatsDoc
		require.NoError(t, json.Unmarshal(d.Source, &cs))
		perCabEvents[cs.CabID] += cs.Events
	}
	require.Equal(t, map[string]int64{"CAB-B1": perCab, "CAB-B2": perCab, "CAB-B3": perCab}, perCabEvents)
}

// committedOffsets returns the sum of the group's committed offsets over topic's partitions,
// and logs them.
func committedOffsets(t *testing.T, s services, topic, group string) int64 {
	t.Helper()
	per, meta, sum := groupOffsets(t, s, topic, group)
	t.Logf("group %s: committed offsets of %s by partition: %v, metadata %q", group, topic, per, meta)
	return sum
}

// groupOffsets returns the group's committed offsets and checkpoints over topic's partitions,
// and their sum.
func groupOffsets(t *testing.T, s services, topic, group string) (per []int64, meta []string, sum int64) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(strings.Split(s.brokers, ","), sarama.NewConfig())
	require.NoError(t, err)
	defer admin.Close()
	parts := map[string][]int32{topic: {0, 1, 2, 3, 4, 5}}
	resp, err := admin.ListConsumerGroupOffsets(group, parts)
	require.NoError(t, err)
	per, meta = make([]int64, 6), make([]string, 6)
	for p, b := range resp.Blocks[topic] {
		per[p], meta[p] = b.Offset, b.Metadata
		if b.Offset > 0 {
			sum += b.Offset
		}
	}
	return per, meta, sum
}

// readTopic reads every partition of topic from the start until it has want messages, then
// checks that the high-water marks add up to exactly want.
func readTopic(t *testing.T, brokers []string, topic string, want int, timeout time.Duration) []*sarama.ConsumerMessage {
	t.Helper()
	client, err := sarama.NewClient(brokers, sarama.NewConfig())
	require.NoError(t, err)
	defer client.Close()
	var parts []int32
	waitFor(t, timeout, 50*time.Millisecond, "topic "+topic, func() bool {
		_ = client.RefreshMetadata(topic)
		parts, err = client.Partitions(topic)
		return err == nil && len(parts) > 0
	})
	var hwm int64
	for _, p := range parts {
		n, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		require.NoError(t, err)
		o, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		require.NoError(t, err)
		hwm += n - o
	}
	require.EqualValues(t, want, hwm, "messages in %s", topic)
	cons, err := sarama.NewConsumerFromClient(client)
	require.NoError(t, err)
	defer cons.Close()
	msgs := make(chan *sarama.ConsumerMessage, want)
	for _, p := range parts {
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		require.NoError(t, err)
		defer pc.AsyncClose()
		go func() {
			for m := range pc.Messages() {
				select {
				case msgs <- m:
				default:
				}
			}
		}()
	}
	var out []*sarama.ConsumerMessage
	deadline := time.After(timeout)
	for len(out) < want {
		select {
		case m := <-msgs:
			out = append(out, m)
		case <-deadline:
			t.Fatalf("read %d of %d messages from %s", len(out), want, topic)
		}
	}
	return out
}

// TestBadRequestsDeadLettered: with -requests-topic, ride requests that do not decode or are
// refused go to <topic>.dlq with their origin, and the summary counts them: it counted the
// telemetry input only, so a run whose requests were dead-lettered reported "0 dead letters".
func TestBadRequestsDeadLettered(t *testing.T) {
	t.Parallel()
	s := needServices(t)
	r, requests := newRequestsRun(t, s, "e2e-badreq")
	topic := r.topic
	brokers := testenv.KafkaBrokers(t)
	prod := syncProducer(t, brokers, sarama.NewHashPartitioner)

	base := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	for i := range 20 {
		v := fmt.Appendf(nil, `{"cab_id":"CAB-R1","ts":%q,"lat":41.15,"lon":-8.61,"status":"available"}`, base.Add(time.Duration(i)*10*time.Second).Format(time.RFC3339))
		_, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("CAB-R1"), Value: sarama.ByteEncoder(v)})
		require.NoError(t, err)
	}
	ts := base.Add(time.Minute).Format(time.RFC3339)
	good := []string{
		fmt.Sprintf(`{"request_id":"R-1","ts":%q,"lat":41.15,"lon":-8.61,"status":"requested"}`, ts),
		fmt.Sprintf(`{"request_id":"R-2","ts":%q,"lat":41.15,"lon":-8.61,"status":"requested"}`, ts),
	}
	bad := []string{
		`not a request`,
		fmt.Sprintf(`{"request_id":"R-3","ts":%q,"lat":41.15,"lon":-8.61,"status":"assigned"}`, ts), // no cab
		fmt.Sprintf(`{"request_id":"R-4","ts":%q,"lat":41.15,"lon":-8.61}`, ts),                     // no status
	}
	for _, v := range append(slices.Clone(good), bad...) {
		_, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: requests, Value: sarama.StringEncoder(v)})
		require.NoError(t, err)
	}

	out := start(t, "fleetpipeline", pipelineBin, r.args(s, "-requests-topic", requests)...).succeed(t, 2*time.Minute)
	recs, dls := requestsSummary(t, out)
	require.Equal(t, []int64{int64(len(good) + len(bad)), int64(len(bad))}, []int64{recs, dls}, "ride requests consumed and dead-lettered")

	dlq := readTopic(t, brokers, topic+".dlq", len(bad), 30*time.Second)
	got := map[string]string{}
	for _, d := range dlq {
		for _, h := range d.Headers {
			if string(h.Key) == kafka.HeaderSourceTopic {
				got[string(d.Value)] = string(h.Value)
			}
		}
	}
	for _, v := range bad {
		require.Equal(t, requests, got[v], "dead letter of %q", v)
	}
	c := newOS(t, s)
	c.refresh(r.index("zone-supply"))
	require.EqualValues(t, len(good), int64(c.sum(r.index("zone-supply"), "requests")), "the valid requests counted")
}
