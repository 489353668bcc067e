package opensearch_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/testenv"
)

// reading is a document whose numeric fields are whole numbers in one request and
// fractions in the next (reqDocs documents a request), as a window's distance or speed may
// be: the first document OpenSearch sees maps each field long or float.
type reading struct{ i, reqDocs int }

const readingFields = 8

func appendReading(b []byte, r reading) ([]byte, error) {
	b = append(b, `{"@timestamp":"2026-11-25T10:00:00Z","n":`...)
	b = strconv.AppendInt(b, int64(r.i), 10)
	for f := range readingFields {
		b = append(b, `,"f`...)
		b = strconv.AppendInt(b, int64(f), 10)
		b = append(b, `":`...)
		if (r.i/r.reqDocs)%2 == 0 {
			b = strconv.AppendInt(b, int64(r.i+f), 10)
		} else {
			b = strconv.AppendFloat(b, float64(r.i+f)+0.5, 'f', -1, 64)
		}
	}
	return append(b, '}'), nil
}

// TestConcurrentRequestsIntoNewDynamicMapping: concurrent bulk requests into a new index or
// data stream whose numeric fields are mapped dynamically race to map them, one long and
// one float, and OpenSearch refuses the loser's documents with 400 "mapper [f] cannot be
// changed from type [long] to [float]". The mapping is settled once one of them won, so the
// sink sends those documents once more: every one is indexed, none dead-lettered. Before,
// they were dead-lettered (the fleet job's 256 KiB requests lost documents of a new day).
func TestConcurrentRequestsIntoNewDynamicMapping(t *testing.T) {
	n := newNode(t)
	const rounds, reqs = 3, 8
	for _, ds := range []bool{false, true} {
		t.Run(map[bool]string{false: "index", true: "data stream"}[ds], func(t *testing.T) {
			for round := range rounds {
				name := testenv.UniqueName(t, "fleet-race") + "-" + strconv.Itoa(round)
				opts := []opensearch.SinkOption{opensearch.WithConcurrency(4), opensearch.WithFlushBytes(4 << 10)}
				if ds {
					n.must(t, "PUT", "/_index_template/"+name, `{"index_patterns":["`+name+`"],"priority":500,"data_stream":{},
						"template":{"settings":{"number_of_replicas":0},"mappings":{"properties":{"@timestamp":{"type":"date"}}}}}`)
					opts = append(opts, opensearch.WithDataStream())
				}
				t.Cleanup(func() {
					ctx := context.Background()
					_, _ = n.call(ctx, "DELETE", "/_data_stream/"+name, "")
					_, _ = n.call(ctx, "DELETE", "/"+name, "")
					_, _ = n.call(ctx, "DELETE", "/_index_template/"+name, "")
				})
				one, _ := appendReading(nil, reading{0, 1})
				reqDocs := 4<<10/(len(one)+100) + 1 // documents of one request
				vals := make([]reading, reqs*reqDocs)
				for i := range vals {
					vals[i] = reading{i, reqDocs}
				}
				dl := &collector{}
				sink, err := opensearch.NewSink(n.client, opensearch.Mapping[reading]{
					Index: func(reading) string { return name },
					ID:    func(r reading) string { return "r" + strconv.Itoa(r.i) },
					Body:  appendReading,
				}, append(opts, opensearch.WithDeadLetter(dl))...)
				require.NoError(t, err)
				require.NoError(t, sink.Write(t.Context(), vals))
				for _, d := range dl.letters() {
					t.Errorf("round %d: dead-lettered %s: %s", round, d.ID, d.Err)
					break
				}
				require.Equal(t, len(vals), n.count(t, name), fmt.Sprintf("round %d", round))
				st := sink.Stats()
				require.Equal(t, int64(len(vals)), st.Indexed)
				require.Zero(t, st.DeadLettered)
				require.Greater(t, st.Requests, int64(reqs/2), "the batch went in several requests")
			}
		})
	}
}

// TestMappingRaceSentAgainOnce: an item refused for a lost mapping race is sent again once:
// written when the second answer is a success, dead-lettered with the refusal when it is
// the same refusal (a mapping that really cannot take the document), never sent a third
// time. Other items of the request are not sent again.
func TestMappingRaceSentAgainOnce(t *testing.T) {
	const raced = `{"status":400,"error":{"type":"illegal_argument_exception","reason":"mapper [distance_km] cannot be changed from type [long] to [float]"}}`
	f := &scriptNode{stored: map[string]string{}}
	sent := map[string]int{}
	f.item = func(req int, op, index, id string) string {
		sent[id]++
		switch {
		case id == "always":
			return raced
		case id == "once" && sent[id] == 1:
			return raced
		}
		return ""
	}
	dl := &collector{}
	s := scriptSink(t, f, itemMapping, opensearch.WithDeadLetter(dl))
	require.NoError(t, s.Write(t.Context(), []itemDoc{{Index: "a", ID: "ok"}, {Index: "a", ID: "once"}, {Index: "a", ID: "always"}}))
	require.Equal(t, []string{"a/ok", "a/once"}, f.keys())
	require.Equal(t, map[string]int{"ok": 1, "once": 2, "always": 2}, sent)
	require.Len(t, dl.letters(), 1)
	require.Equal(t, "always", dl.letters()[0].ID)
	require.Contains(t, dl.letters()[0].Err, "cannot be changed from type [long] to [float]")
	st := s.Stats()
	require.Equal(t, int64(2), st.Indexed)
	require.Equal(t, int64(1), st.DeadLettered)
}
