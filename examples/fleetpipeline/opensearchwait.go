// The job's wait on OpenSearch during its start (-opensearch-timeout): installing the index
// templates. A node that accepts connections and never answers (a hung node, a proxy or load
// balancer with nothing behind it) held the start for two request timeouts, 120 s, and the
// error named the URL but not the flag, in the HTTP client's words ("context deadline
// exceeded"). As the Kafka side does (kafkawait.go), the start fails after a bounded wait
// instead, naming the step, the URL and the flags.

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fleetstream/fleetstream/opensearch"
)

// errNoAnswerOpenSearch is the cause of a wait on OpenSearch that ran past -opensearch-timeout.
var errNoAnswerOpenSearch = errors.New("no answer from OpenSearch")

// ensureTemplates installs the index templates (opensearch.Client.EnsureTemplates), bounded by
// -opensearch-timeout. A stop (SIGINT, SIGTERM) ends it at once with ctx's error.
func (c *config) ensureTemplates(ctx context.Context, client *opensearch.Client, urls []string) error {
	bounded, cancel := context.WithTimeoutCause(ctx, c.osTimeout, errNoAnswerOpenSearch)
	defer cancel()
	start := time.Now()
	err := client.EnsureTemplates(bounded, opensearch.WithReplicas(c.replicas))
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("index templates: %w", err)
	case errors.Is(context.Cause(bounded), errNoAnswerOpenSearch):
		return c.noAnswerOpenSearch(urls, fmt.Sprintf("within %v (-opensearch-timeout)", c.osTimeout))
	case errors.Is(err, context.DeadlineExceeded) && !errors.As(err, new(*opensearch.HTTPError)):
		// A request's own timeout (opensearch.Config.RequestTimeout, a minute) before the
		// bound: an -opensearch-timeout longer than two of them. Not where another address
		// answered, with an error status: the error names each address and what it did.
		return c.noAnswerOpenSearch(urls, fmt.Sprintf("to a request within %v", time.Since(start).Round(time.Second)))
	}
	return fmt.Errorf("index templates: %w", err)
}

// noAnswerOpenSearch is the error of a start that OpenSearch at urls did not answer; URL
// credentials are left out.
func (c *config) noAnswerOpenSearch(urls []string, within string) error {
	return fmt.Errorf("index templates: no answer from OpenSearch at %s (-opensearch) %s: check that the URL is the HTTP address of an OpenSearch node "+
		"(port 9200, or 443 for Amazon OpenSearch Service; not the transport port 9300) and its scheme, http:// or https://, and that the node is up; "+
		"a slow cluster may need a longer -opensearch-timeout", opensearch.RedactURL(strings.Join(urls, ",")), within)
}
