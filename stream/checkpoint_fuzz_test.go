package stream

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzDecodeCheckpoint: the checkpoint decoder reads what Kafka hands back as commit metadata,
// which anyone with access to the group can write. It must never panic, must accept only
// checkpoints of this graph (its operator count and fingerprint), with entries naming real
// operators at non-negative offsets, and what it accepts must encode back to the same
// entries (replay starts, fire watermarks and parameter hashes).
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
	f.Add("fs2/4/abc123/1@8:-5,3@9:1700000000000000000", int64(8))
	f.Add("fs2/4/abc123/1@8:", int64(8))
	f.Add("fs2/4/abc123/1@8,1@9", int64(8))
	f.Add("fs3/4/abc123/1=1z141z3,3=0/1@8:5,3@9", int64(8))
	f.Add("fs3/4/abc123/1=1z141z3/", int64(8))
	f.Add("fs3/4/abc123//", int64(8))
	f.Add("fs3/4/abc123/1=1z141z4/", int64(8))
	f.Add("fs3/4/abc123/1=01/", int64(8))
	f.Add("fs3/4/abc123/1=a,1=b/", int64(8))
	f.Add("fs3/4/abc123/4=a/", int64(8))
	f.Add("fs3/4/abc123/1@8", int64(8))
	f.Add("fs4/4/abc123/1=1z141z3,3=0/1:a,3:b/1@8:5,3@9", int64(8))
	f.Add("fs4/4/abc123/1=1z141z3/1:a/", int64(8))
	f.Add("fs4/4/abc123//1:a,2:b/2@9", int64(8))
	f.Add("fs4/4/abc123/1=1z141z3//", int64(8))
	f.Add("fs4/4/abc123//1:a/2@9", int64(8))
	f.Add("fs4/4/abc123//1:a,1:b/", int64(8))
	f.Add("fs4/4/other//1:a/1@9", int64(8))
	f.Fuzz(func(t *testing.T, meta string, committed int64) {
		skip, fired, params, err := decodeCheckpoint(meta, committed, nodes, fp)
		if err != nil {
			return
		}
		cp, err := parseCheckpoint(meta, committed)
		if err != nil {
			t.Fatalf("decoded %q, but it does not parse: %v", meta, err)
		}
		if (params == nil) != strings.HasPrefix(meta, "fs2/") || (cp.idents == nil) != !strings.HasPrefix(meta, checkpointFormat) {
			t.Fatalf("accepted %q with parameters %v, identities %v", meta, params, cp.idents)
		}
		var section []string
		for _, idx := range slices.Sorted(maps.Keys(params)) {
			h := params[idx]
			if idx < 0 || idx >= nodes || !isParamHash(h) {
				t.Fatalf("accepted %q with parameters entry %d=%q", meta, idx, h)
			}
			if _, ok := cp.idents[idx]; cp.idents != nil && !ok {
				t.Fatalf("accepted %q with parameters of operator %d, which has no identity", meta, idx)
			}
			section = append(section, strconv.Itoa(idx)+"="+h)
		}
		for idx, wm := range fired {
			if _, ok := skip[idx]; !ok || wm == NoWatermark {
				t.Fatalf("accepted %q with a fire watermark %d for operator %d", meta, wm, idx)
			}
		}
		if committed < 0 {
			t.Fatalf("accepted %q without a committed offset", meta)
		}
		// An earlier format's operators get identities, as this release writes them.
		idents := cp.idents
		if idents == nil {
			idents = make(map[int]string)
			for idx := range skip {
				idents[idx] = "1"
			}
			for idx := range params {
				idents[idx] = "1"
			}
		}
		var identSection []string
		for _, idx := range slices.Sorted(maps.Keys(idents)) {
			if idx < 0 || idx >= nodes || !isParamHash(idents[idx]) {
				t.Fatalf("accepted %q with identity entry %d:%q", meta, idx, idents[idx])
			}
			identSection = append(identSection, strconv.Itoa(idx)+":"+idents[idx])
		}
		var stateful []int
		var starts, fires []int64
		for idx, off := range skip {
			if idx < 0 || idx >= nodes || off < 0 {
				t.Fatalf("accepted %q with entry %d@%d", meta, idx, off)
			}
			if _, ok := idents[idx]; !ok {
				t.Fatalf("accepted %q with entry %d@%d of an operator without identity", meta, idx, off)
			}
			wm, hasFired := fired[idx]
			if off == committed && !hasFired {
				continue // encode leaves these out
			}
			if !hasFired {
				wm = NoWatermark
			}
			stateful = append(stateful, idx)
			starts = append(starts, off)
			fires = append(fires, wm)
		}
		again := encodeCheckpoint(committed, stateful, starts, fires, nodes, fp, strings.Join(section, ","), strings.Join(identSection, ","))
		if again == "" {
			return
		}
		back, backFired, backParams, err := decodeCheckpoint(again, committed, nodes, fp)
		if err != nil {
			t.Fatalf("re-encoded %q -> %q does not decode: %v", meta, again, err)
		}
		want := maps.Clone(skip)
		maps.DeleteFunc(want, func(idx int, off int64) bool { _, f := fired[idx]; return off == committed && !f })
		if !maps.Equal(want, back) || !maps.Equal(fired, backFired) || len(params) > 0 && !maps.Equal(params, backParams) {
			t.Fatalf("%q -> %v %v %v, re-encoded %q -> %v %v %v", meta, want, fired, params, again, back, backFired, backParams)
		}
	})
}
