package opensearch

// DisableIDBound makes s send document ids as they are, however long, so that a test can
// show what OpenSearch does with an id over 512 bytes (it refuses the whole bulk request).
func DisableIDBound[T any](s *Sink[T]) { s.noIDBound = true }

// BulkResponseCap is the cap of the body of a bulk response to a request of items documents
// in bytes bytes.
var BulkResponseCap = bulkResponseCap
