package stream

import (
	"strconv"
	"testing"
	"time"
)

// collidingNames returns two operator names whose identities collide (31 bits of a hash) for
// an operator built like the one probe describes ("probe" its name): a birthday search.
func collidingNames(t *testing.T, probe string) (string, string) {
	t.Helper()
	const name = "probe|"
	if len(probe) < len(name) || probe[:len(name)] != name {
		t.Fatalf("unexpected description %q", probe)
	}
	rest := probe[len("probe"):]
	seen := make(map[string]string)
	for i := range 1 << 20 {
		n := "sum" + strconv.Itoa(i)
		id := identHash(n + rest + "<")
		if m, ok := seen[id]; ok {
			return m, n
		}
		seen[id] = n
	}
	t.Fatal("no collision")
	return "", ""
}

// TestCollidingIdentities: two operators of one graph whose identities hash alike (31 bits;
// about one graph of 120 stateful operators in 300,000) still resume that graph's own
// checkpoint exactly, and neither is matched from it by another graph. Before (helper-71's
// review), the checkpoint's decoder refused two alike identities, so every restart of such a
// graph started cold, re-emitting windows from part of their records.
func TestCollidingIdentities(t *testing.T) {
	build := func(names []string, extra bool) *Pipeline {
		p, err := New(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		src := From[int64](p, noSource{})
		for _, n := range names {
			Apply(src, n, Operator[int64, int64](holdAll{}))
		}
		Apply(src, "other", Operator[int64, int64](holdAll{}))
		if extra {
			Map(src, func(v int64) int64 { return v })
		}
		return p
	}
	probe := build([]string{"probe"}, false)
	a, b := collidingNames(t, identityOf(probe.nodes[1]))
	p := build([]string{a, b}, false)
	ids, section := p.operatorIdents()
	if ids[1] != ids[2] || ids[1] == ids[3] {
		t.Fatalf("%s and %s: identities %v", a, b, ids)
	}
	lin := p.lineage()
	_, params := p.operatorParams()
	meta := encodeCheckpoint(2, lin.stateful, []int64{5, 6, 7}, nil, len(p.nodes), p.fingerprint(), params, section)

	skip, _, _, err := decodeCheckpoint(meta, 2, len(p.nodes), p.fingerprint())
	if err != nil {
		t.Fatalf("the graph's own checkpoint %q: %v", meta, err)
	}
	if skip[1] != 5 || skip[2] != 6 || skip[3] != 7 {
		t.Fatalf("the graph's own checkpoint %q: starts %v", meta, skip)
	}

	other := build([]string{a, b}, true)
	cp, err := parseCheckpoint(meta, 2)
	if err != nil {
		t.Fatal(err)
	}
	skip, _, _, ch, err := other.matchCheckpoint(cp, meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := skip[1]; ok {
		t.Fatalf("%s resumed by an identity two operators hold: %v", a, skip)
	}
	if _, ok := skip[2]; ok {
		t.Fatalf("%s resumed by an identity two operators hold: %v", b, skip)
	}
	if skip[3] != 7 || len(ch.kept) != 1 || len(ch.fresh) != 2 {
		t.Fatalf("another graph: starts %v, kept %v, fresh %v", skip, ch.kept, ch.fresh)
	}
}
