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

// operatorIdents returns, by node index, the identity of every stateful operator, and the
// checkpoint's section of them, in graph order: for each, the gap between its node index and
// the one before (the first's from -1) in decimal, then its identity. An operator's identity
// is 31 bits of the FNV-1a hash of its name, element type and state type and of the
// identities of the stateful operators whose output it reads (through stateless ones),
// six base-36 digits; not of its position or its stateless inputs, which a new release may
// change around an operator it keeps. The stateful inputs count: an operator that reads
// another one's output now must not keep its replay start, which lineage would impose on
// that one and make it emit again, from part of their records, windows it had emitted
// (helper-71's review). Operators alike in name, element type and state type (two windows
// left unnamed, say) cannot be told apart across graphs (a release that swaps them would
// resume each from the other's start): their identities also hash the graph's fingerprint,
// so that only this graph matches them. The section is "-" (identsOmitted) for a graph whose
// checkpoints would pass identsMax with it. Computed once per graph, as the fingerprint is.
func (p *Pipeline) operatorIdents() (map[int]string, string) {
	if p.idents != nil && p.identsNodes == len(p.nodes) {
		return p.idents, p.identSection
	}
	p.idents, p.identsNodes = make(map[int]string), len(p.nodes)
	count := make(map[string]int) // operators by name, element type and state type
	for _, n := range p.nodes {
		if hasState(n) {
			count[identityOf(n)]++
		}
	}
	seen := make(map[string]int)
	feeds := make([][]int, len(p.nodes)) // as in lineage: stateful operators whose output reaches the node's
	var b strings.Builder
	prev := -1
	for i, n := range p.nodes {
		var in []int
		for _, par := range n.inputs() {
			for _, f := range feeds[par] {
				if !slices.Contains(in, f) {
					in = append(in, f)
				}
			}
		}
		if !hasState(n) {
			feeds[i] = in
			continue
		}
		feeds[i] = []int{i}
		ids := make([]string, len(in))
		for k, f := range in {
			ids[k] = p.idents[f]
		}
		slices.Sort(ids)
		base := identityOf(n)
		desc := base + "<" + strings.Join(ids, ",")
		if count[base] > 1 {
			desc += "#" + strconv.Itoa(seen[base]) + "@" + p.fingerprint()
			seen[base]++
		}
		p.idents[i] = identHash(desc)
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(i - prev))
		b.WriteString(p.idents[i])
		prev = i
	}
	p.identSection = b.String()
	_, params := p.operatorParams()
	// A checkpoint with every operator's entry at a twelve-digit offset.
	if len(checkpointFormat)+len(p.fingerprint())+len(params)+len(p.identSection)+12+len(p.idents)*16 > identsMax {
		p.identSection = identsOmitted
	}
	return p.idents, p.identSection
}

// identLen is the length of an operator's identity in a checkpoint.
const identLen = 6

// identHash is an operator's identity: 31 bits of the FNV-1a hash of desc, identLen base-36
// digits (36^6 > 2^31).
func identHash(desc string) string {
	h := fnv.New32a()
	h.Write([]byte(desc))
	v := strconv.FormatUint(uint64(h.Sum32()>>1), 36)
	return strings.Repeat("0", identLen-len(v)) + v
}

// isIdent reports whether id can be what identHash wrote.
func isIdent(id string) bool {
	if len(id) != identLen {
		return false
	}
	v, err := strconv.ParseUint(id, 36, 64)
	return err == nil && v < 1<<31 && strings.ToLower(id) == id
}

// identsOmitted stands for the identities of a graph whose checkpoints would be larger than
// identsMax with them.
const identsOmitted = "-"

// identsMax is the most bytes of the operators' part of a checkpoint (without a
// repartition's marks) with the identities, reckoned for the graph once, with every
// operator's replay start at a twelve-digit offset (so that the choice does not change from
// one commit to the next); beyond, they are left out, and a restart with another graph
// starts every stateful operator cold, as from a checkpoint of the previous format. The
// rest of the 4,096 bytes Kafka allows is for a repartition's marks and what a kafka Source
// adds (about 1 KB: an end marker, an exactly-once read-back bound). Identities cost about 8
// bytes per stateful operator; a graph of 40 windows (80 stateful operators) keeps them, one
// of 50 does not.
const identsMax = 2560

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

// parseIdents reads the identities section of a checkpoint of nodes operators (see
// Pipeline.operatorIdents): identities by node index. Two operators may hash alike (31
// bits): matchCheckpoint then matches neither.
func parseIdents(meta, section string, nodes int) (map[int]string, error) {
	m := make(map[int]string)
	if section == "" {
		return m, nil
	}
	idx := -1
	for _, item := range strings.Split(section, ",") {
		bad := fmt.Errorf("stream: checkpoint %q: bad identities entry %q", meta, item)
		if len(item) <= identLen {
			return nil, bad
		}
		g, id := item[:len(item)-identLen], item[len(item)-identLen:]
		gap, err := strconv.Atoi(g)
		if err != nil || gap < 1 || strconv.Itoa(gap) != g || gap > nodes || !isIdent(id) {
			return nil, bad
		}
		if idx += gap; idx >= nodes {
			return nil, bad
		}
		m[idx] = id
	}
	return m, nil
}

// graphChange is what matchCheckpoint found between the graph that wrote a checkpoint and
// this one: by node index of this graph, the stateful operators resumed by identity and
// those that start afresh, and the number of the checkpoint's operators this graph lacks.
type graphChange struct {
	kept, fresh []int
	gone        int
}

// matchCheckpoint applies a checkpoint of another graph to this one by the stateful
// operators' identities (see "Restarts with another graph" in the package documentation): an
// operator the checkpoint records gets its replay start, fire watermark and parameter hash,
// under its index here. The others are new (freshStarts). A checkpoint without identities
// (an earlier format, or one that left them out) is refused.
func (p *Pipeline) matchCheckpoint(cp checkpoint, meta string) (skip, fired map[int]int64, params map[int]string, ch graphChange, err error) {
	if cp.idents == nil {
		return nil, nil, nil, ch, cp.otherGraph(meta, len(p.nodes), p.fingerprint())
	}
	now, _ := p.operatorIdents()
	// An identity that two operators hash to, on either side, matches neither of them.
	byIdent := make(map[string]int, len(now))
	twice := make(map[string]bool)
	for idx, id := range now {
		if _, dup := byIdent[id]; dup {
			twice[id] = true
		}
		byIdent[id] = idx
	}
	held := make(map[string]int, len(cp.idents))
	for _, id := range cp.idents {
		held[id]++
	}
	moved := make(map[int]int, len(cp.idents)) // old index -> index here
	for old, id := range cp.idents {
		if idx, ok := byIdent[id]; ok && !twice[id] && held[id] == 1 {
			moved[old] = idx
		} else {
			ch.gone++
		}
	}
	skip, params = make(map[int]int64), make(map[int]string)
	for old, off := range cp.skip {
		if idx, ok := moved[old]; ok {
			skip[idx] = off
		}
	}
	for old, wm := range cp.fired {
		if idx, ok := moved[old]; ok {
			if fired == nil {
				fired = make(map[int]int64)
			}
			fired[idx] = wm
		}
	}
	for old, h := range cp.params {
		if idx, ok := moved[old]; ok {
			params[idx] = h
		}
	}
	kept := make(map[int]bool, len(moved))
	for _, idx := range moved {
		kept[idx] = true
	}
	for _, idx := range p.lineage().stateful {
		if kept[idx] {
			ch.kept = append(ch.kept, idx)
		} else {
			ch.fresh = append(ch.fresh, idx)
		}
	}
	return skip, fired, params, ch, nil
}

// freshStarts sets, in skip, the replay start of each new stateful operator (fresh, see
// matchCheckpoint): where what it reads resumes, the latest of the replay starts of the
// stateful operators upstream of it (through stateless ones), or the committed offset; so
// that an operator kept upstream need not replay from further back (and emit again what it
// had emitted) to feed it. Call it once skip holds the kept operators' starts, without those
// of operators that start cold (WithColdStartChanged).
func (p *Pipeline) freshStarts(skip map[int]int64, fresh []int, committed int64) {
	isFresh := make(map[int]bool, len(fresh))
	for _, idx := range fresh {
		isFresh[idx] = true
	}
	resume := make([]int64, len(p.nodes))
	for i, n := range p.nodes {
		r := committed
		for _, par := range n.inputs() {
			r = max(r, resume[par])
		}
		if hasState(n) {
			switch {
			case isFresh[i] && r > committed:
				skip[i] = r
			case !isFresh[i]:
				r = committed
				if s, ok := skip[i]; ok {
					r = s
				}
			}
		}
		resume[i] = r
	}
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

// identityOf describes a stateful operator for its identity (Pipeline.operatorIdents).
func identityOf(n node) string {
	if s, ok := n.(interface{ identity() string }); ok {
		return s.identity()
	}
	return "?"
}

// identity is describe without the operator's inputs.
func (s *Stream[T]) identity() string {
	state := ""
	if s.state != nil {
		state = fmt.Sprintf("%T", s.state)
	}
	return fmt.Sprintf("%s|%s|%s", s.name, reflect.TypeFor[T](), state)
}
