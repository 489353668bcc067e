// Tests, benchmarks and fuzzing of the geographic helpers.

package telemetry_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/telemetry"
)

func TestHaversine(t *testing.T) {
	tests := []struct {
		name string
		a, b telemetry.Point
		want float64 // km
		tol  float64
	}{
		// Rosetta Code's Nashville (BNA) to Los Angeles (LAX) example gives
		// 2887.2599506071106 km with R = 6372.8; rescaled to our radius.
		{"BNA-LAX", telemetry.Point{Lat: 36.12, Lon: -86.67}, telemetry.Point{Lat: 33.94, Lon: -118.40},
			2887.2599506071106 * telemetry.EarthRadiusKm / 6372.8, 1e-9},
		{"same point", telemetry.Point{Lat: 41.15, Lon: -8.61}, telemetry.Point{Lat: 41.15, Lon: -8.61}, 0, 0},
		{"one degree of latitude", telemetry.Point{Lat: 0, Lon: 0}, telemetry.Point{Lat: 1, Lon: 0},
			telemetry.EarthRadiusKm * math.Pi / 180, 1e-9},
		{"antipodes", telemetry.Point{Lat: 0, Lon: 0}, telemetry.Point{Lat: 0, Lon: 180},
			telemetry.EarthRadiusKm * math.Pi, 1e-9},
		{"pole to pole", telemetry.Point{Lat: 90, Lon: 0}, telemetry.Point{Lat: -90, Lon: 0},
			telemetry.EarthRadiusKm * math.Pi, 1e-9},
		// Porto, Avenida dos Aliados to the airport: a sanity check (~12 km).
		{"Porto", telemetry.Point{Lat: 41.1483, Lon: -8.6110}, telemetry.Point{Lat: 41.2481, Lon: -8.6814}, 12.4, 0.2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.InDelta(t, tt.want, telemetry.Haversine(tt.a, tt.b), tt.tol)
			require.InDelta(t, tt.want, telemetry.Haversine(tt.b, tt.a), tt.tol)
		})
	}
}

func TestBearing(t *testing.T) {
	o := telemetry.Point{}
	require.InDelta(t, 0, telemetry.Bearing(o, telemetry.Point{Lat: 1}), 1e-9)
	require.InDelta(t, 90, telemetry.Bearing(o, telemetry.Point{Lon: 1}), 1e-9)
	require.InDelta(t, 180, telemetry.Bearing(o, telemetry.Point{Lat: -1}), 1e-9)
	require.InDelta(t, 270, telemetry.Bearing(o, telemetry.Point{Lon: -1}), 1e-9)
	// Heading to a point due west on the same parallel starts north of west.
	require.Greater(t, telemetry.Bearing(telemetry.Point{Lat: 45, Lon: 0}, telemetry.Point{Lat: 45, Lon: -10}), 270.0)
}

func TestGeohashKnownValues(t *testing.T) {
	tests := []struct {
		p    telemetry.Point
		prec int
		want string
	}{
		{telemetry.Point{Lat: 57.64911, Lon: 10.40744}, 11, "u4pruydqqvj"}, // geohash.org's example
		{telemetry.Point{Lat: 42.6, Lon: -5.6}, 5, "ezs42"},                // Wikipedia's example
		{telemetry.Point{Lat: 0, Lon: 0}, 1, "s"},
		{telemetry.Point{Lat: -90, Lon: -180}, 12, "000000000000"},
		{telemetry.Point{Lat: 90, Lon: 180}, 12, "zzzzzzzzzzzz"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			require.Equal(t, tt.want, telemetry.EncodeGeohash(tt.p, tt.prec))
			require.Equal(t, "x:"+tt.want, string(telemetry.AppendGeohash([]byte("x:"), tt.p, tt.prec)))
			c, err := telemetry.DecodeGeohash(tt.want)
			require.NoError(t, err)
			require.True(t, c.Contains(tt.p), "%v not in %v", tt.p, c)
			up, err := telemetry.DecodeGeohash(strings.ToUpper(tt.want))
			require.NoError(t, err)
			require.Equal(t, c, up)
		})
	}
	c, err := telemetry.DecodeGeohash("ezs42")
	require.NoError(t, err)
	require.InDelta(t, 42.605, c.Center().Lat, 0.001)
	require.InDelta(t, -5.603, c.Center().Lon, 0.001)
}

func TestGeohashRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		p := telemetry.Point{Lat: r.Float64()*180 - 90, Lon: r.Float64()*360 - 180}
		for prec := 1; prec <= telemetry.MaxGeohashPrecision; prec++ {
			h := telemetry.EncodeGeohash(p, prec)
			require.Len(t, h, prec)
			c, err := telemetry.DecodeGeohash(h)
			require.NoError(t, err)
			require.True(t, c.Contains(p))
			require.Equal(t, h, telemetry.EncodeGeohash(c.Center(), prec))
			if prec > 1 {
				require.Equal(t, telemetry.EncodeGeohash(p, prec-1), h[:prec-1])
			}
		}
	}
}

func TestDecodeGeohashErrors(t *testing.T) {
	for _, h := range []string{"", "u4pruydqqvjxx", "u4pa", "ezs4!", "ilo"} {
		t.Run(h, func(t *testing.T) {
			_, err := telemetry.DecodeGeohash(h)
			require.ErrorIs(t, err, telemetry.ErrInvalidGeohash)
			require.True(t, strings.HasPrefix(err.Error(), "telemetry: "))
		})
	}
}

func TestEncodeGeohashPanicsOnBadPrecision(t *testing.T) {
	for _, prec := range []int{0, -1, 13} {
		require.Panics(t, func() { telemetry.EncodeGeohash(telemetry.Point{}, prec) })
	}
}

func TestPolygonContains(t *testing.T) {
	// A rough fence around Porto's Ribeira and an L-shaped (concave) one.
	square := telemetry.Polygon{{Lat: 41.138, Lon: -8.617}, {Lat: 41.138, Lon: -8.608}, {Lat: 41.144, Lon: -8.608}, {Lat: 41.144, Lon: -8.617}}
	ell := telemetry.Polygon{{Lat: 0, Lon: 0}, {Lat: 0, Lon: 2}, {Lat: 1, Lon: 2}, {Lat: 1, Lon: 1}, {Lat: 2, Lon: 1}, {Lat: 2, Lon: 0}}
	tests := []struct {
		name string
		pg   telemetry.Polygon
		p    telemetry.Point
		want bool
	}{
		{"inside square", square, telemetry.Point{Lat: 41.141, Lon: -8.612}, true},
		{"north of square", square, telemetry.Point{Lat: 41.15, Lon: -8.612}, false},
		{"west of square", square, telemetry.Point{Lat: 41.141, Lon: -8.62}, false},
		{"inside L foot", ell, telemetry.Point{Lat: 0.5, Lon: 1.5}, true},
		{"inside L stem", ell, telemetry.Point{Lat: 1.5, Lon: 0.5}, true},
		{"in the L notch", ell, telemetry.Point{Lat: 1.5, Lon: 1.5}, false},
		{"level with a vertex", ell, telemetry.Point{Lat: 1, Lon: 0.5}, true},
		{"degenerate", telemetry.Polygon{{Lat: 0, Lon: 0}, {Lat: 1, Lon: 1}}, telemetry.Point{Lat: 0.5, Lon: 0.5}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.pg.Contains(tt.p))
			if tt.want {
				require.True(t, tt.pg.Bounds().Contains(tt.p))
			}
		})
	}
	require.Equal(t, telemetry.Cell{Min: telemetry.Point{Lat: 0, Lon: 0}, Max: telemetry.Point{Lat: 2, Lon: 2}}, ell.Bounds())
	require.Equal(t, telemetry.Cell{}, telemetry.Polygon(nil).Bounds())
}

var sinkFloat float64

func BenchmarkHaversine(b *testing.B) {
	a, c := telemetry.Point{Lat: 41.1579, Lon: -8.6291}, telemetry.Point{Lat: 41.1483, Lon: -8.6110}
	b.ReportAllocs()
	for b.Loop() {
		sinkFloat = telemetry.Haversine(a, c)
	}
}

func BenchmarkAppendGeohash(b *testing.B) {
	p := telemetry.Point{Lat: 41.1579, Lon: -8.6291}
	buf := make([]byte, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		buf = telemetry.AppendGeohash(buf[:0], p, 7)
	}
}

func BenchmarkPolygonContains(b *testing.B) {
	pg := telemetry.Polygon{{Lat: 41.138, Lon: -8.617}, {Lat: 41.138, Lon: -8.608}, {Lat: 41.144, Lon: -8.608}, {Lat: 41.144, Lon: -8.617}}
	p := telemetry.Point{Lat: 41.141, Lon: -8.612}
	b.ReportAllocs()
	for b.Loop() {
		if !pg.Contains(p) {
			b.Fatal("not contained")
		}
	}
}

func FuzzDecodeGeohash(f *testing.F) {
	for _, s := range []string{"u4pruydqqvj", "ezs42", "EZS42", "", "a", "zzzzzzzzzzzzz", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, hash string) {
		c, err := telemetry.DecodeGeohash(hash)
		if err != nil {
			require.ErrorIs(t, err, telemetry.ErrInvalidGeohash)
			return
		}
		require.Less(t, c.Min.Lat, c.Max.Lat)
		require.Less(t, c.Min.Lon, c.Max.Lon)
		require.Equal(t, strings.ToLower(hash), telemetry.EncodeGeohash(c.Center(), len(hash)))
	})
}
