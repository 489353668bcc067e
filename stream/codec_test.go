package stream_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

func TestPairCodecRoundTrip(t *testing.T) {
	type val struct {
		A int
		B string
	}
	c := stream.PairCodec(stream.StringCodec{}, stream.JSONCodec[val]())
	for _, p := range []stream.Pair[string, val]{
		stream.KV("", val{}),
		stream.KV("zone-ez3f", val{A: -7, B: "x"}),
		stream.KV(string(make([]byte, 300)), val{A: 1 << 40, B: "long key"}),
	} {
		b, err := c.Append([]byte("prefix"), p)
		require.NoError(t, err)
		require.Equal(t, "prefix", string(b[:6]), "Append appends")
		got, err := c.Decode(b[6:])
		require.NoError(t, err)
		require.Equal(t, p, got)
		_, err = c.Decode(b[6 : 6+1])
		require.Error(t, err, "a cut encoding is an error")
	}
}

func FuzzPairCodec(f *testing.F) {
	f.Add("k", "v")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, k, v string) {
		c := stream.PairCodec(stream.StringCodec{}, stream.StringCodec{})
		b, err := c.Append(nil, stream.KV(k, v))
		require.NoError(t, err)
		got, err := c.Decode(b)
		require.NoError(t, err)
		require.Equal(t, stream.KV(k, v), got)
		_, _ = c.Decode([]byte(k)) // arbitrary bytes never panic
	})
}
