// The JSON scanner under [Decode]: whitespace, strings with their escapes
// and UTF-8, numbers, literals and the skipping of unknown values. It knows
// JSON, not the event schema (codec.go).

package telemetry

import (
	"encoding/binary"
	"math/bits"
	"strconv"
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

var pow10 = [...]float64{
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
}

// number parses the JSON number at p.i. Short decimals, the common case,
// take the exact fast path (an integer mantissa below 2^53 scaled by a
// power of ten up to 1e22 is correctly rounded by one IEEE operation);
// the rest go to strconv.ParseFloat.
func (p *scanner) number() (v float64, rangeErr bool, err error) {
	if f, end, ok := shortNumber(p.data, p.i); ok {
		p.i = end
		return f, false, nil
	}
	return p.longNumber()
}

// longNumber is number for any number, one byte at a time.
func (p *scanner) longNumber() (v float64, rangeErr bool, err error) {
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

// shortNumber parses the number at i when it is the usual short decimal,
// -?[0-9]{1,7}(\.[0-9]{1,7})? with no leading zero and no exponent; ok is
// false for anything else, which number then reads the long way.
func shortNumber(data []byte, i int) (f float64, end int, ok bool) {
	if i < 0 || i >= len(data) {
		return 0, i, false
	}
	neg := data[i] == '-'
	if neg {
		i++
	}
	f, n, ok := decimal(load8(data, i), load8(data, i+8))
	if neg {
		f = -f
	}
	return f, i + n, ok
}

// decimal parses the unsigned short decimal, [0-9]{1,7}(\.[0-9]{1,7})?
// without a leading zero or an exponent after it, at the start of the 16
// bytes w0, w1 (little-endian words, zero bytes past the data), and returns
// its length; ok is false for anything else. Each run of digits is found
// and converted eight bytes at a time, the fraction's from the two words
// shifted, so that the whole number costs two loads that do not wait for
// each other. The value is the one longNumber computes: a mantissa below
// 10^14 scaled by one exact division.
func decimal(w0, w1 uint64) (f float64, n int, ok bool) {
	n = digitRun(w0)
	if n == 0 || n == 8 || n > 1 && byte(w0) == '0' {
		return 0, 0, false
	}
	mant, scale := digitsValue(w0, n), 0
	next := byte(w0 >> (8 * n & 63)) // the byte after the digits (n < 8)
	if next == '.' {
		// The eight bytes after the dot, from both words (n < 8).
		fw := w0>>(8*n&63)>>8 | w1<<(56-8*n&63)
		frac := digitRun(fw)
		if frac == 0 || frac == 8 {
			return 0, 0, false
		}
		mant = mant*pow10u[frac] + digitsValue(fw, frac)
		next = byte(fw >> (8 * frac & 63))
		n += 1 + frac
		scale = frac
	}
	if next == 'e' || next == 'E' {
		return 0, 0, false
	}
	// mant < 10^14: the signed conversion is exact and cheaper.
	return float64(int64(mant)) / pow10[scale], n, true
}

// pow10u holds the powers of ten that decimal scales a mantissa by and
// parseTime a fraction of a second.
var pow10u = [...]uint64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000}

// load8 returns the eight bytes of data from i as a little-endian word, with
// zero bytes (neither digits nor delimiters) for those past the end. Near
// the end it shifts the data's last word rather than copying, so that the
// load is not stalled behind the copy's stores.
func load8(data []byte, i int) uint64 {
	left := len(data) - i
	switch {
	case left >= 8:
		return binary.LittleEndian.Uint64(data[i:])
	case left <= 0:
		return 0
	case len(data) >= 8:
		return binary.LittleEndian.Uint64(data[len(data)-8:]) >> ((64 - 8*left) & 63)
	}
	var w uint64
	for k := len(data) - 1; k >= i; k-- {
		w = w<<8 | uint64(data[k])
	}
	return w
}

// digitRun returns how many of the bytes of w, from its lowest, are ASCII
// digits before the first that is not (8 if all are).
func digitRun(w uint64) int {
	return bits.TrailingZeros64(nonDigits(w)) / 8
}

// nonDigits flags with nonzero bits the bytes of w that are not ASCII
// digits. A byte is a digit when its high nibble is 3 and adding 6 keeps it
// so. The addition carries only out of bytes of 0xfa and above, which are
// flagged, and may flag the digit after one; so the first flagged byte from
// the lowest, or from any byte after one below 0xfa, is the first that is
// not a digit.
func nonDigits(w uint64) uint64 {
	const hiNibble, zeros, six = 0xf0f0f0f0f0f0f0f0, 0x3030303030303030, 0x0606060606060606
	return (w&hiNibble ^ zeros) | ((w+six)&hiNibble ^ zeros)
}

// digitsValue returns the value of the n (1 to 8) ASCII digits in the lowest
// bytes of w, the first digit in the lowest byte: shifted up so the digits
// fill the top bytes, then combined in pairs, fours and eights.
func digitsValue(w uint64, n int) uint64 {
	w = (w & 0x0f0f0f0f0f0f0f0f) << (8 * (8 - n) & 63)
	w = (w*10 + w>>8) & 0x00ff00ff00ff00ff
	w = (w*100 + w>>16) & 0x0000ffff0000ffff
	return (w*10000 + w>>32) & 0xffffffff
}
