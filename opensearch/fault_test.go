package opensearch_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
)

// faultProxy stands in front of the real node and breaks bulk requests in three ways:
//   - refuse: answer 503 without forwarding (nothing is indexed);
//   - hide: forward, then answer 503 (everything is indexed, the sink does not know);
//   - drop items: forward only some items and answer 429 for the others inside a 200.
//
// Refused requests and dropped items prove that the sink retries them (a document it does not
// retry is missing at the end); hidden requests prove that retries overwrite instead of
// duplicating (their documents come back "updated").
type faultProxy struct {
	t        *testing.T
	target   *url.URL
	rp       *httputil.ReverseProxy
	requests atomic.Int64
	refused  atomic.Int64
	dropped  atomic.Int64

	mu     sync.Mutex
	hidden map[string]bool // IDs of documents indexed behind a hidden 503
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	u, err := url.Parse(target)
	require.NoError(t, err)
	return &faultProxy{t: t, target: u, rp: httputil.NewSingleHostReverseProxy(u), hidden: map[string]bool{}}
}

func (f *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/_bulk") {
		f.rp.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n := f.requests.Add(1)
	lines := bytes.SplitAfter(body, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	switch n % 5 {
	case 1:
		f.refused.Add(1)
		http.Error(w, `{"error":"injected"}`, http.StatusServiceUnavailable)
		return
	case 2:
		if _, _, err := f.forward(r, body); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		f.mu.Lock()
		for i := 0; i < len(lines); i += 2 {
			f.hidden[actionID(lines[i])] = true
		}
		f.mu.Unlock()
		http.Error(w, `{"error":"injected after indexing"}`, http.StatusServiceUnavailable)
		return
	}
	// Drop every item at a position ≡ 3 (mod 7): never forwarded, answered with 429.
	var kept []byte
	var drop []bool
	for i := 0; i+1 < len(lines); i += 2 {
		d := (i/2)%7 == 3
		drop = append(drop, d)
		if !d {
			kept = append(kept, lines[i]...)
			kept = append(kept, lines[i+1]...)
		}
	}
	var items []json.RawMessage
	if len(kept) > 0 {
		status, resp, err := f.forward(r, kept)
		if err != nil || status != http.StatusOK {
			http.Error(w, "upstream failed", http.StatusBadGateway)
			return
		}
		var br struct {
			Items []json.RawMessage `json:"items"`
		}
		require.NoError(f.t, json.Unmarshal(resp, &br))
		items = br.Items
	}
	out := make([]json.RawMessage, 0, len(drop))
	for _, d := range drop {
		if d {
			f.dropped.Add(1)
			out = append(out, json.RawMessage(`{"index":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"injected"}}}`))
			continue
		}
		out = append(out, items[0])
		items = items[1:]
	}
	resp, err := json.Marshal(map[string]any{"errors": true, "took": 1, "items": out})
	require.NoError(f.t, err)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(resp)
}

func (f *faultProxy) forward(r *http.Request, body []byte) (int, []byte, error) {
	u := *f.target
	u.Path = r.URL.Path
	u.RawQuery = r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

func actionID(line []byte) string {
	var a map[string]struct {
		ID string `json:"_id"`
	}
	if err := json.Unmarshal(line, &a); err != nil {
		return ""
	}
	for _, v := range a {
		return v.ID
	}
	return ""
}

func TestSinkFaultInjection(t *testing.T) {
	n := newNode(t)
	prefix := n.newPrefix(t)
	fp := newFaultProxy(t, n.url)
	srv := httptest.NewServer(fp)
	defer srv.Close()

	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{srv.URL}})
	require.NoError(t, err)
	defer c.Close()
	const docs = 20_000
	sink, err := opensearch.NewSink(c, statsMapping(prefix),
		opensearch.WithFlushBytes(128<<10),
		opensearch.WithRetry(stream.RetryPolicy{Initial: 5 * time.Millisecond, Max: 100 * time.Millisecond}))
	require.NoError(t, err)
	runPipeline(t, sink, stats(0, docs))

	require.Equal(t, docs, n.count(t, prefix+"-*"))
	st := sink.Stats()
	fp.mu.Lock()
	hidden := int64(len(fp.hidden))
	fp.mu.Unlock()
	require.Positive(t, fp.refused.Load())
	require.Positive(t, fp.dropped.Load())
	require.Positive(t, hidden)
	// Each document's last, successful, response is seen once: created if the node never saw
	// it before, updated if a hidden request had indexed it.
	require.Equal(t, int64(docs), st.Indexed+st.Updated)
	require.Equal(t, hidden, st.Updated)
	require.GreaterOrEqual(t, st.RequestRetries, fp.refused.Load())
	require.GreaterOrEqual(t, st.Retried, fp.dropped.Load())
	t.Logf("requests %d, refused %d, hidden docs %d, dropped items %d; stats %+v",
		fp.requests.Load(), fp.refused.Load(), hidden, fp.dropped.Load(), st)
}
