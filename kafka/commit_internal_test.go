package kafka

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// blockingSession is a group session whose Commit blocks until released, as sarama's does
// while its member rejoins the group (the offset manager's generation lock).
type blockingSession struct {
	sarama.ConsumerGroupSession
	mu      sync.Mutex
	marked  int64
	commits int
	started chan struct{} // a Commit began
	release chan struct{} // one Commit may return
}

func (f *blockingSession) MarkOffset(_ string, _ int32, off int64, _ string) {
	f.mu.Lock()
	f.marked = off
	f.mu.Unlock()
}

func (f *blockingSession) Commit() {
	f.started <- struct{}{}
	<-f.release
	f.mu.Lock()
	f.commits++
	f.mu.Unlock()
}

// TestCommitBoundedWhileRejoining: a Source's commit whose member is rejoining the group does
// not hold the pipeline for longer than commitWait (the pipeline must reach its next batch to
// let another member of the group rejoin: the cycle a scale-out with repartitions stalled
// in), and the offsets marked meanwhile are committed once the member is back, by the
// commit still running in the background, once more for what was marked after it began.
// Time is synctest's: commitWait passes once every goroutine waits.
func TestCommitBoundedWhileRejoining(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sess := &blockingSession{started: make(chan struct{}, 4), release: make(chan struct{})}
		s := &Source[int]{log: slog.New(slog.NewTextHandler(io.Discard, nil)), owned: map[int32]*partition{}}
		p := &partition{topic: "t", part: 0, id: 0, sess: sess, marks: newMarks(0)}
		p.marks.pushed(100)
		s.owned[0] = p

		start := time.Now()
		require.NoError(t, s.Commit(context.Background(), []stream.Position{{Partition: 0, Offset: 40}}))
		require.Equal(t, commitWait, time.Since(start), "Commit waited for the blocked session's commit")
		<-sess.started // the first commit runs, blocked
		// A second batch's commit joins the running one: no second sarama commit beside it.
		require.NoError(t, s.Commit(context.Background(), []stream.Position{{Partition: 0, Offset: 70}}))
		synctest.Wait()
		require.Empty(t, sess.started, "a second sarama commit ran beside the blocked one")
		s.commitMu.Lock()
		done := s.committing[sess].done
		s.commitMu.Unlock()
		sess.release <- struct{}{} // the member is back: the first commit returns
		<-sess.started             // and the background commits once more, for offset 70
		sess.release <- struct{}{}
		<-done
		sess.mu.Lock()
		defer sess.mu.Unlock()
		require.Equal(t, 2, sess.commits)
		require.Equal(t, int64(70), sess.marked)
	})
}
