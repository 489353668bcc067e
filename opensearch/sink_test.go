package opensearch_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
)

// fakeNode is an offline bulk endpoint. Its handle function decides each item's status
// from the action's _id and the attempt number of that _id.
type fakeNode struct {
	mu       sync.Mutex
	attempts map[string]int
	stored   map[string][]byte
	// status returns the whole request's status (200 to read items).
	status func(req int) int
	// item returns an item's status.
	item func(id string, attempt int) int
	// itemBody, if set, replaces item: an item's status and error object.
	itemBody func(id string, attempt int) (int, string)
	// errBody is the body of a request refused whole (status != 200).
	errBody string
	// maxDocs, if set, refuses with 413 requests of more documents, or of a document longer
	// than 64 bytes.
	maxDocs int
	// bare413 makes those 413s bodiless, as OpenSearch's HTTP layer sends them for a request
	// over http.max_content_length.
	bare413 bool
	// block, if set, is waited for by every request.
	block    chan struct{}
	reqs     atomic.Int64
	inFlight atomic.Int64
	maxIn    atomic.Int64
	query    atomic.Value
}

func newFake() *fakeNode {
	return &fakeNode{attempts: map[string]int{}, stored: map[string][]byte{},
		status: func(int) int { return 200 }, item: func(string, int) int { return 0 }}
}

func (f *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/_bulk" {
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{}`))
		return
	}
	in := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxIn.Load()
		if in <= m || f.maxIn.CompareAndSwap(m, in) {
			break
		}
	}
	f.query.Store(r.URL.RawQuery)
	n := int(f.reqs.Add(1))
	if f.block != nil {
		select {
		case <-f.block:
		case <-r.Context().Done():
			return
		}
	}
	if s := f.status(n); s != 200 {
		body := f.errBody
		if body == "" {
			body = `{"error":{"type":"injected"}}`
		}
		http.Error(w, body, s)
		return
	}
	if f.maxDocs > 0 {
		b, _ := io.ReadAll(r.Body)
		lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
		tooLarge := len(lines)/2 > f.maxDocs
		for i := 1; i < len(lines); i += 2 {
			tooLarge = tooLarge || len(lines[i]) > 64
		}
		if tooLarge && f.bare413 {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		if tooLarge {
			http.Error(w, `{"error":{"type":"too_large","reason":"request too large"},"status":413}`, http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(nil, 64<<20)
	var items []string
	errs := false
	for sc.Scan() {
		var action map[string]struct {
			ID string `json:"_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &action); err != nil {
			http.Error(w, "bad action: "+err.Error(), 400)
			return
		}
		if !sc.Scan() {
			http.Error(w, "missing doc", 400)
			return
		}
		var op, id string
		for k, v := range action {
			op, id = k, v.ID
		}
		f.mu.Lock()
		f.attempts[id]++
		st := f.item(id, f.attempts[id])
		var errObj string
		if f.itemBody != nil {
			st, errObj = f.itemBody(id, f.attempts[id])
		}
		var it string
		switch {
		case st == 0 || st == 200 || st == 201:
			_, existed := f.stored[id]
			f.stored[id] = bytes.Clone(sc.Bytes())
			switch {
			case existed && op == "create":
				errs = true
				it = `{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}`
			case existed:
				it = `{"status":200,"result":"updated"}`
			default:
				it = `{"status":201,"result":"created"}`
			}
		case errObj != "":
			errs = true
			it = fmt.Sprintf(`{"status":%d,"error":%s}`, st, errObj)
		default:
			errs = true
			it = fmt.Sprintf(`{"status":%d,"error":{"type":"injected_%d","reason":"injected for %s","caused_by":{"type":"cause","reason":"because"}}}`, st, st, id)
		}
		f.mu.Unlock()
		items = append(items, `{"`+op+`":`+it+`}`)
	}
	fmt.Fprintf(w, `{"errors":%t,"items":[%s]}`, errs, strings.Join(items, ","))
}

type rec struct {
	ID  string `json:"id"`
	N   int    `json:"n"`
	Pad string `json:"pad,omitempty"`
}

func recs(n int) []rec {
	out := make([]rec, n)
	for i := range out {
		out[i] = rec{ID: fmt.Sprintf("r%05d", i), N: i}
	}
	return out
}

var recMapping = opensearch.Mapping[rec]{
	Index: opensearch.FixedIndex[rec]("recs"),
	ID:    func(r rec) string { return r.ID },
}

func fakeSink(t *testing.T, f *fakeNode, opts ...opensearch.SinkOption) (*opensearch.Sink[rec], *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{srv.URL}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	opts = append([]opensearch.SinkOption{
		opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: 5 * time.Millisecond}),
	}, opts...)
	s, err := opensearch.NewSink(c, recMapping, opts...)
	require.NoError(t, err)
	return s, srv
}

func TestSinkItemRetries(t *testing.T) {
	f := newFake()
	f.item = func(id string, attempt int) int {
		if attempt == 1 && id[len(id)-1] == '7' {
			return 429
		}
		if attempt <= 2 && id[len(id)-1] == '3' {
			return 503
		}
		return 0
	}
	s, _ := fakeSink(t, f, opensearch.WithFlushBytes(4<<10))
	require.NoError(t, s.Write(t.Context(), recs(1000)))
	require.Len(t, f.stored, 1000)
	st := s.Stats()
	require.Equal(t, int64(1000), st.Indexed)
	require.Equal(t, int64(100+200), st.Failed)
	require.Equal(t, int64(100+200), st.Retried)
	require.Zero(t, st.RequestRetries)
	require.Contains(t, f.query.Load(), "filter_path=")

	// A replay updates.
	require.NoError(t, s.Write(t.Context(), recs(1000)))
	require.Equal(t, int64(1000), s.Stats().Updated)
}

// TestSinkRetriesKeepEachDocument: items retried first as a run of neighbours in the
// chunk's buffer (B C D E), then as a gapped subset (B D E), then alone (D) are each sent
// with their own document every time. The second retry's body was once copied over the
// chunk's buffer that the first one's had pointed into, and D's last attempt sent E's bytes:
// D was never indexed, and Write returned nil. Retried items are moved together in the
// buffer; within the first half of a request refused whole (413), the second half's
// documents, later in the same buffer, are sent as they were.
func TestSinkRetriesKeepEachDocument(t *testing.T) {
	for _, tc := range []struct {
		name    string
		docs    int
		maxDocs int            // the fake's 413 above this many documents
		busy    map[string]int // 429s before the item is taken
	}{
		{"neighbours then gapped then alone", 5, 0, map[string]int{"r00001": 2, "r00002": 1, "r00003": 3, "r00004": 2}},
		{"gapped in split halves", 8, 4, map[string]int{"r00001": 1, "r00003": 1, "r00006": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.maxDocs = tc.maxDocs
			f.item = func(id string, attempt int) int {
				if attempt <= tc.busy[id] {
					return 429
				}
				return 0
			}
			s, _ := fakeSink(t, f)
			in := recs(tc.docs)
			require.NoError(t, s.Write(t.Context(), in))
			for _, r := range in {
				want, err := json.Marshal(r)
				require.NoError(t, err)
				require.Equal(t, string(want), string(f.stored[r.ID]), "the document stored as %s", r.ID)
				require.Equal(t, tc.busy[r.ID]+1, f.attempts[r.ID], "attempts of %s", r.ID)
			}
			require.Equal(t, int64(tc.docs), s.Stats().Indexed)
			require.Equal(t, tc.maxDocs > 0, s.Stats().Split > 0, "split")
		})
	}
}

func TestSinkRequestRetries(t *testing.T) {
	f := newFake()
	f.status = func(n int) int {
		switch n {
		case 1:
			return 503
		case 2:
			return 429
		case 3:
			return 502
		}
		return 200
	}
	s, _ := fakeSink(t, f)
	require.NoError(t, s.Write(t.Context(), recs(10)))
	require.Len(t, f.stored, 10)
	st := s.Stats()
	require.Equal(t, int64(3), st.RequestRetries)
	require.Equal(t, int64(30), st.Retried)
	require.Equal(t, int64(4), st.Requests)
	require.Equal(t, int64(4), st.Latency.Count)
}

func TestSinkPermanentRequestError(t *testing.T) {
	f := newFake()
	f.status = func(int) int { return 403 }
	s, _ := fakeSink(t, f)
	err := s.Write(t.Context(), recs(10))
	require.True(t, stream.IsPermanent(err))
	var he *opensearch.HTTPError
	require.ErrorAs(t, err, &he)
	require.Equal(t, 403, he.Status)
}

func TestSinkMaxAttempts(t *testing.T) {
	f := newFake()
	f.status = func(int) int { return 503 }
	s, _ := fakeSink(t, f, opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 3}))
	err := s.Write(t.Context(), recs(10))
	require.Error(t, err)
	require.False(t, stream.IsPermanent(err))
	require.Equal(t, int64(3), f.reqs.Load())
}

// TestSinkItemRetriesGiveUpSayWhy: when items that failed temporarily (429, 5xx) still fail
// at the last attempt, Write's error says what OpenSearch answered for them (the status,
// error type and reason of the first), as it does after a request that failed whole. It once
// said only "bulk: giving up after 2 attempts: opensearch: bulk: 3 item(s) failed
// temporarily": an operator could not tell a shard that is not active from an overloaded
// node.
func TestSinkItemRetriesGiveUpSayWhy(t *testing.T) {
	f := newFake()
	f.itemBody = func(id string, _ int) (int, string) {
		if id == "r00001" || id == "r00004" || id == "r00007" {
			return 503, `{"type":"unavailable_shards_exception","reason":"[recs][0] primary shard is not active Timeout: [1m]"}`
		}
		return 0, ""
	}
	s, _ := fakeSink(t, f, opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 2}))
	err := s.Write(t.Context(), recs(10))
	require.Error(t, err)
	require.False(t, stream.IsPermanent(err))
	require.ErrorContains(t, err, "3 item(s) failed temporarily")
	require.ErrorContains(t, err, "503")
	require.ErrorContains(t, err, "unavailable_shards_exception: [recs][0] primary shard is not active")
	require.ErrorContains(t, err, `"r00001"`, "the first one's id")
}

// TestSinkFailProcessorDeadLetters: a document that an ingest pipeline's fail processor
// refuses (OpenSearch answers its item with status 500 and fail_processor_exception, for
// what the document holds) is dead-lettered with that answer, and the rest of the batch is
// written. The sink took the 500 for a node's trouble and sent the document again at every
// attempt: Write failed when the retry policy gave up, the pipeline wrote the batch again,
// and one document the pipeline's author chose to refuse held the pipeline up for ever.
func TestSinkFailProcessorDeadLetters(t *testing.T) {
	f := newFake()
	f.itemBody = func(id string, _ int) (int, string) {
		if id == "r00003" {
			return 500, `{"type":"fail_processor_exception","reason":"no cab_id in r00003"}`
		}
		return 0, ""
	}
	var got []stream.DeadLetter
	s, _ := fakeSink(t, f, opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 3}),
		opensearch.WithDeadLetter(stream.DeadLetterFunc(func(_ context.Context, d []stream.DeadLetter) error {
			got = append(got, d...)
			return nil
		})))
	require.NoError(t, s.Write(t.Context(), recs(10)))
	require.Len(t, got, 1)
	require.Equal(t, "r00003", got[0].ID)
	require.Equal(t, stream.ReasonRejected, got[0].Reason)
	require.Equal(t, 500, got[0].Status)
	require.Equal(t, "fail_processor_exception: no cab_id in r00003", got[0].Err)
	require.JSONEq(t, `{"id":"r00003","n":3}`, string(got[0].Value))
	require.Len(t, f.stored, 9)
	require.Equal(t, 1, f.attempts["r00003"], "not sent again")
	require.Zero(t, s.Stats().Retried)
}

func TestSinkStopsWhenCtxEnds(t *testing.T) {
	f := newFake()
	f.status = func(int) int { return 503 }
	s, _ := fakeSink(t, f, opensearch.WithRetry(stream.RetryPolicy{Initial: time.Hour, Max: time.Hour}))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- s.Write(ctx, recs(10)) }()
	waitFor(t, 10*time.Second, "first attempt", func() bool { return s.Stats().RequestRetries > 0 })
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, context.Canceled, err) // unwrapped
	case <-time.After(10 * time.Second):
		t.Fatal("Write did not return after ctx ended")
	}
}

func TestSinkDeadLettersAndEncodeErrors(t *testing.T) {
	f := newFake()
	f.item = func(id string, _ int) int {
		if strings.HasSuffix(id, "5") {
			return 400
		}
		return 0
	}
	var got []stream.DeadLetter
	s, _ := fakeSink(t, f, opensearch.WithDeadLetter(stream.DeadLetterFunc(func(_ context.Context, d []stream.DeadLetter) error {
		got = append(got, d...)
		return nil
	})))
	require.NoError(t, s.Write(t.Context(), recs(100)))
	require.Len(t, got, 10)
	require.Equal(t, stream.ReasonRejected, got[0].Reason)
	require.Equal(t, "injected_400: injected for r00005 (caused by cause: because)", got[0].Err)
	require.Equal(t, 400, got[0].Status)
	require.Equal(t, "recs", got[0].Index)
	require.Equal(t, "r00005", got[0].ID)
	require.Equal(t, int64(-1), got[0].Offset)
	require.JSONEq(t, `{"id":"r00005","n":5}`, string(got[0].Value))
	require.Equal(t, int64(10), s.Stats().DeadLettered)

	// A dead-letter output that fails fails the Write (not permanently).
	s2, _ := fakeSink(t, f, opensearch.WithDeadLetter(stream.DeadLetterFunc(func(context.Context, []stream.DeadLetter) error {
		return errors.New("disk full")
	})))
	err := s2.Write(t.Context(), recs(10))
	require.ErrorContains(t, err, "disk full")
	require.False(t, stream.IsPermanent(err))
}

func TestSinkEncoding(t *testing.T) {
	f := newFake()
	var got []stream.DeadLetter
	c := newFakeClient(t, f)
	s, err := opensearch.NewSink(c, opensearch.Mapping[rec]{
		Index: func(r rec) string {
			if r.N == 3 {
				return ""
			}
			return "recs"
		},
		ID: func(r rec) string { return r.ID + "\"quoted\"" },
		Body: func(b []byte, r rec) ([]byte, error) {
			switch r.N {
			case 1:
				return nil, errors.New("cannot encode")
			case 2:
				return append(b, "{\n  \"pretty\": true\n}"...), nil
			case 4:
				return append(b, `[1,2]`...), nil
			}
			return append(b, `{"n":1}`...), nil
		},
	}, opensearch.WithDeadLetter(stream.DeadLetterFunc(func(_ context.Context, d []stream.DeadLetter) error {
		got = append(got, d...)
		return nil
	})))
	require.NoError(t, err)
	require.NoError(t, s.Write(t.Context(), recs(6)))
	require.Len(t, f.stored, 3)
	require.Equal(t, `{"pretty":true}`, string(f.stored[`r00002"quoted"`]))
	require.Len(t, got, 3)
	errs := []string{got[0].Err, got[1].Err, got[2].Err}
	require.Equal(t, []string{
		"cannot encode (value: the value as encoding/json writes it)",
		"empty index name",
		"document is not a JSON object",
	}, errs)
	for _, d := range got {
		require.Equal(t, stream.ReasonEncode, d.Reason)
		require.NotEmpty(t, d.Value, "a dead letter always carries the document")
	}
	require.JSONEq(t, `{"id":"r00001","n":1}`, string(got[0].Value))
	require.JSONEq(t, `{"n":1}`, string(got[1].Value))
	require.Equal(t, `[1,2]`, string(got[2].Value))
}

// TestSinkBodyNotAppended: a Body appender that returns a slice of its own instead of dst
// extended (json.Marshal's result, the likeliest slip) gets its values dead-lettered with an
// error that says so and the document as Value, and the documents of the others are written
// as they are. The sink once took the returned slice for its request body: a value after
// the first of a request, or one whose document is shorter than its action line, panicked
// (slice bounds out of range), and the first of a request with a longer document was
// dead-lettered as "invalid JSON" with the document's tail as Value.
func TestSinkBodyNotAppended(t *testing.T) {
	f := newFake()
	var got []stream.DeadLetter
	s, err := opensearch.NewSink(newFakeClient(t, f), opensearch.Mapping[rec]{
		Index: opensearch.FixedIndex[rec]("recs"),
		ID:    func(r rec) string { return r.ID },
		Body: func(dst []byte, r rec) ([]byte, error) {
			if r.N%3 == 1 {
				return json.Marshal(r) // the slip: dst left out
			}
			b, err := json.Marshal(r)
			return append(dst, b...), err
		},
	}, opensearch.WithDeadLetter(stream.DeadLetterFunc(func(_ context.Context, d []stream.DeadLetter) error {
		got = append(got, d...)
		return nil
	})))
	require.NoError(t, err)
	batch := recs(12)
	for i := range batch {
		if i%2 == 0 {
			batch[i].Pad = strings.Repeat("p", 300) // longer than an action line
		}
	}
	require.NoError(t, s.Write(t.Context(), batch))
	var wantDead []string
	for _, r := range batch {
		want, err := json.Marshal(r)
		require.NoError(t, err)
		if r.N%3 == 1 {
			wantDead = append(wantDead, r.ID)
			require.NotContains(t, f.stored, r.ID)
			continue
		}
		require.Equal(t, string(want), string(f.stored[r.ID]), "document %s written as it is", r.ID)
	}
	require.Len(t, f.stored, len(batch)-len(wantDead))
	var gotDead []string
	for _, d := range got {
		gotDead = append(gotDead, d.ID)
		require.Equal(t, stream.ReasonEncode, d.Reason)
		require.Contains(t, d.Err, "Mapping.Body")
		require.Contains(t, d.Err, "dst")
		want, err := json.Marshal(batch[d.ID[len(d.ID)-1]-'0'+10*(d.ID[len(d.ID)-2]-'0')])
		require.NoError(t, err)
		require.JSONEq(t, string(want), string(d.Value), "the dead letter carries the document")
	}
	require.Equal(t, wantDead, gotDead)
}

func TestSinkDocMapping(t *testing.T) {
	f := newFake()
	c := newFakeClient(t, f)
	s, err := opensearch.NewSink(c, opensearch.Mapping[rec]{
		Doc: func(r rec) (opensearch.Doc, error) {
			return opensearch.Doc{Index: "x", ID: r.ID, Body: []byte(`{"a":1}`)}, nil
		},
	}, opensearch.WithDataStream())
	require.NoError(t, err)
	require.NoError(t, s.Write(t.Context(), recs(5)))
	require.NoError(t, s.Write(t.Context(), recs(5)))
	st := s.Stats()
	require.Equal(t, int64(5), st.Indexed)
	require.Equal(t, int64(5), st.Existed)
	require.Zero(t, st.DeadLettered)
}

// TestSinkDocLeadingWhitespace: a JSON object with whitespace before it (a Kafka record's
// value passed through as Doc.Body) is indexed, on one line; a value that is not an object
// is still dead-lettered with its bytes as they were. The sink once looked only at the first
// byte and dead-lettered such an object as "document is not a JSON object".
func TestSinkDocLeadingWhitespace(t *testing.T) {
	f := newFake()
	c := newFakeClient(t, f)
	bodies := map[string]string{
		"nl":     "\n{\"cab_id\":\"CAB-1\"}",
		"spaces": " \t{\"cab_id\":\"CAB-2\"} ",
		"pretty": "\r\n{\n  \"cab_id\": \"CAB-3\"\n}\n",
		"array":  " [1,2]",
	}
	dl := &collector{}
	s, err := opensearch.NewSink(c, opensearch.Mapping[rec]{
		Doc: func(r rec) (opensearch.Doc, error) {
			return opensearch.Doc{Index: "x", ID: r.ID, Body: []byte(bodies[r.ID])}, nil
		},
	}, opensearch.WithDeadLetter(dl))
	require.NoError(t, err)
	require.NoError(t, s.Write(t.Context(), []rec{{ID: "nl"}, {ID: "spaces"}, {ID: "pretty"}, {ID: "array"}}))
	require.Equal(t, map[string][]byte{
		"nl":     []byte(`{"cab_id":"CAB-1"}`),
		"spaces": []byte(`{"cab_id":"CAB-2"}`),
		"pretty": []byte(`{"cab_id":"CAB-3"}`),
	}, f.stored)
	got := dl.letters()
	require.Len(t, got, 1)
	require.Equal(t, "array", got[0].ID)
	require.Equal(t, "document is not a JSON object", got[0].Err)
	require.Equal(t, " [1,2]", string(got[0].Value))
}

func TestSinkBounds(t *testing.T) {
	f := newFake()
	f.block = make(chan struct{})
	s, _ := fakeSink(t, f, opensearch.WithFlushBytes(1<<10), opensearch.WithConcurrency(3),
		opensearch.WithMaxInFlightBytes(100<<10))
	done := make(chan error)
	go func() { done <- s.Write(t.Context(), recs(2000)) }()
	waitFor(t, 10*time.Second, "3 requests in flight", func() bool { return f.inFlight.Load() == 3 })
	close(f.block)
	require.NoError(t, <-done)
	require.Equal(t, int64(3), f.maxIn.Load())
	require.Len(t, f.stored, 2000)

	// The byte bound: with room for one request, requests go one at a time.
	f2 := newFake()
	s2, _ := fakeSink(t, f2, opensearch.WithFlushBytes(1<<10), opensearch.WithConcurrency(8),
		opensearch.WithMaxInFlightBytes(1<<10))
	require.NoError(t, s2.Write(t.Context(), recs(2000)))
	require.Equal(t, int64(1), f2.maxIn.Load())
}

// TestSinkItemRetryWithinBound: items sent again after a response that took their
// neighbours (a gapped subset of the request) hold no bytes beyond the request's, which
// WithMaxInFlightBytes counts. Their body was once a copy of their documents made beside
// the request's buffer: a sink whose requests all had items retried held up to twice the
// bound the user set. The heap is measured as the first attempt and its retry reach the
// node (the node keeps nothing); the batch, the request's buffer and the client's buffers
// are held at both.
func TestSinkItemRetryWithinBound(t *testing.T) {
	const docs, pad = 8, 512 << 10
	var attempts atomic.Int64
	var heap [2]uint64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempt := attempts.Add(1)
		if attempt <= 2 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			heap[attempt-1] = ms.HeapAlloc
		}
		// Count the documents without holding them.
		n, buf := 0, make([]byte, 32<<10)
		for {
			k, err := r.Body.Read(buf)
			n += bytes.Count(buf[:k], []byte("\n"))
			if err != nil {
				break
			}
		}
		items := make([]string, n/2)
		for i := range items {
			items[i] = `{"index":{"status":201,"result":"created"}}`
			if attempt == 1 && i%2 == 1 {
				items[i] = `{"index":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"busy"}}}`
			}
		}
		fmt.Fprintf(w, `{"errors":%t,"items":[%s]}`, attempt == 1, strings.Join(items, ","))
	}))
	t.Cleanup(srv.Close)
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{srv.URL}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	s, err := opensearch.NewSink(c, recMapping, opensearch.WithFlushBytes(16<<20), opensearch.WithConcurrency(1),
		opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond}))
	require.NoError(t, err)
	batch := recs(docs)
	for i := range batch {
		batch[i].Pad = strings.Repeat("x", pad)
	}
	require.NoError(t, s.Write(t.Context(), batch))
	require.Equal(t, int64(2), attempts.Load())
	require.Equal(t, int64(docs/2), s.Stats().Retried)
	grown := int64(heap[1]) - int64(heap[0])
	require.Less(t, grown, int64(pad), "the retry of %d gapped documents of %d bytes held %d bytes more than the request", docs/2, pad, grown)
}

func TestSinkClosed(t *testing.T) {
	s, _ := fakeSink(t, newFake())
	require.NoError(t, s.Close(t.Context()))
	err := s.Write(t.Context(), recs(1))
	require.ErrorIs(t, err, opensearch.ErrClosed)
	require.True(t, stream.IsPermanent(err), "a closed sink never takes a write again: %v", err)
}

// recSource pushes its records on partition 0, then ends the input.
type recSource []rec

func (s recSource) Run(ctx context.Context, in *stream.Input[rec]) error {
	for i, v := range s {
		if err := in.Push(ctx, stream.Record[rec]{Value: v, Offset: int64(i), Size: 16}); err != nil {
			return err
		}
	}
	return nil
}

func (recSource) Commit(context.Context, []stream.Position) error { return nil }

// TestSinkSharedStopsWhenClosed: two pipelines share a sink, and the first closes it when its
// Run returns. The second stops with ErrClosed at its first write, instead of retrying it (for
// ever under the default retry policy).
func TestSinkSharedStopsWhenClosed(t *testing.T) {
	f := newFake()
	sink, _ := fakeSink(t, f)
	retry := stream.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 5})

	a, err := stream.New(time.Millisecond, retry)
	require.NoError(t, err)
	stream.To(stream.From(a, stream.Source[rec](recSource(recs(3)))), sink)
	require.NoError(t, a.Run(t.Context()))

	b, err := stream.New(time.Millisecond, retry)
	require.NoError(t, err)
	var writes int
	stream.To(stream.From(b, stream.Source[rec](recSource(recs(2)))), stream.Sink[rec](stream.SinkFunc[rec](
		func(ctx context.Context, batch []rec) error {
			writes++
			return sink.Write(ctx, batch)
		})))
	err = b.Run(t.Context())
	require.ErrorIs(t, err, opensearch.ErrClosed)
	require.Equal(t, 1, writes, "a closed sink is not retried")
}

func TestSinkHook(t *testing.T) {
	f := newFake()
	var n atomic.Int64
	s, _ := fakeSink(t, f, opensearch.WithBulkHook(func(r opensearch.BulkResult) { n.Add(int64(r.Created)) }))
	require.NoError(t, s.Write(t.Context(), recs(50)))
	require.Equal(t, int64(50), n.Load())
}

func newFakeClient(t *testing.T, f *fakeNode) *opensearch.Client {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{srv.URL}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Values with the same ID in one batch: only the last is written, whatever the retries.
func TestSinkDuplicateIDsInBatch(t *testing.T) {
	f := newFake()
	f.item = func(id string, attempt int) int {
		if attempt == 1 {
			return 429
		}
		return 0
	}
	s, _ := fakeSink(t, f, opensearch.WithFlushBytes(64))
	batch := recs(10)
	for i := range batch {
		batch[i].ID = fmt.Sprintf("r%d", i%3)
	}
	require.NoError(t, s.Write(t.Context(), batch))
	require.Len(t, f.stored, 3)
	require.JSONEq(t, `{"id":"r0","n":9}`, string(f.stored["r0"]))
	require.JSONEq(t, `{"id":"r1","n":7}`, string(f.stored["r1"]))
	require.JSONEq(t, `{"id":"r2","n":8}`, string(f.stored["r2"]))
	st := s.Stats()
	require.Equal(t, int64(7), st.Superseded)
	require.Equal(t, int64(3), st.Indexed)
}

// TestSinkDuplicateIDLastCannotBeEncoded: when the last value of an ID in a batch cannot be
// made into a document, the batch is written as if in order: the latest earlier value that
// can be is indexed, and the ones that cannot are dead-lettered. The sink once skipped the
// earlier values as superseded before it knew the last one failed: the ID's document was
// neither indexed nor dead-lettered (a window's partial result lost for a NaN in the next).
func TestSinkDuplicateIDLastCannotBeEncoded(t *testing.T) {
	f := newFake()
	c := newFakeClient(t, f)
	dl := &collector{}
	bad := map[int]bool{4: true, 5: true, 7: true}
	s, err := opensearch.NewSink(c, opensearch.Mapping[rec]{
		Index: opensearch.FixedIndex[rec]("recs"),
		ID:    func(r rec) string { return r.ID },
		Body: func(b []byte, r rec) ([]byte, error) {
			if bad[r.N] {
				return fmt.Appendf(b, `{"n":%d,"avg":NaN}`, r.N), nil
			}
			return fmt.Appendf(b, `{"n":%d}`, r.N), nil
		},
	}, opensearch.WithDeadLetter(dl))
	require.NoError(t, err)
	// a: 0, 3, 5 (bad); b: 1, 4 (bad), 7 (bad); c: 2, 6; d: 8 (bad), alone.
	batch := []rec{{"a", 0, ""}, {"b", 1, ""}, {"c", 2, ""}, {"a", 3, ""}, {"b", 4, ""},
		{"a", 5, ""}, {"c", 6, ""}, {"b", 7, ""}, {"d", 8, ""}}
	bad[8] = true
	require.NoError(t, s.Write(t.Context(), batch))
	stored := map[string]string{}
	for id, b := range f.stored {
		stored[id] = string(b)
	}
	require.Equal(t, map[string]string{"a": `{"n":3}`, "b": `{"n":1}`, "c": `{"n":6}`}, stored)
	var dead []int
	for _, d := range dl.letters() {
		require.Equal(t, stream.ReasonEncode, d.Reason)
		var n int
		_, err := fmt.Sscanf(string(d.Value), `{"n":%d,`, &n)
		require.NoError(t, err, string(d.Value))
		dead = append(dead, n)
	}
	require.ElementsMatch(t, []int{5, 7, 4, 8}, dead)
	st := s.Stats()
	require.Equal(t, int64(4), st.DeadLettered)
	require.Equal(t, int64(2), st.Superseded, "a's 0 and c's 2")
	require.Equal(t, int64(3), st.Indexed)
}

// TestSinkBodilessRefusalSaysWhy: a document isolated from a request refused whole with a
// response without a body (OpenSearch's 413 for a request over http.max_content_length has
// none) is dead-lettered with the status's text as its error; its Err was empty, so the
// dead letter (and the JSON-lines file, which leaves an empty err out) did not say why.
func TestSinkBodilessRefusalSaysWhy(t *testing.T) {
	f := newFake()
	f.maxDocs, f.bare413 = 8, true
	dl := &collector{}
	s, _ := fakeSink(t, f, opensearch.WithDeadLetter(dl))
	batch := recs(20)
	batch[5].Pad = strings.Repeat("x", 100) // too large alone
	require.NoError(t, s.Write(t.Context(), batch))
	require.Len(t, f.stored, 19)
	got := dl.letters()
	require.Len(t, got, 1)
	require.Equal(t, "r00005", got[0].ID)
	require.Equal(t, 413, got[0].Status)
	require.Equal(t, "status 413: Request Entity Too Large", got[0].Err)
}

// Write blocks, in items (403 and the flood-stage 429) and for a whole request (403), are
// retried and counted, never dead-lettered.
func TestSinkBlocksAreTemporary(t *testing.T) {
	f := newFake()
	blockedItem := `{"type":"cluster_block_exception","reason":"index [recs] blocked by: [FORBIDDEN/8/index write (api)];"}`
	f.status = func(n int) int {
		if n == 1 {
			return 403
		}
		return 200
	}
	var mu sync.Mutex
	f.itemBody = func(id string, attempt int) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case attempt == 1 && strings.HasSuffix(id, "1"):
			return 403, blockedItem
		case attempt <= 2 && strings.HasSuffix(id, "2"):
			return 429, `{"type":"cluster_block_exception","reason":"index [recs] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];"}`
		}
		return 0, ""
	}
	f.errBody = `{"error":{"type":"cluster_block_exception","reason":"blocked by: [FORBIDDEN/8/index write (api)];"},"status":403}`
	dl := &collector{}
	s, _ := fakeSink(t, f, opensearch.WithDeadLetter(dl))
	require.NoError(t, s.Write(t.Context(), recs(100)))
	require.Len(t, f.stored, 100)
	require.Empty(t, dl.letters())
	st := s.Stats()
	require.Equal(t, int64(1), st.RequestRetries)
	require.Equal(t, int64(100+10+20), st.Blocked) // the whole request, then items
	require.Zero(t, st.DeadLettered)
}

// A request refused whole with 413 is split until its parts fit; a single document that
// does not fit is dead-lettered. Another 4xx (401) is permanent.
func TestSinkSplitsOn413(t *testing.T) {
	f := newFake()
	f.maxDocs = 8
	dl := &collector{}
	s, _ := fakeSink(t, f, opensearch.WithDeadLetter(dl))
	batch := recs(100)
	batch[37].Pad = strings.Repeat("x", 100) // too large alone
	require.NoError(t, s.Write(t.Context(), batch))
	require.Len(t, f.stored, 99)
	got := dl.letters()
	require.Len(t, got, 1)
	require.Equal(t, "r00037", got[0].ID)
	require.Equal(t, 413, got[0].Status)
	require.Equal(t, stream.ReasonRejected, got[0].Reason)
	require.Contains(t, got[0].Err, "too_large")
	require.Contains(t, string(got[0].Value), "xxxx")
	require.Positive(t, s.Stats().Split)

	f2 := newFake()
	f2.status = func(int) int { return 401 }
	s2, _ := fakeSink(t, f2, opensearch.WithDeadLetter(dl))
	err := s2.Write(t.Context(), recs(10))
	require.True(t, stream.IsPermanent(err))
}

// The default policy bounds an outage inside Write: after DefaultRetry.MaxAttempts attempts
// Write fails retryably and the pipeline's policy takes over.
func TestSinkDefaultRetryIsBounded(t *testing.T) {
	require.Positive(t, opensearch.DefaultRetry.MaxAttempts)
	f := newFake()
	f.status = func(int) int { return 503 }
	c := newFakeClient(t, f)
	p := opensearch.DefaultRetry
	p.Initial, p.Max = time.Millisecond, time.Millisecond // the default's count, quickly
	s, err := opensearch.NewSink(c, recMapping, opensearch.WithRetry(p))
	require.NoError(t, err)
	err = s.Write(t.Context(), recs(5))
	require.Error(t, err)
	require.False(t, stream.IsPermanent(err))
	require.Equal(t, int64(opensearch.DefaultRetry.MaxAttempts), f.reqs.Load())
}
