// Sending a Write's bulk requests: retries under the policy, splitting a request refused
// whole, write blocks, the in-flight byte budget and the per-request reporting.

package opensearch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/fleetstream/fleetstream/internal/backoff"
	"github.com/fleetstream/fleetstream/stream"
)

type writeState struct {
	mu       sync.Mutex
	rejected []stream.DeadLetter
	err      error
	// What the requests said of their indexes (chunk): whether some item went to an index
	// that takes documents, and the documents of requests all of whose items were refused
	// for their index, with the first such refusal.
	taken   bool
	refused []stream.DeadLetter
	refusal *forbiddenItems
}

func (w *writeState) add(rej []stream.DeadLetter, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rejected = append(w.rejected, rej...)
	if err != nil && w.err == nil {
		w.err = err
	}
}

// indexes takes what the responses to ch said of their indexes.
func (w *writeState) indexes(ch *chunk) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.taken = w.taken || ch.taken
	w.refused = append(w.refused, ch.refused...)
	if w.refusal == nil {
		w.refusal = ch.refusal
	}
}

// send writes one chunk, retrying the request and then its failed items, splitting it when
// OpenSearch refuses it whole, and returns the items rejected permanently.
func (s *Sink[T]) send(ctx context.Context, ch *chunk) ([]stream.DeadLetter, error) {
	resp := getRespBuf()
	defer func() { putRespBuf(resp) }()
	return s.sendItems(ctx, ch, ch.items, nil, resp)
}

// bodyOf returns the request body of items of ch, which are contiguous in ch.buf: a chunk's
// items, a half of them, or items compacted for a retry.
func bodyOf(ch *chunk, items []item) []byte {
	return ch.buf[items[0].start:items[len(items)-1].end]
}

// compact moves the bytes of items (in the order of ch.buf) together from the first one's
// start, over those of items done with (written, or dead-lettered with a copy), and updates
// their offsets: a retry's body is then a slice of ch.buf, whose bytes the in-flight budget
// counts, not a copy beside it. It writes only between the first item's start and the last
// one's end, so the items of a split's other half stay as they are.
func compact(ch *chunk, items []item) {
	at := items[0].start
	for i := range items {
		it := &items[i]
		n := copy(ch.buf[at:], ch.buf[it.start:it.end])
		it.doc += at - it.start
		it.start, it.end = at, at+n
		at += n
	}
}

// bulkResponseCap bounds the body of a bulk response to a request of items documents in
// bytes bytes. A success is about 50 bytes per item, but a rejected document's error quotes
// its ID, field names and field value, the value up to 4 times (a string in a date_range
// field: reason and causes, measured on OpenSearch 2.19); the cap is twice that, 1 KiB more
// per item and 64 KiB: about 60 MiB for a 5 MiB request of 20,000 documents, whose
// response is about 1 MiB when they are written. A body over it is retried like a transport
// error.
func bulkResponseCap(items, bytes int) int64 {
	return 64<<10 + int64(items)<<10 + 8*int64(bytes)
}

// splitStatus reports whether a request refused whole with status may hold documents that
// OpenSearch accepts: a validation error (400) names one bad document, and a body too large
// (413) fits once split.
func splitStatus(status int) bool { return status == 400 || status == 413 }

func (s *Sink[T]) sendItems(ctx context.Context, ch *chunk, pending []item, rejected []stream.DeadLetter, resp *[]byte) ([]stream.DeadLetter, error) {
	failing := false // whether the last attempt failed, for Stats.FailingSince
	defer s.stats.ended(&failing)
	body := bodyOf(ch, pending)
	var retryItems []item
	// free counts the requests that were no attempt of the retry policy: those that only
	// sent again documents that lost a mapping race, each at most once, and those sent at
	// once to the next address after a node's 502, 503 or 504 or a connection it refused
	// (passed, per attempt).
	free, passed := 0, 0
	// What each node did since the last bulk response that could be read, so that the error
	// of an outage names every node that failed the request, not only the last one.
	var failed nodeFailures
	for attempt := 1; ; attempt++ {
		start := time.Now()
		res, err := s.c.do(ctx, watch{s.cfg.logger, &s.reqs}, "POST", "/_bulk", s.query, body, (*resp)[:0], bulkResponseCap(len(pending), len(body)))
		status, out := res.status, res.body
		*resp = out
		r := BulkResult{Docs: len(pending), Bytes: len(body), Attempt: attempt, Status: status, Latency: time.Since(start)}
		var lastErr error
		switch {
		case err != nil && ctx.Err() != nil:
			return rejected, ctx.Err()
		case err != nil && (errors.Is(err, ErrNotOpenSearch) || errors.Is(err, ErrCertificate)):
			return rejected, s.notOpenSearch(&r, err, &failing)
		case err != nil:
			lastErr = err
			failed.add(s.c, res, "POST", "/_bulk", err)
		case status != 200:
			e := s.c.httpError("bulk", "POST", "/_bulk", res)
			foreign, refusal := foreignRefusal(status, out), requestRefusal(status, out)
			switch {
			case e.Blocked():
				r.Blocked = len(pending)
				s.logBlocked(pending[0].index, e.Body)
				lastErr = e
				failed.add(s.c, res, "POST", "/_bulk", nil)
			case e.Temporary():
				lastErr = e
				failed.add(s.c, res, "POST", "/_bulk", nil)
			case foreign != "":
				return rejected, s.notOpenSearch(&r, s.c.unusable("POST "+s.c.requestURL(res.node, "/_bulk"), res,
					fmt.Errorf("%w: %s", ErrNotOpenSearch, foreign)), &failing)
			case refusal != "":
				e.Op = "bulk: " + refusal
				r.Err = e
				s.report(&r, false, &failing)
				return rejected, stream.Permanent(e)
			case splitStatus(status):
				r.Err = e
				s.report(&r, false, &failing)
				typ, reason := requestError(status, out)
				if len(pending) == 1 {
					p := pending[0]
					return append(rejected, rejectedLetter(p.index, p.id, bytes.Clone(ch.buf[p.doc:p.end-1]), status, typ, reason)), nil
				}
				s.stats.split()
				if ok, n := s.splitLog.Allow(time.Now()); ok {
					s.cfg.logger.Warn("opensearch: bulk request refused whole, splitting it to isolate the refused documents",
						"status", status, "docs", len(pending), "type", typ, "reason", reason, "suppressed", n)
				}
				s.stats.ended(&failing) // the halves' attempts say whether the sink fails
				mid := len(pending) / 2
				halves := [2][]item{slices.Clone(pending[:mid]), slices.Clone(pending[mid:])}
				for _, half := range halves {
					if rejected, err = s.sendItems(ctx, ch, half, rejected, resp); err != nil {
						return rejected, err
					}
				}
				return rejected, nil
			default:
				r.Err = e
				s.report(&r, false, &failing)
				return rejected, stream.Permanent(e)
			}
		}
		if lastErr != nil {
			r.Err = lastErr
			// How long the sink has been failing as this attempt left it, read as it was
			// recorded.
			since := s.report(&r, true, &failing)
			// Every failed request is counted (Stats); an outage logs a few lines per 30 s
			// with the count of the lines left out, the URL and how long it has lasted.
			now := time.Now()
			if ok, n := s.retryLog.Allow(now); ok {
				s.cfg.logger.Warn("opensearch: bulk request failed, retrying", "url", s.c.requestURL(res.node, "/_bulk"),
					"failing_for", now.Sub(since).Round(time.Millisecond), "attempt", attempt, "docs", len(pending),
					"err", lastErr, "not_logged_since_last", n)
			}
			if (nodeAway(status) || unreachable(err)) && passed < len(s.c.urls)-1 {
				// A node cut off from its cluster (503 no cluster-manager) or a proxy
				// with nothing behind it answers so, and a node that is down refuses
				// the connection: the request reached no node that could serve it,
				// and the next address may take it now.
				passed++
				free++
				continue
			}
		} else {
			retryItems = retryItems[:0]
			var perr error
			var why string
			retryItems, rejected, why, perr = s.results(out, ch, pending, &r, retryItems, rejected)
			r.retryWhy = why
			var forbidden *forbiddenItems
			if perr != nil && errors.As(perr, &forbidden) {
				e := forbidden.httpError(s.c.requestURL(res.node, "/_bulk"))
				r.Err = e
				s.report(&r, false, &failing)
				return rejected, stream.Permanent(e)
			}
			if perr == nil && ch.refusal != nil && ch.refusal.url == "" {
				ch.refusal.url = s.c.requestURL(res.node, "/_bulk")
			}
			if perr != nil && errors.Is(perr, ErrNotOpenSearch) {
				return rejected, s.notOpenSearch(&r, s.c.unusable("POST "+s.c.requestURL(res.node, "/_bulk"), res, perr), &failing)
			}
			if perr != nil {
				// A bulk response we cannot read (not one item per document): treat it like a
				// failed request, saying what came; IDs make the retry safe.
				perr = s.c.unusable("POST "+s.c.requestURL(res.node, "/_bulk"), res, perr)
				lastErr = perr
				failed.add(s.c, res, "POST", "/_bulk", perr)
				r.Err = perr
				s.report(&r, true, &failing)
			} else {
				s.report(&r, false, &failing)
				failed = nodeFailures{}
				s.c.failures.forget(s.c.nodeOf(res.node))
				if len(retryItems) == 0 {
					return rejected, nil
				}
				lastErr = fmt.Errorf("opensearch: bulk: %d item(s) failed temporarily, the first with %s", len(retryItems), why)
				pending = append(pending[:0:0], retryItems...)
				compact(ch, pending)
				body = bodyOf(ch, pending)
				if r.raced == len(retryItems) {
					// Only documents that lost a race to map a field: the mapping is
					// settled, so they go again at once, each once, whatever attempts
					// the policy has left (MaxAttempts 1 included).
					free++
					continue
				}
			}
		}
		if s.cfg.retry.MaxAttempts > 0 && attempt-free >= s.cfg.retry.MaxAttempts {
			if e := failed.err(s.c, "POST /_bulk"); e != nil {
				lastErr = e
			}
			return rejected, fmt.Errorf("opensearch: bulk: giving up after %d attempts: %w", attempt-free, lastErr)
		}
		t := time.NewTimer(backoff.Delay(s.cfg.retry.Initial, s.cfg.retry.Max, attempt-free))
		select {
		case <-ctx.Done():
			t.Stop()
			return rejected, ctx.Err()
		case <-t.C:
		}
		passed = 0
	}
}

// nodeAway reports whether a whole bulk request's status says that the node that answered
// cannot serve any request now, where another node may: 502, 503, 504. (A 429 is
// backpressure, which the backoff is for; a 500 may come from the request.)
func nodeAway(status int) bool { return status == 502 || status == 503 || status == 504 }

// notOpenSearch reports the attempt r, whose answer showed that the address is not an
// OpenSearch node's (err wraps ErrNotOpenSearch) or that its certificate does not verify
// (ErrCertificate), and returns err marked permanent: the pipeline stops with nothing of the
// request acknowledged or dead-lettered, where retries would only repeat the answer, and
// splits dead-letter every document.
func (s *Sink[T]) notOpenSearch(r *BulkResult, err error, failing *bool) error {
	r.Err = err
	s.report(r, false, failing)
	return stream.Permanent(err)
}

// logBlocked logs a write block, at most a few lines per 30 s.
func (s *Sink[T]) logBlocked(index, reason string) {
	if ok, n := s.blockLog.Allow(time.Now()); ok {
		s.cfg.logger.Warn("opensearch: index write blocked (cluster_block_exception), retrying until the block is lifted",
			"index", index, "reason", reason, "suppressed", n)
	}
}

// report counts the attempt r of a request whose last attempt's failure *failing holds and
// passes it to the hook; it returns when the run of failures r belongs to began
// (Stats.FailingSince as r left it).
func (s *Sink[T]) report(r *BulkResult, requestRetry bool, failing *bool) (failingSince time.Time) {
	failingSince = s.stats.record(r, requestRetry, failing)
	if s.cfg.hook != nil {
		s.cfg.hook(*r)
	}
	return failingSince
}

// budget bounds the bytes in flight.
type budget struct {
	mu   sync.Mutex
	max  int64
	used int64
	free chan struct{} // closed and replaced on release
}

func newBudget(max int64) *budget { return &budget{max: max, free: make(chan struct{})} }

func (b *budget) acquire(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		free := b.free
		b.mu.Unlock()
		select {
		case <-free:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// inUse returns the bytes held now.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	close(b.free)
	b.free = make(chan struct{})
	b.mu.Unlock()
}
