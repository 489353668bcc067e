package stream

import (
	"math/rand/v2"
	"testing"
)

// watermarkAtScan is WatermarkAt's definition: the wm of the last point whose from is at or
// before offset, else the watermark before the batch's marks.
func watermarkAtScan(pc *PartitionContext, offset int64) int64 {
	wm := pc.startMark
	for _, m := range pc.marks {
		if m.from > offset {
			break
		}
		wm = m.wm
	}
	return wm
}

// TestWatermarkAtMatchesDefinition: WatermarkAt's search gives what the scan over the batch's
// points gives, for random points (none, one, hundreds) and offsets before, between, at and
// after them.
func TestWatermarkAtMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for trial := range 2000 {
		n := rng.IntN(300)
		if trial%10 == 0 {
			n = trial % 3
		}
		pc := &PartitionContext{Merged: true, startMark: rng.Int64N(1000) - 500}
		from, wm := rng.Int64N(100), pc.startMark
		for range n {
			from += 1 + rng.Int64N(5)
			wm += rng.Int64N(50)
			pc.marks = append(pc.marks, markPoint{from: from, wm: wm})
		}
		for range 50 {
			off := rng.Int64N(from+20) - 10
			if got, want := pc.WatermarkAt(off), watermarkAtScan(pc, off); got != want {
				t.Fatalf("trial %d, %d points, offset %d: WatermarkAt %d, the scan %d", trial, n, off, got, want)
			}
		}
	}
}

// BenchmarkWatermarkAt: a record's watermark on a merged partition whose batch read a mark
// from each of 300 upstream partitions (two topics of 150), records spread among them.
func BenchmarkWatermarkAt(b *testing.B) {
	pc := &PartitionContext{Merged: true}
	for i := range 300 {
		pc.marks = append(pc.marks, markPoint{from: int64(i*70 + 1), wm: int64(i)})
	}
	var sink int64
	off := int64(0)
	for b.Loop() {
		sink += pc.WatermarkAt(off)
		off = (off + 37) % 21000
	}
	_ = sink
}
