// Request attempts that wait long for their answer (Config.SlowRequest): logged while they
// wait and when they end, and the oldest of a sink's bulk requests in its Stats (SlowSince).

package opensearch

import (
	"context"
	"log/slog"
	"net/http/httptrace"
	"net/url"
	"slices"
	"sync"
	"time"
)

// DefaultSlowRequest is how long a request attempt waits for its answer before it is
// reported as slow, unless Config.SlowRequest says otherwise: a bulk request of the default
// flush size takes milliseconds on a healthy cluster, and a node that hangs (stopped, in a
// long garbage collection, its disk stalled) would otherwise say nothing until the request
// timeout, a minute by default.
const DefaultSlowRequest = 10 * time.Second

// slowRepeat is how often a request that still waits is logged again after its first Warn.
const slowRepeat = 30 * time.Second

// watch says where the slowness of a request attempt goes: the logger of whoever sent it,
// and the requests in flight of the sink that sent it (nil for requests of no sink).
type watch struct {
	logger *slog.Logger
	reqs   *inFlight
}

// attempt is one request attempt in flight that is watched: a timer logs it once it has
// waited the client's slow threshold, and again every slowRepeat while it waits.
type attempt struct {
	c     *Client
	w     watch
	op    string // "POST /_bulk"
	path  string
	bytes int
	start time.Time

	mu     sync.Mutex
	host   string // the node's host:port, once the transport took a connection to it
	phase  string // how far the attempt got, as the transport's trace said (*http.Transport only)
	warned bool
	done   bool
	timer  *time.Timer
}

type attemptKey struct{}

// watchAttempt starts watching the request attempt method path with a body of n bytes and
// returns ctx carrying it for the transport, or nil and ctx when the client's threshold is
// off. Its cost is per request, a few small allocations, never per document.
func (c *Client) watchAttempt(ctx context.Context, w watch, method, path string, n int) (*attempt, context.Context) {
	if c.slow <= 0 {
		return nil, ctx
	}
	a := &attempt{c: c, w: w, op: method + " " + path, path: path, bytes: n, start: time.Now()}
	ctx = context.WithValue(ctx, attemptKey{}, a)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn:              func(hostPort string) { a.saw(hostPort, "connecting") },
		GotConn:              func(httptrace.GotConnInfo) { a.saw("", "sending the request") },
		WroteRequest:         func(httptrace.WroteRequestInfo) { a.saw("", "waiting for the response") },
		GotFirstResponseByte: func() { a.saw("", "reading the response") },
	})
	w.reqs.add(a)
	a.mu.Lock()
	a.timer = time.AfterFunc(c.slow, a.fire)
	a.mu.Unlock()
	return a, ctx
}

// sawNode notes the node a request attempt of ctx goes to, for a transport that gives no
// trace (a Config.Transport that is not an *http.Transport).
func sawNode(ctx context.Context, u *url.URL) {
	if a, _ := ctx.Value(attemptKey{}).(*attempt); a != nil && u != nil {
		a.saw(u.Host, "")
	}
}

func (a *attempt) saw(host, phase string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if host != "" {
		a.host = host
	}
	if phase != "" {
		a.phase = phase
	}
}

// fire logs the attempt as slow while it has not ended, and arms the next reminder.
func (a *attempt) fire() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done {
		return
	}
	a.warned = true
	args := []any{"url", a.url(), "request", a.op, "waiting_for", time.Since(a.start).Round(time.Millisecond),
		"timeout", a.c.timeout, "bytes", a.bytes}
	if a.phase != "" {
		args = append(args, "phase", a.phase)
	}
	a.w.logger.Warn("opensearch: request still waiting for its answer", args...)
	a.timer.Reset(slowRepeat)
}

// end stops watching the attempt, which got the response r or failed with err; one that was
// logged as slow logs its end at Info.
func (a *attempt) end(r *response, err error) {
	if a == nil {
		return
	}
	a.mu.Lock()
	a.done = true
	a.timer.Stop()
	warned, u := a.warned, ""
	if warned {
		u = a.url()
	}
	a.mu.Unlock()
	a.w.reqs.remove(a)
	if !warned {
		return
	}
	took := time.Since(a.start).Round(time.Millisecond)
	if r.status == 0 {
		a.w.logger.Info("opensearch: slow request ended without an answer", "url", u, "request", a.op, "took", took, "err", err)
		return
	}
	a.w.logger.Info("opensearch: slow request answered", "url", u, "request", a.op, "took", took, "status", r.status)
}

// url names the node and path of the attempt: the address whose host the transport
// connected to, or the client's addresses while it has not said. a.mu is held.
func (a *attempt) url() string {
	if a.host == "" {
		return a.c.requestURL(nil, a.path)
	}
	for _, addr := range a.c.urls {
		u, err := url.Parse(addr)
		if err == nil && (u.Host == a.host || u.Host+":"+defaultPort(u.Scheme) == a.host) {
			return addr + a.path
		}
	}
	return a.host + a.path
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// inFlight are the watched request attempts of a sink that have not ended.
type inFlight struct {
	mu   sync.Mutex
	reqs []*attempt
}

func (f *inFlight) add(a *attempt) {
	if f == nil {
		return
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, a)
	f.mu.Unlock()
}

func (f *inFlight) remove(a *attempt) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := slices.Index(f.reqs, a); i >= 0 {
		last := len(f.reqs) - 1
		f.reqs[i], f.reqs[last] = f.reqs[last], nil
		f.reqs = f.reqs[:last]
	}
}

// slowSince returns when the oldest attempt in flight began, if it has waited slow or
// longer at now; zero otherwise.
func (f *inFlight) slowSince(now time.Time, slow time.Duration) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	var oldest time.Time
	for _, a := range f.reqs {
		if oldest.IsZero() || a.start.Before(oldest) {
			oldest = a.start
		}
	}
	if oldest.IsZero() || slow <= 0 || now.Sub(oldest) < slow {
		return time.Time{}
	}
	return oldest
}
