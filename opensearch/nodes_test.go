package opensearch_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestNoNodeServedErrorNamesEveryNode: where no address serves a request, in every mix of
// what two nodes do (never answer, refuse the connection, answer 502, 503, 429 or 500), the
// error names each node and what it did, for a template request (EnsureTemplates) and for a
// bulk request (Write, after its attempts). Before, a template request whose last node
// answered with a status ended with that answer's error alone ("status 503", with a silent
// node first), and a Write that gave up named only its last attempt's node.
func TestNoNodeServedErrorNamesEveryNode(t *testing.T) {
	type node struct {
		url string
		did string // what the error says the node did
	}
	kinds := map[string]func(t *testing.T) node{
		"silent": func(t *testing.T) node {
			silent, _ := testenv.SilentListener(t)
			return node{"http://" + silent, "context deadline exceeded"}
		},
		"refused": func(t *testing.T) node { return node{closedPort(t), "connection refused"} },
		"503": func(t *testing.T) node {
			u, _ := unavailableNode(t)
			return node{u, "status 503 Service Unavailable"}
		},
		"502": func(t *testing.T) node {
			return node{serve(t, page(502, "text/html", "<html><title>502 Bad Gateway</title></html>"), false), "status 502 Bad Gateway"}
		},
		"429": func(t *testing.T) node {
			return node{serve(t, page(429, "application/json", `{"error":{"type":"es_rejected_execution_exception"},"status":429}`), false),
				"status 429 Too Many Requests"}
		},
		"500": func(t *testing.T) node {
			return node{serve(t, page(500, "application/json", `{"error":{"type":"exception"},"status":500}`), false),
				"status 500 Internal Server Error"}
		},
	}
	for _, mix := range [][2]string{
		{"silent", "503"}, {"refused", "503"}, {"silent", "refused"}, {"503", "502"},
		{"429", "silent"}, {"500", "refused"}, {"429", "500"},
	} {
		t.Run(mix[0]+" and "+mix[1], func(t *testing.T) {
			a, b := kinds[mix[0]](t), kinds[mix[1]](t)
			named := func(t *testing.T, err error, path string) {
				t.Helper()
				require.Error(t, err)
				for _, n := range []node{a, b} {
					require.Regexp(t, regexp.QuoteMeta(n.url+path)+`[^;]*`+regexp.QuoteMeta(n.did), err.Error(), "names the node and what it did")
				}
				switch {
				case mix[0] == "silent" || mix[1] == "silent":
					require.ErrorIs(t, err, context.DeadlineExceeded)
				case mix[0] == "refused" || mix[1] == "refused":
					require.ErrorIs(t, err, syscall.ECONNREFUSED)
				}
				var he *opensearch.HTTPError
				if errors.As(err, &he) {
					require.Contains(t, []string{mix[0], mix[1]}, fmt.Sprint(he.Status), "an answer's *HTTPError")
				}
			}
			t.Run("template request", func(t *testing.T) {
				c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{a.url, b.url}, RequestTimeout: 200 * time.Millisecond})
				require.NoError(t, err)
				t.Cleanup(func() { _ = c.Close() })
				named(t, c.EnsureTemplates(t.Context()), "/_index_template/fleetstream-")
			})
			t.Run("bulk request", func(t *testing.T) {
				_, err := writeTwice(t, 200*time.Millisecond, a.url, b.url)
				require.ErrorContains(t, err, "giving up after 2 attempts")
				named(t, err, "/_bulk")
			})
		})
	}
}
