package telemetry

import (
	"math"
	"math/rand/v2"
	"testing"
)

// bisectGeohash is the standard geohash algorithm, bisecting the ranges one bit at a time
// (AppendGeohash's code before it computed each coordinate's cell at once): the reference.
func bisectGeohash(p Point, precision int) []byte {
	latLo, latHi := -90.0, 90.0
	lonLo, lonHi := -180.0, 180.0
	even := true
	var out []byte
	for range precision {
		var c byte
		for range 5 {
			c <<= 1
			if even {
				if mid := (lonLo + lonHi) / 2; p.Lon >= mid {
					c |= 1
					lonLo = mid
				} else {
					lonHi = mid
				}
			} else {
				if mid := (latLo + latHi) / 2; p.Lat >= mid {
					c |= 1
					latLo = mid
				} else {
					latHi = mid
				}
			}
			even = !even
		}
		out = append(out, geohashAlphabet[c])
	}
	return out
}

// TestGeohashMatchesBisection: AppendGeohash gives the bisection's geohash bit for bit, at
// every precision, for random points, for points exactly on cell edges and one ulp either
// side of them (where an estimate by division alone would be off by one cell), and for
// coordinates out of range, infinite or NaN.
func TestGeohashMatchesBisection(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 3))
	check := func(p Point, prec int) {
		t.Helper()
		want := string(bisectGeohash(p, prec))
		if got := string(AppendGeohash(nil, p, prec)); got != want {
			t.Fatalf("%+v at precision %d: %q, bisection %q", p, prec, got, want)
		}
	}
	specials := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), 90, -90, 180, -180, 1e300, -1e300,
		math.Nextafter(90, 100), math.Nextafter(-90, -100), math.Nextafter(180, 200), math.Nextafter(-180, -200)}
	for prec := 1; prec <= MaxGeohashPrecision; prec++ {
		for _, a := range specials {
			for _, b := range specials {
				check(Point{Lat: a, Lon: b}, prec)
			}
		}
		bits := uint(5 * prec)
		lonBits, latBits := (bits+1)/2, bits/2
		for range 20000 {
			check(Point{Lat: rng.Float64()*180 - 90, Lon: rng.Float64()*360 - 180}, prec)
			check(Point{Lat: rng.Float64()*400 - 200, Lon: rng.Float64()*800 - 400}, prec)
			// On an edge and one ulp either side, for each coordinate.
			lon := -180 + 360*float64(rng.Uint32N(1<<lonBits))/float64(uint64(1)<<lonBits)
			lat := -90 + 180*float64(rng.Uint32N(1<<max(latBits, 1)))/float64(uint64(1)<<latBits)
			for _, x := range []float64{lon, math.Nextafter(lon, math.Inf(-1)), math.Nextafter(lon, math.Inf(1))} {
				for _, y := range []float64{lat, math.Nextafter(lat, math.Inf(-1)), math.Nextafter(lat, math.Inf(1))} {
					check(Point{Lat: y, Lon: x}, prec)
				}
			}
		}
	}
}

// TestZoneOfNamesByCell: ZoneOf's interned names are the geohashes, cell by cell, across
// the cache of names being cleared.
func TestZoneOfNamesByCell(t *testing.T) {
	zone := ZoneOf(DefaultGeohashPrecision)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range 200000 {
		p := Point{Lat: 41 + rng.Float64(), Lon: -9 + rng.Float64()*4}
		if i%3 == 0 {
			p = Point{Lat: rng.Float64()*180 - 90, Lon: rng.Float64()*360 - 180}
		}
		var tr Tracked
		tr.Lat, tr.Lon = p.Lat, p.Lon
		if got, want := zone(tr), string(bisectGeohash(p, DefaultGeohashPrecision)); got != want {
			t.Fatalf("%+v: %q, want %q", p, got, want)
		}
	}
}
