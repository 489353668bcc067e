package opensearch_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
)

// securityForbidden is the OpenSearch security plugin's answer to a user without the
// permission to write.
const securityForbidden = `{"error":{"root_cause":[{"type":"security_exception","reason":"no permissions for [indices:data/write/bulk] and User [name=fleet, backend_roles=[]]"}],"type":"security_exception","reason":"no permissions for [indices:data/write/bulk] and User [name=fleet, backend_roles=[]]"},"status":403}`

// TestHTTPErrorsNameTheURL: every error the package returns for an HTTP answer says which
// URL answered (credentials masked), the status and the start of the body: a bulk request
// refused with 401 or 403 (permanent), one that kept failing with 503 until the policy gave
// up (retryable), and a PUT of an index template answered with 401, 503, or OpenSearch's 400
// refusing the template. Before, they said "bulk" or "put index template <name>" and
// nothing of the address.
func TestHTTPErrorsNameTheURL(t *testing.T) {
	refused := `{"error":{"root_cause":[{"type":"illegal_argument_exception","reason":"failed to parse value [abc] for setting [index.refresh_interval]"}],"type":"illegal_argument_exception","reason":"failed to parse value [abc] for setting [index.refresh_interval]"},"status":400}`
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		templates bool // EnsureTemplates, else a bulk Write
		permanent bool // for a Write
		says      []string
	}{
		{name: "bulk 401", status: 401, body: "Unauthorized", permanent: true, says: []string{"status 401", `"Unauthorized"`, "credentials"}},
		{name: "bulk 403", status: 403, body: securityForbidden, permanent: true, says: []string{"status 403", "no permissions for [indices:data/write/bulk]"}},
		{name: "bulk 503 until the policy gives up", status: 503, body: "<html>no healthy upstream</html>", says: []string{"status 503", "no healthy upstream"}},
		{name: "template 401", status: 401, body: "Unauthorized", templates: true, says: []string{"status 401", `"Unauthorized"`}},
		{name: "template 503", status: 503, body: "<html>no healthy upstream</html>", templates: true, says: []string{"status 503", "no healthy upstream"}},
		{name: "template refused (400)", status: 400, body: refused, templates: true, says: []string{"status 400", "failed to parse value [abc]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := serve(t, page(tc.status, "application/json; charset=UTF-8", tc.body), false)
			c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{withCredentials(base)}})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			var url string
			if tc.templates {
				url = base + "/_index_template/" + opensearch.TemplateCabStats
				err = c.EnsureTemplates(t.Context())
			} else {
				url = base + "/_bulk"
				var s *opensearch.Sink[rec]
				s, err = opensearch.NewSink(c, recMapping,
					opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 2}))
				require.NoError(t, err)
				err = s.Write(t.Context(), recs(3))
				require.Equal(t, tc.permanent, stream.IsPermanent(err), "permanent: %v", err)
				require.Contains(t, s.Stats().LastError, url, "the status page says where")
			}
			require.Error(t, err)
			var he *opensearch.HTTPError
			require.ErrorAs(t, err, &he)
			require.Equal(t, tc.status, he.Status)
			require.Equal(t, url, he.URL)
			msg := err.Error()
			require.Contains(t, msg, url, "names the URL")
			for _, s := range tc.says {
				require.Contains(t, msg, s)
			}
			require.NotContains(t, msg, addrSecret)
		})
	}
}

// TestTemplateWrongAddress: EnsureTemplates against an address that answers, but not as
// OpenSearch (another service's 404 or 405, its 200 page, a path prefix OpenSearch has no
// handler for), fails with an error wrapping ErrNotOpenSearch that names the URL and quotes
// what answered. Before, the 404 and 405 said only "put index template <name>: status 404",
// and a 200 page counted as the template installed: EnsureTemplates returned nil.
func TestTemplateWrongAddress(t *testing.T) {
	for _, tc := range []struct {
		name, says string
		url        func(t *testing.T) (addr, put string)
	}{
		{name: "another service's 404 page", says: `status 404, content-type "text/html", body starting "<html><body><h1>Not Found`,
			url: func(t *testing.T) (string, string) {
				a := serve(t, page(404, "text/html", "<html><body><h1>Not Found</h1></body></html>"), false)
				return a, a + "/_index_template/" + opensearch.TemplateCabStats
			}},
		{name: "a read-only service's 405", says: `status 405`,
			url: func(t *testing.T) (string, string) {
				a := serve(t, page(405, "text/plain", "Method Not Allowed\n"), false)
				return a, a + "/_index_template/" + opensearch.TemplateCabStats
			}},
		{name: "a plain web server's 501 (python3 -m http.server)", says: `status 501, content-type "text/html;charset=utf-8"`,
			url: func(t *testing.T) (string, string) {
				a := serve(t, page(501, "text/html;charset=utf-8", pythonServer501), false)
				return a, a + "/_index_template/" + opensearch.TemplateCabStats
			}},
		{name: "an app's 200 page", says: `status 200, content-type "text/html", body starting "<!doctype html>`,
			url: func(t *testing.T) (string, string) {
				a := serve(t, page(200, "text/html", "<!doctype html><html><title>Fleet dashboard</title></html>"), false)
				return a, a + "/_index_template/" + opensearch.TemplateCabStats
			}},
		{name: "another service's JSON (200)", says: `body starting "{\"status\":\"ok\"`,
			url: func(t *testing.T) (string, string) {
				a := serve(t, page(200, "application/json", `{"status":"ok"}`), false)
				return a, a + "/_index_template/" + opensearch.TemplateCabStats
			}},
		{name: "a path prefix OpenSearch has no handler for", says: `no handler found for uri`,
			url: func(t *testing.T) (string, string) {
				a := serve(t, page(400, "application/json; charset=UTF-8", `{"error":"no handler found for uri [/search/v1/_index_template/x] and method [PUT]"}`), false) + "/search/v1"
				return a, a + "/_index_template/" + opensearch.TemplateCabStats
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, put := tc.url(t)
			c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{withCredentials(addr)}})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			err = c.EnsureTemplates(t.Context())
			require.ErrorIs(t, err, opensearch.ErrNotOpenSearch)
			require.Contains(t, err.Error(), put)
			require.Contains(t, err.Error(), tc.says)
			require.NotContains(t, err.Error(), addrSecret)
		})
	}
}

// TestTransportErrorsNameTheURL: a request that got no answer names the URL it went to,
// credentials masked, for the sink and for EnsureTemplates.
func TestTransportErrorsNameTheURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close()) // connection refused from now on
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{withCredentials(base)}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })

	err = c.EnsureTemplates(t.Context())
	var te *opensearch.TransportError
	require.ErrorAs(t, err, &te)
	require.Contains(t, err.Error(), base+"/_index_template/"+opensearch.TemplateCabStats)
	require.Contains(t, err.Error(), "connection refused")
	require.NotContains(t, err.Error(), addrSecret)
	require.Equal(t, 1, strings.Count(err.Error(), base), "the URL once: %v", err)

	s, err := opensearch.NewSink(c, recMapping,
		opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 2}))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err = s.Write(ctx, recs(3))
	require.ErrorAs(t, err, &te)
	require.Contains(t, err.Error(), base+"/_bulk")
	require.NotContains(t, err.Error(), addrSecret)
}

// TestTemplateErrorsRealNode: against the real node, a template it refuses (a refresh
// interval it cannot parse) fails EnsureTemplates with an *HTTPError naming the URL, the
// status and OpenSearch's reason; a path prefix it has no handler for wraps ErrNotOpenSearch.
// Before, the first said "put index template <name>: status 400" without the URL, and the
// second the same with status 400, not ErrNotOpenSearch.
func TestTemplateErrorsRealNode(t *testing.T) {
	n := newNode(t)
	err := n.client.EnsureTemplates(t.Context(), opensearch.WithRefreshInterval("abc"))
	var he *opensearch.HTTPError
	require.ErrorAs(t, err, &he)
	require.Equal(t, 400, he.Status)
	require.Equal(t, n.url+"/_index_template/"+opensearch.TemplateCabStats, he.URL)
	require.ErrorContains(t, err, he.URL)
	require.ErrorContains(t, err, "failed to parse setting [index.refresh_interval] with value [abc]")

	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{n.url + "/search/v1"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	err = c.EnsureTemplates(t.Context(), opensearch.WithReplicas(0))
	require.ErrorIs(t, err, opensearch.ErrNotOpenSearch)
	require.ErrorContains(t, err, n.url+"/search/v1/_index_template/"+opensearch.TemplateCabStats)
}

// TestItemForbiddenIsPermanent: a bulk response whose items are refused with 401 or 403
// (security_exception: the user or role may not write that index) is a configuration
// error, not a bad document: Write fails with a permanent *HTTPError naming the URL, the
// index and OpenSearch's reason, and nothing is dead-lettered, so that the batch is written
// again once the permission is given. A write block (403 cluster_block_exception) stays
// temporary. Before, every such document was dead-lettered as rejected and Write returned
// nil: the pipeline acknowledged batches that reached no index.
func TestItemForbiddenIsPermanent(t *testing.T) {
	for _, status := range []int{401, 403} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			f := newFake()
			f.itemBody = func(id string, _ int) (int, string) {
				if id == "r00002" || id == "r00004" {
					return status, `{"type":"security_exception","reason":"no permissions for [indices:data/write/bulk[s]] and User [name=fleet, backend_roles=[]]"}`
				}
				return 0, ""
			}
			dl := &collector{}
			s, srv := fakeSink(t, f, opensearch.WithDeadLetter(dl))
			err := s.Write(t.Context(), recs(6))
			require.Error(t, err)
			require.True(t, stream.IsPermanent(err), "permanent: %v", err)
			var he *opensearch.HTTPError
			require.ErrorAs(t, err, &he)
			require.Equal(t, status, he.Status)
			require.Equal(t, srv.URL+"/_bulk", he.URL)
			for _, want := range []string{srv.URL + "/_bulk", `index "recs"`, "2 document(s)", "security_exception", "no permissions for [indices:data/write/bulk[s]]"} {
				require.ErrorContains(t, err, want)
			}
			require.Empty(t, dl.letters(), "nothing dead-lettered")
			st := s.Stats()
			require.Zero(t, st.DeadLettered)
			require.Equal(t, int64(1), st.Requests, "not retried")
			require.Equal(t, int64(4), st.Indexed, "the others were written")
		})
	}
}

// TestRedirectSaysWhere: a proxy that redirects (http:// to https://, an old host name to
// a new one) is not followed, as opensearch-go does not follow redirects: Write fails with a
// permanent *HTTPError, and EnsureTemplates with one, that names where the redirect leads,
// credentials masked. Before, the error gave the status and the proxy's page, not the
// target.
func TestRedirectSaysWhere(t *testing.T) {
	for _, status := range []int{301, 308} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Location", "https://"+addrUser+":"+addrSecret+"@search.example:9200"+r.URL.Path)
				w.WriteHeader(status)
				_, _ = io.WriteString(w, "<html><title>Moved</title></html>")
			}), false)
			c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{withCredentials(srv)}})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			s, err := opensearch.NewSink(c, recMapping)
			require.NoError(t, err)
			err = s.Write(t.Context(), recs(2))
			require.True(t, stream.IsPermanent(err), "permanent: %v", err)
			require.ErrorContains(t, err, srv+"/_bulk")
			require.ErrorContains(t, err, "redirected to https://***@search.example:9200/_bulk")
			require.NotContains(t, err.Error(), addrSecret)

			err = c.EnsureTemplates(t.Context())
			require.ErrorContains(t, err, "redirected to https://***@search.example:9200/_index_template/")
			require.NotContains(t, err.Error(), addrSecret)
		})
	}
}

// TestTemplateNotAcknowledgedInTime guards the line between an acknowledgement and an
// answer that is not one: OpenSearch's 200 with "acknowledged":false (the template is in the
// cluster state, some node did not confirm it within the timeout) is no error, and is logged
// at Warn with the URL. (It returned nil before too, without the line.)
func TestTemplateNotAcknowledgedInTime(t *testing.T) {
	base := serve(t, page(200, "application/json; charset=UTF-8", `{"acknowledged":false}`), false)
	logs := &logRecords{}
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{base}, Logger: slog.New(logs)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.EnsureTemplates(t.Context()))
	var warned int
	for _, r := range logs.recs {
		if r.Level == slog.LevelWarn && strings.Contains(r.Message, "not every node confirmed") {
			warned++
		}
	}
	require.Equal(t, 5, warned, "one line per template")
}
