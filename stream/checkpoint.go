// Replay checkpoints: the encoding and decoding of each stateful operator's replay start in a
// commit's Position.Meta, the graph fingerprint that guards them, and the skips they give.

package stream

import (
	"fmt"
	"hash/fnv"
	"reflect"
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
// Format: "fs2/<number of operators>/<graph fingerprint>/<idx>@<offset>,<idx>@<offset>,...",
// the start offset of each operator (absolute, so a source may commit a little further, past
// dead-lettered records, with the same checkpoint); operators whose start is the committed
// offset are left out, and so is the whole checkpoint when no operator needs one. On a
// repartition's partition, an operator whose state fires on the watermark (WatermarkHolder)
// also gets the watermark it had fired on, "<idx>@<offset>:<fired>" (PartitionContext.ResumeFired;
// an earlier release refuses such an entry, as below). The
// fingerprint is a hash of every operator's name, element type, inputs and state type, in
// graph order (see Pipeline.fingerprint): a checkpoint written by another graph (a new
// release whose stateful operators are ordered differently, renamed, retyped) is refused,
// never applied to the wrong operators. A refused checkpoint is logged, and every stateful
// operator of the partition starts cold from the committed offset: the replay rebuilds its
// state from there, which is at-least-once for windows that were open across the commit
// (their partial results may be emitted again, and are then overwritten by the final ones,
// since document ids are deterministic). Checkpoints of the earlier format "fs1/" (no
// fingerprint) are refused the same way.

// After a repartition's marks (markSep), the lowest of the operators' fire watermarks comes
// first, "w<fired>;" (base 36), when any operator has one: it stands for every operator when
// the operators' checkpoint is refused (another graph), which the marks are not, so that a
// tumbling or sliding window after the repartition still skips the windows that fired before the commit
// rather than emit them again from part of their records (see PartitionContext.ResumeFired).

// partFired returns the lowest fire watermark of fired, NoWatermark if none has one.
func partFired(fired []int64) int64 {
	f := NoWatermark
	for _, v := range fired {
		if v != NoWatermark && (f == NoWatermark || v < f) {
			f = v
		}
	}
	return f
}

// withFired prefixes a repartition partition's marks with the partition's fire watermark.
func withFired(marks string, fired int64) string {
	if fired == NoWatermark || marks == "" {
		return marks
	}
	return "w" + strconv.FormatInt(fired, 36) + ";" + marks
}

// cutFired splits what withFired wrote; fired is NoWatermark when there is none.
func cutFired(s string) (marks string, fired int64, err error) {
	rest, ok := strings.CutPrefix(s, "w")
	if !ok {
		return s, NoWatermark, nil
	}
	f, marks, ok := strings.Cut(rest, ";")
	v, err := strconv.ParseInt(f, 36, 64)
	if !ok || err != nil || v == NoWatermark {
		return "", NoWatermark, fmt.Errorf("stream: checkpoint marks %q: bad fire watermark", s)
	}
	if v == EndOfTime {
		v = NoWatermark // written by a release that kept one run's end (see firedOf)
	}
	return marks, v, nil
}

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
// stateful) that differs from the committed offset, and the fire watermark of those that have
// one (fired, by the same position, NoWatermark for none; nil when none has).
func encodeCheckpoint(committed int64, stateful []int, starts, fired []int64, nodes int, fp string) string {
	var b strings.Builder
	for k, idx := range stateful {
		hasFired := fired != nil && fired[k] != NoWatermark
		if starts[k] == committed && !hasFired {
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(fp) + 16*(len(stateful)-k) + 8)
			b.WriteString("fs2/")
			b.WriteString(strconv.Itoa(nodes))
			b.WriteByte('/')
			b.WriteString(fp)
			b.WriteByte('/')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(idx))
		b.WriteByte('@')
		b.WriteString(strconv.FormatInt(starts[k], 10))
		if hasFired {
			b.WriteByte(':')
			b.WriteString(strconv.FormatInt(fired[k], 10))
		}
	}
	return b.String() // empty when every operator starts at the committed offset
}

// decodeCheckpoint returns each operator's replay start (skip) and, for those that have one,
// the watermark its state had fired on (fired), both by node index.
func decodeCheckpoint(meta string, committed int64, nodes int, fp string) (skip, fired map[int]int64, err error) {
	if strings.HasPrefix(meta, "fs1/") {
		return nil, nil, fmt.Errorf("stream: checkpoint %q: written by an earlier release, without a graph fingerprint", meta)
	}
	rest, ok := strings.CutPrefix(meta, "fs2/")
	if !ok {
		return nil, nil, fmt.Errorf("stream: checkpoint %q: unknown format", meta)
	}
	count, rest, ok1 := strings.Cut(rest, "/")
	gotFP, list, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 {
		return nil, nil, fmt.Errorf("stream: checkpoint %q: malformed", meta)
	}
	if n, err := strconv.Atoi(count); err != nil || n != nodes || gotFP != fp {
		return nil, nil, fmt.Errorf("stream: checkpoint %q: written by another graph (%s operators, fingerprint %s; this one has %d, %s)", meta, count, gotFP, nodes, fp)
	}
	if committed < 0 {
		return nil, nil, fmt.Errorf("stream: checkpoint %q without a committed offset", meta)
	}
	skip = make(map[int]int64)
	if list == "" {
		return skip, nil, nil
	}
	for _, item := range strings.Split(list, ",") {
		i, o, ok := strings.Cut(item, "@")
		o, f, hasFired := strings.Cut(o, ":")
		idx, err1 := strconv.Atoi(i)
		off, err2 := strconv.ParseInt(o, 10, 64)
		var wm int64
		var err3 error
		if hasFired {
			wm, err3 = strconv.ParseInt(f, 10, 64)
		}
		_, dup := skip[idx]
		if !ok || err1 != nil || err2 != nil || err3 != nil || idx < 0 || idx >= nodes || off < 0 || dup || hasFired && wm == NoWatermark {
			return nil, nil, fmt.Errorf("stream: checkpoint %q: bad entry %q", meta, item)
		}
		skip[idx] = off
		if hasFired && wm != EndOfTime { // EndOfTime: see cutFired
			if fired == nil {
				fired = make(map[int]int64)
			}
			fired[idx] = wm
		}
	}
	return skip, fired, nil
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

// fingerprint identifies the graph's shape for checkpoints: a hash of each operator's name,
// element type, inputs and state type, in graph order.
func (p *Pipeline) fingerprint() string {
	if p.fp != "" && p.fpNodes == len(p.nodes) {
		return p.fp
	}
	h := fnv.New64a()
	for i, n := range p.nodes {
		fmt.Fprintf(h, "%d|%s\n", i, n.describe())
	}
	p.fp, p.fpNodes = strconv.FormatUint(h.Sum64(), 36), len(p.nodes)
	return p.fp
}

// describe names the operator for the graph fingerprint.
func (s *Stream[T]) describe() string {
	state := ""
	if s.state != nil {
		state = fmt.Sprintf("%T", s.state)
	}
	return fmt.Sprintf("%s|%s|%v|%s", s.name, reflect.TypeFor[T](), s.parents, state)
}
