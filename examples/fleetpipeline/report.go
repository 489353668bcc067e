// What the job reports: its dead letters of late and refused records, the status line and the
// summary.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/window"
)

// lateDeadLetters turns a window's late side stream into dead letters (window.Late.DeadLetter)
// whose Err names the operator the record was late for, or refused by: several operators
// send theirs to the one dead-letter topic.
func lateDeadLetters[T any](late *stream.Stream[window.Late[T]], operator string,
	origin func(int32) (string, int32, bool), record func(T) (key, value []byte, err error)) *stream.Stream[stream.DeadLetter] {
	return stream.Map(late, func(l window.Late[T]) stream.DeadLetter {
		k, v, err := record(l.Value)
		return byOperator(l.DeadLetter(origin, k, v), operator, err)
	})
}

// byOperator returns dl with its Err naming the operator the record was late for, and err,
// the error of encoding the record for it, if any (decoded records are valid, so that does
// not happen; the error is kept).
func byOperator(dl stream.DeadLetter, operator string, err error) stream.DeadLetter {
	dl.Err = operator + ": " + dl.Err
	if err != nil {
		dl.Err += "; encoding the record: " + err.Error()
	}
	return dl
}

// pickupsDeadLetters turns the time-to-pickup join's late side stream into dead letters
// (join.Late.DeadLetter) whose Err names the join, "pickups". A late request's value is the
// request as the requests topic holds it (telemetry.AppendRequest), so that it can be read
// and produced again as any input record; it was the join's side in Go's field names, which
// DecodeRequest refuses. A late trip start's is the join's side, the pickup point the join
// holds of the event (the event itself is at the telemetry record the headers name).
func pickupsDeadLetters(late *stream.Stream[join.Late[string, telemetry.Request, telemetry.PickupPoint]],
	origin func(int32) (string, int32, bool)) *stream.Stream[stream.DeadLetter] {
	return stream.Map(late, func(l join.Late[string, telemetry.Request, telemetry.PickupPoint]) stream.DeadLetter {
		var v []byte
		var err error
		if l.Side.IsRight {
			v, err = json.Marshal(l.Side)
		} else {
			v, err = telemetry.AppendRequest(nil, l.Side.Left)
		}
		return byOperator(l.DeadLetter(origin, []byte(l.Key), v), "pickups", err)
	})
}

// refusedDeadLetters names the origin of the tracker's key-limit dead letters, which carry
// their event's pipeline partition and offset: after the cab repartition (-rekey-by-cab)
// the input record's where the batch could tell it (telemetry.Tracker.DeadLetters), so that
// they name the input record, as late ones do, not the repartition topic, purged once
// committed.
func refusedDeadLetters(refused *stream.Stream[stream.DeadLetter], origin func(int32) (string, int32, bool)) *stream.Stream[stream.DeadLetter] {
	return stream.Map(refused, func(dl stream.DeadLetter) stream.DeadLetter {
		dl.SetOrigin(origin, dl.Partition, dl.Offset, nil)
		return dl
	})
}

// eventRecord is the dead letter's key and value of an event: its cab and JSON.
func eventRecord(e telemetry.Event) ([]byte, []byte, error) {
	v, err := telemetry.Append(nil, e)
	return []byte(e.CabID), v, err
}

// zoneEventRecord returns the dead letter of an event late for zone demand in its own
// partition (zone demand's first phase): what zone demand counts of it, keyed by cab, with
// its zone (the event itself is in cab stats' dead letters if late there too). Not safe for
// concurrent use: the pipeline calls it from its run loop.
func zoneEventRecord() func(telemetry.Tracked) ([]byte, []byte, error) {
	zone := telemetry.ZoneOf(telemetry.DefaultGeohashPrecision)
	return func(t telemetry.Tracked) ([]byte, []byte, error) {
		v, err := json.Marshal(struct {
			Zone string `json:"zone"`
			telemetry.ZoneSample
		}{zone(t), t.Sample()})
		return []byte(t.CabID), v, err
	}
}

// zonePartialRecord is the dead letter of a partial zone demand late after the repartition
// (it happens only when partitions were idle): the figures of the events it holds, keyed by
// zone.
func zonePartialRecord(p zoneShuffled) ([]byte, []byte, error) {
	d := telemetry.ZoneMergeAgg{}.Result(p.Value)
	v, err := json.Marshal(struct {
		Zone         string  `json:"zone"`
		Events       int64   `json:"events"`
		Cabs         int64   `json:"cabs"`
		Pickups      int64   `json:"pickups"`
		SpeedSamples int64   `json:"speed_samples"`
		SpeedSumKmh  float64 `json:"speed_sum_kmh"`
	}{p.Key, d.Events, d.Cabs, d.Pickups, d.SpeedSamples, d.SpeedSumKmh})
	return []byte(p.Key), v, err
}

// startStatus prints the status line every interval (none if 0) until ctx ends or stop is
// called; stop returns once the last line is written, so that none comes after the summary
// (or after run returned). stop may be called more than once.
func startStatus(ctx context.Context, w io.Writer, every time.Duration, cnt *counters, h holders) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		status(ctx, w, every, cnt, h)
	}()
	return func() {
		cancel()
		<-done
	}
}

func status(ctx context.Context, w io.Writer, every time.Duration, cnt *counters, h holders) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var lastRecords int64
	lastAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s := cnt.last.Load()
			var rate float64
			if s != nil {
				rate = float64(s.Source.Records-lastRecords) / now.Sub(lastAt).Seconds()
				lastRecords, lastAt = s.Source.Records, now
			}
			fmt.Fprintln(w, statusText(now, rate, s, cnt, h))
		}
	}
}

// namedSource is a source's live stats under the name the status line gives it.
type namedSource struct {
	name  string
	stats func() stream.SourceStats
}

// holders are what can hold the job up, read live at each status line: a batch's rate of
// 0 rec/s, or no first batch, said nothing of why.
type holders struct {
	retrying func() (stream.RetryInfo, bool) // stream.Pipeline.Retrying
	sources  []namedSource
	sinks    []namedSink
}

// statusText is the status line at now: the rate and counts of the last batch s (nil before
// the first), the read lag of the live sources, and, after "held:", what holds the job.
func statusText(now time.Time, rate float64, s *stream.BatchStats, cnt *counters, h holders) string {
	live := make([]stream.SourceStats, len(h.sources))
	for i, src := range h.sources {
		live[i] = src.stats()
	}
	var b []byte
	if s == nil {
		b = append(b, "fleetpipeline: waiting for the first batch"...)
	} else {
		if len(live) == 0 {
			live = []stream.SourceStats{s.Source}
		}
		wm := "-"
		if !s.Watermark.IsZero() {
			wm = s.Watermark.Format(time.RFC3339)
		}
		b = fmt.Appendf(b, "fleetpipeline: %.0f rec/s  total %d  %s  watermark %s  windows %d  alerts %d  dead letters %d  late %d  key limit %d",
			rate, s.Source.Records, lagText(live), wm, cnt.windows.Load(), cnt.alerts.Load(), s.Source.DeadLetters, cnt.late.Load(), cnt.refused.Load())
	}
	if held := h.held(now, live); len(held) > 0 {
		b = append(b, "  held: "...)
		b = append(b, strings.Join(held, "; ")...)
	}
	return string(b)
}

// lagText is the read lag of the sources (their partitions' End - Read: the records not read
// yet), or, from sources that report neither, their commit lag (high-water mark minus
// committed offset), which stays at the records of the open windows while the job keeps up.
func lagText(srcs []stream.SourceStats) string {
	var read, commit int64
	reported := false
	for _, s := range srcs {
		for name, end := range s.End {
			if r, ok := s.Read[name]; ok {
				read += max(end-r, 0)
				reported = true
			}
		}
		for _, l := range s.Lag {
			commit += l
		}
	}
	if reported {
		return fmt.Sprintf("read lag %d", read)
	}
	return fmt.Sprintf("commit lag %d", commit)
}

// held names what holds the job at now, each with how long: the batch being retried, sources
// that cannot reach Kafka (live are h.sources' stats), and sinks whose requests fail or wait
// for an answer.
func (h holders) held(now time.Time, live []stream.SourceStats) []string {
	var out []string
	if h.retrying != nil {
		if r, ok := h.retrying(); ok {
			out = append(out, fmt.Sprintf("batch %d retried for %v (attempt %d failed: %s)",
				r.Batch, heldFor(now, r.Since), r.Attempt, short(fmt.Sprint(r.Err))))
		}
	}
	for i, src := range h.sources {
		if st := live[i]; !st.FailingSince.IsZero() {
			out = append(out, fmt.Sprintf("source %s: Kafka unreachable for %v (%s)", src.name, heldFor(now, st.FailingSince), short(st.LastError)))
		}
	}
	for _, sk := range h.sinks {
		st := sk.stats()
		if !st.FailingSince.IsZero() {
			out = append(out, fmt.Sprintf("sink %s: failing for %v, %d attempts (%s)", sk.name, heldFor(now, st.FailingSince), st.FailedAttempts, short(st.LastError)))
		}
		if !st.SlowSince.IsZero() {
			out = append(out, fmt.Sprintf("sink %s: no answer from OpenSearch for %v", sk.name, heldFor(now, st.SlowSince)))
		}
	}
	return out
}

// heldFor is how long it has been from t to now, to the second.
func heldFor(now, t time.Time) time.Duration {
	return max(now.Sub(t), 0).Round(time.Second)
}

// maxReason is how much of an error the status line quotes: it names the outage; the log
// has the whole error.
const maxReason = 100

// short returns the first line of an error, at most maxReason runes of it.
func short(err string) string {
	err, _, _ = strings.Cut(err, "\n")
	if r := []rune(err); len(r) > maxReason {
		return string(r[:maxReason-1]) + "…"
	}
	return err
}

// namedSink is an OpenSearch sink's stats under the name the summary gives it.
type namedSink struct {
	name  string
	stats func() opensearch.Stats
}

func printSummary(w io.Writer, el time.Duration, cnt *counters, src interface{ Stats() stream.SourceStats }, sinks []namedSink) {
	s := src.Stats()
	// Records counts reads: kafka.Source counts no replays apart, so the line says so rather
	// than read as the topic's size after an outage or a rebalance.
	fmt.Fprintf(w, "fleetpipeline: consumed %d records (%.0f rec/s over %v; %s), %d dead letters, %d late events, %d past the key limits (both in the dead letters too)\n",
		s.Records, float64(s.Records)/el.Seconds(), el.Round(time.Millisecond), readsAgain, s.DeadLetters, cnt.late.Load(), cnt.refused.Load())
	for _, sk := range sinks {
		x := struct {
			name string
			st   opensearch.Stats
		}{sk.name, sk.stats()}
		fmt.Fprintf(w, "fleetpipeline: %-11s created %d, updated %d, dead-lettered %d, bulk retries %d, documents retried %d (write blocks %d), split requests %d, long ids bounded %d, ids not UTF-8 replaced %d\n",
			x.name, x.st.Indexed, x.st.Updated, x.st.DeadLettered, x.st.RequestRetries, x.st.Retried, x.st.Blocked, x.st.Split, x.st.LongIDs, x.st.InvalidIDs)
	}
	cnt.mu.Lock()
	lat := slices.Clone(cnt.latency.last)
	total := cnt.latency.total
	cnt.mu.Unlock()
	if len(lat) > 0 {
		slices.Sort(lat)
		of := ""
		if total > int64(len(lat)) {
			of = fmt.Sprintf(" over the last %d", len(lat)) // before the count, which bench/e2e.sh reads last
		}
		fmt.Fprintf(w, "fleetpipeline: window close to cab stats acknowledged: median %v, p99 %v%s (%d batches)\n",
			lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)*99/100].Round(time.Millisecond), of, total)
	}
}

// counters are what the status line shows.
type counters struct {
	windows, alerts atomic.Int64
	late            atomic.Int64 // late records written to the dead letters
	refused         atomic.Int64 // records past a key limit written to the dead letters
	last            atomic.Pointer[stream.BatchStats]
	mu              sync.Mutex
	latency         latencies // window close (batch) to cab stats acknowledged
}

// maxLatencies is how many batches' latencies the summary's percentiles are taken over: the
// last 65,536 (18 hours of one-second batches, 512 KiB).
const maxLatencies = 1 << 16

// latencies keeps the latencies of the last maxLatencies batches, so that a job that runs
// for months holds a bounded sample (it kept every batch's, 0.7 MB a day at one batch a
// second). The zero value is empty and ready to use.
type latencies struct {
	last  []time.Duration // a ring once full; next is its oldest
	next  int
	total int64 // added in all
}

func (l *latencies) add(d time.Duration) {
	l.total++
	if len(l.last) < maxLatencies {
		l.last = append(l.last, d)
		return
	}
	l.last[l.next] = d
	l.next = (l.next + 1) % len(l.last)
}

// printRequestsSummary prints what the ride requests input (-requests-topic) read: the
// summary's first line counts the telemetry only.
func printRequestsSummary(w io.Writer, src interface{ Stats() stream.SourceStats }) {
	s := src.Stats()
	fmt.Fprintf(w, "fleetpipeline: ride requests: consumed %d records, %d dead letters (%s)\n", s.Records, s.DeadLetters, readsAgain)
}

// readsAgain says what the summary's records count: reads, a record replayed from the
// committed offset after a rebalance, a restart or a Kafka outage counted again.
const readsAgain = "reads: a record read again after a rebalance, a restart or a Kafka outage counts again"

// sender is a repartition's exchange, as the summary reports it.
type sender interface {
	Topic() string
	Sent() (records, bytes int64)
	SentMessages() int64
}

// printExchanges prints what each repartition wrote: records, the Kafka messages they were
// packed into and the bytes a record took (header and value, before compression).
func printExchanges(w io.Writer, exchanges []sender) {
	for _, e := range exchanges {
		recs, bytes := e.Sent()
		per := 0.0
		if recs > 0 {
			per = float64(bytes) / float64(recs)
		}
		fmt.Fprintf(w, "fleetpipeline: repartition %s: %d records in %d messages, %.1f bytes a record\n", e.Topic(), recs, e.SentMessages(), per)
	}
}

// outputTimes formats a batch's per-output times for -v's batch line, "name=time/values"
// for each output that wrote something or took a millisecond, outputs of one name summed:
// which output a slow batch waited for.
func outputTimes(outs []stream.OutputStats) string {
	var b []byte
	var names []string
	sum := map[string]stream.OutputStats{}
	for _, o := range outs {
		s, seen := sum[o.Output]
		if !seen {
			names = append(names, o.Output)
		}
		s.Time += o.Time
		s.Values += o.Values
		sum[o.Output] = s
	}
	for _, n := range names {
		s := sum[n]
		if s.Values == 0 && s.Time < time.Millisecond {
			continue
		}
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = fmt.Appendf(b, "%s=%s/%d", n, s.Time.Round(100*time.Microsecond), s.Values)
	}
	return string(b)
}
