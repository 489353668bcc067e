// Benchmarks of the binary codecs against stream.JSONCodec on the same
// events: the Porto sample and the simulator (every optional field set).

package telemetry_test

import (
	"testing"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/telemetry"
)

var sinkTracked telemetry.Tracked

// BenchmarkEventCodec reports ns/op, allocs/op and bytes/record of one
// event's Append (into a reused buffer) and Decode, cycling through the data.
func BenchmarkEventCodec(b *testing.B) {
	for _, d := range []struct {
		name   string
		events func(testing.TB) []telemetry.Event
	}{
		{"porto", portoEvents},
		{"sim", func(tb testing.TB) []telemetry.Event { return simEvents(tb, 10_000) }},
	} {
		for _, c := range []struct {
			name  string
			codec stream.Codec[telemetry.Event]
		}{
			{"binary", telemetry.EventCodec{}},
			{"json", stream.JSONCodec[telemetry.Event]()},
		} {
			b.Run(d.name+"/"+c.name+"/append", func(b *testing.B) {
				es := d.events(b)
				buf := make([]byte, 0, 1024)
				var total, n int
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if buf, err = c.codec.Append(buf[:0], es[n%len(es)]); err != nil {
						b.Fatal(err)
					}
					total += len(buf)
					n++
				}
				b.ReportMetric(float64(total)/float64(n), "bytes/record")
			})
			b.Run(d.name+"/"+c.name+"/decode", func(b *testing.B) {
				es := d.events(b)
				enc := make([][]byte, len(es))
				total := 0
				for i, e := range es {
					var err error
					if enc[i], err = c.codec.Append(nil, e); err != nil {
						b.Fatal(err)
					}
					total += len(enc[i])
				}
				n := 0
				b.ReportAllocs()
				for b.Loop() {
					e, err := c.codec.Decode(enc[n%len(enc)])
					if err != nil {
						b.Fatal(err)
					}
					sinkEvent = e
					n++
				}
				b.ReportMetric(float64(total)/float64(len(enc)), "bytes/record")
			})
		}
	}
}

// BenchmarkTrackedPairCodec is a record of the zone repartition as it goes
// through the topic: the zone key and the tracked event, encoded and decoded.
func BenchmarkTrackedPairCodec(b *testing.B) {
	trs := tracked(portoEvents(b))
	zoneOf := telemetry.ZoneOf(telemetry.DefaultGeohashPrecision)
	ps := make([]stream.Pair[string, telemetry.Tracked], len(trs))
	for i, tr := range trs {
		ps[i] = stream.Pair[string, telemetry.Tracked]{Key: zoneOf(tr), Value: tr}
	}
	for _, c := range []struct {
		name  string
		codec stream.Codec[stream.Pair[string, telemetry.Tracked]]
	}{
		{"binary", stream.PairCodec[string, telemetry.Tracked](stream.StringCodec{}, telemetry.TrackedCodec{})},
		// Loses the tracker flags (TestJSONCodecLosesTrackerFlags): for cost only.
		{"json", stream.PairCodec(stream.StringCodec{}, stream.JSONCodec[telemetry.Tracked]())},
	} {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			var total, n int
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = c.codec.Append(buf[:0], ps[n%len(ps)]); err != nil {
					b.Fatal(err)
				}
				p, err := c.codec.Decode(buf)
				if err != nil {
					b.Fatal(err)
				}
				sinkTracked = p.Value
				total += len(buf)
				n++
			}
			b.ReportMetric(float64(total)/float64(n), "bytes/record")
		})
	}
}
