// The bound of the job's start on OpenSearch (-opensearch-timeout): OpenSearch is a listener
// that accepts connections and never answers.

package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestStartBoundedOnSilentOpenSearch: a node that accepts the connection and never answers
// held the job's start (the index templates) for 120 s, two request timeouts, and the error
// named the URL but no flag, in the HTTP client's words ("PUT ...: context deadline
// exceeded"). The start now fails after -opensearch-timeout, naming the step, the URL and the
// flags, and the job exits 1.
func TestStartBoundedOnSilentOpenSearch(t *testing.T) {
	s := needServices(t)
	node, _ := testenv.SilentListener(t)
	topic := testenv.UniqueName(t, "silent-os")
	ensureTopic(t, s, topic) // an input that does not exist fails the start before OpenSearch
	args := []string{"-brokers", s.brokers, "-opensearch", "http://" + node, "-http=", "-topic", topic, "-group", topic, "-opensearch-timeout", "300ms"}
	want := "index templates: no answer from OpenSearch at http://" + node + " (-opensearch) within 300ms (-opensearch-timeout): check that the URL"
	start := time.Now()
	err := run(t.Context(), testConfig(t, args...), io.Discard)
	require.ErrorContains(t, err, want)
	require.Less(t, time.Since(start), time.Minute, "bounded by -opensearch-timeout, not by the requests' timeout")

	out, err := exec.Command(pipelineBin, args...).CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "got:\n%s", out)
	require.Equal(t, 1, ee.ExitCode(), "got:\n%s", out)
	require.Contains(t, string(out), "fleetpipeline: "+want)
}

// silentClient is a client of a node that never answers; accepted receives its connections.
func silentClient(t *testing.T, timeout time.Duration) (cl *opensearch.Client, urls []string, accepted <-chan net.Conn) {
	node, accepted := testenv.SilentListener(t)
	urls = []string{"http://user:secret@" + node}
	cl, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: urls, RequestTimeout: timeout})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cl.Close() })
	return cl, urls, accepted
}

// TestTemplatesBoundedOnSilentOpenSearch: the bound and its error, offline; the URL's
// password stays out of it. A request's own timeout no longer ends the wait (it did, in the
// same words, with an -opensearch-timeout longer than two of them): the node is tried again
// until the bound, and the error says how many attempts there were and the last one's error.
func TestTemplatesBoundedOnSilentOpenSearch(t *testing.T) {
	cl, urls, _ := silentClient(t, 0)
	c := testConfig(t, "-opensearch-timeout", "200ms")
	err := c.ensureTemplates(t.Context(), cl, urls, nil)
	require.ErrorContains(t, err, "index templates: no answer from OpenSearch at http://***@"+urls[0][len("http://user:secret@"):]+" (-opensearch) within 200ms (-opensearch-timeout)")
	require.NotContains(t, err.Error(), "secret")

	cl, urls, accepted := silentClient(t, 100*time.Millisecond)
	c = testConfig(t, "-opensearch-timeout", "1s")
	err = c.ensureTemplates(t.Context(), cl, urls, nil)
	require.ErrorContains(t, err, "index templates: gave up after 1s (-opensearch-timeout) and ")
	require.ErrorContains(t, err, " attempts waiting for OpenSearch at http://***@", "two attempts or more")
	require.ErrorContains(t, err, "(-opensearch); the last: ")
	require.NotContains(t, err.Error(), "secret")
	require.GreaterOrEqual(t, len(accepted), 2, "the node was tried again after a request's timeout")
}

// TestTemplatesStopAtOnce: a stop (Ctrl-C) while the start waits on a silent node ends the
// wait at once, with the stop's error (run makes it a clean stop), not after the bound.
func TestTemplatesStopAtOnce(t *testing.T) {
	cl, urls, accepted := silentClient(t, 0)
	c := testConfig(t) // -opensearch-timeout's default, minutes
	ctx, cancel := context.WithCancel(t.Context())
	var stopped time.Time
	go func() { <-accepted; stopped = time.Now(); cancel() }()
	err := c.ensureTemplates(ctx, cl, urls, nil)
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, time.Since(stopped), 10*time.Second, "ended at the stop, not after -opensearch-timeout")
}

// TestTemplatesErrorNamesAnAnsweringNode: of two addresses, one silent and one answering 503
// (a node cut off from its cluster), the start's error is not "no answer from OpenSearch"
// but names both and the 503 (it said "no answer" once the opensearch package named every
// address, its error then wrapping the silent node's timeout too). A 503 may pass: the
// start tries again until -opensearch-timeout, and its error then quotes the last attempt's.
func TestTemplatesErrorNamesAnAnsweringNode(t *testing.T) {
	silent, _ := testenv.SilentListener(t)
	var answered atomic.Int64
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		answered.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(unavailable.Close)
	urls := []string{"http://" + silent, unavailable.URL}
	cl, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: urls, RequestTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cl.Close() })
	c := testConfig(t, "-opensearch-timeout", "1s")
	err = c.ensureTemplates(t.Context(), cl, urls, nil)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "no answer from OpenSearch")
	require.ErrorContains(t, err, "index templates: gave up after 1s (-opensearch-timeout)")
	require.ErrorContains(t, err, "503")
	require.ErrorContains(t, err, silent)
	require.ErrorContains(t, err, unavailable.URL[len("http://"):])
	require.Greater(t, answered.Load(), int64(1), "the 503 was tried again")
}
