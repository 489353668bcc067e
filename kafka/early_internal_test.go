package kafka

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"

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
