// The partitions of a running pipeline: assignments and revocations from the sources
// (applyControl), each partition's state, and their stats.

package stream

import (
	"cmp"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// handleControl applies partition assignments and revocations that arrived from the source.
func (p *Pipeline) handleControl() {
	for _, sn := range p.srcs {
		assigned, revoked := sn.control()
		p.applyControl(assigned, revoked)
	}
}

// Originator is implemented by sources that can name where a partition's records come from,
// such as a Kafka Source's topic and partition: the pipeline's logs then say
// "input=topic/partition" beside its partition id.
type Originator interface {
	Origin(part int32) (topic string, partition int32, ok bool)
}

// inputOf returns the log attribute "input" naming where a pipeline partition's records come
// from ("topic/partition"), or an empty attribute (which slog leaves out) if its source cannot
// say (Originator).
func (p *Pipeline) inputOf(part int32) slog.Attr {
	if topic, n, ok := p.Origin(part); ok {
		return slog.String("input", topic+"/"+strconv.Itoa(int(n)))
	}
	return slog.Attr{}
}

// Origin maps a pipeline partition id (Record.Partition, a window result's or late record's
// Partition, PartitionContext.Partition) to the topic and partition its records were read
// from, through the source it belongs to (an Originator, such as a Kafka Source or a
// repartition's Exchange), whichever source of the pipeline that is. ok is false when that
// source cannot say. Pass it as the origin of window.Late.DeadLetter or join.Late.DeadLetter:
// a source's own Origin takes the source's local ids, which are the pipeline's only for its
// first source (see PartitionSource). Safe to call from operators while the pipeline runs.
func (p *Pipeline) Origin(part int32) (topic string, partition int32, ok bool) {
	si, local := p.sourceOf(part)
	if si < 0 || si >= len(p.srcs) {
		return "", 0, false
	}
	if o, ok := p.srcs[si].origin(); ok {
		return o.Origin(local)
	}
	return "", 0, false
}

// partitionStats returns every live partition's position and watermark.
func (p *Pipeline) partitionStats() []PartitionStats {
	now := p.cfg.clock.Now()
	out := make([]PartitionStats, 0, len(p.live))
	for _, part := range p.live {
		ps := p.parts[part]
		out = append(out, PartitionStats{Partition: part, Next: ps.next, Committed: ps.committed,
			Watermark: WatermarkTime(p.own(ps)), Idle: p.idle(ps, now), Ended: ps.ended || ps.marked && ps.markEnd})
	}
	return out
}

// sourceStats merges the stats of the sources that report them.
func (p *Pipeline) sourceStats() SourceStats {
	var st SourceStats
	for _, sn := range p.srcs {
		s, ok := sn.stats()
		if !ok {
			continue
		}
		// A repartition's topic gives its positions, not the pipeline's input counts.
		st.Lag = mergeNamed(st.Lag, s.Lag)
		st.Read = mergeNamed(st.Read, s.Read)
		st.End = mergeNamed(st.End, s.End)
		if !s.FailingSince.IsZero() && (st.FailingSince.IsZero() || s.FailingSince.Before(st.FailingSince)) {
			st.FailingSince, st.LastError = s.FailingSince, s.LastError
		}
		if sn.internal() {
			continue
		}
		st.Records += s.Records
		st.Bytes += s.Bytes
		st.DeadLetters += s.DeadLetters
		for r, n := range s.DeadLettersByReason {
			if st.DeadLettersByReason == nil {
				st.DeadLettersByReason = make(map[string]int64, len(s.DeadLettersByReason))
			}
			st.DeadLettersByReason[r] += n // summed over the sources
		}
	}
	return st
}

// mergeNamed adds the per-partition values of src to dst, made when needed.
func mergeNamed(dst, src map[string]int64) map[string]int64 {
	if len(src) > 0 && dst == nil {
		dst = make(map[string]int64, len(src))
	}
	maps.Copy(dst, src)
	return dst
}

// applyControl applies a source's assignments and revocations in the order the source sent
// them: each revocation after the assignments sent before it (revocation.at). A partition
// assigned and revoked again between two batches (a rebalance that took it back at once, or
// a Kafka Source's claim that never started) is then gone, not kept with nobody owning it;
// one revoked and assigned again starts anew from the position it was assigned with.
func (p *Pipeline) applyControl(assigned []Position, revoked []revocation) {
	if len(revoked) > 0 {
		// A revoked partition's commit in flight ends before its state is dropped and the
		// source told so (the source may then hand it to another member).
		p.settle()
	}
	now := p.cfg.clock.Now()
	from := 0
	for _, r := range revoked {
		p.assign(assigned[from:r.at], now)
		from = r.at
		p.revoke(r)
	}
	p.assign(assigned[from:], now)
}

// revoke drops the state of a revocation's partitions and tells the source.
func (p *Pipeline) revoke(r revocation) {
	for _, part := range r.parts {
		if _, ok := p.parts[part]; !ok {
			continue
		}
		delete(p.parts, part)
		p.live = slices.DeleteFunc(p.live, func(x int32) bool { return x == part })
		for _, n := range p.nodes {
			n.drop(part)
		}
		for _, sh := range p.shuffles {
			sh.drop(part)
		}
		if p.pending != nil {
			delete(p.pending.next, part)
		}
		p.cfg.logger.Info("stream: partition revoked, state dropped", "partition", part, p.inputOf(part))
	}
	close(r.done)
}

// assign registers assigned partitions, with the checkpoints they resume from.
func (p *Pipeline) assign(assigned []Position, now time.Time) {
	for _, pos := range assigned {
		ps := p.partition(pos.Partition, now)
		if pos.Offset >= 0 {
			ps.base = pos.Offset
		}
		meta, marks, hasMarks := strings.Cut(pos.Meta, markSep)
		if sh := p.shuffleOf(pos.Partition); sh != nil && hasMarks && pos.Offset >= 0 {
			m, fired, err := cutFired(marks)
			if err == nil {
				err = sh.restore(pos.Partition, pos.Offset, m)
			}
			switch {
			case errors.Is(err, ErrInputChanged):
				p.ctlErr = cmp.Or(p.ctlErr, err)
			case err != nil:
				p.cfg.logger.Warn("stream: ignoring the committed repartition marks: records replayed from upstream may be counted twice", "partition", pos.Partition, p.inputOf(pos.Partition), "offset", pos.Offset, "err", err)
			default:
				ps.partFired = fired
			}
		}
		if meta == "" {
			if hasMarks && pos.Offset > ps.committed {
				ps.committed, ps.meta = pos.Offset, pos.Meta
			}
			continue
		}
		skip, fired, params, fresh, err := p.resumeCheckpoint(pos, meta)
		if err != nil {
			p.cfg.logger.Warn("stream: ignoring the committed checkpoint: every stateful operator starts cold from the committed offset, so windows open at the commit may be emitted again from part of their records", "partition", pos.Partition, p.inputOf(pos.Partition), "offset", pos.Offset, "err", err)
			continue
		}
		if changed := p.changedOperators(pos.Partition, params); len(changed) > 0 {
			if !p.cfg.coldChanged {
				p.ctlErr = cmp.Or(p.ctlErr, p.operatorChanged(pos.Partition, pos.Offset, changed))
				continue
			}
			// WithColdStartChanged: the changed operators start cold from the committed
			// offset (effectiveSkip moves the stateful operators they read there too).
			for _, idx := range changed {
				delete(skip, idx)
				delete(fired, idx)
			}
			p.cfg.logger.Warn("stream: operator parameters changed since the committed checkpoint; accepted (WithColdStartChanged): those operators start cold from the committed offset", "partition", pos.Partition, p.inputOf(pos.Partition), "offset", pos.Offset, "operators", p.describeOperators(changed))
			// New operators (another graph) start where what they read resumes, the
			// changed ones left out.
			p.freshStarts(skip, fresh, pos.Offset)
			ps.restamp = Position{Partition: pos.Partition, Offset: pos.Offset, Meta: p.restampCheckpoint(pos.Offset, skip, fired, marks, hasMarks)}
		} else {
			p.freshStarts(skip, fresh, pos.Offset)
		}
		ps.skip, ps.fired, ps.meta = skip, fired, pos.Meta
		ps.eff = p.effectiveSkip(skip, pos.Offset)
		if pos.Offset > ps.committed {
			ps.committed = pos.Offset
		}
		p.cfg.logger.Info("stream: partition resumed from checkpoint", "partition", pos.Partition, p.inputOf(pos.Partition), "offset", pos.Offset, "operators", len(skip))
	}
}

func (p *Pipeline) partition(part int32, now time.Time) *partState {
	ps, ok := p.parts[part]
	if !ok {
		ps = &partState{maxEvent: NoWatermark, base: -1, next: -1, committed: -1, lastSeen: now, partFired: NoWatermark}
		p.parts[part] = ps
		i, _ := slices.BinarySearch(p.live, part)
		p.live = slices.Insert(p.live, i, part)
	}
	return ps
}

// resumeCheckpoint decodes the checkpoint a partition was assigned with (meta, without the
// repartition marks) for this graph: as it is when this graph wrote it, else matched by the
// stateful operators' identities (matchCheckpoint), which it logs; fresh are then the new
// operators (see freshStarts).
func (p *Pipeline) resumeCheckpoint(pos Position, meta string) (skip, fired map[int]int64, params map[int]string, fresh []int, err error) {
	cp, err := parseCheckpoint(meta, pos.Offset)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if cp.sameGraph(len(p.nodes), p.fingerprint()) {
		return cp.skip, cp.fired, cp.params, nil, nil
	}
	skip, fired, params, ch, err := p.matchCheckpoint(cp, meta)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	p.cfg.logger.Warn("stream: the committed checkpoint was written by another graph: the stateful operators it records resume by name, the others start where their input resumes",
		"partition", pos.Partition, p.inputOf(pos.Partition), "offset", pos.Offset,
		"resumed", p.operatorNames(ch.kept), "new", p.operatorNames(ch.fresh), "gone", ch.gone)
	return skip, fired, params, ch.fresh, nil
}

// operatorNames names operators by node index, in the order given.
func (p *Pipeline) operatorNames(idxs []int) []string {
	names := make([]string, len(idxs))
	for i, idx := range idxs {
		names[i] = nameOf(p.nodes[idx])
	}
	return names
}
