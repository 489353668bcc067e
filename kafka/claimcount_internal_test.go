package kafka

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// TestClaimCountsBeforePushing: the Source's Stats count every record a claim received, and
// its bytes, before the claim pushes the record, where the pipeline may process it at once
// (the claims add to the counters once a run of fetched records, not once a record), and
// the run's first record is logged once, whichever of the claims received it.
func TestClaimCountsBeforePushing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const parts, fetched = 2, 300
		var logs bytes.Buffer
		var logMu sync.Mutex
		lg := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		s, err := NewSource(Config{Brokers: []string{"127.0.0.1:1"}, Topics: []string{"in"}, Group: "g"}, Codec[int](intOrBad{}), WithLogger(lg))
		require.NoError(t, err)
		s.topics["in"] = 0

		var mu sync.Mutex
		var pushed int64
		var uncounted []string
		all := make(chan struct{}) // closed once every record was pushed
		testHookPushed = func(n int) {
			mu.Lock()
			defer mu.Unlock()
			pushed += int64(n)
			if st := s.Stats(); st.Records < pushed {
				uncounted = append(uncounted, fmt.Sprintf("%d counted, %d pushed", st.Records, pushed))
			}
			if n > 0 && pushed == parts*fetched {
				close(all)
			}
		}
		t.Cleanup(func() { testHookPushed = nil })

		b := &committingBinder{}
		var out []int
		p := windowedPipeline(t, b, 1, &out, stream.WithBuffer(50, 0))
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		runDone := make(chan error, 1)
		go func() { runDone <- p.Run(ctx) }()
		synctest.Wait() // the binder has the input

		// A hold of 64 and an input of 50: each claim takes its records in several runs.
		h := &handler[int]{s: s, in: b.in, runCtx: ctx, revokeWait: time.Second, hold: 64, holdBytes: 1 << 20, registered: map[int32]bool{}}
		h.register(map[string][]int32{"in": {0, 1}}, nil)
		var size int64
		done := make(chan error, parts)
		for part := range int32(parts) {
			msgs := make(chan *sarama.ConsumerMessage, fetched)
			for off := range int64(fetched) {
				v := []byte(strconv.Itoa(int(off)))
				size += int64(len(v))
				msgs <- &sarama.ConsumerMessage{Topic: "in", Partition: part, Offset: off, Value: v}
			}
			claim := fedClaim{claimAt{topic: "in", part: part, start: 0}, msgs}
			go func() { done <- h.ConsumeClaim(sessionCtx{memberSession{&recordingSession{}}, ctx}, claim) }()
		}
		select {
		case <-all:
		case <-time.After(time.Minute): // fake time: batches take the input's records every second
			t.Fatalf("the claims did not push the %d records", parts*fetched)
		}
		mu.Lock()
		require.Empty(t, uncounted, "records were pushed before Stats counted them")
		mu.Unlock()
		st := s.Stats()
		require.EqualValues(t, parts*fetched, st.Records)
		require.Equal(t, size, st.Bytes)
		cancel()
		for range parts {
			require.NoError(t, <-done)
		}
		require.ErrorIs(t, <-runDone, context.Canceled)

		logMu.Lock()
		defer logMu.Unlock()
		var first []string
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, `msg="kafka: first record"`) {
				first = append(first, line)
			}
		}
		require.Len(t, first, 1, "the first record is logged once:\n%s", logs.String())
		require.Contains(t, first[0], " offset=0", "and it is a partition's first record")
	})
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
