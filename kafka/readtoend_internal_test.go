package kafka

import (
	"context"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// endClaim is a fed claim whose high-water mark is hwm.
type endClaim struct {
	fedClaim
	hwm int64
}

func (c endClaim) HighWaterMarkOffset() int64 { return c.hwm }

// TestReadToEndStartsLastBatch: a Source whose claims have read every partition to its
// high-water mark tells the pipeline (stream.Input.ReadToEnd), so that the batch that takes a
// backlog's last records starts at once instead of a tenth of the interval later (a drain's
// last 100 ms); while one partition still has records to fetch, it does not. A partition
// never written to (no committed offset, high-water mark 0) does not hold it back.
func TestReadToEndStartsLastBatch(t *testing.T) {
	for _, short := range []bool{false, true} {
		t.Run("short="+strconv.FormatBool(short), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				type batch struct {
					at      time.Duration
					records int
				}
				var batches []batch
				start := time.Now()
				all := make(chan struct{}) // closed once batches took the 60 records
				total := 0
				b := &committingBinder{}
				var out []int
				p := windowedPipeline(t, b, 1, &out, stream.WithBuffer(25, 0), stream.WithStatsHook(func(st stream.BatchStats) {
					if st.InputRecords > 0 {
						batches = append(batches, batch{time.Since(start), st.InputRecords})
						if total += st.InputRecords; total == 60 {
							close(all)
						}
					}
				}))
				s, err := NewSource(Config{Brokers: []string{"127.0.0.1:1"}, Topics: []string{"in"}, Group: "g"}, Codec[int](intOrBad{}))
				require.NoError(t, err)
				s.topics["in"] = 0
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				runDone := make(chan error, 1)
				go func() { runDone <- p.Run(ctx) }()
				synctest.Wait() // the binder has the input

				// Two partitions of 30 records each, fetched at once: batches of 25, 25, 10.
				h := &handler[int]{s: s, in: b.in, runCtx: ctx, revokeWait: time.Second, hold: 64, holdBytes: 1 << 20, registered: map[int32]bool{}}
				h.register(map[string][]int32{"in": {0, 1, 2}}, nil)
				done := make(chan error, 3)
				// Partition 2 was never written to: no committed offset, high-water mark 0.
				empty := endClaim{fedClaim{claimAt{topic: "in", part: 2, start: sarama.OffsetOldest}, make(chan *sarama.ConsumerMessage)}, 0}
				go func() { done <- h.ConsumeClaim(sessionCtx{memberSession{&recordingSession{}}, ctx}, empty) }()
				// Its claim has started before the others are fed: a claim not yet started
				// rightly holds the signal back (below), which would delay the last batch.
				synctest.Wait()
				for part := range int32(2) {
					msgs := make(chan *sarama.ConsumerMessage, 30)
					for off := range int64(30) {
						msgs <- &sarama.ConsumerMessage{Topic: "in", Partition: part, Offset: off, Value: []byte(strconv.Itoa(int(off)))}
					}
					hwm := int64(30)
					if short && part == 1 {
						hwm = 40 // ten more records to fetch: not at its end
					}
					claim := endClaim{fedClaim{claimAt{topic: "in", part: part, start: 0}, msgs}, hwm}
					go func() { done <- h.ConsumeClaim(sessionCtx{memberSession{&recordingSession{}}, ctx}, claim) }()
				}
				<-all
				require.Equal(t, []int{25, 25, 10}, []int{batches[0].records, batches[1].records, batches[2].records})
				last := time.Duration(0) // the buffer filled at once: every batch back to back
				if short {
					last = 100 * time.Millisecond // a tenth of the interval after the full batch
				}
				require.Equal(t, batches[1].at+last, batches[2].at, "the last batch after the full one")
				require.Equal(t, !short, s.readToEnd())
				if !short {
					// A partition handed to the pipeline whose claim has not started (a
					// rebalance in progress) is not read to its end.
					s.mu.Lock()
					s.announced[7] = true
					s.mu.Unlock()
					require.False(t, s.readToEnd())
				}
				cancel()
				for range 3 {
					require.NoError(t, <-done)
				}
				require.ErrorIs(t, <-runDone, context.Canceled)
			})
		})
	}
}
