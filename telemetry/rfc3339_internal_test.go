package telemetry

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestParseTimeMatchesByteParser holds parseTime, which reads the date and
// time in words, to the byte-by-byte parser it replaced (parseTimeRef,
// below as it was): the same time or the same refusal for random
// timestamps of every shape, every byte value at every position of a few,
// and random damage.
func TestParseTimeMatchesByteParser(t *testing.T) {
	check := func(s string) {
		t.Helper()
		got, gotReason := parseTime([]byte(s))
		want, wantReason := parseTimeRef([]byte(s))
		if got != want || gotReason != wantReason {
			t.Fatalf("parseTime(%q) = %v, %q; the byte parser gives %v, %q", s, got, gotReason, want, wantReason)
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	random := func() string {
		s := fmt.Sprintf("%04d-%02d-%02d%c%02d:%02d:%02d", r.IntN(10000), r.IntN(14), r.IntN(33),
			"Tt "[r.IntN(3)], r.IntN(26), r.IntN(62), r.IntN(62))
		if n := r.IntN(13); n > 0 {
			s += "."
			for range n - 1 {
				s += string(rune('0' + r.IntN(10)))
			}
		}
		switch r.IntN(4) {
		case 0:
			s += "Z"
		case 1:
			s += "z"
		default:
			s += fmt.Sprintf("%c%02d:%02d", "+-"[r.IntN(2)], r.IntN(25), r.IntN(61))
		}
		return s
	}
	accepted := 0
	for range 300000 {
		s := random()
		check(s)
		if _, reason := parseTime([]byte(s)); reason == "" {
			accepted++
		}
		b := []byte(s)
		switch r.IntN(3) {
		case 0:
			b[r.IntN(len(b))] = byte(r.IntN(256))
		case 1:
			b = b[:r.IntN(len(b))]
		default:
			i := r.IntN(len(b) + 1)
			b = append(b[:i:i], append([]byte{"0123456789-:.TZ+"[r.IntN(16)]}, b[i:]...)...)
		}
		check(string(b))
	}
	if accepted < 5000 {
		t.Fatalf("only %d random timestamps accepted: the test does not exercise the parser", accepted)
	}
	for _, s := range []string{"2026-11-25T10:00:00.123Z", "1999-12-31t23:59:59+01:30", "2262-04-11T23:47:16.854775806Z",
		"2024-02-29T00:00:00Z", "1677-09-21T00:12:43.145224193Z"} {
		for i := range len(s) + 1 {
			for c := range 256 {
				b := []byte(s)
				if i < len(b) {
					b[i] = byte(c)
				} else {
					b = append(b, byte(c))
				}
				check(string(b))
			}
		}
	}
}

// parseTimeRef is parseTime as it was before it read words (commit be80c69).
func parseTimeRef(b []byte) (time.Time, string) {
	const bad = "not an RFC 3339 timestamp"
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't') ||
		b[13] != ':' || b[16] != ':' {
		return time.Time{}, bad
	}
	num := func(s []byte) int {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(b[0:4]), num(b[5:7]), num(b[8:10])
	hour, minute, sec := num(b[11:13]), num(b[14:16]), num(b[17:19])
	if year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 ||
		minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, bad
	}
	if day > daysIn(year, month) {
		return time.Time{}, bad
	}
	i := 19
	nsec := 0
	if b[i] == '.' {
		i++
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if n < 9 {
				nsec = nsec*10 + int(b[i]-'0')
			}
			n++
			i++
		}
		if n == 0 {
			return time.Time{}, bad
		}
		for ; n < 9; n++ {
			nsec *= 10
		}
	}
	if i >= len(b) {
		return time.Time{}, bad
	}
	off := 0
	switch b[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(b)-i != 6 || b[i+3] != ':' {
			return time.Time{}, bad
		}
		oh, om := num(b[i+1:i+3]), num(b[i+4:i+6])
		if oh < 0 || oh > 23 || om < 0 || om > 59 {
			return time.Time{}, bad
		}
		off = (oh*60 + om) * 60
		if b[i] == '-' {
			off = -off
		}
		i += 6
	default:
		return time.Time{}, bad
	}
	if i != len(b) {
		return time.Time{}, bad
	}
	unix := daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+sec-off)
	if unix < minUnix || unix == minUnix && nsec < minUnixNsec ||
		unix > maxUnix || unix == maxUnix && nsec > maxUnixNsec {
		return time.Time{}, timeRangeReason
	}
	return time.Unix(unix, int64(nsec)).UTC(), ""
}
