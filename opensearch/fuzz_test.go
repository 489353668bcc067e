package opensearch

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
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
		retry, rejected, _, err := s.results(resp, ch, ch.items, &r, nil, nil)
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

// FuzzValidJSON holds the sink's JSON check to encoding/json: the same answer for every input
// of valid UTF-8, and false for every input of invalid UTF-8 (the sink refuses invalid UTF-8
// in strings, which encoding/json lets through, and any byte >= 0x80 outside a string is
// invalid JSON anyway).
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, `{"a":+Inf}`, `{"a":NaN}`, `{"a":-Inf}`, `{"a":1e400}`, `[1,2.5,-0,0.1e-3,true,false,null]`,
		` {"a":{"b":["c\"\\\/\b\f\n\r\t\u00e9"]}} `, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":"\x"}`,
		`{"a":"\u12"}`, `{"a":1,}`, `{,}`, `{"a" 1}`, `[`, `"é"`, "{\"a\":\"\x01\"}", `{} {}`, ``, `tru`,
		`{"cab_id":"cab-0042","name":"João","note":"a\"b\\c"}`, "[\"0123456\xff89abcdef\"]",
		"[\"0123456789abcdef\xe2\x82\"]", "[\"01234567\x1f9abcdef\"]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := validJSON(b)
		if !utf8.Valid(b) {
			if got {
				t.Fatalf("validJSON accepts invalid UTF-8: %q", b)
			}
			return
		}
		if want := json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}

// BenchmarkValidJSON measures validJSON and encoding/json's Valid on documents like the
// ones the sink sends: cab statistics, mostly ASCII field names, IDs, timestamps and
// numbers, and a cab event with non-ASCII names and escapes.
func BenchmarkValidJSON(b *testing.B) {
	for _, doc := range []struct{ name, json string }{
		{"stats", `{"cab_id":"cab-0042","window_start":"2026-12-05T10:00:00Z","window_end":"2026-12-05T10:01:00Z","events":57,"avg_speed_kmh":31.25,"max_speed_kmh":62.5,"distance_km":1.234,"location":{"lat":41.15,"lon":-8.61}}`},
		{"stats-full", `{"cab_id":"CAB-0042","window_start":"2026-11-25T10:00:00Z","window_end":"2026-11-25T10:01:00Z","@timestamp":"2026-11-25T10:00:00Z","events":42,"distance_km":1.23,"avg_speed_kmh":42.5,"max_speed_kmh":77.25,"last_location":{"lat":41.157,"lon":-8.629},"last_status":"hired","pipeline":"cab-stats","window":"1m","final":true}`},
		{"event-utf8", `{"cab_id":"cab-0042","@timestamp":"2026-12-05T10:00:07.123Z","driver":"João Gonçalves","pickup":"Praça da Liberdade, Porto","dropoff":"Estação de São Bento","note":"cliente pediu \"recibo\"\nfatura nº 12","fare_eur":12.4,"tags":["aeroporto","noite"]}`},
	} {
		b.Run(doc.name, func(b *testing.B) {
			data := []byte(doc.json)
			b.Run("validJSON", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					if !validJSON(data) {
						b.Fatal("invalid")
					}
				}
			})
			b.Run("encoding-json", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					if !json.Valid(data) {
						b.Fatal("invalid")
					}
				}
			})
		})
	}
}
