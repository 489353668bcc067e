package opensearch

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestValidJSONStringEdges puts each kind of byte that str must not skip at every position
// of strings of 0 to 17 plain bytes, so it falls at every place in an 8-byte word, in the
// last word and in the byte-at-a-time tail, and checks the answer.
func TestValidJSONStringEdges(t *testing.T) {
	for _, tc := range []struct {
		name string
		ins  string // inserted into the string's plain bytes
		want bool
	}{
		{"none", "", true},
		{"quote", `"`, false},
		{"escaped quote", `\"`, true},
		{"escaped backslash", `\\`, true},
		{"escaped newline", `\n`, true},
		{"escaped u", `\u00e9`, true},
		{"short u", `\u00e`, false},
		{"bad escape", `\x`, false},
		{"lone backslash", `\`, false}, // escapes the closing quote
		{"NUL", "\x00", false},
		{"control", "\x01", false},
		{"unit separator", "\x1f", false},
		{"tab", "\t", false},
		{"DEL", "\x7f", true},
		{"2-byte UTF-8", "é", true},
		{"3-byte UTF-8", "€", true},
		{"4-byte UTF-8", "😀", true},
		{"U+FFFD", "\uFFFD", true},
		{"continuation byte", "\x80", false},
		{"0xff", "\xff", false},
		{"truncated 3-byte", "\xe2\x82", false},
		{"overlong", "\xc0\xaf", false},
		{"surrogate", "\xed\xa0\x80", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Plain bytes next to the ones str stops at: ' ' (0x20), '!' and '#' around '"',
			// '[' and ']' around '\\', '~' and DEL (0x7f); no hex digits, which would
			// complete "short u".
			const plain = " !#[]~\x7fxy !#[]~\x7fxy"
			for n := range 18 {
				for pos := range min(n, 16) + 1 {
					s := `"` + plain[:pos] + tc.ins + plain[pos:n] + `"`
					for _, doc := range []string{
						s,
						`{"k":` + s + `,"after":"0123456789abcdef"}`,
						strings.Repeat(" ", n%8) + `[` + s + `]`,
					} {
						if got := validJSON([]byte(doc)); got != tc.want {
							t.Errorf("validJSON(%q) = %v, want %v", doc, got, tc.want)
						}
						if utf8.ValidString(doc) && json.Valid([]byte(doc)) != tc.want {
							t.Errorf("encoding/json disagrees with the test on %q", doc)
						}
					}
				}
			}
		})
	}
}

// TestStrStop checks strStop against a byte-by-byte answer for every byte value at every
// place in a word of plain bytes, alone and followed by every other byte value, since the
// borrows of the word arithmetic run from low bytes to high ones.
func TestStrStop(t *testing.T) {
	stops := func(c byte) bool { return c < 0x20 || c >= 0x80 || c == '"' || c == '\\' }
	plain := [8]byte{'a', ' ', '!', '#', '[', ']', '~', 0x7f}
	check := func(w [8]byte) {
		want := 8
		for k, c := range w {
			if stops(c) {
				want = k
				break
			}
		}
		got := 8
		if m := strStop(binary.LittleEndian.Uint64(w[:])); m != 0 {
			got = bits.TrailingZeros64(m) / 8
		}
		if got != want {
			t.Fatalf("strStop(%q) stops at byte %d, want %d", w, got, want)
		}
	}
	for k := range 8 {
		for c := range 256 {
			w := plain
			w[k] = byte(c)
			check(w)
			for k2 := k + 1; k2 < 8; k2++ {
				for c2 := range 256 {
					w2 := w
					w2[k2] = byte(c2)
					check(w2)
				}
			}
		}
	}
}
