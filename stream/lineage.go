// Replay starts of chained stateful operators: the record, per partition, of the starts an
// operator with stateful readers had after past batches, and where it replays from.

package stream

import (
	"math"
	"slices"
)

// Replay starts of chained stateful operators.
//
// A stateful operator's output for a record may depend on records before it: a tracker that
// compares each event with the cab's previous one marks it as a duplicate or a GPS jump. A
// cold start at an offset the operator's Retained returned after some batch reproduces its
// output exactly for every record after that batch; for the records between that offset and
// the batch's end it may differ (an event is seen as its cab's first). A stateful operator
// that reads such output replays from its own start, which can be older than the upstream
// one's current start. Starting the upstream operator there cold would feed it outputs that
// differ from the original run's. So the pipeline keeps, per partition, the starts that each
// stateful operator with stateful readers had after past batches, and starts it where it could
// start after the last batch that ended before its readers' starts. Starts are kept only until
// no reader can need them.

// startAt says that after the batch that ended with every record before next processed, a
// cold start at start, given fired as PartitionContext.ResumeFired, reproduced the operator's
// output for every record from next on.
type startAt struct{ next, start, fired int64 }

// lineage is the graph's stateful operators and which of them read which.
type lineage struct {
	nodes    int     // len(p.nodes) it was computed for
	stateful []int   // node indexes of the stateful operators
	readers  [][]int // by position in stateful: the positions of the stateful operators that read its output through stateless ones (its past starts are kept if any)
	pos      []int   // by node index: the position in stateful of a stateful node
	// fed, by node index: the node reads the output of a stateful operator (through stateless
	// ones), so its input's offsets need not be in source order.
	fed []bool
	// sources, by node index: the sources whose records reach the node's input through
	// stateless operators only (see SourceTimes).
	sources [][]int
}

func (p *Pipeline) lineage() *lineage {
	if p.lin != nil && p.lin.nodes == len(p.nodes) {
		return p.lin
	}
	l := &lineage{nodes: len(p.nodes), pos: make([]int, len(p.nodes)), fed: make([]bool, len(p.nodes)), sources: p.sourcesOf()}
	for i, in := range p.statefulInputs() {
		l.fed[i] = len(in) > 0
		if !hasState(p.nodes[i]) {
			continue
		}
		l.pos[i] = len(l.stateful)
		l.stateful = append(l.stateful, i)
		l.readers = append(l.readers, nil)
		for _, f := range in {
			l.readers[l.pos[f]] = append(l.readers[l.pos[f]], l.pos[i])
		}
	}
	p.lin = l
	return l
}

// statefulInputs returns, by node index, the stateful operators whose output reaches the
// node's input through stateless operators only, in graph order.
func (p *Pipeline) statefulInputs() [][]int {
	return p.inputsThrough(func(i int, in []int) []int {
		if hasState(p.nodes[i]) {
			return []int{i}
		}
		return in
	})
}

// inputsThrough returns, by node index, what reaches the node's input: the union over its
// inputs of what reaches past each, in graph order, where out(i, in) is what reaches past
// node i given what reaches its input.
func (p *Pipeline) inputsThrough(out func(i int, in []int) []int) [][]int {
	outs := make([][]int, len(p.nodes))
	ins := make([][]int, len(p.nodes))
	for i, n := range p.nodes {
		var in []int
		for _, par := range n.inputs() {
			for _, f := range outs[par] {
				if !slices.Contains(in, f) {
					in = append(in, f)
				}
			}
		}
		ins[i], outs[i] = in, out(i, in)
	}
	return ins
}

// replayStarts returns, by position in l.stateful, where each stateful operator of the
// partition must replay from after this batch, given the offsets their open state retains,
// and the watermark the state of each had fired on (NoWatermark for none; see
// PartitionContext.ResumeFired). It records the starts of operators with readers and forgets
// those no reader can need.
func (p *Pipeline) replayStarts(l *lineage, part int32, ps *partState, held []heldAt) (starts, fired []int64) {
	n := len(l.stateful)
	if len(ps.hist) != n {
		p.startLineage(l, ps)
	}
	starts, fired = p.starts[:0], p.fired[:0]
	for _, idx := range l.stateful {
		// Holding nothing, an operator starts after everything acknowledged, or where its
		// current replay starts if it has not got there yet.
		s := ps.next
		if v, ok := ps.skip[idx]; ok {
			s = max(s, v)
		}
		starts = append(starts, s)
		fired = append(fired, p.firedOf(idx, part, ps))
	}
	for _, h := range held {
		starts[l.pos[h.node]] = h.off
	}
	for k, idx := range l.stateful {
		// Readers of records an operator withheld must get what a replay emits for them.
		if len(l.readers[k]) == 0 {
			continue
		}
		if w, ok := withheldBy(p.nodes[idx], part); ok {
			for _, r := range l.readers[k] {
				starts[r] = min(starts[r], w)
			}
		}
	}
	for k := range starts {
		if len(l.readers[k]) == 0 || ps.next < ps.trust[k] {
			continue
		}
		h := ps.hist[k]
		if last := h[len(h)-1]; last.start != starts[k] || last.fired != fired[k] {
			ps.hist[k] = append(h, startAt{ps.next, starts[k], fired[k]})
		}
	}
	// Readers come after what they read: from the last operator back, each one's start is
	// final before the operators it reads are moved back to it.
	for k := n - 1; k >= 0; k-- {
		if len(l.readers[k]) == 0 {
			continue
		}
		need := int64(math.MaxInt64)
		for _, r := range l.readers[k] {
			need = min(need, starts[r])
		}
		at := ps.hist[k][lastAt(ps.hist[k], need)]
		s, f := at.start, at.fired
		if rs, at, ok := p.nodes[l.stateful[k]].replayStart(part, need); ok && at >= ps.trust[k] && rs > s {
			// Both are valid starts: the later one replays less. (A ReplayStarter's state
			// does not fire on the watermark.)
			s, f = rs, NoWatermark
		}
		if s < starts[k] {
			starts[k], fired[k] = s, f
		}
		// A reader's start can move back (when a new window holds an older record), but a
		// checkpoint is only committed when no start is behind the committed offset: what
		// the committed offset needs is all that must be kept.
		if ps.committed >= 0 {
			ps.hist[k] = forget(ps.hist[k], ps.committed)
		}
	}
	p.starts, p.fired = starts, fired
	return starts, fired
}

// withheldBy returns where the operator withheld the partition's records from (Withholder).
func withheldBy(n node, part int32) (int64, bool) {
	if h, ok := n.(interface{ stateOf() stateful }); ok {
		if w, ok := h.stateOf().(interface{ withheld(int32) (int64, bool) }); ok {
			return w.withheld(part)
		}
	}
	return 0, false
}

// firedOf returns the watermark the operator's state in a repartition's partition fired on
// (WatermarkHolder), or NoWatermark: a replay needs it only there, and only for an operator
// that reads the source in offset order (see PartitionContext.KeepsFired). After a resume, the windows behind the checkpoint's were
// emitted too, whether or not this run's state has got there (or exists yet).
func (p *Pipeline) firedOf(idx int, part int32, ps *partState) int64 {
	if !ps.marked || p.lineage().fed[idx] {
		return NoWatermark
	}
	f := NoWatermark
	if v, ok := ps.fired[idx]; ok {
		f = v
	}
	if h, ok := p.nodes[idx].(interface{ stateOf() stateful }); ok {
		if wh, ok := h.stateOf().(holder); ok {
			if w, ok := wh.heldWatermark(part); ok {
				f = max(f, w)
			}
		}
	}
	if f == EndOfTime {
		// The end of one run's input fired every window: the records of the next run come
		// after this commit, and none of their windows fired (the marks say so too).
		return NoWatermark
	}
	return f
}

// startLineage starts the partition's record of past starts, at its first acknowledged batch
// in this run. Operators start where the run started them: at their checkpointed start after
// a resume, else at the partition's first record. After a resume, an operator's output is
// what the run that committed the checkpoint made only from its readers' checkpointed starts
// on (what came before them was replayed from an older start only to rebuild state), so
// starts are trusted only from there.
func (p *Pipeline) startLineage(l *lineage, ps *partState) {
	n := len(l.stateful)
	ps.hist, ps.trust = make([][]startAt, n), make([]int64, n)
	start := func(k int) int64 {
		if s, ok := ps.skip[l.stateful[k]]; ok {
			return s
		}
		return ps.base
	}
	for k := range l.stateful {
		if len(l.readers[k]) == 0 {
			continue
		}
		f := NoWatermark
		if v, ok := ps.fired[l.stateful[k]]; ok {
			f = v
		}
		ps.hist[k] = append(ps.hist[k], startAt{math.MinInt64, start(k), f})
		ps.trust[k] = ps.base
		if ps.skip != nil {
			ps.trust[k] = math.MaxInt64
			for _, r := range l.readers[k] {
				ps.trust[k] = min(ps.trust[k], start(r))
			}
		}
	}
}

// forget drops the starts older than the one a reader starting at off would need.
func forget(h []startAt, off int64) []startAt {
	n := copy(h, h[lastAt(h, off):])
	return h[:n]
}

// lastAt returns the index of the last start recorded at or before off (the first one, the
// run's own start, if none).
func lastAt(h []startAt, off int64) int {
	i := len(h) - 1
	for i > 0 && h[i].next > off {
		i--
	}
	return i
}
