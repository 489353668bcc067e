// Benchmarks of the codec against encoding/json.

package telemetry_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/fleetstream/fleetstream/telemetry"
)

var sinkEvent telemetry.Event

func BenchmarkDecode(b *testing.B) {
	data := []byte(sample)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		e, err := telemetry.Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		sinkEvent = e
	}
}

func BenchmarkDecoderInterned(b *testing.B) {
	data := []byte(sample)
	var d telemetry.Decoder
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		e, err := d.Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		sinkEvent = e
	}
}

// BenchmarkDecoderFleet decodes the events of a fleet of 300 cabs in turn,
// as one partition of the telemetry topic sees them: the intern table holds
// hundreds of ids, not one.
func BenchmarkDecoderFleet(b *testing.B) {
	var events [][]byte
	for i := range 300 {
		events = append(events, []byte(strings.Replace(sample, "CAB-0042", fmt.Sprintf("CAB-%04d", i), 1)))
	}
	decodeInTurn(b, events, len(sample))
}

// decodeInTurn decodes the events one after another with one Decoder, as
// one partition of the telemetry topic does, reporting size bytes an event.
func decodeInTurn(b *testing.B, events [][]byte, size int) {
	var d telemetry.Decoder
	b.SetBytes(int64(size))
	b.ReportAllocs()
	i := 0
	cpu0 := cpuTime()
	for b.Loop() {
		e, err := d.Decode(events[i])
		if err != nil {
			b.Fatal(err)
		}
		sinkEvent = e
		if i++; i == len(events) {
			i = 0
		}
	}
	reportCPU(b, cpu0)
}

// BenchmarkDecoderData decodes, in turn, the events of the simulator (every
// optional field, numbers of varied lengths) and of the Porto sample, as
// Append writes them: real data, where the number and timestamp lengths vary
// from event to event, unlike the one sample above.
func BenchmarkDecoderData(b *testing.B) {
	for _, c := range []struct {
		name   string
		events func(testing.TB) []telemetry.Event
	}{
		{"sim", func(tb testing.TB) []telemetry.Event { return simEvents(tb, 10_000) }},
		{"porto", portoEvents},
	} {
		b.Run(c.name, func(b *testing.B) {
			es := c.events(b)
			enc := make([][]byte, len(es))
			total := 0
			for i, e := range es {
				var err error
				if enc[i], err = telemetry.Append(nil, e); err != nil {
					b.Fatal(err)
				}
				total += len(enc[i])
			}
			decodeInTurn(b, enc, total/len(enc))
		})
	}
}

// BenchmarkDecodeEncodingJSON is the baseline: encoding/json decoding the
// same bytes into the plain struct a user would write.
func BenchmarkDecodeEncodingJSON(b *testing.B) {
	data := []byte(sample)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var p plainEvent
		if err := json.Unmarshal(data, &p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	e := sampleEvent()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = telemetry.Append(buf[:0], e); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkMarshalEncodingJSON(b *testing.B) {
	e, err := telemetry.Decode([]byte(sample))
	if err != nil {
		b.Fatal(err)
	}
	_ = e
	var p plainEvent
	if err := json.Unmarshal([]byte(sample), &p); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(&p); err != nil {
			b.Fatal(err)
		}
	}
}
