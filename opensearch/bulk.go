package opensearch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"unicode/utf8"
)

// chunk is one bulk request body under construction or in flight: NDJSON pairs of action and
// document lines, and where each item starts and ends, so that failed items can be sent
// again alone and rejected ones reported.
type chunk struct {
	buf   []byte
	items []item
}

type item struct {
	index, id       string
	start, doc, end int // action line at start, document at doc, next item at end
}

func (s *Sink[T]) getChunk() *chunk {
	if c, ok := s.chunks.Get().(*chunk); ok {
		return c
	}
	return &chunk{buf: make([]byte, 0, s.cfg.flushBytes+s.cfg.flushBytes/8)}
}

func (s *Sink[T]) putChunk(c *chunk) {
	c.buf = c.buf[:0]
	clear(c.items)
	c.items = c.items[:0]
	s.chunks.Put(c)
}

var respBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func getRespBuf() *[]byte { return respBufs.Get().(*[]byte) }

func putRespBuf(b *[]byte) {
	if cap(*b) > 8<<20 {
		return
	}
	*b = (*b)[:0]
	respBufs.Put(b)
}

// meta is what the first pass of Write learns about a value: where it goes, and for a Doc
// mapping the whole document.
type meta struct {
	index, id string
	body      []byte
	err       error
}

type docKey struct{ index, id string }

// scratch is Write's per-call working memory, pooled.
type scratch struct {
	metas []meta
	last  map[docKey]int
}

var scratches sync.Pool

func (s *Sink[T]) meta(v T) meta {
	if s.m.Doc != nil {
		d, err := s.m.Doc(v)
		return meta{index: d.Index, id: d.ID, body: d.Body, err: err}
	}
	m := meta{index: s.m.Index(v)}
	if s.m.ID != nil {
		m.id = s.m.ID(v)
	}
	return m
}

// appendDoc encodes v, described by mt, as an action line and a document line at the end of
// ch. On failure ch is unchanged and the returned Rejected says why.
func (s *Sink[T]) appendDoc(ch *chunk, v T, mt *meta) *Rejected {
	start := len(ch.buf)
	index, id, body, err := mt.index, mt.id, mt.body, mt.err
	fail := func(reason string) *Rejected {
		var doc []byte
		if body != nil {
			doc = bytes.Clone(body)
		}
		return &Rejected{Index: index, ID: id, Doc: doc, Type: "encode_error", Reason: reason}
	}
	if err != nil {
		return fail(err.Error())
	}
	if index == "" {
		return fail("empty index name")
	}
	b := append(ch.buf, s.action...)
	b = append(b, `"_index":`...)
	b = appendJSONString(b, index)
	if id != "" {
		b = append(b, `,"_id":`...)
		b = appendJSONString(b, id)
	}
	b = append(b, "}}\n"...)
	doc := len(b)
	switch {
	case s.m.Doc != nil:
		b = append(b, body...)
	case s.m.Body != nil:
		var out []byte
		if out, err = s.m.Body(b, v); err == nil {
			b = out
		}
	default:
		var j []byte
		if j, err = json.Marshal(v); err == nil {
			b = append(b, j...)
		}
	}
	// ch.buf keeps its length until the item is complete, so failures leave it unchanged;
	// b may have grown into a new array, which ch.buf then adopts.
	ch.buf = b[:start]
	if err != nil {
		return fail(err.Error())
	}
	if bytes.IndexByte(b[doc:], '\n') >= 0 {
		// NDJSON needs the document on one line.
		var c bytes.Buffer
		if err := json.Compact(&c, b[doc:]); err != nil {
			body = b[doc:]
			return fail("invalid JSON: " + err.Error())
		}
		b = append(b[:doc], c.Bytes()...)
	}
	if len(b) == doc || b[doc] != '{' {
		body = b[doc:]
		return fail("document is not a JSON object")
	}
	b = append(b, '\n')
	ch.buf = b
	ch.items = append(ch.items, item{index: index, id: id, start: start, doc: doc, end: len(b)})
	return nil
}

// appendJSONString appends s as a JSON string; index names and IDs rarely need escaping.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// bulkItem is one item of a bulk response, under its action key.
type bulkItem struct {
	Status int        `json:"status"`
	Result string     `json:"result"`
	Error  *itemError `json:"error"`
}

type itemError struct {
	Type     string     `json:"type"`
	Reason   string     `json:"reason"`
	CausedBy *itemError `json:"caused_by"`
}

func (e *itemError) String() string {
	if e == nil {
		return ""
	}
	s := e.Reason
	if e.CausedBy != nil && e.CausedBy.Reason != "" {
		s += " (caused by " + e.CausedBy.Type + ": " + e.CausedBy.Reason + ")"
	}
	return s
}

type bulkResponse struct {
	Errors bool                  `json:"errors"`
	Items  []map[string]bulkItem `json:"items"`
}

var (
	errorsFalse   = []byte(`{"errors":false,"items":[`)
	resultCreated = []byte(`"result":"created"`)
	resultUpdated = []byte(`"result":"updated"`)
)

// results reads a 200 bulk response for the pending items of ch: it counts outcomes into r,
// appends items to retry (429, 5xx) to retry and permanently failed ones to rejected.
func (s *Sink[T]) results(resp []byte, ch *chunk, pending []item, r *BulkResult, retry []item, rejected []Rejected) ([]item, []Rejected, error) {
	// Fast path: without errors the filtered response holds only statuses and fixed result
	// words, so counting them is exact and needs no decoding.
	if bytes.HasPrefix(resp, errorsFalse) && bytes.HasSuffix(resp, []byte("]}")) {
		created := bytes.Count(resp, resultCreated)
		updated := bytes.Count(resp, resultUpdated)
		if created+updated == len(pending) {
			r.Created, r.Updated = created, updated
			return retry, rejected, nil
		}
	}
	var br bulkResponse
	if err := json.Unmarshal(resp, &br); err != nil {
		return retry, rejected, fmt.Errorf("opensearch: bulk response: %w", err)
	}
	if len(br.Items) != len(pending) {
		return retry, rejected, fmt.Errorf("opensearch: bulk response has %d items for %d documents", len(br.Items), len(pending))
	}
	for i, m := range br.Items {
		var it bulkItem
		for _, v := range m {
			it = v
		}
		switch {
		case it.Status >= 200 && it.Status < 300:
			if it.Result == "updated" {
				r.Updated++
			} else {
				r.Created++
			}
		case it.Status == 409 && s.cfg.op == OpCreate:
			r.Existed++
		case it.Status == 429 || it.Status >= 500:
			r.Retry++
			retry = append(retry, pending[i])
		default:
			r.Rejected++
			p := pending[i]
			rj := Rejected{Index: p.index, ID: p.id, Doc: bytes.Clone(ch.buf[p.doc : p.end-1]), Status: it.Status}
			if it.Error != nil {
				rj.Type, rj.Reason = it.Error.Type, it.Error.String()
			}
			rejected = append(rejected, rj)
		}
	}
	return retry, rejected, nil
}
