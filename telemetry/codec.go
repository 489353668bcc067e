package telemetry

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxDepth bounds the nesting of skipped unknown values.
const maxDepth = 512

// Decode parses one JSON event and validates it. It never retains data.
//
// Decode allocates once per event, for the cab_id and trip_id strings; use
// a [Decoder] to intern them instead. Errors are [*DecodeError] values
// wrapping [ErrMalformed] or [ErrInvalid].
func Decode(data []byte) (Event, error) {
	var e Event
	err := decode(data, &e, nil)
	return e, err
}

// UnmarshalJSON implements [encoding/json.Unmarshaler] with [Decode]. A JSON
// null leaves e unchanged, as encoding/json expects.
func (e *Event) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var v Event
	if err := decode(data, &v, nil); err != nil {
		return err
	}
	*e = v
	return nil
}

// MarshalJSON implements [encoding/json.Marshaler]: it validates e and
// returns the [Append] encoding.
func (e Event) MarshalJSON() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return appendEvent(make([]byte, 0, 256), e), nil
}

// Decoder decodes events like [Decode] but interns cab_id and trip_id, so
// a steady stream from a known fleet decodes without allocating. The zero
// value is ready to use. A Decoder is not safe for concurrent use.
type Decoder struct {
	// MaxIDs bounds the intern table; when full it is cleared. Zero means
	// 65536.
	MaxIDs int

	ids map[string]string
}

// Decode parses and validates one event, like the package-level [Decode].
func (d *Decoder) Decode(data []byte) (Event, error) {
	var e Event
	err := decode(data, &e, d)
	return e, err
}

func (d *Decoder) intern(b []byte) string {
	if s, ok := d.ids[string(b)]; ok {
		return s
	}
	limit := d.MaxIDs
	if limit <= 0 {
		limit = 1 << 16
	}
	if d.ids == nil {
		d.ids = make(map[string]string)
	} else if len(d.ids) >= limit {
		clear(d.ids)
	}
	s := string(b)
	d.ids[s] = s
	return s
}

type parser struct {
	data []byte
	i    int

	// IDs as offsets into data, or as strings when they held escapes.
	// Offsets rather than slices keep data and the parser off the heap.
	cab, trip span
}

type span struct {
	start, end int
	esc        bool
}

func (p *parser) malformed(reason string) error {
	return &DecodeError{Reason: reason, Offset: p.i, Err: ErrMalformed}
}

func invalid(f fieldID, reason string, off int) error {
	return &DecodeError{Field: fieldNames[f], Reason: reason, Offset: off, Err: ErrInvalid}
}

func (p *parser) ws() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) eof() error { return p.malformed("unexpected end of input") }

// colon consumes the ':' after an object key and the whitespace around it.
func (p *parser) colon() error {
	p.ws()
	if p.i >= len(p.data) {
		return p.eof()
	}
	if p.data[p.i] != ':' {
		return p.malformed("expected ':' after field name")
	}
	p.i++
	p.ws()
	return nil
}

func decode(data []byte, e *Event, d *Decoder) error {
	p := parser{data: data}
	var seen uint32

	p.ws()
	if p.i >= len(data) {
		return p.malformed("empty input")
	}
	if data[p.i] != '{' {
		return p.malformed("not a JSON object")
	}
	p.i++
	p.ws()
	if p.i < len(data) && data[p.i] == '}' {
		p.i++
	} else {
		for {
			if p.i >= len(data) {
				return p.eof()
			}
			if data[p.i] != '"' {
				return p.malformed("expected a field name")
			}
			keyStart := p.i + 1
			esc, err := p.scanString()
			if err != nil {
				return err
			}
			key := data[keyStart : p.i-1]
			var id fieldID
			if esc {
				var kb [32]byte
				id = lookupField(appendUnescaped(kb[:0], key))
			} else {
				id = lookupField(key)
			}
			if err := p.colon(); err != nil {
				return err
			}
			if p.i >= len(data) {
				return p.eof()
			}
			if id == fNone {
				if err := p.skip(0); err != nil {
					return err
				}
			} else {
				if seen&(1<<id) != 0 {
					return invalid(id, "duplicate field", keyStart-1)
				}
				seen |= 1 << id
				if err := p.field(id, e); err != nil {
					return err
				}
			}
			p.ws()
			if p.i >= len(data) {
				return p.eof()
			}
			c := data[p.i]
			if c == '}' {
				p.i++
				break
			}
			if c != ',' {
				return p.malformed("expected ',' or '}' after value")
			}
			p.i++
			p.ws()
		}
	}
	p.ws()
	if p.i != len(data) {
		return p.malformed("trailing data after the object")
	}
	switch {
	case seen&(1<<fCabID) == 0:
		return invalid(fCabID, "missing or empty", -1)
	case seen&(1<<fTS) == 0:
		return invalid(fTS, "missing", -1)
	case seen&(1<<fLat) == 0:
		return invalid(fLat, "missing", -1)
	case seen&(1<<fLon) == 0:
		return invalid(fLon, "missing", -1)
	}
	switch {
	case p.cab.esc || p.trip.esc:
		// Escaped IDs were already stored by field.
		if !p.cab.esc {
			e.CabID = string(data[p.cab.start:p.cab.end])
		}
		if !p.trip.esc {
			e.TripID = string(data[p.trip.start:p.trip.end])
		}
	case d != nil:
		e.CabID = d.intern(data[p.cab.start:p.cab.end])
		if e.Has&HasTripID != 0 {
			e.TripID = d.intern(data[p.trip.start:p.trip.end])
		}
	default:
		// One allocation for both IDs.
		cab, trip := data[p.cab.start:p.cab.end], data[p.trip.start:p.trip.end]
		var b strings.Builder
		b.Grow(len(cab) + len(trip))
		b.Write(cab)
		b.Write(trip)
		s := b.String()
		e.CabID, e.TripID = s[:len(cab)], s[len(cab):]
	}
	return nil
}

// field decodes the value of a known field at p.i.
func (p *parser) field(id fieldID, e *Event) error {
	start := p.i
	switch id {
	case fCabID, fTripID, fTS, fStatus:
		optional := id == fTripID || id == fStatus
		if p.data[p.i] != '"' {
			return p.wrongType(id, "a string", optional)
		}
		esc, err := p.scanString()
		if err != nil {
			return err
		}
		raw := p.data[start+1 : p.i-1]
		switch id {
		case fCabID, fTripID:
			sp := span{start: start + 1, end: p.i - 1, esc: esc}
			var s string
			n := len(raw)
			if esc {
				s = string(appendUnescaped(nil, raw))
				n = len(s)
			}
			if n > MaxIDLen {
				return invalid(id, idTooLong, start)
			}
			if id == fCabID {
				if sp.start == sp.end || (esc && s == "") {
					return invalid(id, "missing or empty", start)
				}
				p.cab, e.CabID = sp, s
			} else {
				p.trip, e.TripID = sp, s
				e.Has |= HasTripID
			}
		case fTS:
			ts := raw
			if esc {
				var tb [64]byte
				ts = appendUnescaped(tb[:0], raw)
			}
			t, reason := parseTime(ts)
			if reason != "" {
				return invalid(id, reason, start)
			}
			e.Time = t
		case fStatus:
			st := raw
			if esc {
				var tb [16]byte
				st = appendUnescaped(tb[:0], raw)
			}
			switch string(st) {
			case "available":
				e.Status = StatusAvailable
			case "hired":
				e.Status = StatusHired
			case "offline":
				e.Status = StatusOffline
			default:
				return invalid(id, "unknown status", start)
			}
		}
		return nil
	}

	c := p.data[p.i]
	if c != '-' && (c < '0' || c > '9') {
		return p.wrongType(id, "a number", id != fLat && id != fLon)
	}
	v, rangeErr, err := p.number()
	if err != nil {
		return err
	}
	if rangeErr {
		return invalid(id, "number out of range", start)
	}
	if r := checkFloat(id, v); r != "" {
		return invalid(id, r, start)
	}
	switch id {
	case fLat:
		e.Lat = v
	case fLon:
		e.Lon = v
	case fSpeed:
		e.SpeedKmh, e.Has = v, e.Has|HasSpeed
	case fHeading:
		e.HeadingDeg, e.Has = v, e.Has|HasHeading
	case fEngineTemp:
		e.EngineTempC, e.Has = v, e.Has|HasEngineTemp
	case fFuel:
		e.FuelPct, e.Has = v, e.Has|HasFuel
	case fBattery:
		e.BatteryV, e.Has = v, e.Has|HasBattery
	case fOdometer:
		e.OdometerKm, e.Has = v, e.Has|HasOdometer
	}
	return nil
}

// wrongType skips the value at p.i and reports it as having the wrong type,
// unless it is a null for an optional field, which means absent. Syntax
// errors in the value win over the type error.
func (p *parser) wrongType(id fieldID, want string, optional bool) error {
	start := p.i
	got := jsonType(p.data[p.i])
	if err := p.skip(0); err != nil {
		return err
	}
	if got == "null" {
		if optional {
			return nil
		}
		return invalid(id, "null for a required field", start)
	}
	return invalid(id, "expected "+want+", got "+got, start)
}

func jsonType(c byte) string {
	switch c {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func lookupField(k []byte) fieldID {
	switch string(k) {
	case "cab_id":
		return fCabID
	case "trip_id":
		return fTripID
	case "ts":
		return fTS
	case "lat":
		return fLat
	case "lon":
		return fLon
	case "speed_kmh":
		return fSpeed
	case "heading_deg":
		return fHeading
	case "status":
		return fStatus
	case "engine_temp_c":
		return fEngineTemp
	case "fuel_pct":
		return fFuel
	case "battery_v":
		return fBattery
	case "odometer_km":
		return fOdometer
	}
	return fNone
}

// scanString moves p.i from an opening quote to just past the closing one,
// checking escapes, control characters and UTF-8. It reports whether the
// string holds escapes.
func (p *parser) scanString() (esc bool, err error) {
	data := p.data
	i := p.i + 1
	for {
		// Fast path over plain ASCII, eight bytes at a time: flag bytes
		// below 0x20, quotes, backslashes and non-ASCII. The lowest flag
		// of each test is exact, which is all the byte loop below needs.
		for i+8 <= len(data) {
			v := binary.LittleEndian.Uint64(data[i:])
			m := (v-swarLo*0x20)&^v | hasZero(v^(swarLo*'"')) | hasZero(v^(swarLo*'\\')) | v
			if m &= swarHi; m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		for i < len(data) {
			c := data[i]
			if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
				break
			}
			i++
		}
		if i >= len(data) {
			p.i = i
			return esc, p.eof()
		}
		switch c := data[i]; {
		case c == '"':
			p.i = i + 1
			return esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(data) {
				p.i = i + 1
				return esc, p.eof()
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(data) {
					p.i = len(data)
					return esc, p.eof()
				}
				for _, h := range data[i+2 : i+6] {
					if unhex(h) < 0 {
						p.i = i
						return esc, p.malformed(`invalid \u escape`)
					}
				}
				i += 6
			default:
				p.i = i
				return esc, p.malformed("invalid escape in string")
			}
		case c < 0x20:
			p.i = i
			return esc, p.malformed("control character in string")
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				p.i = i
				return esc, p.malformed("invalid UTF-8 in string")
			}
			i += size
		}
	}
}

const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// hasZero flags the zero bytes of v (exactly for the lowest one).
func hasZero(v uint64) uint64 { return (v - swarLo) &^ v & swarHi }

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func hex4(b []byte) rune {
	return rune(unhex(b[0])<<12 | unhex(b[1])<<8 | unhex(b[2])<<4 | unhex(b[3]))
}

// appendUnescaped appends the unescaped form of raw, the contents of a
// string already checked by scanString. Lone surrogates become U+FFFD, as
// with encoding/json.
func appendUnescaped(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[i+2:])
			i += 6
			if utf8.RuneLen(r) < 0 { // a surrogate half
				r2 := utf8.RuneError
				if r < 0xdc00 && i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if lo := hex4(raw[i+2:]); lo >= 0xdc00 && lo < 0xe000 {
						r2 = (r-0xd800)<<10 | (lo - 0xdc00) + 0x10000
						i += 6
					}
				}
				r = r2
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}

// skip moves p.i past the JSON value at p.i, checking its syntax.
func (p *parser) skip(depth int) error {
	if depth > maxDepth {
		return p.malformed("nesting too deep")
	}
	data := p.data
	if p.i >= len(data) {
		return p.eof()
	}
	switch c := data[p.i]; c {
	case '"':
		_, err := p.scanString()
		return err
	case '{', '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		p.i++
		p.ws()
		if p.i < len(data) && data[p.i] == closer {
			p.i++
			return nil
		}
		for {
			if c == '{' {
				if p.i >= len(data) {
					return p.eof()
				}
				if data[p.i] != '"' {
					return p.malformed("expected a field name")
				}
				if _, err := p.scanString(); err != nil {
					return err
				}
				if err := p.colon(); err != nil {
					return err
				}
			}
			if err := p.skip(depth + 1); err != nil {
				return err
			}
			p.ws()
			if p.i >= len(data) {
				return p.eof()
			}
			switch data[p.i] {
			case ',':
				p.i++
				p.ws()
			case closer:
				p.i++
				return nil
			default:
				return p.malformed("expected ',' or '" + string(closer) + "'")
			}
		}
	case 't':
		return p.literal("true")
	case 'f':
		return p.literal("false")
	case 'n':
		return p.literal("null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			_, _, err := p.number()
			return err
		}
		return p.malformed("invalid character at the start of a value")
	}
}

func (p *parser) literal(lit string) error {
	if len(p.data)-p.i < len(lit) || string(p.data[p.i:p.i+len(lit)]) != lit {
		return p.malformed("invalid literal")
	}
	p.i += len(lit)
	return nil
}

var pow10 = [...]float64{
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
}

// number parses the JSON number at p.i. Short decimals, the common case,
// take the exact fast path (an integer mantissa below 2^53 scaled by a
// power of ten up to 1e22 is correctly rounded by one IEEE operation);
// the rest go to strconv.ParseFloat.
func (p *parser) number() (v float64, rangeErr bool, err error) {
	data := p.data
	start := p.i
	i := p.i
	neg := false
	if data[i] == '-' {
		neg = true
		i++
	}
	var mant uint64
	nd, exp := 0, 0
	inexact := false
	if i >= len(data) {
		p.i = i
		return 0, false, p.eof()
	}
	switch c := data[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			if nd < 19 {
				mant = mant*10 + uint64(data[i]-'0')
				nd++
			} else {
				exp++
				inexact = true
			}
			i++
		}
	default:
		p.i = i
		return 0, false, p.malformed("invalid number")
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			p.i = i
			return 0, false, p.malformed("invalid number")
		}
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			switch d := data[i] - '0'; {
			case mant == 0 && d == 0:
				exp-- // leading zero
			case nd < 19:
				mant = mant*10 + uint64(d)
				nd++
				exp--
			default:
				inexact = true
			}
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		eneg := false
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			eneg = data[i] == '-'
			i++
		}
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			p.i = i
			return 0, false, p.malformed("invalid number")
		}
		e := 0
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			if e < 100000 {
				e = e*10 + int(data[i]-'0')
			}
			i++
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	p.i = i
	if !inexact && mant <= 1<<53 && exp >= -22 && exp <= 22 {
		f := float64(mant)
		if exp < 0 {
			f /= pow10[-exp]
		} else {
			f *= pow10[exp]
		}
		if neg {
			f = -f
		}
		return f, false, nil
	}
	f, perr := strconv.ParseFloat(string(data[start:i]), 64)
	if perr != nil {
		return 0, true, nil // syntax was checked above, so this is ErrRange
	}
	return f, false, nil
}

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

// Append appends the JSON encoding of e to dst and returns the extended
// slice. Fields come in schema order, absent optional fields are omitted and
// ts is written in RFC 3339 with nanoseconds, in UTC. Append does not
// validate e (a simulator may write events that [Decode] rejects), but it
// never writes invalid JSON: a number that is NaN or infinite, or a time
// outside years 0000..9999, is an error wrapping [ErrEncode], and dst is then
// returned as it was. Append does not allocate when dst has room.
func Append(dst []byte, e Event) ([]byte, error) {
	var c encCheck
	c.time("ts", e.Time)
	c.num("lat", e.Lat)
	c.num("lon", e.Lon)
	if e.Has&(HasSpeed|HasHeading|HasEngineTemp|HasFuel|HasBattery|HasOdometer) != 0 {
		c.opt(e.Has, HasSpeed, "speed_kmh", e.SpeedKmh)
		c.opt(e.Has, HasHeading, "heading_deg", e.HeadingDeg)
		c.opt(e.Has, HasEngineTemp, "engine_temp_c", e.EngineTempC)
		c.opt(e.Has, HasFuel, "fuel_pct", e.FuelPct)
		c.opt(e.Has, HasBattery, "battery_v", e.BatteryV)
		c.opt(e.Has, HasOdometer, "odometer_km", e.OdometerKm)
	}
	if c.err != nil {
		return dst, c.err
	}
	return appendEvent(dst, e), nil
}

// encCheck finds the first value an encoder cannot write as JSON.
type encCheck struct{ err error }

func (c *encCheck) num(name string, v float64) {
	if c.err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
		c.err = fmt.Errorf("%w: %s is %v, not a finite number", ErrEncode, name, v)
	}
}

func (c *encCheck) opt(has, bit Field, name string, v float64) {
	if has&bit != 0 {
		c.num(name, v)
	}
}

// time checks that t has a four-digit year in UTC, as RFC 3339 requires.
func (c *encCheck) time(name string, t time.Time) {
	if u := t.Unix(); c.err == nil && (u < minEncUnix || u > maxEncUnix) {
		c.err = fmt.Errorf("%w: %s %v is outside years 0000..9999", ErrEncode, name, t.UTC())
	}
}

// Unix seconds of 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the times
// RFC 3339 can write.
const (
	minEncUnix = -62167219200
	maxEncUnix = 253402300799
)

func appendEvent(dst []byte, e Event) []byte {
	dst = append(dst, `{"cab_id":`...)
	dst = appendString(dst, e.CabID)
	if e.Has&HasTripID != 0 {
		dst = append(dst, `,"trip_id":`...)
		dst = appendString(dst, e.TripID)
	}
	dst = append(dst, `,"ts":"`...)
	dst = appendTime(dst, e.Time)
	dst = append(dst, `","lat":`...)
	dst = appendFloat(dst, e.Lat)
	dst = append(dst, `,"lon":`...)
	dst = appendFloat(dst, e.Lon)
	if e.Has&HasSpeed != 0 {
		dst = append(dst, `,"speed_kmh":`...)
		dst = appendFloat(dst, e.SpeedKmh)
	}
	if e.Has&HasHeading != 0 {
		dst = append(dst, `,"heading_deg":`...)
		dst = appendFloat(dst, e.HeadingDeg)
	}
	if e.Status != StatusUnknown {
		dst = append(dst, `,"status":"`...)
		dst = append(dst, e.Status.String()...)
		dst = append(dst, '"')
	}
	if e.Has&HasEngineTemp != 0 {
		dst = append(dst, `,"engine_temp_c":`...)
		dst = appendFloat(dst, e.EngineTempC)
	}
	if e.Has&HasFuel != 0 {
		dst = append(dst, `,"fuel_pct":`...)
		dst = appendFloat(dst, e.FuelPct)
	}
	if e.Has&HasBattery != 0 {
		dst = append(dst, `,"battery_v":`...)
		dst = appendFloat(dst, e.BatteryV)
	}
	if e.Has&HasOdometer != 0 {
		dst = append(dst, `,"odometer_km":`...)
		dst = appendFloat(dst, e.OdometerKm)
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < 0x80 {
			i++
			continue
		}
		if c >= 0x80 {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

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

// appendFloat appends v as a JSON number that parses back to exactly v.
// Values with few decimals (coordinates, speeds) are written as a scaled
// integer, much faster than the shortest-representation search of
// strconv; the rest fall back to strconv like encoding/json.
func appendFloat(dst []byte, v float64) []byte {
	if v == 0 {
		return append(dst, '0')
	}
	if a := math.Abs(v); a < 1e15 && a >= 1e-6 {
		for k := 0; k <= 9; k++ {
			n := math.Round(v * pow10[k])
			if math.Abs(n) < 1<<53 && n/pow10[k] == v {
				return appendDecimal(dst, int64(n), k)
			}
		}
	}
	f := byte('f')
	if a := math.Abs(v); a < 1e-6 || a >= 1e21 {
		f = 'e'
	}
	return strconv.AppendFloat(dst, v, f, -1, 64)
}

// appendDecimal appends n / 10^k in decimal notation.
func appendDecimal(dst []byte, n int64, k int) []byte {
	if n < 0 {
		dst = append(dst, '-')
		n = -n
	}
	u := uint64(n)
	var buf [24]byte
	i := len(buf)
	for j := 0; j < k; j++ {
		i--
		buf[i] = byte('0' + u%10)
		u /= 10
	}
	if k > 0 {
		i--
		buf[i] = '.'
	}
	for {
		i--
		buf[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	return append(dst, buf[i:]...)
}
