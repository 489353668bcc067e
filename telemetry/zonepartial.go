// Zone demand in two phases: per source partition, a window combines the events of each zone
// into a partial [ZoneAcc] (ZoneDemandLocal); only those go through the zone repartition
// (stream.RepartitionByTime), and a window after it merges them (ZoneDemandMerge). The
// repartition then moves one record per zone, window and partition instead of one per event.

package telemetry

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/window"
)

// ZonePartial is what the zone repartition of two-phase zone demand carries: a zone and the
// partial accumulator of one source partition's events in it for one window (the window
// travels as the record's event time, its last instant).
type ZonePartial = stream.Pair[string, ZoneAcc]

// zoneLocalAgg is the upstream half of two-phase zone demand: ZoneDemandAgg whose result is
// the accumulator itself.
type zoneLocalAgg struct{ ZoneDemandAgg }

var _ window.Aggregator[Tracked, ZoneAcc, ZoneAcc] = zoneLocalAgg{}

func (zoneLocalAgg) Result(acc ZoneAcc) ZoneAcc { return acc }

// ZoneMergeAgg is the window.Aggregator behind [ZoneDemandMerge]: it merges partial
// accumulators into the zone's [ZoneDemand], keeping the latest partial of each source
// partition (see Add). Merging is order-free across partitions (integer sums and a set
// union), so the result does not depend on the order in which the partitions' partials
// arrive.
type ZoneMergeAgg struct{}

var _ window.Aggregator[ZoneAcc, ZoneAcc, ZoneDemand] = ZoneMergeAgg{}

func (ZoneMergeAgg) Zero() ZoneAcc { return ZoneAcc{} }

// Add keeps v as the latest partial of its source partition, replacing an earlier one of the
// same partition: an early partial that a bounded run wrote at its end, which the next run
// sends again complete (see ZoneDemandMerge). A partial without a partition is added.
func (ZoneMergeAgg) Add(acc, v ZoneAcc) ZoneAcc {
	if v.from == 0 {
		parts := acc.parts
		acc = ZoneDemandAgg{}.Merge(acc, v)
		acc.parts = parts
		return acc
	}
	for i := range acc.parts {
		if acc.parts[i].from == v.from {
			acc.parts[i] = v
			return acc
		}
	}
	acc.parts = append(acc.parts, v)
	return acc
}

// Merge merges two accumulators; of the partials of one source partition in both, b's is
// kept (the later). ZoneDemandAgg.Merge, here and in Add and Result, sums only the
// accumulators' own fields: it leaves their source partition and their partials out.
func (m ZoneMergeAgg) Merge(a, b ZoneAcc) ZoneAcc {
	out := ZoneDemandAgg{}.Merge(a, b)
	out.parts = append(out.parts, a.parts...)
	for _, p := range b.parts {
		out = m.Add(out, p)
	}
	return out
}

func (ZoneMergeAgg) Result(acc ZoneAcc) ZoneDemand {
	sum := acc
	for _, p := range acc.parts {
		sum = ZoneDemandAgg{}.Merge(sum, p)
	}
	return sum.result()
}

// ZoneDemandLocal is the first phase of two-phase zone demand: per source partition, the
// tracked events zone demand counts (no duplicate, no GPS jump) aggregated by zone
// ([WithGeohashPrecision], default 6) and window of the assigner. Its final results, as
// [ZonePartials], go through stream.RepartitionByTime (codec [ZonePartialCodec]) to
// [ZoneDemandMerge] with the same assigner and window options:
//
//	local, err := telemetry.ZoneDemandLocal(tr.Events(), window.Tumbling(5*time.Minute))
//	byZone := stream.RepartitionByTime(telemetry.ZonePartials(local), "zones", exchange, telemetry.ZonePartialHash, stream.WithRevisions())
//	zones, err := telemetry.ZoneDemandMerge(byZone, window.Tumbling(5*time.Minute))
//
// The documents equal those of KeyByZone, a repartition and [ZoneDemandByZone], but for
// events late in their own partition: those go to this window's Late stream (the other way,
// they count if the slowest partition had not passed their window).
//
// The assigner must be Tumbling (an error wrapping [ErrInvalidOption] otherwise), and the
// options must not hold window.WithMaxKeys. RepartitionByTime numbers a window's partials by
// their rank in it, so a replay must emit them in the same order: a tumbling window emits its
// keys in the order of their first records, which a replay reproduces; a sliding window emits
// them in the order its engine first saw them, which a replay from a later start does not;
// and a key limit admits keys by the state of every partition at the time, so a replay may
// admit a key the first run refused and shift the ranks after it. Either would keep a partial
// twice downstream: stream.RepartitionByTime refuses both when the graph is built.
func ZoneDemandLocal(s *stream.Stream[Tracked], assigner window.Assigner, opts ...ZoneDemandOption) (*window.Windowed[string, ZoneAcc, Tracked], error) {
	c, err := newConfig(opts, ZoneDemandOption.applyZoneDemand)
	if err != nil {
		return nil, err
	}
	if !assigner.IsTumbling() {
		return nil, invalidOption("ZoneDemandLocal: %v: two-phase zone demand needs a tumbling window (a replay must emit a window's partials in the same order)", assigner)
	}
	// Each partition's partial of a zone is meant: they meet after the repartition.
	wopts := append([]window.Option{window.WithName("zone-demand-local"), window.WithPerPartitionResults()}, c.winOpts...)
	return window.AggregateElements(s.Filter(countsForZones), ZoneOf(c.precision),
		assigner, window.Aggregator[Tracked, ZoneAcc, ZoneAcc](zoneLocalAgg{}), wopts...)
}

// ZonePartials returns the final results of [ZoneDemandLocal] as the records of the zone
// repartition.
func ZonePartials(local *window.Windowed[string, ZoneAcc, Tracked]) *stream.Stream[ZonePartial] {
	return stream.Map(local.Results().Filter(func(r window.Result[string, ZoneAcc]) bool { return r.Final }),
		func(r window.Result[string, ZoneAcc]) ZonePartial {
			v := r.Value
			v.from = r.Partition + 1
			return ZonePartial{Key: r.Key, Value: v}
		})
}

// ZonePartialHash routes a partial by its zone (stream.HashKey), for stream.RepartitionByTime.
func ZonePartialHash(p ZonePartial) uint64 { return stream.HashKey(p.Key) }

// ZoneDemandMerge is the second phase of two-phase zone demand (see [ZoneDemandLocal]): it
// merges the partials of every partition into one [ZoneDemand] per zone and window. It takes
// [WithWindowOptions] (give it the grace [ZoneDemandLocal] has, or more); [WithGeohashPrecision]
// is an error (the keys are the zones already). Repartition the partials with
// stream.WithRevisions: the merge keeps the latest partial of each source partition, so the
// complete partial that the next bounded run sends for a window open at a run's end replaces
// the early one (without the option it is dropped as a copy, and the document written again
// from the early one).
func ZoneDemandMerge(s *stream.Stream[ZonePartial], assigner window.Assigner, opts ...ZoneDemandOption) (*window.Windowed[string, ZoneDemand, ZonePartial], error) {
	c, err := newConfig(opts, ZoneDemandOption.applyZoneDemand)
	if err != nil {
		return nil, err
	}
	if c.precisionSet {
		return nil, invalidOption("ZoneDemandMerge: WithGeohashPrecision does not apply, the stream's keys are the zones (pass the precision to ZoneDemandLocal)")
	}
	wopts := append([]window.Option{window.WithName("zone-demand")}, c.winOpts...)
	return window.Aggregate(s, func(p ZonePartial) string { return p.Key }, func(p ZonePartial) ZoneAcc { return p.Value },
		assigner, window.Aggregator[ZoneAcc, ZoneAcc, ZoneDemand](ZoneMergeAgg{}), wopts...)
}

// formatZoneAcc1 is the format byte of a binary ZoneAcc, layout 1; formatZoneAcc2, layout 2:
// layout 1 after the source partition plus one.
const (
	formatZoneAcc1 = 0x42
	formatZoneAcc2 = 0x43
)

// maxZoneCount bounds a zone accumulator's counts (2^53, exact in a float64): sums of a few
// partials cannot overflow.
const maxZoneCount = 1 << 53

// ZoneAccCodec is the binary stream.Codec of a [ZoneAcc], the value of two-phase zone
// demand's repartition: the format byte 0x43 and the source partition plus one as a uvarint
// (0x42 and no partition for an accumulator without one, which earlier releases wrote);
// events, pickups and speed samples as uvarints; the speed sum (micro-km/h) as a varint; the
// number of distinct cabs as a uvarint, then each cab id (uvarint length and bytes), in sorted
// order. Decode reads both formats; an earlier release reads only 0x42. The zero value is
// ready to use and safe for concurrent use.
type ZoneAccCodec struct{}

var _ stream.Codec[ZoneAcc] = ZoneAccCodec{}

// ZonePartialCodec is the codec of the zone repartition's records in two-phase zone demand.
func ZonePartialCodec() stream.Codec[ZonePartial] {
	return stream.PairCodec[string, ZoneAcc](stream.StringCodec{}, ZoneAccCodec{})
}

// Append appends the binary encoding of acc to dst. An accumulator with a cab id that Event
// would refuse, or negative counts, is refused with an error wrapping [ErrEncode], and dst is
// returned as it was.
func (ZoneAccCodec) Append(dst []byte, acc ZoneAcc) ([]byte, error) {
	if acc.events < 0 || acc.pickups < 0 || acc.speeds < 0 || acc.speedSum < 0 ||
		acc.events > maxZoneCount || acc.pickups > acc.events || acc.speeds > acc.events {
		return dst, fmt.Errorf("%w: binary zone accumulator: counts out of range", ErrEncode)
	}
	var cabs []string
	if acc.cabSet != nil {
		cabs = slices.Sorted(maps.Keys(acc.cabSet))
	} else {
		cabs = slices.Sorted(slices.Values(acc.cabs))
	}
	for _, c := range cabs {
		if c == "" || len(c) > MaxIDLen || checkString(c) != "" {
			return dst, fmt.Errorf("%w: binary zone accumulator: cab id %q", ErrEncode, c)
		}
	}
	if acc.from > 0 {
		dst = append(dst, formatZoneAcc2)
		dst = binary.AppendUvarint(dst, uint64(acc.from))
	} else {
		dst = append(dst, formatZoneAcc1)
	}
	dst = binary.AppendUvarint(dst, uint64(acc.events))
	dst = binary.AppendUvarint(dst, uint64(acc.pickups))
	dst = binary.AppendUvarint(dst, uint64(acc.speeds))
	dst = binary.AppendUvarint(dst, uint64(acc.speedSum))
	dst = binary.AppendUvarint(dst, uint64(len(cabs)))
	for _, c := range cabs {
		dst = binary.AppendUvarint(dst, uint64(len(c)))
		dst = append(dst, c...)
	}
	return dst, nil
}

// Decode decodes an accumulator from exactly the bytes Append wrote. Errors are
// [*DecodeError] values wrapping [ErrMalformed] (another format byte, bytes cut short or
// left over, counts out of range) or [ErrInvalid] (a cab id Event would refuse).
func (ZoneAccCodec) Decode(b []byte) (ZoneAcc, error) {
	var acc ZoneAcc
	if len(b) == 0 {
		return acc, malformedBinary("empty input", 0)
	}
	if b[0] != formatZoneAcc1 && b[0] != formatZoneAcc2 {
		return acc, malformedBinary(fmt.Sprintf("unknown format byte %#02x (a zone accumulator is 0x42 or 0x43: written by another release?)", b[0]), 0)
	}
	i := 1
	if b[0] == formatZoneAcc2 {
		from, next, err := uvarint(b, i, "partition")
		if err != nil {
			return ZoneAcc{}, err
		}
		if from == 0 || from > math.MaxInt32 {
			return ZoneAcc{}, malformedBinary("partition out of range", i)
		}
		acc.from, i = int32(from), next
	}
	var counts [3]uint64
	for k, name := range []string{"events", "pickups", "speed samples"} {
		v, next, err := uvarint(b, i, name)
		if err != nil {
			return ZoneAcc{}, err
		}
		if v > maxZoneCount {
			return ZoneAcc{}, malformedBinary(name+" out of range", i)
		}
		counts[k], i = v, next
	}
	acc.events, acc.pickups, acc.speeds = int64(counts[0]), int64(counts[1]), int64(counts[2])
	if acc.pickups > acc.events || acc.speeds > acc.events {
		return ZoneAcc{}, malformedBinary("more pickups or speed samples than events", i)
	}
	// The speed sum is in micro-km/h, each reading at most MaxSpeedKmh: a non-negative varint.
	sum, next, err := uvarint(b, i, "speed sum")
	if err != nil {
		return ZoneAcc{}, err
	}
	if float64(sum) > float64(acc.speeds)*MaxSpeedKmh*speedUnit {
		return ZoneAcc{}, malformedBinary("speed sum out of range", i)
	}
	acc.speedSum, i = int64(sum), next
	ncabs, i, err := uvarint(b, i, "cab count")
	if err != nil {
		return ZoneAcc{}, err
	}
	if ncabs > uint64(len(b)-i) { // each cab takes at least its length byte
		return ZoneAcc{}, malformedBinary("cab count beyond the input", i)
	}
	prev := ""
	for k := range ncabs {
		l, next, err := uvarint(b, i, "cab_id length")
		if err != nil {
			return ZoneAcc{}, err
		}
		if l == 0 || l > MaxIDLen {
			return ZoneAcc{}, &DecodeError{Field: "cab_id", Reason: "empty or too long", Offset: i, Err: ErrInvalid}
		}
		i = next
		if uint64(len(b)-i) < l {
			return ZoneAcc{}, malformedBinary("cut short", len(b))
		}
		id := string(b[i : i+int(l)])
		if r := checkString(id); r != "" {
			return ZoneAcc{}, &DecodeError{Field: "cab_id", Reason: r, Offset: i, Err: ErrInvalid}
		}
		if k > 0 && id <= prev {
			return ZoneAcc{}, malformedBinary("cab ids not in strictly increasing order", i)
		}
		prev = id
		acc.addCab(id)
		i += int(l)
	}
	if i != len(b) {
		return ZoneAcc{}, malformedBinary(fmt.Sprintf("%d bytes left over", len(b)-i), i)
	}
	return acc, nil
}
