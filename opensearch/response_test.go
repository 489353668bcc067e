package opensearch_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
)

// bigBody is a response body of size bytes, prefix then spaces, that counts what is read of
// it.
type bigBody struct {
	prefix []byte
	size   int64
	off    int64
	read   *atomic.Int64
}

func (b *bigBody) Read(p []byte) (int, error) {
	if b.off >= b.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), b.size-b.off, int64(len(spaces))))
	copy(p[:n], spaces)
	if b.off < int64(len(b.prefix)) {
		copy(p[:n], b.prefix[b.off:])
	}
	b.off += int64(n)
	b.read.Add(int64(n))
	return n, nil
}

func (*bigBody) Close() error { return nil }

var spaces = bytes.Repeat([]byte(" "), 32<<10)

// bigResponses is a transport that answers every request with status and a body of size
// bytes, announced in Content-Length or not, and records what the requests were and how much
// of the bodies was read.
type bigResponses struct {
	status   int
	prefix   string
	size     int64
	announce bool

	read atomic.Int64
	mu   sync.Mutex
	reqs []bulkRequest
}

type bulkRequest struct {
	path       string
	docs, size int
}

func (t *bigResponses) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
	}
	if req.URL.Path != "/_bulk" && !strings.HasPrefix(req.URL.Path, "/_index_template/") {
		// opensearch-go's own requests (node stats): not ours to count.
		return &http.Response{StatusCode: 404, Body: http.NoBody, Request: req}, nil
	}
	t.mu.Lock()
	t.reqs = append(t.reqs, bulkRequest{path: req.URL.Path, docs: bytes.Count(body, []byte("\n")) / 2, size: len(body)})
	t.mu.Unlock()
	res := &http.Response{StatusCode: t.status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: &bigBody{prefix: []byte(t.prefix), size: t.size, read: &t.read}, ContentLength: -1, Request: req}
	if t.announce {
		res.ContentLength = t.size
	}
	return res, nil
}

func (t *bigResponses) requests() []bulkRequest {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]bulkRequest(nil), t.reqs...)
}

// TestResponseBodiesCapped: a response body is never read past its cap, whatever a proxy or a
// node sends: a bulk response's grows with its request, an error response's and a template's
// are small. A 200 over its cap fails the request with an error naming the cap, retried like
// a transport error, and nothing counts as written or is dead-lettered; an error status is
// decided by its status with the start of its body. Before, every body was read whole: 64 MiB
// per request here.
func TestResponseBodiesCapped(t *testing.T) {
	const huge = 64 << 20
	const attempts = 3
	retry := opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: attempts})
	for _, tc := range []struct {
		name     string
		status   int
		prefix   string
		announce bool
		// permanent: the Write fails at once, with an HTTPError of the status.
		permanent bool
	}{
		{name: "bulk 200 chunked", status: 200, prefix: `{"errors":false,"items":[`},
		{name: "bulk 200 announced", status: 200, prefix: `{"errors":false,"items":[`, announce: true},
		{name: "bulk 503", status: 503, prefix: `<html>busy`},
		{name: "bulk 401", status: 401, prefix: `<html>log in`, permanent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &bigResponses{status: tc.status, prefix: tc.prefix, size: huge, announce: tc.announce}
			c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{"http://127.0.0.1:9"}, Transport: tr})
			require.NoError(t, err)
			dl := &collector{}
			s, err := opensearch.NewSink(c, recMapping, retry, opensearch.WithDeadLetter(dl))
			require.NoError(t, err)
			err = s.Write(t.Context(), recs(100))
			require.Error(t, err)
			reqs := tr.requests()
			st := s.Stats()
			require.Zero(t, st.Indexed+st.Updated+st.DeadLettered, "%+v", st)
			require.Empty(t, dl.letters())
			if tc.permanent {
				require.True(t, stream.IsPermanent(err), "%v", err)
				var he *opensearch.HTTPError
				require.ErrorAs(t, err, &he)
				require.Equal(t, tc.status, he.Status)
				require.Len(t, reqs, 1)
			} else {
				require.False(t, stream.IsPermanent(err), "%v", err)
				require.Len(t, reqs, attempts)
				require.Equal(t, int64(attempts), st.RequestRetries)
			}
			limit := int64(64 << 10) // an error status: its start
			if tc.status == 200 {
				r := reqs[0]
				require.Equal(t, 100, r.docs)
				limit = opensearch.BulkResponseCap(r.docs, r.size)
				require.ErrorIs(t, err, opensearch.ErrBodyTooLarge)
				require.ErrorContains(t, err, fmt.Sprintf("cap of %d bytes", limit))
				var re *opensearch.ResponseError
				require.ErrorAs(t, err, &re)
				require.Equal(t, 200, re.Status)
				require.Equal(t, "application/json", re.ContentType)
				require.True(t, strings.HasPrefix(re.Start, tc.prefix), "%q", re.Start)
				require.Contains(t, st.LastError, "cap of")
			}
			// What was read of each body: up to the cap and the read buffer that crossed it.
			require.LessOrEqual(t, tr.read.Load(), int64(len(reqs))*(2*limit+64<<10), "bytes read of %d responses", len(reqs))
		})
	}

	t.Run("template 200", func(t *testing.T) {
		tr := &bigResponses{status: 200, prefix: `{"acknowledged":true}`, size: huge}
		c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{"http://127.0.0.1:9"}, Transport: tr})
		require.NoError(t, err)
		err = c.EnsureTemplates(t.Context())
		require.ErrorIs(t, err, opensearch.ErrBodyTooLarge)
		require.ErrorContains(t, err, "cap of 65536 bytes")
		require.ErrorContains(t, err, "PUT http://127.0.0.1:9/_index_template/")
		require.Len(t, tr.requests(), 2, "the GET of the installed template's version (its answer over the cap: unknown, so the PUT decides), then the PUT")
		require.LessOrEqual(t, tr.read.Load(), 2*int64(2*64<<10+64<<10))
	})
}

// bigValue is a document of about 64 KiB whose string does not parse as a date.
type bigValue struct{ ID, Value string }

// TestBulkResponseCapFitsRejections: OpenSearch's error for a rejected document quotes the
// field's value, twice for a string in a date field (reason and cause), so a bulk response
// can be larger than its request; the cap grows with the request's bytes, not only its
// items, and such a response is read and its documents dead-lettered. A cap of a few KiB per
// item (the same request's, not 10 KiB) would refuse this response and stop the pipeline on
// documents that belong in the dead letters.
func TestBulkResponseCapFitsRejections(t *testing.T) {
	n := newNode(t)
	prefix := n.newPrefix(t)
	var largest atomic.Int64
	dl := &collector{}
	s, err := opensearch.NewSink(n.client, opensearch.Mapping[bigValue]{
		Index: opensearch.FixedIndex[bigValue](prefix + "-2026.11.25"),
		ID:    func(v bigValue) string { return v.ID },
		Body: func(b []byte, v bigValue) ([]byte, error) {
			return fmt.Appendf(b, `{"cab_id":%q,"window_start":%q}`, v.ID, v.Value), nil
		},
	}, opensearch.WithDeadLetter(dl), opensearch.WithBulkHook(func(r opensearch.BulkResult) {
		largest.Store(max(largest.Load(), int64(r.Bytes)))
	}), opensearch.WithFlushBytes(5<<20)) // the batch (2.5 MiB) in one request
	require.NoError(t, err)
	const docs = 40
	vals := make([]bigValue, docs)
	for i := range vals {
		vals[i] = bigValue{ID: fmt.Sprintf("big-%02d", i), Value: strings.Repeat("x", 64<<10)}
	}
	require.NoError(t, s.Write(t.Context(), vals))
	got := dl.letters()
	require.Len(t, got, docs)
	for _, d := range got {
		require.Equal(t, stream.ReasonRejected, d.Reason)
		require.Contains(t, d.Err, "mapper_parsing_exception")
		// The reason and its cause each quote the value.
		require.Greater(t, len(d.Err), 2*64<<10, "%.200s", d.Err)
	}
	require.Equal(t, 0, n.count(t, prefix+"-*"))
	st := s.Stats()
	require.Equal(t, int64(1), st.Requests, "one request, read at once")
	require.Greater(t, int64(2*docs*64<<10), largest.Load(), "the response (two quotes per document) is larger than the request")
}

// unusableBulk answers the first bad bulk requests with a 200 of contentType and body, and
// passes the others to next.
type unusableBulk struct {
	bad         int64
	contentType string
	body        string
	next        http.Handler
	n           atomic.Int64
}

func (u *unusableBulk) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_bulk" && (u.bad < 0 || u.n.Add(1) <= u.bad) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", u.contentType)
		_, _ = io.WriteString(w, u.body)
		return
	}
	u.next.ServeHTTP(w, r)
}

// TestSinkUnusableBulkResponse: a 200 to a bulk request that is a bulk response but not one
// item per document, each of the action sent with a status (and a success with its result),
// is retried whole with an error that says what came (status, content type, the body's
// start), and no document of it counts as written or rejected. Before, an item without a
// status was dead-lettered (status 0, no reason) and an item of another action or a success
// without a result counted as created. A 200 that is not a bulk response at all (an HTML
// page) is not OpenSearch's: TestWrongAddressIsPermanent.
func TestSinkUnusableBulkResponse(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, body, says string
	}{
		{"fewer items", "application/json", `{"errors":false,"items":[{"index":{"status":201,"result":"created"}}]}`, "1 items for 3 documents"},
		{"item without status", "application/json",
			`{"errors":true,"items":[{"index":{"status":201,"result":"created"}},{"index":{}},{"index":{"status":201,"result":"created"}}]}`,
			"item 1 has no valid status (0)"},
		{"item of another action", "application/json",
			`{"errors":false,"items":[{"index":{"status":201,"result":"created"}},{"delete":{"status":200,"result":"deleted"}},{"index":{"status":201,"result":"created"}}]}`,
			`item 1 is not one "index" result`},
		{"success without result", "application/json",
			`{"errors":false,"items":[{"index":{"status":201,"result":"created"}},{"index":{"status":200}},{"index":{"status":201,"result":"created"}}]}`,
			`item 1 has status 200 and result "", not created or updated`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			u := &unusableBulk{bad: 1, contentType: tc.contentType, body: tc.body, next: f}
			srv := httptest.NewServer(u)
			t.Cleanup(srv.Close)
			c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{srv.URL}})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			var mu sync.Mutex
			var errs []error
			dl := &collector{}
			s, err := opensearch.NewSink(c, recMapping, opensearch.WithDeadLetter(dl),
				opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 3}),
				opensearch.WithBulkHook(func(r opensearch.BulkResult) {
					mu.Lock()
					errs = append(errs, r.Err)
					mu.Unlock()
				}))
			require.NoError(t, err)
			require.NoError(t, s.Write(t.Context(), recs(3)))
			require.Empty(t, dl.letters())
			require.Len(t, f.stored, 3)
			st := s.Stats()
			require.Equal(t, int64(3), st.Indexed, "each document once, from the response that said so")
			require.Zero(t, st.Updated+st.DeadLettered+st.Failed, "%+v", st)
			require.Equal(t, int64(1), st.RequestRetries)
			require.Len(t, errs, 2)
			var re *opensearch.ResponseError
			require.ErrorAs(t, errs[0], &re)
			require.Equal(t, 200, re.Status)
			require.Equal(t, tc.contentType, re.ContentType)
			require.Equal(t, tc.body, re.Start)
			require.ErrorContains(t, re, tc.says)
			require.NoError(t, errs[1])
		})
	}
}

// commitSource pushes its records on partition 0 and keeps the positions committed.
type commitSource struct {
	recs []rec
	mu   sync.Mutex
	pos  []stream.Position
}

func (s *commitSource) Run(ctx context.Context, in *stream.Input[rec]) error {
	for i, v := range s.recs {
		if err := in.Push(ctx, stream.Record[rec]{Value: v, Offset: int64(i), Size: 16}); err != nil {
			return err
		}
	}
	return nil
}

func (s *commitSource) Commit(_ context.Context, pos []stream.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pos = append(s.pos, pos...)
	return nil
}

func (s *commitSource) committed() []stream.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]stream.Position(nil), s.pos...)
}

// TestPipelineStopsOnUnusableBulkResponse: a proxy that answers every bulk request with its
// HTML page (status 200) after passing it on: Run stops at the first answer with a permanent
// error that says what came (no retry would change the page; before, the sink retried under
// its policy and the pipeline under its own, for ever by default); the batch is neither
// acknowledged nor dead-lettered, and the next run replays it: every document is written
// again, overwriting the copy the hidden request wrote, none twice.
func TestPipelineStopsOnUnusableBulkResponse(t *testing.T) {
	const page = "<!DOCTYPE html><html><head><title>Proxy</title></head><body>Session expired</body></html>"
	f := newFake()
	var healthy atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if healthy.Load() || r.URL.Path != "/_bulk" {
			f.ServeHTTP(w, r)
			return
		}
		f.ServeHTTP(httptest.NewRecorder(), r) // written, and the answer hidden
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, page)
	}))
	t.Cleanup(srv.Close)
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{srv.URL}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	retry := stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 2}
	src := &commitSource{recs: recs(50)}
	dl := &collector{}
	run := func() (*opensearch.Sink[rec], error) {
		sink, err := opensearch.NewSink(c, recMapping, opensearch.WithRetry(retry), opensearch.WithDeadLetter(dl))
		require.NoError(t, err)
		p, err := stream.New(time.Millisecond, stream.WithRetry(retry))
		require.NoError(t, err)
		stream.To(stream.From(p, stream.Source[rec](src)), sink)
		return sink, p.Run(t.Context())
	}

	sink, err := run()
	require.True(t, stream.IsPermanent(err), "permanent: %v", err)
	require.ErrorIs(t, err, opensearch.ErrNotOpenSearch)
	var re *opensearch.ResponseError
	require.ErrorAs(t, err, &re)
	require.Equal(t, 200, re.Status)
	require.Equal(t, "text/html", re.ContentType)
	require.ErrorContains(t, err, `status 200, content-type "text/html", body starting "<!DOCTYPE html><html><head><title>Proxy</title>`)
	require.Empty(t, src.committed(), "a batch acknowledged on an unusable response")
	require.Empty(t, dl.letters())
	st := sink.Stats()
	require.Zero(t, st.Indexed+st.Updated+st.DeadLettered, "%+v", st)
	require.Equal(t, int64(1), st.Requests, "no retry")
	hidden := len(f.stored)
	require.Positive(t, hidden)

	healthy.Store(true)
	sink, err = run()
	require.NoError(t, err)
	require.Len(t, f.stored, 50)
	st = sink.Stats()
	require.Equal(t, int64(hidden), st.Updated, "the replay overwrites what the hidden requests wrote")
	require.Equal(t, int64(50), st.Indexed+st.Updated)
	require.Empty(t, dl.letters())
	pos := src.committed()
	require.NotEmpty(t, pos)
	require.Equal(t, int64(50), pos[len(pos)-1].Offset)
}

// TestCredentialsNotInQuotedBodies: a proxy's page that echoes the request's Authorization
// header (or the password) is quoted in errors, Stats.LastError and dead letters with the
// credentials replaced: an unusable 200 (its start), a 401 (HTTPError), a 400 that isolates a
// document (the dead letter's Err), and the same echo across the cut of a ResponseError's
// start. Before, each of them showed the credentials.
func TestCredentialsNotInQuotedBodies(t *testing.T) {
	const user, secret = "fleet", "s3cr3t-pa55word"
	header := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+secret))
	for _, tc := range []struct {
		name   string
		status int
		page   string
	}{
		{"unusable 200", 200, "<html>You sent Authorization: %s</html>"},
		{"unusable 200 across the cut", 200, strings.Repeat("x", 240) + "%s"},
		{"password", 200, "<html>user " + user + " password " + secret + " %s</html>"},
		{"401", 401, `{"error":"bad credentials in %s"}`},
		{"400 isolating a document", 400, `{"error":{"type":"illegal_argument_exception","reason":"cannot accept %s"},"status":400}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(tc.status)
				fmt.Fprintf(w, tc.page, r.Header.Get("Authorization"))
			}))
			t.Cleanup(srv.Close)
			quoted := quotedAfterWrite(t, opensearch.Config{Addresses: []string{srv.URL}, Username: user, Password: secret}, tc.status)
			encoded := strings.TrimPrefix(header, "Basic ")
			for _, q := range quoted {
				require.NotContains(t, q, secret)
				// Nor a piece of the encoded credentials long enough to tell.
				require.NotContains(t, q, encoded[:8], "%s", q)
			}
			require.Contains(t, strings.Join(quoted, "\n"), "***")
		})
	}
}
