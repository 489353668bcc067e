package kafka

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

func TestShuffledRecordRoundTrip(t *testing.T) {
	codec := shuffleCodec[stream.Pair[string, int64]]{stream.PairCodec[string, int64](stream.StringCodec{}, stream.JSONCodec[int64]())}
	for _, r := range []stream.Shuffled[stream.Pair[string, int64]]{
		{Value: stream.KV("cab-1", int64(42)), Partition: 3, From: 1<<26 | 5, Seq: 123456789, Sub: 2, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano()},
		{Value: stream.KV("", int64(-1)), Partition: 0, From: 0, Seq: 0, Sub: 0, Time: -5},
		{Partition: 7, From: 65539, Seq: 99, Mark: true, Watermark: stream.NoWatermark, Upstreams: 12},
		{Partition: 1, From: 2, Seq: math.MaxInt64, Mark: true, Idle: true, End: true, Watermark: stream.EndOfTime, Upstreams: 1},
	} {
		var b []byte
		b = appendShuffled(b, &r)
		if !r.Mark {
			var err error
			b, err = codec.c.Append(b, r.Value)
			require.NoError(t, err)
		}
		got, ts, err := codec.Decode(&Message{Partition: r.Partition, Value: b})
		require.NoError(t, err)
		require.Equal(t, r, got)
		if r.Mark {
			require.True(t, ts.IsZero(), "a mark has no event time")
		} else {
			require.Equal(t, r.Time, ts.UnixNano())
		}
		// Every truncation of a mark or of the header is an error, never a panic.
		for n := range len(b) {
			if _, _, err := codec.Decode(&Message{Value: b[:n]}); err == nil && r.Mark {
				t.Fatalf("a mark cut to %d of %d bytes decoded", n, len(b))
			}
		}
	}
	_, _, err := codec.Decode(&Message{Value: []byte{0x20, 0, 0, 0, 0}})
	require.ErrorContains(t, err, "unknown record format")
}

func FuzzDecodeShuffled(f *testing.F) {
	codec := shuffleCodec[string]{stream.StringCodec{}}
	f.Add(appendShuffled(nil, &stream.Shuffled[string]{From: 3, Seq: 10, Time: 1e18}))
	f.Add(appendShuffled(nil, &stream.Shuffled[string]{From: 3, Seq: 10, Mark: true, Watermark: -1, Upstreams: 4}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, _, err := codec.Decode(&Message{Value: b})
		if err != nil {
			return
		}
		// What decodes encodes back to bytes that decode to the same record (varints may
		// have been written longer than needed).
		out := appendShuffled(nil, &r)
		if !r.Mark {
			out = append(out, r.Value...)
		}
		again, _, err := codec.Decode(&Message{Value: out})
		require.NoError(t, err)
		require.Equal(t, r, again)
	})
}
