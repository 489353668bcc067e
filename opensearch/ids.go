// Document IDs and index names: WindowID and AppendWindowID, FixedIndex and DailyIndex.

package opensearch

import (
	"sync/atomic"
	"time"

	"github.com/fleetstream/fleetstream/internal/docid"
)

// WindowID returns the deterministic document ID of a window result: the hex of the first 128
// bits of SHA-256 over the pipeline name, the key and the window bounds (UTC nanoseconds). The
// same result replayed after a restart gets the same ID, so it overwrites instead of
// duplicating. Keys that are only unique per source partition (zone partials) must include
// the partition.
func WindowID(pipeline, key string, start, end time.Time) string {
	var buf [32]byte
	return string(AppendWindowID(buf[:0], pipeline, key, start, end))
}

// AppendWindowID appends WindowID(pipeline, key, start, end) to dst.
func AppendWindowID(dst []byte, pipeline, key string, start, end time.Time) []byte {
	return docid.AppendWindow(dst, pipeline, key, start, end)
}

// FixedIndex returns an index function that always names index (an index, an alias or a data
// stream). OpenSearch refuses every document for a name that breaks its rules: check index
// with CheckIndexName at the program's start.
func FixedIndex[T any](index string) func(T) string {
	return func(T) string { return index }
}

// DailyIndex returns an index function that names one index per UTC day of ts(v):
// prefix-2026.11.25. CheckIndexName checks such a name (the prefix with a day) at the
// program's start.
func DailyIndex[T any](prefix string, ts func(T) time.Time) func(T) string {
	type day struct {
		n    int64
		name string
	}
	var last atomic.Pointer[day]
	return func(v T) string {
		t := ts(v).UTC()
		n := t.Unix()
		if n < 0 {
			n -= 86399 // floor division for times before 1970
		}
		n /= 86400
		if d := last.Load(); d != nil && d.n == n {
			return d.name
		}
		name := prefix + "-" + t.Format("2006.01.02")
		last.Store(&day{n: n, name: name})
		return name
	}
}
