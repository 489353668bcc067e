package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// TestSetupCheckpointRefused: a session's Setup whose fetch of the committed checkpoints (the
// group, or a topic) or whose check of the committed offsets (the partitions' offsets) the
// ACLs refuse stops the Source with ErrNotAuthorized naming what to grant, as claimed() does
// for a partition a cooperative rebalance adds, for a plain Source and for an Exchange alike.
// A plain Source took a refused fetch for a transient one (a Warn, and its partitions started
// cold without their checkpoints), and a refused check was a Warn for every partition;
// an Exchange failed the session, and Run's retry loop named every topic of the Source.
// A transient error fails the session without stopping the Source (Run joins again), a plain
// Source's too: it went on without its checkpoints, its operators cold at the committed
// offset, so that a window that had closed before it was emitted again from part of its
// records.
func TestSetupCheckpointRefused(t *testing.T) {
	const topic = "t"
	committed := sarama.NewMockOffsetFetchResponse(t).SetOffset("g", topic, 0, 5, "", sarama.ErrNoError)
	listed := sarama.NewMockOffsetResponse(t).SetOffset(topic, 0, sarama.OffsetNewest, 10).SetOffset(topic, 0, sarama.OffsetOldest, 0)
	refusedList := &sarama.OffsetResponse{Version: 6}
	refusedList.AddTopicPartition(topic, 0, -1)
	refusedList.Blocks[topic][0].Err = sarama.ErrTopicAuthorizationFailed
	for _, tc := range []struct {
		name     string
		exchange bool
		fetch    sarama.MockResponse
		list     sarama.MockResponse
		err      sarama.KError // the broker's error; ErrNoError: a transient one, not refused
		refuse   string        // what the error names
	}{
		{"group refused", false, sarama.NewMockOffsetFetchResponse(t).SetError(sarama.ErrGroupAuthorizationFailed), listed,
			sarama.ErrGroupAuthorizationFailed, `consumer group "g"`},
		{"topic refused", false, sarama.NewMockOffsetFetchResponse(t).SetOffset("g", topic, 0, -1, "", sarama.ErrTopicAuthorizationFailed), listed,
			sarama.ErrTopicAuthorizationFailed, `topic "t"`},
		{"offsets refused", false, committed, sarama.NewMockWrapper(refusedList),
			sarama.ErrTopicAuthorizationFailed, `topic "t"`},
		{"exchange group refused", true, sarama.NewMockOffsetFetchResponse(t).SetError(sarama.ErrGroupAuthorizationFailed), listed,
			sarama.ErrGroupAuthorizationFailed, `consumer group "g"`},
		{"exchange topic refused", true, sarama.NewMockOffsetFetchResponse(t).SetOffset("g", "p-x-repartition", 0, -1, "", sarama.ErrTopicAuthorizationFailed), listed,
			sarama.ErrTopicAuthorizationFailed, `topic "p-x-repartition"`},
		{"transient", false, sarama.NewMockOffsetFetchResponse(t).SetError(sarama.ErrOffsetsLoadInProgress), listed,
			sarama.ErrNoError, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := sarama.NewMockBroker(t, 1)
			t.Cleanup(b.Close)
			claimTopic := topic
			if tc.exchange {
				claimTopic = "p-x-repartition"
			}
			b.SetHandlerByMap(map[string]sarama.MockResponse{
				"MetadataRequest":        sarama.NewMockMetadataResponse(t).SetBroker(b.Addr(), b.BrokerID()).SetController(b.BrokerID()).SetLeader(claimTopic, 0, b.BrokerID()),
				"FindCoordinatorRequest": sarama.NewMockFindCoordinatorResponse(t).SetCoordinator(sarama.CoordinatorGroup, "g", b),
				"OffsetFetchRequest":     tc.fetch,
				"OffsetRequest":          tc.list,
			})
			client := mockClient(t, b, sarama.V2_8_0_0)
			cfg := Config{Brokers: []string{b.Addr()}, Group: "g", Topics: []string{topic}}

			var s *Source[int]
			if tc.exchange {
				ex, err := NewExchange(cfg, "p", "x", stream.JSONCodec[int]())
				require.NoError(t, err)
				// The exchange's Source decodes Shuffled values; the Setup under test does not
				// decode: a Source of ints on the same topic and options stands for it.
				s, err = NewSource(ex.cfg, JSON[int](), sourceOpt(func(o *sourceOptions) { o.exchange = true }))
				require.NoError(t, err)
			} else {
				var err error
				s, err = NewSource(cfg, JSON[int]())
				require.NoError(t, err)
			}
			h, runCtx := pipelineHandler(t, s, client)
			err := h.Setup(sessionCtx{memberSession{&recordingSession{}}, t.Context()}.withClaims(map[string][]int32{claimTopic: {0}}))
			if tc.err == sarama.ErrNoError {
				require.ErrorIs(t, err, sarama.ErrOffsetsLoadInProgress, "the session fails: the partitions would start cold")
				require.Nil(t, s.fatal.Load(), "a transient error does not stop the Source")
				require.Empty(t, h.registered, "nothing registered without its checkpoint")
				return
			}
			require.Error(t, err, "the session fails")
			fatal := s.fatal.Load()
			require.NotNil(t, fatal, "the Source stops: Setup took the refusal for a transient error")
			for _, e := range []error{err, *fatal, context.Cause(runCtx)} {
				require.ErrorIs(t, e, ErrNotAuthorized)
				require.ErrorIs(t, e, tc.err)
				require.ErrorContains(t, e, tc.refuse)
				require.ErrorContains(t, e, "grant it")
			}
		})
	}
}

// pipelineHandler is a handler of s's sessions on client, feeding a pipeline's input, and the
// context that s.fail cancels.
func pipelineHandler(t *testing.T, s *Source[int], client sarama.Client) (*handler[int], context.Context) {
	t.Helper()
	runCtx, stop := context.WithCancelCause(t.Context())
	t.Cleanup(func() { stop(nil) })
	s.cancel = stop
	p, err := stream.New(time.Second)
	require.NoError(t, err)
	bind := &binder{}
	stream.To(stream.From[int](p, bind), stream.SinkFunc[int](func(context.Context, []int) error { return nil }))
	return &handler[int]{s: s, client: client, in: bind.in, runCtx: runCtx}, runCtx
}

// withClaims is the session with claims.
func (s sessionCtx) withClaims(claims map[string][]int32) claimsSession {
	return claimsSession{s, claims}
}

// claimsSession is a session of a member that claimed claims.
type claimsSession struct {
	sessionCtx
	claims map[string][]int32
}

func (s claimsSession) Claims() map[string][]int32 { return s.claims }

// TestClaimCheckpointTransientWaits: a partition that a cooperative rebalance adds to a
// plain Source, whose committed checkpoint cannot be fetched for a while (the coordinator
// loading its offsets), waits for it, as an Exchange's does, until the session ends. It was
// registered cold after one try, its operators starting at the committed offset without their
// own starts.
func TestClaimCheckpointTransientWaits(t *testing.T) {
	b, client := groupCoordinator(t, sarama.NewMockOffsetFetchResponse(t).SetError(sarama.ErrOffsetsLoadInProgress))
	s, err := NewSource(Config{Brokers: []string{b.Addr()}, Group: "g", Topics: []string{"t"}}, JSON[int]())
	require.NoError(t, err)
	h, _ := pipelineHandler(t, s, client)
	h.registered = map[int32]bool{}
	sessCtx, endSession := context.WithTimeout(t.Context(), 10*time.Second)
	defer endSession()
	claimed := make(chan bool, 1)
	go func() { claimed <- h.claimed(sessionCtx{memberSession{&recordingSession{}}, sessCtx}, "t", 0) }()
	require.Eventually(t, func() bool { return offsetFetches(b) >= 2 }, 5*time.Second, 10*time.Millisecond,
		"retried: the partition was registered without its checkpoint")
	endSession()
	require.False(t, <-claimed)
	require.Nil(t, s.fatal.Load(), "a transient error does not stop the Source")
	require.Empty(t, h.registered)
}
