// Tests of the decoder's fast path against the general decoder: what the
// fast path accepts, the general decoder must decode to the same event.

package telemetry_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/telemetry"
)

// requireSameWays decodes data both ways and fails when the fast path
// accepts what the general decoder refuses or decodes differently. It
// reports whether the fast path took data.
func requireSameWays(t testing.TB, data []byte) (taken bool) {
	t.Helper()
	for _, d := range []*telemetry.Decoder{nil, {}} {
		fast, ok, general, err := telemetry.DecodeBothWays(data, d)
		if !ok {
			continue
		}
		taken = true
		require.NoError(t, err, "the fast path took %q, which the general decoder refuses", data)
		require.Equal(t, general, fast, "%q", data)
	}
	return taken
}

// TestDecodeCompactRealData: every event of the simulator and of the Porto
// sample, as Append writes it, takes the fast path, and decodes as the
// general decoder decodes it.
func TestDecodeCompactRealData(t *testing.T) {
	for name, es := range map[string][]telemetry.Event{"sim": simEvents(t, 20_000), "porto": portoEvents(t)} {
		t.Run(name, func(t *testing.T) {
			for _, e := range es {
				b, err := telemetry.Append(nil, e)
				require.NoError(t, err)
				require.True(t, requireSameWays(t, b), "the fast path declined %s", b)
			}
		})
	}
}

// TestDecodeCompactMatchesGeneral generates events of every shape the
// encoder writes and many it does not (numbers of any form, escapes, other
// key orders, whitespace, unknown keys, values out of range), and damages
// them byte by byte; the fast path must agree with the general decoder on
// all of them, and take the plain ones.
func TestDecodeCompactMatchesGeneral(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	pick := func(s ...string) string { return s[r.IntN(len(s))] }
	// The range of each numeric field, for values that are mostly valid.
	ranges := map[string][2]float64{"lat": {-90, 90}, "lon": {-180, 180}, "speed_kmh": {0, 1000}, "heading_deg": {0, 360},
		"engine_temp_c": {-100, 400}, "fuel_pct": {0, 100}, "battery_v": {0, 1500}, "odometer_km": {0, 1e7}}
	number := func(k string) string {
		if r.IntN(8) != 0 { // a plain one, as Append writes
			lo, hi := ranges[k][0], ranges[k][1]
			return strconv.FormatFloat(lo+(hi-lo)*r.Float64(), 'f', r.IntN(7), 64)
		}
		switch r.IntN(6) {
		case 0:
			return strconv.Itoa(r.IntN(2000) - 500)
		case 1:
			return strconv.FormatFloat(r.Float64()*400-100, 'f', r.IntN(9), 64)
		case 2:
			return strconv.FormatFloat(r.NormFloat64()*1e3, 'g', -1, 64)
		case 3:
			return pick("0", "-0", "0.0", "00", "01", "1.", ".5", "-", "1e2", "1E-2", "1.5e+1", "12345678",
				"0.12345678", "1234567.1234567", "90", "-90.0000001", "180", "360", "1000", "1e8", "null", "true", `"1"`)
		case 4:
			return strconv.FormatFloat(float64(r.IntN(100000000))/float64([]int{1, 10, 100, 1000}[r.IntN(4)]), 'f', -1, 64)
		}
		return fmt.Sprintf("%d.%0*d", r.IntN(200)-100, 1+r.IntN(8), r.IntN(10000000))
	}
	str := func() string {
		if r.IntN(8) != 0 {
			return fmt.Sprintf(`"CAB-%0*d"`, r.IntN(5), r.IntN(1000))
		}
		return pick(`"CAB-0042"`, `""`, `"T-77"`, `"C\u0041B"`, `"é"`, `"a\"b"`, `"x\\"`, `"`+strings.Repeat("x", 256)+`"`,
			`"`+strings.Repeat("y", 257)+`"`, "\"tab\there\"", `null`, `7`)
	}
	ts := func() string {
		if r.IntN(8) != 0 {
			return fmt.Sprintf(`"20%02d-%02d-%02dT%02d:%02d:%02d.%0*dZ"`, r.IntN(100), 1+r.IntN(12), 1+r.IntN(28),
				r.IntN(24), r.IntN(60), r.IntN(60), 1+r.IntN(9), r.IntN(1000))
		}
		return pick(`"2026-11-25T10:00:00.123Z"`, `"2026-11-25T10:00:00Z"`, `"2026-11-25t10:00:00.5+01:30"`,
			`"2026-02-30T10:00:00Z"`, `"2262-04-11T23:47:16.854775807Z"`, `"1677-09-21T00:12:43.145224193Z"`,
			`"2026-11-25T10:00:00.1234567891Z"`, `"2026-11-25 10:00:00Z"`, `"x"`, `null`, `"2026-11-25T10:00:00\u005a"`)
	}
	values := map[string]func() string{
		"cab_id": str, "trip_id": str, "ts": ts, "status": func() string {
			if r.IntN(8) != 0 {
				return pick(`"hired"`, `"available"`, `"offline"`)
			}
			return pick(`"hired"`, `"available"`, `"offline"`, `"idle"`, `null`, `"Hired"`, `""`)
		},
	}
	keys := []string{"cab_id", "trip_id", "ts", "lat", "lon", "speed_kmh", "heading_deg", "status",
		"engine_temp_c", "fuel_pct", "battery_v", "odometer_km"}
	event := func() string {
		var sb strings.Builder
		plain := r.IntN(2) == 0 // no whitespace, unknown keys or repeats
		ws := func(plainForm string, others ...string) string {
			if plain {
				return plainForm
			}
			return pick(append(others, plainForm)...)
		}
		sb.WriteString(ws("{", " {", "{\n"))
		order := keys
		if !plain && r.IntN(4) == 0 {
			order = append([]string(nil), keys...)
			r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		n := 0
		for _, k := range order {
			required := k == "cab_id" || k == "ts" || k == "lat" || k == "lon"
			if !required && r.IntN(3) == 0 || required && r.IntN(40) == 0 {
				continue
			}
			if n > 0 {
				sb.WriteString(ws(",", ", ", " ,"))
			}
			n++
			if !plain && r.IntN(10) == 0 {
				sb.WriteString(`"x":` + pick("1", `"y"`, "[1,{}]", "null") + ",")
			}
			sb.WriteString(`"` + k + `"` + ws(":", " :", ": ", "\t:\n"))
			if v := values[k]; v != nil {
				sb.WriteString(v())
			} else {
				sb.WriteString(number(k))
			}
			if !plain && r.IntN(20) == 0 {
				sb.WriteString(`,"` + k + `":1`)
			}
		}
		sb.WriteString(ws("}", "} ", "}x", "", "}}"))
		return sb.String()
	}
	taken := 0
	const n = 100_000
	for range n {
		s := event()
		if requireSameWays(t, []byte(s)) {

			taken++
		}
		b := []byte(s)
		b[r.IntN(len(b))] = (`"\,}{ 09-.en:` + "\x00\x80\xff")[r.IntN(16)]
		requireSameWays(t, b)
		requireSameWays(t, b[:r.IntN(len(b))])
	}
	require.Greater(t, taken, n/50, "the fast path took %d of %d generated events", taken, n)

	// Every byte at every position of the sample, and every length of it.
	for i := range len(sample) {
		for c := range 256 {
			b := []byte(sample)
			b[i] = byte(c)
			requireSameWays(t, b)
		}
		requireSameWays(t, []byte(sample[:i]))
	}
}

// TestDecodeCompactTakesAppend: events as Append writes them, with values
// at the ends of their ranges and IDs of every length up to MaxIDLen, take
// the fast path (or it would be no fast path) and decode to themselves.
func TestDecodeCompactTakesAppend(t *testing.T) {
	e := sampleEvent()
	for i, v := range []float64{0, -90, 90, 0.5, -0.5, 41.148639, -8.585676, 89.9999999} {
		e.Lat, e.Lon = v, -v
		e.OdometerKm = []float64{0, 9999999, 1234567.1234567, 9999999.9, 0.001}[i%5]
		e.CabID = strings.Repeat("C", 1+i*15) // both IDs up to 106 bytes: the fast path takes up to 480 in all
		e.TripID = strings.Repeat("T", i*15)
		b, err := telemetry.Append(nil, e)
		require.NoError(t, err)
		require.True(t, requireSameWays(t, b), "the fast path declined %s", b)
		got, err := telemetry.Decode(b)
		require.NoError(t, err)
		require.Equal(t, e, got)
	}
}

func FuzzDecodeCompact(f *testing.F) {
	f.Add([]byte(sample))
	for _, e := range simEvents(f, 20) {
		b, err := telemetry.Append(nil, e)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte(`{"cab_id":"C","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`))
	f.Add([]byte(`{"cab_id":"C","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2,"lon":3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		requireSameWays(t, data)
	})
}

// TestDecoderReusesItsBuffer: a Decoder copies each event into a buffer it
// keeps and clears only the bytes after the event's end; what an earlier,
// longer event left there changes nothing. Each prefix of 50 events (and the
// prefix closed with a brace) is decoded right after the whole event, whose
// rest then lies in the buffer past the prefix's end, and must decode as a
// fresh Decoder decodes it: the same event, or the same error.
func TestDecoderReusesItsBuffer(t *testing.T) {
	var reused telemetry.Decoder
	for _, e := range simEvents(t, 50) {
		b, err := telemetry.Append(nil, e)
		require.NoError(t, err)
		for n := 1; n <= len(b); n++ {
			for _, in := range [][]byte{b[:n], append(b[:n:n], '}')} {
				_, err := reused.Decode(b)
				require.NoError(t, err)
				got, gotErr := reused.Decode(in)
				want, wantErr := new(telemetry.Decoder).Decode(in)
				require.Equal(t, wantErr, gotErr, "%s", in)
				require.Equal(t, want, got, "%s", in)
			}
		}
	}
}

// TestDecodeCompactStatusWords: the fast path matches a status as one of
// three whole words with the closing quote. Each takes it, wherever the
// word ends in the data's words and at the data's end; a word cut short,
// longer, in another case, escaped or unknown does not, and the two ways
// agree on every one, and on every cut of the event.
func TestDecodeCompactStatusWords(t *testing.T) {
	const head = `{"cab_id":"C","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2`
	padded := func(pad int) string { return strings.Replace(head, `"C"`, `"C`+strings.Repeat("-", pad)+`"`, 1) }
	for _, status := range []string{"available", "hired", "offline"} {
		want, err := telemetry.ParseStatus(status)
		require.NoError(t, err)
		for pad := range 9 { // the word at every offset in the eight-byte words
			for _, tail := range []string{"}", `,"engine_temp_c":90}`} {
				data := []byte(padded(pad) + `,"status":"` + status + `"` + tail)
				require.True(t, requireSameWays(t, data), "the fast path declined %s", data)
				e, err := new(telemetry.Decoder).Decode(data)
				require.NoError(t, err)
				require.Equal(t, want, e.Status, "%s", data)
				for n := range len(data) {
					requireSameWays(t, data[:n])
				}
			}
		}
		for _, other := range []string{status[:len(status)-1], status[:len(status)-1] + "x", status + "d", status + " ",
			strings.ToUpper(status[:1]) + status[1:], `\u00` + strconv.FormatInt(int64(status[0]), 16) + status[1:], status + `\"`} {
			data := []byte(head + `,"status":"` + other + `"}`)
			require.False(t, requireSameWays(t, data), "the fast path took %s", data)
		}
		data := []byte(head + `,"status":"` + status + `x}`) // no closing quote
		require.False(t, requireSameWays(t, data), "the fast path took %s", data)
	}
	for _, other := range []string{`""`, `"idle"`, `"availablee"`, `"offlin"`, `"hired`, `null`, `1`} {
		data := []byte(head + `,"status":` + other + `}`)
		require.False(t, requireSameWays(t, data), "the fast path took %s", data)
	}
}
