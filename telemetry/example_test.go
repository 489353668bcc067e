// Runnable examples of the codec and the geographic helpers.

package telemetry_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/fleetstream/fleetstream/telemetry"
)

func ExampleDecode() {
	e, err := telemetry.Decode([]byte(`{"cab_id":"CAB-0042","ts":"2026-11-25T10:00:00.123Z",` +
		`"lat":41.1579,"lon":-8.6291,"speed_kmh":0,"status":"available","color":"black"}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(e.CabID, e.Time, e.Status)
	fmt.Println("speed known:", e.Has&telemetry.HasSpeed != 0, e.SpeedKmh)
	fmt.Println("fuel known:", e.Has&telemetry.HasFuel != 0)
	// Output:
	// CAB-0042 2026-11-25 10:00:00.123 +0000 UTC available
	// speed known: true 0
	// fuel known: false
}

func ExampleDecode_errors() {
	_, err := telemetry.Decode([]byte(`{"cab_id":"CAB-1","ts":"yesterday","lat":41.1,"lon":-8.6}`))
	var de *telemetry.DecodeError
	if errors.As(err, &de) {
		fmt.Println(de.Field, "-", de.Reason)
	}
	fmt.Println(errors.Is(err, telemetry.ErrInvalid))

	_, err = telemetry.Decode([]byte(`{"cab_id":"CAB-1"`))
	fmt.Println(errors.Is(err, telemetry.ErrMalformed))
	fmt.Println(err)
	// Output:
	// ts - not an RFC 3339 timestamp
	// true
	// true
	// telemetry: malformed event: unexpected end of input (at byte 17)
}

func ExampleAppend() {
	e := telemetry.Event{
		CabID:    "CAB-7",
		Time:     time.Date(2026, 11, 25, 10, 0, 0, 5e8, time.UTC),
		Lat:      41.15,
		Lon:      -8.61,
		SpeedKmh: 38.5,
		Status:   telemetry.StatusHired,
		Has:      telemetry.HasSpeed,
	}
	buf := make([]byte, 0, 256) // reuse across events: no allocation
	buf, err := telemetry.Append(buf, e)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(buf))
	// Output:
	// {"cab_id":"CAB-7","ts":"2026-11-25T10:00:00.5Z","lat":41.15,"lon":-8.61,"speed_kmh":38.5,"status":"hired"}
}

func ExampleHaversine() {
	// Rosetta Code's Nashville to Los Angeles example, on the IUGG radius.
	bna := telemetry.Point{Lat: 36.12, Lon: -86.67}
	lax := telemetry.Point{Lat: 33.94, Lon: -118.40}
	fmt.Printf("%.1f km\n", telemetry.Haversine(bna, lax))
	// Output: 2886.4 km
}

func ExampleEncodeGeohash() {
	p := telemetry.Point{Lat: 57.64911, Lon: 10.40744}
	fmt.Println(telemetry.EncodeGeohash(p, 11))
	fmt.Println(telemetry.EncodeGeohash(p, 5))
	// Output:
	// u4pruydqqvj
	// u4pru
}

func ExampleDecodeGeohash() {
	c, err := telemetry.DecodeGeohash("ezs42")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%.3f %.3f\n", c.Center().Lat, c.Center().Lon)
	fmt.Println(c.Contains(telemetry.Point{Lat: 42.6, Lon: -5.6}))
	// Output:
	// 42.605 -5.603
	// true
}

func ExamplePolygon_Contains() {
	ribeira := telemetry.Polygon{
		{Lat: 41.138, Lon: -8.617}, {Lat: 41.138, Lon: -8.608},
		{Lat: 41.144, Lon: -8.608}, {Lat: 41.144, Lon: -8.617},
	}
	fmt.Println(ribeira.Contains(telemetry.Point{Lat: 41.141, Lon: -8.612}))
	fmt.Println(ribeira.Contains(telemetry.Point{Lat: 41.158, Lon: -8.629}))
	// Output:
	// true
	// false
}
