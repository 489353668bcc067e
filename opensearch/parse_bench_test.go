package opensearch

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
)

// BenchmarkBulkResponse measures reading the response of a 6,000-item bulk request (a 2 MiB
// body of 330-byte documents): the filtered error-free response the sink asks for, the same
// with an error (full decode), and, for comparison, decoding the unfiltered response that
// opensearch-go's BulkIndexer reads.
func BenchmarkBulkResponse(b *testing.B) {
	const n = 6000
	ch := &chunk{}
	for i := range n {
		ch.items = append(ch.items, item{id: strconv.Itoa(i), doc: 0, end: 1})
	}
	ch.buf = []byte("{}\n")
	var filtered, withError, full bytes.Buffer
	filtered.WriteString(`{"errors":false,"items":[`)
	withError.WriteString(`{"errors":true,"items":[`)
	full.WriteString(`{"took":35,"errors":false,"items":[`)
	for i := range n {
		if i > 0 {
			filtered.WriteByte(',')
			withError.WriteByte(',')
			full.WriteByte(',')
		}
		filtered.WriteString(`{"index":{"result":"created","status":201}}`)
		if i == n/2 {
			withError.WriteString(`{"index":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}}`)
		} else {
			withError.WriteString(`{"index":{"result":"created","status":201}}`)
		}
		full.WriteString(`{"index":{"_index":"cab-stats-2026.11.25","_id":"e23b4fc111086ed7c676ab4d9e1dc8` + strconv.Itoa(i%100) +
			`","_version":1,"result":"created","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":` + strconv.Itoa(i) + `,"_primary_term":1,"status":201}}`)
	}
	full.WriteString(`]}`)
	filtered.WriteString(`]}`)
	withError.WriteString(`]}`)
	s := &Sink[int]{cfg: sinkConfig{op: OpIndex}}
	run := func(name string, resp []byte, f func([]byte)) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(resp)))
			for b.Loop() {
				f(resp)
			}
		})
	}
	parse := func(resp []byte) {
		var r BulkResult
		if _, _, _, err := s.results(resp, ch, ch.items, &r, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	run("Filtered", filtered.Bytes(), parse)
	run("FilteredWithError", withError.Bytes(), parse)
	run("UnfilteredDecode", full.Bytes(), func(resp []byte) {
		var r struct {
			Errors bool `json:"errors"`
			Items  []map[string]struct {
				Index   string `json:"_index"`
				ID      string `json:"_id"`
				Version int64  `json:"_version"`
				Result  string `json:"result"`
				Status  int    `json:"status"`
				SeqNo   int64  `json:"_seq_no"`
				Shards  struct {
					Total, Successful, Failed int
				} `json:"_shards"`
			} `json:"items"`
		}
		if err := json.Unmarshal(resp, &r); err != nil {
			b.Fatal(err)
		}
	})
}
