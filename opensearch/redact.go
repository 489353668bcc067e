// Redaction: the client's and the request's credentials replaced in the response bodies that
// errors and dead letters quote, as they are or JSON-escaped; responses that carry their
// request, whose headers hold the credentials of SigV4.

package opensearch

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// redact returns b with the client's credentials and those the request carried in sent
// replaced by "***": a response body quoted in an error or a dead letter, which a proxy's
// page may have written them into, as they are or JSON-escaped (a password's quote as \",
// its "&" as \u0026, a token's "/" as \/).
func (c *Client) redact(b []byte, sent http.Header) []byte {
	for _, s := range c.secretsOf(sent) {
		b = redactSecret(b, s)
	}
	return b
}

// secretsOf returns the client's credentials and those of the request header sent: its
// Authorization (basic auth, or SigV4's with its signature) and SigV4's session token, whose
// values the client does not know before the signer sets them.
func (c *Client) secretsOf(sent http.Header) [][]byte {
	out := c.secrets
	auth, token := sent.Get("Authorization"), sent.Get("X-Amz-Security-Token")
	if auth == "" && token == "" {
		return out
	}
	out = slices.Clone(out)
	for _, v := range []string{auth, token} {
		if v != "" {
			out = append(out, []byte(v))
		}
	}
	if _, sig, ok := strings.Cut(auth, "Signature="); ok && sig != "" {
		out = append(out, []byte(sig))
	}
	return out
}

// requestKeeper wraps a Config.Transport that is not an *http.Transport, so that each of
// its responses carries the request it answers (a wrapper's or a recorder's may not): the
// request as signed, whose Authorization and SigV4 session token are replaced where errors
// quote a body (Client.do); and it names the node a slow request waits for.
type requestKeeper struct{ http.RoundTripper }

func (k requestKeeper) RoundTrip(r *http.Request) (*http.Response, error) {
	sawNode(r.Context(), r.URL) // an *http.Transport says so in its trace
	res, err := k.RoundTripper.RoundTrip(r)
	if res != nil && res.Request == nil {
		res.Request = r
	}
	return res, err
}

// CloseIdleConnections passes Client.Close on to the transport, as without the wrapper.
func (k requestKeeper) CloseIdleConnections() {
	if c, ok := k.RoundTripper.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// maxEscaped is how many times longer than a secret its JSON-escaped form may be: each byte
// as \u00XX.
const maxEscaped = 6

// redactSecret returns b with every occurrence of s replaced by "***", each of s's
// characters written as it is or as a JSON escape (\", \\, \/, \n, \uXXXX in either case,
// a surrogate pair).
func redactSecret(b, s []byte) []byte {
	if len(s) == 0 {
		return b
	}
	var out []byte // nil until s is found
	last := 0
	for i := 0; i < len(b); i++ {
		if b[i] != s[0] && b[i] != '\\' {
			continue
		}
		if n := matchEscaped(b[i:], s); n > 0 {
			out = append(append(out, b[last:i]...), "***"...)
			last = i + n
			i = last - 1
		}
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

// matchEscaped returns the length of the start of b that is s with any of its characters
// JSON-escaped, or 0.
func matchEscaped(b, s []byte) int {
	i := 0
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		if i < len(b) && b[i] == '\\' && (r != utf8.RuneError || size > 1) {
			if er, n := jsonEscape(b[i:]); n > 0 && er == r {
				i += n
				s = s[size:]
				continue
			}
		}
		if !bytes.HasPrefix(b[i:], s[:size]) {
			return 0
		}
		i += size
		s = s[size:]
	}
	return i
}

// jsonEscape decodes the JSON escape at the start of b: the character it stands for and its
// length, 0 if b does not start with one.
func jsonEscape(b []byte) (rune, int) {
	if len(b) < 2 || b[0] != '\\' {
		return 0, 0
	}
	switch b[1] {
	case '"', '\\', '/':
		return rune(b[1]), 2
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		r, ok := hex4(b[2:])
		if !ok {
			return 0, 0
		}
		if utf16.IsSurrogate(r) && len(b) >= 12 && b[6] == '\\' && b[7] == 'u' {
			if r2, ok := hex4(b[8:]); ok {
				if p := utf16.DecodeRune(r, r2); p != utf8.RuneError {
					return p, 12
				}
			}
		}
		return r, 6
	}
	return 0, 0
}

// hex4 reads 4 hex digits, in either case, at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
