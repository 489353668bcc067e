package stream

import (
	"maps"
	"testing"
)

// FuzzDecodeCheckpoint: the checkpoint decoder reads what Kafka hands back as commit metadata,
// which anyone with access to the group can write. It must never panic, must accept only
// checkpoints of this graph (its operator count and fingerprint), with entries naming real
// operators at non-negative offsets, and what it accepts must encode back to the same
// entries.
func FuzzDecodeCheckpoint(f *testing.F) {
	const nodes, fp = 4, "abc123"
	f.Add("fs2/4/abc123/2@4", int64(2))
	f.Add("fs2/4/abc123/1@8,3@9", int64(0))
	f.Add("fs2/4/other/2@4", int64(2))
	f.Add("fs1/4/2@4", int64(2))
	f.Add("fs2/4/abc123/", int64(-1))
	f.Add("fs2/4/abc123/9@1", int64(1))
	f.Add("fs2/4/abc123/1@-1", int64(1))
	f.Add("fs2//abc123/1@1", int64(1))
	f.Fuzz(func(t *testing.T, meta string, committed int64) {
		skip, err := decodeCheckpoint(meta, committed, nodes, fp)
		if err != nil {
			return
		}
		if committed < 0 {
			t.Fatalf("accepted %q without a committed offset", meta)
		}
		var stateful []int
		var starts []int64
		for idx, off := range skip {
			if idx < 0 || idx >= nodes || off < 0 {
				t.Fatalf("accepted %q with entry %d@%d", meta, idx, off)
			}
			if off == committed {
				continue // encode leaves these out
			}
			stateful = append(stateful, idx)
			starts = append(starts, off)
		}
		again := encodeCheckpoint(committed, stateful, starts, nodes, fp)
		if again == "" {
			return
		}
		back, err := decodeCheckpoint(again, committed, nodes, fp)
		if err != nil {
			t.Fatalf("re-encoded %q -> %q does not decode: %v", meta, again, err)
		}
		want := maps.Clone(skip)
		maps.DeleteFunc(want, func(_ int, off int64) bool { return off == committed })
		if !maps.Equal(want, back) {
			t.Fatalf("%q -> %v, re-encoded %q -> %v", meta, want, again, back)
		}
	})
}
