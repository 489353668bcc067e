// RFC 3339 timestamps without allocation: the parser [Decode] reads ts
// with, the writer every encoder uses, and the civil-calendar arithmetic
// under both.

package telemetry

import "time"

// parseTime parses an RFC 3339 timestamp without allocating and returns it
// in UTC. It returns a reason when the text is not a valid timestamp.
func parseTime(b []byte) (time.Time, string) {
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
