// Package fleetsim generates cab telemetry for tests, examples and
// benchmarks.
package fleetsim
