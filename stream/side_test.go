package stream_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// tagged is an operator's mixed output: a value for its main output, or one for a side output.
type tagged struct {
	V    int
	Side int // 0: main output; 1 or 2: that side output
}

// router passes every value on with the side output its remainder by 3 chooses: to its output
// (tag 0) or to side output 1 or 2. mixed makes it return every value tagged instead, for the
// Filters of the oracle graph.
type router struct {
	mixed bool
	sides [3]*stream.SideOutput[int]
}

func (o *router) Process(_ *stream.PartitionContext, in []stream.Elem[int], out []stream.Elem[tagged]) []stream.Elem[tagged] {
	for _, e := range in {
		side := e.Value % 3
		if o.mixed || side == 0 {
			out = append(out, stream.Elem[tagged]{Value: tagged{V: e.Value, Side: side}, Time: e.Time, Offset: e.Offset})
		} else {
			o.sides[side].Emit(stream.Elem[int]{Value: e.Value, Time: e.Time, Offset: e.Offset})
		}
	}
	return out
}
func (*router) Retained(int32) (int64, bool) { return 0, false }
func (*router) Drop(int32)                   {}
func (*router) StateSize() int               { return 0 }

// A side output gives, batch by batch and partition by partition, the elements with their
// event times and offsets that a Filter of the operator's mixed output gives (random inputs
// over several partitions, against that graph); the operator's own output holds the rest.
func TestSideOutput(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 3))
		var batches [][]stream.Record[int]
		off := map[int32]int64{}
		for range 1 + rng.IntN(6) {
			var b []stream.Record[int]
			for range rng.IntN(700) { // past a fused chain's chunk
				p := int32(rng.IntN(4))
				b = append(b, stream.Record[int]{Value: rng.IntN(1000), Partition: p, Offset: off[p],
					EventTime: streamtest.Epoch.Add(time.Duration(rng.IntN(100_000)) * time.Millisecond)})
				off[p]++
			}
			batches = append(batches, b)
		}
		run := func(mixed bool) [3]*elems[int] {
			h := streamtest.New(t, time.Second)
			q, src := streamtest.NewQueue[int](h)
			op := &router{mixed: mixed}
			out := stream.Apply(src, "router", stream.Operator[int, tagged](op))
			var got [3]*elems[int]
			for side := range 3 {
				var s *stream.Stream[int]
				switch {
				case mixed:
					s = stream.Map(out.Filter(func(v tagged) bool { return v.Side == side }), func(v tagged) int { return v.V })
				case side == 0:
					s = stream.Map(out, func(v tagged) int { return v.V })
				default:
					op.sides[side] = stream.NewSideOutput[int](out, "side")
					s = op.sides[side].Stream()
				}
				got[side] = &elems[int]{}
				streamtest.Collect(stream.Apply(s, "seen", stream.Operator[int, int](got[side])))
			}
			require.NoError(t, h.P.Err())
			for _, b := range batches {
				q.Add(b...)
			}
			h.Run(len(batches))
			return got
		}
		want, got := run(true), run(false)
		total := 0
		for side := range 3 {
			require.Equal(t, want[side].seen, got[side].seen, "seed %d, side %d", seed, side)
			total += len(got[side].seen)
		}
		n := 0
		for _, b := range batches {
			n += len(b)
		}
		require.Equal(t, n, total, "seed %d: every value once", seed)
	}
}

// A side output of a stream that no Operator makes is a graph error.
func TestSideOutputOfOtherStreamRefused(t *testing.T) {
	h := streamtest.New(t, time.Second)
	_, src := streamtest.NewQueue[int](h)
	stream.NewSideOutput[int](stream.Map(src, func(v int) int { return v }), "odd")
	err := h.P.Err()
	require.ErrorIs(t, err, stream.ErrGraph)
	require.ErrorContains(t, err, `NewSideOutput "odd"`)
}

// orderedRouter is a router whose output a RepartitionByTime may number by event time
// (WatermarkHolder, TimeOrderer): a promise about its output, not its side outputs.
type orderedRouter struct{ router }

func (*orderedRouter) HeldWatermark(int32) (int64, bool) { return 0, false }
func (*orderedRouter) TimeOrder() string                 { return "" }

// TestRepartitionByTimeOfSideOutputRefused: a side output carries what its operator emits
// beside its output, not the output that the operator's TimeOrderer speaks for (here every
// record the operator reads, which repeat event times across batches), so RepartitionByTime
// of it is refused when the graph is built, as of a window's Late stream; of the operator's
// output it is accepted.
func TestRepartitionByTimeOfSideOutputRefused(t *testing.T) {
	for _, side := range []bool{true, false} {
		h := streamtest.New(t, time.Second)
		q, src := streamtest.NewQueue[int](h)
		op := &orderedRouter{}
		out := stream.Apply(src, "ordered", stream.Operator[int, tagged](op))
		op.sides[1] = stream.NewSideOutput[int](out, "ones")
		op.sides[2] = stream.NewSideOutput[int](out, "twos")
		ints := stream.Map(out, func(v tagged) int { return v.V })
		if side {
			ints = op.sides[1].Stream().Filter(func(int) bool { return true })
		}
		ex := streamtest.NewExchange(streamtest.NewExchangeLog[int](2))
		stream.RepartitionByTime(ints, "by-time", ex, func(v int) uint64 { return uint64(v) })
		h.AddExchange(ex)
		q.AddValues(1, 4)
		if !side {
			require.NoError(t, h.P.Err())
			continue
		}
		err := h.P.Err()
		require.ErrorIs(t, err, stream.ErrGraph)
		require.ErrorContains(t, err, `RepartitionByTime "by-time": its stream "filter" is made from the side output "ones" of the operator "ordered"`)
		_, stepErr := h.TryStep()
		require.ErrorIs(t, stepErr, stream.ErrGraph)
	}
}

// dropEmitter emits to its side output from Drop, which the pipeline calls outside Process.
type dropEmitter struct {
	router
}

func (o *dropEmitter) Drop(int32) { o.sides[1].Emit(stream.Elem[int]{Value: -1}) }

// Emit outside the operator's Process would put the value in the next partition's batch: it
// panics, naming the operator, whether called by the pipeline outside Process (Drop) or by
// anything else; Emit from Process works (TestSideOutput).
func TestSideOutputEmitOutsideProcessPanics(t *testing.T) {
	h := streamtest.New(t, time.Second)
	q, src := streamtest.NewQueue[int](h)
	op := &dropEmitter{}
	out := stream.Apply(src, "router", stream.Operator[int, tagged](op))
	for i := 1; i < 3; i++ {
		op.sides[i] = stream.NewSideOutput[int](out, "side")
	}
	side := streamtest.Collect(op.sides[1].Stream())
	q.Add(stream.Record[int]{Value: 4, Partition: 0})
	h.Run(1)
	require.Equal(t, []int{4}, side.Slice(), "Emit from Process")
	require.PanicsWithValue(t, `stream: SideOutput.Emit of "router" called outside the operator's Process`, func() {
		op.sides[2].Emit(stream.Elem[int]{Value: 5})
	})
	require.PanicsWithValue(t, `stream: SideOutput.Emit of "router" called outside the operator's Process`, func() {
		op.Drop(0)
	})
}
