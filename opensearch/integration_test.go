package opensearch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/testenv"
)

const total = 100_000

// batches feeds total results through a pipeline in batches of 10,000 and returns the sink.
func runPipeline(t *testing.T, sink *opensearch.Sink[cabStats], vals []cabStats) *streamtest.Queue[cabStats] {
	t.Helper()
	h := streamtest.New(t, time.Second)
	q, src := streamtest.NewQueue[cabStats](h)
	stream.To(src, sink)
	const per = 10_000
	for i := 0; i < len(vals); i += per {
		q.AddValues(vals[i:min(i+per, len(vals))]...)
	}
	q.End()
	h.RunUntilDone()
	require.Equal(t, int64(len(vals)), q.Committed(0))
	return q
}

func TestSinkPipelineExactlyOnce(t *testing.T) {
	n := newNode(t)
	prefix := n.newPrefix(t)
	vals := stats(0, total)

	sink, err := opensearch.NewSink(n.client, statsMapping(prefix))
	require.NoError(t, err)
	runPipeline(t, sink, vals)
	require.Equal(t, total, n.count(t, prefix+"-*"))
	st := sink.Stats()
	require.Equal(t, int64(total), st.Indexed)
	require.Zero(t, st.Updated)

	t.Run("Replay", func(t *testing.T) {
		replay, err := opensearch.NewSink(n.client, statsMapping(prefix))
		require.NoError(t, err)
		runPipeline(t, replay, vals)
		require.Equal(t, total, n.count(t, prefix+"-*"))
		st := replay.Stats()
		require.Equal(t, int64(total), st.Updated)
		require.Zero(t, st.Indexed)
		for _, i := range []int{0, 777, total - 1} {
			v := vals[i]
			index := prefix + "-" + v.WindowStart.Format("2006.01.02")
			require.Equal(t, 2, n.version(t, index, statsID(v)), "doc %d", i)
		}
	})
}

func TestSinkConformance(t *testing.T) {
	n := newNode(t)
	prefixes := map[stream.Sink[cabStats]]string{}
	streamtest.RunSinkConformance(t, streamtest.SinkSuite[cabStats]{
		New: func(t *testing.T) stream.Sink[cabStats] {
			p := n.newPrefix(t)
			s, err := opensearch.NewSink(n.client, statsMapping(p))
			require.NoError(t, err)
			prefixes[s] = p
			return s
		},
		Value: func(i int) cabStats { return stats(i, 1)[0] },
		ID:    statsID,
		Stored: func(t *testing.T, s stream.Sink[cabStats]) []string {
			return n.ids(t, prefixes[s]+"-*")
		},
	})
}

func TestSinkDeadLetters(t *testing.T) {
	n := newNode(t)
	prefix := n.newPrefix(t)
	vals := stats(0, 1000)
	bad := map[string]bool{}
	for i := range vals {
		if i%10 == 3 {
			vals[i].Bad = true
			bad[statsID(vals[i])] = true
		}
	}
	var got []stream.DeadLetter
	dl := stream.DeadLetterFunc(func(_ context.Context, docs []stream.DeadLetter) error {
		got = append(got, docs...)
		return nil
	})
	file := filepath.Join(t.TempDir(), "dead.jsonl")
	jl, err := opensearch.OpenJSONLinesFile(file)
	require.NoError(t, err)
	defer jl.Close()
	both := stream.DeadLetterFunc(func(ctx context.Context, docs []stream.DeadLetter) error {
		if err := dl(ctx, docs); err != nil {
			return err
		}
		return jl.Write(ctx, docs)
	})
	sink, err := opensearch.NewSink(n.client, statsMapping(prefix), opensearch.WithDeadLetter(both), opensearch.WithFlushBytes(64<<10))
	require.NoError(t, err)
	require.NoError(t, sink.Write(t.Context(), vals))

	require.Equal(t, 900, n.count(t, prefix+"-*"))
	require.Len(t, got, 100)
	for _, r := range got {
		require.True(t, bad[r.ID], r.ID)
		require.Equal(t, 400, r.Status)
		require.Equal(t, stream.ReasonRejected, r.Reason)
		require.True(t, strings.HasPrefix(r.Err, "mapper_parsing_exception: "), r.Err)
		require.Contains(t, r.Err, "distance_km")
		require.Contains(t, string(r.Value), `"distance_km":"not a number"`)
	}
	st := sink.Stats()
	require.Equal(t, int64(100), st.DeadLettered)
	require.Equal(t, int64(900), st.Indexed)

	lines, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, 100, bytes.Count(lines, []byte("\n")))
	var first struct {
		ID     string          `json:"id"`
		Reason string          `json:"reason"`
		Err    string          `json:"err"`
		Status int             `json:"status"`
		Value  json.RawMessage `json:"value"`
	}
	require.NoError(t, json.Unmarshal(lines[:bytes.IndexByte(lines, '\n')], &first))
	require.True(t, bad[first.ID])
	require.Equal(t, stream.ReasonRejected, first.Reason)
	require.Equal(t, 400, first.Status)
	require.Contains(t, first.Err, "mapper_parsing_exception")
	require.Contains(t, string(first.Value), "not a number")

	t.Run("WithoutDeadLetterFailsPermanently", func(t *testing.T) {
		sink, err := opensearch.NewSink(n.client, statsMapping(prefix))
		require.NoError(t, err)
		err = sink.Write(t.Context(), vals[:20])
		require.Error(t, err)
		require.True(t, stream.IsPermanent(err))
		var re *opensearch.RejectedError
		require.ErrorAs(t, err, &re)
		require.Len(t, re.Docs, 2)
	})
}

// A data stream accepts only create: a replay conflicts on every ID, and the sink counts the
// conflicts as existing documents, not errors.
func TestSinkDataStream(t *testing.T) {
	n := newNode(t)
	name := testenv.UniqueName(t, "fleet-ds")
	n.must(t, "PUT", "/_index_template/"+name, `{"index_patterns":["`+name+`*"],"priority":500,"data_stream":{},
		"template":{"settings":{"number_of_replicas":0},"mappings":{"properties":{"@timestamp":{"type":"date"},"cab_id":{"type":"keyword"}}}}}`)
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = n.call(ctx, "DELETE", "/_data_stream/"+name, "")
		_, _ = n.call(ctx, "DELETE", "/_index_template/"+name, "")
	})
	vals := stats(0, 2000)
	sink, err := opensearch.NewSink(n.client, opensearch.Mapping[cabStats]{
		Index: opensearch.FixedIndex[cabStats](name),
		ID:    statsID,
		Body:  appendCabStats,
	}, opensearch.WithDataStream())
	require.NoError(t, err)
	require.NoError(t, sink.Write(t.Context(), vals))
	require.NoError(t, sink.Write(t.Context(), vals))
	require.Equal(t, 2000, n.count(t, name))
	st := sink.Stats()
	require.Equal(t, int64(2000), st.Indexed)
	require.Equal(t, int64(2000), st.Existed)
	require.Zero(t, st.DeadLettered)
	// 2,000 documents of about 330 bytes: each batch in concurrent requests of the default
	// flush size, which race to map the new data stream's fields.
	require.GreaterOrEqual(t, st.Requests, int64(2*2))
}
