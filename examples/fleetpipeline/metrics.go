// The fleet job's operator endpoints: Prometheus metrics, /healthz, /readyz and the live
// status page (metrics/prom) on the -http address, fed by the pipeline's stats hook, the
// OpenSearch sinks' stats (metrics/prom/opensearchprom) and the run loop's retry log records.

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fleetstream/fleetstream/metrics/prom"
	"github.com/fleetstream/fleetstream/metrics/prom/opensearchprom"
	"github.com/fleetstream/fleetstream/stream"
)

// serveMetrics listens on addr and serves m's endpoints until ctx ends. It fails at once when
// the address cannot be listened on: an operator who asked for metrics must not go without.
func serveMetrics(ctx context.Context, addr string, m *prom.Metrics, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-http %s: %w", addr, err)
	}
	srv := metricsServer(m.Handler())
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

// metricsServer is the -http server. Every phase of a connection has its bound: a client that
// stops reading a response or leaves a keep-alive connection idle would otherwise hold its
// connection and goroutine for ever (only the request's headers had a timeout).
func metricsServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
}

// newMetrics returns the pipeline's metrics on a registry of their own, beside the process's
// and the Go runtime's (memory, CPU, goroutines, GC: what the default registry has, and
// what an operator watches the job's bounded memory with); names gives the partitions' names
// ("topic/3"), once the sources exist.
func newMetrics(name string, names *partitionNames) (*prom.Metrics, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	return prom.New(reg, name, prom.WithPartitionName(names.name))
}

// partitionNames names the pipeline's partitions by Kafka topic and partition: the input
// topic's (source 0) and the repartition topics' (the further sources, in the order the
// graph created them).
type partitionNames struct {
	input  atomic.Pointer[func(int32) (string, int32)]
	mu     sync.Mutex
	topics []string // the topics of the further sources (inputs and repartitions), by source index - 1
}

// repartition notes the topic of the next source the graph creates: a repartition, or a
// further input.
func (n *partitionNames) repartition(topic string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.topics = append(n.topics, topic)
}

func (n *partitionNames) name(id int32) string {
	si, local := stream.PartitionSource(id)
	if si == 0 {
		if f := n.input.Load(); f != nil {
			topic, p := (*f)(local)
			return topic + "/" + strconv.Itoa(int(p))
		}
	} else {
		n.mu.Lock()
		defer n.mu.Unlock()
		if si-1 < len(n.topics) {
			return n.topics[si-1] + "/" + strconv.Itoa(int(local))
		}
	}
	return "source " + strconv.Itoa(si) + " partition " + strconv.Itoa(int(local))
}

// retryHook hands each failed attempt of a batch's outputs to m (none if m is nil), so that
// the status page and /readyz show an output retry in progress ("batch 38 retrying, attempt
// 12") while no batch is acknowledged.
func retryHook(m *prom.Metrics) stream.Option {
	return stream.WithRetryHook(func(ri stream.RetryInfo) {
		if m != nil {
			m.ObserveRetry(ri.Batch, ri.Attempt, ri.Err)
		}
	})
}

// register gives m the job's sinks, repartitions and sources: the sinks' and repartitions'
// stats, and the sources' live stats (a repartition's exchange reads its topic as a source
// too), read at every scrape, so that the lag gauges grow with the backlog while an outage
// holds every batch (no batch is acknowledged, no BatchStats comes).
func register(m *prom.Metrics, sinks []namedSink, exchanges []sender, inputs []namedSource) error {
	var sources []func() stream.SourceStats
	for _, in := range inputs {
		sources = append(sources, in.stats)
	}
	for _, sk := range sinks {
		if err := m.AddSink(sk.name, opensearchprom.SinkStats(sk.stats)); err != nil {
			return err
		}
	}
	for _, e := range exchanges {
		if err := m.AddRepartition(e.Topic(), func() prom.RepartitionStats {
			recs, bytes := e.Sent()
			return prom.RepartitionStats{Records: recs, Messages: e.SentMessages(), Bytes: bytes}
		}); err != nil {
			return err
		}
		if s, ok := e.(interface{ Stats() stream.SourceStats }); ok {
			sources = append(sources, s.Stats)
		}
	}
	for _, stats := range sources {
		if err := m.AddSource(stats); err != nil {
			return err
		}
	}
	return nil
}
