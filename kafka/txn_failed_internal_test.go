package kafka

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// txnStatusProducer is a transactional producer in a given state; failed asks nothing else
// of it.
type txnStatusProducer struct {
	sarama.SyncProducer
	status sarama.ProducerTxnStatusFlag
}

func (p txnStatusProducer) TxnStatus() sarama.ProducerTxnStatusFlag { return p.status }

// TestTxnFailedNamesTheCause: a fatal transaction error stops the pipeline for good, and its
// message names the likely cause when Kafka's does not: a fenced producer (sarama prints
// PRODUCER_FENCED as an unknown code) and an UNKNOWN_SERVER_ERROR, which the coordinator
// answers when a fence races a commit.
func TestTxnFailedNamesTheCause(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"fenced", sarama.ErrProducerFenced, `producer fenced: another producer initialised transactional id "job-1"`},
		{"epoch", sarama.ErrInvalidProducerEpoch, `producer fenced: another producer initialised transactional id "job-1"`},
		{"unknown", sarama.ErrUnknown, `it answers so when another producer initialises transactional id "job-1" during this one's commit`},
		{"other", sarama.ErrOutOfOrderSequenceNumber, "kafka: exactly-once transaction failed: " + sarama.ErrOutOfOrderSequenceNumber.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newTxn(Config{}, "job-1", slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			x.prod = txnStatusProducer{status: sarama.ProducerTxnFlagFatalError}
			err := x.failed(tc.err)
			require.ErrorIs(t, err, ErrTransaction)
			require.ErrorIs(t, err, tc.err)
			require.True(t, stream.IsPermanent(err), "a fatal transaction error stops the pipeline")
			require.ErrorContains(t, err, tc.want)
			require.Equal(t, err, x.err, "kept: every later call returns it")
		})
	}
}

// abortingProducer is a transactional producer in an abortable error that counts its aborts.
type abortingProducer struct {
	txnStatusProducer
	aborts int
}

func (p *abortingProducer) AbortTxn() error { p.aborts++; return nil }

// TestTxnFailedGroupErrors: a commit that the group refused because the member was removed
// (UNKNOWN_MEMBER_ID) or its generation moved on is aborted and not kept, so the Source can
// join again (Source.rejoin); a fenced static member (FENCED_INSTANCE_ID) stays fatal.
func TestTxnFailedGroupErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		fatal bool
	}{
		{"unknown member", sarama.ErrUnknownMemberId, false},
		{"illegal generation", sarama.ErrIllegalGeneration, false},
		{"rebalance in progress", sarama.ErrRebalanceInProgress, false},
		{"fenced instance", sarama.ErrFencedInstancedId, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newTxn(Config{}, "job-1", slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			p := &abortingProducer{txnStatusProducer: txnStatusProducer{status: sarama.ProducerTxnFlagInError | sarama.ProducerTxnFlagAbortableError}}
			x.prod = p
			err := x.failed(fmt.Errorf("kafka: commit transaction: %w", tc.err))
			require.ErrorIs(t, err, tc.err)
			if tc.fatal {
				require.True(t, stream.IsPermanent(err))
				require.ErrorIs(t, err, ErrTransaction)
				require.Equal(t, err, x.err, "kept")
				return
			}
			require.False(t, stream.IsPermanent(err), "the pipeline goes on")
			require.NoError(t, x.err, "not kept: the next commit runs")
			require.Equal(t, 1, p.aborts, "the transaction was aborted")
		})
	}
}

// endedSession is a group session whose context may have ended.
type endedSession struct {
	sarama.ConsumerGroupSession
	ctx context.Context
}

func (s endedSession) Context() context.Context { return s.ctx }

// TestLostGroup: the group took a session's partitions away for good when the member was
// removed, or when its generation moved on and the session ended; a live cooperative session
// that met ILLEGAL_GENERATION only raced its rejoin and commits again under the new one.
func TestLostGroup(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	live := endedSession{ctx: context.Background()}
	dead := endedSession{ctx: ended}
	at := func(s sarama.ConsumerGroupSession) []txnOffset { return []txnOffset{{sess: s, topic: "t", off: 1}} }
	require.True(t, lostGroup(sarama.ErrUnknownMemberId, at(live)))
	require.True(t, lostGroup(sarama.ErrUnknownMemberId, at(dead)))
	require.True(t, lostGroup(fmt.Errorf("x: %w", sarama.ErrIllegalGeneration), at(dead)))
	require.False(t, lostGroup(sarama.ErrIllegalGeneration, at(live)))
	require.False(t, lostGroup(sarama.ErrIllegalGeneration, nil))
	require.False(t, lostGroup(sarama.ErrUnknownMemberId, nil), "no offsets in the transaction")
	require.False(t, lostGroup(sarama.ErrRebalanceInProgress, at(dead)))
	require.False(t, lostGroup(sarama.ErrFencedInstancedId, at(dead)))
}
