// The JSON scanner's numbers (see jsonscan.go): the exact fast path for
// short decimals, read eight bytes at a time, and the long way for the rest.

package telemetry

import (
	"encoding/binary"
	"math/bits"
	"strconv"
)

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
// eight bytes at a time, the fraction's from the two words shifted, so that
// the whole number costs two loads that do not wait for each other; the
// digits are converted eight at a time, those of both runs at once when
// they are eight or fewer (all the demo topic's numbers). The value is the
// one longNumber computes: a mantissa below 10^14 scaled by one exact
// division.
func decimal(w0, w1 uint64) (f float64, n int, ok bool) {
	n = digitRun(w0)
	if n == 0 || n == 8 || n > 1 && byte(w0) == '0' {
		return 0, 0, false
	}
	var mant uint64
	scale := 0
	next := byte(w0 >> (8 * n & 63)) // the byte after the digits (n < 8)
	if next != '.' {
		mant = digitsValue(w0, n)
	} else {
		// The eight bytes after the dot, from both words (n < 8).
		fw := w0>>(8*n&63)>>8 | w1<<(56-8*n&63)
		frac := digitRun(fw)
		if frac == 0 || frac == 8 {
			return 0, 0, false
		}
		if n+frac <= 8 {
			// The usual number: the digits both sides of the dot fit in one
			// word without it, converted at once.
			mant = digitsValue(w0&(1<<(8*n&63)-1)|fw<<(8*n&63), n+frac)
		} else {
			mant = digitsValue(w0, n)*pow10u[frac] + digitsValue(fw, frac)
		}
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
// fill the top bytes, then combined in pairs, fours and eights, each step
// one multiplication that adds ten, a hundred or ten thousand times each
// lower part to the higher one above it.
func digitsValue(w uint64, n int) uint64 {
	w = (w & 0x0f0f0f0f0f0f0f0f) << (8 * (8 - n) & 63)
	w = (w * (10<<8 + 1) >> 8) & 0x00ff00ff00ff00ff
	w = (w * (100<<16 + 1) >> 16) & 0x0000ffff0000ffff
	return w * (10000<<32 + 1) >> 32
}
