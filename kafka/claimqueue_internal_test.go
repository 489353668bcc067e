package kafka

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// popFront takes n records from the queue's front as flush does after a push.
func popFront[T any](c *claimLoop[T], n int) {
	clear(c.queue[:n])
	c.queue = c.queue[n:]
	if len(c.queue) == 0 {
		c.queue = c.qarr[:0]
	}
}

// TestClaimQueueReusesItsArray: records streaming through a claim's queue (appended at the
// back, pushed from the front, the queue seldom empty) come out in order and whole, and once
// the queue has grown to its working size it takes no new array (makeRoom moves it to the
// front of its array instead), whatever the sizes of the pushes.
func TestClaimQueueReusesItsArray(t *testing.T) {
	c := &claimLoop[string]{}
	rng := rand.New(rand.NewPCG(1, 2))
	next, want := int64(0), int64(0)
	step := func() {
		for range rng.IntN(300) {
			if len(c.queue) >= 1000 { // the hold
				break
			}
			c.makeRoom() // as decode does
			c.queue = append(c.queue, stream.Record[string]{Value: "v", Offset: next})
			next++
		}
		n := min(len(c.queue), rng.IntN(400))
		for i := range n {
			require.Equal(t, want, c.queue[i].Offset)
			want++
		}
		popFront(c, n)
	}
	for range 200 { // growing to the working size
		step()
	}
	arrays := 0
	last := cap(c.qarr)
	for range 5000 {
		step()
		if cap(c.qarr) != last {
			arrays++
			last = cap(c.qarr)
		}
	}
	require.Greater(t, want, int64(500_000), "records must have streamed through")
	require.Zero(t, arrays, "the queue took a new array after its warm-up")
	// The places behind the queue hold nothing: no value outlives its push.
	for i := range cap(c.qarr) {
		inQueue := i >= cap(c.qarr)-cap(c.queue) && i < cap(c.qarr)-cap(c.queue)+len(c.queue)
		if !inQueue {
			require.Empty(t, c.qarr[:cap(c.qarr)][i].Value, "place %d", i)
		}
	}
}

// inPlace decodes a message's value into a slice of bytes in place, and reports what dst
// held when it was called.
type inPlace struct{ dirty *bool }

func (inPlace) Decode(m *Message) ([]byte, time.Time, error) {
	return append([]byte(nil), m.Value...), time.Time{}, nil
}

func (c inPlace) DecodeInto(m *Message, dst *[]byte) (time.Time, error) {
	*c.dirty = *c.dirty || *dst != nil
	if string(m.Value) == "bad" {
		*dst = append(*dst, "partly decoded"...)
		return time.Time{}, errors.New("bad")
	}
	*dst = append(*dst, m.Value...)
	return time.Unix(1, 0), nil
}

// TestClaimDecodesInPlace: with a DecoderInto codec the claim decodes each record into its
// slot at the queue's end, handed over zeroed whatever the slot held, and a record
// taken back for a dead letter leaves nothing in the array.
func TestClaimDecodesInPlace(t *testing.T) {
	var dirty bool
	codec := inPlace{dirty: &dirty}
	c := &claimLoop[[]byte]{codec: codec, into: codec}
	for i, v := range []string{"a", "bad", "b", "c"} {
		c.msg.Value = []byte(v)
		r, ts, err := c.decode()
		if err != nil {
			c.unqueue()
			require.Equal(t, "bad", v)
			require.Nil(t, c.queue[:cap(c.queue)][len(c.queue)].Value, "a discarded record left in the array")
			continue
		}
		require.Equal(t, time.Unix(1, 0), ts)
		require.Same(t, &c.queue[len(c.queue)-1], r)
		require.Equal(t, v, string(r.Value), "record %d", i)
		if v == "b" {
			// Whatever a slot past the queue's end may hold, DecodeInto gets it zeroed.
			c.queue[:cap(c.queue)][len(c.queue)].Value = []byte("stale")
		}
	}
	require.False(t, dirty, "DecodeInto got a slot that was not zeroed")
	require.Len(t, c.queue, 3)
	require.Equal(t, "c", string(c.queue[2].Value))
}
