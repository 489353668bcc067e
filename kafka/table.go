// Table: a versioned, fully replicated table of a compacted topic (Kafka Streams'
// GlobalKTable with a versioned store; the build side of Flink's temporal join), its options
// and stats, and lookups; reading the topic is in table_read.go, the co-partitioned form
// (KTable) in table_partitioned.go.

package kafka

import (
	"errors"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/fleetstream/fleetstream/internal/lograte"
)

// ErrTopicNotFound is wrapped by the error of Table.Load when the table's topic does not
// exist, of Exchange.Open when a source topic does not exist, of DeadLetterSink (so of a
// Source's Run) when a dead-letter topic does not exist and will not be created, and of
// Producer.Write when its topic does not exist and will not be created. A Table
// never creates its topic: create it with EnsureCompactedTopic.
var ErrTopicNotFound = errors.New("kafka: topic not found")

// ErrLoadTwice is returned by Table.Load when the Table was already loaded (or closed).
var ErrLoadTwice = errors.New("kafka: Table.Load called twice")

// DefaultTableVersions is how many versions a Table keeps per key unless WithVersions says
// otherwise.
const DefaultTableVersions = 8

// DefaultTombstoneRetention is how long, in record time, a Table keeps a deleted key's
// tombstones unless WithTombstoneRetention says otherwise: Kafka's default
// delete.retention.ms, after which compaction may drop a tombstone from the topic too.
const DefaultTombstoneRetention = 24 * time.Hour

// TableOption configures a Table. WithLogger and WithSaramaConfig are TableOptions too.
type TableOption interface{ applyTable(*tableOptions) }

type tableOptions struct {
	common
	versions int
	keepDel  time.Duration // WithTombstoneRetention
	fallback bool
	copart   bool
	with     []string // WithCoPartitioned's stream topics
	errs     []error
}

type tableOpt func(*tableOptions)

func (f tableOpt) applyTable(o *tableOptions)  { f(o) }
func (f commonOpt) applyTable(o *tableOptions) { f(&o.common) }

// WithVersions sets how many versions (values and tombstones) a Table keeps per key; the
// oldest is dropped when a key gets one more. Default DefaultTableVersions; 1 keeps only the
// latest, which makes Lookup answer by the latest version's time alone.
func WithVersions(n int) TableOption {
	return tableOpt(func(o *tableOptions) {
		if n < 1 {
			o.errs = append(o.errs, invalid("WithVersions", "%d: must be at least 1", n))
			return
		}
		o.versions = n
	})
}

// WithTombstoneRetention sets how long a deleted key (its newest version a tombstone) is
// kept with its history, in record time: until a record d newer than its newest tombstone
// is read (of any key of the table, or of the partition for a co-partitioned one). Meanwhile
// lookups before the tombstone find the versions before it, and a version older than the
// tombstone, read after it (an update that arrived late, a producer's retry), goes into the
// key's history: lookups before the tombstone find it, Latest and later lookups do not. A
// key forgotten keeps nothing, and such a version brings it back, from its own time on.
// Default DefaultTombstoneRetention; 0 forgets a key as soon as only tombstones are left,
// and one with values before its tombstone at the first record newer than the tombstone.
// Each kept key costs its versions and a map entry (TableStats.Versions counts them).
func WithTombstoneRetention(d time.Duration) TableOption {
	return tableOpt(func(o *tableOptions) {
		if d < 0 {
			o.errs = append(o.errs, invalid("WithTombstoneRetention", "%v: must not be negative", d))
			return
		}
		o.keepDel = d
	})
}

// WithOldestFallback makes Lookup answer a time before a key's oldest retained version with
// that version (unless it is a tombstone) instead of nothing. Use it when the versions'
// timestamps say when a value was written rather than when it became true, for example when
// a backfill replays events older than a compacted topic's surviving records.
func WithOldestFallback() TableOption {
	return tableOpt(func(o *tableOptions) { o.fallback = true })
}

// Table is a key-value table read from a compacted Kafka topic, replicated whole in every
// instance: it reads every partition of the topic itself with a plain consumer (no consumer
// group, no commits), like Kafka Streams' GlobalKTable. Each record is a version of its
// key, valid from the record's timestamp; a record with a nil value (a tombstone) deletes the
// key from its timestamp on. Lookup answers as of an event time, Latest with the newest
// version. See "Tables" in the package documentation for the semantics and limits.
//
// Load reads the topic up to the end offsets it had when Load started, then the Table
// follows the topic in the background until Close. With WithCoPartitioned the Table holds
// only the partitions that LoadPartition loaded (Kafka Streams' KTable). Lookup, Latest and Stats are safe for
// concurrent use, also while the Table loads and follows.
type Table[K comparable, V any] struct {
	cfg    Config
	topic  string
	decode func(key, value []byte) (K, V, error)
	o      tableOptions
	log    *slog.Logger

	mu  sync.RWMutex
	all rows[K, V] // a global table's
	// held are a co-partitioned table's partitions (WithCoPartitioned), read under mu and
	// added or removed under both pmu and mu.
	held map[int32]*heldPart[K, V]
	pmu  sync.Mutex
	// released are the partitions released whose consumers may not have let go yet,
	// each with its heldPart's stopped; under pmu.
	released map[int32]<-chan struct{}
	// count is the topic's partition count, set by Load.
	count int32
	// closing is closed by Close: LoadPartition stops waiting.
	closing chan struct{}
	// refused is closed, with refusedErr set, when a fetch was refused by the ACLs (the
	// user may see the topic but not read it): Load fails with it (LoadPartition with its
	// partition's own, tablePart.failed).
	refused    chan struct{}
	refusedErr error
	refuse     sync.Once

	records, updates, tombstones, decodeErrors, errs, late atomic.Int64
	loaded                                                 atomic.Bool
	started                                                atomic.Bool
	errLog, lateLog                                        *lograte.Limiter

	// set by Load's connect, which holds conn meanwhile (so that Close waits for it)
	conn     sync.Mutex
	client   sarama.Client // metadata and offsets
	consumer sarama.Consumer
	// fetch is the consumer's own client: a broker answers a connection's requests in
	// order, so an offset lookup on the consumer's connection waits behind its long-polling
	// fetch (up to MaxWait).
	fetch   sarama.Client
	idCheck topicCheck                   // the partitions' latest read of it
	parts   []*tablePart                 // Load's and Close's
	shown   atomic.Pointer[[]*tablePart] // parts, for Stats
	wg      sync.WaitGroup
	close   sync.Once
}

// tablePart is one partition being read.
type tablePart struct {
	id   int32
	end  int64        // end offset when Load started
	next atomic.Int64 // offset after the last record read
	// pc is replaced by follow when sarama shut it down (records deleted ahead of it);
	// stopped is set by stop. Both under mu.
	mu      sync.Mutex
	pc      sarama.PartitionConsumer
	stopped bool
	// failed is closed, with err set, when the partition cannot be read: its consumer did
	// not start, or the ACLs refused a fetch. LoadPartition fails with err.
	failed   chan struct{}
	err      error
	failOnce sync.Once
	// Owned by follow: the generation of the rows it reads for, the topic's id it reads (zero
	// when the brokers do not tell) and whether a check found the topic missing.
	gen     int
	topicID sarama.Uuid
	missing bool
}

// newPart returns partition id, its consumer not started (startPart starts it).
func newPart(id int32) *tablePart { return &tablePart{id: id, failed: make(chan struct{})} }

// fail records why p cannot be read; the first reason stays.
func (p *tablePart) fail(err error) {
	p.failOnce.Do(func() {
		p.err = err
		close(p.failed)
	})
}

// consumer returns p's current partition consumer.
func (p *tablePart) consumer() sarama.PartitionConsumer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pc
}

// stop closes p's consumer, which ends follow, and keeps follow from starting another.
func (p *tablePart) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if p.pc != nil {
		p.pc.AsyncClose()
	}
}

// TableStats is a snapshot of a Table.
type TableStats struct {
	// Keys is the number of keys whose latest version is a value (Latest finds them).
	Keys int
	// Versions is the number of versions held over all keys, tombstones included.
	Versions int
	// Records counts the records read; Updates those with a value, Tombstones those without.
	Records, Updates, Tombstones int64
	// DecodeErrors counts the records the decode function refused: they are skipped, and
	// logged at Warn (the first ten one by one, then one line every ten seconds).
	DecodeErrors int64
	// Errors counts the consumer's errors (broker outages are retried by the consumer).
	Errors int64
	// LateVersions counts the versions read after a lookup (Lookup, LookupPartition; not
	// Latest) at or after their timestamp, of any key (of a co-partitioned table: in their
	// partition): the table lagged the lookups' event time, and lookups of their key between
	// their timestamp and their arrival, if any, answered with an older version or none. They
	// are logged at Warn (the first ten one by one, then one line every ten seconds). See
	// "Tables" in the package documentation.
	LateVersions int64
	// Loaded is true once Load returned nil.
	Loaded bool
	// Lag is, summed over the partitions, the high-water mark minus the next offset to read.
	Lag int64
	// Partitions are the partitions of the topic the table holds, in order: all of them
	// once a global table is loaded; for a co-partitioned one (WithCoPartitioned), those
	// that LoadPartition loads or loaded and Release did not let go.
	Partitions []int32
}

// NewTable returns a Table of topic that decodes each record with decode. decode gets the
// record's key and value; for a tombstone value is nil and only the key it returns is used
// (V may be the zero value). Only cfg's connection and Fetch settings are used (Group and
// Topics are ignored). Nothing connects before Load.
func NewTable[K comparable, V any](cfg Config, topic string, decode func(key, value []byte) (K, V, error), opts ...TableOption) (*Table[K, V], error) {
	o := tableOptions{common: common{logger: slog.New(slog.DiscardHandler)}, versions: DefaultTableVersions, keepDel: DefaultTombstoneRetention}
	nils := applyOpts(opts, func(opt TableOption) { opt.applyTable(&o) })
	errs := append(o.errs, nils...)
	if topic == "" {
		errs = append(errs, invalid("topic", "empty"))
	} else if err := topicName("topic", topic); err != nil {
		errs = append(errs, err)
	}
	if decode == nil {
		errs = append(errs, invalid("decode", "nil"))
	}
	if err := cfg.validate(roleProducer); err != nil { // the connection settings
		errs = append(errs, err)
	}
	if cfg.Fetch.MaxBytes < 0 || cfg.Fetch.RequestMaxBytes < 0 || cfg.Fetch.MaxWait < 0 {
		errs = append(errs, invalid("Fetch", "negative setting in %+v", cfg.Fetch))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.Brokers = slices.Clone(cfg.Brokers)
	return &Table[K, V]{
		cfg:     cfg,
		topic:   topic,
		decode:  decode,
		o:       o,
		log:     o.logger.With("component", "kafka.Table", "topic", topic),
		all:     newRows[K, V](),
		held:    make(map[int32]*heldPart[K, V]),
		closing: make(chan struct{}),
		refused: make(chan struct{}),
		errLog:  lograte.New(10, 10*time.Second),
		lateLog: lograte.New(10, 10*time.Second),
	}, nil
}

// Topic returns the table's topic.
func (t *Table[K, V]) Topic() string { return t.topic }

// Lookup returns the value of key as of event time at: the version with the latest
// timestamp at or before at. It returns false when that version is a tombstone, when the key
// has no version, and when at is before the key's oldest retained version (unless
// WithOldestFallback).
func (t *Table[K, V]) Lookup(key K, at time.Time) (V, bool) {
	return t.LookupNano(key, unixNano(at))
}

// Bounds of the times UnixNano represents.
var (
	minNano = time.Unix(0, math.MinInt64)
	maxNano = time.Unix(0, math.MaxInt64)
)

// unixNano is at.UnixNano, clamped for times it does not represent (the zero time, say).
func unixNano(at time.Time) int64 {
	switch {
	case at.Before(minNano):
		return math.MinInt64
	case at.After(maxNano):
		return math.MaxInt64
	}
	return at.UnixNano()
}

// LookupNano is Lookup with the time in Unix nanoseconds (stream.Elem.Time). A co-partitioned
// table (WithCoPartitioned) looks in each partition it holds; LookupPartitionNano looks in one.
func (t *Table[K, V]) LookupNano(key K, at int64) (v V, ok bool) {
	return t.lookupNano(key, at, true)
}

// lookupNano is LookupNano; note says whether the lookup counts as one at time at (Latest's
// does not: see rows.looked).
func (t *Table[K, V]) lookupNano(key K, at int64, note bool) (v V, ok bool) {
	t.mu.RLock() // no defer: a lookup per record
	if !t.o.copart {
		v, ok = t.all.lookup(key, at, t.o.fallback, note)
	} else {
		for _, hp := range t.held {
			if v, ok = hp.rows.lookup(key, at, t.o.fallback, note); ok {
				break
			}
		}
	}
	t.mu.RUnlock()
	return v, ok
}

// Latest returns the newest version of key (the one with the latest timestamp), false if the
// key is unknown or its newest version is a tombstone.
func (t *Table[K, V]) Latest(key K) (V, bool) { return t.lookupNano(key, math.MaxInt64, false) }

// Len returns the number of keys Latest finds.
func (t *Table[K, V]) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := t.all.live
	for _, hp := range t.held {
		n += hp.rows.live
	}
	return n
}

// Stats returns a snapshot of the table's size and counters.
func (t *Table[K, V]) Stats() TableStats {
	var parts []*tablePart
	t.mu.RLock()
	st := TableStats{Keys: t.all.live, Versions: t.all.held}
	for id, hp := range t.held {
		st.Keys += hp.rows.live
		st.Versions += hp.rows.held
		st.Partitions = append(st.Partitions, id)
		parts = append(parts, hp.part)
	}
	t.mu.RUnlock()
	st.Records, st.Updates, st.Tombstones = t.records.Load(), t.updates.Load(), t.tombstones.Load()
	st.DecodeErrors, st.Errors, st.Loaded = t.decodeErrors.Load(), t.errs.Load(), t.loaded.Load()
	st.LateVersions = t.late.Load()
	if shown := t.shown.Load(); shown != nil {
		for _, p := range *shown {
			st.Partitions = append(st.Partitions, p.id)
			parts = append(parts, p)
		}
	}
	// Outside mu: follow holds a part's mu while it restarts its consumer.
	for _, p := range parts {
		if pc := p.consumer(); pc != nil { // nil while a LoadPartition starts it
			st.Lag += max(0, pc.HighWaterMarkOffset()-p.next.Load())
		}
	}
	slices.Sort(st.Partitions)
	return st
}

// apply adds a record's version to a global table.
func (t *Table[K, V]) apply(m *sarama.ConsumerMessage) { t.applyTo(&t.all, m) }

// applyTo adds a record's version to r.
func (t *Table[K, V]) applyTo(r *rows[K, V], m *sarama.ConsumerMessage) { t.applyFor(r, m, -1) }

// applyFor adds a record's version to r if r is of generation gen (any if gen is -1), and
// reports whether it did (a record not decodable counts as done): r was dropped since,
// its topic recreated. Records is counted last, once the version is in place, so that a
// reader that sees Stats().Records reach n finds the n-th record in lookups.
func (t *Table[K, V]) applyFor(r *rows[K, V], m *sarama.ConsumerMessage, gen int) bool {
	key, v, err := t.decode(m.Key, m.Value)
	if err != nil {
		t.decodeErrors.Add(1)
		t.records.Add(1)
		if ok, left := t.errLog.Allow(time.Now()); ok {
			t.log.Warn("kafka: table record not decodable, skipped", "partition", m.Partition, "offset", m.Offset,
				"err", err, "not_logged_since_last", left)
		}
		return true
	}
	from := int64(math.MinInt64) // no timestamp: valid from the beginning
	if !m.Timestamp.IsZero() && m.Timestamp.UnixMilli() >= 0 {
		from = m.Timestamp.UnixNano()
	}
	tomb := m.Value == nil
	t.mu.Lock()
	if gen >= 0 && r.gen != gen {
		t.mu.Unlock()
		return false
	}
	late, looked := r.put(key, version[V]{from: from, deleted: tomb, v: v}, t.o.versions, t.o.keepDel)
	t.mu.Unlock()
	defer t.records.Add(1)
	if late {
		t.late.Add(1)
		if ok, left := t.lateLog.Allow(time.Now()); ok {
			t.log.Warn("kafka: table version came after a lookup at or after its time: lookups of its key between them "+
				"answered with an older version (see Tables, Late versions)", "partition", m.Partition, "offset", m.Offset,
				"version_time", time.Unix(0, from).UTC(), "looked_up_at", time.Unix(0, looked).UTC(), "not_logged_since_last", left)
		}
	}
	if tomb {
		t.tombstones.Add(1)
	} else {
		t.updates.Add(1)
	}
	return true
}
