package kafka

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// recordingSession records what the Source marks and commits through it.
type recordingSession struct {
	sarama.ConsumerGroupSession
	mu      sync.Mutex
	resets  []string // "offset meta"
	commits int
}

func (r *recordingSession) MarkOffset(_ string, _ int32, off int64, meta string) {
	r.ResetOffset("", 0, off, meta)
}

func (r *recordingSession) ResetOffset(_ string, _ int32, off int64, meta string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resets = append(r.resets, strconv.FormatInt(off, 10)+" "+meta)
}

func (r *recordingSession) Commit() {
	r.mu.Lock()
	r.commits++
	r.mu.Unlock()
}

// claimAt is a claim of topic/part starting at offset start.
type claimAt struct {
	sarama.ConsumerGroupClaim
	topic string
	part  int32
	start int64
}

func (c claimAt) Topic() string              { return c.topic }
func (c claimAt) Partition() int32           { return c.part }
func (c claimAt) InitialOffset() int64       { return c.start }
func (c claimAt) HighWaterMarkOffset() int64 { return c.start }

// TestCommitBeforeClaimStarts: a position that the pipeline commits for a partition the
// Source has handed it (register) but whose claim has not started yet is marked, and
// committed, once the claim starts. Before, Commit ignored it as a partition no longer owned:
// a checkpoint restamped with the parameters now, which the pipeline sends once, was lost
// (TestAcceptedChangeWithQuietRequests, 3 runs in 10). A position of a partition never
// handed over is still ignored, and an early position is forgotten when the partition goes.
func TestCommitBeforeClaimStarts(t *testing.T) {
	s := &Source[int]{log: slog.New(slog.NewTextHandler(io.Discard, nil)), cfg: Config{Topics: []string{"req"}},
		topics: map[string]int{"req": 0}, owned: map[int32]*partition{}, announced: map[int32]bool{},
		early: map[int32]stream.Position{}}
	sess := &recordingSession{}
	id := s.PartitionID("req", 1)
	s.announced[id] = true // handler.register handed it to the pipeline
	require.NoError(t, s.Commit(context.Background(), []stream.Position{
		{Partition: id, Offset: 2, Meta: "fs3/new"},
		{Partition: s.PartitionID("req", 2), Offset: 5, Meta: "fs3/other"}, // never handed over
	}))
	require.Empty(t, sess.resets, "nothing to mark before the claim")

	p := s.own(sess, claimAt{topic: "req", part: 1, start: 2})
	require.NotNil(t, p)
	s.waitCommits(commitWait)
	sess.mu.Lock()
	require.Equal(t, []string{"2 fs3/new"}, sess.resets, "the early checkpoint, marked at the claim's start")
	require.Equal(t, 1, sess.commits, "and committed")
	sess.mu.Unlock()
	require.Empty(t, s.early)
	require.Empty(t, s.announced)

	own2 := s.own(sess, claimAt{topic: "req", part: 2, start: 5})
	require.NotNil(t, own2)
	sess.mu.Lock()
	require.Len(t, sess.resets, 1, "a position of a partition never handed over is not marked")
	sess.mu.Unlock()
}

// txnProducer is a transactional producer that takes every transaction and records the
// offsets committed in them.
type txnProducer struct {
	sarama.SyncProducer
	offsets []*sarama.PartitionOffsetMetadata
	commits int
}

func (f *txnProducer) BeginTxn() error { return nil }
func (f *txnProducer) CommitTxn() error {
	f.commits++
	return nil
}
func (f *txnProducer) AddOffsetsToTxnWithGroupMetadata(offs map[string][]*sarama.PartitionOffsetMetadata, _ *sarama.ConsumerGroupMetadata) error {
	for _, o := range offs {
		f.offsets = append(f.offsets, o...)
	}
	return nil
}

// memberSession is a group session of generation 1.
type memberSession struct{ *recordingSession }

func (memberSession) GenerationID() int32 { return 1 }
func (memberSession) MemberID() string    { return "m" }

// TestExactlyOnceCommitBeforeClaimStarts: under exactly once, a position of a partition
// handed to the pipeline whose claim has not started yet cannot be marked (its read-back
// bounds are not known): the commit leaves it out and says so (ErrNotClaimed), so that the
// pipeline sends it again with the next batch, which commits it once the claim started.
// Before, the commit returned nil and the position was lost: a checkpoint restamped with the
// parameters now, sent until a commit takes it, was never committed, and the next restart
// without the option stopped again.
func TestExactlyOnceCommitBeforeClaimStarts(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := &Source[int]{log: log, cfg: Config{Topics: []string{"req"}, Group: "g"},
		topics: map[string]int{"req": 0}, owned: map[int32]*partition{}, announced: map[int32]bool{},
		early: map[int32]stream.Position{}}
	prod := &txnProducer{}
	tx := newTxn(s.cfg, "t", log, nil)
	tx.prod = prod
	s.eos.Store(tx)
	id := s.PartitionID("req", 1)
	s.announced[id] = true
	restamp := []stream.Position{{Partition: id, Offset: 2, Meta: "fs4/new"}}

	err := s.Commit(context.Background(), restamp)
	require.ErrorIs(t, err, ErrNotClaimed)
	require.Empty(t, prod.offsets, "nothing committed before the claim")

	sess := memberSession{&recordingSession{}}
	require.NotNil(t, s.own(sess, claimAt{topic: "req", part: 1, start: 2}))
	require.NoError(t, s.Commit(context.Background(), restamp), "sent again with the next batch")
	require.Len(t, prod.offsets, 1)
	require.Equal(t, int64(2), prod.offsets[0].Offset)
	meta, _ := splitBound(*prod.offsets[0].Metadata)
	require.Equal(t, "fs4/new", meta, "the restamped checkpoint, committed")
	require.Equal(t, 1, prod.commits)

	// A position of a partition never handed over is not this member's: ignored, no error.
	require.NoError(t, s.Commit(context.Background(), []stream.Position{{Partition: s.PartitionID("req", 2), Offset: 5, Meta: "fs4/other"}}))
}

// endedSession is a group session whose context has not ended.
type endedSession struct{ memberSession }

func (endedSession) Context() context.Context { return context.Background() }

// TestCleanupForgetsUnclaimedPartitions: a partition handed to the pipeline whose claim never
// started by the session's end is not this member's: Cleanup forgets it (and has the pipeline
// drop it), so that an exactly-once commit no longer returns ErrNotClaimed for it at every
// batch (helper-72's review), and an early position of it is not marked by a later claim.
func TestCleanupForgetsUnclaimedPartitions(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := &Source[int]{log: log, cfg: Config{Topics: []string{"req"}, Group: "g"},
		topics: map[string]int{"req": 0}, owned: map[int32]*partition{}, announced: map[int32]bool{},
		early: map[int32]stream.Position{}}
	tx := newTxn(s.cfg, "t", log, nil)
	tx.prod = &txnProducer{}
	s.eos.Store(tx)
	p, err := stream.New(time.Second)
	require.NoError(t, err)
	b := &binder{}
	stream.To(stream.From[int](p, b), stream.SinkFunc[int](func(context.Context, []int) error { return nil }))
	h := &handler[int]{s: s, in: b.in, runCtx: t.Context(), registered: map[int32]bool{}}

	id := s.PartitionID("req", 1)
	s.announced[id] = true
	restamp := []stream.Position{{Partition: id, Offset: 2, Meta: "fs4/new"}}
	require.ErrorIs(t, s.Commit(t.Context(), restamp), ErrNotClaimed)

	require.NoError(t, h.Cleanup(endedSession{memberSession{&recordingSession{}}}))
	require.Empty(t, s.announced)
	require.Empty(t, s.early)
	require.NoError(t, s.Commit(t.Context(), restamp), "not this member's partition any more: ignored")
}

// TestCleanupRevokeAfterSetupInOneBatch: Setup hands a partition to the pipeline (Resume from
// its committed offset) and the session ends before its claim starts, so Cleanup revokes it;
// both usually reach the pipeline before its next batch. The pipeline applies them in that
// order and does not keep the partition (before, it applied the revocation first, kept the
// partition it no longer owned, and that partition, without records, held the watermark back
// until it went idle).
func TestCleanupRevokeAfterSetupInOneBatch(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := &Source[int]{log: log, cfg: Config{Topics: []string{"req"}, Group: "g"},
		topics: map[string]int{"req": 0}, owned: map[int32]*partition{}, announced: map[int32]bool{},
		early: map[int32]stream.Position{}, bases: map[int32]resumed{}}
	p, err := stream.New(time.Second)
	require.NoError(t, err)
	b := &binder{}
	stream.To(stream.From[int](p, b), stream.SinkFunc[int](func(context.Context, []int) error { return nil }))
	h := &handler[int]{s: s, in: b.in, runCtx: t.Context(), registered: map[int32]bool{}}

	h.register(map[string][]int32{"req": {1}}, map[topicPart]stream.Position{{"req", 1}: {Offset: 2}})
	require.NoError(t, h.Cleanup(endedSession{memberSession{&recordingSession{}}}))
	_, err = p.Step(t.Context())
	require.NoError(t, err)
	require.Zero(t, p.Stats().Partitions, "the partition Cleanup revoked is not kept")
}
