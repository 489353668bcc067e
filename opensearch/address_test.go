package opensearch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
)

// The credentials every address of these tests carries: errors name the URL without them.
const addrUser, addrSecret = "fleet", "s3cret-pa55"

// withCredentials puts addrUser:addrSecret@ into the URL u.
func withCredentials(u string) string {
	scheme, rest, _ := strings.Cut(u, "://")
	return scheme + "://" + addrUser + ":" + addrSecret + "@" + rest
}

// page answers every request with status, content type and body, as another service or a
// proxy does.
func page(status int, contentType, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

// openSearchRoutes serves bulk requests as OpenSearch 2.19 routes them: POST /_bulk and
// /{index}/_bulk reach the bulk API (f); a longer path is refused whole with the string
// error its REST layer sends.
func openSearchRoutes(f *fakeNode) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if segs[len(segs)-1] != "_bulk" || len(segs) > 2 {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json; charset=UTF-8")
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"error":"no handler found for uri [%s] and method [%s]"}`, r.URL.Path, r.Method)
			return
		}
		r.URL.Path = "/_bulk"
		f.ServeHTTP(w, r)
	})
}

// serve starts h over plain HTTP (tls false) or TLS and returns its base URL.
func serve(t *testing.T, h http.Handler, tls bool) string {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // "TLS handshake error" lines
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv.URL
}

// listenTCP accepts connections on a loopback port and hands each to handle until the test
// ends, and returns the address.
func listenTCP(t *testing.T, handle func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			handle(c)
		}
	})
	return ln.Addr().String()
}

// notHTTP answers a connection with the line OpenSearch's transport port (9300) sends to an
// HTTP client.
func notHTTP(c net.Conn) {
	_, _ = io.WriteString(c, "This is not an HTTP port")
	_ = c.Close()
}

// pythonServer501 is the page python3 -m http.server answers POST and PUT with (501
// Unsupported method), as Python 3.11 sends it.
const pythonServer501 = `<!DOCTYPE HTML>
<html lang="en">
    <head>
        <meta charset="utf-8">
        <title>Error response</title>
    </head>
    <body>
        <h1>Error response</h1>
        <p>Error code: 501</p>
        <p>Message: Unsupported method ('POST').</p>
        <p>Error code explanation: 501 - Server does not support this operation.</p>
    </body>
</html>
`

// wrongAddress is an address that answers, but not as OpenSearch.
type wrongAddress struct {
	name string
	// url returns the address (without credentials) and the URL the bulk request goes to.
	url func(t *testing.T) (addr, bulk string)
	// says is what the error quotes of the answer.
	says string
	// closes is set when the server answers and closes the connection without reading the
	// request: the client may see the connection reset before the answer, which it cannot
	// tell from a node going down, and retry, until an attempt reads the answer.
	closes bool
}

func wrongAddresses() []wrongAddress {
	at := func(h http.Handler, tls bool, scheme, path string) func(t *testing.T) (string, string) {
		return func(t *testing.T) (string, string) {
			u := serve(t, h, tls)
			_, hostPort, _ := strings.Cut(u, "://")
			a := scheme + "://" + hostPort + path
			return a, a + "/_bulk"
		}
	}
	return []wrongAddress{
		{"another service's 404 page",
			at(page(404, "text/html", "<html><body><h1>Not Found</h1></body></html>"), false, "http", ""),
			`status 404, content-type "text/html", body starting "<html><body><h1>Not Found</h1>`, false},
		{"a read-only service's 405",
			at(page(405, "text/plain; charset=utf-8", "Method Not Allowed\n"), false, "http", "/api"),
			`status 405, content-type "text/plain; charset=utf-8", body starting "Method Not Allowed`, false},
		{"a plain web server's 501 (python3 -m http.server)",
			at(page(501, "text/html;charset=utf-8", pythonServer501), false, "http", ""),
			`status 501, content-type "text/html;charset=utf-8", body starting "<!DOCTYPE HTML>`, false},
		{"an app that answers every path with its page (200)",
			at(page(200, "text/html", "<!doctype html><html><title>Fleet dashboard</title></html>"), false, "http", ""),
			`status 200, content-type "text/html", body starting "<!doctype html><html><title>Fleet dashboard`, false},
		{"another service's JSON (200)",
			at(page(200, "application/json", `{"status":"ok","version":"1.4.2"}`), false, "http", ""),
			`status 200, content-type "application/json", body starting "{\"status\":\"ok\"`, false},
		{"a proxy's login page (200)",
			at(page(200, "text/html; charset=utf-8", "<html><body>Session expired, please log in</body></html>"), false, "http", ""),
			`body starting "<html><body>Session expired`, false},
		{"an asynchronous gateway's 202",
			at(page(202, "application/json", `{"accepted":true,"id":"q-81"}`), false, "http", ""),
			`status 202, content-type "application/json", body starting "{\"accepted\":true`, false},
		{"a 204",
			at(page(204, "", ""), false, "http", ""),
			`status 204, content-type "", body starting ""`, false},
		{"a path prefix OpenSearch has no handler for",
			at(openSearchRoutes(newFake()), false, "http", "/search/v1"),
			`status 400, content-type "application/json; charset=UTF-8", body starting "{\"error\":\"no handler found for uri [/search/v1/_bulk] and method [POST]\"}"`, false},
		{"a proxy's page for plain HTTP sent to its HTTPS port (400)",
			at(page(400, "text/html", "<html><head><title>400 The plain HTTP request was sent to HTTPS port</title></head></html>"), false, "http", ""),
			`status 400, content-type "text/html", body starting "<html><head><title>400 The plain HTTP request was sent to HTTPS port`, false},
		{"plain HTTP to a TLS port",
			at(newFake(), true, "http", ""),
			`status 400, content-type "", body starting "Client sent an HTTP request to an HTTPS server.`, true},
		{"TLS to a plain HTTP port",
			at(newFake(), false, "https", ""),
			"the server does not speak TLS", false},
		{"a port that does not speak HTTP (OpenSearch's transport port)",
			func(t *testing.T) (string, string) {
				a := "http://" + listenTCP(t, notHTTP)
				return a, a + "/_bulk"
			},
			`the server does not speak HTTP`, true},
	}
}

// wrongAddressSink returns a sink for addr, with the test credentials, a dead-letter
// collector and quick attempts until ctx ends.
func wrongAddressSink(t *testing.T, addr string) (*opensearch.Sink[rec], *collector) {
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{withCredentials(addr)}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	dl := &collector{}
	s, err := opensearch.NewSink(c, recMapping, opensearch.WithDeadLetter(dl),
		opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond}))
	require.NoError(t, err)
	return s, dl
}

// TestWrongAddressIsPermanent: an address that answers, but not as OpenSearch (another
// service, a proxy's page, a path prefix OpenSearch has no handler for, plain HTTP to a TLS
// port or the reverse, a port that does not speak HTTP), fails Write at the first answer with
// a permanent error wrapping ErrNotOpenSearch that names the URL, credentials masked, and
// says what answered; nothing is written, dead-lettered or retried. Before, 200s and the
// ports that do not speak TLS or HTTP were retried for ever under the pipeline's default
// policy; the 400s were split down to single documents and every document was dead-lettered
// as rejected, and Write returned nil; the 404 and 405 stopped, without naming the URL.
func TestWrongAddressIsPermanent(t *testing.T) {
	for _, tc := range wrongAddresses() {
		t.Run(tc.name, func(t *testing.T) {
			addr, bulk := tc.url(t)
			s, dl := wrongAddressSink(t, addr)
			// A bound for the old behaviour, which retried for ever; the new one stops at the
			// first answer.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := s.Write(ctx, recs(10))
			require.Error(t, err)
			require.True(t, stream.IsPermanent(err), "permanent: %v", err)
			require.ErrorIs(t, err, opensearch.ErrNotOpenSearch)
			msg := err.Error()
			require.Contains(t, msg, bulk, "names the URL")
			require.Contains(t, msg, tc.says, "says what answered")
			require.NotContains(t, msg, addrSecret)
			require.Empty(t, dl.letters(), "nothing dead-lettered")
			st := s.Stats()
			if tc.closes {
				require.Positive(t, st.Requests)
				require.Equal(t, st.Requests-1, st.RequestRetries, "retried only before the answer was read: %+v", st)
			} else {
				require.Equal(t, int64(1), st.Requests, "no retry, no split: %+v", st)
			}
			require.Zero(t, st.Indexed+st.Updated+st.DeadLettered+st.Split)
			require.Contains(t, st.LastError, bulk, "the status page says why")
			require.NotContains(t, st.LastError, addrSecret)
		})
	}
}

// TestWrongAddressStopsPipeline: under the pipeline's default retry policy (retry for ever),
// Run stops at the first answer of a wrong address with the sink's error, and no batch is
// acknowledged. Before, several shapes kept the pipeline retrying (this test ran into its
// deadline) and the 400s acknowledged batches whose documents had all been dead-lettered.
func TestWrongAddressStopsPipeline(t *testing.T) {
	for _, tc := range wrongAddresses() {
		t.Run(tc.name, func(t *testing.T) {
			addr, bulk := tc.url(t)
			sink, dl := wrongAddressSink(t, addr)
			p, err := stream.New(time.Millisecond, stream.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond}))
			require.NoError(t, err)
			src := &commitSource{recs: recs(50)}
			stream.To(stream.From(p, stream.Source[rec](src)), sink)

			// A bound for the old behaviour, which retried for ever.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err = p.Run(ctx)
			require.ErrorIs(t, err, opensearch.ErrNotOpenSearch, "Run stopped with the sink's error")
			require.Contains(t, err.Error(), bulk)
			require.Empty(t, src.committed(), "nothing acknowledged")
			require.Empty(t, dl.letters())
		})
	}
}

// TestOutageIsNotWrongAddress: where nothing answers (connection refused, a name that does
// not resolve, a node that accepts and never answers, a connection closed at once) or what
// answers says the node is away (a proxy's 502 and 503 pages, a 429), the sink retries as
// before: Write fails retryably after its attempts, and the pipeline's policy takes over.
func TestOutageIsNotWrongAddress(t *testing.T) {
	refused := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		a := ln.Addr().String()
		require.NoError(t, ln.Close())
		return "http://" + a
	}
	silent := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0") // accepted by the kernel, never answered
		require.NoError(t, err)
		t.Cleanup(func() { _ = ln.Close() })
		return "http://" + ln.Addr().String()
	}
	closing := func(t *testing.T) string {
		return "http://" + listenTCP(t, func(c net.Conn) { _ = c.Close() })
	}
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"connection refused", refused},
		{"name that does not resolve", func(*testing.T) string { return "http://opensearch.invalid:9200" }},
		{"accepts and never answers", silent},
		{"closes the connection", closing},
		{"a proxy's 502 page", func(t *testing.T) string {
			return serve(t, page(502, "text/html", "<html><title>502 Bad Gateway</title></html>"), false)
		}},
		{"a proxy's 503 page", func(t *testing.T) string {
			return serve(t, page(503, "text/html", "<html>no healthy upstream</html>"), false)
		}},
		{"429", func(t *testing.T) string {
			return serve(t, page(429, "application/json", `{"error":{"type":"es_rejected_execution_exception"},"status":429}`), false)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{tc.url(t)}, RequestTimeout: 100 * time.Millisecond})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			s, err := opensearch.NewSink(c, recMapping,
				opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 3}))
			require.NoError(t, err)
			err = s.Write(t.Context(), recs(4))
			require.Error(t, err)
			require.False(t, stream.IsPermanent(err), "an outage is retried: %v", err)
			require.NotErrorIs(t, err, opensearch.ErrNotOpenSearch)
			require.Equal(t, int64(3), s.Stats().Requests)
		})
	}
}

// refusingTransport refuses connections (as a node that is down does) until the time
// upAt, then serves requests with node, without a network.
type refusingTransport struct {
	upAt time.Time
	node http.Handler
	reqs atomic.Int64
}

func (rt *refusingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.reqs.Add(1)
	if time.Now().Before(rt.upAt) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	w := httptest.NewRecorder()
	rt.node.ServeHTTP(w, req)
	res := w.Result()
	res.Request = req
	return res, nil
}

// logRecords keeps the records logged to it.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecords) WithGroup(string) slog.Handler            { return h }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}

// TestOutageLogSaysURLAndHowLong: while nothing answers, the sink retries until the node is
// up (here 10 minutes of synctest's time, under a policy that retries without end) and then
// writes everything; meanwhile its Warn lines name the URL (credentials masked) and how long
// the sink has been failing, a few lines then one per 30 s. Before, the lines named neither.
func TestOutageLogSaysURLAndHowLong(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const down = 10 * time.Minute
		start := time.Now()
		f := newFake()
		rt := &refusingTransport{upAt: start.Add(down), node: f}
		logs := &logRecords{}
		c, err := opensearch.NewClient(t.Context(), opensearch.Config{
			Addresses: []string{withCredentials("http://node-1.example:9200")},
			Transport: rt,
			Logger:    slog.New(logs),
		})
		require.NoError(t, err)
		defer func() { _ = c.Close() }()
		s, err := opensearch.NewSink(c, recMapping,
			opensearch.WithRetry(stream.RetryPolicy{Initial: time.Second, Max: 10 * time.Second}))
		require.NoError(t, err)

		require.NoError(t, s.Write(t.Context(), recs(20)), "written once the node is up")
		require.Len(t, f.stored, 20)
		require.GreaterOrEqual(t, time.Since(start), down)

		var lines int
		var last time.Duration
		for _, r := range logs.recs {
			if r.Message != "opensearch: bulk request failed, retrying" {
				continue
			}
			lines++
			attrs := map[string]slog.Value{}
			r.Attrs(func(a slog.Attr) bool {
				attrs[a.Key] = a.Value
				return true
			})
			require.Equal(t, "http://node-1.example:9200/_bulk", attrs["url"].String())
			require.Equal(t, slog.KindDuration, attrs["failing_for"].Kind(), "failing_for in %v", attrs)
			// The attempts fail at once: the outage began with the first, at start.
			require.Equal(t, r.Time.Sub(start).Round(time.Millisecond), attrs["failing_for"].Duration())
			last = attrs["failing_for"].Duration()
			for _, v := range attrs {
				require.NotContains(t, v.String(), addrSecret)
			}
		}
		// A line at most every 30 s, and the attempts up to the retry's Max (10 s) apart: the
		// last line comes within 40 s of the end (it came 0.2 s past 30 s once, with jitter).
		require.GreaterOrEqual(t, last, down-40*time.Second, "the last lines say how long")
		// Five lines, then one per 30 s.
		require.LessOrEqual(t, lines, 5+int(down/(30*time.Second))+1)
		require.Greater(t, rt.reqs.Load(), int64(lines), "more attempts than lines")
	})
}

// TestWrongAddressRealNode: against the real node, a path prefix it has no handler for,
// its transport port, and https:// to its plain HTTP port stop Write at once with
// ErrNotOpenSearch; nothing is written or dead-lettered. Before, the prefix's 400 was split
// and every document dead-lettered (Write returned nil), and the other two were retried.
// A one-segment prefix is an index name to OpenSearch (POST /{index}/_bulk, a default
// index that the sink's actions override), so documents are written through it.
func TestWrongAddressRealNode(t *testing.T) {
	n := newNode(t)
	var nodes struct {
		Nodes map[string]struct {
			Transport struct {
				PublishAddress string `json:"publish_address"`
			} `json:"transport"`
		} `json:"nodes"`
	}
	require.NoError(t, json.Unmarshal(n.must(t, "GET", "/_nodes/_local/transport", ""), &nodes))
	var transport string
	for _, nd := range nodes.Nodes {
		transport = nd.Transport.PublishAddress
	}
	require.NotEmpty(t, transport)

	for _, tc := range []struct {
		name, addr string
		closes     bool // see wrongAddress.closes
	}{
		{"a path prefix it has no handler for", n.url + "/search/v1", false},
		{"its transport port", "http://" + transport, true},
		{"https to its HTTP port", strings.Replace(n.url, "http://", "https://", 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := n.newPrefix(t)
			c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{tc.addr}})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			dl := &collector{}
			s, err := opensearch.NewSink(c, statsMapping(prefix), opensearch.WithDeadLetter(dl),
				opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: 10 * time.Millisecond}))
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			err = s.Write(ctx, stats(0, 100))
			require.True(t, stream.IsPermanent(err), "permanent: %v", err)
			require.ErrorIs(t, err, opensearch.ErrNotOpenSearch)
			require.Contains(t, err.Error(), tc.addr+"/_bulk")
			require.Empty(t, dl.letters())
			if st := s.Stats(); tc.closes {
				require.Equal(t, st.Requests-1, st.RequestRetries, "retried only before the answer was read: %+v", st)
			} else {
				require.Equal(t, int64(1), st.Requests)
			}
			require.Zero(t, n.count(t, prefix+"-*"))
		})
	}

	t.Run("a one-segment prefix is an index name", func(t *testing.T) {
		prefix := n.newPrefix(t)
		c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{n.url + "/" + prefix + "-default"}})
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		s, err := opensearch.NewSink(c, statsMapping(prefix))
		require.NoError(t, err)
		require.NoError(t, s.Write(t.Context(), stats(0, 100)))
		require.Equal(t, 100, n.count(t, prefix+"-*"))
		_, err = n.call(t.Context(), "GET", "/"+prefix+"-default", "")
		require.Error(t, err, "the default index is not created")
	})
}
