package opensearch_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// scriptNode is a bulk endpoint whose items are decided by a function of the request
// number and the item's action; it records what it stored (index/id -> doc), with create
// semantics for op "create" (an existing document is kept and answered with 409).
type scriptNode struct {
	mu     sync.Mutex
	reqs   int
	stored map[string]string
	// item returns the raw item JSON for an action (empty: store it and answer success).
	item func(req int, op, index, id string) string
	// whole, if set, returns the whole raw response for a request (overrides item).
	whole func(req int, n int) (int, string)
}

func (f *scriptNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs++
	req := f.reqs
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(nil, 64<<20)
	type act struct{ op, index, id, doc string }
	var acts []act
	for sc.Scan() {
		var a map[string]struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		sc.Scan()
		for k, v := range a {
			acts = append(acts, act{k, v.Index, v.ID, sc.Text()})
		}
	}
	if f.whole != nil {
		if st, body := f.whole(req, len(acts)); body != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(st)
			_, _ = w.Write([]byte(body))
			return
		}
	}
	var items []string
	for _, a := range acts {
		it := ""
		if f.item != nil {
			it = f.item(req, a.op, a.index, a.id)
		}
		if it == "" {
			k := a.index + "/" + a.id
			_, existed := f.stored[k]
			switch {
			case existed && a.op == "create":
				it = `{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}`
			case existed:
				f.stored[k] = a.doc
				it = `{"status":200,"result":"updated"}`
			default:
				f.stored[k] = a.doc
				it = `{"status":201,"result":"created"}`
			}
		}
		items = append(items, `{"`+a.op+`":`+it+`}`)
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"errors":true,"items":[%s]}`, strings.Join(items, ","))
}

func (f *scriptNode) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.stored {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func scriptSink[T any](t *testing.T, f *scriptNode, m opensearch.Mapping[T], opts ...opensearch.SinkOption) *opensearch.Sink[T] {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{srv.URL}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	opts = append([]opensearch.SinkOption{
		opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: 2 * time.Millisecond, MaxAttempts: 5}),
	}, opts...)
	s, err := opensearch.NewSink(c, m, opts...)
	require.NoError(t, err)
	return s
}

type itemDoc struct {
	Index string `json:"-"`
	ID    string `json:"id"`
	N     int    `json:"n"`
}

var itemMapping = opensearch.Mapping[itemDoc]{
	Index: func(e itemDoc) string { return e.Index },
	ID:    func(e itemDoc) string { return e.ID },
}

// TestBulkItemsEachWrittenOrDeadLettered: a response mixing successes, 429 and 503 items
// (retried), a mapping error and a 409 under op type index (dead-lettered): every document is
// written or dead-lettered, exactly once.
func TestBulkItemsEachWrittenOrDeadLettered(t *testing.T) {
	f := &scriptNode{stored: map[string]string{}}
	f.item = func(req int, op, index, id string) string {
		switch {
		case req == 1 && (id == "d4" || id == "d5"):
			return `{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}`
		case req <= 2 && id == "d6":
			return `{"status":503,"error":{"type":"unavailable_shards_exception","reason":"no shard"}}`
		case id == "d7":
			return `{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [n]"}}`
		case id == "d8":
			return `{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"conflict"}}`
		}
		return ""
	}
	dl := &collector{}
	s := scriptSink(t, f, itemMapping, opensearch.WithDeadLetter(dl))
	var batch []itemDoc
	for i := range 10 {
		batch = append(batch, itemDoc{Index: "a", ID: fmt.Sprintf("d%d", i), N: i})
	}
	require.NoError(t, s.Write(t.Context(), batch))
	require.Equal(t, []string{"a/d0", "a/d1", "a/d2", "a/d3", "a/d4", "a/d5", "a/d6", "a/d9"}, f.keys())
	var dead []string
	for _, l := range dl.letters() {
		dead = append(dead, l.ID)
	}
	sort.Strings(dead)
	require.Equal(t, []string{"d7", "d8"}, dead)
}

// TestBulkFewerItemsRetried: a 200 with fewer items than documents, then a good answer: the
// request is sent again, and nothing is counted or dead-lettered twice.
func TestBulkFewerItemsRetried(t *testing.T) {
	f := &scriptNode{stored: map[string]string{}}
	f.whole = func(req, n int) (int, string) {
		if req == 1 {
			return 200, `{"errors":false,"items":[{"index":{"status":201,"result":"created"}}]}`
		}
		return 0, ""
	}
	dl := &collector{}
	s := scriptSink(t, f, itemMapping, opensearch.WithDeadLetter(dl))
	batch := []itemDoc{{"a", "x", 1}, {"a", "y", 2}}
	require.NoError(t, s.Write(t.Context(), batch))
	require.Equal(t, []string{"a/x", "a/y"}, f.keys())
	require.Empty(t, dl.letters())
	require.Equal(t, int64(2), s.Stats().Indexed)
}

// TestIndexRefusalBeside429: documents for today's index that meet a momentary overload (429
// items) and one late document for an old day's index that a lifecycle policy closed, in one
// request. The 429s are no sign that today's index takes no document: the late document is
// dead-lettered and the others are retried and written. (Write failed permanently: nothing of
// the request had been written.)
func TestIndexRefusalBeside429(t *testing.T) {
	f := &scriptNode{stored: map[string]string{}}
	f.item = func(req int, op, index, id string) string {
		switch {
		case index == "old-2026.01.01":
			return `{"status":400,"error":{"type":"index_closed_exception","reason":"closed","index":"old-2026.01.01"}}`
		case req == 1:
			return `{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution: queue capacity reached"}}`
		}
		return ""
	}
	dl := &collector{}
	s := scriptSink(t, f, itemMapping, opensearch.WithDeadLetter(dl))
	batch := []itemDoc{{"today", "t1", 1}, {"today", "t2", 2}, {"old-2026.01.01", "late", 3}}
	err := s.Write(t.Context(), batch)
	require.NoError(t, err, "permanent=%v", stream.IsPermanent(err))
	require.Equal(t, []string{"today/t1", "today/t2"}, f.keys())
	require.Len(t, dl.letters(), 1)
	require.Equal(t, "late", dl.letters()[0].ID)
}

// TestIndexRefusalSplitAtTheByteBound: a batch whose late documents for an old day's closed
// index come first, split into requests of about two documents (WithFlushBytes), so that
// some requests hold only late documents. Whether an index refusal is the output's own index
// (fail) or one made from the document (dead-letter) is decided over the whole batch: the
// late documents are dead-lettered and the others written, whatever the split and the order
// the requests run in. (A request that held only late documents failed Write permanently,
// and the same batch failed again on every replay.) A batch all of whose documents are
// refused for their index, over several requests, still fails, naming every document and
// dead-lettering none.
func TestIndexRefusalSplitAtTheByteBound(t *testing.T) {
	const old = "old-2026.01.01"
	closed := func(_ int, _, index, _ string) string {
		if index == old {
			return `{"status":400,"error":{"type":"index_closed_exception","reason":"closed","index":"` + old + `"}}`
		}
		return ""
	}
	for _, concurrency := range []int{1, 4} {
		t.Run(fmt.Sprint("concurrency ", concurrency), func(t *testing.T) {
			f := &scriptNode{stored: map[string]string{}, item: closed}
			dl := &collector{}
			s := scriptSink(t, f, itemMapping, opensearch.WithDeadLetter(dl), opensearch.WithFlushBytes(100),
				opensearch.WithConcurrency(concurrency))
			var batch []itemDoc
			var want, late []string
			for i := range 9 {
				batch = append(batch, itemDoc{old, fmt.Sprintf("late%d", i), i})
				late = append(late, fmt.Sprintf("late%d", i))
			}
			for i := range 3 {
				batch = append(batch, itemDoc{"today", fmt.Sprintf("t%d", i), i})
				want = append(want, fmt.Sprintf("today/t%d", i))
			}
			require.NoError(t, s.Write(t.Context(), batch))
			f.mu.Lock()
			reqs := f.reqs
			f.mu.Unlock()
			require.GreaterOrEqual(t, reqs, 4, "the batch was not split: the test proves nothing")
			require.Equal(t, want, f.keys())
			var dead []string
			for _, l := range dl.letters() {
				require.Equal(t, old, l.Index)
				require.Contains(t, l.Err, "index_closed_exception")
				dead = append(dead, l.ID)
			}
			sort.Strings(dead)
			require.Equal(t, late, dead)

			// Only late documents, over several requests: nothing is written that shows the
			// output's index takes documents, so Write fails and dead-letters nothing.
			f2 := &scriptNode{stored: map[string]string{}, item: closed}
			dl2 := &collector{}
			s2 := scriptSink(t, f2, itemMapping, opensearch.WithDeadLetter(dl2), opensearch.WithFlushBytes(100),
				opensearch.WithConcurrency(concurrency))
			err := s2.Write(t.Context(), batch[:9])
			require.Error(t, err)
			require.True(t, stream.IsPermanent(err), "permanent: %v", err)
			var he *opensearch.HTTPError
			require.ErrorAs(t, err, &he)
			require.ErrorContains(t, err, "9 document(s)")
			require.ErrorContains(t, err, `index "`+old+`"`)
			require.Empty(t, dl2.letters())
			require.Zero(t, s2.Stats().DeadLettered)
		})
	}
}

// TestCreateDuplicatesAsIfInOrder: with op type create, values of one ID in one batch store
// what writing them in order stores: the first is created and the later ones find it (409).
// (The batch collapsed to its last value, as it does with op type index, so what was stored
// depended on where batches were cut.)
func TestCreateDuplicatesAsIfInOrder(t *testing.T) {
	// In order, one Write per value:
	f1 := &scriptNode{stored: map[string]string{}}
	s1 := scriptSink(t, f1, itemMapping, opensearch.WithOpType(opensearch.OpCreate))
	require.NoError(t, s1.Write(t.Context(), []itemDoc{{"a", "x", 1}}))
	require.NoError(t, s1.Write(t.Context(), []itemDoc{{"a", "x", 2}}))
	// The same values in one batch:
	f2 := &scriptNode{stored: map[string]string{}}
	s2 := scriptSink(t, f2, itemMapping, opensearch.WithOpType(opensearch.OpCreate))
	require.NoError(t, s2.Write(t.Context(), []itemDoc{{"a", "x", 1}, {"a", "x", 2}}))
	require.Equal(t, f1.stored["a/x"], f2.stored["a/x"], "one batch should store what writing in order stores")
}

// TestDataStreamWithOpIndexRefused, on the real node: a data stream (as the package's
// WithAppendOnlyDataStreams makes cab-alerts-*) written without WithDataStream (op type index)
// has every document refused alike for the index ("only write ops with an op_type of create
// are allowed in data streams"), no fault of the documents. Like the other index-level
// refusals, Write fails permanently, naming WithDataStream, and nothing is dead-lettered.
// (Every document was dead-lettered and Write returned nil: the job looked healthy.) The
// data stream has a template of its own: the shared cab-alerts-* template must stay a plain
// index's, for the tests of other packages that run meanwhile.
func TestDataStreamWithOpIndexRefused(t *testing.T) {
	n := newNode(t)
	ds := testenv.UniqueName(t, "ds-op-index")
	_, err := n.call(t.Context(), "PUT", "/_index_template/"+ds,
		`{"index_patterns":["`+ds+`"],"data_stream":{},"priority":500,"template":{"settings":{"number_of_replicas":0}}}`)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = n.call(context.Background(), "DELETE", "/_data_stream/"+ds, "")
		_, _ = n.call(context.Background(), "DELETE", "/_index_template/"+ds, "")
	})
	type alert struct {
		ID string    `json:"alert_id"`
		TS time.Time `json:"@timestamp"`
	}
	dl := &collector{}
	s, err := opensearch.NewSink(n.client, opensearch.Mapping[alert]{
		Index: opensearch.FixedIndex[alert](ds),
		ID:    func(a alert) string { return a.ID },
	}, opensearch.WithDeadLetter(dl))
	require.NoError(t, err)
	batch := []alert{{"a1", day}, {"a2", day}, {"a3", day}}
	err = s.Write(t.Context(), batch)
	for _, l := range dl.letters() {
		t.Logf("dead letter: %s %s: %s", l.Index, l.ID, l.Err)
	}
	require.Error(t, err, "every document refused for its index, yet Write succeeded")
	require.True(t, stream.IsPermanent(err))
	require.ErrorContains(t, err, "WithDataStream")
	require.Empty(t, dl.letters())
}

// Offline form of TestDataStreamWithOpIndexRefused, with OpenSearch 2.19's item verbatim.
func TestDataStreamWithOpIndexRefusedOffline(t *testing.T) {
	f := &scriptNode{stored: map[string]string{}}
	f.item = func(req int, op, index, id string) string {
		return `{"status":400,"error":{"type":"illegal_argument_exception","reason":"only write ops with an op_type of create are allowed in data streams"}}`
	}
	dl := &collector{}
	s := scriptSink(t, f, itemMapping, opensearch.WithDeadLetter(dl))
	err := s.Write(t.Context(), []itemDoc{{"cab-alerts-x", "a1", 1}, {"cab-alerts-x", "a2", 2}})
	require.Error(t, err, "%d dead-lettered, Write succeeded", len(dl.letters()))
	require.True(t, stream.IsPermanent(err))
	require.Empty(t, dl.letters())
}

// TestCancelAndCloseMidWrite: the context ends while one request is in flight and another was
// written: Write returns ctx's error (the batch is not acknowledged), Close during a Write
// lets it end, and a Write after Close is refused with ErrClosed.
func TestCancelAndCloseMidWrite(t *testing.T) {
	f := &scriptNode{stored: map[string]string{}}
	release := make(chan struct{})
	arrived := make(chan struct{}, 8)
	srvDone := make(chan struct{})
	defer close(srvDone)
	f.whole = func(req, n int) (int, string) {
		if req == 2 {
			f.mu.Unlock()
			arrived <- struct{}{}
			select {
			case <-release:
			case <-srvDone:
			}
			f.mu.Lock()
		}
		return 0, ""
	}
	s := scriptSink(t, f, itemMapping, opensearch.WithFlushBytes(32), opensearch.WithConcurrency(1),
		opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond}))
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- s.Write(ctx, []itemDoc{{"a", "x", 1}, {"a", "y", 2}, {"a", "z", 3}}) }()
	<-arrived
	require.NoError(t, s.Close(t.Context()))
	cancel()
	err := <-errc
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, s.Write(t.Context(), []itemDoc{{"a", "w", 4}}), opensearch.ErrClosed)
	close(release)
}
