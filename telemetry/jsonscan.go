// The JSON scanner under [Decode]: whitespace, strings with their escapes
// and UTF-8, literals and the skipping of unknown values; its numbers are in
// jsonnum.go. It knows JSON, not the event schema (codec.go).

package telemetry

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// scanner reads JSON from data, at offset i. Offsets rather than slices
// keep the data off the heap.
type scanner struct {
	data []byte
	i    int
}

// maxDepth bounds the nesting of skipped unknown values.
const maxDepth = 512

func (p *scanner) malformed(reason string) error {
	return &DecodeError{Reason: reason, Offset: p.i, Err: ErrMalformed}
}

func (p *scanner) ws() {
	// Every byte of whitespace is at most ' ', so compact JSON, where the
	// next byte is a value or a delimiter, costs one compare.
	for p.i < len(p.data) && p.data[p.i] <= ' ' {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *scanner) eof() error { return p.malformed("unexpected end of input") }

// colon consumes the ':' after an object key and the whitespace around it.
func (p *scanner) colon() error {
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

// scanString moves p.i from an opening quote to just past the closing one,
// checking escapes, control characters and UTF-8. It reports whether the
// string holds escapes.
func (p *scanner) scanString() (esc bool, err error) {
	data := p.data
	i := p.i + 1
	for {
		i = plainRun(data, i)
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

// plainRun returns the index of the first byte from i that is below 0x20,
// a quote, a backslash or not ASCII, or len(data) if there is none: where
// a string's plain run ends.
func plainRun(data []byte, i int) int {
	// Eight bytes at a time while there are eight. The lowest flag of each
	// test is exact, which is all the byte loop after needs.
	for i+8 <= len(data) {
		v := binary.LittleEndian.Uint64(data[i:])
		m := (v-swarLo*0x20)&^v | hasZero(v^(swarLo*'"')) | hasZero(v^(swarLo*'\\')) | v
		if m &= swarHi; m != 0 {
			return i + bits.TrailingZeros64(m)/8
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
	return i
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
func (p *scanner) skip(depth int) error {
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

func (p *scanner) literal(lit string) error {
	if len(p.data)-p.i < len(lit) || string(p.data[p.i:p.i+len(lit)]) != lit {
		return p.malformed("invalid literal")
	}
	p.i += len(lit)
	return nil
}
