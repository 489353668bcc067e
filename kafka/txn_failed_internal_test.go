package kafka

import (
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
