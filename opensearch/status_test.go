package opensearch_test

import (
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
)

// TestNeverTransientStatus: 501 Not Implemented and 505 HTTP Version Not Supported are a
// server's answer to any such request, never an outage. Every 5xx was taken for one, so a URL
// that is not OpenSearch and answers 501 (python3 -m http.server to POST) was retried for ever.
// A bulk request answered 505 now fails Write permanently with the *HTTPError (a 501 wraps
// ErrNotOpenSearch: TestWrongAddressIsPermanent); an item answered 501 is dead-lettered, not
// sent again; and a template's request answered 501 or 505 is not passed on to the client's
// next address as a 503 is.
func TestNeverTransientStatus(t *testing.T) {
	for _, tc := range []struct {
		status    int
		temporary bool
	}{{500, true}, {501, false}, {502, true}, {503, true}, {504, true}, {505, false}, {507, true}, {408, true}, {429, true}, {400, false}} {
		e := &opensearch.HTTPError{Status: tc.status}
		require.Equal(t, tc.temporary, e.Temporary(), "status %d", tc.status)
	}

	t.Run("bulk 505", func(t *testing.T) {
		f := &scriptNode{whole: func(int, int) (int, string) { return 505, "HTTP Version Not Supported" }}
		dl := &collector{}
		s := scriptSink(t, f, itemMapping, opensearch.WithDeadLetter(dl))
		err := s.Write(t.Context(), []itemDoc{{"a", "x", 1}, {"a", "y", 2}})
		require.Error(t, err)
		require.True(t, stream.IsPermanent(err), "permanent: %v", err)
		var he *opensearch.HTTPError
		require.ErrorAs(t, err, &he)
		require.Equal(t, 505, he.Status)
		require.NotErrorIs(t, err, opensearch.ErrNotOpenSearch, "an HTTP server may be OpenSearch behind a proxy that refuses the version")
		require.Equal(t, 1, f.reqs, "not retried")
		require.Empty(t, dl.letters())
	})

	t.Run("item 501", func(t *testing.T) {
		f := &scriptNode{stored: map[string]string{}}
		f.item = func(_ int, _, _, id string) string {
			if id == "y" {
				return `{"status":501,"error":{"type":"unsupported_operation_exception","reason":"not implemented"}}`
			}
			return ""
		}
		dl := &collector{}
		s := scriptSink(t, f, itemMapping, opensearch.WithDeadLetter(dl))
		require.NoError(t, s.Write(t.Context(), []itemDoc{{"a", "x", 1}, {"a", "y", 2}}))
		require.Equal(t, 1, f.reqs, "the 501 item is not sent again")
		require.Equal(t, []string{"a/x"}, f.keys())
		require.Len(t, dl.letters(), 1)
		require.Equal(t, "y", dl.letters()[0].ID)
		require.Equal(t, 501, dl.letters()[0].Status)
	})

	for _, tc := range []struct {
		status int
		each   int // attempts of each request, to two addresses that answer alike
		notOS  bool
	}{{501, 1, true}, {505, 1, false}, {503, 2, false}} {
		t.Run("templates "+http.StatusText(tc.status), func(t *testing.T) {
			var mu sync.Mutex
			seen := map[string]int{}
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen[r.Method+" "+r.URL.Path]++
				mu.Unlock()
				page(tc.status, "text/html;charset=utf-8", pythonServer501).ServeHTTP(w, r)
			})
			c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{serve(t, h, false), serve(t, h, false)}})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			err = c.EnsureTemplates(t.Context())
			require.Error(t, err)
			require.Equal(t, tc.notOS, errors.Is(err, opensearch.ErrNotOpenSearch), "ErrNotOpenSearch: %v", err)
			var he *opensearch.HTTPError
			require.Equal(t, !tc.notOS, errors.As(err, &he), "an *HTTPError: %v", err)
			mu.Lock()
			defer mu.Unlock()
			require.NotEmpty(t, seen)
			for req, n := range seen {
				require.Equal(t, tc.each, n, "%s: %v", req, err)
			}
		})
	}
}
