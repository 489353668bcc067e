// Bulk requests: encoding documents into NDJSON chunks, and rendering values that cannot be
// encoded (the responses: bulk_response.go).

package opensearch

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
	// What its responses said of its indexes, for the Write to decide about documents
	// refused for their index (Sink.Write): taken, some item went to an index that takes
	// documents; refused, the documents of a response all of whose items were refused for
	// their index, and refusal the first such response's.
	taken   bool
	refused []stream.DeadLetter
	refusal *forbiddenItems
}

type item struct {
	index, id       string
	start, doc, end int // action line at start, document at doc, next item at end
	// raced is set once the item is sent again after losing a race to map a field
	// (mappingRace), so that it is sent again only once.
	raced bool
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
	c.taken, c.refused, c.refusal = false, nil, nil
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
	// prev is the batch position of the value with the same index and ID written instead
	// when this one cannot be encoded, -1 if none: the previous one, or with op type create
	// the next one (see Write).
	prev int
}

type docKey struct{ index, id string }

// scratch is Write's per-call working memory, pooled.
type scratch struct {
	metas []meta
	last  map[docKey]int // the value of an index and ID that is written
	tail  map[docKey]int // op type create: the last value of an index and ID
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
			if extends(out, b) {
				b = out
			} else {
				err = errBodyNotAppended
			}
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

// errBodyNotAppended is the encode error of a value whose Mapping.Body returned a slice that
// is not dst extended: its result is no request body (the slip is returning json.Marshal's).
var errBodyNotAppended = errors.New("opensearch: Mapping.Body returned a slice that does not extend dst: append the document to dst and return the result")

// extends reports whether out is dst with bytes appended: in dst's array, or in the array
// append moved dst's bytes to when it grew (then compared: that happens a few times per
// request body, as its buffer doubles).
func extends(out, dst []byte) bool {
	n := len(dst)
	return len(out) >= n && (n == 0 || &out[0] == &dst[0] || bytes.Equal(out[:n], dst))
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
