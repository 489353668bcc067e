// RFC 3339 timestamps without allocation: the parser [Decode] reads ts
// with, the writer every encoder uses, and the civil-calendar arithmetic
// under both.

package telemetry

import (
	"encoding/binary"
	"time"
)

// timeMin is the length of the shortest timestamp parseTime takes,
// 2006-01-02T15:04:05Z; it checks each of those bytes.
const timeMin = 20

// parseTime parses an RFC 3339 timestamp without allocating and returns it
// in UTC. It returns a reason when the text is not a valid timestamp.
func parseTime(b []byte) (time.Time, string) {
	const bad = "not an RFC 3339 timestamp"
	if len(b) < timeMin {
		return time.Time{}, bad
	}
	// "YYYY-MM-", "DDTHH:MM" and ":SS" in three words: the separators
	// compared under a mask, the digits checked and paired at once (a byte
	// of 0xfa or more, whose carry in nonDigits could flag the next, is
	// refused itself).
	w0, w1, w2 := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:]), load8(b, 16)
	const (
		sepMask0, sep0 = 0xff<<56 | 0xff<<32, '-'<<56 | '-'<<32
		sepMask1, sep1 = 0xff<<40 | 0xdf<<16, ':'<<40 | 'T'<<16 // 0xdf: 't' as 'T'
		digits0        = 0x00f0f000_f0f0f0f0                    // the high nibbles nonDigits sets
		digits1        = 0xf0f000f0_f000f0f0
		digits2        = 0xf0f000
	)
	if w0&sepMask0 != sep0 || w1&sepMask1 != sep1 || byte(w2) != ':' ||
		nonDigits(w0)&digits0|nonDigits(w1)&digits1|nonDigits(w2)&digits2 != 0 {
		return time.Time{}, bad
	}
	// Byte k of a pair word is ten times digit k plus digit k+1.
	p0, p1, p2 := digitPairs(w0), digitPairs(w1), digitPairs(w2)
	year := int(byte(p0))*100 + int(byte(p0>>16))
	month, day := int(byte(p0>>40)), int(byte(p1))
	hour, minute, sec := int(byte(p1>>24)), int(byte(p1>>48)), int(byte(p2>>8))
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 ||
		day > daysIn(year, month) {
		return time.Time{}, bad
	}
	i := 19
	nsec := 0
	if b[i] == '.' {
		i++
		n := 0
		if w := load8(b, i); digitRun(w) < 8 {
			// Up to seven digits, as writers of milliseconds to
			// microseconds use, in one step.
			n = digitRun(w)
			if n > 0 {
				nsec = int(digitsValue(w, n))
			}
			i += n
		}
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
		if n < 9 {
			nsec *= int(pow10u[9-n])
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
		oh, om := twoDigits(b[i+1], b[i+2]), twoDigits(b[i+4], b[i+5])
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

// twoDigits returns the value of the digits hi and lo, or -1.
func twoDigits(hi, lo byte) int {
	if hi < '0' || hi > '9' || lo < '0' || lo > '9' {
		return -1
	}
	return int(hi-'0')*10 + int(lo-'0')
}

// digitPairs returns w with byte k replaced by ten times the digit in byte
// k plus the digit in byte k+1, for the bytes that are digits (the others
// give what they give, without carrying into their neighbours).
func digitPairs(w uint64) uint64 {
	v := w & 0x0f0f0f0f0f0f0f0f
	return v*10 + v>>8
}

// The range of event times (minTime, maxTime) in Unix seconds and
// nanoseconds: math.MinInt64+1 and math.MaxInt64-1 nanoseconds.
const (
	minUnix     = -9223372037
	minUnixNsec = 145224193
	maxUnix     = 9223372036
	maxUnixNsec = 854775806
)

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian
// date (H. Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int64) (y, m, d int) {
	z += 719468
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	y = int(yoe + era*400)
	if m <= 2 {
		y++
	}
	return y, m, d
}

// Unix seconds of 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the times
// RFC 3339 can write.
const (
	minEncUnix = -62167219200
	maxEncUnix = 253402300799
)

// appendTime appends t in UTC as RFC 3339 with nanoseconds, trailing zeros
// of the fraction trimmed (the layout of time.RFC3339Nano), without the
// cost of time.Time.AppendFormat.
func appendTime(dst []byte, t time.Time) []byte {
	unix := t.Unix()
	days, secs := unix/86400, unix%86400
	if secs < 0 {
		days--
		secs += 86400
	}
	y, m, d := civilFromDays(days)
	dst = append(dst,
		byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+secs/36000), byte('0'+secs/3600%10), ':',
		byte('0'+secs%3600/600), byte('0'+secs%3600/60%10), ':',
		byte('0'+secs%60/10), byte('0'+secs%10))
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		dst = append(dst, frac[:n]...)
	}
	return append(dst, 'Z')
}
