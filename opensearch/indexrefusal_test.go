package opensearch_test

import (
	"cmp"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestIndexRefusedIsPermanent, on the real node: documents for an index that can take no
// document (closed; an alias without a write index; missing, where action.auto_create_index
// does not let OpenSearch create it) are refused for the index, not for themselves. When
// nothing of the request is written, Write fails with a permanent *HTTPError that names the
// index and says what to do about it, and nothing is dead-lettered, so the batch is written
// once the index is right. Before, every document went to the dead letters and Write
// returned nil: a job writing to a closed index acknowledged batch after batch that reached
// no index. When other documents of the request are written to other indexes (an old day's
// index closed by a lifecycle policy), the refused ones are dead-lettered (helper-68's
// review: stopping there would stop at every replay of the same records).
func TestIndexRefusedIsPermanent(t *testing.T) {
	n := newNode(t)
	base := testenv.UniqueName(t, "refused")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = n.call(ctx, "DELETE", "/"+base+"-*,nocreate-"+base, "")
	})
	for _, tc := range []struct {
		name, index string
		setup       func(t *testing.T, index string)
		says        []string
	}{
		{"closed", base + "-closed", func(t *testing.T, index string) {
			n.must(t, "PUT", "/"+index, `{"settings":{"number_of_replicas":0}}`)
			n.must(t, "POST", "/"+index+"/_close", "")
		}, []string{"index_closed_exception", "the index is closed", "_open"}},
		{"alias without a write index", base + "-alias", func(t *testing.T, index string) {
			for _, i := range []string{"-a1", "-a2"} {
				n.must(t, "PUT", "/"+base+i, `{"settings":{"number_of_replicas":0}}`)
			}
			n.must(t, "POST", "/_aliases", `{"actions":[{"add":{"index":"`+base+`-a1","alias":"`+index+`"}},{"add":{"index":"`+base+`-a2","alias":"`+index+`"}}]}`)
		}, []string{"no write index is defined for alias", "is_write_index"}},
		{"missing, auto-create off", "nocreate-" + base, func(t *testing.T, _ string) {
			n.noAutoCreate(t)
		}, []string{"index_not_found_exception", "action.auto_create_index"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup(t, tc.index)
			dl := &collector{}
			s, err := opensearch.NewSink(n.client, opensearch.Mapping[cabStats]{
				Index: func(cabStats) string { return tc.index }, ID: statsID, Body: appendCabStats,
			}, opensearch.WithDeadLetter(dl), opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 3}))
			require.NoError(t, err)
			err = s.Write(t.Context(), stats(0, 5))
			require.Error(t, err)
			require.True(t, stream.IsPermanent(err), "permanent: %v", err)
			var he *opensearch.HTTPError
			require.ErrorAs(t, err, &he)
			require.Equal(t, n.url+"/_bulk", he.URL)
			for _, want := range append([]string{`index "` + tc.index + `"`, "5 document(s)"}, tc.says...) {
				require.ErrorContains(t, err, want)
			}
			require.Empty(t, dl.letters(), "nothing dead-lettered")
			require.Zero(t, s.Stats().DeadLettered)
			require.Equal(t, int64(1), s.Stats().Requests, "not retried")
		})
	}

	// An index made from the document (an old day's, closed by a lifecycle policy) among
	// others that take the documents of the same request: those are written, the refused
	// ones dead-lettered with the refusal and the fix, and Write succeeds.
	t.Run("made from the document", func(t *testing.T) {
		closed, open := base+"-old", base+"-today"
		n.must(t, "PUT", "/"+closed, `{"settings":{"number_of_replicas":0}}`)
		n.must(t, "POST", "/"+closed+"/_close", "")
		dl := &collector{}
		s, err := opensearch.NewSink(n.client, opensearch.Mapping[cabStats]{
			Index: func(v cabStats) string {
				if v.Events%2 == 0 {
					return closed
				}
				return open
			},
			ID: statsID, Body: appendCabStats,
		}, opensearch.WithDeadLetter(dl))
		require.NoError(t, err)
		vals := stats(0, 10)
		var toClosed int
		for _, v := range vals {
			if v.Events%2 == 0 {
				toClosed++
			}
		}
		require.Positive(t, toClosed)
		require.Less(t, toClosed, len(vals))
		require.NoError(t, s.Write(t.Context(), vals))
		letters := dl.letters()
		require.Len(t, letters, toClosed)
		for _, l := range letters {
			require.Equal(t, closed, l.Index)
			require.Equal(t, stream.ReasonRejected, l.Reason)
			require.Contains(t, l.Err, "index_closed_exception")
			require.Contains(t, l.Err, "_open")
		}
		require.Equal(t, len(vals)-toClosed, n.count(t, open))
	})

	// The same with the batch split at the byte bound right after the late documents, so
	// that the first requests hold nothing else: decided over the whole batch, they are
	// dead-lettered too. (The first request failed Write, and every replay of the batch.)
	t.Run("made from the document, split", func(t *testing.T) {
		closed, open := base+"-split-old", base+"-split-today"
		n.must(t, "PUT", "/"+closed, `{"settings":{"number_of_replicas":0}}`)
		n.must(t, "POST", "/"+closed+"/_close", "")
		dl := &collector{}
		s, err := opensearch.NewSink(n.client, opensearch.Mapping[cabStats]{
			Index: func(v cabStats) string {
				if v.Events < 16 {
					return closed
				}
				return open
			},
			ID: statsID, Body: appendCabStats,
		}, opensearch.WithDeadLetter(dl), opensearch.WithFlushBytes(400))
		require.NoError(t, err)
		vals := stats(0, 10)
		slices.SortFunc(vals, func(a, b cabStats) int { return cmp.Compare(a.Events, b.Events) })
		toClosed := slices.IndexFunc(vals, func(v cabStats) bool { return v.Events >= 16 })
		require.Greater(t, toClosed, 1)
		require.NoError(t, s.Write(t.Context(), vals))
		require.Greater(t, s.Stats().Requests, int64(2), "one request: the test proves nothing")
		require.Len(t, dl.letters(), toClosed)
		for _, l := range dl.letters() {
			require.Equal(t, closed, l.Index)
			require.Contains(t, l.Err, "index_closed_exception")
		}
		require.Equal(t, len(vals)-toClosed, n.count(t, open))
	})
}
