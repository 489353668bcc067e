// Tests of the binary codecs (EventCodec, TrackedCodec) on the real Porto
// sample and the simulator: round trips, the exact layout, errors and
// allocations.

package telemetry_test

import (
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/telemetry/fleetsim"
)

// portoEvents reads ../shared/data/porto/train.1k.csv, found by walking up
// from the package directory, with the fleetsim reader. It skips when the
// file is absent, unless FLEETSTREAM_REQUIRE_SERVICES=1.
func portoEvents(tb testing.TB) []telemetry.Event {
	tb.Helper()
	dir, err := os.Getwd()
	require.NoError(tb, err)
	for {
		p := filepath.Join(dir, "shared", "data", "porto", "train.1k.csv")
		if _, err := os.Stat(p); err == nil {
			es, _, err := fleetsim.LoadPorto(p, fleetsim.PortoOptions{})
			require.NoError(tb, err)
			require.NotEmpty(tb, es)
			return es
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if os.Getenv("FLEETSTREAM_REQUIRE_SERVICES") == "1" {
		tb.Fatal("Porto sample shared/data/porto/train.1k.csv not found above the package directory")
	}
	tb.Skip("Porto sample shared/data/porto/train.1k.csv not found; skipping")
	return nil
}

// simEvents returns n events of the simulator, every optional field set,
// with its faults but no malformed messages.
func simEvents(tb testing.TB, n int) []telemetry.Event {
	tb.Helper()
	sim, err := fleetsim.New(fleetsim.Config{Seed: 3, Cabs: 50, Faults: fleetsim.Faults{
		Speeding: 0.01, HarshBraking: 0.01, GPSJump: 0.01, OutOfOrder: 0.02, Duplicate: 0.02}})
	require.NoError(tb, err)
	out := make([]telemetry.Event, 0, n)
	for m := range sim.All() {
		if len(out) == n {
			break
		}
		out = append(out, m.Event)
	}
	return out
}

// tracked annotates events with every combination of the tracker flags.
func tracked(es []telemetry.Event) []telemetry.Tracked {
	out := make([]telemetry.Tracked, len(es))
	for i, e := range es {
		out[i] = telemetry.Tracked{Event: e, Pickup: i&1 != 0, Jump: i&2 != 0, Duplicate: i&4 != 0, OutOfOrder: i&8 != 0, TripStart: i&16 != 0}
	}
	return out
}

func TestBinaryCodecRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name   string
		events func(testing.TB) []telemetry.Event
	}{
		{"porto", portoEvents},
		{"sim", func(tb testing.TB) []telemetry.Event { return simEvents(tb, 20_000) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			es := c.events(t)
			var ec telemetry.EventCodec
			var tc telemetry.TrackedCodec
			pc := stream.PairCodec[string, telemetry.Tracked](stream.StringCodec{}, tc)
			var buf, jbuf []byte
			var binBytes, jsonBytes int
			for i, tr := range tracked(es) {
				e := tr.Event
				require.NoError(t, e.Validate(), "event %d", i)
				var err error
				buf, err = ec.Append(buf[:0], e)
				require.NoError(t, err)
				back, err := ec.Decode(buf)
				require.NoError(t, err)
				require.Equal(t, e, back, "event %d", i)
				binBytes += len(buf)
				jbuf, err = telemetry.Append(jbuf[:0], e)
				require.NoError(t, err)
				jsonBytes += len(jbuf)

				buf, err = tc.Append(buf[:0], tr)
				require.NoError(t, err)
				tback, err := tc.Decode(buf)
				require.NoError(t, err)
				require.Equal(t, tr, tback, "tracked %d", i)

				// As a repartition carries it: keyed, after other bytes.
				buf, err = pc.Append(append(buf[:0], "prefix"...), stream.Pair[string, telemetry.Tracked]{Key: e.CabID, Value: tr})
				require.NoError(t, err)
				p, err := pc.Decode(buf[len("prefix"):])
				require.NoError(t, err)
				require.Equal(t, e.CabID, p.Key)
				require.Equal(t, tr, p.Value)
			}
			t.Logf("%d events: binary %.1f bytes/event, JSON %.1f", len(es), float64(binBytes)/float64(len(es)), float64(jsonBytes)/float64(len(es)))
			require.Less(t, binBytes*2, jsonBytes, "binary not under half the JSON size")
		})
	}
}

// TestBinaryCodecLayout pins layout 1 byte for byte: changing it must
// change the format byte (and this test).
func TestBinaryCodecLayout(t *testing.T) {
	e := telemetry.Event{CabID: "C1", TripID: "T", Time: time.Unix(0, 1_700_000_000_123_456_789).UTC(),
		Lat: 41.5, Lon: -8.25, Status: hired, SpeedKmh: 42.5, OdometerKm: 1000,
		Has: telemetry.HasTripID | telemetry.HasSpeed | telemetry.HasOdometer}
	b, err := telemetry.EventCodec{}.Append(nil, e)
	require.NoError(t, err)
	want := "01" + // format: Event, layout 1
		"43" + // Has: trip, speed, odometer
		"02" + // status hired
		"02" + "01" + // lengths of cab_id and trip_id
		"4331" + "54" + // "C1" "T"
		"15cd853dfe9c9717" + // ts: 1700000000123456789 ns, int64 LE
		"0000000000c04440" + // lat 41.5, float64 bits LE
		"00000000008020c0" + // lon -8.25
		"0000000000404540" + // speed 42.5
		"0000000000408f40" // odometer 1000
	require.Equal(t, want, hex.EncodeToString(b))
	require.Len(t, b, 1+1+1+2+3+8+16+16)

	tb, err := telemetry.TrackedCodec{}.Append(nil, telemetry.Tracked{Event: e, Pickup: true, OutOfOrder: true})
	require.NoError(t, err)
	require.Equal(t, "81"+"09"+want[2:], hex.EncodeToString(tb))
}

func TestBinaryCodecErrors(t *testing.T) {
	e := sampleEvent()
	good, err := telemetry.EventCodec{}.Append(nil, e)
	require.NoError(t, err)
	goodT, err := telemetry.TrackedCodec{}.Append(nil, telemetry.Tracked{Event: e, Jump: true})
	require.NoError(t, err)
	edit := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	// Offsets in good: 0 format, 1 Has, 2 status, 3 cab len, 4 trip len,
	// 5 cab_id (8 bytes), 13 trip_id (4), 17 ts, 25 lat, 33 lon, 41 floats.
	require.Equal(t, 8, int(good[3]))
	require.Equal(t, 4, int(good[4]))
	for _, c := range []struct {
		name   string
		event  []byte // for EventCodec; nil: tracked only
		track  []byte // for TrackedCodec; nil: event only
		is     error
		reason string
	}{
		{"empty", []byte{}, []byte{}, telemetry.ErrMalformed, "binary: empty input"},
		{"unknown format", edit(good, func(b []byte) []byte { b[0] = 0x02; return b }), nil, telemetry.ErrMalformed, "binary: unknown format byte 0x02 (this release reads 0x01, Event, and 0x81, Tracked: written by another release?)"},
		{"JSON", []byte(sample), []byte(sample), telemetry.ErrMalformed, "binary: unknown format byte 0x7b (this release reads 0x01, Event, and 0x81, Tracked: written by another release?)"},
		{"tracked as event", goodT, nil, telemetry.ErrMalformed, "binary: format byte 0x81 is a binary Tracked, not an Event (use TrackedCodec)"},
		{"event as tracked", nil, good, telemetry.ErrMalformed, "binary: format byte 0x01 is a binary Event, not a Tracked (use EventCodec)"},
		{"trailing byte", append(append([]byte(nil), good...), 0), append(append([]byte(nil), goodT...), 0), telemetry.ErrMalformed, "binary: 1 bytes left over"},
		{"unknown Has bit", edit(good, func(b []byte) []byte { b[1] |= 0x80; return append(b[:2], append([]byte{0x01}, b[2:]...)...) }), nil, telemetry.ErrMalformed, "binary: unknown bits 0x80 in Has"},
		{"non-canonical varint", edit(good, func(b []byte) []byte { b[3] |= 0x80; return append(b[:4], append([]byte{0x00}, b[4:]...)...) }), nil, telemetry.ErrMalformed, "binary: non-canonical varint in cab_id length"},
		{"unknown tracker flag", nil, edit(goodT, func(b []byte) []byte { b[1] |= 0x20; return b }), telemetry.ErrMalformed, "binary: unknown tracker flags 0x20"},
		{"cab_id too long", edit(good, func(b []byte) []byte { b[3] = 0x81; b[4] = 0x02; return b }), nil, telemetry.ErrInvalid, "longer than 256 bytes (MaxIDLen)"},
		{"latitude out of range", edit(good, func(b []byte) []byte {
			copy(b[25:], []byte{0, 0, 0, 0, 0, 0, 0x59, 0x40}) // 100.0
			return b
		}), nil, telemetry.ErrInvalid, "latitude out of range [-90, 90]"},
		{"unknown status", edit(good, func(b []byte) []byte { b[2] = 9; return b }), nil, telemetry.ErrInvalid, "unknown status"},
		{"empty cab_id", edit(good, func(b []byte) []byte { b[3] = 0; b[4] = 12; return b }), nil, telemetry.ErrInvalid, "missing or empty"},
		{"time at the end of time", edit(good, func(b []byte) []byte {
			copy(b[17:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
			return b
		}), nil, telemetry.ErrInvalid, "timestamp outside"},
	} {
		t.Run(c.name, func(t *testing.T) {
			check := func(err error) {
				t.Helper()
				var de *telemetry.DecodeError
				require.ErrorAs(t, err, &de)
				require.ErrorIs(t, err, c.is)
				require.Contains(t, de.Reason, c.reason)
			}
			if c.event != nil {
				_, err := telemetry.EventCodec{}.Decode(c.event)
				check(err)
			}
			if c.track != nil {
				_, err := telemetry.TrackedCodec{}.Decode(c.track)
				check(err)
			}
		})
	}

	// Every cut of a valid encoding is malformed, never a shorter event.
	for _, b := range [][]byte{good, goodT} {
		for n := range len(b) {
			_, err1 := telemetry.EventCodec{}.Decode(b[:n])
			_, err2 := telemetry.TrackedCodec{}.Decode(b[:n])
			require.ErrorIs(t, err1, telemetry.ErrMalformed, "cut at %d", n)
			require.ErrorIs(t, err2, telemetry.ErrMalformed, "cut at %d", n)
		}
	}
}

// TestBinaryCodecAppendRefuses: Append writes only events that Validate
// accepts and whose Has bits it knows, and leaves dst as it was otherwise.
func TestBinaryCodecAppendRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*telemetry.Event)
	}{
		{"no cab", func(e *telemetry.Event) { e.CabID = "" }},
		{"zero time", func(e *telemetry.Event) { e.Time = time.Time{} }},
		{"year 3000", func(e *telemetry.Event) { e.Time = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"NaN latitude", func(e *telemetry.Event) { e.Lat = math.NaN() }},
		{"speed too high", func(e *telemetry.Event) { e.SpeedKmh = 2000 }},
		{"unknown status", func(e *telemetry.Event) { e.Status = 7 }},
		{"unknown Has bit", func(e *telemetry.Event) { e.Has |= 1 << 9 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := sampleEvent()
			c.edit(&e)
			dst := []byte("kept")
			out, err := telemetry.EventCodec{}.Append(dst, e)
			require.ErrorIs(t, err, telemetry.ErrEncode)
			require.Equal(t, "kept", string(out))
			out, err = telemetry.TrackedCodec{}.Append(dst, telemetry.Tracked{Event: e})
			require.ErrorIs(t, err, telemetry.ErrEncode)
			require.Equal(t, "kept", string(out))
		})
	}
}

// TestBinaryCodecAllocs: Append into a buffer with room allocates nothing;
// Decode allocates once, the IDs' string.
func TestBinaryCodecAllocs(t *testing.T) {
	e := sampleEvent()
	tr := telemetry.Tracked{Event: e, Pickup: true}
	buf := make([]byte, 0, 256)
	var err error
	require.Zero(t, testing.AllocsPerRun(100, func() { buf, err = telemetry.EventCodec{}.Append(buf[:0], e) }))
	require.NoError(t, err)
	require.EqualValues(t, 1, testing.AllocsPerRun(100, func() { _, err = telemetry.EventCodec{}.Decode(buf) }))
	require.NoError(t, err)
	require.Zero(t, testing.AllocsPerRun(100, func() { buf, err = telemetry.TrackedCodec{}.Append(buf[:0], tr) }))
	require.NoError(t, err)
	require.EqualValues(t, 1, testing.AllocsPerRun(100, func() { _, err = telemetry.TrackedCodec{}.Decode(buf) }))
	require.NoError(t, err)
}

// TestJSONCodecLosesTrackerFlags documents why Tracked needs its own codec:
// Tracked embeds Event, whose MarshalJSON is promoted, so the generic
// stream.JSONCodec writes the event alone and the tracker's flags are lost.
func TestJSONCodecLosesTrackerFlags(t *testing.T) {
	tr := telemetry.Tracked{Event: sampleEvent(), Pickup: true, Jump: true}
	c := stream.JSONCodec[telemetry.Tracked]()
	b, err := c.Append(nil, tr)
	require.NoError(t, err)
	back, err := c.Decode(b)
	require.NoError(t, err)
	require.Equal(t, tr.Event, back.Event)
	require.False(t, back.Pickup || back.Jump, "if encoding/json now keeps the flags, update TrackedCodec's doc")

	b, err = telemetry.TrackedCodec{}.Append(nil, tr)
	require.NoError(t, err)
	back, err = telemetry.TrackedCodec{}.Decode(b)
	require.NoError(t, err)
	require.Equal(t, tr, back)
}
