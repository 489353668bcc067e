package telemetry

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// TestDigitRunMatchesByteLoop checks the eight-bytes-at-a-time digit run and
// value against a byte loop, for every byte value in every position and for
// random words.
func TestDigitRunMatchesByteLoop(t *testing.T) {
	check := func(b [8]byte) {
		t.Helper()
		want, val := 0, uint64(0)
		for want < 8 && b[want] >= '0' && b[want] <= '9' {
			val = val*10 + uint64(b[want]-'0')
			want++
		}
		w := uint64(0)
		for i := 7; i >= 0; i-- {
			w = w<<8 | uint64(b[i])
		}
		if got := digitRun(w); got != want {
			t.Fatalf("digitRun(%q) = %d, want %d", b[:], got, want)
		}
		if want > 0 {
			if got := digitsValue(w, want); got != val {
				t.Fatalf("digitsValue(%q, %d) = %d, want %d", b[:], want, got, val)
			}
		}
	}
	for pos := range 8 {
		for c := range 256 {
			b := [8]byte{'9', '8', '7', '6', '5', '4', '3', '2'}
			b[pos] = byte(c)
			check(b)
			for i := pos + 1; i < 8; i++ {
				b[i] = 0xff // a carry out of a later byte changes nothing
			}
			check(b)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		var b [8]byte
		for i := range b {
			if r.IntN(4) == 0 {
				b[i] = byte(r.IntN(256))
			} else {
				b[i] = byte('0' + r.IntN(10))
			}
		}
		check(b)
	}
}

// TestShortNumberMatchesNumber checks that the short-decimal fast path
// gives strconv's and longNumber's value and end, bit for bit, or declines.
func TestShortNumberMatchesNumber(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	digits := func(n int) string {
		var sb strings.Builder
		for range n {
			sb.WriteByte(byte('0' + r.IntN(10)))
		}
		return sb.String()
	}
	cases := []string{"0", "-0", "0.0", "-0.5", "41.1579", "-8.6291", "270", "123456.7", "1234567.1234567",
		"12345678", "0.12345678", "01", "1.", "1.e5", "1e5", "1.5E-3", "-", "9999999.9999999", "0.0000001"}
	for range 100000 {
		s := ""
		if r.IntN(3) == 0 {
			s = "-"
		}
		s += digits(1 + r.IntN(9))
		if r.IntN(4) != 0 {
			s += "." + digits(r.IntN(9))
		}
		if r.IntN(10) == 0 {
			s += "e" + strconv.Itoa(r.IntN(40)-20)
		}
		cases = append(cases, s)
	}
	accepted := 0
	for _, c := range cases {
		data := []byte(c + `,"x":12345678901234567890}`)
		f, end, ok := shortNumber(data, 0)
		if !ok {
			continue
		}
		want, err := strconv.ParseFloat(c, 64)
		if err != nil || end != len(c) || math.Float64bits(f) != math.Float64bits(want) {
			t.Fatalf("shortNumber(%q) = %v, end %d; want %v, end %d (%v)", c, f, end, want, len(c), err)
		}
		p := scanner{data: data}
		v, _, err := p.longNumber()
		if err != nil || p.i != end || math.Float64bits(v) != math.Float64bits(f) {
			t.Fatalf("longNumber(%q) = %v, end %d, %v; shortNumber %v, end %d", c, v, p.i, err, f, end)
		}
		accepted++
	}
	if accepted < len(cases)/4 {
		t.Errorf("shortNumber took %d of %d numbers", accepted, len(cases))
	}
	// The fast path must take the usual values, or it is no fast path.
	for _, c := range []string{"41.1579", "-8.6291", "270", "123456.7", "0.5", "-0"} {
		if _, _, ok := shortNumber([]byte(c+`,"padding-to-17-bytes"`), 0); !ok {
			t.Errorf("shortNumber(%q) declined", c)
		}
	}
	// Near the end of the data: read from a padded copy, never past the end.
	for _, c := range []string{"41.1579}", "41.1579", "-8", "1234567.1234567", "-1234567.1234567"} {
		data := []byte(c)
		f, end, ok := shortNumber(data[:len(data):len(data)], 0)
		want, _ := strconv.ParseFloat(strings.TrimSuffix(c, "}"), 64)
		if !ok || f != want || end != len(strings.TrimSuffix(c, "}")) {
			t.Errorf("shortNumber(%q) at the end = %v, end %d, %v; want %v", c, f, end, ok, want)
		}
	}
	for _, c := range []string{"41.", "-", "1.5e", "0012"} {
		if _, _, ok := shortNumber([]byte(c), 0); ok {
			t.Errorf("shortNumber(%q) at the end took it", c)
		}
	}
}
