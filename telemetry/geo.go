// Geography: points and the documents' Location, great-circle distance and
// bearing, geohash cells, and polygons for geofences.

package telemetry

import (
	"errors"
	"fmt"
	"math"
)

// EarthRadiusKm is the mean Earth radius used by [Haversine]: the IUGG mean
// radius R1 = (2a + b) / 3 of the WGS 84 ellipsoid. Treating the Earth as a
// sphere errs by up to about 0.5% against the ellipsoid, far below GPS noise
// for the city distances telemetry deals with.
const EarthRadiusKm = 6371.0088

// ErrInvalidGeohash reports a geohash that [DecodeGeohash] cannot decode.
var ErrInvalidGeohash = errors.New("telemetry: invalid geohash")

// Point is a WGS 84 position in degrees.
type Point struct {
	Lat, Lon float64
}

func (p Point) String() string { return fmt.Sprintf("(%g, %g)", p.Lat, p.Lon) }

// Location is a geo_point as OpenSearch takes it: {"lat":..,"lon":..}, the
// position field of the documents ([CabStats], [ZoneDemand], [Alert]).
type Location struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

const degToRad = math.Pi / 180

// Haversine returns the great-circle distance between a and b in kilometres,
// on a sphere of radius [EarthRadiusKm].
func Haversine(a, b Point) float64 {
	lat1, lat2 := a.Lat*degToRad, b.Lat*degToRad
	sdLat := math.Sin((lat2 - lat1) / 2)
	sdLon := math.Sin((b.Lon - a.Lon) * degToRad / 2)
	h := sdLat*sdLat + math.Cos(lat1)*math.Cos(lat2)*sdLon*sdLon
	return 2 * EarthRadiusKm * math.Asin(math.Sqrt(math.Min(h, 1)))
}

// Bearing returns the initial great-circle bearing from a to b in degrees
// clockwise from north, in [0, 360).
func Bearing(a, b Point) float64 {
	lat1, lat2 := a.Lat*degToRad, b.Lat*degToRad
	dLon := (b.Lon - a.Lon) * degToRad
	y := math.Sin(dLon) * math.Cos(lat2)
	x := math.Cos(lat1)*math.Sin(lat2) - math.Sin(lat1)*math.Cos(lat2)*math.Cos(dLon)
	deg := math.Atan2(y, x) / degToRad
	if deg < 0 {
		deg += 360
	}
	if deg >= 360 {
		deg = 0
	}
	return deg
}

// MaxGeohashPrecision is the longest geohash supported: 12 characters,
// cells of a few centimetres.
const MaxGeohashPrecision = 12

const geohashAlphabet = "0123456789bcdefghjkmnpqrstuvwxyz"

// geohashIndex maps a byte to its 5-bit value, or 0xff.
var geohashIndex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(geohashAlphabet); i++ {
		c := geohashAlphabet[i]
		t[c] = byte(i)
		if c >= 'a' && c <= 'z' {
			t[c-'a'+'A'] = byte(i)
		}
	}
	return t
}()

// EncodeGeohash returns the geohash of p with precision characters.
// Coordinates outside the valid range are clamped to it. It panics if
// precision is not in 1..[MaxGeohashPrecision].
func EncodeGeohash(p Point, precision int) string {
	var buf [MaxGeohashPrecision]byte
	return string(AppendGeohash(buf[:0], p, precision))
}

// AppendGeohash appends the geohash of p to dst, like [EncodeGeohash],
// without allocating when dst has room.
func AppendGeohash(dst []byte, p Point, precision int) []byte {
	if precision < 1 || precision > MaxGeohashPrecision {
		panic(fmt.Sprintf("telemetry: geohash precision %d outside 1..%d", precision, MaxGeohashPrecision))
	}
	return appendGeohashCode(dst, geohashCode(p, precision), precision)
}

// geohashCode returns the 5*precision bits of p's geohash (precision in
// 1..MaxGeohashPrecision), longitude and latitude bits interleaved,
// longitude's first, as the bisection of the standard algorithm gives them.
// Instead of bisecting bit by bit, each coordinate's cell is computed at once
// (cellIndex) and the bits are spread and merged.
func geohashCode(p Point, precision int) uint64 {
	bits := uint(5 * precision)
	lonBits, latBits := (bits+1)/2, bits/2
	lon := spreadBits(cellIndex(p.Lon, -180, 360, lonBits))
	lat := spreadBits(cellIndex(p.Lat, -90, 180, latBits))
	if lonBits == latBits {
		return lon<<1 | lat
	}
	return lon | lat<<1 // an odd count of bits ends with a longitude bit
}

// appendGeohashCode appends the characters of a geohashCode.
func appendGeohashCode(dst []byte, code uint64, precision int) []byte {
	for i := precision - 1; i >= 0; i-- {
		dst = append(dst, geohashAlphabet[code>>(5*uint(i))&31])
	}
	return dst
}

// cellIndex returns which of 2^bits equal cells of [lo, lo+span) holds v:
// the k with edge(k) <= v < edge(k+1), where edge(k) = lo + span*k/2^bits;
// 0 below the range and for NaN, the last cell from the range's top on.
// That is the cell bisection finds: its midpoints are those edges, and for
// the geohash ranges and at most 30 bits every edge is exact in float64, so
// the estimate from one division, corrected by comparing v with the exact
// edges, gives the same k bit for bit.
func cellIndex(v, lo, span float64, bits uint) uint32 {
	n := uint32(1) << bits
	if !(v >= lo) {
		return 0
	}
	edge := func(k uint32) float64 { return lo + span*float64(k)/float64(n) }
	k := n - 1
	if f := (v - lo) / span * float64(n); f < float64(n) {
		k = uint32(f)
	}
	for k > 0 && v < edge(k) {
		k--
	}
	for k < n-1 && v >= edge(k+1) {
		k++
	}
	return k
}

// spreadBits moves bit i of x to bit 2i.
func spreadBits(x uint32) uint64 {
	v := uint64(x)
	v = (v | v<<16) & 0x0000ffff0000ffff
	v = (v | v<<8) & 0x00ff00ff00ff00ff
	v = (v | v<<4) & 0x0f0f0f0f0f0f0f0f
	v = (v | v<<2) & 0x3333333333333333
	v = (v | v<<1) & 0x5555555555555555
	return v
}

// Cell is a latitude/longitude rectangle, such as a geohash cell.
type Cell struct {
	Min, Max Point
}

// Center returns the midpoint of c.
func (c Cell) Center() Point {
	return Point{Lat: (c.Min.Lat + c.Max.Lat) / 2, Lon: (c.Min.Lon + c.Max.Lon) / 2}
}

// Contains reports whether p lies in c, borders included.
func (c Cell) Contains(p Point) bool {
	return p.Lat >= c.Min.Lat && p.Lat <= c.Max.Lat && p.Lon >= c.Min.Lon && p.Lon <= c.Max.Lon
}

// DecodeGeohash returns the cell that hash denotes. It accepts upper and
// lower case and 1..[MaxGeohashPrecision] characters; other input yields an
// error wrapping [ErrInvalidGeohash].
func DecodeGeohash(hash string) (Cell, error) {
	if len(hash) == 0 || len(hash) > MaxGeohashPrecision {
		return Cell{}, fmt.Errorf("%w: length %d outside 1..%d", ErrInvalidGeohash, len(hash), MaxGeohashPrecision)
	}
	c := Cell{Min: Point{-90, -180}, Max: Point{90, 180}}
	even := true
	for i := 0; i < len(hash); i++ {
		v := geohashIndex[hash[i]]
		if v == 0xff {
			return Cell{}, fmt.Errorf("%w: %q: bad character %q", ErrInvalidGeohash, hash, hash[i])
		}
		for bit := 4; bit >= 0; bit-- {
			set := v>>bit&1 == 1
			if even {
				mid := (c.Min.Lon + c.Max.Lon) / 2
				if set {
					c.Min.Lon = mid
				} else {
					c.Max.Lon = mid
				}
			} else {
				mid := (c.Min.Lat + c.Max.Lat) / 2
				if set {
					c.Min.Lat = mid
				} else {
					c.Max.Lat = mid
				}
			}
			even = !even
		}
	}
	return c, nil
}

// Polygon is a simple closed polygon, such as a geofence, given by its
// vertices in order; the last vertex connects back to the first. Edges are
// straight lines in latitude/longitude, which is accurate for city-sized
// fences; polygons crossing the antimeridian are not supported.
type Polygon []Point

// Contains reports whether p lies inside the polygon, by ray casting with
// the even-odd rule. Points exactly on an edge may go either way.
// Polygons with fewer than three vertices contain nothing.
func (pg Polygon) Contains(p Point) bool {
	if len(pg) < 3 {
		return false
	}
	in := false
	j := len(pg) - 1
	for i := range pg {
		a, b := pg[i], pg[j]
		if (a.Lat > p.Lat) != (b.Lat > p.Lat) &&
			p.Lon < (b.Lon-a.Lon)*(p.Lat-a.Lat)/(b.Lat-a.Lat)+a.Lon {
			in = !in
		}
		j = i
	}
	return in
}

// Bounds returns the smallest cell holding every vertex of pg, a cheap
// first test before [Polygon.Contains].
func (pg Polygon) Bounds() Cell {
	if len(pg) == 0 {
		return Cell{}
	}
	c := Cell{Min: pg[0], Max: pg[0]}
	for _, p := range pg[1:] {
		c.Min.Lat, c.Max.Lat = math.Min(c.Min.Lat, p.Lat), math.Max(c.Max.Lat, p.Lat)
		c.Min.Lon, c.Max.Lon = math.Min(c.Min.Lon, p.Lon), math.Max(c.Max.Lon, p.Lon)
	}
	return c
}
