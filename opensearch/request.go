// One request attempt (Client.do): the response read up to a cap, request bodies detached
// once the attempt is over, and the errors a request ends with: TransportError,
// ResponseError and HTTPError.

package opensearch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
)

// maxSmallBody caps the body of a response read whole that is not a bulk response (an
// index template's acknowledgement), and how much of a response with an error status is read:
// its start says why, and the status decides what happens.
const maxSmallBody = 64 << 10

// response is what do read of a response.
type response struct {
	status      int
	contentType string
	body        []byte
	// location is a redirect's Location header, credentials masked.
	location string
	// node is the URL the attempt went to once the transport chose the node (nil or
	// without a host when it did not say), named by errors and logs (Client.requestURL).
	node *url.URL
	// sent is the header of the request as signed and sent: its credentials, which a body
	// may echo, are replaced where errors quote it.
	sent http.Header
}

// do sends one request attempt, bounded by the client's request timeout, and appends the
// response body to dst: at most limit bytes of a 2xx response (a body over it fails with a
// *ResponseError wrapping ErrBodyTooLarge), and the first maxSmallBody bytes of any other. A
// ctx that ended is reported as ctx.Err(), unwrapped. An attempt that waits longer than
// Config.SlowRequest is logged to w's logger and counted in w's requests in flight.
func (c *Client) do(ctx context.Context, w watch, method, path, query string, body []byte, dst []byte, limit int64) (r response, err error) {
	r.body = dst
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	a, actx := c.watchAttempt(actx, w, method, path, len(body))
	defer func() { a.end(&r, err) }()
	u := path
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequestWithContext(actx, method, u, nil)
	if err != nil {
		return r, fmt.Errorf("opensearch: %s %s: %w", method, path, err)
	}
	if body != nil {
		// The caller reuses body once do returns (the sink's chunk pool, its retries), but
		// Go's transport may go on reading a request body after RoundTrip returned (an
		// early response such as a 413, a cancel): the readers stop reading it first.
		var bodies detachedBodies
		defer bodies.detach()
		req.Body, req.ContentLength = bodies.open(body), int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return bodies.open(body), nil }
		if len(body) == 0 {
			req.Body, req.GetBody = http.NoBody, nil
		}
		if strings.HasSuffix(path, "/_bulk") {
			req.Header.Set("Content-Type", "application/x-ndjson")
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	res, err := c.api.Client.Stream(req)
	r.node = req.URL // the transport puts the node's scheme, host and path prefix in it
	if err == nil {
		if res.Request != nil && res.Request.URL != nil {
			r.node = res.Request.URL
		}
		c.heard.from(r.node)
		// opensearch-go signs req in place; the request answered is that one, or a copy
		// it signed anew (its seed fallback). A response without its request (a
		// Config.Transport's; NewClient wraps those) still has req's.
		r.sent = req.Header
		if res.Request != nil {
			r.sent = res.Request.Header
		}
		// Closing a body not read to its end drops the connection: what is left of a body
		// over its cap is never read.
		defer res.Body.Close()
		r.status, r.contentType = res.StatusCode, res.Header.Get("Content-Type")
		ok := r.status >= 200 && r.status <= 299
		if !ok {
			limit = maxSmallBody
			if r.status >= 300 && r.status < 400 {
				r.location = stripUserinfo(res.Header.Get("Location"))
			}
		}
		var over bool
		if ok && res.ContentLength > limit {
			r.body, _, err = appendCapped(dst, res.Body, responseStart)
			over = true
		} else {
			r.body, over, err = appendCapped(dst, res.Body, limit)
		}
		if !ok {
			// Quoted in errors and dead letters.
			r.body = c.redact(r.body, r.sent)
		}
		if err == nil && over && ok {
			return r, c.unusable(method+" "+c.requestURL(r.node, path), r, fmt.Errorf("%w of %d bytes", ErrBodyTooLarge, limit))
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return response{body: r.body}, ctx.Err()
		}
		if why := foreignProtocol(err); why != "" {
			return r, &TransportError{Op: method + " " + c.requestURL(r.node, path), Err: fmt.Errorf("%w: %s: %w", ErrNotOpenSearch, why, err)}
		}
		if hint, verr := c.certificateProblem(err); verr != nil {
			return r, &TransportError{Op: method + " " + c.requestURL(r.node, path), Err: fmt.Errorf("%w: %w (%s)", ErrCertificate, verr, hint)}
		}
		if alert := c.clientCertificateRefused(err); alert != "" {
			return r, &TransportError{Op: method + " " + c.requestURL(r.node, path), Err: fmt.Errorf("%w: %s", ErrCertificate, alert)}
		}
		if why := c.closedWithoutAnswer(r.node, err); why != "" {
			return r, &TransportError{Op: method + " " + c.requestURL(r.node, path), Err: fmt.Errorf("%s: %w", why, err)}
		}
		return r, &TransportError{Op: method + " " + path, Err: err}
	}
	return r, nil
}

// foreignProtocol says why a transport error shows that what answered at the address does
// not speak its protocol, or "" when the error may be an outage: a node that is down,
// restarting or overloaded refuses the connection, resets it or times out, but never
// answers https:// with bytes that are not TLS, nor a request with bytes that are not HTTP.
func foreignProtocol(err error) string {
	var rec tls.RecordHeaderError
	switch {
	case errors.As(err, &rec) || errors.Is(err, http.ErrSchemeMismatch):
		return "the server does not speak TLS (an http:// address given as https://?)"
	case strings.Contains(err.Error(), "malformed HTTP "):
		// net/http's text for a status line that is not HTTP's ("malformed HTTP response",
		// "... status code", "... version"); it has no error type to test.
		return "the server does not speak HTTP (OpenSearch's transport port, 9300 by default, or another service's?)"
	}
	return ""
}

// certificateProblem returns a hint at the fix and the verification error of a TLS handshake
// that failed because the server's certificate does not verify; nil when err is something
// else. A certificate that does not verify will not verify on the next attempt, unlike a
// handshake that timed out or a connection reset during one (an overloaded node, a proxy
// without a backend: an outage, retried); those carry no x509 error.
func (c *Client) certificateProblem(err error) (hint string, verr error) {
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &cve) {
		return "", nil
	}
	verr = cve.Err
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		roots    x509.SystemRootsError
	)
	switch {
	case errors.As(verr, &unknown) || errors.As(verr, &roots):
		if c.customCA {
			return "the CA certificate in CACertFile or CACertPEM did not sign it: give the CA that did", verr
		}
		return "the system's authorities do not trust it: set CACertFile or CACertPEM to the CA that signed it", verr
	case errors.As(verr, &hostname):
		return "use an address with a host name the certificate holds", verr
	case errors.As(verr, &invalid) && invalid.Reason == x509.Expired:
		return "the server needs a renewed certificate, or this machine's clock is wrong", verr
	}
	return "check the server's certificate and CACertFile or CACertPEM", verr
}

// clientCertificateRefused describes, with a hint at the fix, a TLS alert by which the server
// refused the client's certificate (none given, an authority it does not trust, expired,
// revoked) or the handshake (TLS 1.2's answer to a missing certificate, as to a version or
// cipher suite they do not share), and returns "" for any other error. Like a server certificate that does not
// verify, it will not pass on the next attempt; an outage sends no such alert.
func (c *Client) clientCertificateRefused(err error) string {
	// crypto/tls reports an alert received as a *net.OpError "remote error" around its
	// unexported alert type, a uint8 (tls.AlertError is QUIC's); QUIC's is taken too.
	var alert tls.AlertError
	if !errors.As(err, &alert) {
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
			return ""
		}
		v := reflect.ValueOf(op.Err)
		if v.Kind() != reflect.Uint8 {
			return ""
		}
		alert = tls.AlertError(v.Uint())
	}
	const (
		handshakeFailure       = 40
		protocolVersion        = 70
		badCertificate         = 42
		unsupportedCertificate = 43
		certificateRevoked     = 44
		certificateExpired     = 45
		certificateUnknown     = 46
		unknownCA              = 48
		certificateRequired    = 116
	)
	switch alert {
	case certificateRequired:
		if c.clientCert {
			return "the server asked again for a client certificate: check ClientCertFile or ClientCertPEM (" + alert.Error() + ")"
		}
		return "the server requires a client certificate: set ClientCertFile and ClientKeyFile (or the PEMs) (" + alert.Error() + ")"
	case badCertificate, unsupportedCertificate, certificateRevoked, certificateExpired, certificateUnknown, unknownCA:
		return "the server refused the client certificate: check ClientCertFile or ClientCertPEM, its authority and dates (" + alert.Error() + ")"
	case handshakeFailure, protocolVersion:
		// TLS 1.2 servers answer a missing client certificate so, as they do a cipher
		// suite or version they do not share: neither changes on the next attempt.
		hint := "the server refused the handshake: does it require a client certificate (ClientCertFile and ClientKeyFile)"
		if c.clientCert {
			hint = "the server refused the handshake: check the client certificate (ClientCertFile or ClientCertPEM)"
		}
		return hint + ", or a TLS version or cipher suite this client does not offer? (" + alert.Error() + ")"
	}
	return ""
}

// requestURL names the URL a request attempt went to, for errors and logs: u, without its
// query, once the transport has put the node in it (see do), else the client's addresses
// followed by path. Credentials are never in it: NewClient takes them out of the addresses.
func (c *Client) requestURL(u *url.URL, path string) string {
	if u == nil || u.Host == "" {
		if len(c.urls) == 1 {
			return c.urls[0] + path
		}
		return path + " at one of " + strings.Join(c.urls, ",")
	}
	v := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return stripUserinfo(v.String())
}

// appendCapped appends what r holds to dst, up to limit bytes, and reports whether r held
// more.
func appendCapped(dst []byte, r io.Reader, limit int64) (_ []byte, over bool, err error) {
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		// One byte past the limit tells a body of exactly limit bytes from a longer one.
		room := min(int64(cap(dst)-len(dst)), limit+1-int64(len(dst)-start))
		n, err := r.Read(dst[len(dst) : len(dst)+int(room)])
		dst = dst[:len(dst)+n]
		if int64(len(dst)-start) > limit {
			return dst[:start+int(limit)], true, nil
		}
		if err == io.EOF {
			return dst, false, nil
		}
		if err != nil {
			return dst, false, err
		}
	}
}

// errBodyDetached is what a request body reads once its request attempt is over.
var errBodyDetached = errors.New("opensearch: request body read after its request ended")

// detachedBodies are the readers of one request attempt's body (the body and those GetBody
// made); detach makes them stop reading it, waiting for a Read in progress.
type detachedBodies struct {
	mu      sync.Mutex
	readers []*bodyReader
}

func (d *detachedBodies) open(b []byte) *bodyReader {
	r := &bodyReader{b: b}
	d.mu.Lock()
	d.readers = append(d.readers, r)
	d.mu.Unlock()
	return r
}

func (d *detachedBodies) detach() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.readers {
		r.mu.Lock()
		r.b, r.detached = nil, true
		r.mu.Unlock()
	}
}

// bodyReader reads a request body until it is detached.
type bodyReader struct {
	mu       sync.Mutex
	b        []byte
	detached bool
}

func (r *bodyReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.detached {
		return 0, errBodyDetached
	}
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func (*bodyReader) Close() error { return nil }

// TransportError is a request that got no complete response: connection refused or reset, a
// timeout. The sink retries it, unless it wraps ErrNotOpenSearch: what answered does not
// speak TLS or HTTP.
type TransportError struct {
	Op  string
	Err error
}

func (e *TransportError) Error() string { return "opensearch: " + e.Op + ": " + e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// ResponseError is a response that cannot be used: a body over its cap (ErrBodyTooLarge), a
// 200 to a bulk request that is not the bulk response asked for (not one item per document,
// an item without a status), or an answer that is not OpenSearch's (ErrNotOpenSearch: a web
// page, a 404 to POST /_bulk). Nothing in it counts as written or rejected: the sink retries
// the request, as after a transport error, except when it wraps ErrNotOpenSearch.
type ResponseError struct {
	Op          string
	Status      int
	ContentType string
	// Start is the start of the body, at most 256 bytes.
	Start string
	Err   error
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("opensearch: %s: unusable response: status %d, content-type %q, body starting %q: %v",
		e.Op, e.Status, e.ContentType, e.Start, e.Err)
}

func (e *ResponseError) Unwrap() error { return e.Err }

// responseStart is how much of an unusable body a ResponseError quotes.
const responseStart = 256

func (c *Client) unusable(op string, r response, err error) *ResponseError {
	// Credentials across the cut are replaced too.
	n := responseStart
	for _, s := range c.secretsOf(r.sent) {
		n = max(n, responseStart+maxEscaped*len(s))
	}
	start := c.redact(r.body[:min(len(r.body), n)], r.sent)
	start = start[:min(len(start), responseStart)]
	return &ResponseError{Op: op, Status: r.status, ContentType: r.contentType, Start: string(start), Err: err}
}

// HTTPError is a response with an error status for a whole request.
type HTTPError struct {
	// Op says what the request was for: "bulk", "put index template <name>".
	Op string
	// Method and URL are the request's; URL is the node's URL and the path, without
	// credentials or query.
	Method, URL string
	Status      int
	// Body is the start of the response body, at most 512 bytes, credentials replaced.
	Body string
	// Location is where a redirect (3xx) leads, credentials masked. The client does not
	// follow redirects.
	Location string
}

func (e *HTTPError) Error() string { return "opensearch: " + e.Op + ": " + e.describe() }

// describe is the message of e without what the request was for: its method and URL, the
// status, the start of the body and what to do about it.
func (e *HTTPError) describe() string {
	quote := e.Body
	if len(quote) > httpErrorQuote {
		quote = strings.ToValidUTF8(quote[:httpErrorQuote], "") + "..."
	}
	msg := fmt.Sprintf("%s %s: status %d %s: body %q", e.Method, e.URL, e.Status, http.StatusText(e.Status), quote)
	switch {
	case e.Location != "":
		msg += " (redirected to " + e.Location + ", which the client does not follow: use that address)"
	case e.Status == 401:
		msg += " (the credentials were refused: check Username and Password, the address's user:pass@, or the AWS credentials)"
	case e.Status == 403 && e.SignatureExpired():
		msg += " (AWS refused the request's signature as expired: the next attempt signs it anew)"
	case e.Status == 403 && !e.Blocked():
		msg += " (the user or role may not do this: check its permissions)"
	}
	return msg
}

// httpErrorQuote is how much of the body an HTTPError's message quotes.
const httpErrorQuote = 256

// Temporary reports whether retrying may help: 408, 429, 5xx other than 501 and 505, write
// blocks (Blocked) and AWS signatures refused as expired (SignatureExpired).
func (e *HTTPError) Temporary() bool {
	return retryableStatus(e.Status) || e.Blocked() || e.SignatureExpired()
}

// SignatureExpired reports whether AWS refused a SigV4-signed request because its session
// token or its signature had expired by the time it arrived: a request signed just before
// temporary credentials rotate (IAM roles for service accounts, EC2 and ECS roles renew them
// every hour or so), or held up on its way. The next attempt is signed again, with the
// renewed credentials, so the sink retries it; an invalid token or a wrong key stays
// permanent.
func (e *HTTPError) SignatureExpired() bool {
	return e.Status == 403 && (strings.Contains(e.Body, "security token included in the request is expired") ||
		strings.Contains(e.Body, "Signature expired"))
}

// Blocked reports whether the request was refused by an index or cluster block
// (cluster_block_exception: index.blocks.write, the flood-stage read_only_allow_delete
// block), which an operator or freed disk space lifts: the sink retries it.
func (e *HTTPError) Blocked() bool {
	return (e.Status == 403 || e.Status == 429) && strings.Contains(e.Body, blockType)
}

// retryableStatus reports whether an answer with status s may be followed by another one
// to the same request: 408, 429 and the 5xx of a server that is away or overloaded. 501 Not
// Implemented (what a plain web server, python3 -m http.server, answers POST) and 505 HTTP
// Version Not Supported are the server's answer to any such request: a retry, retried for
// ever, only gets it again.
func retryableStatus(s int) bool {
	return s == 408 || s == 429 || s >= 500 && s != 501 && s != 505
}

// httpError is the error of the response r to the request method path, for op.
func (c *Client) httpError(op, method, path string, r response) *HTTPError {
	const max = 512
	body := r.body
	if len(body) > max {
		body = body[:max]
	}
	return &HTTPError{Op: op, Method: method, URL: c.requestURL(r.node, path), Status: r.status, Body: string(body), Location: r.location}
}
