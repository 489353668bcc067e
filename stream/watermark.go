// Watermarks: each partition's own, the pipeline's over active and idle partitions, and what
// a partition's state fires on (see "Watermarks" in the package documentation).

package stream

import (
	"math"
	"time"
)

// own returns a partition's own watermark.
func (p *Pipeline) own(ps *partState) int64 {
	if ps.maxEvent == NoWatermark {
		return NoWatermark
	}
	return ps.maxEvent - int64(p.cfg.outOfOrder)
}

func (p *Pipeline) idle(ps *partState, now time.Time) bool {
	return p.cfg.idleTimeout > 0 && now.Sub(ps.lastSeen) >= p.cfg.idleTimeout
}

func (p *Pipeline) partitionWatermark(ps *partState, now time.Time, end bool) (int64, bool) {
	idle := p.idle(ps, now)
	if end {
		return EndOfTime, idle
	}
	w := p.own(ps)
	if idle {
		w = max(w, p.wm)
	}
	return w, idle
}

func (p *Pipeline) watermark(now time.Time, end bool) int64 {
	if end {
		return EndOfTime
	}
	wm, minAll, active := int64(math.MaxInt64), int64(math.MaxInt64), false
	for _, part := range p.live {
		ps := p.parts[part]
		w := p.own(ps)
		if w == NoWatermark {
			// A partition with no event yet holds nothing back while idle (it may never
			// get one), but an active one holds time until its first event.
			if !p.idle(ps, now) {
				return NoWatermark
			}
			continue
		}
		minAll = min(minAll, w)
		if p.idle(ps, now) {
			continue
		}
		active = true
		wm = min(wm, w)
	}
	if !active {
		// Every partition is idle: take the slowest partition's own watermark, never the
		// furthest. Each partition has then reached it, so no partition that becomes active
		// again finds its next records behind the pipeline watermark unless they are behind
		// its own watermark too (see "Watermarks" in the package documentation).
		if minAll == math.MaxInt64 {
			return NoWatermark
		}
		return minAll
	}
	return wm
}
