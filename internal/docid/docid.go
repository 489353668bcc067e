// Package docid is the one home of the document id schemes of fleetstream:
// the id of a window result, which opensearch.WindowID gives and the DocID
// methods of the telemetry documents give too, and the bound on every id the
// opensearch sink sends.
//
// The scheme lives here, once, rather than in opensearch or telemetry: the
// telemetry domain may not import a connector (it would pull the OpenSearch
// client into every transform), and a connector does not import one domain.
// Both import this package, so the two can never compute an id differently;
// telemetry's tests check that they agree.
//
// # Ids of window results
//
// AppendWindow gives a window result a fixed-length id (32 hex digits) from the pipeline
// name, the key and the window bounds, so a replayed result overwrites its earlier copy.
//
// # Long ids and ids that are not UTF-8
//
// OpenSearch refuses a document id longer than MaxBytes (512 bytes) and, in a bulk request,
// refuses the whole request for it. An id that is not valid UTF-8 (a binary Kafka key) cannot
// be sent as it is: a JSON string holds UTF-8 only, and encoding/json replaces each invalid
// byte by U+FFFD, so ids that differ only in such bytes would name one document. Bound
// replaces both kinds by a stable id that fits: the first PrefixBytes bytes of the id (cut
// back to a UTF-8 character boundary, each byte that is not UTF-8 written as U+FFFD, and
// shortened so that the whole stays within MaxBytes), then "~sha256:" and the 64 hex digits
// of the SHA-256 of the whole id. The replacement depends on the id only, so a replay of the
// same document overwrites it; two ids that differ anywhere, in any byte, get different
// replacements (barring a SHA-256 collision); the readable prefix keeps the replacement
// searchable by its start (a cab id, a pipeline name). Ids of valid UTF-8 that fit are kept
// as they are.
package docid

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"
	"unicode/utf8"
)

// MaxBytes is the longest document id OpenSearch accepts, in bytes.
const MaxBytes = 512

// PrefixBytes is the most bytes of a long id that Bound keeps as its readable prefix.
const PrefixBytes = 400

// hashMark separates the kept prefix of a long id from its digest.
const hashMark = "~sha256:"

// Bound returns id when it is valid UTF-8 and at most MaxBytes long, otherwise its stable
// replacement (see the package doc): valid UTF-8 of at most MaxBytes bytes. The replacement of
// a long id of valid UTF-8 is its first PrefixBytes bytes or fewer and 72 more bytes.
func Bound(id string) string {
	if len(id) <= MaxBytes && utf8.ValidString(id) {
		return id
	}
	n := min(len(id), PrefixBytes)
	for n > 0 && n < len(id) && !utf8.RuneStart(id[n]) {
		n--
	}
	sum := sha256.Sum256([]byte(id))
	b := make([]byte, 0, MaxBytes)
	if utf8.ValidString(id[:n]) {
		b = append(b, id[:n]...)
	} else {
		// Each byte that is not UTF-8 becomes U+FFFD, as encoding/json writes it (so a long
		// id keeps the replacement it had when the sink sent its prefix as it was), up to
		// the room left for the digest.
		const room = MaxBytes - len(hashMark) - 2*sha256.Size
		for i := 0; i < n; {
			r, size := utf8.DecodeRuneInString(id[i:n])
			unit := id[i : i+size]
			if r == utf8.RuneError && size == 1 {
				unit = string(utf8.RuneError)
			}
			if len(b)+len(unit) > room {
				break
			}
			b = append(b, unit...)
			i += size
		}
	}
	b = append(b, hashMark...)
	return string(hex.AppendEncode(b, sum[:]))
}

// AppendWindow appends the id of a window result to dst: the hex of the first 128 bits of
// SHA-256 over the length-prefixed pipeline name and key and the window bounds in Unix
// nanoseconds. Length prefixes keep ("a|b", "c") and ("a", "b|c") apart. The id is 32 bytes
// whatever the key's length, so it never needs Bound.
func AppendWindow(dst []byte, pipeline, key string, start, end time.Time) []byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(pipeline)))
	h.Write(n[:])
	h.Write([]byte(pipeline))
	binary.BigEndian.PutUint64(n[:], uint64(len(key)))
	h.Write(n[:])
	h.Write([]byte(key))
	binary.BigEndian.PutUint64(n[:], uint64(start.UnixNano()))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(end.UnixNano()))
	h.Write(n[:])
	var sum [sha256.Size]byte
	return hex.AppendEncode(dst, h.Sum(sum[:0])[:16])
}
