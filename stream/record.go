// The element types: Position in a partitioned source, Record from a source, Elem inside a
// batch, Pair and KV for keyed streams, and Joined for joins.

package stream

import "time"

// Position is a place in a partitioned source: for Kafka, a topic-partition (mapped by the
// source to a dense partition id) and an offset. In a commit, Offset is the next offset to
// read, as in Kafka.
type Position struct {
	Partition int32
	Offset    int64
	// Meta is the pipeline's replay checkpoint for the partition: Source.Commit receives it
	// with each position, the source stores it with the offset (Kafka commit metadata), and
	// hands it back with Input.Resume when the partition is assigned again. Sources treat it
	// as opaque.
	Meta string
	// Ended is set on the positions of a partition whose input ended by itself
	// (Input.End) once the batch that ended it, which fired its windows and wrote their
	// results, was acknowledged: a source may record that the partition is done.
	Ended bool
}

// Record is what a Source hands to the pipeline: a value with its position and event time.
type Record[T any] struct {
	Value     T
	Partition int32
	Offset    int64
	// EventTime is the time the event happened. The zero time means "use the batch time"
	// (processing time).
	EventTime time.Time
	// Size is the record's size in bytes on the wire, used for the buffer's byte bound.
	Size int
}

// Elem is one element of a stream inside a batch: a value with its event time and the oldest
// source offset it depends on. Operators keep these through the graph so that retained state
// can hold back commits (see "Delivery" in the package documentation).
type Elem[T any] struct {
	Value T
	// Time is the event time in Unix nanoseconds.
	Time int64
	// Offset is the oldest offset, in the element's source partition, that the element was
	// derived from.
	Offset int64
}

// EventTime returns e.Time as a time.Time in UTC.
func (e Elem[T]) EventTime() time.Time { return time.Unix(0, e.Time).UTC() }

// Pair is a keyed value, the element type of keyed streams.
type Pair[K comparable, V any] struct {
	Key   K
	Value V
}

// KV builds a Pair.
func KV[K comparable, V any](k K, v V) Pair[K, V] { return Pair[K, V]{Key: k, Value: v} }

// Joined is the value of a joined pair. Matched is false only in a LeftJoin for a left value
// that found no right value in the batch; Right is then the zero value.
type Joined[V, W any] struct {
	Left    V
	Right   W
	Matched bool
}
