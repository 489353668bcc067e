// Bulk requests: encoding documents into NDJSON chunks, rendering values that cannot be
// encoded, and reading bulk responses and request errors.

package opensearch

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/fleetstream/fleetstream/stream"
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
	// A quarter more than the last request's body, between 64 KiB and the flush size plus
	// an eighth (a document past the flush size still fits).
	hint := int(s.chunkHint.Load())
	limit := s.cfg.flushBytes + s.cfg.flushBytes/8
	return &chunk{buf: make([]byte, 0, min(max(hint+hint/4, minChunk), limit))}
}

// minChunk is the least capacity a new chunk starts with.
const minChunk = 64 << 10

func (s *Sink[T]) putChunk(c *chunk) {
	if len(c.buf) > 0 {
		s.chunkHint.Store(int64(len(c.buf)))
	}
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
	// prev is the batch position of the previous value with the same index and ID, -1 if
	// none: written instead when this one cannot be encoded.
	prev int
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
// ch. On failure ch is unchanged and the returned dead letter says why and carries the
// document, or a best-effort rendering of v when there is none.
func (s *Sink[T]) appendDoc(ch *chunk, v T, mt *meta) *stream.DeadLetter {
	start := len(ch.buf)
	index, id := mt.index, mt.id
	if mt.err != nil {
		dl := encodeLetter(index, id, nil, mt.err.Error())
		s.render(&dl, v, mt.body)
		return &dl
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
	var err error
	switch {
	case s.m.Doc != nil:
		b = append(b, mt.body...)
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
	fail := func(msg string, body []byte) *stream.DeadLetter {
		dl := encodeLetter(index, id, bytes.Clone(body), msg)
		if body == nil {
			s.render(&dl, v, nil)
		}
		return &dl
	}
	if err != nil {
		return fail(err.Error(), nil)
	}
	// Never send OpenSearch what is not JSON: a non-finite number written by an appender
	// (+Inf, NaN) or any other syntax error is an encode error here, with the bytes kept.
	if !validJSON(b[doc:]) {
		var e error
		var c bytes.Buffer
		if e = json.Compact(&c, b[doc:]); e == nil {
			e = errors.New("not JSON of valid UTF-8")
		}
		return fail("invalid JSON: "+e.Error(), b[doc:])
	}
	// The document may start with whitespace (a Kafka record's value passed through).
	first := doc
	for first < len(b) && (b[first] == ' ' || b[first] == '\t' || b[first] == '\n' || b[first] == '\r') {
		first++
	}
	if first == len(b) || b[first] != '{' {
		return fail("document is not a JSON object", b[doc:])
	}
	if index == "" {
		return fail("empty index name", b[doc:])
	}
	if !utf8.ValidString(index) {
		// Sent, it would name another index: a JSON string holds only UTF-8.
		return fail(fmt.Sprintf("index name %q is not valid UTF-8", index), b[doc:])
	}
	if first > doc || bytes.IndexByte(b[doc:], '\n') >= 0 {
		// NDJSON needs the document on one line, and the action line before it.
		var c bytes.Buffer
		_ = json.Compact(&c, b[doc:]) // valid, checked above
		b = append(b[:doc], c.Bytes()...)
	}
	b = append(b, '\n')
	ch.buf = b
	ch.items = append(ch.items, item{index: index, id: id, start: start, doc: doc, end: len(b)})
	return nil
}

// render sets dl.Value to the best rendering of v the sink can make when v has no valid
// document: body when there is one, else the Mapping's encoding, else JSON with non-finite
// numbers written as strings ("+Inf", "NaN"), else fmt's %+v; dl.Err says which when it is
// not the document itself.
func (s *Sink[T]) render(dl *stream.DeadLetter, v T, body []byte) {
	if body != nil {
		dl.Value = bytes.Clone(body)
		return
	}
	if s.m.Body != nil {
		if out, err := s.m.Body(nil, v); err == nil && len(out) > 0 {
			dl.Value = out
			return
		}
	}
	if out, err := json.Marshal(v); err == nil {
		dl.Value = out
		dl.Err += " (value: the value as encoding/json writes it)"
		return
	}
	if out, err := json.Marshal(lenientJSON(reflect.ValueOf(&v).Elem(), 0)); err == nil {
		dl.Value = out
		dl.Err += " (value: the value as JSON with non-finite numbers as strings)"
		return
	}
	dl.Value = fmt.Appendf(nil, "%+v", v)
	dl.Err += " (value: the value as Go's %+v prints it, not JSON)"
}

// lenientJSON converts v to a tree that encoding/json can always write: as encoding/json
// would see v, except that non-finite floats become strings and values it cannot write
// (channels, functions) become their %v text. It follows exported struct fields and their
// json tags' names, and stops at depth 32.
func lenientJSON(v reflect.Value, depth int) any {
	if depth > 32 {
		return fmt.Sprintf("%v", v)
	}
	if !v.IsValid() {
		return nil
	}
	if v.Type().Implements(marshalerType) || v.Type().Implements(textMarshalerType) {
		if out, err := json.Marshal(v.Interface()); err == nil {
			return json.RawMessage(out)
		}
	}
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
		return f
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return lenientJSON(v.Elem(), depth+1)
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return v.Bytes()
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = lenientJSON(v.Index(i), depth+1)
		}
		return out
	case reflect.Map:
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			out[fmt.Sprint(it.Key().Interface())] = lenientJSON(it.Value(), depth+1)
		}
		return out
	case reflect.Struct:
		out := make(map[string]any, v.NumField())
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name := f.Name
			if tag, ok := f.Tag.Lookup("json"); ok {
				n, _, _ := strings.Cut(tag, ",")
				if n == "-" {
					continue
				}
				if n != "" {
					name = n
				}
			}
			out[name] = lenientJSON(v.Field(i), depth+1)
		}
		return out
	case reflect.Chan, reflect.Func, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
		return fmt.Sprintf("%v", v)
	}
	return v.Interface()
}

var (
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

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

// blockType is the error type of a write refused by an index or cluster block.
const blockType = "cluster_block_exception"

// requestError reads the error type and reason of a request refused whole with status:
// {"error":{"type":…,"reason":…},"status":400}, or an error given as a plain string; a body
// with nothing to read (OpenSearch's 413 has none) gives the status and its text.
func requestError(status int, body []byte) (typ, reason string) {
	if len(bytes.TrimSpace(body)) == 0 {
		return "", fmt.Sprintf("status %d: %s", status, http.StatusText(status))
	}
	var r struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &r) == nil && len(r.Error) > 0 {
		var e itemError
		if json.Unmarshal(r.Error, &e) == nil && e.Type != "" {
			return e.Type, e.String()
		}
		var s string
		if json.Unmarshal(r.Error, &s) == nil {
			return "", s
		}
	}
	const max = 512
	if len(body) > max {
		body = body[:max]
	}
	return "", string(body)
}

// foreignRefusal says why a bulk request answered with status (not 200) cannot have been
// answered by OpenSearch's bulk API for what it holds, or "" when it may have been.
// OpenSearch answers a bulk request it ran with 200 (BulkResponse.status() is OK whatever its
// items say), so a 202 (an asynchronous gateway's Accepted) or a 204 says nothing of the
// documents, and no retry would. It serves POST /_bulk at the root of every node (and under
// an index name), so a 404 or a 405 comes from something else. It refuses a request for a
// document with an error object that has a type (a 400 that the sink splits); a 400 without
// one (a TLS port's answer to plain HTTP, a proxy's page, OpenSearch's "no handler found for
// uri" at a path prefix) refuses every half of a split too, and would dead-letter every
// document alone.
func foreignRefusal(status int, body []byte) string {
	switch {
	case status > 200 && status < 300:
		return "a bulk answer other than 200 says nothing of the documents"
	case status == 404 || status == 405:
		return "no bulk API at this URL"
	case status == 400:
		if typ, _ := requestError(status, body); typ == "" {
			return "a refusal of the request, not of a document"
		}
	}
	return ""
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
// appends items to retry (429, 5xx, write blocks) to retry and permanently failed ones to
// rejected. A response it cannot read as one item per document, in order, each with a
// status, is an error, and then nothing is counted, retried or rejected.
func (s *Sink[T]) results(resp []byte, ch *chunk, pending []item, r *BulkResult, retry []item, rejected []stream.DeadLetter) ([]item, []stream.DeadLetter, error) {
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
		return retry, rejected, fmt.Errorf("%w: not a bulk response: %w", ErrNotOpenSearch, err)
	}
	if br.Items == nil {
		// OpenSearch's bulk response always has items; another service's JSON has not.
		return retry, rejected, fmt.Errorf("%w: not a bulk response: no items", ErrNotOpenSearch)
	}
	if len(br.Items) != len(pending) {
		return retry, rejected, fmt.Errorf("%d items for %d documents", len(br.Items), len(pending))
	}
	// Every item is checked before any counts: a document is written or rejected only when
	// its own item says so, as an item of the action sent, with a status, and a success
	// with its result.
	for i, m := range br.Items {
		it, ok := m[s.cfg.op]
		switch {
		case len(m) != 1 || !ok:
			return retry, rejected, fmt.Errorf("item %d is not one %q result", i, s.cfg.op)
		case it.Status < 100 || it.Status > 599:
			return retry, rejected, fmt.Errorf("item %d has no valid status (%d)", i, it.Status)
		case it.Status >= 200 && it.Status < 300 && it.Result != "created" && it.Result != "updated":
			return retry, rejected, fmt.Errorf("item %d has status %d and result %q, not created or updated", i, it.Status, it.Result)
		}
	}
	var forbidden *forbiddenItems
	var refused []int // items refused for their index (indexRefusal)
	wrote := false    // an item of the request was written
	for i, m := range br.Items {
		it := m[s.cfg.op]
		switch {
		case it.Status >= 200 && it.Status < 300:
			wrote = true
			if it.Result == "updated" {
				r.Updated++
			} else {
				r.Created++
			}
		case it.Status == 409 && s.cfg.op == OpCreate:
			r.Existed++
		case it.Error != nil && it.Error.Type == blockType:
			// index.blocks.write, read_only, or the flood-stage read_only_allow_delete
			// block (403 or 429): lifted by an operator or once disk is freed.
			r.Retry++
			r.Blocked++
			if r.Blocked == 1 {
				s.logBlocked(pending[i].index, it.Error.String())
			}
			retry = append(retry, pending[i])
		case it.Status == 429 || it.Status >= 500:
			r.Retry++
			retry = append(retry, pending[i])
		case it.Status == 401 || it.Status == 403:
			// Not the document's fault: the user or role may not write the index.
			r.Rejected++
			if forbidden == nil {
				forbidden = &forbiddenItems{index: pending[i].index, status: it.Status, err: it.Error}
			}
			forbidden.n++
		case indexRefusal(it.Error) != "":
			// The index cannot take any document (missing, closed, an alias without a
			// write index): decided below, once the whole request is seen.
			r.Rejected++
			refused = append(refused, i)
		default:
			r.Rejected++
			p := pending[i]
			var typ, reason string
			if it.Error != nil {
				typ, reason = it.Error.Type, it.Error.String()
			}
			rejected = append(rejected, rejectedLetter(p.index, p.id, bytes.Clone(ch.buf[p.doc:p.end-1]), it.Status, typ, reason))
		}
	}
	if forbidden != nil {
		return retry, rejected, forbidden
	}
	if len(refused) > 0 && !wrote {
		// Nothing of the request was written: the index it writes to (a fixed name, an
		// alias, today's daily index) takes no document, which no retry and no dead letter
		// fixes.
		it := br.Items[refused[0]][s.cfg.op]
		return retry, rejected, &forbiddenItems{index: pending[refused[0]].index, status: it.Status, err: it.Error,
			hint: indexRefusal(it.Error), n: len(refused)}
	}
	for _, i := range refused {
		// Others were written to other indexes: the refused ones are for an index made from
		// the document that takes none (an old day's index that a lifecycle policy closed
		// or deleted, a tenant's), dead-lettered like a document refused for good.
		it, p := br.Items[i][s.cfg.op], pending[i]
		rejected = append(rejected, rejectedLetter(p.index, p.id, bytes.Clone(ch.buf[p.doc:p.end-1]), it.Status, it.Error.Type,
			it.Error.String()+" ("+indexRefusal(it.Error)+")"))
	}
	return retry, rejected, nil
}

// indexRefusal returns what to do about an item error that refuses the index rather than the
// document, so that every document for that index would be refused alike: the index does
// not exist and may not be created (index_not_found_exception, with action.auto_create_index
// off or not matching it), it is closed (index_closed_exception), or it is an alias without
// a write index. It returns "" for any other error, a document's own fault (a mapping
// conflict) or an index name made from the document (invalid_index_name_exception), which
// are dead-lettered. A request none of whose documents was written fails Write permanently
// with such a refusal; when others were written (to other indexes), the refused documents
// are dead-lettered (see results).
func indexRefusal(e *itemError) string {
	if e == nil {
		return ""
	}
	switch {
	case e.Type == "index_not_found_exception":
		return "the index does not exist and OpenSearch may not create it: create it, or let action.auto_create_index match its name"
	case e.Type == "index_closed_exception":
		return "the index is closed: open it (POST /<index>/_open)"
	case e.Type == "illegal_argument_exception" && strings.Contains(e.Reason, "no write index is defined for alias"):
		return "the alias has no write index: make one of its indexes the write index (is_write_index)"
	}
	return ""
}

// forbiddenItems are the items of a bulk response refused with 401 or 403 other than a
// write block (the credentials or the role's permissions for an index), or refused for
// their index (indexRefusal): no retry and no dead letter fixes those. The sink fails Write
// with them, permanently, so that the batch is written again once the index or the
// permissions are right.
type forbiddenItems struct {
	index  string // the first one's
	status int
	err    *itemError
	hint   string // what to do about the index, if it is refused (indexRefusal)
	n      int
}

func (f *forbiddenItems) Error() string {
	return fmt.Sprintf("%d document(s) refused with status %d", f.n, f.status)
}

// httpError is f as the error of the bulk request to url.
func (f *forbiddenItems) httpError(url string) *HTTPError {
	body := "(no error)"
	if f.err != nil {
		body = f.err.Type + ": " + f.err.String()
	}
	op := fmt.Sprintf("bulk: %d document(s) refused, the first for index %q", f.n, f.index)
	if f.hint != "" {
		op += ": " + f.hint
	}
	return &HTTPError{Op: op,
		Method: "POST", URL: url, Status: f.status, Body: body}
}
