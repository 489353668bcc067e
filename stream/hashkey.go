// HashKey, the hash a repartition routes keys with.

package stream

import (
	"fmt"
	"hash/fnv"
	"strconv"
)

// HashKey returns the deterministic hash a repartition routes a key with: FNV-1a of the
// key's bytes for strings, of its decimal form for integers, of fmt's %v form otherwise
// (slower; use string or integer keys on hot paths). It is the same in every process and
// release, so instances of a pipeline agree on where each key goes.
func HashKey[K comparable](k K) uint64 {
	h := fnv.New64a()
	var buf [24]byte
	switch v := any(k).(type) {
	case string:
		return fnvString(v)
	case int:
		h.Write(strconv.AppendInt(buf[:0], int64(v), 10))
	case int32:
		h.Write(strconv.AppendInt(buf[:0], int64(v), 10))
	case int64:
		h.Write(strconv.AppendInt(buf[:0], v, 10))
	case uint32:
		h.Write(strconv.AppendUint(buf[:0], uint64(v), 10))
	case uint64:
		h.Write(strconv.AppendUint(buf[:0], v, 10))
	default:
		fmt.Fprintf(h, "%v", k)
	}
	return h.Sum64()
}

func fnvString(s string) uint64 {
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime64
	}
	return h
}
