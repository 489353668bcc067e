// The fleet job's /metrics, offline: what newMetrics registers.

package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// TestMetricsHaveProcessAndRuntime: the job's /metrics served its pipeline's metrics only,
// on a registry of its own without the process and Go runtime collectors that the default
// registry has, so its resident memory, CPU, goroutines and GC (the memory the design keeps
// bounded) could not be watched or alerted on from Prometheus.
func TestMetricsHaveProcessAndRuntime(t *testing.T) {
	m, err := newMetrics("fleet", &partitionNames{})
	require.NoError(t, err)
	m.Observe(stream.BatchStats{Batch: 1})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	require.NoError(t, err)
	for _, name := range []string{"fleetstream_batches_total", "process_resident_memory_bytes", "process_cpu_seconds_total",
		"go_goroutines", "go_memstats_heap_inuse_bytes", "go_gc_duration_seconds"} {
		require.Contains(t, families, name)
	}
}

// pipeListener is a net.Listener of in-memory connections (net.Pipe), whose deadlines run on
// a synctest bubble's clock.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9464} }

func (l *pipeListener) dial() net.Conn {
	client, server := net.Pipe()
	l.conns <- server
	return client
}

// TestMetricsServerTimeouts: the -http server bounded the request's headers only (5 s), so
// a keep-alive connection left idle, or a client that sent a request and never read the
// answer, kept its connection and goroutine for ever. Both are now closed by the server.
func TestMetricsServerTimeouts(t *testing.T) {
	m, err := newMetrics("fleet", &partitionNames{})
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		read bool // the client reads the answer
	}{{"idle after a request", true}, {"answer never read", false}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := metricsServer(m.Handler())
				ln := newPipeListener()
				go func() { _ = srv.Serve(ln) }()
				defer srv.Close()
				c := ln.dial()
				defer c.Close()
				_, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: fleet\r\n\r\n")
				require.NoError(t, err)
				br := bufio.NewReader(c)
				if tc.read {
					resp, err := http.ReadResponse(br, nil)
					require.NoError(t, err)
					_, err = io.Copy(io.Discard, resp.Body)
					require.NoError(t, err)
					require.NoError(t, resp.Body.Close())
				} else {
					time.Sleep(time.Hour) // the bubble's clock: the client does not read for an hour
				}
				// The server closed its end: reading gets EOF, or, when it closed before the
				// deadline is set, net.Pipe refuses the deadline.
				err = c.SetReadDeadline(time.Now().Add(time.Hour))
				if err == nil {
					_, err = br.ReadByte()
				}
				require.True(t, errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe),
					"the server should have closed the connection; got %v", err)
			})
		})
	}
}

// TestLatenciesBounded: the summary's latency sample keeps the last maxLatencies batches'
// and no more, however long the job runs, and counts every batch.
func TestLatenciesBounded(t *testing.T) {
	var l latencies
	const n = 3*maxLatencies + 5
	for i := range n {
		l.add(time.Duration(i))
	}
	if l.total != n {
		t.Fatalf("total %d, want %d", l.total, n)
	}
	if len(l.last) != maxLatencies || cap(l.last) > 2*maxLatencies {
		t.Fatalf("holds %d (capacity %d), want the last %d", len(l.last), cap(l.last), maxLatencies)
	}
	got := slices.Clone(l.last)
	slices.Sort(got)
	for i, d := range got {
		if want := time.Duration(n - maxLatencies + i); d != want {
			t.Fatalf("sample[%d] = %v, want %v: not the last batches'", i, d, want)
		}
	}
}
