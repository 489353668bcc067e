// The job's wait on OpenSearch during its start (-opensearch-timeout): installing the index
// templates. A node that accepts connections and never answers (a hung node, a proxy or load
// balancer with nothing behind it) held the start for two request timeouts, 120 s, and the
// error named the URL but not the flag, in the HTTP client's words ("context deadline
// exceeded"); a node that refused connections (stopped, restarting) failed the start at once.
// The start now waits for OpenSearch (startwait.go) up to the bound, naming the step, the URL
// and the flags when it gives up.

package main

import (
	"context"
	"log/slog"
	"strings"

	"github.com/fleetstream/fleetstream/opensearch"
)

// ensureTemplates installs the index templates (opensearch.Client.EnsureTemplates), trying
// again while OpenSearch is away (transientOpenSearch), for at most -opensearch-timeout. A
// stop (SIGINT, SIGTERM) ends it at once (startWait.wait).
func (c *config) ensureTemplates(ctx context.Context, client *opensearch.Client, urls []string, log *slog.Logger) error {
	return c.openSearchWait(urls, log).wait(ctx, "index templates", func(ctx context.Context) error {
		return client.EnsureTemplates(ctx, opensearch.WithReplicas(c.replicas))
	})
}

// openSearchWait is the start's wait on OpenSearch at urls, logging to log (nil: nowhere);
// URL credentials are left out of its messages.
func (c *config) openSearchWait(urls []string, log *slog.Logger) *startWait {
	return &startWait{
		service:   "OpenSearch",
		at:        opensearch.RedactURL(strings.Join(urls, ",")) + " (-opensearch)",
		flag:      "-opensearch-timeout",
		bound:     c.osTimeout,
		transient: transientOpenSearch,
		log:       orDiscard(log),
		hint: "check that the URL is the HTTP address of an OpenSearch node " +
			"(port 9200, or 443 for Amazon OpenSearch Service; not the transport port 9300) and its scheme, http:// or https://, and that the node is up; " +
			"a slow cluster may need a longer -opensearch-timeout",
	}
}
