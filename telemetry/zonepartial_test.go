// Tests of two-phase zone demand (ZoneDemandLocal, RepartitionByTime, ZoneDemandMerge) and
// the binary codec of its partial accumulators.

package telemetry_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/window"
)

// roundTrip passes every partial through ZonePartialCodec, as the Kafka exchange does.
func roundTrip(t *testing.T, s *stream.Stream[telemetry.ZonePartial]) *stream.Stream[telemetry.ZonePartial] {
	codec := telemetry.ZonePartialCodec()
	var buf []byte
	return stream.Map(s, func(p telemetry.ZonePartial) telemetry.ZonePartial {
		var err error
		buf, err = codec.Append(buf[:0], p)
		require.NoError(t, err)
		back, err := codec.Decode(buf)
		require.NoError(t, err)
		return back
	})
}

// twoPhase builds ZoneDemandLocal -> RepartitionByTime -> ZoneDemandMerge over an in-memory
// exchange of parts partitions.
func twoPhase(t *testing.T, h *streamtest.Harness, tracked *stream.Stream[telemetry.Tracked], w window.Assigner, parts int) (*window.Windowed[string, telemetry.ZoneDemand, telemetry.ZonePartial], *streamtest.ExchangeLog[telemetry.ZonePartial]) {
	local, err := telemetry.ZoneDemandLocal(tracked, w)
	require.NoError(t, err)
	log := streamtest.NewExchangeLog[telemetry.ZonePartial](parts)
	ex := streamtest.NewExchange(log)
	byZone := stream.RepartitionByTime(telemetry.ZonePartials(local), "zones", ex, telemetry.ZonePartialHash, stream.WithRevisions())
	h.AddExchange(ex)
	merged, err := telemetry.ZoneDemandMerge(roundTrip(t, byZone), w)
	require.NoError(t, err)
	return merged, log
}

// TestZoneDemandTwoPhase: the hand-computed input of TestZoneDemandRepartitioned gives the
// same document in two phases, and the repartition carries one partial per partition instead
// of one record per event.
func TestZoneDemandTwoPhase(t *testing.T) {
	h := streamtest.New(t, time.Second)
	q, s := streamtest.NewQueue[telemetry.Event](h)
	tr, err := telemetry.Track(s)
	require.NoError(t, err)
	merged, log := twoPhase(t, h, tr.Events(), window.Tumbling(time.Minute), 3)
	res := streamtest.Collect(merged.Results())
	late := streamtest.Collect(merged.Late())
	zoneInput(q)
	h.RunUntilDone()

	zone, centre := zoneCell(t)
	rs := res.Slice()
	require.Len(t, rs, 1)
	require.True(t, rs[0].Final)
	require.Equal(t, telemetry.ZoneDemand{
		Zone: zone, WindowStart: t0, WindowEnd: t0.Add(time.Minute), Timestamp: t0,
		Events: 6, Cabs: 3, Pickups: 2, AvgSpeedKmh: (10 + 20 + 0 + 30) / 4.0, SpeedSamples: 4, SpeedSumKmh: 60, Location: centre,
	}, telemetry.ZoneDemandDoc(rs[0]))
	require.Empty(t, late.Slice())
	sent := 0
	for p := range int32(3) {
		for _, r := range log.Records(p) {
			if !r.Mark {
				sent++
			}
		}
	}
	require.Equal(t, 2, sent, "one partial per source partition, for 6 events")
}

// TestZoneDemandTwoPhaseEqualsOnePhase: on random fleets over several partitions, with
// events in order within each partition and partitions minutes apart, two-phase zone demand
// writes exactly the documents of KeyByZone, Repartition and ZoneDemandByZone, with far
// fewer records through the repartition.
func TestZoneDemandTwoPhaseEqualsOnePhase(t *testing.T) {
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 3))
		parts := 1 + rng.IntN(4)
		var batches [][]stream.Record[telemetry.Event]
		start := make([]time.Time, parts)
		for p := range start {
			start[p] = t0.Add(time.Duration(rng.IntN(300)) * time.Second)
		}
		next := make([]int64, parts)
		for range 6 + rng.IntN(6) {
			var b []stream.Record[telemetry.Event]
			for range 50 + rng.IntN(150) {
				p := rng.IntN(parts)
				start[p] = start[p].Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
				cab := fmt.Sprintf("cab-%d-%d", p, rng.IntN(12)) // a cab stays on its partition
				e := telemetry.Event{CabID: cab, Time: start[p], Lat: 41.14 + 0.01*float64(rng.IntN(4)), Lon: lon0 + 0.01*float64(rng.IntN(3)),
					Status: []telemetry.Status{avail, hired}[rng.IntN(2)]}
				if rng.IntN(3) > 0 {
					e.SpeedKmh, e.Has = float64(rng.IntN(90)), telemetry.HasSpeed
				}
				b = append(b, stream.Record[telemetry.Event]{Value: e, EventTime: e.Time, Partition: int32(p), Offset: next[p]})
				next[p]++
			}
			batches = append(batches, b)
		}
		w := window.Tumbling(time.Minute)
		run := func(two bool) (map[string]telemetry.ZoneDemand, int) {
			h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(time.Second))
			q, s := streamtest.NewQueue[telemetry.Event](h)
			q.SetPartitions(parts)
			tr, err := telemetry.Track(s)
			require.NoError(t, err)
			var results *streamtest.Collector[window.Result[string, telemetry.ZoneDemand]]
			var records func() int
			if two {
				merged, log := twoPhase(t, h, tr.Events(), w, 3)
				results = streamtest.Collect(merged.Results())
				late := streamtest.Collect(merged.Late())
				t.Cleanup(func() { require.Empty(t, late.Slice(), "seed %d: a partial was late after the repartition", seed) })
				require.NoError(t, err)
				records = func() int { return countValues(log, 3) }
			} else {
				keyed, err := telemetry.KeyByZone(tr.Events(), 0)
				require.NoError(t, err)
				log := streamtest.NewExchangeLog[stream.Pair[string, telemetry.ZoneSample]](3)
				_, shuffled := streamtest.NewRepartition(h, keyed, "zones", log)
				byZone, err := telemetry.ZoneDemandByZone(shuffled, w)
				require.NoError(t, err)
				results = streamtest.Collect(byZone.Results())
				records = func() int { return countValues(log, 3) }
			}
			for _, b := range batches {
				q.Add(b...)
			}
			q.End()
			h.RunUntilDone()
			docs := map[string]telemetry.ZoneDemand{}
			for _, r := range results.Slice() {
				d := telemetry.ZoneDemandDoc(r)
				id := d.DocID("p")
				_, dup := docs[id]
				require.False(t, dup, "seed %d: two documents for %s", seed, id)
				docs[id] = d
			}
			return docs, records()
		}
		want, perEvent := run(false)
		got, partials := run(true)
		require.NotEmpty(t, want)
		require.Equal(t, want, got, "seed %d", seed)
		require.Less(t, partials, perEvent, "seed %d: partials through the repartition", seed)
		t.Logf("seed %d: %d partitions, %d documents, %d records through the repartition in one phase, %d in two", seed, parts, len(want), perEvent, partials)
	}
}

// countValues counts the values (not the marks) in the first parts partitions of log.
func countValues[T any](log *streamtest.ExchangeLog[T], parts int32) int {
	n := 0
	for p := range parts {
		for _, r := range log.Records(p) {
			if !r.Mark {
				n++
			}
		}
	}
	return n
}

// TestZoneAccCodec: accumulators with few cabs (a slice) and many (a set) decode to what was
// encoded; every cut of an encoding, a byte left over and a foreign format byte are
// malformed; a cab id Event refuses is refused both ways.
func TestZoneAccCodec(t *testing.T) {
	codec := telemetry.ZoneAccCodec{}
	agg := telemetry.ZoneDemandAgg{}
	for _, cabs := range []int{0, 1, 3, 16, 17, 40} {
		acc := agg.Zero()
		for i := range cabs {
			e := ev(fmt.Sprintf("cab-%02d", i), float64(i), 41.1, float64(i%5*10)-1, hired)
			acc = agg.Add(acc, telemetry.Tracked{Event: e, Pickup: i%3 == 0})
			acc = agg.Add(acc, telemetry.Tracked{Event: e})
		}
		b, err := codec.Append([]byte("prefix"), acc)
		require.NoError(t, err)
		require.Equal(t, "prefix", string(b[:6]))
		enc := b[6:]
		back, err := codec.Decode(enc)
		require.NoError(t, err, "%d cabs", cabs)
		require.Equal(t, agg.Result(acc), agg.Result(back), "%d cabs", cabs)
		again, err := codec.Append(nil, back)
		require.NoError(t, err)
		require.Equal(t, enc, again, "%d cabs: one encoding", cabs)
		for cut := range len(enc) {
			_, err := codec.Decode(enc[:cut])
			require.ErrorIs(t, err, telemetry.ErrMalformed, "%d cabs, cut at %d", cabs, cut)
		}
		_, err = codec.Decode(append(append([]byte(nil), enc...), 0))
		require.ErrorIs(t, err, telemetry.ErrMalformed)
	}
	_, err := codec.Decode([]byte{0x41, 0})
	require.ErrorIs(t, err, telemetry.ErrMalformed)
	var de *telemetry.DecodeError
	_, err = codec.Decode([]byte{0x42, 1, 0, 0, 0, 1, 2, 'a', 0xff})
	require.True(t, errors.As(err, &de), "%v", err)
	require.ErrorIs(t, err, telemetry.ErrInvalid)

	// Found by review: forms Append never writes are malformed, so the encoding is canonical.
	for name, b := range map[string][]byte{
		"non-canonical speed sum":        {0x42, 1, 0, 1, 0x80, 0x00, 0},
		"more pickups than events":       {0x42, 1, 2, 0, 0, 0},
		"more speed samples than events": {0x42, 1, 0, 2, 0, 0},
		"speed sum above 1000 km/h":      {0x42, 1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0},
		"cab ids out of order":           {0x42, 2, 0, 0, 0, 2, 1, 'b', 1, 'a'},
		"a cab id twice":                 {0x42, 2, 0, 0, 0, 2, 1, 'a', 1, 'a'},
		"events above 2^53":              {0x42, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0, 0, 0},
	} {
		_, err := codec.Decode(b)
		require.ErrorIs(t, err, telemetry.ErrMalformed, name)
	}
	ok, err := codec.Decode([]byte{0x42, 2, 1, 1, 0x80, 0x01, 2, 1, 'a', 1, 'b'})
	require.NoError(t, err)
	require.Equal(t, telemetry.ZoneDemand{Events: 2, Cabs: 2, Pickups: 1, SpeedSamples: 1, SpeedSumKmh: 128e-6, AvgSpeedKmh: 128e-6}, agg.Result(ok))

	bad := agg.Add(agg.Zero(), telemetry.Tracked{Event: telemetry.Event{CabID: "a\xff", Time: t0}})
	b, err := codec.Append([]byte("x"), bad)
	require.ErrorIs(t, err, telemetry.ErrEncode)
	require.Equal(t, "x", string(b))
}

// TestZoneDemandLocalNeedsTumbling: a sliding window emits a window's keys in the order its
// engine first saw them, which a replay from a later start changes: two-phase zone demand
// refuses it.
func TestZoneDemandLocalNeedsTumbling(t *testing.T) {
	h := streamtest.New(t, time.Second)
	_, s := streamtest.NewQueue[telemetry.Event](h)
	tr, err := telemetry.Track(s)
	require.NoError(t, err)
	_, err = telemetry.ZoneDemandLocal(tr.Events(), window.Sliding(time.Minute, 30*time.Second))
	require.ErrorIs(t, err, telemetry.ErrInvalidOption)
	_, err = telemetry.ZoneDemandLocal(tr.Events(), window.Session(time.Minute))
	require.ErrorIs(t, err, telemetry.ErrInvalidOption)
	_, err = telemetry.ZoneDemandLocal(tr.Events(), window.Tumbling(time.Minute))
	require.NoError(t, err)
}

// FuzzZoneAccCodec: whatever the bytes, Decode either refuses them with a DecodeError or
// returns an accumulator that encodes to the same bytes and decodes to the same figures.
func FuzzZoneAccCodec(f *testing.F) {
	codec := telemetry.ZoneAccCodec{}
	agg := telemetry.ZoneDemandAgg{}
	acc := agg.Add(agg.Zero(), telemetry.Tracked{Event: ev("cab-1", 0, 41.1, 30, hired), Pickup: true})
	b, err := codec.Append(nil, acc)
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte{0x42, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		acc, err := codec.Decode(b)
		if err != nil {
			var de *telemetry.DecodeError
			require.True(t, errors.As(err, &de), "%v", err)
			return
		}
		enc, err := codec.Append(nil, acc)
		require.NoError(t, err)
		require.Equal(t, b, enc, "the encoding is canonical")
		back, err := codec.Decode(enc)
		require.NoError(t, err)
		require.Equal(t, agg.Result(acc), agg.Result(back))
	})
}

// TestZoneAccCodecPartition: a partial carries its source partition (format 0x43: the
// partition plus one, then layout 0x42), which survives the codec; a partial of an older
// release (0x42, no partition) still decodes, and encodes as it was; a partition 0 or beyond
// int32 is malformed. ZoneMergeAgg keeps the latest partial of each partition (a bounded
// run's early partial, then the next run's complete one) and adds a partial without one.
func TestZoneAccCodecPartition(t *testing.T) {
	codec := telemetry.ZoneAccCodec{}
	body := []byte{2, 1, 1, 0x80, 0x01, 2, 1, 'a', 1, 'b'} // 2 events, 1 pickup, cabs a and b
	dec := func(b []byte) telemetry.ZoneAcc {
		t.Helper()
		acc, err := codec.Decode(b)
		require.NoError(t, err, "% x", b)
		again, err := codec.Append(nil, acc)
		require.NoError(t, err)
		require.Equal(t, b, again, "one encoding")
		return acc
	}
	p2 := dec(append([]byte{0x43, 3}, body...))
	old := dec(append([]byte{0x42}, body...))
	require.Equal(t, telemetry.ZoneDemandAgg{}.Result(old), telemetry.ZoneDemandAgg{}.Result(p2))
	p2early := dec([]byte{0x43, 3, 1, 0, 0, 0, 1, 1, 'a'})
	p5 := dec([]byte{0x43, 6, 1, 0, 0, 0, 1, 1, 'c'})
	big := dec([]byte{0x43, 0xff, 0xff, 0xff, 0xff, 0x07, 1, 0, 0, 0, 1, 1, 'd'}) // partition MaxInt32 - 1
	for name, b := range map[string][]byte{
		"partition 0":           append([]byte{0x43, 0}, body...),
		"partition above int32": append([]byte{0x43, 0x80, 0x80, 0x80, 0x80, 0x08}, body...),
		"no partition":          {0x43},
		"non-canonical":         append([]byte{0x43, 0x83, 0x00}, body...),
	} {
		_, err := codec.Decode(b)
		require.ErrorIs(t, err, telemetry.ErrMalformed, name)
	}

	m := telemetry.ZoneMergeAgg{}
	acc := m.Add(m.Add(m.Zero(), p2early), p5)
	require.EqualValues(t, 2, m.Result(acc).Events)
	acc = m.Add(acc, p2)
	got := m.Result(acc)
	require.EqualValues(t, 3, got.Events, "partition 2's complete partial replaces its early one")
	require.EqualValues(t, 3, got.Cabs)
	acc = m.Add(acc, p2)
	require.Equal(t, got, m.Result(acc), "a copy replaces itself")
	acc = m.Add(acc, old)
	require.EqualValues(t, 5, m.Result(acc).Events, "a partial without a partition is added")
	acc = m.Add(acc, big)
	require.EqualValues(t, 6, m.Result(acc).Events)

	// Merge: of one partition's partials in both, the second accumulator's.
	a := m.Add(m.Add(m.Zero(), p2early), old)
	b := m.Add(m.Add(m.Zero(), p2), p5)
	require.EqualValues(t, 5, m.Result(m.Merge(a, b)).Events) // old 2 + p2 2 + p5 1
	require.EqualValues(t, 4, m.Result(m.Merge(b, a)).Events) // p2early 1 + p5 1 + old 2
}
