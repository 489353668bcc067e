// Operator parameters in checkpoints: their hashes, the comparison at a restart, and the
// error and the restamped checkpoint of a restart with changed parameters (see "Restarts with
// changed operators" in the package documentation).

package stream

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
)

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
// the one the checkpoint of partition part recorded (recorded, by node index), among those
// that run on the partition: that read its source. Every checkpoint records the parameters of
// every stateful operator of the graph, but an operator's state is in the checkpoints of its
// source's partitions only: a window after a repartition is checked on the repartition's
// partitions, and ErrOperatorChanged names one of those, not a partition of the input (which
// named a partition the window never ran on). An operator the checkpoint has no hash for
// (written by an earlier release, or when the operator described no parameters) or that
// describes none now is not compared.
func (p *Pipeline) changedOperators(part int32, recorded map[int]string) []int {
	now, _ := p.operatorParams()
	src, _ := p.sourceOf(part)
	var changed []int
	for idx, h := range recorded {
		if desc, ok := now[idx]; ok && paramHash(desc) != h {
			if _, runsHere := sourcesSeen(p, idx)[src]; runsHere {
				changed = append(changed, idx)
			}
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
	_, idents := p.operatorIdents()
	meta := encodeCheckpoint(committed, lin.stateful, starts, fw, len(p.nodes), p.fingerprint(), params, idents)
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
