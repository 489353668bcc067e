package opensearch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/docid"
	"github.com/fleetstream/fleetstream/internal/syncbuf"
	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
)

// Regression tests of issue 11 against the real OpenSearch node of testenv.

// textLogger logs as text to w.
func textLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// collector is a dead-letter output that keeps what it gets.
type collector struct {
	mu  sync.Mutex
	got []stream.DeadLetter
}

func (c *collector) Write(_ context.Context, d []stream.DeadLetter) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, d...)
	return nil
}

func (c *collector) letters() []stream.DeadLetter {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]stream.DeadLetter(nil), c.got...)
}

// longIDBatch returns 200 results of which every 20th has a 600-character cab id, and a
// mapping whose ID the caller builds by hand from the cab id (as telemetry's alert ids are),
// so those ids are over 600 bytes.
func longIDBatch(prefix string) ([]cabStats, map[string]bool, opensearch.Mapping[cabStats]) {
	vals := stats(0, 200)
	long := map[string]bool{}
	for i := range vals {
		if i%20 == 0 {
			vals[i].CabID = fmt.Sprintf("%s-%03d", strings.Repeat("C", 600), i)
			long[handID(vals[i])] = true
		}
	}
	m := opensearch.Mapping[cabStats]{
		Index: opensearch.FixedIndex[cabStats](prefix + "-2026.11.25"),
		ID:    handID,
		Body:  appendCabStats,
	}
	return vals, long, m
}

func handID(v cabStats) string {
	return "device_silent|" + v.CabID + "|" + v.WindowStart.Format(time.RFC3339)
}

// Defect 2: an id over 512 bytes is replaced by its stable bound; every document is written,
// none dead-lettered, and a replay overwrites instead of duplicating.
func TestSinkLongIDs(t *testing.T) {
	n := newNode(t)
	prefix := n.newPrefix(t)
	vals, long, m := longIDBatch(prefix)
	dl := &collector{}
	sink, err := opensearch.NewSink(n.client, m, opensearch.WithDeadLetter(dl))
	require.NoError(t, err)
	require.NoError(t, sink.Write(t.Context(), vals))
	require.Empty(t, dl.letters())
	require.Equal(t, len(vals), n.count(t, prefix+"-*"))
	st := sink.Stats()
	require.Equal(t, int64(len(long)), st.LongIDs)
	require.Equal(t, int64(len(vals)), st.Indexed)

	stored := map[string]bool{}
	for _, id := range n.ids(t, prefix+"-*") {
		stored[id] = true
	}
	for id := range long {
		b := docid.Bound(id)
		require.Less(t, len(b), 512)
		require.True(t, stored[b], "bounded id %s... stored", b[:20])
	}

	// A replay (a new sink, as after a restart) overwrites every document.
	replay, err := opensearch.NewSink(n.client, m, opensearch.WithDeadLetter(dl))
	require.NoError(t, err)
	require.NoError(t, replay.Write(t.Context(), vals))
	require.Equal(t, len(vals), n.count(t, prefix+"-*"))
	require.Equal(t, int64(len(vals)), replay.Stats().Updated)
	require.Empty(t, dl.letters())
}

// TestSinkInvalidUTF8IDs: ids that are not valid UTF-8 (binary Kafka keys) and differ only
// in those bytes stay two documents, under their stable replacements, and a replay
// overwrites them; an index name that is not valid UTF-8 is dead-lettered, not changed. Both
// ids were once sent with U+FFFD in place of the invalid byte: one document, the second
// value overwriting the first, nothing dead-lettered.
func TestSinkInvalidUTF8IDs(t *testing.T) {
	n := newNode(t)
	prefix := n.newPrefix(t)
	index := prefix + "-2026.11.25"
	vals := stats(0, 3)
	ids := []string{"cab\xff", "cab\xfe", "cab-3"}
	vals[2].CabID = "bad-index"
	m := opensearch.Mapping[cabStats]{
		Index: func(v cabStats) string {
			if v.CabID == "bad-index" {
				return index + "\xff"
			}
			return index
		},
		ID: func(v cabStats) string {
			for i := range vals {
				if vals[i].CabID == v.CabID {
					return ids[i]
				}
			}
			return ""
		},
		Body: appendCabStats,
	}
	dl := &collector{}
	sink, err := opensearch.NewSink(n.client, m, opensearch.WithDeadLetter(dl))
	require.NoError(t, err)
	require.NoError(t, sink.Write(t.Context(), vals))
	require.ElementsMatch(t, []string{docid.Bound("cab\xff"), docid.Bound("cab\xfe")}, n.ids(t, prefix+"-*"))
	st := sink.Stats()
	require.Equal(t, int64(2), st.Indexed)
	require.Equal(t, int64(2), st.InvalidIDs)
	got := dl.letters()
	require.Len(t, got, 1)
	require.Equal(t, stream.ReasonEncode, got[0].Reason)
	require.Equal(t, index+"\xff", got[0].Index)
	require.Equal(t, `index name "`+index+`\xff" is not valid UTF-8`, got[0].Err)
	require.Contains(t, string(got[0].Value), `"cab_id":"bad-index"`)

	// A replay (a new sink, as after a restart) overwrites both.
	replay, err := opensearch.NewSink(n.client, m, opensearch.WithDeadLetter(dl))
	require.NoError(t, err)
	require.NoError(t, replay.Write(t.Context(), vals[:2]))
	require.Equal(t, 2, n.count(t, prefix+"-*"))
	require.Equal(t, int64(2), replay.Stats().Updated)
}

// Defect 2: a bulk request OpenSearch refuses whole (400, here for ids over 512 bytes sent
// as they are) is split until the refused documents are isolated; they are dead-lettered
// with the reason and every other document is written.
func TestSinkSplitsRequestRefusedWhole(t *testing.T) {
	n := newNode(t)
	prefix := n.newPrefix(t)
	vals, long, m := longIDBatch(prefix)
	dl := &collector{}
	logs := &syncbuf.Buffer{}
	sink, err := opensearch.NewSink(n.client, m, opensearch.WithDeadLetter(dl), opensearch.WithLogger(textLogger(logs)))
	require.NoError(t, err)
	opensearch.DisableIDBound(sink)
	require.NoError(t, sink.Write(t.Context(), vals))

	require.Equal(t, len(vals)-len(long), n.count(t, prefix+"-*"))
	got := dl.letters()
	require.Len(t, got, len(long))
	for _, d := range got {
		require.True(t, long[d.ID], "only the documents with long ids are dead-lettered")
		require.Equal(t, stream.ReasonRejected, d.Reason)
		require.Equal(t, 400, d.Status)
		require.Equal(t, prefix+"-2026.11.25", d.Index)
		require.Contains(t, d.Err, "action_request_validation_exception")
		require.Contains(t, d.Err, "too long")
		require.True(t, json.Valid(d.Value))
		require.Contains(t, string(d.Value), `"cab_id":"CCCC`)
	}
	st := sink.Stats()
	require.Positive(t, st.Split)
	require.Equal(t, int64(len(long)), st.DeadLettered)
	require.Equal(t, int64(len(vals)-len(long)), st.Indexed)
	require.Contains(t, logs.String(), "refused whole")
}

// Defect 4: a write block is temporary. The batch waits (Write does not return, nothing is
// dead-lettered) until the block is lifted, then every document is written; the block is
// logged and counted.
func TestSinkWriteBlock(t *testing.T) {
	for _, block := range []string{"index.blocks.write", "index.blocks.read_only_allow_delete"} {
		t.Run(block, func(t *testing.T) {
			n := newNode(t)
			prefix := n.newPrefix(t)
			index := prefix + "-2026.11.25"
			n.must(t, "PUT", "/"+index, "")
			lift := func() { _, _ = n.call(context.Background(), "PUT", "/"+index+"/_settings", `{"`+block+`":null}`) }
			t.Cleanup(lift)
			n.must(t, "PUT", "/"+index+"/_settings", `{"`+block+`":true}`)

			dl := &collector{}
			logs := &syncbuf.Buffer{}
			sink, err := opensearch.NewSink(n.client, statsMapping(prefix), opensearch.WithDeadLetter(dl),
				opensearch.WithRetry(stream.RetryPolicy{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}),
				opensearch.WithLogger(textLogger(logs)))
			require.NoError(t, err)
			vals := stats(0, 1000) // two minutes of 500 cabs: all in index
			done := make(chan error, 1)
			go func() { done <- sink.Write(t.Context(), vals) }()

			// The block holds for a few seconds, checked all along: Write must not return.
			blocked := time.Now()
			waitFor(t, time.Minute, "the block to hold for 3 s", func() bool {
				select {
				case err := <-done:
					t.Fatalf("Write returned while the index was blocked: %v", err)
				default:
				}
				return sink.Stats().Blocked > 0 && time.Since(blocked) >= 3*time.Second
			})
			require.Zero(t, n.count(t, prefix+"-*"))
			lift()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(time.Minute):
				t.Fatal("Write did not finish after the block was lifted")
			}
			require.Equal(t, len(vals), n.count(t, prefix+"-*"))
			require.Empty(t, dl.letters())
			st := sink.Stats()
			require.Zero(t, st.DeadLettered)
			require.Equal(t, int64(len(vals)), st.Indexed)
			require.GreaterOrEqual(t, st.Blocked, int64(2*len(vals)), "blocked attempts counted")
			out := logs.String()
			require.Contains(t, out, "cluster_block_exception")
			// Rate limited: a few lines, not one per attempt.
			require.LessOrEqual(t, strings.Count(out, "index write blocked"), 4)
			t.Logf("blocked attempts %d, requests %d, %d log lines", st.Blocked, st.Requests, strings.Count(out, "\n"))
		})
	}
}

// speedDoc is a document whose numbers may be non-finite.
type speedDoc struct {
	CabID    string  `json:"cab_id"`
	AvgSpeed float64 `json:"avg_speed_kmh"`
	Events   int     `json:"events"`
}

// Defect 5: a document with a non-finite number is never sent as invalid JSON; it is
// dead-lettered with Reason encode and carries the document, whichever encoder made it.
func TestSinkNonFiniteNumbers(t *testing.T) {
	n := newNode(t)
	prefix := n.newPrefix(t)
	index := prefix + "-2026.11.25"
	vals := make([]speedDoc, 50)
	for i := range vals {
		vals[i] = speedDoc{CabID: fmt.Sprintf("CAB-%02d", i), AvgSpeed: float64(i), Events: i}
	}
	vals[7].AvgSpeed = math.Inf(1)
	vals[21].AvgSpeed = math.NaN()
	vals[33].AvgSpeed = math.Inf(-1)
	bad := map[string]bool{"CAB-07": true, "CAB-21": true, "CAB-33": true}

	appender := func(b []byte, v speedDoc) ([]byte, error) {
		// A careless appender, as strconv writes non-finite floats: +Inf, NaN, -Inf.
		return fmt.Appendf(b, `{"cab_id":%q,"avg_speed_kmh":%v,"events":%d}`, v.CabID, v.AvgSpeed, v.Events), nil
	}
	for _, tc := range []struct {
		name string
		body func([]byte, speedDoc) ([]byte, error)
		// want checks a dead letter's value and error.
		want func(t *testing.T, d stream.DeadLetter)
	}{
		{"encoding/json", nil, func(t *testing.T, d stream.DeadLetter) {
			require.Contains(t, d.Err, "unsupported value")
			require.Contains(t, d.Err, "non-finite numbers as strings")
			require.True(t, json.Valid(d.Value), string(d.Value))
			var v map[string]any
			require.NoError(t, json.Unmarshal(d.Value, &v))
			require.Contains(t, []any{"+Inf", "NaN", "-Inf"}, v["avg_speed_kmh"])
			require.Equal(t, d.ID, v["cab_id"])
		}},
		{"appender", appender, func(t *testing.T, d stream.DeadLetter) {
			require.Contains(t, d.Err, "invalid JSON")
			require.Contains(t, string(d.Value), `"cab_id":"`+d.ID+`"`)
			require.Regexp(t, `"avg_speed_kmh":(\+Inf|NaN|-Inf)`, string(d.Value))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dl := &collector{}
			file := filepath.Join(t.TempDir(), "dead.jsonl")
			jl, err := opensearch.OpenJSONLinesFile(file)
			require.NoError(t, err)
			defer jl.Close()
			both := stream.DeadLetterFunc(func(ctx context.Context, d []stream.DeadLetter) error {
				_ = dl.Write(ctx, d)
				return jl.Write(ctx, d)
			})
			sink, err := opensearch.NewSink(n.client, opensearch.Mapping[speedDoc]{
				Index: opensearch.FixedIndex[speedDoc](index),
				ID:    func(v speedDoc) string { return v.CabID },
				Body:  tc.body,
			}, opensearch.WithDeadLetter(both))
			require.NoError(t, err)
			require.NoError(t, sink.Write(t.Context(), vals))

			got := dl.letters()
			require.Len(t, got, len(bad))
			for _, d := range got {
				require.True(t, bad[d.ID], d.ID)
				require.Equal(t, stream.ReasonEncode, d.Reason)
				require.Equal(t, index, d.Index)
				require.Zero(t, d.Status)
				require.NotEmpty(t, d.Value, "the dead letter carries the document")
				tc.want(t, d)
			}
			require.Equal(t, len(vals)-len(bad), n.count(t, index))
			st := sink.Stats()
			require.Equal(t, int64(len(bad)), st.DeadLettered)
			require.Zero(t, st.Failed, "OpenSearch was sent nothing it refused")

			lines, err := os.ReadFile(file)
			require.NoError(t, err)
			require.Equal(t, len(bad), bytes.Count(lines, []byte("\n")))
			for _, l := range bytes.Split(bytes.TrimSpace(lines), []byte("\n")) {
				var line map[string]any
				require.NoError(t, json.Unmarshal(l, &line))
				require.Equal(t, "encode", line["reason"])
				_, asJSON := line["value"]
				_, asText := line["value_text"]
				require.True(t, asJSON || asText, "the line carries the document: %s", l)
			}
		})
	}
}

// TestSinkPassesOverUnavailableNode, on the real node and a node answering 503 (cut off from
// its cluster: no cluster-manager): a bulk request that node answers goes at once to the next
// address, without the retry policy's backoff. The transport passes over a node only when it
// gives no answer, so every request it was given waited a backoff (100 ms to 10 s) before
// its retry; with a backoff of an hour here, the Write waited until its ctx ended. Where every
// address answers 503, each attempt tries each address once, then waits as before.
func TestSinkPassesOverUnavailableNode(t *testing.T) {
	n := newNode(t)
	t.Run("one node unavailable", func(t *testing.T) {
		prefix := n.newPrefix(t)
		u, got := unavailableNode(t)
		c := n.clientWith(t, u, true, time.Minute)
		s, err := opensearch.NewSink(c, statsMapping(prefix), opensearch.WithConcurrency(1), opensearch.WithFlushBytes(1000),
			opensearch.WithRetry(stream.RetryPolicy{Initial: time.Hour, Max: time.Hour, MaxAttempts: 2}))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // the backoff would be an hour
		defer cancel()
		require.NoError(t, s.Write(ctx, stats(0, 100)))
		require.Equal(t, 100, n.count(t, prefix+"-*"))
		bulks := 0
		for _, l := range got() {
			if strings.HasPrefix(l, "POST /_bulk") {
				bulks++
			}
		}
		require.Positive(t, bulks, "the unavailable node got bulk requests")
		require.Equal(t, int64(bulks), s.Stats().RequestRetries, "each sent again once")
		require.NoError(t, s.Close(t.Context()))
	})
	t.Run("every node unavailable", func(t *testing.T) {
		u1, got1 := unavailableNode(t)
		u2, got2 := unavailableNode(t)
		_, err := writeTwice(t, time.Minute, u1, u2)
		require.ErrorContains(t, err, "giving up after 2 attempts")
		require.ErrorContains(t, err, "503")
		require.Len(t, append(got1(), got2()...), 4, "2 attempts, each to both addresses")
	})
}

// TestSinkPassesOverDownNode, on the real node and a closed port (a node that is down: the
// connection is refused): a bulk request that port refuses goes at once to the next address,
// as one answered 503 does, without the retry policy's backoff. Before, it waited a backoff
// (100 ms to 10 s) before its retry went to the other node; with a backoff of an hour here,
// the Write waited until its ctx ended. opensearch-go shuffles the addresses, so each try
// takes a fresh client, with the closed port first and last in Config, until the port got a
// bulk request. Where every address refuses, each attempt tries each address once, then
// waits as before.
func TestSinkPassesOverDownNode(t *testing.T) {
	n := newNode(t)
	t.Run("one node down", func(t *testing.T) {
		for try := 0; ; try++ {
			require.Less(t, try, 20, "the closed port never got a bulk request")
			prefix := n.newPrefix(t)
			down := closedPort(t)
			var (
				mu    sync.Mutex
				fails []error
			)
			s, err := opensearch.NewSink(n.clientWith(t, down, try%2 == 0, time.Minute), statsMapping(prefix),
				opensearch.WithConcurrency(1), opensearch.WithFlushBytes(1000),
				opensearch.WithRetry(stream.RetryPolicy{Initial: time.Hour, Max: time.Hour, MaxAttempts: 2}),
				opensearch.WithBulkHook(func(r opensearch.BulkResult) {
					if r.Err != nil {
						mu.Lock()
						fails = append(fails, r.Err)
						mu.Unlock()
					}
				}))
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // the backoff would be an hour
			require.NoError(t, s.Write(ctx, stats(0, 100)), "no backoff waited")
			cancel()
			require.Equal(t, 100, n.count(t, prefix+"-*"))
			require.NoError(t, s.Close(t.Context()))
			if len(fails) > 0 {
				for _, err := range fails {
					require.ErrorIs(t, err, syscall.ECONNREFUSED)
					require.ErrorContains(t, err, down+"/_bulk", "names the node")
				}
				require.Equal(t, int64(len(fails)), s.Stats().RequestRetries, "each sent again once")
				return
			}
		}
	})
	t.Run("every node down", func(t *testing.T) {
		s, err := writeTwice(t, time.Minute, closedPort(t), closedPort(t))
		require.ErrorContains(t, err, "giving up after 2 attempts")
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
		require.Equal(t, int64(4), s.Stats().Requests, "2 attempts, each to both addresses")
	})
}

// closedPort returns the URL of a loopback port that nothing listens on: a node that is
// down refuses the connection.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}

// writeTwice writes 10 documents with a sink of a new client of addrs (request timeout
// timeout) that makes at most 2 attempts, 1 ms apart, and returns the sink and the error.
func writeTwice(t *testing.T, timeout time.Duration, addrs ...string) (*opensearch.Sink[cabStats], error) {
	t.Helper()
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: addrs, RequestTimeout: timeout})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	s, err := opensearch.NewSink(c, statsMapping("cab-stats-x"),
		opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 2}))
	require.NoError(t, err)
	return s, s.Write(t.Context(), stats(0, 10))
}
