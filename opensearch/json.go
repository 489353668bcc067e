// validJSON, the sink's fast check that a document is valid JSON before it is sent.

package opensearch

import "unicode/utf8"

// validJSON reports whether b is one JSON value (RFC 8259) with optional surrounding
// whitespace and strings of valid UTF-8. It is the sink's check that it never sends
// OpenSearch a document that is not JSON (+Inf and NaN from strconv, a truncated appender).
// It is about 4 times faster than encoding/json's Valid on a 330-byte document
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

// str reads a string; the cursor is on its opening quote.
func (p *jsonScan) str() bool {
	p.i++
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return true
		case c == '\\':
			p.i++
			switch p.next() {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i++
			case 'u':
				if len(p.b)-p.i < 5 {
					return false
				}
				for _, h := range p.b[p.i+1 : p.i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				p.i += 5
			default:
				return false
			}
		case c < 0x20:
			return false
		case c < utf8.RuneSelf:
			p.i++
		default:
			r, n := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && n == 1 {
				return false
			}
			p.i += n
		}
	}
	return false
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
