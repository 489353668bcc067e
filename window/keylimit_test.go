package window_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// TestMaxKeys: past the key limit, records of new keys go to the Late side stream with
// ReasonKeyLimit (nothing lost), records of keys with state are aggregated as usual, and once
// state frees up new keys are admitted again. For every kind of window.
func TestMaxKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		asg  window.Assigner
	}{
		{"tumbling", window.Tumbling(time.Minute)},
		{"sliding", window.Sliding(time.Minute, 30*time.Second)},
		{"session", window.Session(20 * time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := streamtest.New(t, time.Second)
			q, src := streamtest.NewQueue[ev](h)
			w, err := window.Aggregate(src, evKey, evVal, tc.asg, window.Count[float64](), window.WithMaxKeys(2))
			require.NoError(t, err)
			res := streamtest.Collect(w.Results())
			late := streamtest.Collect(w.Late())
			var recs []stream.Record[ev]
			for i, k := range []string{"a", "b", "c", "a", "d", "b"} {
				r := at(0, k, sec(float64(i)), 1)
				r.Offset = int64(i)
				recs = append(recs, r)
			}
			q.Add(recs...)
			h.Step()
			require.Equal(t, int64(2), w.KeyLimitCount())
			require.Zero(t, w.LateCount())
			var refused []string
			for _, l := range late.Slice() {
				require.Equal(t, stream.ReasonKeyLimit, l.Reason)
				refused = append(refused, l.Value.Key)
			}
			require.Equal(t, []string{"c", "d"}, refused)

			// Much later: e moves the watermark past every earlier window (state is recounted
			// per batch, so e itself may still be refused); f, a batch later, is admitted.
			e := at(0, "e", 10*time.Minute, 1)
			e.Offset = 6
			f := at(0, "f", 10*time.Minute+time.Second, 1)
			f.Offset = 7
			q.Add(e)
			q.Add(f)
			q.End()
			h.RunUntilDone()
			counts := map[string]int64{}
			var total int64
			for _, x := range res.Slice() {
				if x.Final {
					counts[x.Key] += x.Value
					total += x.Value
				}
			}
			require.NotZero(t, counts["f"], "a new key is admitted once state freed up")
			require.Zero(t, counts["c"])
			require.Zero(t, counts["d"])
			require.Equal(t, int64(2), counts["a"])
			require.Equal(t, int64(2), counts["b"])
			if tc.name != "sliding" { // a sliding window counts a record in every window holding it
				require.Equal(t, int64(8), total+int64(len(late.Slice())), "every record is counted or on the side stream")
			}
		})
	}
}

func TestMaxKeysNegative(t *testing.T) {
	h := streamtest.New(t, time.Second)
	_, src := streamtest.NewQueue[ev](h)
	_, err := window.Aggregate(src, evKey, evVal, window.Tumbling(time.Minute), window.Count[float64](), window.WithMaxKeys(-1))
	require.ErrorIs(t, err, window.ErrInvalidOption)
}

// TestStateInStats: the pipeline's stats name each stateful operator with its state size.
func TestStateInStats(t *testing.T) {
	h := streamtest.New(t, time.Second)
	q, src := streamtest.NewQueue[ev](h)
	_, err := window.Aggregate(src, evKey, evVal, window.Tumbling(time.Minute), window.Count[float64](), window.WithName("per-key"))
	require.NoError(t, err)
	q.Add(at(0, "a", 0, 1), at(0, "b", time.Second, 1), at(1, "a", 0, 1))
	h.Step()
	var got []stream.OperatorState
	for _, s := range h.P.Stats().State {
		if s.Operator == "per-key" {
			got = append(got, s)
		}
	}
	require.Len(t, got, 1)
	require.Equal(t, 3, got[0].Entries, "a and b in partition 0, a in partition 1")
	require.True(t, got[0].Reported)
	require.Equal(t, 2, got[0].OpenWindows, "one window in each partition")
}

// TestSessionKeyLimitCountsKeys: with session windows the key limit counts keys with
// sessions, as WithMaxKeys documents. A key whose session was emitted (kept only to refuse
// records of that session) asks the limit again for the session it opens next, and one key
// with two sessions is one entry.
func TestSessionKeyLimitCountsKeys(t *testing.T) {
	run := func(t *testing.T, ooo time.Duration, batches ...[]stream.Record[ev]) (*window.Windowed[string, int64, ev], *streamtest.Harness) {
		h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(ooo))
		q, src := streamtest.NewQueue[ev](h)
		w, err := window.Aggregate(src, evKey, evVal, window.Session(10*time.Second), window.Count[float64](),
			window.WithMaxKeys(2), window.WithName("w"))
		require.NoError(t, err)
		streamtest.Collect(w.Results())
		streamtest.Collect(w.Late())
		var off int64
		for _, b := range batches {
			for i := range b {
				b[i].Offset, off = off, off+1
			}
			q.Add(b...)
		}
		h.Run(len(batches))
		return w, h
	}
	t.Run("a key back after its session was emitted", func(t *testing.T) {
		w, h := run(t, 0,
			[]stream.Record[ev]{at(0, "a", sec(0), 1), at(0, "b", sec(5), 1)},
			[]stream.Record[ev]{at(0, "b", sec(12), 1)}, // a's session [0, 10) is emitted
			[]stream.Record[ev]{at(0, "c", sec(13), 1), at(0, "a", sec(14), 1)})
		st := operatorState(t, h, "w")
		require.LessOrEqual(t, st.Entries, 2, "WithMaxKeys(2): keys with sessions")
		require.Equal(t, int64(1), w.KeyLimitCount(), "a's new session is refused: b and c hold the two")
	})
	t.Run("one key with two sessions", func(t *testing.T) {
		w, h := run(t, time.Minute,
			[]stream.Record[ev]{at(0, "a", sec(0), 1), at(0, "a", sec(30), 1)},
			[]stream.Record[ev]{at(0, "b", sec(31), 1)})
		require.Zero(t, w.KeyLimitCount(), "only one key held sessions when b came")
		require.Equal(t, 2, operatorState(t, h, "w").Entries)
	})
}
