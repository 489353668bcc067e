package opensearch

import (
	"testing"
)

// FuzzBulkResponse feeds arbitrary bulk responses to the parser: it must not panic, and when
// it accepts a response, every pending item has exactly one outcome.
func FuzzBulkResponse(f *testing.F) {
	f.Add([]byte(`{"errors":false,"items":[{"index":{"result":"created","status":201}},{"index":{"result":"updated","status":200}}]}`), 2)
	f.Add([]byte(`{"errors":true,"items":[{"index":{"result":"created","status":201}},{"index":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"x","caused_by":{"type":"y","reason":"z"}}}},{"create":{"status":429}}]}`), 3)
	f.Add([]byte(`{"errors":false,"items":[]}`), 0)
	f.Add([]byte(`not json`), 1)
	s := &Sink[int]{cfg: sinkConfig{op: OpIndex}}
	f.Fuzz(func(t *testing.T, resp []byte, n int) {
		n = max(0, min(n, 64))
		ch := &chunk{}
		for i := range n {
			start := len(ch.buf)
			ch.buf = append(ch.buf, "{\"index\":{}}\n"...)
			doc := len(ch.buf)
			ch.buf = append(ch.buf, "{}\n"...)
			ch.items = append(ch.items, item{id: string(rune('a' + i%26)), start: start, doc: doc, end: len(ch.buf)})
		}
		var r BulkResult
		retry, rejected, err := s.results(resp, ch, ch.items, &r, nil, nil)
		if err != nil {
			return
		}
		if got := r.Created + r.Updated + r.Existed + r.Retry + r.Rejected; got != n {
			t.Fatalf("%d outcomes for %d items", got, n)
		}
		if len(retry) != r.Retry || len(rejected) != r.Rejected {
			t.Fatalf("retry %d/%d rejected %d/%d", len(retry), r.Retry, len(rejected), r.Rejected)
		}
	})
}
