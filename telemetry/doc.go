// Package telemetry defines the cab telemetry event of fleetstream, its
// JSON codec and the geographic helpers the transforms build on.
package telemetry
