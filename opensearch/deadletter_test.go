package opensearch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
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

// TestJSONLinesTimestampOutOfRange: a dead letter whose record timestamp lies past the year
// 9999 (a producer that writes microseconds where Kafka wants milliseconds puts its records
// in the year 56000 or so, and brokers before Kafka 4 take them) is written like any other,
// its timestamp in RFC 3339's form with all the year's digits, and the letters beside it
// too. encoding/json's time.Time refuses such a year, so the whole Write once failed, and
// failed again on every retry of the batch: one bad record stopped the pipeline for good.
func TestJSONLinesTimestampOutOfRange(t *testing.T) {
	far := time.UnixMilli(time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC).UnixMicro()) // µs read as ms
	normal := time.Date(2026, 12, 6, 1, 2, 3, 456_000_000, time.FixedZone("x", 3600))
	var out bytes.Buffer
	require.NoError(t, opensearch.NewJSONLines(&out).Write(t.Context(), []stream.DeadLetter{
		{Reason: stream.ReasonDecode, Err: "e", Topic: "t", Offset: 7, Value: []byte(`{"a":1}`), Timestamp: far},
		{Reason: stream.ReasonDecode, Err: "e", Topic: "t", Offset: 8, Value: []byte(`{"a":2}`), Timestamp: normal},
	}))
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	require.Len(t, lines, 2)
	var got []string
	for _, line := range lines {
		var l struct {
			Timestamp string          `json:"timestamp"`
			Value     json.RawMessage `json:"value"`
		}
		require.NoError(t, json.Unmarshal(line, &l), "%s", line)
		got = append(got, l.Timestamp)
	}
	require.Greater(t, far.Year(), 9999)
	require.Equal(t, far.UTC().Format(time.RFC3339Nano), got[0])
	require.True(t, strings.HasPrefix(got[0], strconv.Itoa(far.UTC().Year())+"-"), got[0])
	want, err := normal.UTC().MarshalJSON()
	require.NoError(t, err)
	require.Equal(t, strings.Trim(string(want), `"`), got[1], "a timestamp in range is written as before")
	require.Equal(t, "2026-12-06T00:02:03.456Z", got[1])
}

// cutWriter takes the first cut bytes of its first write, fails it, and takes every write
// after it whole: a disk that fills up in the middle of a write and has room again for the
// retry.
type cutWriter struct {
	bytes.Buffer
	cut    int
	failed bool
}

func (w *cutWriter) Write(p []byte) (int, error) {
	if !w.failed {
		w.failed = true
		n, _ := w.Buffer.Write(p[:min(w.cut, len(p))])
		return n, errors.New("no space left on device")
	}
	return w.Buffer.Write(p)
}

// TestJSONLinesWriteAgainAfterCut: a Write that fails after part of its bytes reached the
// writer, and is retried (the sink fails its Write, the pipeline writes the batch again),
// leaves every dead letter readable as a line of its own. The part written first was not
// ended, so the retry's first line was glued to it: a reader saw one line that is not JSON
// instead of the first letter, which the failed Write had cut short too, so it was lost.
func TestJSONLinesWriteAgainAfterCut(t *testing.T) {
	letters := []stream.DeadLetter{
		{Reason: stream.ReasonRejected, Err: "a", Offset: -1, Index: "i", ID: "1", Value: []byte(`{"n":1}`)},
		{Reason: stream.ReasonRejected, Err: "b", Offset: -1, Index: "i", ID: "2", Value: []byte(`{"n":2}`)},
	}
	w := &cutWriter{cut: 20} // inside the first line
	jl := opensearch.NewJSONLines(w)
	require.Error(t, jl.Write(t.Context(), letters))
	require.NoError(t, jl.Write(t.Context(), letters), "the retry")
	require.Equal(t, []string{"1", "2"}, letterIDs(w.Bytes()), "every letter of the retry on a line of its own:\n%s", w.Bytes())
}

// TestJSONLinesFileAfterTornTail: a dead-letter file whose last line was cut short (a crash
// or power loss during a write the sink never acknowledged: the batch is written again after
// the restart) gets that line ended before the first new one, so the letters written again
// are lines of their own. OpenJSONLinesFile appended right after the cut bytes, and the
// first letter after the restart could not be read.
func TestJSONLinesFileAfterTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(`{"time":"2026-12-06T00:00:00Z","reason":"rejected"}`+"\n"+`{"time":"2026-12-06T00:`), 0o644))
	f, err := opensearch.OpenJSONLinesFile(path)
	require.NoError(t, err)
	require.NoError(t, f.Write(t.Context(), []stream.DeadLetter{{Reason: stream.ReasonRejected, Err: "a", Offset: -1, Index: "i", ID: "1", Value: []byte(`{"n":1}`)}}))
	require.NoError(t, f.Close())

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, []string{"1"}, letterIDs(b), "the new letter on a line of its own:\n%s", b)

	// A file that ends its last line, or is empty, gets no empty line.
	for _, start := range []string{"", `{"reason":"rejected"}` + "\n"} {
		require.NoError(t, os.WriteFile(path, []byte(start), 0o644))
		f, err := opensearch.OpenJSONLinesFile(path)
		require.NoError(t, err)
		require.NoError(t, f.Write(t.Context(), []stream.DeadLetter{{Reason: stream.ReasonRejected, Offset: -1, ID: "2"}}))
		require.NoError(t, f.Close())
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		require.True(t, bytes.HasPrefix(b, []byte(start+`{"time"`)), "%q", b)
	}
}

// letterIDs returns the ids of the lines of b that are JSON objects with an id.
func letterIDs(b []byte) []string {
	var ids []string
	for line := range bytes.Lines(b) {
		var l struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(line, &l) == nil && l.ID != "" {
			ids = append(ids, l.ID)
		}
	}
	return ids
}

// stuckWriter's first write waits for release (a FIFO or pipe that nobody reads), then
// takes half of its bytes and fails; the writes after it are taken whole.
type stuckWriter struct {
	release chan struct{}
	mu      sync.Mutex
	calls   int
	out     bytes.Buffer
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.calls++
	first := w.calls == 1
	w.mu.Unlock()
	if first {
		<-w.release
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if first {
		n, _ := w.out.Write(p[:len(p)/2])
		return n, errors.New("broken pipe")
	}
	return w.out.Write(p)
}

func (w *stuckWriter) state() (int, []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls, bytes.Clone(w.out.Bytes())
}

// TestJSONLinesWriteHonoursCtx: a Write whose write blocks (a FIFO or pipe without a
// reader) returns ctx's error when ctx ends, and so does a Write that waits for it; the
// blocked write, once it ends cut short, leaves its line for the next Write to end, whose
// letters are lines of their own. Write held its lock through the write and ignored ctx,
// so a pipeline's shutdown hung on its dead-letter output.
func TestJSONLinesWriteHonoursCtx(t *testing.T) {
	letter := func(id string) []stream.DeadLetter {
		return []stream.DeadLetter{{Reason: stream.ReasonRejected, Err: "e", Offset: -1, Index: "i", ID: id, Value: []byte(`{"n":1}`)}}
	}
	synctest.Test(t, func(t *testing.T) {
		w := &stuckWriter{release: make(chan struct{})}
		jl := opensearch.NewJSONLines(w)
		// write starts a Write, lets it run as far as it goes, cancels its ctx and checks
		// that it returns the ctx's error.
		write := func(id, while string) {
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- jl.Write(ctx, letter(id)) }()
			synctest.Wait()
			calls, _ := w.state()
			require.Equal(t, 1, calls, "no write beside the stuck one")
			cancel()
			synctest.Wait()
			select {
			case err := <-done:
				require.ErrorIs(t, err, context.Canceled)
			default:
				close(w.release)
				<-done
				t.Fatalf("Write went on after its ctx ended, %s", while)
			}
		}
		write("1", "while its write was stuck")
		write("2", "while it waited for a stuck write")

		close(w.release) // the stuck write ends, half of its line written
		synctest.Wait()
		require.NoError(t, jl.Write(t.Context(), letter("3")))
		calls, out := w.state()
		require.Equal(t, 2, calls)
		require.Equal(t, []string{"3"}, letterIDs(out), "the letter on a line of its own:\n%s", out)
		require.True(t, bytes.HasSuffix(out, []byte("\n")))
	})
}
