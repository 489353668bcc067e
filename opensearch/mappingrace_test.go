package opensearch_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
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

// TestMappingRaceResendIsNoAttempt: sending a document again once after it lost a mapping
// race is no attempt of the retry policy, and waits for no backoff: the mapping is settled
// when the refusal comes, and each document is sent again at most once, so it cannot loop.
// With MaxAttempts 1 (the sink does not retry, the pipeline does), a race on the last
// attempt the policy allows, or a long Initial, the document is still sent again at once
// and indexed, or dead-lettered when refused again. Before, with MaxAttempts 1 Write failed
// ("giving up after 1 attempts") and the pipeline wrote the whole batch again, or stopped
// under a pipeline policy without retries; a race on the last attempt did the same; and the
// resend waited the policy's backoff. A response whose other items failed temporarily
// (429) is an attempt as before.
func TestMappingRaceResendIsNoAttempt(t *testing.T) {
	const raced = `{"status":400,"error":{"type":"illegal_argument_exception","reason":"mapper [distance_km] cannot be changed from type [long] to [float]"}}`
	const busy = `{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}`
	// A backoff that would outlast the test, but for the first request's 503.
	slow := func(max int) stream.RetryPolicy {
		return stream.RetryPolicy{Initial: time.Hour, Max: time.Hour, MaxAttempts: max}
	}
	for _, tc := range []struct {
		name   string
		policy stream.RetryPolicy
		// whole answers request req whole (503) when it returns true.
		whole func(req int) bool
		// item answers item id of request req; "" stores it.
		item     func(req int, id string, sent int) string
		wantErr  string
		wantKeys []string
		wantDead []string
		wantReqs int
	}{
		{"MaxAttempts 1, written when sent again", slow(1), nil, func(_ int, id string, sent int) string {
			if id == "once" && sent == 1 {
				return raced
			}
			return ""
		}, "", []string{"a/ok", "a/once"}, nil, 2},
		{"sent again without waiting for the backoff", slow(3), nil, func(_ int, id string, sent int) string {
			if id == "once" && sent == 1 {
				return raced
			}
			return ""
		}, "", []string{"a/ok", "a/once"}, nil, 2},
		{"MaxAttempts 1, refused again", slow(1), nil, func(_ int, id string, _ int) string {
			if id == "always" {
				return raced
			}
			return ""
		}, "", []string{"a/ok"}, []string{"always"}, 2},
		{"race on the last attempt allowed", stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 2},
			func(req int) bool { return req == 1 }, func(_ int, id string, sent int) string {
				if id == "once" && sent == 1 { // in the second request: the first was answered 503 whole
					return raced
				}
				return ""
			}, "", []string{"a/ok", "a/once"}, nil, 3},
		{"with a 429 item, an attempt as before", slow(1), nil, func(_ int, id string, _ int) string {
			switch id {
			case "once":
				return raced
			case "ok":
				return busy
			}
			return ""
		}, "giving up after 1 attempts", nil, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &scriptNode{stored: map[string]string{}}
			sent := map[string]int{}
			if tc.whole != nil {
				f.whole = func(req, n int) (int, string) {
					if tc.whole(req) {
						return 503, `{"error":{"type":"unavailable","reason":"r"},"status":503}`
					}
					return 0, ""
				}
			}
			f.item = func(req int, _, _, id string) string {
				sent[id]++
				return tc.item(req, id, sent[id])
			}
			dl := &collector{}
			s := scriptSink(t, f, itemMapping, opensearch.WithDeadLetter(dl), opensearch.WithRetry(tc.policy))
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			batch := []itemDoc{{Index: "a", ID: "ok"}, {Index: "a", ID: "once"}}
			if tc.wantDead != nil {
				batch = []itemDoc{{Index: "a", ID: "ok"}, {Index: "a", ID: "always"}}
			}
			err := s.Write(ctx, batch)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.False(t, stream.IsPermanent(err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantKeys, f.keys())
			var dead []string
			for _, d := range dl.letters() {
				dead = append(dead, d.ID)
				require.Contains(t, d.Err, "cannot be changed from type [long] to [float]")
			}
			require.Equal(t, tc.wantDead, dead)
			require.Equal(t, tc.wantReqs, f.reqs, "requests")
			st := s.Stats()
			if tc.whole == nil {
				require.Equal(t, int64(1), st.Retried, "the raced document, sent again")
			}
			require.Zero(t, st.FailedAttempts, "the sink is not failing")
		})
	}
}
