// Replay checkpoints: the encoding and decoding of each stateful operator's replay start in a
// commit's Position.Meta, the graph fingerprint that guards them, and the skips they give.

package stream

import (
	"errors"
	"fmt"
	"hash/fnv"
	"reflect"
	"slices"
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
// Format: "fs3/<number of operators>/<graph fingerprint>/<parameters>/<idx>@<offset>,...",
// the start offset of each operator (absolute, so a source may commit a little further, past
// dead-lettered records, with the same checkpoint); operators whose start is the committed
// offset are left out. <parameters> is "<idx>=<hash>,..." for every stateful operator that
// describes parameters (Parameterized; paramHash), in graph order: a restart compares them
// (see "Restarts with changed operators" in the package documentation). The checkpoint is
// written whenever there are parameters, also with no start to record ("fs3/3/<fp>/2=1k9x/"),
// and left out only when there are neither. "fs2/<n>/<fingerprint>/<entries>", the earlier
// format, is read as this one without parameters. On a
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

// ErrOperatorChanged is wrapped by the error that stops a pipeline whose partition was
// assigned with a checkpoint written while one of its stateful operators had other parameters
// (Parameterized), unless WithColdStartChanged accepts the change. The error names the
// operators and their parameters now.
var ErrOperatorChanged = errors.New("stream: a stateful operator's parameters changed since the committed checkpoint")

// paramHash is what a checkpoint records of an operator's parameters: 32 bits of their FNV-1a
// hash in base 36, at most 7 characters. A change goes unnoticed once in 4 billion.
func paramHash(params string) string {
	h := fnv.New32a()
	h.Write([]byte(params))
	return strconv.FormatUint(uint64(h.Sum32()), 36)
}

// isParamHash reports whether h can be what paramHash wrote.
func isParamHash(h string) bool {
	v, err := strconv.ParseUint(h, 36, 32)
	return err == nil && strconv.FormatUint(v, 36) == h
}

// operatorParams returns, by node index, the parameters of every stateful operator that
// describes any (Parameterized, and the processing-time windows and MapWithState of this
// package), and the checkpoint's section of their hashes, "<idx>=<hash>,...", in graph order.
// Both are computed once per graph, as the fingerprint is.
func (p *Pipeline) operatorParams() (map[int]string, string) {
	if p.params != nil && p.paramsNodes == len(p.nodes) {
		return p.params, p.paramSection
	}
	p.params, p.paramsNodes = make(map[int]string), len(p.nodes)
	var b strings.Builder
	for i, n := range p.nodes {
		if !hasState(n) {
			continue
		}
		desc := n.parameters()
		if desc == "" {
			continue
		}
		p.params[i] = desc
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('=')
		b.WriteString(paramHash(desc))
	}
	p.paramSection = b.String()
	return p.params, p.paramSection
}

// changedOperators returns, in graph order, the operators whose parameters' hash differs from
// the one a checkpoint recorded (recorded, by node index). An operator the checkpoint has no
// hash for (written by an earlier release, or when the operator described no parameters) or
// that describes none now is not compared.
func (p *Pipeline) changedOperators(recorded map[int]string) []int {
	now, _ := p.operatorParams()
	var changed []int
	for idx, h := range recorded {
		if desc, ok := now[idx]; ok && paramHash(desc) != h {
			changed = append(changed, idx)
		}
	}
	slices.Sort(changed)
	return changed
}

// operatorChanged is the error that stops a pipeline whose partition part was assigned with a
// checkpoint written under other parameters of the operators changed (ErrOperatorChanged).
func (p *Pipeline) operatorChanged(part int32, offset int64, changed []int) error {
	where := ""
	if in := p.inputOf(part); in.Key != "" {
		where = " (" + in.Value.String() + ")"
	}
	return fmt.Errorf("%w: partition %d%s, committed at offset %d: the checkpoint was written with other parameters of %s: "+
		"resuming it would mix results of the old parameters with results of the new ones. To accept the change, run with "+
		"stream.WithColdStartChanged (those operators start cold from the committed offset: results around the restart are "+
		"neither the old ones nor the new ones); to compute everything with the new parameters, run under a new pipeline "+
		"name (consumer group) from the start of the input",
		ErrOperatorChanged, part, where, offset, p.describeOperators(changed))
}

// restampCheckpoint returns the checkpoint that a partition resumed with WithColdStartChanged
// commits at its committed offset while it reads no record (partState.restamp): the replay
// starts and fire watermarks it resumed from (skip and fired, without the changed operators',
// which start at the committed offset), the parameters now, and the repartition marks it
// resumed from (after markSep, if hasMarks), unchanged. A restart from it resumes as this run
// did, and finds nothing changed.
func (p *Pipeline) restampCheckpoint(committed int64, skip, fired map[int]int64, marks string, hasMarks bool) string {
	lin := p.lineage()
	starts := make([]int64, len(lin.stateful))
	var fw []int64
	for k, idx := range lin.stateful {
		starts[k] = committed
		if s, ok := skip[idx]; ok {
			starts[k] = s
		}
		if f, ok := fired[idx]; ok {
			if fw == nil {
				fw = make([]int64, len(lin.stateful))
				for i := range fw {
					fw[i] = NoWatermark
				}
			}
			fw[k] = f
		}
	}
	_, params := p.operatorParams()
	meta := encodeCheckpoint(committed, lin.stateful, starts, fw, len(p.nodes), p.fingerprint(), params)
	if hasMarks {
		meta += markSep + marks
	}
	return meta
}

// describeOperators names operators (by node index) with their parameters now.
func (p *Pipeline) describeOperators(idxs []int) string {
	now, _ := p.operatorParams()
	names := make([]string, len(idxs))
	for i, idx := range idxs {
		names[i] = fmt.Sprintf("%q (now %s)", nameOf(p.nodes[idx]), now[idx])
	}
	return strings.Join(names, ", ")
}

func nameOf(n node) string {
	if s, ok := n.(interface{ Name() string }); ok {
		return s.Name()
	}
	return "?"
}

// parameters returns what defines the operator's output besides its input (see Parameterized).
func (s *Stream[T]) parameters() string {
	if s.params != "" {
		return s.params
	}
	if d, ok := s.state.(interface{ parameters() string }); ok {
		return d.parameters()
	}
	return ""
}

func (o opState[In, Out]) parameters() string {
	if d, ok := o.op.(Parameterized); ok {
		return d.Parameters()
	}
	return ""
}

func hasState(n node) bool {
	s, ok := n.(interface{ hasState() bool })
	return ok && s.hasState()
}

func (s *Stream[T]) hasState() bool { return s.state != nil }

// encodeCheckpoint writes the replay start of every stateful operator (starts, by position in
// stateful) that differs from the committed offset, and the fire watermark of those that have
// one (fired, by the same position, NoWatermark for none; nil when none has), after the
// operators' parameter hashes (params, see Pipeline.operatorParams). It returns "" only when
// there is nothing to write: no entry and no parameters.
func encodeCheckpoint(committed int64, stateful []int, starts, fired []int64, nodes int, fp, params string) string {
	var b strings.Builder
	header := func(k int) {
		b.Grow(len(fp) + len(params) + 16*(len(stateful)-k) + 12)
		b.WriteString(checkpointFormat)
		b.WriteString(strconv.Itoa(nodes))
		b.WriteByte('/')
		b.WriteString(fp)
		b.WriteByte('/')
		b.WriteString(params)
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

// checkpointFormat starts every checkpoint this release writes; it reads "fs2/" too.
const checkpointFormat = "fs3/"

// decodeCheckpoint returns each operator's replay start (skip) and, for those that have one,
// the watermark its state had fired on (fired), both by node index, and the hash of the
// parameters of each operator that had any when the checkpoint was written (params, by node
// index; nil for a checkpoint of format "fs2/", which has none).
func decodeCheckpoint(meta string, committed int64, nodes int, fp string) (skip, fired map[int]int64, params map[int]string, err error) {
	if strings.HasPrefix(meta, "fs1/") {
		return nil, nil, nil, fmt.Errorf("stream: checkpoint %q: written by an earlier release, without a graph fingerprint", meta)
	}
	var count, gotFP, section, list string
	ok := false
	if rest, v2 := strings.CutPrefix(meta, "fs2/"); v2 {
		var ok1, ok2 bool
		count, rest, ok1 = strings.Cut(rest, "/")
		gotFP, list, ok2 = strings.Cut(rest, "/")
		ok = ok1 && ok2
	} else if rest, v3 := strings.CutPrefix(meta, checkpointFormat); v3 {
		f := strings.Split(rest, "/")
		if len(f) == 4 {
			count, gotFP, section, list, ok = f[0], f[1], f[2], f[3], true
		}
	} else {
		return nil, nil, nil, fmt.Errorf("stream: checkpoint %q: unknown format", meta)
	}
	if !ok {
		return nil, nil, nil, fmt.Errorf("stream: checkpoint %q: malformed", meta)
	}
	if n, err := strconv.Atoi(count); err != nil || n != nodes || gotFP != fp {
		return nil, nil, nil, fmt.Errorf("stream: checkpoint %q: written by another graph (%s operators, fingerprint %s; this one has %d, %s)", meta, count, gotFP, nodes, fp)
	}
	if committed < 0 {
		return nil, nil, nil, fmt.Errorf("stream: checkpoint %q without a committed offset", meta)
	}
	if strings.HasPrefix(meta, checkpointFormat) {
		params = make(map[int]string)
		if section != "" {
			for _, item := range strings.Split(section, ",") {
				i, h, ok := strings.Cut(item, "=")
				idx, err := strconv.Atoi(i)
				_, dup := params[idx]
				if !ok || err != nil || idx < 0 || idx >= nodes || dup || !isParamHash(h) {
					return nil, nil, nil, fmt.Errorf("stream: checkpoint %q: bad parameters entry %q", meta, item)
				}
				params[idx] = h
			}
		}
	}
	skip = make(map[int]int64)
	if list == "" {
		return skip, nil, params, nil
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
			return nil, nil, nil, fmt.Errorf("stream: checkpoint %q: bad entry %q", meta, item)
		}
		skip[idx] = off
		if hasFired && wm != EndOfTime { // EndOfTime: see cutFired
			if fired == nil {
				fired = make(map[int]int64)
			}
			fired[idx] = wm
		}
	}
	return skip, fired, params, nil
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
