// Package fleetsim generates cab telemetry for tests, examples and
// benchmarks: a deterministic simulator with injectable faults, and a
// replay of real taxi traces from Porto.
//
// # Simulator
//
// [New] builds a [Sim] from a [Config]. A run is a pure function of the
// config: the same seed gives byte-identical output, on any machine. Cabs
// move inside Config.Bounds (central Porto by default) with bounded
// acceleration (at most 2.5 m/s² speeding up and 3 m/s² braking) and
// speeds up to 75 km/h, cycling through available, hired (with a trip ID)
// and, now and then, offline (stationary). Each cab reports every
// Config.Interval of event time, staggered so the stream is in event-time
// order.
//
// Messages come from [Sim.Next], [Sim.All] or, without allocating,
// [Sim.AppendNext]. Generation runs at millions of events per second on one
// core; a [Pacer] slows it to a target rate, with an injectable [Clock] so
// tests need not sleep.
//
// # Faults
//
// [Faults] sets per-event rates for speeding stretches, harsh braking, GPS
// jumps, out-of-order (late) events within a bound, duplicates and
// malformed values. Every message lists its anomalies in Message.Faults:
// ground truth for testing detectors and dead-letter handling.
//
// # Porto replay
//
// [LoadPorto] and [ReadPorto] read the ECML/PKDD 2015 Porto taxi sample
// (../shared/data/porto, CC BY 4.0) and turn each trip into one event per
// GPS point, ordered by time and optionally shifted and sped up. Real-data
// noise is kept, not cleaned, and summarised in [PortoStats]. [Replay]
// turns the events into messages.
//
// # Errors and concurrency
//
// Bad configuration is reported by errors wrapping [ErrInvalidOption]; bad
// input data by errors wrapping [ErrPortoFormat]. A Sim and a Pacer are not
// safe for concurrent use.
package fleetsim
