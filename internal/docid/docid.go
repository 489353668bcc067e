// Package docid holds the deterministic document id scheme of window results, shared by the
// opensearch sink (opensearch.WindowID) and the telemetry documents, which may not import
// each other.
package docid

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// AppendWindow appends the id of a window result to dst: the hex of the first 128 bits of
// SHA-256 over the length-prefixed pipeline name and key and the window bounds in Unix
// nanoseconds. Length prefixes keep ("a|b", "c") and ("a", "b|c") apart.
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
