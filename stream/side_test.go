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
