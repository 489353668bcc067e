// Operator identities in checkpoints: what a checkpoint of another graph (a new release)
// matches the stateful operators by (see "Restarts with another graph" in the package
// documentation), their encoding, and where the operators it does not name start.

package stream

import (
	"fmt"
	"hash/fnv"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

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
	ins := p.statefulInputs()
	var b strings.Builder
	prev := -1
	for i, n := range p.nodes {
		if !hasState(n) {
			continue
		}
		in := ins[i]
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

// identityOf describes a stateful operator for its identity (Pipeline.operatorIdents).
func identityOf(n node) string {
	if s, ok := n.(interface{ identity() string }); ok {
		return s.identity()
	}
	return "?"
}

// identity is describe without the operator's inputs, or what the operator's Identifier
// gives.
func (s *Stream[T]) identity() string {
	if p, ok := s.state.(interface{ pinnedIdentity() string }); ok {
		if id := p.pinnedIdentity(); id != "" {
			return id
		}
	}
	return identityString(s.name, reflect.TypeFor[T](), s.state)
}

func identityString(name string, elem reflect.Type, state stateful) string {
	st := ""
	if state != nil {
		st = fmt.Sprintf("%T", state)
	}
	return fmt.Sprintf("%s|%s|%s", name, elem, st)
}
