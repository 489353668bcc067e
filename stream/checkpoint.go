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
// Format: "fs4/<number of operators>/<graph fingerprint>/<parameters>/<identities>/<idx>@<offset>,...",
// the start offset of each operator (absolute, so a source may commit a little further, past
// dead-lettered records, with the same checkpoint); operators whose start is the committed
// offset are left out. <parameters> is "<idx>=<hash>,..." for every stateful operator that
// describes parameters (Parameterized; paramHash), in graph order: a restart compares them
// (see "Restarts with changed operators" in the package documentation). <identities> is
// "<gap><identity>,..." for every stateful operator, in graph order: the gap from the node
// index before, then six base-36 digits of a hash of its name, element type and state type
// (Pipeline.operatorIdents), by which a restart with another graph finds the operators it
// keeps (see "Restarts with another graph"); "-" when they would make the checkpoint larger
// than identsMax. The checkpoint is written whenever there are parameters, also with no start
// to record ("fs4/3/<fp>/2=1k9x/30xz81q/"), and left out only when there are neither.
// "fs3/<n>/<fingerprint>/<parameters>/<entries>", the format of the previous release, is read
// as this one without identities, and "fs2/<n>/<fingerprint>/<entries>" as one without
// parameters either. On a
// repartition's partition, an operator whose state fires on the watermark (WatermarkHolder)
// also gets the watermark it had fired on, "<idx>@<offset>:<fired>" (PartitionContext.ResumeFired;
// an earlier release refuses such an entry, as below). The
// fingerprint is a hash of every operator's name, element type, inputs and state type, in
// graph order (see Pipeline.fingerprint): a checkpoint of this graph applies as it is. One
// written by another graph (a new release with operators added, removed, reordered, renamed)
// applies to the stateful operators whose identity it records, by identity, never by
// position (matchCheckpoint); one without identities (fs3, fs2) is refused, logged, and
// every stateful operator of the partition starts cold from the committed offset.
// Checkpoints of the earlier format "fs1/" (no fingerprint) are refused the same way.

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
// one (fired, by the same position, NoWatermark for none; nil when none has), after the
// operators' parameter hashes (params, see Pipeline.operatorParams) and identities (idents,
// see Pipeline.operatorIdents). It returns "" only when there is nothing to write: no entry
// and no parameters.
func encodeCheckpoint(committed int64, stateful []int, starts, fired []int64, nodes int, fp, params, idents string) string {
	var b strings.Builder
	header := func(k int) {
		b.Grow(len(fp) + len(params) + len(idents) + 16*(len(stateful)-k) + 12)
		b.WriteString(checkpointFormat)
		b.WriteString(strconv.Itoa(nodes))
		b.WriteByte('/')
		b.WriteString(fp)
		b.WriteByte('/')
		b.WriteString(params)
		b.WriteByte('/')
		b.WriteString(idents)
		b.WriteByte('/')
	}
	if params != "" {
		header(0) // even with no entry: a restart compares the parameters
	}
	first := true
	for k, idx := range stateful {
		hasFired := fired != nil && fired[k] != NoWatermark
		if starts[k] == committed && !hasFired {
			continue
		}
		if b.Len() == 0 {
			header(k)
		} else if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(strconv.Itoa(idx))
		b.WriteByte('@')
		b.WriteString(strconv.FormatInt(starts[k], 10))
		if hasFired {
			b.WriteByte(':')
			b.WriteString(strconv.FormatInt(fired[k], 10))
		}
	}
	return b.String()
}

// checkpointFormat starts every checkpoint this release writes; it reads "fs3/" and "fs2/" too.
const checkpointFormat = "fs4/"

// checkpoint is a decoded checkpoint, by the node indices of the graph that wrote it.
type checkpoint struct {
	nodes int
	fp    string
	// skip and fired: each operator's replay start and, for those that have one, the
	// watermark its state had fired on.
	skip, fired map[int]int64
	// params: the hash of the parameters of each operator that had any (nil for "fs2/").
	params map[int]string
	// idents: every stateful operator's identity (nil before "fs4/").
	idents map[int]string
}

// decodeCheckpoint returns the checkpoint of this graph (nodes operators, fingerprint fp) in
// meta: each operator's replay start (skip) and, for those that have one, the watermark its
// state had fired on (fired), both by node index, and the hash of the parameters of each
// operator that had any when the checkpoint was written (params, by node index; nil for a
// checkpoint of format "fs2/", which has none). A checkpoint of another graph is an error.
func decodeCheckpoint(meta string, committed int64, nodes int, fp string) (skip, fired map[int]int64, params map[int]string, err error) {
	cp, err := parseCheckpoint(meta, committed)
	if err != nil {
		return nil, nil, nil, err
	}
	if !cp.sameGraph(nodes, fp) {
		return nil, nil, nil, cp.otherGraph(meta, nodes, fp)
	}
	return cp.skip, cp.fired, cp.params, nil
}

func (cp checkpoint) sameGraph(nodes int, fp string) bool { return cp.nodes == nodes && cp.fp == fp }

func (cp checkpoint) otherGraph(meta string, nodes int, fp string) error {
	return fmt.Errorf("stream: checkpoint %q: written by another graph (%d operators, fingerprint %s; this one has %d, %s)", meta, cp.nodes, cp.fp, nodes, fp)
}

// parseCheckpoint decodes meta, whatever graph wrote it; its node indices are checked
// against the number of operators it names.
func parseCheckpoint(meta string, committed int64) (checkpoint, error) {
	var cp checkpoint
	if strings.HasPrefix(meta, "fs1/") {
		return cp, fmt.Errorf("stream: checkpoint %q: written by an earlier release, without a graph fingerprint", meta)
	}
	var count, section, idents, list string
	ok := false
	if rest, v2 := strings.CutPrefix(meta, "fs2/"); v2 {
		var ok1, ok2 bool
		count, rest, ok1 = strings.Cut(rest, "/")
		cp.fp, list, ok2 = strings.Cut(rest, "/")
		ok = ok1 && ok2
	} else if rest, v3 := strings.CutPrefix(meta, "fs3/"); v3 {
		f := strings.Split(rest, "/")
		if len(f) == 4 {
			count, cp.fp, section, list, ok = f[0], f[1], f[2], f[3], true
		}
	} else if rest, v4 := strings.CutPrefix(meta, checkpointFormat); v4 {
		f := strings.Split(rest, "/")
		if len(f) == 5 {
			count, cp.fp, section, idents, list, ok = f[0], f[1], f[2], f[3], f[4], true
		}
	} else {
		return cp, fmt.Errorf("stream: checkpoint %q: unknown format", meta)
	}
	if !ok {
		return cp, fmt.Errorf("stream: checkpoint %q: malformed", meta)
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 0 || strconv.Itoa(n) != count || cp.fp == "" {
		return cp, fmt.Errorf("stream: checkpoint %q: malformed", meta)
	}
	cp.nodes = n
	if committed < 0 {
		return cp, fmt.Errorf("stream: checkpoint %q without a committed offset", meta)
	}
	if !strings.HasPrefix(meta, "fs2/") {
		if cp.params, err = parseHashes(meta, section, '=', n, "parameters"); err != nil {
			return cp, err
		}
	}
	if strings.HasPrefix(meta, checkpointFormat) && idents != identsOmitted {
		if cp.idents, err = parseIdents(meta, idents, n); err != nil {
			return cp, err
		}
		for idx := range cp.params {
			if _, ok := cp.idents[idx]; !ok {
				return cp, fmt.Errorf("stream: checkpoint %q: parameters of operator %d, which has no identity", meta, idx)
			}
		}
	}
	cp.skip = make(map[int]int64)
	if list == "" {
		return cp, nil
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
		_, dup := cp.skip[idx]
		_, known := cp.idents[idx]
		if !ok || err1 != nil || err2 != nil || err3 != nil || idx < 0 || idx >= n || off < 0 || dup || hasFired && wm == NoWatermark || cp.idents != nil && !known {
			return cp, fmt.Errorf("stream: checkpoint %q: bad entry %q", meta, item)
		}
		cp.skip[idx] = off
		if hasFired && wm != EndOfTime { // EndOfTime: see cutFired
			if cp.fired == nil {
				cp.fired = make(map[int]int64)
			}
			cp.fired[idx] = wm
		}
	}
	return cp, nil
}

// parseHashes reads a section of "<idx><sep><hash>,..." (the parameters) of a checkpoint of
// nodes operators.
func parseHashes(meta, section string, sep byte, nodes int, what string) (map[int]string, error) {
	m := make(map[int]string)
	if section == "" {
		return m, nil
	}
	for _, item := range strings.Split(section, ",") {
		i, h, ok := strings.Cut(item, string(sep))
		idx, err := strconv.Atoi(i)
		_, dup := m[idx]
		if !ok || err != nil || idx < 0 || idx >= nodes || dup || !isParamHash(h) {
			return nil, fmt.Errorf("stream: checkpoint %q: bad %s entry %q", meta, what, item)
		}
		m[idx] = h
	}
	return m, nil
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
