// Small requests that may be sent again, sent to the client's next address when their node
// gives no usable answer (Client.doOnAnyNode): index templates and the creation ahead's
// requests.

package opensearch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// doOnAnyNode is do for a small request that may be sent again (a template's GET or PUT,
// the creation ahead's GET _cluster/settings and PUT /<index>, which a repeat answers
// resource_already_exists_exception): one that got no answer from its node (refused, reset,
// timed out: a *TransportError that is no ErrNotOpenSearch or ErrCertificate), or an answer
// that says the node cannot serve it now (408, 429, 5xx but 501 and 505, which no node
// answers for now: a node cut off from its cluster answers 503 no cluster-manager, a proxy
// with nothing behind it 502; retryableStatus), goes to the client's
// next address, at most once to each. The last answer is returned as it is, and where no
// node served the request and the client has several addresses, an error that names every
// one and what it did (nodeFailures.err). The transport marks a node that gave no answer dead and passes it
// over until a health check finds it answering, so a node that takes connections and never
// answers costs one request timeout, not one per request of the call: with several
// addresses, such a node failed EnsureTemplates after a timeout (a minute by default)
// though the others answered. Bulk requests are not sent so: the sink retries them under
// its policy. Passing over a node is logged at Warn to logger, the one of whoever asked:
// the Client's for templates, the sink's (WithLogger) for its creations ahead.
func (c *Client) doOnAnyNode(ctx context.Context, logger *slog.Logger, method, path, query string, body []byte) (r response, err error) {
	var failed nodeFailures
	for i := range len(c.urls) {
		r, err = c.do(ctx, watch{logger: logger}, method, path, query, body, nil, maxSmallBody)
		if ctx.Err() != nil || (err == nil && !retryableStatus(r.status)) || (err != nil && !noAnswer(err)) {
			if err == nil {
				c.failures.forget(c.nodeOf(r.node))
			}
			return r, err
		}
		failed.add(c, r, method, path, err)
		if i == len(c.urls)-1 {
			break
		}
		if err != nil {
			logger.Warn("opensearch: no answer from a node; trying the next address", "request", method+" "+path,
				"url", c.requestURL(r.node, path), "err", err)
		} else {
			logger.Warn("opensearch: a node cannot serve the request now; trying the next address", "request", method+" "+path,
				"url", c.requestURL(r.node, path), "status", r.status, "body", string(r.body[:min(len(r.body), httpErrorQuote)]))
		}
	}
	if e := failed.err(c, method+" "+path); e != nil {
		// The last node's error alone would hide what the others did.
		return r, e
	}
	return r, err
}

// nodeFailures are what the nodes that failed a request did, the last failure of each, in
// the order they first failed: no answer (the error of a *TransportError, which names the
// URL), an answer saying the node cannot serve it now (nodeStatus), or one that cannot be
// used (a *ResponseError). The Client remembers each (Client.failures), for the errors of
// the requests that the transport sends elsewhere while it passes over the node.
type nodeFailures struct {
	nodes []string
	errs  noAnswers
	other bool // some node answered, or was not tried
}

// add notes the failure of the attempt r, err of the request method path: err, or r's
// status when err is nil.
func (f *nodeFailures) add(c *Client, r response, method, path string, err error) {
	var te *TransportError
	switch {
	case err == nil:
		err = nodeStatus{c.httpError(method+" "+path, method, path, r)}
	case errors.As(err, &te):
		err = te.Err
	}
	f.other = f.other || answered(err)
	node := c.nodeOf(r.node)
	c.failures.remember(node, err)
	if i := slices.Index(f.nodes, node); i >= 0 {
		f.errs[i] = err
		return
	}
	f.nodes, f.errs = append(f.nodes, node), append(f.errs, err)
}

// err returns the error of the request op that names every node of c and what it did, nil
// with a single address (the request's own error names it). A node that the transport did
// not give the request (it passes over a node that gave no answer, until a health check
// finds it answering) is named with its last failure, or as not tried. It is a
// *TransportError when no node answered (none was left untried), else one that wraps each
// answer's *HTTPError.
func (f *nodeFailures) err(c *Client, op string) error {
	if len(c.urls) < 2 || len(f.nodes) == 0 {
		return nil
	}
	for _, u := range c.urls {
		if slices.Contains(f.nodes, u) {
			continue
		}
		last := c.failures.last(u)
		if last == nil {
			last = fmt.Errorf("%s: not tried", u)
			f.other = true
		} else {
			last = fmt.Errorf("%s: not tried, passed over since it failed: %w", u, last)
			f.other = f.other || answered(last)
		}
		f.nodes, f.errs = append(f.nodes, u), append(f.errs, last)
	}
	if !f.other {
		return &TransportError{Op: op, Err: fmt.Errorf("no address answered: %w", slices.Clone(f.errs))}
	}
	return fmt.Errorf("opensearch: %s: no address served it: %w", op, slices.Clone(f.errs))
}

// answered reports whether a node's failure of a nodeFailures was an answer: a status
// (nodeStatus) or a response that cannot be used (*ResponseError).
func answered(err error) bool {
	var re *ResponseError
	return errors.As(err, new(nodeStatus)) || errors.As(err, &re)
}

// nodeMemory is the last failure of each node that failed a request since it last served
// one, by its address (Client.nodeOf).
type nodeMemory struct {
	mu     sync.Mutex
	byNode map[string]error
}

func (m *nodeMemory) remember(node string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byNode == nil {
		m.byNode = make(map[string]error)
	}
	m.byNode[node] = err
}

func (m *nodeMemory) forget(node string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.byNode, node)
}

func (m *nodeMemory) last(node string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byNode[node]
}

// nodeOf returns the address of c that the request URL u went to, or u's scheme and host
// when none matches (or "" when the transport did not say).
func (c *Client) nodeOf(u *url.URL) string {
	if u == nil || u.Host == "" {
		return ""
	}
	for _, a := range c.urls {
		if p, err := url.Parse(a); err == nil && p.Scheme == u.Scheme && p.Host == u.Host {
			return a
		}
	}
	return u.Scheme + "://" + u.Host
}

// nodeStatus is a node's answer saying that it cannot serve a request now, as an error of a
// nodeFailures: the *HTTPError's message without what the request was for, which the
// nodeFailures' error says once.
type nodeStatus struct{ *HTTPError }

func (e nodeStatus) Error() string { return e.describe() }
func (e nodeStatus) Unwrap() error { return e.HTTPError }

// noAnswers are the errors of the nodes that failed a request, one a node.
type noAnswers []error

func (e noAnswers) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

func (e noAnswers) Unwrap() []error { return e }

// noAnswer reports whether err is a request's that got no answer from its node: an outage of
// the node, not something else at its address.
func noAnswer(err error) bool {
	var te *TransportError
	return errors.As(err, &te) && !errors.Is(err, ErrNotOpenSearch) && !errors.Is(err, ErrCertificate)
}

// unreachable reports whether err is a request's that could not connect to its node
// (connection refused: a node that is down; a name that does not resolve): nothing was sent,
// so the request may go to another node at once.
func unreachable(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// closedWithoutAnswer says what it means when err shows that the address closed the
// connection before any HTTP answer (EOF, a reset, a write to a connection it closed), or
// returns "" for any other error. Where no HTTP answer ever came from the address, the
// likely cause is a port that does not speak HTTP (Kafka's, OpenSearch's transport port),
// which net/http reports as a bare "EOF". It stays retried like any outage: a proxy whose
// node is not up yet (Docker's userland proxy for a published port, kubectl port-forward, a
// TCP load balancer) does the same, and a pipeline started before its node must wait for it.
func (c *Client) closedWithoutAnswer(u *url.URL, err error) string {
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) &&
		!errors.Is(err, syscall.EPIPE) && !errors.Is(err, net.ErrClosed) &&
		// net/http's error (unexported) for a connection closed before the request went
		// out, which is also what a port that closes every connection at once gets.
		!strings.Contains(err.Error(), "http: server closed idle connection") {
		return ""
	}
	if c.heard.has(u) {
		return "the node closed the connection without answering (it has answered before: is it stopping or restarting?)"
	}
	return "the address closed the connection without an HTTP answer: is it OpenSearch's HTTP port (9200 by default), " +
		"or a proxy whose node is not up yet?"
}

// heardNodes are the hosts of the nodes that gave the client an HTTP answer, any status.
type heardNodes struct {
	all   atomic.Bool // every address has answered: nothing left to note
	mu    sync.Mutex
	hosts map[string]struct{}
	n     int // the client's addresses
}

// from notes an HTTP answer from the node of u.
func (h *heardNodes) from(u *url.URL) {
	if h.all.Load() || u == nil || u.Host == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hosts == nil {
		h.hosts = make(map[string]struct{})
	}
	h.hosts[u.Host] = struct{}{}
	h.all.Store(len(h.hosts) >= h.n)
}

// has reports whether the node of u has given an HTTP answer.
func (h *heardNodes) has(u *url.URL) bool {
	if u == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.hosts[u.Host]
	return ok
}
