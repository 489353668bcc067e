package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// TestExchangeSetupWithoutClaimsRegisters: an Exchange says it registers its partitions
// (stream.PartitionRegistrar), so a pipeline runs no batch before its consumer's Setup did.
// A member that got no partition of the repartition topic (other instances own them) must
// register too, with none, or its pipeline would wait for ever: here the input's first batch
// runs once Setup ran on a session without claims.
func TestExchangeSetupWithoutClaimsRegisters(t *testing.T) {
	for name, claims := range map[string]map[string][]int32{
		"no topic":      {},
		"no partitions": {"p-x-repartition": {}},
	} {
		t.Run(name, func(t *testing.T) {
			b, client := groupCoordinator(t, sarama.NewMockOffsetFetchResponse(t))
			ex, err := NewExchange(Config{Brokers: []string{b.Addr()}, Group: "g", Topics: []string{"in"}}, "p", "x", stream.JSONCodec[stream.Pair[string, int]]())
			require.NoError(t, err)

			p, err := stream.New(10 * time.Millisecond)
			require.NoError(t, err)
			in := stream.From[int](p, &pushOnce{recs: []int{1, 2, 3}})
			ran := make(chan struct{})
			stream.ForEachBatch(in, func(_ context.Context, _ stream.BatchInfo, b []int) error {
				if len(b) > 0 {
					select {
					case <-ran:
					default:
						close(ran)
					}
				}
				return nil
			})
			stream.Repartition(stream.Map(in, func(v int) stream.Pair[string, int] { return stream.KV("k", v) }), "x",
				&sessionExchange{Exchange: ex, client: client, claims: claims})
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			select {
			case <-ran:
			case err := <-done:
				t.Fatalf("the pipeline stopped: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("no batch ran after a session without claims: the pipeline waits for the exchange")
			}
			cancel()
			require.ErrorIs(t, <-done, context.Canceled)
		})
	}
}

// sessionExchange is an Exchange whose consumer runs one session, through the Exchange's
// own handler, with the given claims and no records; it sends and commits nothing.
type sessionExchange struct {
	*Exchange[stream.Pair[string, int]]
	client sarama.Client
	claims map[string][]int32
}

func (e *sessionExchange) Open(context.Context) (int, error) { return 2, nil }

func (e *sessionExchange) Send(context.Context, []stream.Shuffled[stream.Pair[string, int]]) error {
	return nil
}

func (e *sessionExchange) Commit(context.Context, []stream.Position) error { return nil }

func (e *sessionExchange) Run(ctx context.Context, in *stream.Input[stream.Shuffled[stream.Pair[string, int]]]) error {
	h := &handler[stream.Shuffled[stream.Pair[string, int]]]{s: e.src, client: e.client, in: in, runCtx: ctx}
	if err := h.Setup(firstSession{groupSession{claims: e.claims}}); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

// firstSession is a groupSession of generation 1.
type firstSession struct{ groupSession }

func (firstSession) GenerationID() int32 { return 1 }

// pushOnce pushes recs and waits for the end of its run.
type pushOnce struct{ recs []int }

func (s *pushOnce) Run(ctx context.Context, in *stream.Input[int]) error {
	for i, v := range s.recs {
		if err := in.Push(ctx, stream.Record[int]{Value: v, Offset: int64(i), Size: 8}); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s *pushOnce) Commit(context.Context, []stream.Position) error { return nil }
