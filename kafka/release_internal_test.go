package kafka

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// The exactly-once rule that release keeps (doc_transactions.go): a transaction holds output
// made from a partition's records only with that partition's offsets. These tests revoke a
// partition of a bounded Source whose input ended (the revocation after the pipeline took its
// last batch) and look at what the transactions committed.

// genProducer is a transactional producer that records each committed transaction's message
// count and partitions, and refuses the first refuse offset additions as a new generation
// would.
type genProducer struct {
	sarama.SyncProducer
	refuse    int
	committed []committedTxn
	cur       committedTxn
}

type committedTxn struct {
	msgs  int
	parts []int32
}

func (f *genProducer) BeginTxn() error { f.cur = committedTxn{}; return nil }
func (f *genProducer) SendMessages(m []*sarama.ProducerMessage) error {
	f.cur.msgs += len(m)
	return nil
}
func (f *genProducer) AddOffsetsToTxnWithGroupMetadata(offs map[string][]*sarama.PartitionOffsetMetadata, _ *sarama.ConsumerGroupMetadata) error {
	if f.refuse > 0 {
		f.refuse--
		return sarama.ErrIllegalGeneration
	}
	for _, o := range offs {
		for _, x := range o {
			f.cur.parts = append(f.cur.parts, x.Partition)
		}
	}
	return nil
}
func (f *genProducer) CommitTxn() error { f.committed = append(f.committed, f.cur); return nil }
func (f *genProducer) AbortTxn() error  { return nil }
func (f *genProducer) TxnStatus() sarama.ProducerTxnStatusFlag {
	return sarama.ProducerTxnFlagInTransaction
}

// endedSource returns a bounded exactly-once Source owning partitions 0 and 1 of "in" (ends
// 105, claims from 100) through prod, whose transactional producer has not connected (no
// snapshot yet), and its handler.
func endedSource(t *testing.T, prod *genProducer) (*Source[int], *txn, *handler[int], *partition) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := &Source[int]{log: log, cfg: Config{Topics: []string{"in"}, Group: "g"},
		topics: map[string]int{"in": 0}, owned: map[int32]*partition{}, announced: map[int32]bool{},
		early: map[int32]stream.Position{}, bases: map[int32]resumed{}, ends: map[int32]int64{0: 105, 1: 105},
		finished: map[int32]bool{}}
	s.o.bounded = true
	tx := newTxn(s.cfg, "t", log, nil)
	tx.prod = prod
	s.eos.Store(tx)
	p, err := stream.New(time.Second)
	require.NoError(t, err)
	b := &binder{}
	stream.To(stream.From[int](p, b), stream.SinkFunc[int](func(context.Context, []int) error { return nil }))
	runCtx, cancel := context.WithCancelCause(t.Context())
	t.Cleanup(func() { cancel(nil) })
	s.cancel = cancel
	h := &handler[int]{s: s, in: b.in, runCtx: runCtx, registered: map[int32]bool{}, revokeWait: 2 * time.Second}
	sess := memberSession{&recordingSession{}}
	p0 := s.own(sess, claimAt{topic: "in", part: 0, start: 100})
	s.own(sess, claimAt{topic: "in", part: 1, start: 100})
	return s, tx, h, p0
}

// lastPositions are the pipeline's last positions: both partitions read to their ends and
// acknowledged as ended.
var lastPositions = []stream.Position{
	{Partition: 0, Offset: 105, Meta: "m", Ended: true},
	{Partition: 1, Offset: 105, Meta: "m", Ended: true},
}

// TestReleaseAfterEndWaitsForTheEndsAck (helper-89's review): records pushed before the
// transactional producer connected leave no push history, and release took such a claim for
// one that pushed nothing, handing the partition over at once; the pipeline's last commit
// then held the partition's output with the other partition's offsets only. Now release
// waits until the pipeline acknowledged the partition's end, which the last commit does, and
// that commit holds the output with partition 0's offsets.
func TestReleaseAfterEndWaitsForTheEndsAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		prod := &genProducer{}
		s, tx, h, p0 := endedSource(t, prod)
		c := &claimLoop[int]{h: h, p: p0, toldEnd: -1}
		for off := int64(100); off < 105; off++ {
			c.queue = append(c.queue, stream.Record[int]{Partition: 0, Offset: off, Value: int(off), EventTime: time.Unix(off, 0)})
		}
		require.True(t, c.flush())
		require.Empty(t, p0.hist, "pushed before the producer connected: no push history")
		s.mu.Lock()
		s.ended = true
		s.mu.Unlock()

		released := make(chan struct{})
		go func() {
			h.release(p0) // the pipeline has taken its last batch: no revocation is applied
			close(released)
		}()
		synctest.Wait()
		select {
		case <-released:
			t.Fatal("partition 0 handed over before the pipeline acknowledged its end")
		default:
		}
		var sent atomic.Int64
		require.NoError(t, tx.add(t.Context(), []Message{{Topic: "out", Value: []byte("from 0")}}, &sent))
		require.NoError(t, s.Commit(t.Context(), lastPositions))
		<-released
		synctest.Wait()
		require.Nil(t, s.fatal.Load())
		// The output is committed once, with partition 0's offsets, in one transaction: the
		// release's commit and the pipeline's both run, and the second sees what the first
		// committed (it used to note that only after the transaction's lock was released, and
		// now and then sent the same offsets again in a transaction of their own: 2 runs in
		// 900 under -race).
		require.Len(t, prod.committed, 1)
		require.Equal(t, 1, prod.committed[0].msgs)
		require.ElementsMatch(t, []int32{0, 1}, prod.committed[0].parts, "the output with partition 0's offsets")
	})
}

// TestReleaseCommitRefusedPoisons (helper-89's review): when the commit that release makes of
// the pending output is refused by a new generation, the messages stayed pending and only the
// Source failed; the pipeline's next commit (a bounded run tries its last one again) then
// committed them with partition 1's offsets alone. Now the transaction is poisoned: the
// pending output is dropped and every later commit fails.
func TestReleaseCommitRefusedPoisons(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		prod := &genProducer{refuse: 1}
		s, tx, h, p0 := endedSource(t, prod)
		snap := outputs{}
		p0.mu.Lock()
		p0.notePush(&snap, 100)
		p0.pushedAny = true
		p0.mu.Unlock()
		s.mu.Lock()
		s.ended = true
		s.mu.Unlock()
		var sent atomic.Int64
		require.NoError(t, tx.add(t.Context(), []Message{{Topic: "out", Value: []byte("from 0")}}, &sent))
		p0.ackEnd() // the last commit marked partition 0's end, then was refused
		h.release(p0)
		require.NotNil(t, s.fatal.Load(), "the Source stops")
		require.Zero(t, tx.pendingCount(), "the pending output is dropped")
		err := s.Commit(context.Background(), lastPositions) // the run's next try
		require.ErrorIs(t, err, ErrTransaction)
		require.Empty(t, prod.committed, "nothing committed without partition 0's offsets")
	})
}

// TestReleaseAfterEndWithoutRecords: a claim that pushed nothing after the input ended has no
// output to wait for: release hands the partition over at once, and the Source goes on.
func TestReleaseAfterEndWithoutRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		prod := &genProducer{}
		s, _, h, p0 := endedSource(t, prod)
		s.mu.Lock()
		s.ended = true
		s.mu.Unlock()
		start := time.Now()
		h.release(p0)
		require.Zero(t, time.Since(start), "no wait (the bubble's clock did not move)")
		require.Nil(t, s.fatal.Load())
		s.mu.Lock()
		require.NotContains(t, s.owned, int32(0))
		s.mu.Unlock()
	})
}
