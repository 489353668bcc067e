// The bulk sink: Doc, Mapping, the sink options, Sink with NewSink, Write and Close, sending
// with retries and splits, RejectedError, and the in-flight byte budget.

package opensearch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/fleetstream/fleetstream/internal/docid"
	"github.com/fleetstream/fleetstream/internal/lograte"
	"github.com/fleetstream/fleetstream/stream"
)

// Doc is one document: where it goes and its JSON body.
type Doc struct {
	// Index is an index, alias or data stream name.
	Index string
	// ID is the document ID. Empty lets OpenSearch generate one, which makes replays
	// duplicate the document: use deterministic IDs (WindowID) for results.
	ID string
	// Body is the JSON object, on one line or not. It must stay valid until Write returns:
	// do not reuse one buffer for every Doc.
	Body []byte
}

// Mapping says how a value becomes a document: either Doc, or Index with optional ID and Body.
type Mapping[T any] struct {
	// Doc returns the whole document. An error dead-letters the value.
	Doc func(v T) (Doc, error)

	// Index names the value's index (FixedIndex, DailyIndex, or your own).
	Index func(v T) string
	// ID returns the document ID (see Doc.ID); nil lets OpenSearch generate IDs.
	ID func(v T) string
	// Body appends the JSON object to dst and returns the extended slice. It runs on the
	// sink's reused buffers, so an appender that allocates nothing makes the sink allocate
	// almost nothing per document. A value whose Body returns a slice of its own instead
	// (json.Marshal's) is dead-lettered, with an error that says so. Nil uses encoding/json.
	Body func(dst []byte, v T) ([]byte, error)
}

// Op types for WithOpType.
const (
	// OpIndex creates or replaces the document with the same ID (the default): replays
	// overwrite.
	OpIndex = "index"
	// OpCreate creates the document and refuses an existing ID (409, counted as Existed, not
	// an error). Data streams accept only create.
	OpCreate = "create"
)

// SinkOption configures a Sink.
type SinkOption interface{ apply(*sinkConfig) }

type sinkOptionFunc func(*sinkConfig)

func (f sinkOptionFunc) apply(c *sinkConfig) { f(c) }

// DefaultRetry is the sink's retry policy unless WithRetry sets one: exponential backoff
// from 100ms to 10s, at most 10 attempts of the same documents (with waits of 16 to 33 s in
// all between them), after which Write fails with a retryable error and the pipeline's own
// retry policy takes over.
var DefaultRetry = stream.RetryPolicy{Initial: 100 * time.Millisecond, Max: 10 * time.Second, MaxAttempts: 10}

type sinkConfig struct {
	flushBytes  int
	maxInFlight int64
	concurrency int
	retry       stream.RetryPolicy
	deadLetter  stream.DeadLetterSink
	op          string
	hook        func(BulkResult)
	logger      *slog.Logger
	ahead       time.Duration // WithIndexAhead
	errs        []error
}

// WithFlushBytes sets the size at which a bulk request is sent (default 256 KiB). A batch is
// split into requests of about this size; the rest is sent at the end of the batch.
//
// OpenSearch indexes one bulk request into a shard on one write thread, so a batch sent as
// one request (a streaming batch is rarely over a few MiB) leaves WithConcurrency's other
// requests unused: 256 KiB (about 850 documents of 300 bytes, near the 1,000 of Flink's
// OpenSearch sink) drained the fleet job's backlog 10 % faster than 5 MiB, and 128 KiB did no
// better. Concurrent requests into a new index may map a field differently; the sink sends
// the documents so refused again (see the package's Retries).
func WithFlushBytes(n int) SinkOption {
	return sinkOptionFunc(func(c *sinkConfig) {
		if n <= 0 {
			c.errs = append(c.errs, invalid("WithFlushBytes", "%d: must be positive", n))
		}
		c.flushBytes = n
	})
}

// WithMaxInFlightBytes bounds the bytes of bulk bodies held by requests in flight, waiting for
// a retry or waiting for a free connection (default: (concurrency+1) × 1.125 × flush size).
// Encoding waits when it is reached. A single request larger than the bound still goes alone.
func WithMaxInFlightBytes(n int64) SinkOption {
	return sinkOptionFunc(func(c *sinkConfig) {
		if n <= 0 {
			c.errs = append(c.errs, invalid("WithMaxInFlightBytes", "%d: must be positive", n))
		}
		c.maxInFlight = n
	})
}

// WithConcurrency bounds the concurrent bulk requests of the sink (default 4).
func WithConcurrency(n int) SinkOption {
	return sinkOptionFunc(func(c *sinkConfig) {
		if n <= 0 {
			c.errs = append(c.errs, invalid("WithConcurrency", "%d: must be positive", n))
		}
		c.concurrency = n
	})
}

// WithRetry sets the retry policy of bulk requests and failed items (default DefaultRetry):
// the same stream.RetryPolicy as the pipeline's. MaxAttempts bounds the attempts of the same
// documents within one Write; 0 retries until ctx ends, so an outage blocks Write. Sending a
// document again once after it lost a race to map a field is no attempt (see the package's
// Retries): MaxAttempts 1 still does it.
func WithRetry(p stream.RetryPolicy) SinkOption {
	return sinkOptionFunc(func(c *sinkConfig) {
		if p.Initial <= 0 || p.Max < p.Initial || p.MaxAttempts < 0 {
			c.errs = append(c.errs, invalid("WithRetry", "%+v: need 0 < Initial <= Max and MaxAttempts >= 0", p))
		}
		c.retry = p
	})
}

// WithDeadLetter sets where rejected documents go: any stream.DeadLetterSink (a
// stream.DeadLetterFunc, a JSONLines file, the kafka package's dead-letter producer). Without
// one, a rejected document makes Write fail with a permanent *RejectedError, which stops the
// pipeline: nothing is dropped silently. DiscardDeadLetters opts out explicitly.
func WithDeadLetter(d stream.DeadLetterSink) SinkOption {
	return sinkOptionFunc(func(c *sinkConfig) {
		if d == nil {
			c.errs = append(c.errs, invalid("WithDeadLetter", "nil"))
		}
		c.deadLetter = d
	})
}

// WithOpType sets the bulk action: OpIndex (default) or OpCreate.
func WithOpType(op string) SinkOption {
	return sinkOptionFunc(func(c *sinkConfig) {
		if op != OpIndex && op != OpCreate {
			c.errs = append(c.errs, invalid("WithOpType", "%q: want %q or %q", op, OpIndex, OpCreate))
		}
		c.op = op
	})
}

// WithDataStream writes to data streams: the same as WithOpType(OpCreate). Documents need the
// data stream's timestamp field: @timestamp, unless its template names another (the raw
// telemetry template of WithAppendOnlyDataStreams names ts). A replay after the data stream
// rolled over duplicates (see the package doc, # Delivery).
func WithDataStream() SinkOption { return WithOpType(OpCreate) }

// WithBulkHook registers a function called after every bulk request attempt, from the
// goroutine that sent it. It must be quick and safe for concurrent use.
func WithBulkHook(f func(BulkResult)) SinkOption {
	return sinkOptionFunc(func(c *sinkConfig) { c.hook = f })
}

// WithLogger sets the logger of the sink and of its creations ahead (WithIndexAhead), the
// client's by default.
func WithLogger(l *slog.Logger) SinkOption {
	return sinkOptionFunc(func(c *sinkConfig) {
		if l != nil {
			c.logger = l
		}
	})
}

// Sink writes batches to OpenSearch with the bulk API. It implements stream.Sink[T] and
// stream.Closer. Write may be called concurrently; the byte and concurrency bounds are shared.
type Sink[T any] struct {
	c      *Client
	m      Mapping[T]
	cfg    sinkConfig
	query  string
	action []byte // `{"index":{` or `{"create":{`
	inFl   *budget
	slots  chan struct{}
	stats  statsBox
	reqs   inFlight // bulk request attempts in flight, for Stats.SlowSince
	closed atomic.Bool
	chunks sync.Pool
	// chunkHint is the length of the last request body built, so that a new chunk starts
	// near the size this sink's requests have, not at the flush size whatever their size.
	chunkHint atomic.Int64
	retryLog  *lograte.Limiter // failed requests about to be retried
	blockLog  *lograte.Limiter
	splitLog  *lograte.Limiter
	longLog   *lograte.Limiter
	ahead     *ahead // WithIndexAhead; nil without
	// noIDBound sends long ids and ids that are not UTF-8 as they are; only tests set it
	// (export_test.go), to show what OpenSearch does with them.
	noIDBound bool
}

var (
	_ stream.Sink[int] = (*Sink[int])(nil)
	_ stream.Closer    = (*Sink[int])(nil)
)

// filterPath keeps of a bulk response only what the sink reads; items stay in request order.
const filterPath = "errors,items.*.status,items.*.result,items.*.error"

// NewSink returns a sink that writes values of T to the cluster of c as documents described
// by m. It validates m and opts and returns an error wrapping ErrInvalidOption.
func NewSink[T any](c *Client, m Mapping[T], opts ...SinkOption) (*Sink[T], error) {
	if c == nil {
		return nil, invalid("NewSink", "nil client")
	}
	cfg := sinkConfig{
		flushBytes:  256 << 10,
		concurrency: 4,
		retry:       DefaultRetry,
		op:          OpIndex,
		logger:      c.logger,
	}
	for _, o := range opts {
		o.apply(&cfg)
	}
	switch {
	case m.Doc != nil && (m.Index != nil || m.ID != nil || m.Body != nil):
		cfg.errs = append(cfg.errs, invalid("Mapping", "set Doc, or Index with ID and Body, not both"))
	case m.Doc == nil && m.Index == nil:
		cfg.errs = append(cfg.errs, invalid("Mapping.Index", "required (or set Mapping.Doc)"))
	}
	if cfg.ahead > 0 && cfg.op == OpCreate {
		cfg.errs = append(cfg.errs, invalid("WithIndexAhead", "not with op type create (WithOpType(OpCreate), WithDataStream): it serves indexes written with op type index; a data stream's backing indexes are OpenSearch's to create"))
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	if cfg.maxInFlight == 0 {
		// Room for every concurrent request plus one encoded ahead; a request slightly
		// exceeds the flush size by its last document.
		cfg.maxInFlight = int64(cfg.concurrency+1) * int64(cfg.flushBytes+cfg.flushBytes/8)
	}
	s := &Sink[T]{
		c:        c,
		m:        m,
		cfg:      cfg,
		query:    "filter_path=" + filterPath,
		action:   []byte(`{"` + cfg.op + `":{`),
		inFl:     newBudget(cfg.maxInFlight),
		slots:    make(chan struct{}, cfg.concurrency),
		retryLog: lograte.New(5, 30*time.Second),
		blockLog: lograte.New(3, 30*time.Second),
		splitLog: lograte.New(3, 30*time.Second),
		longLog:  lograte.New(3, time.Minute),
	}
	if cfg.ahead > 0 {
		s.ahead = newAhead(c, cfg.ahead, cfg.logger)
	}
	return s, nil
}

// Close marks the sink closed; later Writes fail with ErrClosed. It ends the creations of
// WithIndexAhead under way and waits for them. It does not close the Client or the
// dead-letter output, which may be shared.
func (s *Sink[T]) Close(context.Context) error {
	s.closed.Store(true)
	if s.ahead != nil {
		s.ahead.close()
	}
	return nil
}

// RejectedError is returned (marked stream.Permanent) by Write when documents were rejected
// and no dead-letter output is configured. Docs are the dead letters that had nowhere to go.
type RejectedError struct{ Docs []stream.DeadLetter }

func (e *RejectedError) Error() string {
	r := e.Docs[0]
	return fmt.Sprintf("opensearch: %d document(s) rejected and no dead-letter output; first: index %q id %q: %s: %s",
		len(e.Docs), r.Index, r.ID, r.Reason, r.Err)
}

// Write indexes batch and returns once every document is indexed or dead-lettered. Bulk
// requests that fail with a transport error, a timeout, 408, 429, 5xx (not 501 or 505) or a
// write block are retried whole; items that fail with 429, 5xx or a write block inside a
// response are retried alone; both with backoff, until ctx ends (Write then returns
// ctx.Err()) or the retry policy's MaxAttempts. Items rejected with another status, or by an ingest pipeline's
// fail processor (500), go to the dead-letter output, except that an item that lost a race
// to map a field of a new index is sent again once (see the package's Retries). A request refused whole with 400 or 413 is split in halves until the documents
// OpenSearch refuses are isolated; they go to the dead-letter output. A request refused
// whole with another 4xx (bad credentials), items refused with 401 or 403 (permissions), a
// batch every document of which was refused for its index (closed, missing; see the
// package's Dead letters), an answer that is not OpenSearch's
// (ErrNotOpenSearch: a wrong address), or a server certificate that does not verify
// (ErrCertificate) fails Write with a permanent error.
func (s *Sink[T]) Write(ctx context.Context, batch []T) error {
	if s.closed.Load() {
		return stream.Permanent(ErrClosed)
	}
	if len(batch) == 0 {
		return nil
	}
	w := writeState{}
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	dispatch := func(ch *chunk) bool {
		n := int64(len(ch.buf))
		if err := s.inFl.acquire(wctx, n); err != nil {
			s.putChunk(ch)
			return false
		}
		// The request waits for a slot in its own goroutine, so that the next one is encoded
		// meanwhile; the byte budget bounds how far encoding runs ahead.
		wg.Go(func() {
			defer func() {
				s.inFl.release(n)
				s.putChunk(ch)
			}()
			select {
			case s.slots <- struct{}{}:
			case <-wctx.Done():
				w.add(nil, wctx.Err())
				return
			}
			defer func() { <-s.slots }()
			rej, err := s.send(wctx, ch)
			w.add(rej, err)
			w.indexes(ch)
			if err != nil {
				cancel(err)
			}
		})
		return true
	}
	// First pass: where every value goes. When an ID occurs more than once in the batch only
	// its last value is written, as if the batch were written in order; sending both would
	// let concurrent requests and item retries reorder them.
	sc, _ := scratches.Get().(*scratch)
	if sc == nil {
		sc = &scratch{last: make(map[docKey]int), tail: make(map[docKey]int)}
	}
	defer func() {
		clear(sc.metas)
		sc.metas = sc.metas[:0]
		clear(sc.last)
		clear(sc.tail)
		scratches.Put(sc)
	}()
	withID, long, invalid := 0, 0, 0
	seen := "" // the index WithIndexAhead saw last
	for i := range batch {
		mt := s.meta(batch[i])
		if s.ahead != nil && mt.index != seen {
			s.ahead.saw(mt.index)
			seen = mt.index
		}
		if isLong, isInvalid := len(mt.id) > docid.MaxBytes, !utf8.ValidString(mt.id); (isLong || isInvalid) && !s.noIDBound {
			msg, prefix := "opensearch: document id longer than 512 bytes replaced by a stable hash", "id_prefix"
			if isLong {
				long++
			}
			if isInvalid {
				invalid++
				msg, prefix = "opensearch: document id that is not valid UTF-8 replaced by a stable hash", "id_prefix_quoted"
			}
			if ok, n := s.longLog.Allow(time.Now()); ok {
				p := mt.id[:min(len(mt.id), 64)]
				if isInvalid {
					p = strconv.Quote(p)
				}
				s.cfg.logger.Warn(msg, "index", mt.index, prefix, p, "id_bytes", len(mt.id), "suppressed", n)
			}
			mt.id = docid.Bound(mt.id)
		}
		mt.prev = -1
		if mt.id != "" && mt.err == nil {
			withID++
			k := docKey{mt.index, mt.id}
			if s.cfg.op == OpCreate {
				// Written in order, the first value is created and the later ones find it
				// (409): the first is kept, and a later one is written only when those
				// before it cannot be encoded.
				if t, ok := sc.tail[k]; ok {
					sc.metas[t].prev = i
				} else {
					sc.last[k] = i
				}
				sc.tail[k] = i
			} else {
				if j, ok := sc.last[k]; ok {
					mt.prev = j
				}
				sc.last[k] = i
			}
		}
		sc.metas = append(sc.metas, mt)
	}
	if long > 0 || invalid > 0 {
		s.stats.replacedIDs(long, invalid)
	}
	dups := withID - len(sc.last)
	tried := 0 // earlier values of an ID tried because a later one could not be encoded
	ch := s.getChunk()
	for i := range batch {
		mt := &sc.metas[i]
		if dups > 0 && mt.id != "" && mt.err == nil && sc.last[docKey{mt.index, mt.id}] != i {
			continue
		}
		dl := s.appendDoc(ch, batch[i], mt)
		// As if written in order: when the last value of an ID cannot be encoded, the
		// latest earlier one that can is written (with op type create: when the first
		// cannot, the next one that can); those that cannot are dead-lettered.
		for j := mt.prev; dl != nil; j = sc.metas[j].prev {
			w.add([]stream.DeadLetter{*dl}, nil)
			if j < 0 {
				break
			}
			tried++
			dl = s.appendDoc(ch, batch[j], &sc.metas[j])
		}
		if dl != nil {
			continue
		}
		if len(ch.buf) >= s.cfg.flushBytes {
			if !dispatch(ch) {
				ch = nil
				break
			}
			ch = s.getChunk()
		}
	}
	if dups > tried {
		s.stats.superseded(dups - tried)
	}
	if ch != nil {
		if len(ch.items) > 0 {
			dispatch(ch)
		} else {
			s.putChunk(ch)
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.err != nil {
		return w.err
	}
	if len(w.refused) > 0 {
		if !w.taken {
			// Every document of the batch that reached OpenSearch was refused for its index:
			// the index the output writes to takes no document, which no retry and no dead
			// letter fixes. Nothing is dead-lettered; the batch is written again once the
			// index is right.
			w.refusal.n = len(w.refused)
			return stream.Permanent(w.refusal.httpError(w.refusal.url))
		}
		// Other requests of the batch wrote to indexes that take documents: the refused ones
		// are for an index made from the document (an old day's, a tenant's), and a request
		// that held only those (the batch split at the byte bound there) is no different.
		w.rejected = append(w.rejected, w.refused...)
	}
	if len(w.rejected) == 0 {
		return nil
	}
	if s.cfg.deadLetter == nil {
		return stream.Permanent(&RejectedError{Docs: w.rejected})
	}
	if err := s.cfg.deadLetter.Write(ctx, w.rejected); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("opensearch: dead-letter output: %w", err)
	}
	s.stats.deadLettered(len(w.rejected))
	s.cfg.logger.Warn("opensearch: documents dead-lettered", "count", len(w.rejected),
		"first_reason", w.rejected[0].Reason, "first_err", w.rejected[0].Err)
	return nil
}
