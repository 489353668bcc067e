package opensearch_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

const (
	wrongPortHint = "the address closed the connection without an HTTP answer: is it OpenSearch's HTTP port (9200 by default)"
	nodeGoneHint  = "the node closed the connection without answering"
)

// closeAtOnce closes a connection without reading or writing anything, as a port that does
// not speak HTTP may (a Kafka broker reads "POST" as a request size it refuses, and closes).
func closeAtOnce(c net.Conn) { _ = c.Close() }

// answerOnceThenClose answers the first connection's bulk request of one document as
// OpenSearch does, then closes every later connection at once: a node that went away.
func answerOnceThenClose() func(net.Conn) {
	var n atomic.Int64
	return func(c net.Conn) {
		defer func() { _ = c.Close() }()
		if n.Add(1) > 1 {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		body := `{"errors":false,"items":[{"index":{"status":201,"result":"created"}}]}`
		_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
}

// closingSink returns a sink of addr whose retries are quick and few, and its logs.
func closingSink(t *testing.T, addr string) (*opensearch.Sink[rec], *logRecords) {
	t.Helper()
	logs := &logRecords{}
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{addr}, Logger: slog.New(logs)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	s, err := opensearch.NewSink(c, recMapping,
		opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: 2 * time.Millisecond, MaxAttempts: 3}))
	require.NoError(t, err)
	return s, logs
}

// requireClosedSaysWhy checks the error of a Write to addr whose connections were closed
// without an answer: it names the URL, says what it means (hint, and not the other hint),
// in the error, the retry log and LastError, and stays retryable.
func requireClosedSaysWhy(t *testing.T, s *opensearch.Sink[rec], logs *logRecords, addr string, err error, hint, notHint string) {
	t.Helper()
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, hint)
	require.NotContains(t, msg, notHint)
	require.Contains(t, msg, addr+"/_bulk", "names the URL")
	require.False(t, stream.IsPermanent(err), "an outage behind a proxy looks the same: retried, %v", err)
	require.NotErrorIs(t, err, opensearch.ErrNotOpenSearch)
	retries := logs.messages(retryWarn)
	require.Len(t, retries, 3)
	for _, r := range retries {
		require.Contains(t, r["err"].String(), hint)
	}
	require.Contains(t, s.Stats().LastError, hint)
}

// A port that closes the connection without an HTTP answer (another service's: Kafka's) is
// no longer reported as a bare "EOF", retried without a word of why: the error, the retry
// log and LastError say that the address closed it and ask whether it is OpenSearch's HTTP
// port. Where the node has answered before, the same close says the node went away instead.
// Both stay retryable.
func TestClosedConnectionSaysWhy(t *testing.T) {
	t.Run("never answered", func(t *testing.T) {
		addr := "http://" + listenTCP(t, closeAtOnce)
		s, logs := closingSink(t, addr)
		err := s.Write(t.Context(), recs(10))
		requireClosedSaysWhy(t, s, logs, addr, err, wrongPortHint, nodeGoneHint)
	})
	t.Run("answered before", func(t *testing.T) {
		addr := "http://" + listenTCP(t, answerOnceThenClose())
		s, logs := closingSink(t, addr)
		require.NoError(t, s.Write(t.Context(), recs(1)))
		err := s.Write(t.Context(), recs(1))
		requireClosedSaysWhy(t, s, logs, addr, err, nodeGoneHint, wrongPortHint)
	})
}

// The operator's case on a real Kafka broker: -opensearch http://<Kafka's port>.
func TestKafkaPortSaysWhy(t *testing.T) {
	addr := "http://" + testenv.KafkaBrokers(t)[0]
	s, logs := closingSink(t, addr)
	err := s.Write(t.Context(), recs(10))
	requireClosedSaysWhy(t, s, logs, addr, err, wrongPortHint, nodeGoneHint)
}
