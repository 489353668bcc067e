// The stream-table join: Enrich joins each record with a table's value as of the record's
// event time (Flink's event-time temporal join, Kafka Streams' KStream-GlobalKTable join).

package join

import (
	"errors"
	"reflect"
	"time"

	"github.com/fleetstream/fleetstream/stream"
)

// Table is what Enrich joins a stream with: a table that answers as of an event time, such
// as a kafka.Table. Lookup returns the value of key valid at time at, false if none. It is
// called on the pipeline's goroutine; a table that changes while the pipeline runs must be
// safe for concurrent use.
type Table[K comparable, V any] interface {
	Lookup(key K, at time.Time) (V, bool)
}

// coPartitioned is implemented by a table that may be co-partitioned (kafka.Table): Enrich
// refuses one that is.
type coPartitioned interface{ CoPartitioned() bool }

// nanoTable is the optional fast path of a Table (kafka.Table has it): Lookup with the time
// in Unix nanoseconds, as stream.Elem carries it.
type nanoTable[K comparable, V any] interface {
	LookupNano(key K, at int64) (V, bool)
}

// Enrich joins every record of s with table's value for key(record) as of the record's
// event time, and emits merge(record, value, found) with the record's event time and offset.
// By default every record is emitted, found false and value the zero value when the table
// has no value for the key at that time (a left join); with WithKind(Inner) only the records
// that found one are, merge always gets true, and the others are counted in the operator's
// stats (stream.OperatorState.Unmatched). WithName names the operator (default "enrich").
//
// Enrich keeps no state: each record's output depends only on the record and the table's
// answer, so it adds no repartition (the table is whole in every instance) and holds no
// commit back. A nil stream, table, key or merge function, a co-partitioned table (one whose
// CoPartitioned method says so: use EnrichCoPartitioned), or a bad option, returns an error
// wrapping ErrInvalidOption. See "Stream-table join" in the package documentation for what
// a replay gives.
func Enrich[K comparable, T, V, R any](s *stream.Stream[T], table Table[K, V], key func(T) K, merge func(T, V, bool) R, opts ...Option) (*stream.Stream[R], error) {
	cfg, name, err := enrichArgs(opts, s == nil, isNil(table), key == nil, merge == nil)
	if err != nil {
		return nil, err
	}
	if cp, ok := table.(coPartitioned); ok && cp.CoPartitioned() {
		// Nothing would load its partitions: every lookup would miss, without a word.
		return nil, invalid("a co-partitioned table holds only the partitions loaded for the stream's own: join it with EnrichCoPartitioned")
	}
	op := &enrich[K, T, V, R]{key: key, merge: merge, inner: cfg.kindSet && cfg.kind == Inner}
	if nt, ok := table.(nanoTable[K, V]); ok {
		op.lookup = nt.LookupNano
	} else {
		op.lookup = func(k K, at int64) (V, bool) { return table.Lookup(k, time.Unix(0, at).UTC()) }
	}
	return stream.Apply(s, name, stream.Operator[T, R](op)), nil
}

// enrichArgs checks the arguments of Enrich and EnrichCoPartitioned (which are missing,
// and the options) and returns the options and the operator's name.
func enrichArgs(opts []Option, noStream, noTable, noKey, noMerge bool) (config, string, error) {
	cfg := newConfig(opts)
	errs := cfg.errs
	for _, c := range []struct {
		missing bool
		what    string
	}{{noStream, "nil stream"}, {noTable, "nil table"}, {noKey, "nil key function"}, {noMerge, "nil merge function"}} {
		if c.missing {
			errs = append(errs, invalid("%s", c.what))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, "", err
	}
	if !cfg.named {
		cfg.name = "enrich"
	}
	return cfg, cfg.name, nil
}

// isNil reports whether t is nil or a nil pointer in an interface (a *kafka.Table never
// built), which would only fail at the first record.
func isNil(t any) bool {
	if t == nil {
		return true
	}
	v := reflect.ValueOf(t)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// enrich is Enrich's operator. It holds nothing.
type enrich[K comparable, T, V, R any] struct {
	key       func(T) K
	merge     func(T, V, bool) R
	lookup    func(K, int64) (V, bool)
	inner     bool
	unmatched int64 // records dropped by an inner join (ReportState)
}

func (e *enrich[K, T, V, R]) Process(_ *stream.PartitionContext, in []stream.Elem[T], out []stream.Elem[R]) []stream.Elem[R] {
	return e.emit(in, out, e.lookup)
}

// emit appends the rows of in, looked up with lookup, to out, and counts the records an
// inner join dropped (once per call: the loop stays as it was).
func (e *enrich[K, T, V, R]) emit(in []stream.Elem[T], out []stream.Elem[R], lookup func(K, int64) (V, bool)) []stream.Elem[R] {
	n := len(out)
	for i := range in {
		r := &in[i]
		v, ok := lookup(e.key(r.Value), r.Time)
		if !ok && e.inner {
			continue
		}
		out = append(out, stream.Elem[R]{Value: e.merge(r.Value, v, ok), Time: r.Time, Offset: r.Offset})
	}
	e.unmatched += int64(len(in) - (len(out) - n))
	return out
}

// ReportState reports the records an inner join dropped (stream.OperatorState.Unmatched);
// the operator holds nothing.
func (e *enrich[K, T, V, R]) ReportState(st *stream.OperatorState) { st.Unmatched = e.unmatched }

func (e *enrich[K, T, V, R]) Retained(int32) (int64, bool) { return 0, false }
func (e *enrich[K, T, V, R]) Drop(int32)                   {}
func (e *enrich[K, T, V, R]) StateSize() int               { return 0 }
