package kafka_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// lostStart makes a one-partition topic of n records whose group committed offset 10, and
// then deletes the records before offset 50 (what a retention does to a group that stayed
// away too long): records 10 to 49 are gone unread.
func lostStart(t *testing.T, brokers []string, prefix string, n int) (topic, group string) {
	t.Helper()
	topic = newTopic(t, brokers, prefix, 1)
	produceEvents(t, brokers, topic, 1, 0, n)
	group = testenv.UniqueName(t, "g-"+prefix)
	commitOffset(t, brokers, group, topic, 0, 10)
	require.NoError(t, newAdmin(t, brokers).DeleteRecords(topic, map[int32]int64{0: 50}))
	return topic, group
}

// TestSourceStopsOnDataLoss: records the group had yet to read were deleted; the Source
// stops with a permanent error wrapping ErrDataLoss that names the offsets, rather than go on
// from the partition's new start as if nothing was missing (sarama's reset, which the
// Source used to take silently: a restarted job published windows without those records
// and exited 0).
func TestSourceStopsOnDataLoss(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic, group := lostStart(t, brokers, "loss", 100)
	ids := newIDSet()
	r := startPipeline(t, pipelineSpec{cfg: consumerConfig(brokers, group, topic), ids: ids,
		opts: []kafka.SourceOption{kafka.WithEndWhenCaughtUp(500 * time.Millisecond)}})
	err := r.wait(t)
	require.ErrorIs(t, err, kafka.ErrDataLoss)
	require.True(t, stream.IsPermanent(err), "not permanent: %v", err)
	require.ErrorContains(t, err, topic+"/0: records 10 to 49 (40)")
	require.ErrorContains(t, err, "WithAcceptDataLoss")
	require.Zero(t, ids.distinct(), "the Source read records after the gap")
}

// TestSourceAcceptDataLoss: with WithAcceptDataLoss the Source goes on from the partition's
// start (offset 50), reads the rest, and counts the 40 records deleted unread.
func TestSourceAcceptDataLoss(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const n = 100
	topic, group := lostStart(t, brokers, "loss-ok", n)
	ids := newIDSet()
	r := startPipeline(t, pipelineSpec{cfg: consumerConfig(brokers, group, topic), ids: ids,
		opts: []kafka.SourceOption{kafka.WithEndWhenCaughtUp(500 * time.Millisecond), kafka.WithAcceptDataLoss()}})
	require.NoError(t, r.wait(t))
	require.Equal(t, int64(40), r.src.Lost())
	// Offsets below 50 are gone, so the 50 distinct records read are those from 50 on.
	require.Equal(t, n-50, ids.distinct())
}

// overtaken runs a pipeline over a one-partition topic of n records whose first batch holds
// it until the records before offset cut are deleted: the Source, paused by the pipeline's
// backpressure with a few hundred records fetched, then fetches from an offset that the
// partition no longer holds (a retention overtaking a lagging consumer).
func overtaken(t *testing.T, prefix string, n, cut int, opts ...kafka.SourceOption) (*running, *idSet) {
	t.Helper()
	brokers := testenv.KafkaBrokers(t)
	topic := newTopic(t, brokers, prefix, 1)
	for i := 0; i < n; i += 250 { // record batches of 250: a fetch of 4 KiB takes one
		produceEvents(t, brokers, topic, 1, i, min(i+250, n))
	}
	cfg := consumerConfig(brokers, testenv.UniqueName(t, "g-"+prefix), topic)
	cfg.Fetch = kafka.Fetch{MaxBytes: 4 << 10, RequestMaxBytes: 4 << 10}
	first, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	ids := newIDSet()
	r := startPipeline(t, pipelineSpec{cfg: cfg, ids: ids, buffer: 100,
		opts: append([]kafka.SourceOption{kafka.WithEndWhenCaughtUp(500 * time.Millisecond)}, opts...),
		onBatch: func(ctx context.Context, batch []event) error {
			if len(batch) > 0 {
				once.Do(func() {
					close(first)
					<-release
				})
			}
			return nil
		}})
	<-first
	require.NoError(t, newAdmin(t, brokers).DeleteRecords(topic, map[int32]int64{0: int64(cut)}))
	close(release)
	return r, ids
}

// TestSourceStopsWhenOvertaken: sarama stops consuming a partition whose fetch offset fell
// out of the retained range (it used to stay claimed and unread, with a Warn, until the next
// rebalance reset it past the gap); the Source stops with ErrDataLoss.
func TestSourceStopsWhenOvertaken(t *testing.T) {
	t.Parallel()
	r, ids := overtaken(t, "overtaken", 5000, 3000)
	err := r.wait(t)
	require.ErrorIs(t, err, kafka.ErrDataLoss)
	require.Less(t, ids.distinct(), 3000)
}

// TestSourceAcceptOvertaken: with WithAcceptDataLoss the Source joins the group again and
// goes on from the partition's start: every record from offset 3000 on is read.
func TestSourceAcceptOvertaken(t *testing.T) {
	t.Parallel()
	const n, cut = 5000, 3000
	r, ids := overtaken(t, "overtaken-ok", n, cut, kafka.WithAcceptDataLoss())
	require.NoError(t, r.wait(t))
	require.Empty(t, ids.missingFrom(cut, n), "records after the gap not read")
	require.Positive(t, r.src.Lost())
}
