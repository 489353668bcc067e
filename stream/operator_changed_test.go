package stream_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// Restarts with changed operators (see the package documentation): a restart whose stateful
// operators' parameters differ from those recorded in the committed checkpoint stops with
// ErrOperatorChanged before any output, unless WithColdStartChanged accepts the change.

// countsRun is a pipeline of two event-time windows over one partition whose record at
// offset o has event time Epoch+o seconds: "counts" (Tumbling(size), the one the tests
// change) and "tens" (Tumbling(10 s), never changed), beside an UpdateStateByKey that holds
// the commit at offset 2 for ever, so that the windows' own replay starts travel in the
// checkpoint.
type countsRun struct {
	h            *streamtest.Harness
	q            *streamtest.Queue[int64]
	src          *stream.Stream[int64]
	counts, tens *streamtest.Collector[window.Result[string, int64]]
	logs         *bytes.Buffer
}

func newCountsRun(t *testing.T, name string, size time.Duration, wopts []window.Option, opts ...stream.Option) *countsRun {
	t.Helper()
	r := &countsRun{logs: new(bytes.Buffer)}
	opts = append([]stream.Option{stream.WithLogger(slog.New(slog.NewTextHandler(r.logs, nil)))}, opts...)
	r.h = streamtest.New(t, time.Second, opts...)
	q, src := streamtest.NewQueue[int64](r.h)
	r.q, r.src = q, src
	r.counts, r.tens = countsGraph(t, src, name, size, wopts)
	return r
}

// countsGraph builds countsRun's operators over src.
func countsGraph(t *testing.T, src *stream.Stream[int64], name string, size time.Duration, wopts []window.Option) (counts, tens *streamtest.Collector[window.Result[string, int64]]) {
	t.Helper()
	stream.UpdateStateByKey(stream.KeyBy(src, func(v int64) bool { return v >= 2 }),
		func(big bool, _ []int64, n int, _ bool) (int, bool) { return n + 1, big })
	count := func(tumbling time.Duration, opts ...window.Option) *streamtest.Collector[window.Result[string, int64]] {
		w, err := window.Aggregate(src, func(int64) string { return "k" }, func(v int64) int64 { return v },
			window.Tumbling(tumbling), window.Count[int64](), opts...)
		require.NoError(t, err)
		return streamtest.Collect(w.Results())
	}
	return count(size, append([]window.Option{window.WithName(name)}, wopts...)...), count(10*time.Second, window.WithName("tens"))
}

// add queues the records of offsets [from, to) in batches of five.
func (r *countsRun) add(from, to int64) {
	for o := from; o < to; o += 5 {
		var b []stream.Record[int64]
		for i := o; i < min(o+5, to); i++ {
			b = append(b, stream.Record[int64]{Value: i, Offset: i, EventTime: streamtest.Epoch.Add(time.Duration(i) * time.Second)})
		}
		r.q.Add(b...)
	}
}

// untilDone runs the pipeline until its input ended, and returns the first error.
func (r *countsRun) untilDone(t *testing.T) error {
	t.Helper()
	for range 1000 {
		done, err := r.h.TryStep()
		if err != nil || done {
			return err
		}
	}
	t.Fatal("the run did not end")
	return nil
}

// windows names each result "<start>-<end>:<count>" in seconds.
func windows(c *streamtest.Collector[window.Result[string, int64]]) []string {
	var out []string
	for _, x := range c.Slice() {
		out = append(out, fmt.Sprintf("%d-%d:%d", x.Start.Sub(streamtest.Epoch)/time.Second, x.End.Sub(streamtest.Epoch)/time.Second, x.Value))
	}
	return out
}

// crashedCounts runs offsets 0..29 in six batches under Tumbling(10 s) and "crashes": the
// windows [0,10) and [10,20) were emitted, [20,30) is open, and the commit stays at offset 2.
func crashedCounts(t *testing.T) stream.Position {
	t.Helper()
	r := newCountsRun(t, "counts", 10*time.Second, nil)
	r.add(0, 30)
	r.h.Run(6)
	require.Equal(t, []string{"0-10:10", "10-20:10"}, windows(r.counts))
	pos, ok := r.q.CommittedPosition(0)
	require.True(t, ok)
	require.Equal(t, int64(2), pos.Offset)
	return pos
}

// TestRestartWithChangedWindowStops: a window whose size changed between the run that
// committed and the restart must not resume from the replay start the old size gave (here
// offset 20, the first record of the open window [20,30)): a window of the new size there
// is made from part of its records, beside results of the old size. The restart stops with
// ErrOperatorChanged, permanent, naming the window and its new parameters, before its first
// batch's outputs: nothing emitted, nothing committed. On main (no parameters in the
// checkpoint) it ran on and emitted 15-30:10 and 30-45:10, exit 0.
func TestRestartWithChangedWindowStops(t *testing.T) {
	pos := crashedCounts(t)
	for _, c := range []struct {
		name string
		size time.Duration
		opts []window.Option
	}{
		{"size", 15 * time.Second, nil},
		{"grace", 10 * time.Second, []window.Option{window.WithGrace(5 * time.Second)}},
		{"emit", 10 * time.Second, []window.Option{window.WithEmit(window.EveryBatch)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newCountsRun(t, "counts", c.size, c.opts)
			r.q.Resume(pos)
			r.add(2, 40)
			r.q.End()
			err := r.untilDone(t)
			require.ErrorIs(t, err, stream.ErrOperatorChanged)
			require.True(t, stream.IsPermanent(err))
			require.ErrorContains(t, err, `"counts" (now tumbling(`)
			require.NotContains(t, err.Error(), `"tens"`, "only the changed operator is named")
			require.Empty(t, r.counts.Batches(), "a batch's outputs ran")
			require.Empty(t, r.tens.Batches(), "a batch's outputs ran")
			require.Empty(t, r.q.Commits(), "the stopped run committed")
		})
	}
}

// resumedSource resumes partition 0 from a committed position and pushes the records of
// offsets from..to-1 (event time Epoch+offset seconds), then ends; it records its commits.
type resumedSource struct {
	pos      stream.Position
	from, to int64
	commits  atomic.Int64
}

func (s *resumedSource) Run(ctx context.Context, in *stream.Input[int64]) error {
	in.Resume(s.pos)
	for o := s.from; o < s.to; o++ {
		if err := in.Push(ctx, stream.Record[int64]{Value: o, Offset: o, EventTime: streamtest.Epoch.Add(time.Duration(o) * time.Second)}); err != nil {
			return err
		}
	}
	return nil
}

func (s *resumedSource) Commit(context.Context, []stream.Position) error {
	s.commits.Add(1)
	return nil
}

// TestRunStopsOnChangedOperator: under Pipeline.Run (a job), the changed window stops the run
// with an error wrapping ErrOperatorChanged that is not taken for a requested stop, so the job
// exits non-zero; nothing is written or committed. The error is logged as a permanent
// error, not as an output's (it was "permanent output error").
func TestRunStopsOnChangedOperator(t *testing.T) {
	pos := crashedCounts(t)
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		p, err := stream.New(time.Second, stream.WithMaxFutureEventTime(0), stream.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		require.NoError(t, err)
		src := &resumedSource{pos: pos, from: pos.Offset, to: 40}
		counts, tens := countsGraph(t, stream.From(p, stream.Source[int64](src)), "counts", 15*time.Second, nil)
		err = p.Run(t.Context())
		require.ErrorIs(t, err, stream.ErrOperatorChanged)
		require.True(t, stream.IsPermanent(err))
		require.NotErrorIs(t, err, context.Canceled)
		require.Empty(t, counts.Batches())
		require.Empty(t, tens.Batches())
		require.Zero(t, src.commits.Load())
		require.Contains(t, logs.String(), `level=ERROR msg="stream: stopping on a permanent error"`)
	})
}

// TestRestartWithSameWindowReplaysExactly: the same parameters resume from the checkpoint as
// before: each window emitted once over the two runs, as in one run.
func TestRestartWithSameWindowReplaysExactly(t *testing.T) {
	pos := crashedCounts(t)
	r := newCountsRun(t, "counts", 10*time.Second, nil)
	r.q.Resume(pos)
	r.add(2, 40)
	r.q.End()
	require.NoError(t, r.untilDone(t))
	require.Equal(t, []string{"20-30:10", "30-40:10"}, windows(r.counts))
	require.Equal(t, []string{"20-30:10", "30-40:10"}, windows(r.tens))
	require.Contains(t, r.logs.String(), "partition resumed from checkpoint")
}

// TestRestartWithChangedWindowColdStart: WithColdStartChanged accepts the change, and starts
// the changed window, only it, cold from the committed offset (2): it emits [0,15) from the
// records 2..14 and the rest whole, as a resume without a checkpoint does, while the unchanged
// window "tens" still resumes from its own start (20) and emits nothing twice. A cold start
// of every operator (as for a refused checkpoint) would emit "tens" [0,10) again from part
// of its records (2..9); applying the checkpoint to the changed window would start it at 20
// and emit [15,30) from 20..29 only.
func TestRestartWithChangedWindowColdStart(t *testing.T) {
	pos := crashedCounts(t)
	run := func(pos stream.Position, opts ...stream.Option) *countsRun {
		r := newCountsRun(t, "counts", 15*time.Second, nil, opts...)
		r.q.Resume(pos)
		r.add(2, 40)
		r.q.End()
		require.NoError(t, r.untilDone(t))
		return r
	}
	r := run(pos, stream.WithColdStartChanged())
	require.Equal(t, []string{"0-15:13", "15-30:15", "30-45:10"}, windows(r.counts), "the changed window starts cold at 2")
	require.Equal(t, []string{"20-30:10", "30-40:10"}, windows(r.tens), "the unchanged window resumes from its checkpoint")
	logs := r.logs.String()
	require.Contains(t, logs, "WithColdStartChanged")
	require.Contains(t, logs, `operators="\"counts\" (now tumbling(15s) grace=0s emit=on-close)"`)

	// Without a checkpoint (Meta empty: an earlier release's commit with every operator at
	// the committed offset, or offsets set by a tool) nothing can be compared: everything
	// starts cold, without an error, as before.
	cold := run(stream.Position{Partition: 0, Offset: pos.Offset})
	require.Equal(t, windows(cold.counts), windows(r.counts))
	require.Equal(t, []string{"0-10:8", "10-20:10", "20-30:10", "30-40:10"}, windows(cold.tens))

	// Once the new parameters were committed, a restart without the option finds nothing
	// changed.
	next, ok := r.q.CommittedPosition(0)
	require.True(t, ok)
	again := newCountsRun(t, "counts", 15*time.Second, nil)
	again.q.Resume(next)
	again.add(next.Offset, 50)
	again.q.End()
	require.NoError(t, again.untilDone(t))
}

// TestRestartFromFS2Checkpoint: a checkpoint of the earlier format ("fs2/": no parameters) is
// read as before, whatever the parameters now: its replay starts are applied (the changed
// window starts at 20, its first window of the new size is [15,30) from 20..29), and the
// run's commits are of the new format, with the parameters.
func TestRestartFromFS2Checkpoint(t *testing.T) {
	pos := crashedCounts(t)
	require.True(t, strings.HasPrefix(pos.Meta, "fs4/"), pos.Meta)
	f := strings.Split(pos.Meta, "/")
	require.Len(t, f, 6)
	fs2 := stream.Position{Partition: 0, Offset: pos.Offset, Meta: strings.Join([]string{"fs2", f[1], f[2], f[5]}, "/")}
	r := newCountsRun(t, "counts", 15*time.Second, nil)
	r.q.Resume(fs2)
	r.add(2, 40)
	r.q.End()
	require.NoError(t, r.untilDone(t))
	require.Equal(t, []string{"15-30:10", "30-45:10"}, windows(r.counts))
	require.Equal(t, []string{"20-30:10", "30-40:10"}, windows(r.tens))
	require.Contains(t, r.logs.String(), "partition resumed from checkpoint")
	next, _ := r.q.CommittedPosition(0)
	require.True(t, strings.HasPrefix(next.Meta, "fs4/"), next.Meta)
}

// TestRestartWithChangedAndRenamedWindow: a checkpoint of another graph (here the window
// "counts" renamed "counts-15s", and its size changed) resumes the operators it records by
// name: "tens", unchanged, from its own start (its windows once over the two runs, where a
// cold start emitted [0,10) again from 8 of its 10 records, over the document of all ten);
// the renamed window is a new operator, not compared with the old one, and starts at the
// committed offset, as a new operator does. A checkpoint of the previous format (fs3, no
// identities) of another graph is refused and every stateful operator starts cold.
func TestRestartWithChangedAndRenamedWindow(t *testing.T) {
	pos := crashedCounts(t)
	r := newCountsRun(t, "counts-15s", 15*time.Second, nil)
	r.q.Resume(pos)
	r.add(2, 40)
	r.q.End()
	require.NoError(t, r.untilDone(t))
	require.Contains(t, r.logs.String(), "written by another graph")
	require.Contains(t, r.logs.String(), `new="[counts-15s counts-15s.late]" gone=2`)
	require.Equal(t, []string{"20-30:10", "30-40:10"}, windows(r.tens), "resumed by name")
	require.Equal(t, []string{"0-15:13", "15-30:15", "30-45:10"}, windows(r.counts), "new: from the committed offset")

	f := strings.Split(pos.Meta, "/")
	require.Len(t, f, 6)
	fs3 := stream.Position{Partition: 0, Offset: pos.Offset, Meta: strings.Join([]string{"fs3", f[1], f[2], f[3], f[5]}, "/")}
	old := newCountsRun(t, "counts-15s", 15*time.Second, nil)
	old.q.Resume(fs3)
	old.add(2, 40)
	old.q.End()
	require.NoError(t, old.untilDone(t))
	require.Contains(t, old.logs.String(), "starts cold")
	require.Equal(t, []string{"0-10:8", "10-20:10", "20-30:10", "30-40:10"}, windows(old.tens), "cold")
}

// TestRestartWithChangedGraphAndWindowStops: a new release that adds an operator (another
// graph) and changes a window's size stops with ErrOperatorChanged as one that changes only
// the size does: the window is found by its name in the checkpoint of the old graph, and its
// parameters compared. Before, the changed graph made every operator start cold, the size
// was never compared, and the run went on, exit 0. The unchanged graph of the new release,
// with the old size, resumes by name: "tens" and "counts" emit no window twice, and the new
// window starts at the committed offset.
func TestRestartWithChangedGraphAndWindowStops(t *testing.T) {
	pos := crashedCounts(t)
	grown := func(size time.Duration) (*countsRun, *streamtest.Collector[window.Result[string, int64]]) {
		r := newCountsRun(t, "counts", size, nil)
		w, err := window.Aggregate(r.src, func(int64) string { return "k" }, func(v int64) int64 { return v },
			window.Tumbling(20*time.Second), window.Count[int64](), window.WithName("twenties"))
		require.NoError(t, err)
		return r, streamtest.Collect(w.Results())
	}
	r, twenties := grown(15 * time.Second)
	r.q.Resume(pos)
	r.add(2, 40)
	r.q.End()
	err := r.untilDone(t)
	require.ErrorIs(t, err, stream.ErrOperatorChanged)
	require.ErrorContains(t, err, `"counts" (now tumbling(15s)`)
	require.Empty(t, r.counts.Slice())
	require.Empty(t, r.tens.Slice())
	require.Empty(t, twenties.Slice())

	same, twenties := grown(10 * time.Second)
	same.q.Resume(pos)
	same.add(2, 40)
	same.q.End()
	require.NoError(t, same.untilDone(t))
	require.Contains(t, same.logs.String(), "written by another graph")
	require.Equal(t, []string{"20-30:10", "30-40:10"}, windows(same.counts), "resumed by name")
	require.Equal(t, []string{"20-30:10", "30-40:10"}, windows(same.tens), "resumed by name")
	require.Equal(t, []string{"0-20:18", "20-40:20"}, windows(twenties), "new: from the committed offset")
}

// sideRec is a record of either side of a join, keyed.
type sideRec struct {
	Key   string
	Right bool
}

// joinRun is a pipeline with an interval join of the left and right records of one queue
// through a repartition over an in-memory log (as join.Interval over a Kafka exchange).
type joinRun struct {
	h    *streamtest.Harness
	q    *streamtest.Queue[sideRec]
	rows *streamtest.Collector[join.Joined[string, sideRec, sideRec]]
	logs *bytes.Buffer
}

func newJoinRun(t *testing.T, log *streamtest.ExchangeLog[stream.Pair[string, join.Side[sideRec, sideRec]]], upper time.Duration, opts []join.Option, popts ...stream.Option) *joinRun {
	t.Helper()
	r := &joinRun{logs: new(bytes.Buffer)}
	popts = append([]stream.Option{stream.WithIdleTimeout(0), stream.WithLogger(slog.New(slog.NewTextHandler(r.logs, nil)))}, popts...)
	r.h = streamtest.New(t, time.Second, popts...)
	q, src := streamtest.NewQueue[sideRec](r.h)
	q.SetPartitions(1)
	r.q = q
	kv := func(s sideRec) stream.Pair[string, sideRec] { return stream.KV(s.Key, s) }
	left := stream.Map(src.Filter(func(s sideRec) bool { return !s.Right }), kv)
	right := stream.Map(src.Filter(func(s sideRec) bool { return s.Right }), kv)
	ex := streamtest.NewExchange(log)
	r.h.AddExchange(ex)
	out, err := join.Interval(left, right, ex, 0, upper, append([]join.Option{join.WithName("rides")}, opts...)...)
	require.NoError(t, err)
	r.rows = streamtest.Collect(out.Joined())
	return r
}

// add queues the records of offsets [from, to) in batches of five: offset o is key k<o%3>,
// right when o is odd, at Epoch+o seconds.
func (r *joinRun) add(from, to int64) {
	for o := from; o < to; o += 5 {
		var b []stream.Record[sideRec]
		for i := o; i < min(o+5, to); i++ {
			b = append(b, stream.Record[sideRec]{Value: sideRec{Key: fmt.Sprint("k", i%3), Right: i%2 == 1}, Offset: i,
				EventTime: streamtest.Epoch.Add(time.Duration(i) * time.Second)})
		}
		r.q.Add(b...)
	}
}

func (r *joinRun) untilDone(t *testing.T) error {
	t.Helper()
	for range 1000 {
		done, err := r.h.TryStep()
		if err != nil || done {
			return err
		}
	}
	t.Fatal("the run did not end")
	return nil
}

// joinPairs names each row "<key>:<left time>-<right time>" in seconds, sorted, without repeats
// (a sink overwrites a row a replay emits again).
func joinPairs(rs ...*joinRun) []string {
	var out []string
	for _, r := range rs {
		for _, j := range r.rows.Slice() {
			out = append(out, fmt.Sprintf("%s:%d-%d", j.Key, j.LeftTime.Sub(streamtest.Epoch)/time.Second, j.RightTime.Sub(streamtest.Epoch)/time.Second))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestRestartWithChangedJoinStops: the review's case. An interval join's upper bound changed
// from 10 s to 30 s (or its kind, or an interval join became a window join of the same name)
// across a crash: on main the restart resumed the checkpoint written under the old bounds and
// mixed rows of both, exit 0. Now it stops with ErrOperatorChanged, naming the join and its
// new parameters, before its first batch's outputs: no row, no commit of the source, and the
// repartition's committed positions stay as they were. The same bounds resume and give, over
// both runs, the rows of one run; WithColdStartChanged resumes under the new bounds.
func TestRestartWithChangedJoinStops(t *testing.T) {
	type Log = streamtest.ExchangeLog[stream.Pair[string, join.Side[sideRec, sideRec]]]
	crashed := func() (*Log, *joinRun, stream.Position) {
		log := streamtest.NewExchangeLog[stream.Pair[string, join.Side[sideRec, sideRec]]](2)
		r := newJoinRun(t, log, 10*time.Second, nil)
		r.add(0, 30)
		r.h.Run(7)
		pos, ok := r.q.CommittedPosition(0)
		require.True(t, ok)
		require.NotEmpty(t, r.rows.Slice())
		return log, r, pos
	}
	for _, c := range []struct {
		name  string
		upper time.Duration
		opts  []join.Option
		now   string
	}{
		{"upper", 30 * time.Second, nil, `"rides" (now interval lower=0s upper=30s kind=inner)`},
		{"kind", 10 * time.Second, []join.Option{join.WithKind(join.LeftOuter)}, `"rides" (now interval lower=0s upper=10s kind=left-outer)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			log, _, pos := crashed()
			before := log.Committed()
			r := newJoinRun(t, log, c.upper, c.opts)
			r.q.Resume(pos)
			r.add(pos.Offset, 60)
			r.q.End()
			err := r.untilDone(t)
			t.Log(err)
			require.ErrorIs(t, err, stream.ErrOperatorChanged)
			require.True(t, stream.IsPermanent(err))
			require.ErrorContains(t, err, c.now)
			require.Empty(t, r.rows.Batches(), "a batch's outputs ran")
			require.Empty(t, r.q.Commits(), "the stopped run committed")
			require.Equal(t, before, log.Committed(), "the stopped run committed the repartition")
		})
	}
	t.Run("window join of the same name", func(t *testing.T) {
		log, _, pos := crashed()
		r := &joinRun{logs: new(bytes.Buffer)}
		r.h = streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
		q, src := streamtest.NewQueue[sideRec](r.h)
		q.SetPartitions(1)
		r.q = q
		kv := func(s sideRec) stream.Pair[string, sideRec] { return stream.KV(s.Key, s) }
		ex := streamtest.NewExchange(log)
		r.h.AddExchange(ex)
		out, err := join.Window(stream.Map(src.Filter(func(s sideRec) bool { return !s.Right }), kv),
			stream.Map(src.Filter(func(s sideRec) bool { return s.Right }), kv), ex, 10*time.Second, join.WithName("rides"))
		require.NoError(t, err)
		r.rows = streamtest.Collect(out.Joined())
		r.q.Resume(pos)
		r.add(pos.Offset, 60)
		r.q.End()
		err = r.untilDone(t)
		require.ErrorIs(t, err, stream.ErrOperatorChanged)
		require.ErrorContains(t, err, `"rides" (now window size=10s kind=inner)`)
		require.Empty(t, r.rows.Batches())
	})

	t.Run("same bounds", func(t *testing.T) {
		log, first, pos := crashed()
		r := newJoinRun(t, log, 10*time.Second, nil)
		r.q.Resume(pos)
		r.add(pos.Offset, 60)
		r.q.End()
		require.NoError(t, r.untilDone(t))

		one := newJoinRun(t, streamtest.NewExchangeLog[stream.Pair[string, join.Side[sideRec, sideRec]]](2), 10*time.Second, nil)
		one.add(0, 60)
		one.q.End()
		require.NoError(t, one.untilDone(t))
		require.Equal(t, joinPairs(one), joinPairs(first, r), "the rows of a run without the crash")
	})

	t.Run("cold start accepted", func(t *testing.T) {
		log, first, pos := crashed()
		r := newJoinRun(t, log, 30*time.Second, nil, stream.WithColdStartChanged())
		r.q.Resume(pos)
		r.add(pos.Offset, 60)
		r.q.End()
		require.NoError(t, r.untilDone(t))
		require.Contains(t, r.logs.String(), "WithColdStartChanged")
		got := joinPairs(first, r)
		one := newJoinRun(t, streamtest.NewExchangeLog[stream.Pair[string, join.Side[sideRec, sideRec]]](2), 30*time.Second, nil)
		one.add(0, 60)
		one.q.End()
		require.NoError(t, one.untilDone(t))
		require.NotEqual(t, joinPairs(one), got, "rows of the old bounds before the restart: not one run under the new ones")
		require.Subset(t, joinPairs(one), joinPairs(r), "every row after the restart is one of the new bounds")
	})
}

// TestCheckpointWithManyOperatorsFits: the parameters cost a checkpoint at most 12 bytes per
// operator that has any, the identities about 8 per stateful operator. A pipeline of n
// event-time windows (2n stateful operators with their late streams) at offsets of ten
// digits commits checkpoints within 3 KiB, which leaves a kafka Source the 1 KB it may add
// under Kafka's default limit of 4 KiB for offset metadata (offset.metadata.max.bytes): with
// the identities up to identsMax bytes (40 windows), without them beyond (60 windows; a
// restart with another graph then starts cold, as before identities).
func TestCheckpointWithManyOperatorsFits(t *testing.T) {
	for _, c := range []struct {
		windows int
		idents  bool
	}{{10, true}, {40, true}, {60, false}} {
		h := streamtest.New(t, time.Second)
		q, src := streamtest.NewQueue[int64](h)
		for i := range c.windows {
			w, err := window.Aggregate(src, func(int64) string { return "k" }, func(v int64) int64 { return v },
				window.Tumbling(time.Duration(i+1)*time.Second), window.Count[int64](), window.WithName(fmt.Sprint("w", i)))
			require.NoError(t, err)
			streamtest.Collect(w.Results())
		}
		const base = 9_000_000_000
		var b []stream.Record[int64]
		for i := range int64(100) {
			b = append(b, stream.Record[int64]{Value: i, Offset: base + i, EventTime: streamtest.Epoch.Add(time.Duration(i) * 700 * time.Millisecond)})
		}
		q.Add(b...)
		h.Run(1)
		pos, ok := q.CommittedPosition(0)
		require.True(t, ok)
		f := strings.Split(pos.Meta, "/")
		require.Len(t, f, 6)
		require.Len(t, strings.Split(f[3], ","), c.windows, "a parameters entry per window")
		require.LessOrEqual(t, len(f[3]), c.windows*12)
		if c.idents {
			require.Len(t, strings.Split(f[4], ","), 2*c.windows, "%d windows: an identity per stateful operator", c.windows)
			require.LessOrEqual(t, len(f[4]), 2*c.windows*8)
			require.LessOrEqual(t, len(pos.Meta), 2560)
		} else {
			require.Equal(t, "-", f[4], "%d windows: the identities left out", c.windows)
		}
		require.LessOrEqual(t, len(pos.Meta), 3072)
		t.Logf("checkpoint of %d windows: %d bytes, %d of them the parameters, %d the identities", c.windows, len(pos.Meta), len(f[3]), len(f[4]))
	}
}

// TestRestartWithChangedProcessingTimeState: the processing-time windows and MapWithState of
// this package record their parameters too (a window's length and slide, a state's timeout).
func TestRestartWithChangedProcessingTimeState(t *testing.T) {
	for _, c := range []struct {
		name  string
		build func(src *stream.Stream[int64], changed bool)
		now   string
	}{
		{"window", func(src *stream.Stream[int64], changed bool) {
			length := 3 * time.Second
			if changed {
				length = 4 * time.Second
			}
			streamtest.Collect(stream.Window(src, length, time.Second))
		}, `"window" (now window length=4s slide=1s)`},
		{"mapWithState", func(src *stream.Stream[int64], changed bool) {
			timeout := time.Minute
			if changed {
				timeout = time.Hour
			}
			m, _ := stream.MapWithState(stream.KeyBy(src, func(v int64) int64 { return v % 2 }),
				func(_ int64, v int64, _ bool, st *stream.State[int64]) (int64, bool) {
					n, _ := st.Get()
					st.Update(n + v)
					return n + v, true
				}, timeout)
			streamtest.Collect(m)
		}, `"mapWithState" (now timeout=1h0m0s)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			run := func(changed bool, pos ...stream.Position) (*streamtest.Queue[int64], error) {
				h := streamtest.New(t, time.Second)
				q, src := streamtest.NewQueue[int64](h)
				// a group sum beside, so that the commit stays behind the state
				stream.Apply(src, "groupSum", stream.Operator[int64, int64](&groupSum{sum: map[int64]int64{}, first: map[int64]int64{}}))
				c.build(src, changed)
				q.Resume(pos...)
				from := int64(0)
				if len(pos) > 0 {
					from = pos[0].Offset
				}
				q.Add(recs(from, from+3)...)
				q.Add(recs(from+3, from+6)...)
				_, err := h.TryStep()
				if err == nil {
					_, err = h.TryStep()
				}
				return q, err
			}
			q, err := run(false)
			require.NoError(t, err)
			pos, ok := q.CommittedPosition(0)
			require.True(t, ok)
			_, err = run(false, pos)
			require.NoError(t, err, "the same parameters")
			q, err = run(true, pos)
			require.ErrorIs(t, err, stream.ErrOperatorChanged)
			require.ErrorContains(t, err, c.now)
			require.Empty(t, q.Commits())
		})
	}
}

// TestColdStartChangedRecordsParametersOfIdlePartition: a run that accepts changed parameters
// (WithColdStartChanged) commits them also for a partition it reads no record of (one
// committed at its end: a quiet partition of a second input, such as the fleet job's ride
// requests), so that the next restart needs no option, as the documentation says. The
// partition is committed at the offset it resumed from, with the checkpoint it resumed from
// under the parameters now. Before, such a partition kept the checkpoint of the old
// parameters, and every restart without the option stopped with ErrOperatorChanged.
func TestColdStartChangedRecordsParametersOfIdlePartition(t *testing.T) {
	type run struct {
		h      *streamtest.Harness
		q      *streamtest.Queue[int64]
		counts *streamtest.Collector[window.Result[string, int64]]
	}
	newRun := func(size time.Duration, opts ...stream.Option) *run {
		r := &run{h: streamtest.New(t, time.Second, opts...)}
		var src *stream.Stream[int64]
		r.q, src = streamtest.NewQueue[int64](r.h)
		r.q.SetPartitions(2)
		// Partition 1's records (negative) do not reach the window: like the fleet job's
		// ride requests, which only stateless operators read, the partition holds no state
		// and commits at its end.
		w, err := window.Aggregate(src.Filter(func(v int64) bool { return v >= 0 }), func(int64) string { return "k" },
			func(v int64) int64 { return v }, window.Tumbling(size), window.Count[int64](), window.WithName("counts"))
		require.NoError(t, err)
		r.counts = streamtest.Collect(w.Results())
		return r
	}
	// add queues partition part's records of offsets [from, to), at Epoch+offset seconds,
	// valued offset on partition 0 and -1-offset on partition 1.
	add := func(r *run, part int32, from, to int64) {
		for o := from; o < to; o++ {
			v := o
			if part == 1 {
				v = -1 - o
			}
			r.q.Add(stream.Record[int64]{Value: v, Partition: part, Offset: o, EventTime: streamtest.Epoch.Add(time.Duration(o) * time.Second)})
		}
	}
	untilDone := func(r *run) error {
		for range 1000 {
			done, err := r.h.TryStep()
			if err != nil || done {
				return err
			}
		}
		t.Fatal("the run did not end")
		return nil
	}
	// committed returns the positions the group holds after run r: r's last commit of each
	// partition, else the position before (prev).
	committed := func(r *run, prev []stream.Position) []stream.Position {
		var pos []stream.Position
		for part := range int32(2) {
			p, ok := r.q.CommittedPosition(part)
			if !ok {
				require.NotNil(t, prev, "partition %d committed", part)
				p = prev[part]
			}
			pos = append(pos, p)
		}
		return pos
	}

	// Partition 1 has records 0..9 only, and commits at 10; partition 0 goes on.
	first := newRun(10 * time.Second)
	add(first, 0, 0, 30)
	add(first, 1, 0, 10)
	first.q.End()
	require.NoError(t, untilDone(first))
	pos := committed(first, nil)
	require.Equal(t, int64(10), pos[1].Offset, "partition 1 committed at its end")

	// The window becomes 15 s: accepted; partition 1 has nothing more to read.
	accepted := newRun(15*time.Second, stream.WithColdStartChanged())
	accepted.q.Resume(pos...)
	add(accepted, 0, 30, 45)
	accepted.q.End()
	require.NoError(t, untilDone(accepted))
	next := committed(accepted, pos)
	require.Equal(t, pos[1].Offset, next[1].Offset, "partition 1 stays at its offset")
	require.NotEqual(t, pos[1].Meta, next[1].Meta, "partition 1's checkpoint records the new parameters")

	// The next restart under the same parameters needs no option.
	again := newRun(15 * time.Second)
	again.q.Resume(next...)
	add(again, 0, 45, 60)
	add(again, 1, 10, 20)
	again.q.End()
	require.NoError(t, untilDone(again), "the restart after the accepted one")
	require.NotEmpty(t, again.counts.Slice())
}
