// Package telemetry defines the cab telemetry event of fleetstream, its
// JSON codec, and the geographic helpers the transforms build on.
//
// # Event schema
//
// An [Event] travels as one JSON object, keyed in Kafka by its cab_id:
//
//	{"cab_id":"CAB-0042","trip_id":"T-77","ts":"2026-11-25T10:00:00.123Z",
//	 "lat":41.1579,"lon":-8.6291,"speed_kmh":42.5,"heading_deg":270,
//	 "status":"hired","engine_temp_c":90.1,"fuel_pct":55.0,"battery_v":12.6,
//	 "odometer_km":123456.7}
//
// cab_id (non-empty), ts (RFC 3339), lat in [-90, 90] and lon in
// [-180, 180] are required. The other fields are optional; a present
// optional field sets its bit in [Event.Has] (status uses [StatusUnknown]
// for absent), so zero readings are told apart from missing ones without
// pointers. A JSON null in an optional field means absent. Unknown fields
// are ignored, whatever their value. Field names match exactly (unlike
// encoding/json, which also accepts other letter cases).
//
// # Decoding
//
// [Decode] is a single-pass scanner written for this schema: several times
// faster than encoding/json and one allocation per event (the two ID
// strings, in one block). A [Decoder] interns IDs and so decodes a stream
// from a known fleet without allocating. Timestamps are parsed without
// allocation and returned in UTC, so decoded events compare with ==.
// Events laid out as [Append] writes them (schema order, no whitespace or
// escapes, short decimals) take a fast path, in about two thirds of the time;
// any other input is read by the general scanner, which decodes the same
// event from what both read and gives every error.
//
// Decoding is strict: input must be exactly one JSON object, optionally
// surrounded by whitespace, in valid UTF-8; numbers must follow the JSON
// grammar; a known field may appear only once. Values are bounded, so that
// nothing absurd reaches keys, watermarks, sums or documents:
//
//   - cab_id and trip_id: at most [MaxIDLen] (256) bytes after unescaping;
//   - ts: a time that time.Time.UnixNano represents, from
//     1677-09-21T00:12:43.145224193Z to 2262-04-11T23:47:16.854775806Z
//     (outside it UnixNano wraps around, and year 1000 would read as 2169).
//     How far ahead of the wall clock an event may be is the pipeline's
//     concern (stream.WithMaxFutureEventTime), not the codec's;
//   - lat in [-90, 90], lon in [-180, 180], heading_deg in [0, 360],
//     fuel_pct in [0, 100], speed_kmh in [0, [MaxSpeedKmh]] (1000),
//     engine_temp_c in [[MinEngineTempC], [MaxEngineTempC]] (-100 to 400),
//     battery_v in [0, [MaxBatteryV]] (1500), odometer_km in
//     [0, [MaxOdometerKm]] (1e8). NaN and infinities never pass.
//
// A value outside its bounds is a field error ([ErrInvalid]), which a
// pipeline sends to its dead letters with the record, like any other.
//
// # Encoding
//
// [Append] writes fields in schema order, omits absent optional fields,
// writes ts in UTC with up to nanosecond precision (the time.RFC3339Nano
// layout) and writes numbers that decode back to exactly the same float64.
// Everything [Decode] accepts re-encodes and decodes to an equal Event.
// [Event.MarshalJSON] and [Event.UnmarshalJSON] plug the codec into
// encoding/json.
//
// No encoder writes invalid JSON: [Append] and the AppendJSON methods of the
// documents return an error wrapping [ErrEncode] for a number that is NaN or
// infinite or a time outside years 0000..9999, and leave dst as it was, so
// the caller can dead-letter the value it could not write.
//
// # Binary codecs
//
// [EventCodec] and [TrackedCodec] are the stream.Codec values of [Event] and
// [Tracked] for repartition topics (stream.PairCodec adds the key). The
// layout is compact: a format byte, the Has bits and the IDs' lengths as
// uvarints, the status byte, the IDs, ts as int64 Unix nanoseconds, lat and
// lon, then only the optional floats whose bit is set, each as its 8 float64
// bytes (exact). A Porto event takes 62 bytes (136 in JSON), a simulator
// event with every field 86 (222). Append allocates nothing when dst has
// room; Decode allocates once, for the IDs.
//
// The first byte names the type and the layout version (0x01 Event, 0x81
// Tracked): a later layout takes a new byte, so bytes written by another
// release, or by the other codec, are refused with a clear reason instead of
// being misread. The codecs carry valid events only: Append refuses an event
// that [Event.Validate] rejects or whose Has sets unknown bits (an error
// wrapping [ErrEncode], dst unchanged), and Decode validates what it reads,
// so a corrupt or foreign record never yields an event that a source would
// not have accepted. Decode errors are [*DecodeError] values wrapping
// [ErrMalformed] (unknown format byte, bytes cut short or left over, a
// non-canonical length, unknown bits) or [ErrInvalid] (a value Validate
// rejects); a pipeline dead-letters them like any other. The encoding is
// canonical: bytes that decode re-encode to themselves. Fields whose bit is
// clear are not carried and decode as zero; Time decodes in UTC.
//
// [ZoneSampleCodec] carries a [ZoneSample], what zone demand counts of a
// tracked event (cab, speed, pickup; the time travels beside it): format
// byte 0x41, a flags byte, the cab id and the speed's 8 bytes when there is
// one, 17 bytes a Porto record against TrackedCodec's 63. [KeyByZone]
// projects to it, so the zone repartition moves about a quarter of the
// bytes the whole event would.
//
// Tracked needs its own codec: it embeds Event, whose MarshalJSON is
// promoted, so encoding/json (and stream.JSONCodec) writes the event alone
// and loses the tracker's flags.
//
// # Errors
//
// Decoding and validation errors are [*DecodeError] values that name the
// field, the reason and the byte offset, and wrap [ErrMalformed] (not JSON,
// syntax, truncation, trailing data) or [ErrInvalid] (schema violations).
// Test with errors.Is; dead-letter queues can record the Field and Reason.
//
// # Geography
//
// [Haversine] gives great-circle distances in km on a sphere of radius
// [EarthRadiusKm]; [EncodeGeohash], [AppendGeohash] and [DecodeGeohash]
// convert between positions and geohash cells for zone aggregation;
// [Polygon] tests geofence membership. All are pure functions, safe for
// concurrent use.
//
// # Transforms
//
// Ready-made transforms turn a stream of events into the documents of the
// cab-stats, zone-demand and cab-alerts indexes, each in one line:
//
//	stats, err := telemetry.CabStatsStream(events, window.Tumbling(time.Minute))
//	tr, err := telemetry.Track(events, telemetry.WithGeofences(fences...))
//	zones, err := telemetry.ZoneDemandStream(tr.Events(), window.Tumbling(5*time.Minute))
//
// [CabStatsStream] aggregates per cab and event-time window of any kind
// ([CabStatsAgg] is the window.Aggregator behind it): events (exact
// duplicates, same cab, ts, lat and lon, count once), the distance along the
// points in time order, average and maximum speed (from speed_kmh, or from
// distance and time where an event has none), the latest status and the
// latest good location. A point whose implied speed from the last good point
// exceeds [WithJumpSpeedKmh] is a GPS jump: it is left out (of the distance
// and the location) and the next point is measured from the last good one;
// two jumps in a row that agree with each other show that the last good
// point was the outlier, and the path goes on from them. The accumulator keeps the window's points (40 bytes each) and
// sorts them when the window closes, so arrival order never matters and
// sliding and session windows merge exactly.
//
// [ZoneDemandStream] counts per geohash cell ([WithGeohashPrecision]) and window
// the events, distinct cabs, pickups (a cab going from available to hired,
// as the tracker sees it) and average speed, leaving out duplicates and GPS
// jumps. Zones are not the Kafka key, so a zone's events are spread over
// the partitions, and window state is per partition: a pipeline reading
// several partitions repartitions by zone first, to get one document per
// zone and window ([ZoneDemand.DocID] is made of the zone and the window
// only):
//
//	keyed, err := telemetry.KeyByZone(tr.Events(), 0) // geohash-6 cells
//	byZone := stream.Repartition(keyed, "zones", exchange)
//	zones, err := telemetry.ZoneDemandByZone(byZone, window.Tumbling(5*time.Minute))
//
// or, moving one partial per zone, window and partition instead of one
// sample per event (two-phase aggregation, what the fleet job does; codec
// [ZonePartialCodec], format byte 0x43):
//
//	local, err := telemetry.ZoneDemandLocal(tr.Events(), window.Tumbling(5*time.Minute))
//	byZone := stream.RepartitionByTime(telemetry.ZonePartials(local), "zones", exchange, telemetry.ZonePartialHash, stream.WithRevisions())
//	zones, err := telemetry.ZoneDemandMerge(byZone, window.Tumbling(5*time.Minute))
//
// Both write the same documents but for events late in their own partition,
// which the two-phase form sends to ZoneDemandLocal's Late stream.
//
// Each partial carries its source partition, and [ZoneMergeAgg] keeps, per
// zone and window, the latest partial of each source partition and sums
// them. Invariant: per source partition, the partials of a zone and window
// arrive in the order they were made, and a later one holds the records of
// the earlier one and maybe more (a tumbling window sends one partial per
// zone and window in a run; a bounded run's end sends it early, and the next
// run, which rebuilds the window from its first records, sends it complete);
// so the latest is the most complete, and a copy replaces itself. With
// stream.WithRevisions, which keeps the next run's complete partial rather
// than drop it as a copy of the early one, bounded runs one after another
// write the documents of one run (TestZoneDemandBoundedRunsInARow,
// TestZoneAccCodecPartition, TestZoneDemandBoundedRunsInARowCrash; see "Runs
// one after another" in package stream for the repartition's part, a crash at
// a run's end included).
// Format 0x42 (a partial without its partition, written by an earlier
// release) still decodes and is added as before; an earlier release cannot
// read 0x43 and stops with an error: drain the zone repartition topic
// before rolling back.
// [ZoneOf] is the key function all of them use. The documents keep speed_samples
// and speed_sum_kmh next to avg_speed_kmh, so an average over zones or
// windows is exact: sum(speed_sum_kmh) / sum(speed_samples).
//
// [CabStatsDoc] and [ZoneDemandDoc] turn window results into documents;
// AppendJSON writes them without reflection, with the fields of their JSON
// tags; DocID gives the ID opensearch.WindowID would.
//
// # Options
//
// Each transform takes its own option type, so an option that does not
// concern a transform does not compile with it:
//
//   - [Track] takes a [TrackOption]: [WithSpeedLimit], [WithHarshBraking],
//     [WithIdleAfter], [WithSilentAfter], [WithMaxCabs], [WithGeofences],
//     [WithJumpSpeedKmh].
//   - [CabStatsStream] takes a [CabStatsOption]: [WithJumpSpeedKmh],
//     [WithWindowOptions].
//   - [NewCabStatsAgg] takes a [CabStatsAggOption]: [WithJumpSpeedKmh].
//   - [ZoneDemandStream] takes a [ZoneDemandOption]: [WithGeohashPrecision],
//     [WithWindowOptions].
//
// An option that concerns several transforms returns a concrete type that is
// an option of each ([JumpSpeedOption], [WindowingOption]), so one value can
// be passed to all of them.
// Options are checked when the transform is built; a bad one makes it return
// an error wrapping [ErrInvalidOption].
//
// # Cab tracker
//
// [Track] runs one operator, keyed by cab with state per source partition,
// that reads each partition's events in arrival order and emits annotated
// events ([Tracked]: pickup, GPS jump, duplicate, out of order) and
// [Alert] values:
//
//   - speeding: readings above [WithSpeedLimit] for at least its duration; an
//     event without a reading ends the stretch;
//   - harsh braking: a deceleration above [WithHarshBraking] between two
//     consecutive readings;
//   - long idle: hired and standing still (a reading below 1 km/h, or without
//     one, less than 25 m from the last good position) for [WithIdleAfter];
//   - geofence enter and exit: a good position on the other side of a
//     [WithGeofences] polygon from the cab's last good position;
//   - device silent: the partition's watermark passed the cab's latest event
//     time plus [WithSilentAfter]. The cab's state is then dropped. The
//     watermark is followed record by record (and on idle partitions, batch
//     by batch), so the alert does not depend on batching. At the end of the
//     input no alert fires and the state stays, so that a run on the next
//     records goes on as one run would (see Replay). An event of a cab the
//     tracker does not hold that is already that far behind the watermark (a
//     stale copy of a forgotten cab's event, a late backlog) is passed on but
//     starts no state, so one silence raises one alert, not one per late event.
//
// Duplicates and events older than the cab's latest event are annotated and
// left out of every detector. A duplicate is a copy of the cab's latest event,
// or of the out-of-order event it sent last (a late event redelivered right
// after itself, as at-least-once devices and the simulator do): zone demand
// and supply count it once. A copy of an older event that arrives after others
// is not told from a new one. A cab's first event starts no stretch, crosses
// no fence and picks nobody up: stretches fire only when the tracker saw
// them begin, once each, and an alert's ID is its cab, type, fence and start
// time ([AlertID]).
//
// # Memory and limits
//
// The tracker holds one entry per cab it follows (at most 128 bytes, plus the
// cab's ID and a map entry; 48 bytes more while a GPS jump is pending, about
// 46 while its last event is one that came out of order) until
// the cab falls silent. Its StateSize, which the pipeline reports in
// stream.BatchStats, and [Tracker.Cabs] give the number of cabs held; it
// also reports (stream.StateReporter) an estimate of its bytes from that
// count, without walking the cabs, and the events refused by the key limit.
// [WithMaxCabs] bounds it: past the bound, events of new cabs go to
// [Tracker.DeadLetters] with Reason stream.ReasonKeyLimit (connect it to the
// pipeline's dead-letter output, so nothing is lost), and a warning is
// logged, at most once a minute. Window state is bounded by
// window.WithMaxKeys, passed with [WithWindowOptions]. BenchmarkStatePerKey
// measures the whole fleet job's heap per idle cab.
//
// Event times reach the tracker's watermark through
// stream.PartitionContext.CapEventTime: an event stamped far ahead of the
// pipeline clock (which sources dead-letter anyway) moves it no further than
// the pipeline's future bound (stream.WithMaxFutureEventTime), not decades
// ahead, where every other cab would look silent.
//
// Downstream of a repartition (stream.PartitionContext.Merged, as in
// fleetpipeline -rekey-by-cab), a partition interleaves upstream partitions
// that are at different event times, so the newest time seen is no
// watermark: there the tracker fires device-silent on the upstream marks as
// of each record (stream.PartitionContext.WatermarkAt), which depend on the
// partition's record order only. The alerts are then the same however a
// replay falls into batches (TestTrackRepartitionedSilence).
//
// # Replay
//
// The tracker holds commits back (stream.Operator.Retained) to the oldest
// event any cab's state depends on: its latest event, its last good position
// (and a pending jump), and the event before an open speeding or idle
// stretch (or the latest event that was not part of one), and to a record that
// holds the partition's newest event time so far, so that a replay follows the
// same watermark and forgets silent cabs at the same records. It also keeps the
// commit out of the few places where a replay would see a cab's first event
// differently from the original run (a duplicate, an out-of-order event, a
// jump, a pickup, idleness judged from the previous position), moving it
// back to the event those depended on. So a replay from the committed offset,
// even one that starts further back because another operator held the
// commit, rebuilds every cab's state before its next unacknowledged event
// and fires the same alerts with the same IDs; alerts already written may be
// written again, and overwrite their copies.
//
// Event-time windows (package window) replay exactly from their own commit
// position. When the tracker holds the commit further back, the pipeline's
// replay checkpoint (stream.Position.Meta, stored by the Kafka source with the
// offset) lets each window skip the replayed records it had already
// accounted for, so an emitted window is not rebuilt from part of its records.
// When a window over the tracker's events (zone demand) starts further back
// than the tracker's own position, the pipeline starts the tracker where it
// could start after the batch before the window's position, so the events
// the window replays are annotated as they were (the fleet pipeline's offline
// crash test and its SIGKILL test prove it end to end).
//
// # Concurrency
//
// Functions and Event methods are safe for concurrent use. A [Decoder] is
// not; use one per goroutine. Transforms run in the pipeline's run loop.
package telemetry
