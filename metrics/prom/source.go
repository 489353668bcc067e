// AddSource: the sources' live stats, read at scrape time, so that the partitions' lags move
// while no batch is acknowledged (an output outage).

package prom

import (
	"errors"
	"slices"
	"time"

	"github.com/fleetstream/fleetstream/stream"
)

// AddSource makes the per-partition figures of a source live: at every scrape and status
// request, stats is called and its Lag, Read and End replace, for the partitions it reports,
// those of the last acknowledged batch. Without it they are the last batch's, and during an
// output outage, when no batch is acknowledged, source_read_lag_records and
// source_commit_lag_records stood still (at 0 for a pipeline that kept up) while the backlog
// grew. Pass each source of the pipeline whose lag an alert watches (a kafka.Source's or
// kafka.Exchange's Stats); partitions of a source not added keep the last batch's figures.
// Its FailingSince and LastError feed source_failing, /readyz and the banner too when they
// are newer than the last batch's (an outage that began since, or the same one's latest
// error): a Kafka outage during an output outage, when no batch reports it. A live source
// that reports no failure does not clear the last batch's.
// stats is called from the scraping goroutine, so it must be safe for concurrent use and
// fast (kafka.Source.Stats takes a mutex and sends no request).
func (m *Metrics) AddSource(stats func() stream.SourceStats) error {
	if stats == nil {
		return errors.New("prom: AddSource: nil stats func")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sources = append(m.sources, stats)
	return nil
}

// sourceVals are the sources' per-partition figures a partition table is made of, by
// partition name: commit lag, read offset and high-water mark (end).
type sourceVals struct{ lag, read, end map[string]int64 }

// liveSources reads the stats of the sources added with AddSource, merged by partition name;
// nil when none was added. It must be called without m.mu.
func (m *Metrics) liveSources() []stream.SourceStats {
	m.mu.Lock()
	fns := slices.Clone(m.sources)
	m.mu.Unlock()
	if len(fns) == 0 {
		return nil
	}
	out := make([]stream.SourceStats, len(fns))
	for i, f := range fns {
		out[i] = f()
	}
	return out
}

// sourceVals returns the last batch's figures with, for every partition a live source
// reports, the live ones; m.mu is held. Without live sources it returns the last batch's
// maps themselves (nothing is copied).
func (m *Metrics) sourceVals(live []stream.SourceStats) sourceVals {
	v := sourceVals{lag: m.lagVals, read: m.readVals, end: m.endVals}
	if len(live) == 0 {
		return v
	}
	v = sourceVals{lag: clone(v.lag), read: clone(v.read), end: clone(v.end)}
	for _, st := range live {
		for n, x := range st.Lag {
			v.lag[labelValue(n)] = x
		}
		for n, x := range st.Read {
			v.read[labelValue(n)] = x
		}
		for n, x := range st.End {
			v.end[labelValue(n)] = x
		}
	}
	return v
}

func clone(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// sourceOutage returns the sources' outage: the last batch's (since, err), or, when a live
// source reports one that began no earlier, that one (the earliest of those): an outage that
// began after the last batch, which no batch reports while the outputs fail too (a Kafka and
// an OpenSearch outage together), or the same one with its latest error. A live source that
// reports none does not clear the batch's: the batch merges every source of the pipeline,
// and those not added with AddSource are not read live.
func sourceOutage(since time.Time, err string, live []stream.SourceStats) (time.Time, string) {
	var newest time.Time
	newestErr := ""
	for _, st := range live {
		if st.FailingSince.IsZero() || st.FailingSince.Before(since) {
			continue
		}
		if newest.IsZero() || st.FailingSince.Before(newest) {
			newest, newestErr = st.FailingSince, st.LastError
		}
	}
	if newest.IsZero() {
		return since, err
	}
	return newest, newestErr
}
