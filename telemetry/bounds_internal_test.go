package telemetry

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestInBoundsMatchesCheckFloat: the fast path's bounds check accepts
// exactly what checkFloat accepts, for every numeric field, at and beside
// its bounds, for NaN, infinities, zeros and random values.
func TestInBoundsMatchesCheckFloat(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for id := fLat; id < numFields; id++ {
		if stringFields>>id&1 != 0 {
			continue
		}
		lo, hi := bounds[id].lo, bounds[id].hi
		vs := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), lo, hi,
			math.Nextafter(lo, math.Inf(-1)), math.Nextafter(hi, math.Inf(1)), math.MaxFloat64, -math.MaxFloat64}
		for range 10000 {
			vs = append(vs, (r.Float64()*1.2-0.1)*(hi-lo)+lo)
		}
		accepted := 0
		for _, v := range vs {
			if inBounds(id, v) != (checkFloat(id, v) == "") {
				t.Fatalf("%s %v: inBounds %v, checkFloat %q", fieldNames[id], v, inBounds(id, v), checkFloat(id, v))
			}
			if inBounds(id, v) {
				accepted++
			}
		}
		if accepted < 5000 {
			t.Fatalf("%s: only %d values in bounds", fieldNames[id], accepted)
		}
	}
}
