// The decoder's fast path: events laid out as Append writes them, read from
// a zero-padded copy in one function. Anything else, and every error, is
// left to the general decoder (codec.go).

package telemetry

import "encoding/binary"

// stringFields are the fields whose values are JSON strings.
const stringFields = 1<<fCabID | 1<<fTripID | 1<<fTS | 1<<fStatus

// compactMax bounds the events decodeCompact reads (a power of two); the
// longest simulator event takes about 240 bytes. Longer ones, which need
// long IDs, take the general way.
const compactMax = 512

// compactBuf holds an event and zero bytes after it: reads up to 32 bytes
// past any offset below compactMax stay inside it, and a zero byte is
// nothing the fast path accepts (a digit, a quote, a delimiter, part of a
// key or of a time), so the end of the data needs no check of its own.
type compactBuf [compactMax + 32]byte

// word returns the eight bytes at i as a little-endian word. The mask
// proves the read in bounds; i never reaches compactMax.
func (b *compactBuf) word(i int) uint64 {
	return binary.LittleEndian.Uint64(b[i&(compactMax-1):])
}

// decodeCompact decodes data when it is laid out as Append writes it: no
// whitespace, known keys only, each once and in schema order, strings of
// printable ASCII without escapes, numbers that decimal reads, every value
// valid and the required fields present. For anything else it returns
// false, maybe having written part of e, and decode reads data the general
// way, which gives the errors. What it accepts the general way decodes to
// the same event: both find the keys with fieldKeys, read the numbers with
// decimal and times with parseTime, and store the values with the same
// functions.
func decodeCompact(data []byte, e *Event, d *Decoder) bool {
	if len(data) < 2 || len(data) > compactMax-32 || data[0] != '{' {
		return false
	}
	if d != nil {
		// The Decoder's buffer: only the 32 bytes after the data need to be
		// zero (see compactBuf), and clearing those rather than the whole
		// buffer on every event was a percent of the job's CPU.
		b := &d.buf
		copy(b[:], data)
		clear(b[len(data) : len(data)+32])
		return b.decode(data, e, d)
	}
	var b compactBuf
	copy(b[:], data)
	return b.decode(data, e, d)
}

// decode is decodeCompact's work on b, which holds data and zero bytes after
// it. Zero bytes end every run the fast path reads (a key, a string, a
// number, a delimiter), so it reads at most 16 bytes past data's end before
// it refuses: the 32 bytes compactBuf reserves are all that need be zero.
func (b *compactBuf) decode(data []byte, e *Event, d *Decoder) bool {
	var cab, trip span
	var num [numFields]float64
	var has Field
	var seen uint32
	i := 1
	for id := fNone; ; {
		// A key: the next field in schema order that the data holds.
		if b[i&(compactMax-1)] != '"' {
			return false
		}
		i++
		w0, w1 := b.word(i), b.word(i+8)
		for id++; id < numFields && !fieldKeys[id].is(w0, w1); id++ {
		}
		if id >= numFields {
			return false
		}
		i += int(fieldKeys[id].n)
		seen |= 1 << id
		has |= hasBit[id]

		switch {
		case id == fStatus:
			// One of the three words and the closing quote, matched whole:
			// what plainRun and parseStatus would take.
			if b[i&(compactMax-1)] != '"' {
				return false
			}
			i++
			if e.Status = statusAt(b.word(i), b.word(i+8)); e.Status == StatusUnknown {
				return false
			}
			i += int(statusWords[e.Status].n)
		case stringFields>>id&1 != 0:
			if b[i&(compactMax-1)] != '"' {
				return false
			}
			start := i + 1
			from := start
			if id == fTS {
				// A time's first 20 bytes are digits and separators, or
				// parseTime refuses it: the quote is looked for after them.
				// (Past the data, start+20 is in the zero bytes after it,
				// where plainRun stops at once.)
				from += timeMin
			}
			end := plainRun(b[:], from)
			if b[end&(compactMax-1)] != '"' {
				return false
			}
			i = end + 1
			switch id {
			case fCabID:
				if end == start || end-start > MaxIDLen {
					return false
				}
				cab = span{start: start, end: end}
			case fTripID:
				if end-start > MaxIDLen {
					return false
				}
				trip = span{start: start, end: end}
			default: // fTS
				t, reason := parseTime(b[start:end])
				if reason != "" {
					return false
				}
				e.Time = t
			}
		default:
			neg := b[i&(compactMax-1)] == '-'
			if neg {
				i++
			}
			v, n, ok := decimal(b.word(i), b.word(i+8))
			if neg {
				v = -v
			}
			if !ok || !inBounds(id, v) {
				return false
			}
			num[id] = v
			i += n
		}

		if c := b[i&(compactMax-1)]; c != ',' {
			if c != '}' || i+1 != len(data) {
				return false
			}
			break
		}
		i++
	}
	const required = 1<<fCabID | 1<<fTS | 1<<fLat | 1<<fLon
	if seen&required != required {
		return false
	}
	e.Has = has
	e.setNumbers(&num)
	setIDs(data, cab, trip, e, d)
	return true
}

// statusWords holds each status's JSON name and the closing quote after it,
// as statusAt matches them.
var statusWords = func() (k [StatusOffline + 1]keyWords) {
	for s := StatusAvailable; s <= StatusOffline; s++ {
		k[s] = wordsOf(statusNames[s] + `"`)
	}
	return k
}()

// statusAt returns the status whose name and closing quote the 16 bytes w0,
// w1 start with, or StatusUnknown.
func statusAt(w0, w1 uint64) Status {
	switch {
	case statusWords[StatusHired].is(w0, w1): // the usual one first
		return StatusHired
	case statusWords[StatusOffline].is(w0, w1):
		return StatusOffline
	case statusWords[StatusAvailable].is(w0, w1):
		return StatusAvailable
	}
	return StatusUnknown
}
