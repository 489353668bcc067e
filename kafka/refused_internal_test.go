package kafka

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// committingBinder hands the test the pipeline's Input and keeps what the pipeline commits.
type committingBinder struct {
	binder
	mu      sync.Mutex
	commits []stream.Position
}

func (b *committingBinder) Commit(_ context.Context, pos []stream.Position) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.commits = append(b.commits, pos...)
	return nil
}

// intOrBad decodes a decimal value; anything else cannot be decoded.
type intOrBad struct{}

func (intOrBad) Decode(m *Message) (int, time.Time, error) {
	v, err := strconv.Atoi(string(m.Value))
	return v, time.Time{}, err
}

// sessionCtx is a group session that ends with ctx.
type sessionCtx struct {
	memberSession
	ctx context.Context
}

func (s sessionCtx) Context() context.Context { return s.ctx }

// fedClaim is a claim whose fetched messages are msgs.
type fedClaim struct {
	claimAt
	msgs chan *sarama.ConsumerMessage
}

func (c fedClaim) Messages() <-chan *sarama.ConsumerMessage { return c.msgs }

// windowedPipeline is a pipeline reading b through a processing-time Window of length
// batches (a stateful operator whose parameters its checkpoints record); the records that
// reach its output are appended to out.
func windowedPipeline(t *testing.T, b stream.Source[int], length int, out *[]int, opts ...stream.Option) *stream.Pipeline {
	t.Helper()
	p, err := stream.New(time.Second, opts...)
	require.NoError(t, err)
	w := stream.Window(stream.From(p, b), time.Duration(length)*time.Second, time.Second)
	var mu sync.Mutex
	stream.To(w, stream.SinkFunc[int](func(_ context.Context, vs []int) error {
		mu.Lock()
		defer mu.Unlock()
		*out = append(*out, vs...)
		return nil
	}))
	return p
}

// TestRefusedRestartWritesNoDeadLetter: a restart that the pipeline refuses with
// stream.ErrOperatorChanged (its window's length changed since the committed checkpoint)
// writes none of the dead letters its claim meets before the refusal: it commits nothing, so
// a job restarted again and again (a crash loop) wrote the same dead letters from the
// committed offset at every restart. Before the fix, the claim wrote the undecodable record
// at offset 11 as soon as it read it, while the pipeline refused the partition only at its
// first batch. Accepted (WithColdStartChanged), the same claim writes it exactly once, once
// the first batch took the partition, and the records after it reach the pipeline.
func TestRefusedRestartWritesNoDeadLetter(t *testing.T) {
	// The run that committed, under a window of 2 batches, at offset 10.
	first := &committingBinder{}
	var out []int
	p := windowedPipeline(t, first, 2, &out)
	for off := range int64(10) {
		require.True(t, first.in.TryPush(stream.Record[int]{Value: int(off), Partition: 0, Offset: off}))
	}
	for range 2 {
		_, err := p.Step(t.Context())
		require.NoError(t, err)
	}
	require.NotEmpty(t, first.commits)
	committed := first.commits[len(first.commits)-1]
	require.NotEmpty(t, committed.Meta, "a checkpoint with the window's parameters")

	for _, tc := range []struct {
		name   string
		opts   []stream.Option
		refuse bool
	}{
		{name: "refused", refuse: true},
		{name: "accepted", opts: []stream.Option{stream.WithColdStartChanged()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var dead []int64
				var dmu sync.Mutex
				dlq := stream.DeadLetterFunc(func(_ context.Context, dls []stream.DeadLetter) error {
					dmu.Lock()
					defer dmu.Unlock()
					for _, dl := range dls {
						dead = append(dead, dl.Offset)
					}
					return nil
				})
				written := func() []int64 {
					dmu.Lock()
					defer dmu.Unlock()
					return slices.Clone(dead)
				}

				// The restart, under a window of 3 batches.
				b := &committingBinder{}
				var got []int
				p := windowedPipeline(t, b, 3, &got, tc.opts...)
				s, err := NewSource(Config{Brokers: []string{"127.0.0.1:1"}, Topics: []string{"in"}, Group: "g"}, Codec[int](intOrBad{}), WithDeadLetters(dlq))
				require.NoError(t, err)
				s.topics["in"] = 0
				ctx, cancel := context.WithCancel(t.Context())
				h := &handler[int]{s: s, in: b.in, runCtx: ctx, dlq: dlq, revokeWait: time.Second, hold: 64, holdBytes: 1 << 20, registered: map[int32]bool{}}
				h.register(map[string][]int32{"in": {0}}, map[topicPart]stream.Position{{"in", 0}: committed})

				msgs := make(chan *sarama.ConsumerMessage, 3)
				for i, v := range []string{"10", "bad", "12"} {
					msgs <- &sarama.ConsumerMessage{Topic: "in", Partition: 0, Offset: committed.Offset + int64(i), Value: []byte(v)}
				}
				claim := fedClaim{claimAt{topic: "in", part: 0, start: committed.Offset}, msgs}
				done := make(chan error, 1)
				go func() { done <- h.ConsumeClaim(sessionCtx{memberSession{&recordingSession{}}, ctx}, claim) }()
				synctest.Wait() // the claim read the three records

				_, err = p.Step(ctx)
				if tc.refuse {
					require.ErrorIs(t, err, stream.ErrOperatorChanged)
				} else {
					require.NoError(t, err)
				}
				synctest.Wait() // whatever the claim does once the batch took the partition
				if tc.refuse {
					require.Empty(t, written(), "a refused restart writes no dead letter")
					require.Zero(t, s.DeadLettered())
				} else {
					require.Equal(t, []int64{committed.Offset + 1}, written(), "the undecodable record, once")
					_, err = p.Step(ctx)
					require.NoError(t, err)
					require.Contains(t, got, 10)
					require.Contains(t, got, 12, "the record after the dead letter reached the pipeline")
					require.Equal(t, int64(1), s.DeadLettered())
				}
				cancel()
				require.NoError(t, <-done)
			})
		})
	}
}
