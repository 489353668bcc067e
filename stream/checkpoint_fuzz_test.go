package stream

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
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
	f.Add("fs4/4/abc123/1=1z141z3,3=0/2000001,2000002/1@8:5,3@9", int64(8))
	f.Add("fs4/4/abc123/1=1z141z3/2000001/", int64(8))
	f.Add("fs4/4/abc123//2000001,1000002/2@9", int64(8))
	f.Add("fs4/4/abc123/1=1z141z3//", int64(8))
	f.Add("fs4/4/abc123//2000001/2@9", int64(8))
	f.Add("fs4/4/abc123//2000001,1000001/", int64(8))
	f.Add("fs4/4/abc123//2000001,0000002/", int64(8))
	f.Add("fs4/4/abc123//5000001/", int64(8))
	f.Add("fs4/4/abc123/1=1z141z3/-/1@8:5", int64(8))
	f.Add("fs4/4/other//2000001/1@9", int64(8))
	f.Fuzz(func(t *testing.T, meta string, committed int64) {
		skip, fired, params, err := decodeCheckpoint(meta, committed, nodes, fp)
		if err != nil {
			return
		}
		cp, err := parseCheckpoint(meta, committed)
		if err != nil {
			t.Fatalf("decoded %q, but it does not parse: %v", meta, err)
		}
		if (params == nil) != strings.HasPrefix(meta, "fs2/") || (cp.idents == nil) != (!strings.HasPrefix(meta, checkpointFormat) || strings.Split(meta, "/")[4] == identsOmitted) {
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
				idents[idx] = identHash(strconv.Itoa(idx))
			}
			for idx := range params {
				idents[idx] = identHash(strconv.Itoa(idx))
			}
		}
		var identSection []string
		prev := -1
		for _, idx := range slices.Sorted(maps.Keys(idents)) {
			if idx < 0 || idx >= nodes || !isIdent(idents[idx]) {
				t.Fatalf("accepted %q with identity entry %d:%q", meta, idx, idents[idx])
			}
			identSection = append(identSection, strconv.Itoa(idx-prev)+idents[idx])
			prev = idx
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

// FuzzMatchCheckpoint: a checkpoint of another graph, whatever its content, applies only to
// this graph's stateful operators (replay starts, fire watermarks and parameter hashes by
// their node index here), never to a stateless one or an index out of the graph, never
// panics, and starts no new operator before the committed offset.
func FuzzMatchCheckpoint(f *testing.F) {
	p, err := New(time.Second)
	if err != nil {
		f.Fatal(err)
	}
	src := From[int64](p, noSource{})
	m := Map(src, func(v int64) int64 { return v })
	for _, name := range []string{"a", "sum", "sum", "b"} {
		m = Apply(m, name, Operator[int64, int64](holdAll{}))
	}
	now, section := p.operatorIdents()
	f.Add("fs4/9/other//"+section+"/2@5,3@6:7", int64(5))
	f.Add("fs4/9/other/2=1z141z3/"+section+"/2@5", int64(5))
	f.Add("fs4/3/other//1"+now[2]+",1000001/1@4,2@9:3", int64(1))
	f.Add("fs4/3/other//-/1@4", int64(1))
	f.Add("fs3/3/other//1@4", int64(1))
	f.Fuzz(func(t *testing.T, meta string, committed int64) {
		cp, err := parseCheckpoint(meta, committed)
		if err != nil || cp.sameGraph(len(p.nodes), p.fingerprint()) {
			return
		}
		skip, fired, params, ch, err := p.matchCheckpoint(cp, meta)
		if err != nil {
			if cp.idents != nil {
				t.Fatalf("%q: identities, yet refused: %v", meta, err)
			}
			return
		}
		check := func(what string, idx int) {
			if _, ok := now[idx]; !ok {
				t.Fatalf("%q: %s of node %d, which is not a stateful operator here", meta, what, idx)
			}
		}
		for idx := range skip {
			check("replay start", idx)
		}
		for idx := range fired {
			check("fire watermark", idx)
		}
		for idx := range params {
			check("parameters", idx)
		}
		if len(ch.kept)+len(ch.fresh) != len(now) {
			t.Fatalf("%q: kept %v and fresh %v are not the %d stateful operators", meta, ch.kept, ch.fresh, len(now))
		}
		p.freshStarts(skip, ch.fresh, committed)
		for idx, off := range skip {
			check("replay start", idx)
			if slices.Contains(ch.fresh, idx) && off < committed {
				t.Fatalf("%q: new operator %d starts at %d, before the committed offset %d", meta, idx, off, committed)
			}
		}
	})
}

// noSource is a Source that never pushes; holdAll is a stateful operator that keeps nothing.
type noSource struct{}

func (noSource) Run(ctx context.Context, _ *Input[int64]) error { <-ctx.Done(); return nil }
func (noSource) Commit(context.Context, []Position) error       { return nil }

type holdAll struct{}

func (holdAll) Process(_ *PartitionContext, in []Elem[int64], out []Elem[int64]) []Elem[int64] {
	return append(out, in...)
}
func (holdAll) Retained(int32) (int64, bool) { return 0, false }
func (holdAll) Drop(int32)                   {}
func (holdAll) StateSize() int               { return 0 }
