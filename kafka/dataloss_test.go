package kafka_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/syncbuf"
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

// overtaken runs a pipeline over a one-partition topic of overtakenN records whose first
// batch holds it until the records before overtakenCut are deleted: the Source, stopped by
// the pipeline's backpressure, then fetches from an offset that the partition no longer holds
// (a retention overtaking a lagging consumer).
//
// While the first batch is held the Source keeps fetching until its claim holds 4,096
// records (32 times sarama's channel buffer of 128), plus that channel, the fetch in hand
// (a record batch of 250) and the pipeline's input (100) and batch (100): about 4,700
// records, fetched in a few hundred milliseconds on loopback. The cut lies beyond that, so
// the Source's next fetch always falls below it. (With 5,000 records cut at 3,000 the Source
// had often read past the cut before DeleteRecords landed: a third of the runs read every
// record and ended without a loss to report.)
const overtakenN, overtakenCut = 10_000, 7_000

func overtaken(t *testing.T, prefix string, opts ...kafka.SourceOption) (*running, *idSet) {
	t.Helper()
	n, cut := overtakenN, overtakenCut
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
	var logbuf syncbuf.Buffer
	lg := slog.New(slog.NewTextHandler(&logbuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%d distinct ids read; the Source's log:\n%s", ids.distinct(), logbuf.String())
		}
	})
	r := startPipeline(t, pipelineSpec{cfg: cfg, ids: ids, buffer: 100,
		opts:  append([]kafka.SourceOption{kafka.WithEndWhenCaughtUp(500 * time.Millisecond), kafka.WithLogger(lg)}, opts...),
		popts: []stream.Option{stream.WithLogger(lg)},
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
	r, ids := overtaken(t, "overtaken")
	err := r.wait(t)
	require.ErrorIs(t, err, kafka.ErrDataLoss)
	require.Less(t, ids.distinct(), overtakenCut)
}

// TestSourceAcceptOvertaken: with WithAcceptDataLoss the Source joins the group again and
// goes on from the partition's start: every record from the cut on is read.
func TestSourceAcceptOvertaken(t *testing.T) {
	t.Parallel()
	r, ids := overtaken(t, "overtaken-ok", kafka.WithAcceptDataLoss())
	require.NoError(t, r.wait(t))
	require.Empty(t, ids.missingFrom(overtakenCut, overtakenN), "records after the gap not read")
	require.Positive(t, r.src.Lost())
}
