// Whether a running Source reaches its cluster: when it last found it unreachable, and why,
// for SourceStats (health checks and status pages).

package kafka

import (
	"sync"
	"time"
)

// reachability is when a Source started failing to reach its cluster (the zero time while it
// reaches it) and the last error. Safe for concurrent use.
type reachability struct {
	mu      sync.Mutex
	since   time.Time
	lastErr string
}

// failed notes a failed attempt: the outage starts now unless it already started.
func (r *reachability) failed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.since.IsZero() {
		r.since = time.Now()
	}
	if err != nil {
		r.lastErr = err.Error()
	}
}

// ok notes that the cluster answered: any outage is over.
func (r *reachability) ok() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.since, r.lastErr = time.Time{}, ""
}

// state returns since when the cluster is unreachable (zero: it is not) and the last error.
func (r *reachability) state() (time.Time, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.since, r.lastErr
}
