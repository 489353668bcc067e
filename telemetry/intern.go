// The Decoder's interning of IDs: a map of every ID seen, behind a small
// cache that finds the usual short ID without hashing it as a string.

package telemetry

// idBits is the log2 of the number of slots of idCache: 512 slots, 20 KiB,
// hold a partition's active IDs with few collisions.
const idBits = 9

// idCache is a direct-mapped cache of interned IDs of at most 24 bytes (the
// simulator's and Porto's: "CAB-0042", 19-digit trip IDs), each kept with
// its bytes as three little-endian words (zero bytes past its end). A slot
// is found from the words by one multiplication, and it holds b when its
// words and length are b's, which costs less than the map's lookup of a
// string (8 % of the decoder's time in BenchmarkDecoderDemo). Every string
// it holds is in the map too, so clearing the map clears the cache.
type idCache [1 << idBits]struct {
	w0, w1, w2 uint64
	s          string
}

func (d *Decoder) intern(b []byte) string {
	if len(b) > 24 {
		return d.internMap(b)
	}
	w0, w1, w2 := load8(b, 0), load8(b, 8), load8(b, 16)
	// The top bits of a multiplication by an odd constant (Fibonacci
	// hashing), which mix every byte of the ID into the slot number.
	const odd = 0x9e3779b97f4a7c15
	slot := &d.cache[(w0^(w1^w2*odd)*odd)*odd>>(64-idBits)]
	if slot.w0 == w0 && slot.w1 == w1 && slot.w2 == w2 && len(slot.s) == len(b) {
		return slot.s
	}
	s := d.internMap(b)
	slot.w0, slot.w1, slot.w2, slot.s = w0, w1, w2, s
	return s
}

// internMap interns b in the map, which is cleared, with the cache, when it
// holds MaxIDs IDs.
func (d *Decoder) internMap(b []byte) string {
	if s, ok := d.ids[string(b)]; ok {
		return s
	}
	limit := d.MaxIDs
	if limit <= 0 {
		limit = 1 << 16
	}
	if d.ids == nil {
		d.ids = make(map[string]string)
	} else if len(d.ids) >= limit {
		clear(d.ids)
		clear(d.cache[:])
	}
	s := string(b)
	d.ids[s] = s
	return s
}
