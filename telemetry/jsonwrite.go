// JSON writing shared by every encoder of the package: strings and numbers
// that decode back exactly, without reflection.

package telemetry

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

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

// appendLocation appends l as a geo_point object.
func appendLocation(dst []byte, l Location) []byte {
	dst = append(dst, `{"lat":`...)
	dst = appendFloat(dst, l.Lat)
	dst = append(dst, `,"lon":`...)
	dst = appendFloat(dst, l.Lon)
	return append(dst, '}')
}

// appendTimeField appends name, which holds the separator and key, and t in
// UTC as an RFC 3339 string.
func appendTimeField(dst []byte, name string, t time.Time) []byte {
	dst = append(dst, name...)
	dst = append(dst, '"')
	dst = appendTime(dst, t.UTC())
	return append(dst, '"')
}
