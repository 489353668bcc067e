// Watermarks: each partition's own, the pipeline's over active and idle partitions, what a
// partition's state fires on (see "Watermarks" in the package documentation), and the
// event-time check that keeps bad clocks away from them (ErrEventTime).

package stream

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// own returns a partition's own watermark.
func (p *Pipeline) own(ps *partState) int64 {
	if ps.marked {
		return ps.markWM
	}
	if ps.maxEvent == NoWatermark {
		return NoWatermark
	}
	if ooo := int64(p.cfg.outOfOrder); uint64(ps.maxEvent-NoWatermark) > uint64(ooo) { // the distance, without overflow
		return ps.maxEvent - ooo
	}
	// Within the out-of-orderness of the start of int64 time (1677, a bad clock): the
	// earliest watermark, rather than maxEvent - ooo wrapped to the end of time.
	return NoWatermark + 1
}

func (p *Pipeline) idle(ps *partState, now time.Time) bool {
	if ps.marked {
		return ps.markIdle
	}
	return p.cfg.idleTimeout > 0 && now.Sub(ps.lastSeen) >= p.cfg.idleTimeout
}

func (p *Pipeline) partitionWatermark(ps *partState, now time.Time, end bool) (int64, bool) {
	idle := p.idle(ps, now)
	if end || ps.marked && ps.markEnd {
		return EndOfTime, idle
	}
	if ps.marked {
		// The upstream partitions' own watermarks, idle ones already left out upstream: never
		// the pipeline's, which may be ahead of an upstream partition of another instance.
		return ps.markWM, idle
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
		if ps.ended || ps.marked && ps.markEnd {
			continue // its input ended: it holds nothing back
		}
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

// ErrEventTime is wrapped by the errors of Input.CheckEventTime.
var ErrEventTime = errors.New("stream: unusable event time")

// Event times that UnixNano can represent: about years 1678 to 2262.
var (
	minEventTime = time.Unix(0, math.MinInt64+1)
	maxEventTime = time.Unix(0, math.MaxInt64-1)
)

// checkEventTime reports why t cannot be an event time: it is outside what UnixNano
// represents, or later than now + maxFuture (maxFuture 0: no bound). The zero time is valid:
// it means processing time.
func checkEventTime(t, now time.Time, maxFuture time.Duration) error {
	if t.IsZero() {
		return nil
	}
	if t.Before(minEventTime) || t.After(maxEventTime) {
		return fmt.Errorf("%w: %s is outside the representable range (years 1678-2262)", ErrEventTime, t.UTC().Format(time.RFC3339Nano))
	}
	if maxFuture > 0 && t.After(now.Add(maxFuture)) {
		return fmt.Errorf("%w: %s is %v ahead of the pipeline clock (%s), more than the allowed %v",
			ErrEventTime, t.UTC().Format(time.RFC3339Nano), t.Sub(now).Round(time.Second), now.UTC().Format(time.RFC3339), maxFuture)
	}
	return nil
}
