package stream_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// ctlSource is a source whose Input a test drives directly (Assign, Resume, Revoke, End and
// pushes in any order between batches), as a Kafka Source does across rebalances. It records
// the positions committed and whether each came for a partition the test said it owns.
type ctlSource struct {
	in *stream.Input[kv]

	mu        sync.Mutex
	owned     map[int32]bool
	committed map[int32]stream.Position
	foreign   []stream.Position // committed for partitions not owned
	dones     []<-chan struct{} // of every Revoke
	revoking  map[int32][]<-chan struct{}
}

func newCtlSource() *ctlSource {
	return &ctlSource{owned: map[int32]bool{}, committed: map[int32]stream.Position{}}
}

func (s *ctlSource) Bind(in *stream.Input[kv])                        { s.in = in }
func (*ctlSource) Run(ctx context.Context, _ *stream.Input[kv]) error { <-ctx.Done(); return ctx.Err() }

func (s *ctlSource) Commit(_ context.Context, pos []stream.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range pos {
		if !s.owned[x.Partition] && !s.revokingLocked(x.Partition) {
			// A Kafka Source ignores it (another member owns the partition); here it is a
			// partition the pipeline keeps although it was revoked.
			s.foreign = append(s.foreign, x)
			continue
		}
		s.committed[x.Partition] = x
	}
	return nil
}

// revokingLocked reports whether a revocation of part was sent and is not done yet: the
// source still holds the partition (a Kafka Source's release waits for the revocation), and
// the commit of the batch in flight reaches it before the revocation is done (Input.Revoke).
func (s *ctlSource) revokingLocked(part int32) bool {
	for _, done := range s.revoking[part] {
		select {
		case <-done:
		default:
			return true
		}
	}
	return false
}

// revokeNoted sends a revocation of part and notes it (revokingLocked).
func (s *ctlSource) revokeNoted(part int32) <-chan struct{} {
	done := s.in.Revoke(part)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revoking == nil {
		s.revoking = map[int32][]<-chan struct{}{}
	}
	s.revoking[part] = append(s.revoking[part], done)
	return done
}

func (s *ctlSource) setOwned(part int32, owned bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.owned[part] = owned
}

// position is where an assigned partition resumes: its committed position, or offset 0
// (Assign) if nothing was committed.
func (s *ctlSource) position(part int32) (stream.Position, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.committed[part]
	return p, ok
}

// ctlRecord is record off of partition part: key "p<part>", value off+1, event time
// 1000 s + 10 s * off + part s after the epoch, so that a partition's event time grows with
// its offsets and partitions never tie.
func ctlRecord(part int32, off int64) stream.Record[kv] {
	return stream.Record[kv]{
		Value: kv{Key: "p" + strconv.Itoa(int(part)), Value: int(off) + 1}, Partition: part, Offset: off,
		EventTime: ctlTime(part, off),
	}
}

func ctlTime(part int32, off int64) time.Time {
	return streamtest.Epoch.Add(time.Duration(1000+10*off+int64(part)) * time.Second)
}

// ctlPipeline is a harness whose source is a ctlSource, with a per-partition running sum of
// the values per key (UpdateStateByKey: its state holds commits back to the partition's first
// record, so a replay from the committed offset rebuilds it) collected every batch. The
// watermark is each partition's newest event time (no out-of-orderness, no idleness), so a
// partition the pipeline keeps without records holds it back. With second, the ctlSource is
// the pipeline's second source (its partition ids are not the pipeline's), after a queue that
// stays empty.
func ctlPipeline(t *testing.T, second bool) (*streamtest.Harness, *ctlSource, *streamtest.Collector[kv]) {
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(0))
	src := newCtlSource()
	var s *stream.Stream[kv]
	if second {
		_, first := streamtest.NewQueue[kv](h)
		s = first.Union(stream.From(h.P, stream.Source[kv](src)))
	} else {
		s = stream.From(h.P, stream.Source[kv](src))
	}
	sums := streamtest.Collect(stream.UpdateStateByKey(s, func(_ string, vs []int, n int, _ bool) (int, bool) {
		for _, v := range vs {
			n += v
		}
		return n, true
	}))
	return h, src, sums
}

// livePartitions returns the partitions the pipeline has, by their source's ids.
func livePartitions(h *streamtest.Harness) []int32 {
	var live []int32
	for _, ps := range h.P.Stats().PartitionStats {
		_, part := stream.PartitionSource(ps.Partition)
		live = append(live, part)
	}
	return live
}

func sortedPairs(b []kv) []kv {
	b = slices.Clone(b)
	slices.SortFunc(b, func(x, y kv) int { return cmp.Compare(x.Key, y.Key) })
	return b
}

// TestControlAppliedInOrder: the assignments and revocations a source sent between two batches
// are applied in the order it sent them. A partition assigned and revoked again before the
// batch (a Kafka Source's Setup hands over a partition whose claim never starts, and Cleanup
// revokes it; or a claim that ends within the batch interval, whose release then waits for
// the revocation) is not kept: before, revocations were applied before assignments, so the
// pipeline kept a partition it did not own, and closed the revocation's channel all the
// same; without records, that partition held the pipeline's watermark (and so every event-time
// window) back until it went idle, for ever with WithIdleTimeout(0). A partition revoked and
// assigned again is dropped and rebuilt by the replay from its committed position (as
// before), and an End sent after it was assigned again ends it (before, the revocation taken
// with it dropped it).
func TestControlAppliedInOrder(t *testing.T) {
	type step struct {
		name string
		// owned1: partition 1 is owned with records at offsets 0 and 1 before the batch.
		owned1 bool
		ops    func(t *testing.T, src *ctlSource)
		live   []int32
		sums   []kv
		wm     int64 // seconds after the epoch
		ended1 bool
	}
	assign := func(src *ctlSource, part int32) {
		src.setOwned(part, true)
		if pos, ok := src.position(part); ok {
			src.in.Resume(pos)
		}
		src.in.Assign(part) // a Kafka Source's claim assigns it again once it starts
	}
	push := func(t *testing.T, src *ctlSource, part int32, from, to int64) {
		for off := from; off < to; off++ {
			require.True(t, src.in.TryPush(ctlRecord(part, off)))
		}
	}
	revoke := func(src *ctlSource, part int32) {
		src.setOwned(part, false)
		src.dones = append(src.dones, src.in.Revoke(part))
	}
	sec := func(part int32, off int64) int64 { return int64(1000 + 10*off + int64(part)) }
	cases := []step{{
		name: "assign, revoke",
		ops: func(t *testing.T, src *ctlSource) {
			assign(src, 1)
			push(t, src, 1, 0, 2)
			revoke(src, 1)
		},
		live: []int32{0}, sums: pairs("p0", 1+2), wm: sec(0, 1),
	}, {
		name: "resume, revoke",
		ops: func(_ *testing.T, src *ctlSource) {
			src.setOwned(1, true)
			src.in.Resume(stream.Position{Partition: 1, Offset: 7})
			revoke(src, 1)
		},
		live: []int32{0}, sums: pairs("p0", 1+2), wm: sec(0, 1),
	}, {
		name: "owned: revoke, assign, replay", owned1: true,
		ops: func(t *testing.T, src *ctlSource) {
			revoke(src, 1)
			assign(src, 1)
			push(t, src, 1, 0, 3)
		},
		live: []int32{0, 1}, sums: pairs("p0", 1+2, "p1", 1+2+3), wm: sec(0, 1),
	}, {
		name: "owned: revoke, assign, revoke", owned1: true,
		ops: func(t *testing.T, src *ctlSource) {
			revoke(src, 1)
			assign(src, 1)
			push(t, src, 1, 0, 3)
			revoke(src, 1)
		},
		live: []int32{0}, sums: pairs("p0", 1+2), wm: sec(0, 1),
	}, {
		name: "assign, revoke, assign",
		ops: func(t *testing.T, src *ctlSource) {
			assign(src, 1)
			push(t, src, 1, 0, 2)
			revoke(src, 1)
			assign(src, 1)
			push(t, src, 1, 0, 1)
		},
		live: []int32{0, 1}, sums: pairs("p0", 1+2, "p1", 1), wm: sec(1, 0),
	}, {
		name: "owned: revoke, assign, revoke, assign", owned1: true,
		ops: func(t *testing.T, src *ctlSource) {
			revoke(src, 1)
			assign(src, 1)
			push(t, src, 1, 0, 2)
			revoke(src, 1)
			assign(src, 1)
			push(t, src, 1, 0, 3)
		},
		live: []int32{0, 1}, sums: pairs("p0", 1+2, "p1", 1+2+3), wm: sec(0, 1),
	}, {
		// A bounded Kafka Source's claim of a partition already read to its end ends it at
		// once: the end must not be lost with the revocation before.
		name: "owned: revoke, assign, end", owned1: true,
		ops: func(_ *testing.T, src *ctlSource) {
			revoke(src, 1)
			src.setOwned(1, true)
			src.in.Resume(stream.Position{Partition: 1, Offset: 2})
			src.in.End(1)
		},
		live: []int32{0, 1}, sums: pairs("p0", 1+2), wm: sec(0, 1), ended1: true,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, src, sums := ctlPipeline(t, false)
			assign(src, 0)
			push(t, src, 0, 0, 1)
			if tc.owned1 {
				assign(src, 1)
				push(t, src, 1, 0, 2)
			}
			h.Step()
			push(t, src, 0, 1, 2)
			tc.ops(t, src)
			h.Step()
			for _, done := range src.dones {
				select {
				case <-done:
				default:
					t.Fatal("a revocation is not done after the batch")
				}
			}
			require.Equal(t, tc.live, livePartitions(h), "live partitions")
			require.Equal(t, tc.sums, sortedPairs(sums.Last()), "sums of the last batch")
			require.Equal(t, streamtest.Epoch.Add(time.Duration(tc.wm)*time.Second), h.P.Stats().Watermark, "watermark")
			for _, ps := range h.P.Stats().PartitionStats {
				if ps.Partition == 1 {
					require.Equal(t, tc.ended1, ps.Ended, "partition 1 ended")
				}
			}
			h.Step()
			require.Empty(t, src.foreign, "positions committed for partitions not owned")
		})
	}
}

// TestRevokeDuringRetryForgetsEndDue: a partition's end sent with records of it in the batch
// counts with the next batch. If the partition is revoked while that batch's outputs are
// retried, and assigned again, the end was its former claim's: the new claim, which replays
// from the committed position, has not ended. Before, the end was applied to it at the next
// batch without its records (the revocation was applied at the retry, and only a batch's take
// forgot ends due): its watermark went to the end of time before its replay began, so that
// event-time windows would take the replayed records for late ones, and it stopped holding
// the pipeline's watermark back.
func TestRevokeDuringRetryForgetsEndDue(t *testing.T) {
	h, src, sums := ctlPipeline(t, false)
	down := false
	sums.Fail = func(stream.BatchInfo) error {
		if down {
			return errDown
		}
		return nil
	}
	for _, part := range []int32{0, 1} {
		src.setOwned(part, true)
		src.in.Assign(part)
	}
	require.True(t, src.in.TryPush(ctlRecord(0, 0)))
	require.True(t, src.in.TryPush(ctlRecord(1, 0)))
	h.Step()
	require.True(t, src.in.TryPush(ctlRecord(0, 1)))
	require.True(t, src.in.TryPush(ctlRecord(1, 1)))
	src.in.End(1) // with a record of it in the batch: it ends with the next one
	down = true
	_, err := h.TryStep()
	require.ErrorIs(t, err, errDown)

	src.setOwned(1, false)
	done := src.in.Revoke(1)
	down = false
	h.Step() // the retry drops partition 1
	<-done
	require.Equal(t, []int32{0}, livePartitions(h))

	src.setOwned(1, true)
	pos, ok := src.position(1)
	require.True(t, ok)
	src.in.Resume(pos) // its replay has not begun by the next batch
	require.True(t, src.in.TryPush(ctlRecord(0, 2)))
	h.Step()
	st := h.P.Stats()
	require.Len(t, st.PartitionStats, 2)
	require.False(t, st.PartitionStats[1].Ended, "partition 1's new claim has not ended")
	require.Equal(t, ctlTime(0, 1), st.Watermark, "partition 1, assigned again, holds the watermark back")
}

// TestControlOrderRandom runs random sequences of assignments (Resume from the committed
// position, then Assign, as a Kafka Source's Setup and claim do), revocations, pushes and
// failed output attempts between batches against an oracle: after every batch the pipeline
// has exactly the partitions the source owns, every revocation is done, nothing is committed
// for a partition not owned, each owned partition's sum is that of an uninterrupted owner
// (every record from offset 0 once: the replay from the committed position rebuilt it), and
// the watermark is the least newest event time of the owned partitions (or where it was).
func TestControlOrderRandom(t *testing.T) {
	const parts, rounds = 3, 40
	seeds := uint64(300)
	if testing.Short() {
		seeds = 50
	}
	for _, second := range []bool{false, true} {
		t.Run(fmt.Sprintf("second source %v", second), func(t *testing.T) {
			for seed := range seeds {
				if !runControlModel(t, seed, parts, rounds, second) {
					return
				}
			}
		})
	}
}

func runControlModel(t *testing.T, seed uint64, parts int32, rounds int, second bool) bool {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 74))
	h, src, sums := ctlPipeline(t, second)
	failNext := false
	sums.Fail = func(stream.BatchInfo) error {
		if failNext {
			failNext = false
			return errDown
		}
		return nil
	}
	owned := make([]bool, parts)
	pos := make([]int64, parts)      // the next offset the owner pushes
	buffered := make([]int64, parts) // records pushed and not taken yet
	// A partition's end (Input.End): sent, then due when records of it were in the batch
	// that took it (it ends with the next batch), then done.
	const (
		endNone = iota
		endSent
		endDue
		endDone
	)
	ends := make([]int, parts)
	var trace []string
	fail := func(format string, args ...any) bool {
		t.Errorf("seed %d: %s\ntrace: %v", seed, fmt.Sprintf(format, args...), trace)
		return false
	}
	// What the batch taken last must show (a failed batch is retried without a new take).
	var wantSums []kv
	wantWM, pending := stream.NoWatermark, false
	for round := range rounds {
		for range rng.IntN(6) {
			part := rng.Int32N(parts)
			switch op := rng.IntN(4); {
			case op == 0 && !owned[part]:
				owned[part] = true
				src.setOwned(part, true)
				pos[part], ends[part] = 0, endNone
				p, resume := src.position(part)
				if resume {
					pos[part] = p.Offset
					src.in.Resume(p)
					trace = append(trace, fmt.Sprintf("resume %d@%d", part, p.Offset))
				}
				if !resume || rng.IntN(2) == 0 {
					src.in.Assign(part)
					trace = append(trace, fmt.Sprintf("assign %d", part))
				}
			case op == 1 && owned[part]:
				owned[part] = false
				buffered[part], ends[part] = 0, endNone
				src.setOwned(part, false)
				src.dones = append(src.dones, src.revokeNoted(part))
				trace = append(trace, fmt.Sprintf("revoke %d", part))
			case op == 2 && owned[part] && ends[part] == endNone && rng.IntN(3) == 0:
				// A bounded source read the partition to its end.
				ends[part] = endSent
				src.in.End(part)
				trace = append(trace, fmt.Sprintf("end %d", part))
			case owned[part] && ends[part] == endNone:
				n := 1 + rng.Int64N(3)
				for off := pos[part]; off < pos[part]+n; off++ {
					if !src.in.TryPush(ctlRecord(part, off)) {
						return fail("push refused")
					}
				}
				trace = append(trace, fmt.Sprintf("push %d@%d..%d", part, pos[part], pos[part]+n))
				pos[part] += n
				buffered[part] += n
			}
		}
		if !pending {
			// This batch takes what the source pushed: an uninterrupted owner's sums of the
			// owned partitions' records, from offset 0.
			wantSums = nil
			cur, some := int64(math.MaxInt64), false
			for p := range parts {
				switch {
				case ends[p] == endDue:
					ends[p] = endDone
				case ends[p] == endSent && buffered[p] > 0:
					ends[p] = endDue
				case ends[p] == endSent:
					ends[p] = endDone
				}
				buffered[p] = 0
				if !owned[p] {
					continue
				}
				if ends[p] == endDone {
					// It holds the watermark back no more.
					if pos[p] > 0 {
						wantSums = append(wantSums, kv{Key: "p" + strconv.Itoa(int(p)), Value: int(pos[p] * (pos[p] + 1) / 2)})
					}
					continue
				}
				some = true
				if pos[p] == 0 {
					cur = stream.NoWatermark
					continue
				}
				wantSums = append(wantSums, kv{Key: "p" + strconv.Itoa(int(p)), Value: int(pos[p] * (pos[p] + 1) / 2)})
				cur = min(cur, ctlTime(p, pos[p]-1).UnixNano())
			}
			if some {
				wantWM = max(wantWM, cur)
			}
		}
		failNext = rng.IntN(5) == 0
		trace = append(trace, fmt.Sprintf("batch %d (fail %v)", round, failNext))
		_, err := h.TryStep()
		var oerr *stream.OutputError
		if err != nil && !errors.As(err, &oerr) {
			return fail("step: %v", err)
		}
		pending = err != nil
		if pending {
			// A revocation sent while the batch's outputs fail waits for the batch
			// (Input.Revoke): it is done once the batch was written and committed.
			continue
		}
		for i, done := range src.dones {
			select {
			case <-done:
			default:
				return fail("revocation %d not done after the batch", i)
			}
		}
		var wantLive []int32
		for p := range parts {
			if owned[p] {
				wantLive = append(wantLive, p)
			}
		}
		if live := livePartitions(h); !slices.Equal(live, wantLive) {
			return fail("live partitions %v, want those owned: %v", live, wantLive)
		}
		for _, ps := range h.P.Stats().PartitionStats {
			_, part := stream.PartitionSource(ps.Partition)
			if want := ends[part] == endDone; ps.Ended != want {
				return fail("partition %d ended %v, want %v", part, ps.Ended, want)
			}
		}
		if got := sortedPairs(sums.Last()); !slices.Equal(got, wantSums) {
			return fail("sums %v, want %v", got, wantSums)
		}
		if wm := h.P.Stats().Watermark; !wm.Equal(stream.WatermarkTime(wantWM)) {
			return fail("watermark %v, want %v", wm, stream.WatermarkTime(wantWM))
		}
		src.mu.Lock()
		foreign := slices.Clone(src.foreign)
		src.mu.Unlock()
		if len(foreign) > 0 {
			return fail("committed for partitions not owned: %v", foreign)
		}
	}
	return true
}
