// RepartitionStats and AddRepartition: what each repartition wrote to its topic, read at
// scrape time.

package prom

import (
	"fmt"
	"maps"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// RepartitionStats is what a repartition's exchange sent since it was created, as
// cumulative counts (kafka.Exchange: Sent and SentMessages).
type RepartitionStats struct {
	// Records counts the records the broker acknowledged (values and watermark marks),
	// Messages the Kafka messages they were packed into, Bytes their bytes before
	// compression.
	Records, Messages, Bytes int64
}

// AddRepartition exports the stats of one repartition under the label
// repartition=<name> (the fleet job passes its topic). stats is called at every scrape,
// from the scraping goroutine, so it must be safe for concurrent use and fast; the values
// must be cumulative. A name added twice is an error wrapping ErrDuplicateSink.
func (m *Metrics) AddRepartition(name string, stats func() RepartitionStats) error {
	if stats == nil {
		return fmt.Errorf("prom: AddRepartition(%q): nil stats func", name)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: AddRepartition(%q): the name is a label value, which must be valid UTF-8", ErrInvalidOption, name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.repartitions[name]; ok {
		return fmt.Errorf("%w: repartition %q", ErrDuplicateSink, name)
	}
	m.repartitions[name] = stats
	return nil
}

type repartitionDescs struct{ records, messages, bytes *prometheus.Desc }

func newRepartitionDescs(cl prometheus.Labels) repartitionDescs {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, []string{"repartition"}, cl)
	}
	return repartitionDescs{
		records:  d("repartition_sent_records_total", "Records a repartition wrote to its topic (values and watermark marks), acknowledged by the broker."),
		messages: d("repartition_sent_messages_total", "Kafka messages those records were packed into."),
		bytes:    d("repartition_sent_bytes_total", "Bytes of those messages' values, before compression."),
	}
}

// collectRepartitions sends every repartition's counters.
func (m *Metrics) collectRepartitions(d repartitionDescs, ch chan<- prometheus.Metric) {
	m.mu.Lock()
	reps := maps.Clone(m.repartitions)
	m.mu.Unlock()
	for name, stats := range reps {
		s := stats()
		for _, c := range [...]struct {
			desc *prometheus.Desc
			v    int64
		}{{d.records, s.Records}, {d.messages, s.Messages}, {d.bytes, s.Bytes}} {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.v), name)
		}
	}
}
