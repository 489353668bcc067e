package prom_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetstream/fleetstream/metrics/prom"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

func Example() {
	reg := prometheus.NewRegistry()
	m, err := prom.New(reg, "example")
	if err != nil {
		panic(err)
	}
	// An offline pipeline; a real one passes the same option to stream.New.
	h := streamtest.New(nil, time.Second, stream.WithStatsHook(m.Observe))
	q, src := streamtest.NewQueue[int](h)
	streamtest.Collect(src)
	q.AddValues(1, 2, 3)
	q.AddValues(4, 5)
	h.Run(2)

	// Mount the handler on a server of your own, e.g. http.ListenAndServe("127.0.0.1:9464", m.Handler()).
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "fleetstream_input_records_total") || strings.HasPrefix(line, "fleetstream_batches_total") {
			fmt.Print(line)
		}
	}
	// Output:
	// fleetstream_batches_total{pipeline="example"} 2
	// fleetstream_input_records_total{pipeline="example"} 5
}
