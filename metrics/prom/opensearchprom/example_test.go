package opensearchprom_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetstream/fleetstream/metrics/prom"
	"github.com/fleetstream/fleetstream/metrics/prom/opensearchprom"
	"github.com/fleetstream/fleetstream/opensearch"
)

type cabStats struct {
	CabID  string `json:"cab_id"`
	Events int64  `json:"events"`
}

// Export an OpenSearch sink's documents, requests, latency and failures with the pipeline's
// metrics. Neither the client nor the sink contacts the cluster before the first write.
func Example() {
	ctx := context.Background()
	client, err := opensearch.NewClient(ctx, opensearch.Config{Addresses: []string{"http://127.0.0.1:9200"}})
	if err != nil {
		panic(err)
	}
	defer client.Close()
	sink, err := opensearch.NewSink(client, opensearch.Mapping[cabStats]{
		Index: opensearch.FixedIndex[cabStats]("cab-stats"),
		ID:    func(s cabStats) string { return s.CabID },
	})
	if err != nil {
		panic(err)
	}
	defer sink.Close(ctx)

	m, err := prom.New(prometheus.NewRegistry(), "example")
	if err != nil {
		panic(err)
	}
	if err := m.AddSink("cab-stats", opensearchprom.SinkStats(sink.Stats)); err != nil {
		panic(err)
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if strings.Contains(line, `result="created"`) || strings.HasPrefix(line, "fleetstream_sink_requests_total") ||
			strings.HasPrefix(line, "fleetstream_sink_request_duration_seconds_count") {
			fmt.Print(line)
		}
	}
	// Output:
	// fleetstream_sink_documents_total{pipeline="example",result="created",sink="cab-stats"} 0
	// fleetstream_sink_request_duration_seconds_count{pipeline="example",sink="cab-stats"} 0
	// fleetstream_sink_requests_total{pipeline="example",sink="cab-stats"} 0
}
