// Small requests that may be sent again, sent to the client's next address when their node
// gives no usable answer (Client.doOnAnyNode): index templates and the creation ahead's
// requests.

package opensearch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
)

// doOnAnyNode is do for a small request that may be sent again (a template's GET or PUT,
// the creation ahead's GET _cluster/settings and PUT /<index>, which a repeat answers
// resource_already_exists_exception): one that got no answer from its node (refused, reset,
// timed out: a *TransportError that is no ErrNotOpenSearch or ErrCertificate), or an answer
// that says the node cannot serve it now (408, 429, 5xx: a node cut off from its cluster
// answers 503 no cluster-manager, a proxy with nothing behind it 502), goes to the client's
// next address, at most once to each; the last answer is returned as it is, and where no
// address answered, a *TransportError that names each node tried and what it did. The
// transport marks a node that gave no answer dead and passes it over until a health check
// finds it answering, so a node that takes connections and never answers costs one request
// timeout, not one per request of the call: with several addresses, such a node failed
// EnsureTemplates after a timeout (a minute by default) though the others answered. Bulk
// requests are not sent so: the sink retries them under its policy. Passing over a node is
// logged at Warn to logger, the one of whoever asked: the Client's for templates, the sink's
// (WithLogger) for its creations ahead.
func (c *Client) doOnAnyNode(ctx context.Context, logger *slog.Logger, method, path, query string, body []byte) (r response, err error) {
	var unanswered noAnswers // each node's, while none answered
	for i := range len(c.urls) {
		r, err = c.do(ctx, method, path, query, body, nil, maxSmallBody)
		if ctx.Err() != nil || (err == nil && !retryableStatus(r.status)) || (err != nil && !noAnswer(err)) {
			return r, err
		}
		if err != nil && len(unanswered) == i {
			var te *TransportError
			errors.As(err, &te)
			unanswered = append(unanswered, te.Err) // it names the node's URL
		}
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
	if len(unanswered) > 1 && len(unanswered) == len(c.urls) {
		// The last node's error alone would hide what the others did.
		return r, &TransportError{Op: method + " " + path, Err: fmt.Errorf("no address answered: %w", unanswered)}
	}
	return r, err
}

// noAnswers are the errors of the nodes that gave a request no answer, one a node tried.
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
