// The source records behind an operator: their event times, for an operator behind stateless
// ones (a window behind a Filter) whose clock must move with every record of the partition.

package stream

import (
	"iter"
	"slices"
)

// opAt is the operator running (its node index, -1 outside derive's operators) in p.
type opAt struct {
	p    *Pipeline
	node int
}

// SourceTimes returns, for a partition that is not Merged, when the running operator reads
// its source through stateless operators only (Filter, Map, FlatMap...), the offset and event
// time of every record of the partition in this batch, in offset order, and true: those that
// an operator before it dropped included, each event time capped with CapEventTime, and
// during a replay after a resume only those from the operator's replay cut on
// (SkippedBefore), the records the operator would have read without the operators before it.
// An operator whose event-time clock must move with the partition rather than with the
// records it is given (package window's, behind a Filter) observes them: its clock is then
// the one it would have over the unfiltered stream, which depends only on the partition's
// record order (so a replay from a committed offset reproduces it) and not on where batches
// end. It returns false for a Merged partition (use WatermarkAt and Marks there), for an
// operator that reads the output of a stateful one (its input's offsets need not follow the
// source's), for a partition of a source the operator does not read, and for an operator
// that reads the source directly (its input holds those records already). Nothing is
// computed before an operator asks.
func (pc *PartitionContext) SourceTimes() (iter.Seq2[int64, int64], bool) {
	p, node := pc.op.p, pc.op.node
	if pc.Merged || p == nil || node < 0 {
		return nil, false
	}
	l := p.lineage()
	si, local := p.sourceOf(pc.Partition)
	if node >= len(l.fed) || l.fed[node] || si < 0 || si >= len(p.srcs) || !slices.Contains(l.sources[node], si) {
		return nil, false
	}
	sn, from, cut, ceiling := p.srcs[si], pc.cutAt, pc.cut, pc.ceiling
	if in := p.nodes[node].inputs(); len(in) == 1 && in[0] == sn.headNode() {
		return nil, false // its input is the source's records: nothing to add
	}
	return sn.times(local, from, cut, ceiling), true
}

// sourcesOf returns, by node index, the sources (by position in p.srcs) whose records reach
// the node's input through stateless operators only.
func (p *Pipeline) sourcesOf() [][]int {
	heads := make(map[int]int, len(p.srcs))
	for i, sn := range p.srcs {
		heads[sn.headNode()] = i
	}
	return p.inputsThrough(func(i int, in []int) []int {
		if si, ok := heads[i]; ok {
			return []int{si}
		}
		if hasState(p.nodes[i]) {
			return nil
		}
		return in
	})
}
