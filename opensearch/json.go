// validJSON, the sink's fast check that a document is valid JSON before it is sent.

package opensearch

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// validJSON reports whether b is one JSON value (RFC 8259) with optional surrounding
// whitespace and strings of valid UTF-8. It is the sink's check that it never sends
// OpenSearch a document that is not JSON (+Inf and NaN from strconv, a truncated appender).
// It is about 3 times faster than encoding/json's Valid on the sink's documents
// (BenchmarkValidJSON), which would cost a noticeable share of the sink's CPU per document.
// FuzzValidJSON holds it to encoding/json's answer.
func validJSON(b []byte) bool {
	p := jsonScan{b: b}
	p.ws()
	if !p.value(0) {
		return false
	}
	p.ws()
	return p.i == len(p.b)
}

// maxJSONDepth bounds nesting, as a parser's stack would.
const maxJSONDepth = 10_000

type jsonScan struct {
	b []byte
	i int
}

func (p *jsonScan) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next returns the byte at the cursor, or 0 at the end.
func (p *jsonScan) next() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *jsonScan) value(depth int) bool {
	if depth > maxJSONDepth {
		return false
	}
	switch c := p.next(); {
	case c == '{':
		p.i++
		p.ws()
		if p.next() == '}' {
			p.i++
			return true
		}
		for {
			if p.next() != '"' || !p.str() {
				return false
			}
			p.ws()
			if p.next() != ':' {
				return false
			}
			p.i++
			p.ws()
			if !p.value(depth + 1) {
				return false
			}
			p.ws()
			switch p.next() {
			case ',':
				p.i++
				p.ws()
			case '}':
				p.i++
				return true
			default:
				return false
			}
		}
	case c == '[':
		p.i++
		p.ws()
		if p.next() == ']' {
			p.i++
			return true
		}
		for {
			if !p.value(depth + 1) {
				return false
			}
			p.ws()
			switch p.next() {
			case ',':
				p.i++
				p.ws()
			case ']':
				p.i++
				return true
			default:
				return false
			}
		}
	case c == '"':
		return p.str()
	case c == '-' || c >= '0' && c <= '9':
		return p.num()
	case c == 't':
		return p.lit("true")
	case c == 'f':
		return p.lit("false")
	case c == 'n':
		return p.lit("null")
	}
	return false
}

func (p *jsonScan) lit(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// str reads a string; the cursor is on its opening quote. It works on local copies of the
// slice and cursor, which the compiler keeps in registers, and skips runs of plain ASCII a
// word at a time (strStop): most of a document's bytes are in strings (field names, IDs,
// timestamps), and a byte-at-a-time loop through p made str most of validJSON's cost.
func (p *jsonScan) str() bool {
	b, i := p.b, p.i+1
	for {
		for len(b)-i >= 8 {
			if stop := strStop(binary.LittleEndian.Uint64(b[i:])); stop != 0 {
				i += bits.TrailingZeros64(stop) / 8
				break
			}
			i += 8
		}
		// b[i] is a byte strStop stops at, or one of the last 7 bytes of b.
		if i >= len(b) {
			return false
		}
		switch c := b[i]; {
		case c == '"':
			p.i = i + 1
			return true
		case c == '\\':
			i++
			if i == len(b) {
				return false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if len(b)-i < 5 {
					return false
				}
				for _, h := range b[i+1 : i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				i += 5
			default:
				return false
			}
		case c < 0x20:
			return false
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				return false
			}
			i += n
		}
	}
}

// Masks for testing the 8 bytes of a little-endian word at once.
const (
	swarOnes = 0x0101010101010101 // 0x01 in every byte
	swarHigh = 0x8080808080808080 // the top bit of every byte
)

// strStop finds the first byte of w, read little-endian, that str must look at: a quote, a
// backslash, a control byte (< 0x20) or part of a multi-byte UTF-8 sequence (>= 0x80). The
// lowest set bit of the result is that byte's top bit; 0 means all 8 bytes are plain ASCII.
// The terms set a byte's top bit for one kind each: w for >= 0x80, w-0x20 for < 0x20, and
// (w^'"')-1 and (w^'\\')-1 for the byte that XORs to 0. Plain bytes (0x20..0x7f but '"' and
// '\\') neither set it nor borrow, so nothing below the first stop is marked; borrows may
// mark bytes above it, which is why only the lowest bit counts.
func strStop(w uint64) uint64 {
	q := w ^ (swarOnes * '"')
	s := w ^ (swarOnes * '\\')
	return (w | (w - swarOnes*0x20) | (q - swarOnes) | (s - swarOnes)) & swarHigh
}

func (p *jsonScan) digits() int {
	n := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

func (p *jsonScan) num() bool {
	if p.next() == '-' {
		p.i++
	}
	switch c := p.next(); {
	case c == '0':
		p.i++
	case c >= '1' && c <= '9':
		p.digits()
	default:
		return false
	}
	if p.next() == '.' {
		p.i++
		if p.digits() == 0 {
			return false
		}
	}
	if c := p.next(); c == 'e' || c == 'E' {
		p.i++
		if c := p.next(); c == '+' || c == '-' {
			p.i++
		}
		if p.digits() == 0 {
			return false
		}
	}
	return true
}
