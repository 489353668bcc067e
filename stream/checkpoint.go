package stream

import (
	"fmt"
	"strconv"
	"strings"
)

// A checkpoint travels with each committed position (Position.Meta) so that a replay after a
// crash or a rebalance is exact even when operators retain different amounts of input. The
// committed offset is the oldest offset any operator still needs; the checkpoint records,
// for every stateful operator, the offset its own replay must start at (its retained offset,
// or the next offset if it holds nothing, moved back for the stateful operators that read
// its output: see lineage.go). On resume, each operator skips the replayed
// records before its own start: it had accounted for them before the commit.
//
// Format: "fs1/<number of operators>/<idx>@<offset>,<idx>@<offset>,...", the start offset of
// each operator (absolute, so a source may commit a little further, past dead-lettered
// records, with the same checkpoint); operators whose start is the committed offset are left
// out, and so is the whole checkpoint when no operator needs one. The operator count
// guards against a checkpoint written by a different graph.

type heldAt struct {
	node int
	off  int64
}

func hasState(n node) bool {
	s, ok := n.(interface{ hasState() bool })
	return ok && s.hasState()
}

func (s *Stream[T]) hasState() bool { return s.state != nil }

// encodeCheckpoint writes the replay start of every stateful operator (starts, by position in
// stateful) that differs from the committed offset.
func encodeCheckpoint(committed int64, stateful []int, starts []int64, nodes int) string {
	var b strings.Builder
	for k, idx := range stateful {
		if starts[k] == committed {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("fs1/")
			b.WriteString(strconv.Itoa(nodes))
			b.WriteByte('/')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(idx))
		b.WriteByte('@')
		b.WriteString(strconv.FormatInt(starts[k], 10))
	}
	return b.String() // empty when every operator starts at the committed offset
}

func decodeCheckpoint(meta string, committed int64, nodes int) (map[int]int64, error) {
	rest, ok := strings.CutPrefix(meta, "fs1/")
	if !ok {
		return nil, fmt.Errorf("stream: checkpoint %q: unknown format", meta)
	}
	count, list, ok := strings.Cut(rest, "/")
	if !ok {
		return nil, fmt.Errorf("stream: checkpoint %q: malformed", meta)
	}
	if n, err := strconv.Atoi(count); err != nil || n != nodes {
		return nil, fmt.Errorf("stream: checkpoint %q: written by a graph of %s operators, this one has %d", meta, count, nodes)
	}
	if committed < 0 {
		return nil, fmt.Errorf("stream: checkpoint %q without a committed offset", meta)
	}
	skip := make(map[int]int64)
	if list == "" {
		return skip, nil
	}
	for _, item := range strings.Split(list, ",") {
		i, o, ok := strings.Cut(item, "@")
		idx, err1 := strconv.Atoi(i)
		off, err2 := strconv.ParseInt(o, 10, 64)
		if !ok || err1 != nil || err2 != nil || idx < 0 || idx >= nodes || off < 0 {
			return nil, fmt.Errorf("stream: checkpoint %q: bad entry %q", meta, item)
		}
		skip[idx] = off
	}
	return skip, nil
}

// effectiveSkip turns the operators' own replay starts into the offsets their inputs are cut
// at: a stateful operator must still see (and so still process) what any stateful operator
// downstream of it needs, or that one would be starved of its input.
func (p *Pipeline) effectiveSkip(own map[int]int64, committed int64) map[int]int64 {
	const none = int64(1<<63 - 1)
	n := len(p.nodes)
	need := make([]int64, n)
	down := make([]int64, n)
	for i := range down {
		down[i] = none
	}
	children := make([][]int, n)
	for i, nd := range p.nodes {
		for _, par := range parentsOf(nd) {
			children[par] = append(children[par], i)
		}
	}
	eff := make(map[int]int64)
	for j := n - 1; j >= 0; j-- {
		for _, c := range children[j] {
			down[j] = min(down[j], need[c])
		}
		if !hasState(p.nodes[j]) {
			need[j] = down[j]
			continue
		}
		start, ok := own[j]
		if !ok {
			start = committed
		}
		start = min(start, down[j])
		need[j] = start
		if start > committed {
			eff[j] = start
		}
	}
	return eff
}

func parentsOf(n node) []int {
	if s, ok := n.(interface{ parentIdx() []int }); ok {
		return s.parentIdx()
	}
	return nil
}

func (s *Stream[T]) parentIdx() []int { return s.parents }

func maxSkip(skip map[int]int64) int64 {
	m := int64(-1)
	for _, off := range skip {
		m = max(m, off)
	}
	return m
}
