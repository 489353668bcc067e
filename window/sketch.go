// Sketch, a DDSketch-style quantile sketch with 1% relative error, and the Quantile
// aggregator built on it.

package window

import (
	"math"
	"slices"
)

// SketchAccuracy is the relative accuracy of Sketch: a quantile it returns is within 1% of the
// true value of the rank asked for (as long as the values span fewer than MaxSketchBins
// bins, about 17 orders of magnitude on each side of zero).
const SketchAccuracy = 0.01

// MaxSketchBins bounds the bins per sign of a Sketch, so its memory is at most about 16 KiB
// whatever the input; past it the bins nearest zero collapse and lose accuracy.
const MaxSketchBins = 2048

var (
	sketchGamma    = (1 + SketchAccuracy) / (1 - SketchAccuracy)
	sketchLogGamma = math.Log(sketchGamma)
)

// minIndexable is the smallest magnitude with a bin of its own; smaller ones count as zero.
const minIndexable = 1e-12

// Sketch is a streaming quantile sketch with bounded relative error (the DDSketch scheme):
// values fall into logarithmic bins of width 2*SketchAccuracy, so a value reported for a
// rank is within SketchAccuracy of the true one. Memory grows with the logarithm of the value
// range, not with the number of values, and two sketches merge exactly. Infinities are
// counted apart from the bins, below and above every finite value.
type Sketch struct {
	pos, neg       bins
	zeros          uint64
	negInf, posInf uint64 // -Inf and +Inf values, which have no bin
	count          uint64
	min, max       float64
}

type bins struct {
	offset int // bin index of counts[0]
	counts []uint32
}

func (b *bins) add(i int) {
	if len(b.counts) == 0 {
		b.offset = i
		b.counts = append(b.counts, 1)
		return
	}
	b.grow(i)
	b.counts[max(i-b.offset, 0)]++
}

// grow makes room for bin i, collapsing the lowest bins when the span exceeds MaxSketchBins.
func (b *bins) grow(i int) {
	switch {
	case i < b.offset:
		n := b.offset - i
		b.counts = slices.Insert(b.counts, 0, make([]uint32, n)...)
		b.offset = i
	case i >= b.offset+len(b.counts):
		b.counts = append(b.counts, make([]uint32, i-b.offset-len(b.counts)+1)...)
	}
	if extra := len(b.counts) - MaxSketchBins; extra > 0 {
		var sum uint32
		for _, c := range b.counts[:extra+1] {
			sum += c
		}
		b.counts = slices.Delete(b.counts, 0, extra)
		b.counts[0] = sum
		b.offset += extra
	}
}

func (b *bins) merge(o *bins) {
	if len(o.counts) == 0 {
		return
	}
	if len(b.counts) == 0 {
		b.offset = o.offset
		b.counts = slices.Clone(o.counts)
		return
	}
	b.grow(o.offset)
	b.grow(o.offset + len(o.counts) - 1)
	for j, c := range o.counts {
		b.counts[max(o.offset+j-b.offset, 0)] += c
	}
}

func sketchIndex(x float64) int { return int(math.Ceil(math.Log(x) / sketchLogGamma)) }

func sketchValue(i int) float64 { return 2 * math.Pow(sketchGamma, float64(i)) / (sketchGamma + 1) }

// Add adds a value; NaN is ignored, -Inf and +Inf are counted (a quantile whose rank falls on
// them is -Inf or +Inf).
func (s *Sketch) Add(x float64) {
	if math.IsNaN(x) {
		return
	}
	if s.count == 0 {
		s.min, s.max = x, x
	} else {
		s.min, s.max = min(s.min, x), max(s.max, x)
	}
	s.count++
	switch {
	case x > minIndexable:
		if x > math.MaxFloat64 {
			s.posInf++ // its bin index would be MinInt64
			return
		}
		s.pos.add(sketchIndex(x))
	case x < -minIndexable:
		if x < -math.MaxFloat64 {
			s.negInf++
			return
		}
		s.neg.add(sketchIndex(-x))
	default:
		s.zeros++
	}
}

// Merge adds every value of o to s.
func (s *Sketch) Merge(o *Sketch) {
	if o == nil || o.count == 0 {
		return
	}
	if s.count == 0 {
		s.min, s.max = o.min, o.max
	} else {
		s.min, s.max = min(s.min, o.min), max(s.max, o.max)
	}
	s.count += o.count
	s.zeros += o.zeros
	s.negInf += o.negInf
	s.posInf += o.posInf
	s.pos.merge(&o.pos)
	s.neg.merge(&o.neg)
}

// Count returns the number of values added.
func (s *Sketch) Count() int64 {
	if s == nil {
		return 0
	}
	return int64(s.count)
}

// Quantile returns an estimate of the q-quantile (0 <= q <= 1) of the values added: the
// value of rank floor(q*(n-1)) within SketchAccuracy relative error. It returns NaN for an
// empty sketch.
func (s *Sketch) Quantile(q float64) float64 {
	if s == nil || s.count == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	q = min(max(q, 0), 1)
	rank := uint64(q * float64(s.count-1))
	seen := s.negInf
	if seen > rank {
		return math.Inf(-1)
	}
	for j := len(s.neg.counts) - 1; j >= 0; j-- {
		seen += uint64(s.neg.counts[j])
		if seen > rank {
			return clamp(-sketchValue(s.neg.offset+j), s.min, s.max)
		}
	}
	seen += s.zeros
	if seen > rank {
		return 0
	}
	for j, c := range s.pos.counts {
		seen += uint64(c)
		if seen > rank {
			return clamp(sketchValue(s.pos.offset+j), s.min, s.max)
		}
	}
	return s.max // the rank falls on the +Inf values, and s.max is +Inf
}

func clamp(x, lo, hi float64) float64 { return min(max(x, lo), hi) }

// Clone returns a deep copy of s.
func (s *Sketch) Clone() *Sketch {
	if s == nil {
		return nil
	}
	c := *s
	c.pos.counts = slices.Clone(s.pos.counts)
	c.neg.counts = slices.Clone(s.neg.counts)
	return &c
}

// QuantileAgg estimates a quantile with a Sketch. See Quantile.
type QuantileAgg[V Number] struct{ q float64 }

// Quantile returns an aggregator of the q-quantile (for example 0.95) of a window's values,
// computed with a Sketch: within SketchAccuracy (1%) relative error, in memory that grows
// with the logarithm of the value range (a few hundred bytes to a few KiB per key and
// window). The accumulator is a *Sketch allocated on a key's first value in a window.
// A q outside [0, 1] makes Aggregate fail with ErrInvalidOption.
func Quantile[V Number](q float64) QuantileAgg[V] { return QuantileAgg[V]{q: q} }

func (QuantileAgg[V]) Zero() *Sketch { return nil }
func (QuantileAgg[V]) Add(acc *Sketch, v V) *Sketch {
	if acc == nil {
		acc = new(Sketch)
	}
	acc.Add(float64(v))
	return acc
}
func (QuantileAgg[V]) Merge(a, b *Sketch) *Sketch {
	if b == nil {
		return a
	}
	if a == nil {
		return b.Clone()
	}
	a.Merge(b)
	return a
}
func (a QuantileAgg[V]) Result(acc *Sketch) float64 { return acc.Quantile(a.q) }

func (a QuantileAgg[V]) validate() error {
	if !(a.q >= 0 && a.q <= 1) {
		return invalid("Quantile(%v): q must be in [0, 1]", a.q)
	}
	return nil
}
