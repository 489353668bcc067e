// Repartition: the graph checks made when a repartition is built (the sources it reads, the
// streams it refuses) and the WatermarkHolders whose watermarks cap its marks.

package stream

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// holder is the untyped face of an operator that may implement WatermarkHolder.
type holder interface {
	heldWatermark(part int32) (int64, bool)
}

// walkUp visits the stream idx and the streams it derives from, each once, a stream before
// its inputs: visit returns whether to go on to the stream's inputs, or an error that ends
// the walk.
func walkUp(p *Pipeline, idx int, visit func(i int, n node) (bool, error)) error {
	seen := map[int]bool{}
	var walk func(i int) error
	walk = func(i int) error {
		if seen[i] {
			return nil
		}
		seen[i] = true
		up, err := visit(i, p.nodes[i])
		if err != nil || !up {
			return err
		}
		for _, par := range p.nodes[i].inputs() {
			if err := walk(par); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(idx)
}

// watermarkHolders returns the operators a stream derives from that implement
// WatermarkHolder.
func watermarkHolders(p *Pipeline, idx int) []holder {
	var out []holder
	_ = walkUp(p, idx, func(_ int, n node) (bool, error) {
		if s, ok := n.(interface{ stateOf() stateful }); ok {
			if h, ok := s.stateOf().(holder); ok {
				out = append(out, h)
			}
		}
		return true, nil
	})
	return out
}

// sourcesAt returns the sources whose head stream is the node i.
func sourcesAt(p *Pipeline, i int) []sourceNode {
	var out []sourceNode
	for _, sn := range p.srcs {
		if head, ok := sn.(interface{ headIdx() int }); ok && head.headIdx() == i {
			out = append(out, sn)
		}
	}
	return out
}

// upstreamSources returns the sources a stream derives from, or an error if a windowed
// stream lies between them, or an operator that emits again what it emitted before
// (UpdateStateByKey, MapWithState with a timeout, its snapshots), or, byOffset, an event-time window (a WatermarkHolder: its
// results are numbered by where windows close, not by their records). Other stateful
// operators may (a tracker that emits each record once, in order, with its own offset); one
// whose output goes back in source order is caught when it happens (shuffle.collect).
func upstreamSources(p *Pipeline, idx int, byOffset bool) ([]int, error) {
	var srcs []int
	err := walkUp(p, idx, func(i int, n node) (bool, error) {
		if sl, ok := n.(interface{ slideOf() int64 }); ok && sl.slideOf() != 1 {
			return false, fmt.Errorf("it reads the windowed stream %q: repartition before windows", n.(interface{ Name() string }).Name())
		}
		if r, ok := n.(interface{ reemitted() string }); ok && r.reemitted() != "" {
			// Numbered by offset, its records repeat numbers already sent, which the
			// downstream drops as copies; by time (batch times), a replay numbers them anew.
			return false, fmt.Errorf("it reads %q, which the repartition cannot number once and for all: %s; put %[1]q after the repartition",
				n.(interface{ Name() string }).Name(), r.reemitted())
		}
		if s, ok := n.(interface{ stateOf() stateful }); ok && byOffset {
			if h, ok := s.stateOf().(interface{ isWatermarkHolder() bool }); ok && h.isWatermarkHolder() {
				return false, fmt.Errorf("it reads the results of the window %q, which are not in source-offset order: repartition before the window, or use RepartitionByTime for the final results of a tumbling window", n.(interface{ Name() string }).Name())
			}
		}
		if len(n.inputs()) == 0 {
			for _, sn := range sourcesAt(p, i) {
				srcs = append(srcs, sn.index())
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if len(srcs) == 0 {
		return nil, errors.New("it reads no source")
	}
	slices.Sort(srcs)
	return srcs, nil
}

// windowResults returns an error saying where the stream idx comes from, in words that
// follow "its stream <name>", when it is not made from the final results of event-time
// windows (operators that implement WatermarkHolder and TimeOrderer) through stateless
// operators only, on every path to the sources: what RepartitionByTime takes (see there).
// Records, a stateful operator's output (a window's Late stream, MapWithState) or a side
// output (NewSideOutput: not what the operator's TimeOrderer speaks for) repeat an
// event time across batches or send it out of order, as do a window's EveryBatch partial
// results; a sliding or session window, or one with a key limit, sends a time's results in
// an order a replay need not reproduce. RepartitionByTime's numbers take none of them: a
// time sent again failed at run time only, once the data did so, after outputs had written
// the batches before; an order changed by a replay lost a result and counted another twice.
func windowResults(p *Pipeline, idx int) error {
	var timed []firing
	err := walkUp(p, idx, func(i int, n node) (bool, error) {
		name := n.(interface{ Name() string }).Name()
		if s, ok := n.(interface{ sideOutputOf() string }); ok && s.sideOutputOf() != "" {
			// What the operator emits beside its results: TimeOrderer speaks for these only.
			if i == idx {
				return false, fmt.Errorf("is the side output of the operator %q", s.sideOutputOf())
			}
			return false, fmt.Errorf("is made from the side output %q of the operator %q", name, s.sideOutputOf())
		}
		if s, ok := n.(interface{ stateOf() stateful }); ok && s.stateOf() != nil {
			if h, ok := s.stateOf().(interface{ isWatermarkHolder() bool }); ok && h.isWatermarkHolder() {
				if t, ok := s.stateOf().(interface{ timeOrder() string }); ok && t.timeOrder() != "" {
					return false, &unorderedResults{name: name, why: t.timeOrder()}
				}
				if f, ok := s.stateOf().(interface{ fireDelay() (time.Duration, bool) }); ok {
					if d, ok := f.fireDelay(); ok {
						timed = append(timed, firing{i, name, d})
					}
				}
				return false, nil
			}
			if i == idx {
				return false, fmt.Errorf("is the output of the operator %q", name)
			}
			return false, fmt.Errorf("is made from the operator %q", name)
		}
		if len(n.inputs()) == 0 {
			if name == "source" {
				return false, errors.New("is made from the source's records")
			}
			return false, fmt.Errorf("is made from the records of %q", name)
		}
		return true, nil
	})
	if err == nil {
		return firedApart(p, timed)
	}
	var u *unorderedResults
	if errors.As(err, &u) {
		return err
	}
	return fmt.Errorf("%v, not from the final results of an event-time window: it numbers its elements by event time, "+
		"which takes the results of event-time windows (package window's Results) through stateless operators (Map, Filter, Union); "+
		"repartition records with Repartition or RepartitionBy", err)
}

// firing is an operator whose results RepartitionByTime numbers, with its FireDelay.
type firing struct {
	idx   int
	name  string
	delay time.Duration
}

// firedApart returns an error if two of the operators read a source in common but may fire
// an event time's results in different batches: the results of one time would come in two
// batches, a permanent error when it happened, after outputs had written the batches before.
// They do when they fire after other delays (FireDelayer); and, with one delay, when either
// sees only some of the source's records (an operator before it, a Filter, drops or changes
// some), unless both read the same stream: a window fires on the lower of the partition's
// watermark and that of the records it saw. A repartition's partitions fire on the
// watermark its marks give, whatever a window saw of them.
func firedApart(p *Pipeline, fs []firing) error {
	seen := make([]map[int]bool, len(fs))
	for i, f := range fs {
		seen[i] = sourcesSeen(p, f.idx)
	}
	for i := range fs {
		for j := i + 1; j < len(fs); j++ {
			shared, part := false, false
			for src, pi := range seen[i] {
				if pj, ok := seen[j][src]; ok {
					shared, part = true, part || pi || pj
				}
			}
			a, b := fs[i], fs[j]
			if a.idx > b.idx {
				a, b = b, a
			}
			switch {
			case !shared:
			case a.delay != b.delay:
				return fmt.Errorf("is made from the results of %q and %q, which read one source but fire an event time's results at other delays (%v and %v: their graces), "+
					"so the results of one time come in two batches, which it cannot number; give them one grace, or repartition each by itself", a.name, b.name, a.delay, b.delay)
			case part && !slices.Equal(p.nodes[a.idx].inputs(), p.nodes[b.idx].inputs()):
				return fmt.Errorf("is made from the results of %q and %q, which read one source but not the same records of it (an operator before one of them, such as a Filter, drops some): "+
					"each fires on the watermark of the records it saw, so the results of one time may come in two batches, which it cannot number; "+
					"give both the same input (filter their results instead), or repartition each by itself", a.name, b.name)
			}
		}
	}
	return nil
}

// sourcesSeen returns the sources the operator idx reads, each with whether the operator may
// see only some of its records: an operator on a path from the source to it does not pass
// every element on with its time (Stream.whole), and the source is not a repartition's.
func sourcesSeen(p *Pipeline, idx int) map[int]bool {
	out := map[int]bool{}
	done := map[[2]int]bool{}
	var walk func(i int, part bool)
	walk = func(i int, part bool) {
		k := [2]int{i, 0}
		if part {
			k[1] = 1
		}
		if done[k] {
			return
		}
		done[k] = true
		n := p.nodes[i]
		if len(n.inputs()) == 0 {
			for _, sn := range sourcesAt(p, i) {
				inner := sn.(interface{ internal() bool }).internal()
				out[sn.index()] = out[sn.index()] || part && !inner
			}
			return
		}
		if w, ok := n.(interface{ passesAll() bool }); !ok || !w.passesAll() {
			part = true
		}
		for _, in := range n.inputs() {
			walk(in, part)
		}
	}
	for _, in := range p.nodes[idx].inputs() {
		walk(in, false)
	}
	return out
}

func (s *Stream[T]) passesAll() bool { return s.whole && s.state == nil }

// unorderedResults is windowResults' error for the results of a WatermarkHolder whose
// TimeOrder says why RepartitionByTime cannot number them.
type unorderedResults struct{ name, why string }

func (u *unorderedResults) Error() string {
	return fmt.Sprintf("is made from the results of %q, which it cannot number by event time: %q %s; "+
		"RepartitionByTime takes results that come once per event time, all of a time in one batch, "+
		"in an order that a replay from any commit sends again", u.name, u.name, u.why)
}

func (s *Stream[T]) slideOf() int64 { return s.slide }
func (s *source[T]) headIdx() int   { return s.head.idx }

// sideOutputOf names the operator whose side output the stream is, "" if it is none.
func (s *Stream[T]) sideOutputOf() string { return s.sideOf }
