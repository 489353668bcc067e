// The test input generator, the pipeline under test (two queues, one repartition, a join),
// and the brute-force oracle.

package join_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

type kv = stream.Pair[string, int]

type shuffled = stream.Pair[string, join.Side[int, int]]

// onePartition is a harness whose left and right inputs have one partition each, tagged and
// repartitioned through an exchange of one partition: the stream a join reads.
func onePartition(t *testing.T) (h *streamtest.Harness, qa, qb *streamtest.Queue[kv], co *stream.Stream[shuffled]) {
	h = streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
	qa, sa := streamtest.NewQueue[kv](h)
	qb, sb := streamtest.NewQueue[kv](h)
	qa.SetPartitions(1)
	qb.SetPartitions(1)
	_, co = streamtest.NewRepartition(h, join.Tag(sa, sb), "join", streamtest.NewExchangeLog[shuffled](1))
	return h, qa, qb, co
}

// upRec is one generated input record: a left (A) or right (B) record with a unique id.
type upRec struct {
	right bool
	id    int
	key   string
	t     int64 // Unix seconds
	part  int32 // upstream partition of its side
	batch int   // queue batch
	// maxBefore is the newest event time in the record's upstream partition in earlier
	// batches: its upstream watermark bound when each queue batch is a pipeline batch.
	// maxPrior is the newest before it in the partition: the bound for any batching.
	maxBefore, maxPrior int64
}

// input is a generated run: per queue batch, the records of each side.
type input struct {
	left, right [][]stream.Record[kv]
	recs        map[string]upRec // by recID
	ooo         int64            // seconds
}

func recID(right bool, id int) string {
	if right {
		return fmt.Sprintf("R%d", id)
	}
	return fmt.Sprintf("L%d", id)
}

// genInput generates out-of-order input on 3 left and 2 right upstream partitions whose event
// times drift apart, over keys keys; lateRate percent of the records are late in their own
// upstream partition. Besides records a few seconds apart it makes, as gen.parts says, gaps,
// bursts, idle partitions and one-shot keys.
func genInput(rng *rand.Rand, keys, lateRate int) *input {
	in := &input{recs: map[string]upRec{}, ooo: int64(1 + rng.IntN(4))}
	g := newGen(rng, in, keys, lateRate)
	in.left = g.parts(3, func(int32) bool { return false }, "")
	in.right = g.parts(2, func(int32) bool { return true }, "")
	return in
}

// gen makes the records of a generated input, partition by partition.
type gen struct {
	rng            *rand.Rand
	in             *input
	keys, lateRate int
	batches        int
	gapAt          []int64 // the gaps every partition has, by batch
	id             int
}

func newGen(rng *rand.Rand, in *input, keys, lateRate int) *gen {
	g := &gen{rng: rng, in: in, keys: keys, lateRate: lateRate, batches: 25 + rng.IntN(20)}
	g.gapAt = make([]int64, g.batches)
	for b := range g.gapAt {
		if rng.IntN(10) == 0 {
			g.gapAt[b] = 20 + rng.Int64N(41)
		}
	}
	return g
}

// parts generates parts partitions of queue batches, the side of each record by right (given
// its partition), keys prefixed by keyPrefix and the partition when keyPrefix is not empty
// (so that no key is in two partitions). Event time advances by 1 to 3 s a batch from a
// random start, records lag it by up to the out-of-orderness, and besides:
//   - gaps: in one batch in ten, event time jumps 20 to 60 s forward in every partition
//     (longer than the out-of-orderness and than randSpec's narrow bounds and windows:
//     their state expires in between), and in one partition-batch in forty in that
//     partition only;
//   - bursts: one partition-batch in ten brings 8 to 23 records within the out-of-orderness
//     (none late), seven in ten of one key, in descending or random order of time;
//   - idle partitions: one partition in four brings nothing for 3 to 10 batches from the
//     start, one in four in the middle, one in four up to the end (its event time goes on);
//   - one-shot keys: one record in fifteen has a key of its own, and one in fifteen the key
//     of its batch, which records of every partition may have in that batch and never again
//     (of its partition and batch with keyPrefix).
func (g *gen) parts(parts int, right func(p int32) bool, keyPrefix string) [][]stream.Record[kv] {
	rng, in := g.rng, g.in
	out := make([][]stream.Record[kv], g.batches)
	for p := range int32(parts) {
		prefix := ""
		if keyPrefix != "" {
			prefix = fmt.Sprintf("%s%d/", keyPrefix, p)
		}
		base := int64(rng.IntN(20))
		rate := int64(1 + rng.IntN(3))
		maxT := int64(-1 << 62)
		// idle from batch idleFrom for idleN batches
		idleFrom, idleN := -1, 0
		switch rng.IntN(4) {
		case 0:
			idleFrom, idleN = 0, 3+rng.IntN(8)
		case 1:
			idleFrom, idleN = rng.IntN(g.batches), 3+rng.IntN(8)
		case 2:
			idleN = 3 + rng.IntN(8)
			idleFrom = g.batches - idleN
		}
		// From 0: offsets such as 14 ("e" in base 36) reach the repartition's
		// checkpoints, as stream.TestMarksEncoding needs them to.
		off := int64(0)
		for b := range g.batches {
			base += rate + g.gapAt[b]
			if rng.IntN(40) == 0 {
				base += 20 + rng.Int64N(41)
			}
			newest := maxT
			n := rng.IntN(4)
			burst := rng.IntN(10) == 0
			if burst {
				n = 8 + rng.IntN(16)
			}
			if b >= idleFrom && b < idleFrom+idleN {
				n = 0
			}
			burstKey := fmt.Sprintf("k%d", rng.IntN(g.keys))
			desc := rng.IntN(2) == 0
			for i := range n {
				t := base - rng.Int64N(in.ooo+1)
				key := fmt.Sprintf("k%d", rng.IntN(g.keys))
				if burst {
					if desc {
						t = base - int64(i)*(in.ooo+1)/int64(n)
					}
					if rng.IntN(10) < 7 {
						key = burstKey
					}
				} else if rng.IntN(100) < g.lateRate {
					t = base - in.ooo - 1 - rng.Int64N(15)
				}
				g.id++
				switch rng.IntN(15) {
				case 0:
					key = fmt.Sprintf("u%d", g.id)
				case 1:
					key = fmt.Sprintf("o%d", b)
				}
				r := upRec{right: right(p), id: g.id, key: prefix + key, t: t, part: p, batch: b, maxBefore: maxT, maxPrior: newest}
				in.recs[recID(r.right, g.id)] = r
				out[b] = append(out[b], stream.Record[kv]{Value: stream.KV(r.key, g.id), Partition: p, Offset: off,
					EventTime: time.Unix(t, 0)})
				off++
				newest = max(newest, t)
			}
			maxT = newest
		}
	}
	return out
}

// spec is the join under test.
type spec struct {
	window       bool
	lower, upper int64 // seconds, Interval
	size         int64 // seconds, Window
	kind         join.Kind
}

func (s spec) String() string {
	if s.window {
		return fmt.Sprintf("window %ds %v", s.size, s.kind)
	}
	return fmt.Sprintf("interval [-%ds, +%ds] %v", s.lower, s.upper, s.kind)
}

// randSpec returns a random join: bounds of up to 5 and 7 s or windows of up to 10 s, shorter
// than the input's gaps, and with wide one in six with bounds or windows of up to 80 s,
// which hold records across gaps.
func randSpec(rng *rand.Rand, wide bool) spec {
	s := spec{window: rng.IntN(2) == 0, lower: int64(rng.IntN(6)), upper: int64(rng.IntN(8)), size: int64(1 + rng.IntN(10))}
	if wide && rng.IntN(6) == 0 {
		s.lower, s.upper, s.size = rng.Int64N(60), rng.Int64N(60), 1+rng.Int64N(80)
	}
	if rng.IntN(2) == 0 {
		s.kind = join.LeftOuter
	}
	return s
}

// run is one process of Queue(3) + Queue(2) -> Tag -> repartition -> join.
type run struct {
	h      *streamtest.Harness
	qa, qb *streamtest.Queue[kv]
	rows   *streamtest.Collector[join.Joined[string, int, int]]
	late   *streamtest.Collector[join.Late[string, int, int]]
	out    *join.Output[string, int, int]
	crash  int  // the batch whose last output fails, 0 for none
	failed bool // the crash batch ran (and failed)
	// read is what a stateful operator reading the rows (holding nothing) passed on.
	read *streamtest.Collector[join.Joined[string, int, int]]
}

// readAcked counts the rows the stateful reader passed on in acknowledged batches (all but a
// failed last one).
func (r *run) readAcked(counts map[string]int) {
	b := r.read.Batches()
	if r.failed && len(b) > 0 {
		b = b[:len(b)-1]
	}
	for _, batch := range b {
		for id, n := range rowCounts(batch) {
			counts[id] += n
		}
	}
}

// probe is a stateful operator that holds nothing: it passes its input on and, when got is
// set, records it. What reaches it in a replay is what it had not accounted for before its
// checkpointed start.
type probe[T any] struct{ got *[]stream.Elem[T] }

func (p probe[T]) Process(_ *stream.PartitionContext, in []stream.Elem[T], out []stream.Elem[T]) []stream.Elem[T] {
	if p.got != nil {
		*p.got = append(*p.got, in...)
	}
	return append(out, in...)
}
func (probe[T]) Retained(int32) (int64, bool) { return 0, false }
func (probe[T]) Drop(int32)                   {}
func (probe[T]) StateSize() int               { return 0 }

// values returns the elements' values.
func values[T any](elems []stream.Elem[T]) []T {
	out := make([]T, len(elems))
	for i, e := range elems {
		out[i] = e.Value
	}
	return out
}

// queueFrom resumes q from the committed positions pos and queues the batches' records from
// there on.
func queueFrom[T any](q *streamtest.Queue[T], batches [][]stream.Record[T], pos []stream.Position) {
	q.Resume(pos...)
	from := map[int32]int64{}
	for _, p := range pos {
		from[p.Partition] = p.Offset
	}
	for _, b := range batches {
		var rest []stream.Record[T]
		for _, rec := range b {
			if rec.Offset >= from[rec.Partition] {
				rest = append(rest, rec)
			}
		}
		q.Add(rest...)
	}
}

// runBatches runs n batches of h, or, if n < 0, ends the inputs and runs to the end; a batch
// whose output fails (a crash) stops it.
func runBatches(h *streamtest.Harness, n int, end ...func()) {
	if n < 0 {
		for _, e := range end {
			e()
		}
		h.RunUntilDone()
		return
	}
	for range n {
		if _, err := h.TryStep(); err != nil {
			return
		}
	}
}

func newRun(t *testing.T, log *streamtest.ExchangeLog[shuffled], in *input, sp spec, opts ...stream.Option) *run {
	t.Helper()
	r := &run{h: streamtest.New(t, time.Second, append([]stream.Option{stream.WithIdleTimeout(0),
		stream.WithMaxOutOfOrderness(time.Duration(in.ooo) * time.Second)}, opts...)...)}
	var sa, sb *stream.Stream[kv]
	r.qa, sa = streamtest.NewQueue[kv](r.h)
	r.qb, sb = streamtest.NewQueue[kv](r.h)
	r.qa.SetPartitions(3)
	r.qb.SetPartitions(2)
	_, co := streamtest.NewRepartition(r.h, join.Tag(sa, sb), "join", log)
	var err error
	if sp.window {
		r.out, err = join.WindowOn(co, time.Duration(sp.size)*time.Second, join.WithKind(sp.kind))
	} else {
		r.out, err = join.IntervalOn(co, time.Duration(sp.lower)*time.Second, time.Duration(sp.upper)*time.Second, join.WithKind(sp.kind))
	}
	require.NoError(t, err)
	r.rows = streamtest.Collect(r.out.Joined())
	r.late = streamtest.Collect(r.out.Late())
	r.read = streamtest.Collect(stream.Apply(r.out.Joined(), "reader", stream.Operator[join.Joined[string, int, int], join.Joined[string, int, int]](probe[join.Joined[string, int, int]]{})))
	stream.ForEachBatch(r.out.Joined(), func(_ context.Context, info stream.BatchInfo, _ []join.Joined[string, int, int]) error {
		if int(info.Batch) == r.crash {
			r.failed = true
			return errors.New("crash")
		}
		return nil
	})
	return r
}

// feed resumes the queues from the committed positions, queues the input from there on and
// runs n batches (to the end if n < 0); a run with a crash batch stops there.
func (r *run) feed(in *input, posA, posB []stream.Position, n int) {
	queueFrom(r.qa, in.left, posA)
	queueFrom(r.qb, in.right, posB)
	runBatches(r.h, n, r.qa.End, r.qb.End)
}

func committed(q *streamtest.Queue[kv], parts int32) []stream.Position {
	var pos []stream.Position
	for p := range parts {
		if cp, ok := q.CommittedPosition(p); ok {
			pos = append(pos, cp)
		}
	}
	return pos
}

// rowID names a row: key, left id, right id (-1 when unmatched).
func rowID(j join.Joined[string, int, int]) string {
	if !j.Matched {
		return fmt.Sprintf("%s/%d/-", j.Key, j.Left)
	}
	return fmt.Sprintf("%s/%d/%d", j.Key, j.Left, j.Right)
}

func lateID(l join.Late[string, int, int]) string {
	if l.Side.IsRight {
		return recID(true, l.Side.Right)
	}
	return recID(false, l.Side.Left)
}

// rowCounts counts the rows by id.
func rowCounts(rows []join.Joined[string, int, int]) map[string]int {
	m := map[string]int{}
	for _, j := range rows {
		m[rowID(j)]++
	}
	return m
}

func lateSet(ls []join.Late[string, int, int]) map[string]bool {
	m := map[string]bool{}
	for _, l := range ls {
		m[lateID(l)] = true
	}
	return m
}

func floorMul(t, m int64) int64 {
	r := t % m
	if r < 0 {
		r += m
	}
	return t - r
}

func (s spec) match(ta, tb int64) bool {
	if s.window {
		return floorMul(ta, s.size) == floorMul(tb, s.size)
	}
	return ta-s.lower <= tb && tb <= ta+s.upper
}

// oracle returns every row the join must emit, once each, given which records were late: all
// matching pairs of records that were not late, and in a LeftOuter join every left record
// that was not late and has no such partner.
func oracle(in *input, sp spec, late map[string]bool) map[string]int {
	want := map[string]int{}
	for ida, a := range in.recs {
		if a.right || late[ida] {
			continue
		}
		matched := false
		for idb, b := range in.recs {
			if !b.right || late[idb] || b.key != a.key || !sp.match(a.t, b.t) {
				continue
			}
			matched = true
			want[fmt.Sprintf("%s/%d/%d", a.key, a.id, b.id)]++
		}
		if !matched && sp.kind == join.LeftOuter {
			want[fmt.Sprintf("%s/%d/-", a.key, a.id)]++
		}
	}
	return want
}

// checkLate checks that every record reported late was late in its own upstream partition
// (the join's watermark at a record is at most its upstream partition's watermark when it
// was sent: the newest time of the earlier batches minus the out-of-orderness), and that the
// late records carry their own times and the late reason.
// With anyBatching, batches were not the queue's, and the bound is the newest time before
// the record in its partition.
func checkLate(t *testing.T, in *input, sp spec, ls []join.Late[string, int, int], anyBatching bool) {
	t.Helper()
	for _, l := range ls {
		r, ok := in.recs[lateID(l)]
		require.True(t, ok)
		require.Equal(t, stream.ReasonLate, l.Reason)
		require.Equal(t, r.t, l.EventTime.Unix())
		require.Equal(t, r.key, l.Key)
		bound := r.t
		if sp.window {
			bound = floorMul(r.t, sp.size) + sp.size - 1
		}
		up := r.maxBefore
		if anyBatching {
			up = r.maxPrior
		}
		require.Less(t, bound, up-in.ooo, "%s (t=%d) was reported late but was on time in its upstream partition", lateID(l), r.t)
		require.LessOrEqual(t, l.Watermark.Unix(), up-in.ooo)
	}
}

// genTagged generates the input of a join outside a repartition: parts partitions of one
// source, each holding both sides of its own keys (prefixed with "p" and the partition), as
// gen.parts makes them.
func genTagged(rng *rand.Rand, parts, keys, lateRate int) (*input, [][]stream.Record[shuffled]) {
	in := &input{recs: map[string]upRec{}, ooo: int64(1 + rng.IntN(4))}
	g := newGen(rng, in, keys, lateRate)
	batches := g.parts(parts, func(int32) bool { return rng.IntN(2) == 0 }, "p")
	out := make([][]stream.Record[shuffled], len(batches))
	for b, recs := range batches {
		for _, r := range recs {
			side := join.Side[int, int]{Left: r.Value.Value}
			if _, ok := in.recs[recID(true, r.Value.Value)]; ok {
				side = join.Side[int, int]{Right: r.Value.Value, IsRight: true}
			}
			out[b] = append(out[b], stream.Record[shuffled]{Value: stream.KV(r.Value.Key, side), Partition: r.Partition,
				Offset: r.Offset, EventTime: r.EventTime})
		}
	}
	return in, out
}

// tagRun is one process of Queue(parts) of both sides -> join, without a repartition.
type tagRun struct {
	h     *streamtest.Harness
	q     *streamtest.Queue[shuffled]
	rows  *streamtest.Collector[join.Joined[string, int, int]]
	late  *streamtest.Collector[join.Late[string, int, int]]
	out   *join.Output[string, int, int]
	crash int // the batch whose output fails, 0 for none
}

func newTagRun(t *testing.T, in *input, parts int, sp spec) *tagRun {
	t.Helper()
	r := &tagRun{h: streamtest.New(t, time.Second, stream.WithIdleTimeout(0),
		stream.WithMaxOutOfOrderness(time.Duration(in.ooo)*time.Second))}
	var s *stream.Stream[shuffled]
	r.q, s = streamtest.NewQueue[shuffled](r.h)
	r.q.SetPartitions(parts)
	var err error
	if sp.window {
		r.out, err = join.WindowOn(s, time.Duration(sp.size)*time.Second, join.WithKind(sp.kind))
	} else {
		r.out, err = join.IntervalOn(s, time.Duration(sp.lower)*time.Second, time.Duration(sp.upper)*time.Second, join.WithKind(sp.kind))
	}
	require.NoError(t, err)
	r.rows = streamtest.Collect(r.out.Joined())
	r.late = streamtest.Collect(r.out.Late())
	stream.ForEachBatch(r.out.Joined(), func(_ context.Context, info stream.BatchInfo, _ []join.Joined[string, int, int]) error {
		if int(info.Batch) == r.crash {
			return errors.New("crash")
		}
		return nil
	})
	return r
}

// feed resumes the queue from pos, queues the batches from there on and runs n batches (to
// the end if n < 0); a run with a crash batch stops there.
func (r *tagRun) feed(batches [][]stream.Record[shuffled], pos []stream.Position, n int) {
	queueFrom(r.q, batches, pos)
	runBatches(r.h, n, r.q.End)
}

// operatorState returns the stats of the operator named name after the last batch.
func operatorState(t *testing.T, p *stream.Pipeline, name string) stream.OperatorState {
	t.Helper()
	for _, s := range p.Stats().State {
		if s.Operator == name {
			return s
		}
	}
	t.Fatalf("no operator %s in the stats", name)
	return stream.OperatorState{}
}
