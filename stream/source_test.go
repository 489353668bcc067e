package stream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// The tests of the source buffer (Input) reuse benchEvent and pushBinder of bench_test.go.

// TestTryPushBatchBounds checks the bulk push against the buffer's record and byte bounds:
// records are taken while the buffer is under both bounds, and one record larger than the
// byte bound still enters an empty buffer.
func TestTryPushBatchBounds(t *testing.T) {
	sized := func(sizes ...int) []stream.Record[benchEvent] {
		recs := make([]stream.Record[benchEvent], len(sizes))
		for i, s := range sizes {
			recs[i] = stream.Record[benchEvent]{Value: benchEvent{Cab: i}, Offset: int64(i), Size: s}
		}
		return recs
	}
	for _, tc := range []struct {
		name     string
		records  int
		bytes    int64
		pushes   [][]stream.Record[benchEvent]
		accepted []int
	}{
		{"record bound", 5, 0, [][]stream.Record[benchEvent]{sized(1, 1, 1), sized(1, 1, 1), sized(1)}, []int{3, 2, 0}},
		{"byte bound", 100, 100, [][]stream.Record[benchEvent]{sized(60), sized(30, 20, 10), sized(1)}, []int{1, 2, 0}},
		{"big record into an empty buffer", 100, 100, [][]stream.Record[benchEvent]{sized(500, 1), sized(1)}, []int{1, 0}},
		{"empty push", 5, 10, [][]stream.Record[benchEvent]{nil, sized(3)}, []int{0, 1}},
		// Records of one offset (a packed message) enter together, past the bound.
		{"one offset whole", 3, 0, [][]stream.Record[benchEvent]{sameOffset(sized(1, 1), sized(1, 1, 1, 1)), sized(1)}, []int{6, 0}},
		{"one offset whole by bytes", 100, 10, [][]stream.Record[benchEvent]{sameOffset(sized(8), sized(4, 4, 4)), sized(1)}, []int{4, 0}},
		{"next offset waits", 3, 0, [][]stream.Record[benchEvent]{sameOffset(sized(1, 1), sized(1), sized(1, 1)), sized(1)}, []int{3, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := stream.New(time.Second, stream.WithBuffer(tc.records, tc.bytes))
			if err != nil {
				t.Fatal(err)
			}
			var in *stream.Input[benchEvent]
			stream.From(p, stream.Source[benchEvent](pushBinder[benchEvent]{&in}))
			for i, recs := range tc.pushes {
				if got := in.TryPushBatch(recs); got != tc.accepted[i] {
					t.Fatalf("push %d: accepted %d of %d records, want %d", i+1, got, len(recs), tc.accepted[i])
				}
			}
			last := len(tc.pushes) - 1
			if full := tc.accepted[last] < len(tc.pushes[last]); in.Full() != full {
				t.Fatalf("Full() = %v after the last push, want %v", in.Full(), full)
			}
		})
	}
}

// sameOffset numbers groups of records: the records of one group share its offset, as the
// records of a packed repartition message do.
func sameOffset(groups ...[]stream.Record[benchEvent]) []stream.Record[benchEvent] {
	var out []stream.Record[benchEvent]
	for off, g := range groups {
		for _, r := range g {
			r.Offset = int64(off)
			out = append(out, r)
		}
	}
	return out
}

// elemProbe is an Operator that records every element it sees, with its event time.
type elemProbe struct{ seen []stream.Elem[benchEvent] }

func (o *elemProbe) Process(_ *stream.PartitionContext, in []stream.Elem[benchEvent], out []stream.Elem[benchEvent]) []stream.Elem[benchEvent] {
	o.seen = append(o.seen, in...)
	return out
}
func (*elemProbe) Retained(int32) (int64, bool) { return 0, false }
func (*elemProbe) Drop(int32)                   {}
func (*elemProbe) StateSize() int               { return 0 }

// TestInputRevokeAndBatchTime buffers records of interleaved partitions, revokes one while
// they wait: its records leave the buffer and free their bytes; the others reach the
// pipeline, and those without an event time get the batch's time.
func TestInputRevokeAndBatchTime(t *testing.T) {
	clk := streamtest.NewClock(streamtest.Epoch)
	p, err := stream.New(time.Second, stream.WithClock(clk), stream.WithBuffer(100, 1000))
	if err != nil {
		t.Fatal(err)
	}
	var in *stream.Input[benchEvent]
	probe := &elemProbe{}
	stream.ForEachBatch(stream.Apply(stream.From(p, stream.Source[benchEvent](pushBinder[benchEvent]{&in})), "probe",
		stream.Operator[benchEvent, benchEvent](probe)), func(context.Context, stream.BatchInfo, []benchEvent) error { return nil })

	timed := streamtest.Epoch.Add(-time.Minute)
	var recs []stream.Record[benchEvent]
	for i, part := range []int32{0, 3, 0, 3, 5} {
		r := stream.Record[benchEvent]{Value: benchEvent{Cab: i}, Partition: part, Offset: int64(i), Size: 100}
		if i%2 == 0 {
			r.EventTime = timed
		}
		recs = append(recs, r)
	}
	if n := in.TryPushBatch(recs); n != 5 {
		t.Fatalf("accepted %d of 5", n)
	}
	in.Revoke(3)
	// 300 bytes left of 1000: seven more records of 100 bytes fit, the eighth does not.
	more := make([]stream.Record[benchEvent], 8)
	for i := range more {
		more[i] = stream.Record[benchEvent]{Value: benchEvent{Cab: 10 + i}, Partition: 5, Offset: int64(10 + i), Size: 100, EventTime: timed}
	}
	if n := in.TryPushBatch(more); n != 7 {
		t.Fatalf("after the revocation, accepted %d of 8 records, want 7", n)
	}
	clk.Advance(time.Second)
	if _, err := p.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := map[int]int64{}
	for _, e := range probe.seen {
		got[e.Value.Cab] = e.Time
	}
	want := map[int]int64{0: timed.UnixNano(), 2: timed.UnixNano(), 4: timed.UnixNano()}
	for i := range 7 {
		want[10+i] = timed.UnixNano()
	}
	if len(got) != len(want) {
		t.Fatalf("the pipeline saw %v, want the cabs of %v (none of revoked partition 3)", got, want)
	}
	for cab, ts := range want {
		if got[cab] != ts {
			t.Errorf("cab %d: event time %d, want %d", cab, got[cab], ts)
		}
	}

	// A record without an event time takes the time of the batch that takes it.
	in.TryPushBatch([]stream.Record[benchEvent]{{Value: benchEvent{Cab: 99}, Partition: 7, Offset: 1}})
	clk.Advance(time.Second)
	if _, err := p.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	last := probe.seen[len(probe.seen)-1]
	if last.Value.Cab != 99 || last.Time != clk.Now().UnixNano() {
		t.Fatalf("untimed record: got cab %d at %d, want cab 99 at the batch time %d", last.Value.Cab, last.Time, clk.Now().UnixNano())
	}
}

// Records pushed in bulk in runs of one partition (as the Kafka source pushes a fetch), mixed
// with single records, land in their partitions in order, with their event times and offsets;
// records without an event time take the batch time.
func TestPushRuns(t *testing.T) {
	clk := streamtest.NewClock(streamtest.Epoch)
	p, err := stream.New(time.Second, stream.WithClock(clk))
	require.NoError(t, err)
	var in *stream.Input[benchEvent]
	src := stream.From(p, stream.Source[benchEvent](pushBinder[benchEvent]{&in}))
	rec := &elems[benchEvent]{}
	var byPart []string
	stream.ForEachBatch(stream.Transform(stream.Apply(src, "record", stream.Operator[benchEvent, benchEvent](rec)),
		func(pc *stream.PartitionContext, vs []benchEvent) []string {
			cabs := make([]int, len(vs))
			for i, v := range vs {
				cabs[i] = v.Cab
			}
			return []string{fmt.Sprint(pc.Partition, cabs)}
		}), func(_ context.Context, _ stream.BatchInfo, vs []string) error {
		byPart = append(byPart, vs...)
		return nil
	})
	at := func(sec int) time.Time { return streamtest.Epoch.Add(time.Duration(sec) * time.Second) }
	parts := []int32{0, 0, 0, 1, 1, 0, 2, 2, 2, 2, 1, 9000, 9000}
	var recs []stream.Record[benchEvent]
	for i, part := range parts {
		r := stream.Record[benchEvent]{Value: benchEvent{Cab: i}, Partition: part, Offset: int64(100 + i)}
		if i%4 != 3 {
			r.EventTime = at(i)
		}
		recs = append(recs, r)
	}
	require.Equal(t, len(recs), in.TryPushBatch(recs))
	clk.Advance(time.Second)
	_, err = p.Step(context.Background())
	require.NoError(t, err)

	require.ElementsMatch(t, []string{"0 [0 1 2 5]", "1 [3 4 10]", "2 [6 7 8 9]", "9000 [11 12]"}, byPart)
	// The watermark is the slowest partition's newest event time: partition 0's, record 5.
	require.Equal(t, at(5), p.Stats().Watermark)
	require.Len(t, rec.seen, len(parts))
	for _, e := range rec.seen {
		i := e.Value.Cab
		want := at(i).UnixNano()
		if i%4 == 3 {
			want = at(1).UnixNano() // the batch time
		}
		require.Equal(t, want, e.Time, "record %d", i)
		require.Equal(t, int64(100+i), e.Offset, "record %d", i)
	}
}

// Blocks of records whose partitions alternate record by record (split by a counting pass and
// a scatter), longer than one block and mixed with runs, land in their partitions in order
// with their event times, offsets and sizes, as the same records pushed one by one do.
func TestPushInterleaved(t *testing.T) {
	parts := []int32{0, 1, 2, -1, 9000, 3}
	var recs []stream.Record[benchEvent]
	for i := range 1500 {
		part := parts[i%len(parts)]
		if i >= 1200 && i < 1300 {
			part = 2 // a run in between
		}
		r := stream.Record[benchEvent]{Value: benchEvent{Cab: i}, Partition: part, Offset: int64(i), Size: 1 + i%7}
		if part != 3 || i%5 != 0 { // some records of partition 3 have no event time
			r.EventTime = streamtest.Epoch.Add(time.Duration(i*(1+(int(part)+3)%3)) * time.Millisecond)
		}
		recs = append(recs, r)
	}
	type result struct {
		byPart    map[int32][]stream.Elem[benchEvent]
		watermark time.Time
		records   int
		bytes     int64
		committed map[int32]int64
	}
	run := func(push func(in *stream.Input[benchEvent])) result {
		clk := streamtest.NewClock(streamtest.Epoch)
		p, err := stream.New(time.Second, stream.WithClock(clk), stream.WithBuffer(len(recs), 0))
		require.NoError(t, err)
		var in *stream.Input[benchEvent]
		src := stream.From(p, stream.Source[benchEvent](pushBinder[benchEvent]{&in}))
		res := result{byPart: map[int32][]stream.Elem[benchEvent]{}}
		stream.Apply(src, "record", stream.Operator[benchEvent, benchEvent](&perPart{res.byPart}))
		push(in)
		clk.Advance(time.Second)
		_, err = p.Step(context.Background())
		require.NoError(t, err)
		st := p.Stats()
		res.watermark, res.records, res.bytes = st.Watermark, st.InputRecords, st.InputBytes
		res.committed = map[int32]int64{}
		for _, pos := range st.Committed {
			res.committed[pos.Partition] = pos.Offset
		}
		return res
	}
	bulk := run(func(in *stream.Input[benchEvent]) { require.Equal(t, len(recs), in.TryPushBatch(recs)) })
	single := run(func(in *stream.Input[benchEvent]) {
		for _, r := range recs {
			require.True(t, in.TryPush(r))
		}
	})
	require.Equal(t, single, bulk)
	// The slowest partitions are 0 and 9000 (1 ms per record); 0's newest record is 1494.
	require.Equal(t, streamtest.Epoch.Add(1494*time.Millisecond), bulk.watermark)
	require.Len(t, bulk.byPart, len(parts))
	require.Equal(t, len(recs), bulk.records)
	for part, es := range bulk.byPart {
		require.Equal(t, es[len(es)-1].Offset+1, bulk.committed[part], "partition %d is committed past its last record", part)
		for j, e := range es {
			require.Equal(t, part, recs[e.Offset].Partition)
			if j > 0 {
				require.Less(t, es[j-1].Offset, e.Offset, "partition %d keeps push order", part)
			}
		}
	}
}

// perPart records every element it sees by partition.
type perPart struct {
	m map[int32][]stream.Elem[benchEvent]
}

func (o *perPart) Process(pc *stream.PartitionContext, in []stream.Elem[benchEvent], out []stream.Elem[benchEvent]) []stream.Elem[benchEvent] {
	o.m[pc.Partition] = append(o.m[pc.Partition], in...)
	return out
}
func (*perPart) Retained(int32) (int64, bool) { return 0, false }
func (*perPart) Drop(int32)                   {}
func (*perPart) StateSize() int               { return 0 }

// TestSourceCount: a pipeline may have several sources, up to 32 (From and repartitions
// together); one more is a construction error.
func TestSourceCount(t *testing.T) {
	h := streamtest.New(t, time.Second)
	for range 32 {
		_, s := streamtest.NewQueue[int](h)
		streamtest.Collect(s)
	}
	require.NoError(t, h.P.Err())
	streamtest.NewQueue[int](h)
	require.ErrorIs(t, h.P.Err(), stream.ErrGraph)
	require.ErrorContains(t, h.P.Err(), "at most 32 sources")
}
