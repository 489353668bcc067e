package opensearch_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
)

// pipeNet is an in-memory network for an httptest server inside a synctest bubble: its
// connections are net.Pipe pairs, on which a goroutine that waits is durably blocked, so the
// bubble's clock moves on while a request waits for its answer (it does not on a socket).
type pipeNet struct {
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "node-1.example:9200" }

func (p *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.closed:
		return nil, net.ErrClosed
	}
}

func (p *pipeNet) Close() error {
	p.closeOnce.Do(func() { close(p.closed) })
	return nil
}

func (p *pipeNet) Addr() net.Addr { return pipeAddr{} }

func (p *pipeNet) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case p.conns <- server:
		return client, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.closed:
		return nil, net.ErrClosed
	}
}

// pipeServer starts an httptest server of h on a pipeNet and returns a client of it (its
// logger logs), closed with the server when the test ends.
func pipeServer(t *testing.T, h http.Handler, logger *slog.Logger, slow time.Duration) (*httptest.Server, *opensearch.Client) {
	t.Helper()
	return pipeServerWith(t, h, func(cfg *opensearch.Config) { cfg.Logger, cfg.SlowRequest = logger, slow })
}

// pipeServerWith is pipeServer with a client config that set changes; every address and
// host name leads to the server.
func pipeServerWith(t *testing.T, h http.Handler, set func(*opensearch.Config)) (*httptest.Server, *opensearch.Client) {
	t.Helper()
	p := &pipeNet{conns: make(chan net.Conn), closed: make(chan struct{})}
	srv := httptest.NewUnstartedServer(h)
	_ = srv.Listener.Close()
	srv.Listener = p
	srv.Start()
	cfg := opensearch.Config{Addresses: []string{srv.URL}, Transport: &http.Transport{DialContext: p.dial}}
	set(&cfg)
	c, err := opensearch.NewClient(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		srv.Close()
		_ = c.Close()
	})
	return srv, c
}

// heldNode reads each request whole, as OpenSearch does, then waits until hold returns
// before f answers it; a request whose hold returns false is dropped unanswered.
func heldNode(f http.Handler, hold func(r *http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		if hold(r) {
			f.ServeHTTP(w, r)
		}
	})
}

// releaser returns a channel and a func that closes it, once however often it is called.
func releaser() (<-chan struct{}, func()) {
	c := make(chan struct{})
	var once sync.Once
	return c, func() { once.Do(func() { close(c) }) }
}

// messages returns the records of logs with message msg, with their attributes.
func (h *logRecords) messages(msg string) []map[string]slog.Value {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]slog.Value
	for _, r := range h.recs {
		if r.Message != msg {
			continue
		}
		attrs := map[string]slog.Value{"level": slog.StringValue(r.Level.String())}
		r.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value
			return true
		})
		out = append(out, attrs)
	}
	return out
}

const (
	slowWarn     = "opensearch: request still waiting for its answer"
	slowAnswered = "opensearch: slow request answered"
	slowNoAnswer = "opensearch: slow request ended without an answer"
	retryWarn    = "opensearch: bulk request failed, retrying"
)

// A node that takes a bulk request and does not answer it (stopped, stalled) is reported
// while the request waits: a Warn at Config.SlowRequest naming the URL, the request, how long
// it has waited and how far it got, again every 30 s, an Info once it is answered, and
// Stats.SlowSince meanwhile. Before, nothing said so until the one-minute timeout, and an
// answer within the minute was never reported. Time is synctest's: each time.Sleep moves the
// bubble's clock once every goroutine waits.
func TestSlowBulkRequestReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		release, free := releaser()
		defer free() // a failed assertion must not leave the handler waiting
		logs := &logRecords{}
		srv, c := pipeServer(t, heldNode(f, func(r *http.Request) bool {
			select {
			case <-release:
				return true
			case <-r.Context().Done():
				return false
			}
		}), slog.New(logs), 0)
		s, err := opensearch.NewSink(c, recMapping)
		require.NoError(t, err)

		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- s.Write(t.Context(), recs(20)) }()

		time.Sleep(opensearch.DefaultSlowRequest - time.Millisecond)
		synctest.Wait()
		require.Empty(t, logs.messages(slowWarn), "not slow yet")
		require.Zero(t, s.Stats().SlowSince)

		time.Sleep(time.Millisecond)
		synctest.Wait()
		warns := logs.messages(slowWarn)
		require.Len(t, warns, 1)
		w := warns[0]
		require.Equal(t, "WARN", w["level"].String())
		require.Equal(t, srv.URL+"/_bulk", w["url"].String())
		require.Equal(t, "POST /_bulk", w["request"].String())
		require.Equal(t, opensearch.DefaultSlowRequest, w["waiting_for"].Duration())
		require.Equal(t, time.Minute, w["timeout"].Duration())
		require.Equal(t, "waiting for the response", w["phase"].String())
		require.Positive(t, w["bytes"].Int64())
		st := s.Stats()
		require.True(t, st.SlowSince.Equal(start), "SlowSince %v, the request was sent at %v", st.SlowSince, start)
		require.Zero(t, st.FailingSince, "waiting is no failure")

		time.Sleep(30*time.Second - time.Millisecond)
		synctest.Wait()
		require.Len(t, logs.messages(slowWarn), 1, "at most one line per 30 s")
		time.Sleep(time.Millisecond)
		synctest.Wait()
		warns = logs.messages(slowWarn)
		require.Len(t, warns, 2)
		require.Equal(t, 40*time.Second, warns[1]["waiting_for"].Duration())

		time.Sleep(5 * time.Second)
		free()
		require.NoError(t, <-done)
		answered := logs.messages(slowAnswered)
		require.Len(t, answered, 1)
		require.Equal(t, "INFO", answered[0]["level"].String())
		require.Equal(t, 45*time.Second, answered[0]["took"].Duration())
		require.Equal(t, int64(200), answered[0]["status"].Int64())
		require.Equal(t, srv.URL+"/_bulk", answered[0]["url"].String())
		require.Len(t, f.stored, 20)
		st = s.Stats()
		require.Zero(t, st.SlowSince, "nothing in flight")
		require.Zero(t, st.RequestRetries, "an answer within the timeout is no retry")
		require.Empty(t, logs.messages(retryWarn))
	})
}

// A request that waits out the request timeout is warned about at 10 and 40 s, fails at the
// minute as before (the retry Warn, a retry, FailingSince), and its end is logged at Info
// without an answer; the retry, answered at once, is not slow.
func TestSlowBulkRequestTimesOutAsBefore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		var reqs atomic.Int64
		logs := &logRecords{}
		_, c := pipeServer(t, heldNode(f, func(r *http.Request) bool {
			if reqs.Add(1) > 1 {
				return true
			}
			<-r.Context().Done()
			return false
		}), slog.New(logs), 0)
		s, err := opensearch.NewSink(c, recMapping)
		require.NoError(t, err)

		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- s.Write(t.Context(), recs(5)) }()
		time.Sleep(time.Minute - time.Millisecond)
		synctest.Wait()
		require.Len(t, logs.messages(slowWarn), 2)
		require.Empty(t, logs.messages(slowNoAnswer))
		require.True(t, s.Stats().SlowSince.Equal(start))

		require.NoError(t, <-done)
		require.GreaterOrEqual(t, time.Since(start), time.Minute, "the timeout is a minute, as before")
		ended := logs.messages(slowNoAnswer)
		require.Len(t, ended, 1)
		require.Equal(t, time.Minute, ended[0]["took"].Duration())
		var err2 error = ended[0]["err"].Any().(error)
		require.True(t, errors.Is(err2, context.DeadlineExceeded), "%v", err2)
		retries := logs.messages(retryWarn)
		require.Len(t, retries, 1)
		require.Equal(t, int64(1), retries[0]["attempt"].Int64())
		require.Len(t, logs.messages(slowWarn), 2, "the retry was answered at once")
		require.Empty(t, logs.messages(slowAnswered))
		st := s.Stats()
		require.Equal(t, int64(1), st.RequestRetries)
		require.Zero(t, st.SlowSince)
		require.Len(t, f.stored, 5)
	})
}

// Config.SlowRequest sets the threshold, or turns the reports off, for every request of the
// client: here EnsureTemplates', logged to the client's logger.
func TestSlowRequestThreshold(t *testing.T) {
	for _, tc := range []struct {
		name   string
		slow   time.Duration
		warnAt time.Duration // 0: never
	}{
		{"default", 0, opensearch.DefaultSlowRequest},
		{"two seconds", 2 * time.Second, 2 * time.Second},
		{"off", -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release, free := releaser()
				defer free()
				logs := &logRecords{}
				srv, c := pipeServer(t, heldNode(page(404, "application/json", `{}`), func(*http.Request) bool {
					<-release
					return true
				}), slog.New(logs), tc.slow)
				done := make(chan error, 1)
				go func() { done <- c.EnsureTemplates(t.Context()) }()

				time.Sleep(55 * time.Second)
				synctest.Wait()
				warns := logs.messages(slowWarn)
				if tc.warnAt == 0 {
					require.Empty(t, warns)
				} else {
					require.Len(t, warns, 1+int((55*time.Second-tc.warnAt)/(30*time.Second)))
					require.Equal(t, tc.warnAt, warns[0]["waiting_for"].Duration())
					require.Contains(t, warns[0]["url"].String(), srv.URL+"/_index_template/")
					require.Contains(t, warns[0]["request"].String(), " /_index_template/")
				}
				free()
				<-done // what the 404s make of the templates does not matter here
				if tc.warnAt == 0 {
					require.Empty(t, logs.messages(slowAnswered))
				} else {
					require.NotEmpty(t, logs.messages(slowAnswered))
				}
			})
		})
	}
}

// roundTripperFunc is a Config.Transport that is not an *http.Transport, which gives no
// trace of the connection it takes.
type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// With several addresses, the Warn names the node the request waits for, through an
// *http.Transport's trace or, for another transport, the request it is given.
func TestSlowRequestNamesNode(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(*http.Transport, http.Handler) http.RoundTripper
	}{
		{"http.Transport", func(tr *http.Transport, _ http.Handler) http.RoundTripper { return tr }},
		{"another transport, without a network", func(_ *http.Transport, h http.Handler) http.RoundTripper {
			return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
				if r.Body == nil {
					r.Body = http.NoBody // as a server sees a request without one
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w.Result(), nil
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release, free := releaser()
				defer free()
				logs := &logRecords{}
				nodes := []string{"http://node-1.example:9200", "http://node-2.example:9200"}
				h := heldNode(newFake(), func(*http.Request) bool {
					<-release
					return true
				})
				_, c := pipeServerWith(t, h, func(cfg *opensearch.Config) {
					cfg.Addresses, cfg.Logger = nodes, slog.New(logs)
					cfg.Transport = tc.wrap(cfg.Transport.(*http.Transport), h)
				})
				s, err := opensearch.NewSink(c, recMapping)
				require.NoError(t, err)
				done := make(chan error, 1)
				go func() { done <- s.Write(t.Context(), recs(3)) }()
				time.Sleep(opensearch.DefaultSlowRequest)
				synctest.Wait()
				warns := logs.messages(slowWarn)
				require.Len(t, warns, 1)
				require.Contains(t, []string{nodes[0] + "/_bulk", nodes[1] + "/_bulk"}, warns[0]["url"].String())
				free()
				require.NoError(t, <-done)
				require.Equal(t, warns[0]["url"].String(), logs.messages(slowAnswered)[0]["url"].String())
			})
		})
	}
}

// holdingProxy forwards TCP connections to target, and keeps what target answers until
// release is closed: a node that got the request and has not answered yet.
func holdingProxy(t *testing.T, target string, release <-chan struct{}) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			node, err := net.Dial("tcp", target)
			if err != nil {
				_ = client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, node)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(node, client) })
			wg.Go(func() {
				<-release
				_, _ = io.Copy(client, node)
			})
		}
	})
	return ln.Addr().String()
}

// signalRecords are logRecords that close signal when a record with message msg comes.
type signalRecords struct {
	*logRecords
	msg    string
	once   sync.Once
	signal chan struct{}
}

func (h *signalRecords) Handle(ctx context.Context, r slog.Record) error {
	err := h.logRecords.Handle(ctx, r)
	if r.Message == h.msg {
		h.once.Do(func() { close(h.signal) })
	}
	return err
}

// On the real node: a bulk request whose answer a proxy holds is logged as slow at
// Config.SlowRequest (shortened here) with the URL and its phase, shows in Stats.SlowSince
// meanwhile, and its answer, once let through, is logged and writes every document.
func TestSlowRequestOnRealNode(t *testing.T) {
	n := newNode(t)
	prefix := n.newPrefix(t)
	u, err := url.Parse(n.url)
	require.NoError(t, err)
	release, free := releaser()
	defer free()
	proxy := "http://" + holdingProxy(t, u.Host, release)
	logs := &signalRecords{logRecords: &logRecords{}, msg: slowWarn, signal: make(chan struct{})}
	const slow = 200 * time.Millisecond
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{proxy}, Logger: slog.New(logs), SlowRequest: slow})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	s, err := opensearch.NewSink(c, statsMapping(prefix))
	require.NoError(t, err)

	sent := time.Now()
	done := make(chan error, 1)
	go func() { done <- s.Write(t.Context(), stats(0, 100)) }()
	select {
	case <-logs.signal:
	case err := <-done:
		t.Fatalf("Write returned %v before its answer was let through", err)
	case <-time.After(30 * time.Second): // a bound, should the Warn never come
		t.Fatal("no Warn for the held request")
	}
	st := s.Stats()
	require.False(t, st.SlowSince.IsZero())
	require.False(t, st.SlowSince.Before(sent), "SlowSince %v is the request's, sent after %v", st.SlowSince, sent)
	require.GreaterOrEqual(t, time.Since(st.SlowSince), slow)
	require.Zero(t, st.FailingSince)
	w := logs.messages(slowWarn)[0]
	require.Equal(t, proxy+"/_bulk", w["url"].String())
	require.Equal(t, "POST /_bulk", w["request"].String())
	require.Equal(t, "waiting for the response", w["phase"].String())
	require.GreaterOrEqual(t, w["waiting_for"].Duration(), slow)

	free()
	require.NoError(t, <-done)
	answered := logs.messages(slowAnswered)
	require.Len(t, answered, 1)
	require.Equal(t, int64(200), answered[0]["status"].Int64())
	require.GreaterOrEqual(t, answered[0]["took"].Duration(), slow)
	st = s.Stats()
	require.Zero(t, st.SlowSince)
	require.Equal(t, int64(100), st.Indexed)
	require.Equal(t, 100, n.count(t, prefix+"-*"))
}
