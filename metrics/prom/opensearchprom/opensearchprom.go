package opensearchprom

import (
	"time"

	"github.com/fleetstream/fleetstream/metrics/prom"
	"github.com/fleetstream/fleetstream/opensearch"
)

// SinkStats returns the stats function of prom.Metrics.AddSink for an OpenSearch sink's
// stats: pass the sink's Stats method. It is called at every scrape and calls stats once.
func SinkStats(stats func() opensearch.Stats) func() prom.SinkStats {
	return func() prom.SinkStats {
		st := stats()
		return prom.SinkStats{
			Indexed: st.Indexed, Updated: st.Updated, Existed: st.Existed, DeadLettered: st.DeadLettered,
			Failed: st.Failed, Retried: st.Retried, RequestRetries: st.RequestRetries, Blocked: st.Blocked,
			Split: st.Split, Requests: st.Requests, Bytes: st.Bytes, InFlightBytes: st.InFlightBytes,
			Latency: prom.Latency{
				Bounds:  opensearch.LatencyBounds[:],
				Buckets: st.Latency.Buckets[:],
				Sum:     st.Latency.Mean * time.Duration(st.Latency.Count),
			},
			System:       "OpenSearch",
			FailingSince: st.FailingSince, FailedAttempts: st.FailedAttempts, LastError: st.LastError, LastAttempt: st.LastAttempt,
			SlowSince: st.SlowSince,
		}
	}
}
