// The co-partitioned stream-table join: EnrichCoPartitioned joins each record with the
// table partition of the record's stream partition (Kafka Streams' KStream-KTable join),
// loading a table partition before the first records of its stream partition and letting it
// go when the stream partition is revoked.

package join

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/fleetstream/fleetstream/internal/lograte"
	"github.com/fleetstream/fleetstream/internal/recent"
	"github.com/fleetstream/fleetstream/stream"
)

// PartitionedTable is what EnrichCoPartitioned joins a stream with: a table split into
// partitions like the stream (keyed and partitioned alike, with as many partitions), such
// as a kafka.Table made with kafka.WithCoPartitioned. LoadPartition blocks until a partition
// is loaded and is paired with one Release; LookupPartition answers in one partition as of
// an event time. Every method is called on the pipeline's goroutine; a table that changes
// while the pipeline runs must be safe for concurrent use.
type PartitionedTable[K comparable, V any] interface {
	LoadPartition(ctx context.Context, partition int32) error
	Release(partition int32)
	LookupPartition(partition int32, key K, at time.Time) (V, bool)
}

// nanoPartitionedTable is the optional fast path of a PartitionedTable (kafka.Table has it).
type nanoPartitionedTable[K comparable, V any] interface {
	LookupPartitionNano(partition int32, key K, at int64) (V, bool)
}

// DefaultLoadTimeout is how long EnrichCoPartitioned waits for a table partition to load
// unless WithLoadTimeout says otherwise.
const DefaultLoadTimeout = 10 * time.Minute

// WithLoadTimeout bounds how long EnrichCoPartitioned waits for a table partition to load
// (default DefaultLoadTimeout), on the pipeline's clock (stream.WithClock); see
// "Co-partitioned tables" in the package documentation for what happens then. Other joins
// ignore it.
func WithLoadTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, invalid("WithLoadTimeout(%v): must be positive", d))
			return
		}
		c.loadTimeout = d
	})
}

// WithTablePartition sets how EnrichCoPartitioned finds the table partition of a pipeline
// partition id (stream.PartitionContext.Partition). Default: the source's own partition id
// (stream.PartitionSource), which is the Kafka partition for a kafka.Source of one topic and
// for a kafka.Exchange (a repartition). A kafka.Source of several topics packs the topic
// into its ids: pass a function that uses its TopicPartition. Other joins ignore it.
func WithTablePartition(f func(part int32) int32) Option {
	return optionFunc(func(c *config) {
		if f == nil {
			c.errs = append(c.errs, invalid("WithTablePartition: nil function"))
			return
		}
		c.tablePart = f
	})
}

func sourcePartition(part int32) int32 {
	_, local := stream.PartitionSource(part)
	return local
}

// EnrichCoPartitioned is Enrich with a co-partitioned table: each record of s is joined with
// the table partition of its stream partition (WithTablePartition), so an instance holds
// only the table partitions of the stream partitions it owns. The first time the operator
// sees a stream partition (when it is assigned), it loads the table partition
// (PartitionedTable.LoadPartition) before it enriches any record of it: the pipeline waits,
// at most WithLoadTimeout. When the stream partition is revoked (stream.Operator.Drop), it
// releases the table partition. Options, output and kinds are Enrich's (WithName: default
// "enrich"). A nil stream, table, key or merge function, or a bad option, returns an error
// wrapping ErrInvalidOption. See "Co-partitioned tables" in the package documentation for
// the wait, its bound, failures and the co-partitioning rules.
func EnrichCoPartitioned[K comparable, T, V, R any](s *stream.Stream[T], table PartitionedTable[K, V], key func(T) K, merge func(T, V, bool) R, opts ...Option) (*stream.Stream[R], error) {
	cfg, name, err := enrichArgs(opts, s == nil, isNil(table), key == nil, merge == nil)
	if err != nil {
		return nil, err
	}
	op := &enrichCo[K, T, V, R]{
		enrich: enrich[K, T, V, R]{key: key, merge: merge, inner: cfg.kindSet && cfg.kind == Inner},
		table:  table, tablePart: cfg.tablePart, timeout: cfg.loadTimeout, clock: s.Pipeline().Clock(),
		log:    s.Pipeline().Logger().With("component", "join.EnrichCoPartitioned", "operator", name),
		parts:  make(map[int32]*coPart),
		errLog: lograte.New(10, 10*time.Second),
	}
	if op.tablePart == nil {
		op.tablePart = sourcePartition
	}
	if op.timeout == 0 {
		op.timeout = DefaultLoadTimeout
	}
	if nt, ok := table.(nanoPartitionedTable[K, V]); ok {
		op.lookupIn = nt.LookupPartitionNano
	} else {
		op.lookupIn = func(p int32, k K, at int64) (V, bool) { return table.LookupPartition(p, k, time.Unix(0, at).UTC()) }
	}
	return stream.Apply(s, name, stream.Operator[T, R](op)), nil
}

// coPart is what EnrichCoPartitioned knows of a stream partition.
type coPart struct {
	table  int32 // its table partition
	loaded bool  // LoadPartition returned nil: Release on Drop
	// stalled is set when the table partition could not be loaded and records of the
	// partition were withheld: from is the first of them, and commits stay before it.
	stalled bool
	from    int64
}

// enrichCo is EnrichCoPartitioned's operator. It holds no records.
type enrichCo[K comparable, T, V, R any] struct {
	enrich[K, T, V, R] // key, merge and inner; its lookup is unused
	lookupIn           func(int32, K, int64) (V, bool)
	table              PartitionedTable[K, V]
	tablePart          func(int32) int32
	timeout            time.Duration
	clock              stream.Clock // the pipeline's: the timeout and the logs' times
	log                *slog.Logger
	errLog             *lograte.Limiter
	parts              map[int32]*coPart
	// seen maps sampled keys to the table partition they were last looked up in
	// (checkSplit); splitN counts those looked up in another one since.
	seen        recent.Map[K, int32]
	splitN      int64
	splitWarned bool
}

func (e *enrichCo[K, T, V, R]) Process(pc *stream.PartitionContext, in []stream.Elem[T], out []stream.Elem[R]) []stream.Elem[R] {
	st := e.parts[pc.Partition]
	if st == nil {
		st = &coPart{table: e.tablePart(pc.Partition)}
		e.parts[pc.Partition] = st
	}
	if !st.loaded && !st.stalled {
		e.load(pc.Context(), pc.Partition, st)
	}
	if !st.loaded {
		if len(in) > 0 && !st.stalled {
			// Records may not pass unenriched, nor be enriched later out of order: hold the
			// partition's commits before them until it is replayed (a restart, or its next
			// owner after a rebalance).
			st.stalled, st.from = true, in[0].Offset
			for i := range in {
				st.from = min(st.from, in[i].Offset)
			}
			lvl := slog.LevelError
			if pc.Context().Err() != nil {
				lvl = slog.LevelInfo // the pipeline is stopping: the next run replays them
			}
			e.log.Log(context.Background(), lvl, "join: table partition not loaded: the stream partition stalls until it is replayed (restart, or rebalance)",
				"partition", pc.Partition, "table_partition", st.table, "held_from_offset", st.from)
		}
		return out
	}
	e.checkSplit(in, pc.Partition, st.table)
	return e.emit(in, out, func(key K, at int64) (V, bool) { return e.lookupIn(st.table, key, at) })
}

// splitEvery is how often EnrichCoPartitioned checks a record's key against the table
// partition it was last looked up in: one record in splitEvery, so that the check costs a few
// nanoseconds a record. A stream not keyed like the table has most of its keys in several
// partitions, so a sample finds it within its first batches.
const splitEvery = 4

// checkSplit counts (and warns once of) the sampled records of in whose key was last looked
// up in another table partition than table: the stream is not partitioned like the table,
// and those lookups find nothing or an older value (see "Co-partitioned tables").
func (e *enrichCo[K, T, V, R]) checkSplit(in []stream.Elem[T], part, table int32) {
	for i := 0; i < len(in); i += splitEvery {
		k := e.key(in[i].Value)
		other, ok := e.seen.Swap(k, table)
		if !ok || other == table {
			continue
		}
		e.splitN++
		if !e.splitWarned {
			e.splitWarned = true
			e.log.Warn("join: a key is looked up in several table partitions: the stream is not keyed and partitioned like the "+
				"table, so its records are enriched from table partitions that do not hold their key (nothing found, or an older "+
				"value); repartition the stream by the table's key into the table's partition count (stream.RepartitionBy with "+
				"kafka.KeyHash), or use Enrich with the whole table",
				"key", k, "partition", part, "table_partition", table, "other_table_partition", other)
		}
	}
}

// ReportState reports the split keys found (stream.OperatorState.SplitKeys), the records an
// inner join dropped (Unmatched) and the bytes of the check's memory of keys; the operator
// holds no records and no windows.
func (e *enrichCo[K, T, V, R]) ReportState(st *stream.OperatorState) {
	e.enrich.ReportState(st)
	st.Bytes = e.seen.Bytes()
	st.SplitKeys = e.splitN
}

// load loads part's table partition, waiting at most e.timeout on the pipeline's clock (so
// that a test's manual clock or synctest bubble bounds it), and no longer once stop ends (the
// pipeline is stopping).
func (e *enrichCo[K, T, V, R]) load(stop context.Context, part int32, st *coPart) {
	start := e.clock.Now()
	ctx, cancel := context.WithCancelCause(stop)
	timeout := e.clock.After(e.timeout) // before the goroutine: the timer starts now
	over := make(chan struct{})
	go func() {
		select {
		case <-timeout:
			cancel(context.DeadlineExceeded)
		case <-over:
		}
	}()
	err := e.table.LoadPartition(ctx, st.table)
	close(over)
	cancel(nil)
	if err != nil && stop.Err() != nil {
		e.log.Info("join: table partition load stopped: the pipeline is stopping", "partition", part, "table_partition", st.table)
		return
	}
	if err != nil {
		if context.Cause(ctx) == context.DeadlineExceeded {
			err = fmt.Errorf("join: table partition not loaded within WithLoadTimeout (%v): %w", e.timeout, err)
		}
		// Retried at the next batch unless records came (see Process): a partition the
		// table does not have would fail at every batch.
		if ok, left := e.errLog.Allow(e.clock.Now()); ok {
			e.log.Error("join: table partition load failed", "partition", part, "table_partition", st.table, "err", err,
				"not_logged_since_last", left)
		}
		return
	}
	st.loaded = true
	e.log.Info("join: table partition loaded", "partition", part, "table_partition", st.table, "took", e.clock.Now().Sub(start))
}

func (e *enrichCo[K, T, V, R]) Retained(part int32) (int64, bool) {
	if st := e.parts[part]; st != nil && st.stalled {
		return st.from, true
	}
	return 0, false
}

// Withheld: a stalled partition's records from st.from on were not emitted (stream.Withholder),
// so a stateful reader's replay must get them.
func (e *enrichCo[K, T, V, R]) Withheld(part int32) (int64, bool) { return e.Retained(part) }

func (e *enrichCo[K, T, V, R]) Drop(part int32) {
	st := e.parts[part]
	if st == nil {
		return
	}
	delete(e.parts, part)
	if st.loaded {
		e.table.Release(st.table)
	}
}

// StateSize counts the table partitions loaded (no record is held).
func (e *enrichCo[K, T, V, R]) StateSize() int {
	n := 0
	for _, st := range e.parts {
		if st.loaded {
			n++
		}
	}
	return n
}

var _ stream.StateReporter = (*enrichCo[string, int, int, int])(nil)
