// Handler: /metrics, /healthz and /readyz.

package prom

import (
	"embed"
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed static
var static embed.FS

// Handler returns an http.Handler serving
//
//   - /: the live status page, one HTML file with its script and styles inline (no external
//     assets: it works air-gapped), which polls /status.json every second;
//   - /status.json: the Status document;
//   - /metrics: the gatherer's metrics in the Prometheus formats (promhttp), when New found
//     a gatherer (see WithGatherer); otherwise 404;
//   - /healthz: 200 while the run loop turns: the last batch's stats are no older than
//     WithStaleAfter (before the first batch, New no older than WithStartTimeout), or an
//     output retry was reported (ObserveRetry) or a sink attempted a request within it;
//     else 503;
//   - /readyz: 503 until the first batch was acknowledged, whenever /healthz fails, while the
//     pipeline holds no partition (none assigned to this instance), while a source cannot
//     reach its system (stream.SourceStats.FailingSince: Kafka unreachable), while a sink is
//     failing or a batch's outputs are retried (an outage), while a sink's request waits
//     for an answer past its slow threshold (SinkStats.SlowSince: a hung node), and while the event-time lag is
//     above WithMaxEventTimeLag (a long catch-up); else 200.
//
// Bodies are one line of plain text that says why. Nothing is served until the caller mounts
// the handler on a server of its own (net/http, on a loopback address by preference).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	if m.cfg.gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(m.cfg.gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, r, static, "static/index.html")
	})
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(m.Status())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		ok, msg, _, _ := m.health()
		reply(w, ok, msg)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		_, _, ready, msg := m.health()
		reply(w, ready, msg)
	})
	return mux
}

func reply(w http.ResponseWriter, ok bool, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write([]byte(msg + "\n"))
}
