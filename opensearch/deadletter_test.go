package opensearch_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
)

// TestJSONLinesInvalidUTF8: a key, value or header value that is JSON apart from a byte
// that is not UTF-8 (a document the sink refused as invalid JSON) is written as base64, so
// the line is JSON text and gives the bytes back. encoding/json's Valid does not check UTF-8,
// so such bytes were once written raw as "value": the line was not JSON text, and the bytes
// could not be read back.
func TestJSONLinesInvalidUTF8(t *testing.T) {
	doc := []byte("{\"cab_id\":\"CAB-\xff\"}")
	key := []byte("\"CAB-\xfe\"")
	var out bytes.Buffer
	require.NoError(t, opensearch.NewJSONLines(&out).Write(t.Context(), []stream.DeadLetter{{
		Reason: stream.ReasonEncode, Err: "invalid JSON", Offset: -1, Index: "recs", ID: "a",
		Key: key, Value: doc, Headers: []stream.Header{{Key: "h", Value: doc}},
	}}))
	line := bytes.TrimSpace(out.Bytes())
	require.True(t, utf8.Valid(line), "the line is not UTF-8, so not JSON text: %q", line)
	var l struct {
		Key         json.RawMessage `json:"key"`
		KeyBase64   []byte          `json:"key_base64"`
		Value       json.RawMessage `json:"value"`
		ValueBase64 []byte          `json:"value_base64"`
		Headers     []struct {
			Value       json.RawMessage `json:"value"`
			ValueBase64 []byte          `json:"value_base64"`
		} `json:"headers"`
	}
	require.NoError(t, json.Unmarshal(line, &l))
	require.Nil(t, l.Key)
	require.Equal(t, key, l.KeyBase64)
	require.Nil(t, l.Value)
	require.Equal(t, doc, l.ValueBase64)
	require.Len(t, l.Headers, 1)
	require.Nil(t, l.Headers[0].Value)
	require.Equal(t, doc, l.Headers[0].ValueBase64)
}
