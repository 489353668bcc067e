package telemetry

// Point is a WGS 84 position in degrees.
type Point struct {
	Lat, Lon float64
}
