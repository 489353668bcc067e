package opensearch

import "time"

// DisableIDBound makes s send document ids as they are, however long, so that a test can
// show what OpenSearch does with an id over 512 bytes (it refuses the whole bulk request).
func DisableIDBound[T any](s *Sink[T]) { s.noIDBound = true }

// BulkResponseCap is the cap of the body of a bulk response to a request of items documents
// in bytes bytes.
var BulkResponseCap = bulkResponseCap

// SetAheadClock makes WithIndexAhead of s read the time from now.
func SetAheadClock[T any](s *Sink[T], now func() time.Time) { s.ahead.now = now }

// WaitAhead waits for the creations of WithIndexAhead that s started.
func WaitAhead[T any](s *Sink[T]) { s.ahead.wg.Wait() }

// CreateAhead creates index as WithIndexAhead of s does in the background, in the caller's
// goroutine, and reports whether there is nothing left to do for it.
func CreateAhead[T any](s *Sink[T], index string) bool { return s.ahead.create(index) }
