// The event's JSON decoding: Decode, Decoder (interning IDs) and the
// encoding/json hooks, with the field-by-field reading of the schema. The
// encoding (Append) is in encode.go, the JSON syntax in jsonscan.go,
// timestamps in rfc3339.go, the fast path for Append's layout in compact.go.

package telemetry

import (
	"encoding/binary"
	"errors"
	"strings"
)

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
// value is ready to use; it takes about 17 KiB besides its table, most of
// it a cache of the IDs last seen. A Decoder is not safe for concurrent use.
type Decoder struct {
	// MaxIDs bounds the intern table; when full it is cleared. Zero means
	// 65536.
	MaxIDs int

	ids   map[string]string
	cache idCache    // the last IDs seen, in front of ids (see intern.go)
	buf   compactBuf // decodeCompact's copy of the event, kept to save zeroing it
}

// Decode parses and validates one event, like the package-level [Decode].
func (d *Decoder) Decode(data []byte) (Event, error) {
	var e Event
	err := decode(data, &e, d)
	return e, err
}

// parser decodes one event: the JSON scanner and what the event's fields
// need kept until the end of the object.
type parser struct {
	scanner

	// IDs as offsets into data, or as strings when they held escapes.
	// Offsets rather than slices keep data and the parser off the heap.
	cab, trip span
	num       [numFields]float64 // the numeric fields' values, by field
}

type span struct {
	start, end int
	esc        bool
}

func invalid(f fieldID, reason string, off int) error {
	return &DecodeError{Field: fieldNames[f], Reason: reason, Offset: off, Err: ErrInvalid}
}

func decode(data []byte, e *Event, d *Decoder) error {
	if decodeCompact(data, e, d) {
		return nil
	}
	*e = Event{}
	return decodeGeneral(data, e, d)
}

// decodeGeneral decodes any input, the way decode takes when decodeCompact
// does not: keys in any order, whitespace, escapes, unknown fields, every
// form of number, and the errors with their offsets.
func decodeGeneral(data []byte, e *Event, d *Decoder) error {
	p := parser{scanner: scanner{data: data}}
	err := p.decode(e, d)
	// The numbers are kept by field while reading; e gets those read, after
	// an error too, as when each was stored on its own.
	e.setNumbers(&p.num)
	if de := (*DecodeError)(nil); errors.As(err, &de) && de.Err == ErrInvalid {
		// A field broke the schema, perhaps before the rest of the input was
		// read: input that is not well-formed JSON (cut short, trailing data,
		// invalid UTF-8 further on) is ErrMalformed whatever came before, as
		// ErrInvalid is for well-formed JSON only (a Kafka source files the
		// two under different dead-letter reasons).
		s := scanner{data: data}
		s.ws()
		if serr := s.skip(0); serr != nil {
			return serr
		}
		s.ws()
		if s.i != len(data) {
			return s.malformed("trailing data after the object")
		}
	}
	return err
}

func (p *parser) decode(e *Event, d *Decoder) error {
	data := p.data
	var seen uint32
	prev := fNone // the last known field, to guess the next key (see below)

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
			var id fieldID
			if next := prev + 1; next < numFields && fieldKeys[next].at(data, keyStart) {
				// Events usually list their fields in the schema's order, as Append does,
				// without whitespace: a key that is exactly the next field's name, quote
				// and colon included, is that field without scanning and looking it up.
				// (A name holds no quote, backslash or control character, so these bytes
				// are the whole key.)
				id = next
				p.i = keyStart + int(fieldKeys[next].n)
				p.ws()
			} else {
				esc, err := p.scanString()
				if err != nil {
					return err
				}
				key := data[keyStart : p.i-1]
				if esc {
					var kb [32]byte
					id = lookupField(appendUnescaped(kb[:0], key))
				} else {
					id = lookupField(key)
				}
				if err := p.colon(); err != nil {
					return err
				}
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
				prev = id
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
	setIDs(data, p.cab, p.trip, e, d)
	return nil
}

// setIDs stores in e the IDs at cab and trip in data: interned by d when
// there is one, else in one allocation. IDs that held escapes were already
// stored as strings when their field was read.
func setIDs(data []byte, cab, trip span, e *Event, d *Decoder) {
	switch {
	case cab.esc || trip.esc:
		if !cab.esc {
			e.CabID = string(data[cab.start:cab.end])
		}
		if !trip.esc {
			e.TripID = string(data[trip.start:trip.end])
		}
	case d != nil:
		e.CabID = d.intern(data[cab.start:cab.end])
		if e.Has&HasTripID != 0 {
			e.TripID = d.intern(data[trip.start:trip.end])
		}
	default:
		// One allocation for both IDs.
		cab, trip := data[cab.start:cab.end], data[trip.start:trip.end]
		var b strings.Builder
		b.Grow(len(cab) + len(trip))
		b.Write(cab)
		b.Write(trip)
		s := b.String()
		e.CabID, e.TripID = s[:len(cab)], s[len(cab):]
	}
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
			if e.Status = parseStatus(st); e.Status == StatusUnknown {
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
	p.num[id] = v
	e.Has |= hasBit[id]
	return nil
}

// parseStatus returns the status named st, or StatusUnknown.
func parseStatus(st []byte) Status {
	switch string(st) {
	case "available":
		return StatusAvailable
	case "hired":
		return StatusHired
	case "offline":
		return StatusOffline
	}
	return StatusUnknown
}

// setNumbers stores in e the values of its numeric fields, indexed by
// field; the Has bits are set apart.
func (e *Event) setNumbers(num *[numFields]float64) {
	e.Lat, e.Lon = num[fLat], num[fLon]
	e.SpeedKmh, e.HeadingDeg, e.EngineTempC = num[fSpeed], num[fHeading], num[fEngineTemp]
	e.FuelPct, e.BatteryV, e.OdometerKm = num[fFuel], num[fBattery], num[fOdometer]
}

// hasBit is the Has bit of each optional field but status.
var hasBit = [numFields]Field{
	fTripID: HasTripID, fSpeed: HasSpeed, fHeading: HasHeading, fEngineTemp: HasEngineTemp,
	fFuel: HasFuel, fBattery: HasBattery, fOdometer: HasOdometer,
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

// keyWords is a field's key as compact JSON writes it after the opening
// quote, `name":`, as two little-endian words and the masks of its bytes,
// so that a guessed key is checked with two loads and compares.
type keyWords struct {
	w, m [2]uint64
	n    uint8 // the key's length, quote and colon included
}

var fieldKeys = func() (k [numFields]keyWords) {
	for id := fCabID; id < numFields; id++ {
		k[id] = wordsOf(fieldNames[id] + `":`)
	}
	return k
}()

// wordsOf returns s (at most 16 bytes) as keyWords.
func wordsOf(s string) keyWords {
	if len(s) > 16 {
		panic("telemetry: " + s + " longer than 16 bytes")
	}
	var b, m [16]byte
	copy(b[:], s)
	for i := range len(s) {
		m[i] = 0xff
	}
	return keyWords{
		w: [2]uint64{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])},
		m: [2]uint64{binary.LittleEndian.Uint64(m[:8]), binary.LittleEndian.Uint64(m[8:])},
		n: uint8(len(s)),
	}
}

// at reports whether data holds the key at i (i >= 0).
func (k *keyWords) at(data []byte, i int) bool {
	return k.is(load8(data, i), load8(data, i+8))
}

// is reports whether the 16 bytes w0, w1 start with the key. Past the end
// of the data load8 reads zero bytes, which no key holds, so a key cut
// short by the end does not match.
func (k *keyWords) is(w0, w1 uint64) bool {
	return (w0^k.w[0])&k.m[0]|(w1^k.w[1])&k.m[1] == 0
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

// DecodeInto decodes one event into *e like [Decoder.Decode], overwriting all of *e, and
// saves the copy of the event that returning it takes (a kafka.DecoderInto decodes each
// record in its place in the Source's queue). After an error *e holds what was read.
func (d *Decoder) DecodeInto(data []byte, e *Event) error {
	*e = Event{}
	return decode(data, e, d)
}
