// The fleet job's operator endpoints: Prometheus metrics, /healthz, /readyz and the live
// status page (metrics/prom) on the -http address, fed by the pipeline's stats hook, the
// OpenSearch sinks' stats and the run loop's retry log records.

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetstream/fleetstream/metrics/prom"
	"github.com/fleetstream/fleetstream/opensearch"
)

// serveMetrics listens on addr and serves m's endpoints until ctx ends. It fails at once when
// the address cannot be listened on: an operator who asked for metrics must not go without.
func serveMetrics(ctx context.Context, addr string, m *prom.Metrics, log *slog.Logger) (stop func(), err error) {
	if tap, ok := log.Handler().(*retryTap); ok {
		tap.state.observe.Store(m)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-http %s: %w", addr, err)
	}
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("fleetpipeline: metrics server", "err", err)
		}
	}()
	base := "http://" + ln.Addr().String()
	log.Info("fleetpipeline: status page, metrics and health", "status", base+"/", "metrics", base+"/metrics",
		"healthz", base+"/healthz", "readyz", base+"/readyz")
	return func() {
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}, nil
}

// newMetrics returns the pipeline's metrics on a registry of their own.
func newMetrics(name string) (*prom.Metrics, error) {
	return prom.New(prometheus.NewRegistry(), name)
}

// sinkStats adapts an OpenSearch sink's stats to the metrics adapter's.
func sinkStats[T any](s *opensearch.Sink[T]) func() prom.SinkStats {
	return func() prom.SinkStats {
		st := s.Stats()
		out := prom.SinkStats{
			System:       "OpenSearch",
			FailingSince: st.FailingSince, FailedAttempts: st.FailedAttempts, LastError: st.LastError, LastAttempt: st.LastAttempt,
			Indexed: st.Indexed, Updated: st.Updated, Existed: st.Existed, DeadLettered: st.DeadLettered,
			Failed: st.Failed, Retried: st.Retried, RequestRetries: st.RequestRetries, Blocked: st.Blocked,
			Split: st.Split, Requests: st.Requests, Bytes: st.Bytes,
		}
		out.Latency.Bounds = opensearch.LatencyBounds[:]
		out.Latency.Buckets = st.Latency.Buckets[:]
		out.Latency.Sum = st.Latency.Mean * time.Duration(st.Latency.Count)
		return out
	}
}

// retryMessage is the message of the run loop's log record for a batch whose outputs failed
// and are retried (stream.Pipeline.Run), with the attributes batch, attempt and err.
const retryMessage = "stream: batch outputs failed, retrying"

// retryTap is the job's log handler: it passes every record on, and hands the run loop's
// retry records to the metrics (prom.Metrics.ObserveRetry), so that the status page and
// /readyz show an output retry in progress ("batch 38 retrying, attempt 12") while no batch
// is acknowledged. The core has no retry hook yet; this reads the one place it reports a retry.
type retryTap struct {
	slog.Handler
	state *tapState
}

type tapState struct {
	observe atomic.Pointer[prom.Metrics] // set once the metrics serve
}

func newRetryTap(h slog.Handler) *retryTap { return &retryTap{Handler: h, state: &tapState{}} }

func (t *retryTap) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == retryMessage {
		if m := t.state.observe.Load(); m != nil {
			var batch, attempt int64
			var err error
			r.Attrs(func(a slog.Attr) bool {
				v := a.Value.Resolve()
				switch a.Key {
				case "batch":
					batch = attrInt(v)
				case "attempt":
					attempt = attrInt(v)
				case "err":
					if e, ok := v.Any().(error); ok {
						err = e
					} else {
						err = errors.New(v.String())
					}
				}
				return true
			})
			m.ObserveRetry(batch, int(attempt), err)
		}
	}
	return t.Handler.Handle(ctx, r)
}

func attrInt(v slog.Value) int64 {
	switch v.Kind() {
	case slog.KindInt64:
		return v.Int64()
	case slog.KindUint64:
		return int64(v.Uint64())
	}
	return 0
}

func (t *retryTap) WithAttrs(as []slog.Attr) slog.Handler {
	return &retryTap{Handler: t.Handler.WithAttrs(as), state: t.state}
}

func (t *retryTap) WithGroup(name string) slog.Handler {
	return &retryTap{Handler: t.Handler.WithGroup(name), state: t.state}
}
