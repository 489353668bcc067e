package opensearch_test

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/opensearch-project/opensearch-go/v4/opensearchutil"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
)

// Both variants index the same window results (about 300 bytes each, deterministic IDs,
// daily indexes) with the same number of concurrent requests and the same flush size.
const (
	benchDocs    = 200_000
	benchWorkers = 4
	benchFlush   = 2 << 20
)

// warmUp runs once per test binary, before the first measured variant, so that neither pays
// for the node's warm-up (JIT, first index creation).
var warmUp sync.Once

// BenchmarkBulk compares the sink with opensearch-go's BulkIndexer against the real node.
// Each iteration indexes benchDocs new documents. Run with -benchtime=1x -count=6 and
// compare docs/s with benchstat.
func BenchmarkBulk(b *testing.B) {
	n := newNode(b)
	vals := stats(0, benchDocs)
	warmUp.Do(func() {
		sink, err := opensearch.NewSink(n.client, statsMapping(n.newPrefix(b)),
			opensearch.WithConcurrency(benchWorkers), opensearch.WithFlushBytes(benchFlush))
		require.NoError(b, err)
		require.NoError(b, sink.Write(b.Context(), vals))
	})
	var size int
	for _, v := range vals[:1000] {
		d, _ := appendCabStats(nil, v)
		size += len(d)
	}
	// ids gives each iteration its own IDs, so every iteration creates documents.
	ids := func(iter int) func(cabStats) string {
		p := "bench-" + strconv.Itoa(iter)
		return func(v cabStats) string { return opensearch.WindowID(p, v.CabID, v.WindowStart, v.WindowEnd) }
	}

	b.Run("Sink", func(b *testing.B) {
		prefix := n.newPrefix(b)
		m := statsMapping(prefix)
		var iter atomic.Int64
		m.ID = func(v cabStats) string { return ids(int(iter.Load()))(v) }
		sink, err := opensearch.NewSink(n.client, m,
			opensearch.WithConcurrency(benchWorkers), opensearch.WithFlushBytes(benchFlush))
		require.NoError(b, err)
		b.ReportAllocs()
		for b.Loop() {
			require.NoError(b, sink.Write(b.Context(), vals))
			iter.Add(1)
		}
		b.ReportMetric(float64(benchDocs*b.N)/b.Elapsed().Seconds(), "docs/s")
		b.ReportMetric(float64(size)/1000, "bytes/doc")
		st := sink.Stats()
		require.Equal(b, int64(benchDocs*b.N), st.Indexed)
	})

	b.Run("BulkIndexer", func(b *testing.B) {
		prefix := n.newPrefix(b)
		index := statsMapping(prefix).Index
		var failed atomic.Int64
		onFailure := func(context.Context, opensearchutil.BulkIndexerItem, opensearchapi.BulkRespItem, error) {
			failed.Add(1)
		}
		iter := 0
		b.ReportAllocs()
		for b.Loop() {
			id := ids(iter)
			bi, err := opensearchutil.NewBulkIndexer(opensearchutil.BulkIndexerConfig{
				Client:     n.client.API(),
				NumWorkers: benchWorkers,
				FlushBytes: benchFlush,
			})
			require.NoError(b, err)
			for _, v := range vals {
				doc, _ := appendCabStats(make([]byte, 0, 320), v)
				require.NoError(b, bi.Add(b.Context(), opensearchutil.BulkIndexerItem{
					Index:      index(v),
					Action:     "index",
					DocumentID: id(v),
					Body:       bytes.NewReader(doc),
					OnFailure:  onFailure,
				}))
			}
			require.NoError(b, bi.Close(b.Context()))
			st := bi.Stats()
			require.Equal(b, uint64(benchDocs), st.NumFlushed)
			iter++
		}
		b.ReportMetric(float64(benchDocs*b.N)/b.Elapsed().Seconds(), "docs/s")
		b.ReportMetric(float64(size)/1000, "bytes/doc")
		require.Zero(b, failed.Load())
	})
}
