// Handler: /metrics, /healthz and /readyz.

package prom

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler returns an http.Handler serving
//
//   - /metrics: the gatherer's metrics in the Prometheus formats (promhttp), when New found
//     a gatherer (see WithGatherer); otherwise 404;
//   - /healthz: 200 while batches keep being acknowledged, that is while the last batch's
//     stats (or, before the first batch, New) are no older than WithStaleAfter; else 503;
//   - /readyz: 503 until the first batch was acknowledged and whenever /healthz fails; else 200.
//
// Bodies are one line of plain text that says why. Nothing is served until the caller mounts
// the handler on a server of its own (net/http, on a loopback address by preference).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	if m.cfg.gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(m.cfg.gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		ok, _, msg := m.health()
		reply(w, ok, msg)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		_, ready, msg := m.health()
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
