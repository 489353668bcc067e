// The co-partitioned Table (Kafka Streams' KTable): WithCoPartitioned, LoadPartition,
// Release, LookupPartition, and the key hashes by which a stream is repartitioned like its
// table.

package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// ErrNotCoPartitioned is wrapped by the error of a co-partitioned Table's Load when a
// stream topic named in WithCoPartitioned has another partition count than the table's
// topic, and by LoadPartition's for a partition the topic does not have. The error names the
// fix: repartition the stream into the table's partition count (see "Co-partitioned tables"
// in the package documentation).
var ErrNotCoPartitioned = errors.New("kafka: stream and table are not co-partitioned")

// ErrNotLoaded is wrapped by the error of LoadPartition before Load returned nil, or after
// Close, and by Load's when Close was called before it returned.
var ErrNotLoaded = errors.New("kafka: table not loaded")

// WithCoPartitioned makes the Table co-partitioned (Kafka Streams' KTable) instead of
// global: Load only checks the topic (and that each of streamTopics, the topics of the
// stream it is joined with, has as many partitions, else ErrNotCoPartitioned) and reads
// nothing; LoadPartition reads one partition and keeps following it until Release. So an
// instance holds only the partitions matching the stream partitions it owns (join.
// EnrichCoPartitioned does this). See "Co-partitioned tables" in the package documentation.
func WithCoPartitioned(streamTopics ...string) TableOption {
	return tableOpt(func(o *tableOptions) {
		for _, topic := range streamTopics {
			if topic == "" {
				o.errs = append(o.errs, invalid("WithCoPartitioned", "empty stream topic"))
				return
			}
			if err := topicName("WithCoPartitioned", topic); err != nil {
				o.errs = append(o.errs, err)
				return
			}
		}
		o.copart = true
		o.with = append(o.with, streamTopics...)
	})
}

// heldPart is a partition a co-partitioned table holds.
type heldPart[K comparable, V any] struct {
	part    *tablePart    // its consumer started by its goroutine (readHeld)
	rows    rows[K, V]    // under the table's mu
	refs    int           // LoadPartition calls not yet released; under pmu
	done    bool          // its consumer was closed; under pmu
	loaded  chan struct{} // closed once read up to part.end
	stopped chan struct{} // closed once follow returned: the consumer let go of the partition
}

// CoPartitioned reports whether the table was made WithCoPartitioned: it then holds only the
// partitions loaded with LoadPartition, and join.Enrich, which loads none, refuses it (join
// it with join.EnrichCoPartitioned).
func (t *Table[K, V]) CoPartitioned() bool { return t.o.copart }

// PartitionCount returns the number of partitions of the table's topic, as Load found it (0
// before).
func (t *Table[K, V]) PartitionCount() int {
	if !t.loaded.Load() {
		return 0
	}
	return int(t.count)
}

// checkCoPartitioned checks that WithCoPartitioned's stream topics have t.count partitions.
func (t *Table[K, V]) checkCoPartitioned(client sarama.Client) error {
	for _, topic := range t.o.with {
		if err := client.RefreshMetadata(topic); err != nil {
			switch {
			case errors.Is(err, errTopicMissing):
				return fmt.Errorf("%w: stream topic %q of co-partitioned table %q does not exist: %w", ErrTopicNotFound, topic, t.topic, err)
			case isNotAuthorized(err):
				return t.cfg.notAuthorized(err, access{topics: []string{topic}})
			}
			return fmt.Errorf("kafka: metadata of stream topic %q: %w", topic, redact(&t.cfg, err))
		}
		ids, err := client.Partitions(topic)
		if err != nil {
			return fmt.Errorf("kafka: partitions of stream topic %q: %w", topic, redact(&t.cfg, err))
		}
		if int32(len(ids)) != t.count {
			return t.notCoPartitioned(fmt.Sprintf("stream topic %q has %d partitions", topic, len(ids)))
		}
	}
	return nil
}

// notCoPartitioned returns the ErrNotCoPartitioned error for what, with the fix.
func (t *Table[K, V]) notCoPartitioned(what string) error {
	return fmt.Errorf("%w: %s, table topic %q has %d: repartition the stream into %d partitions by the table's key "+
		"with the table topic's partitioner (stream.RepartitionBy with kafka.KeyHash of the key over a kafka.NewExchange "+
		"with kafka.WithPartitions(%d)), or make the table global (no WithCoPartitioned)",
		ErrNotCoPartitioned, what, t.topic, t.count, t.count, t.count)
}

// LoadPartition reads partition of a co-partitioned table's topic from its oldest offset up
// to its end offset at the call, and returns once those records are applied (or ctx ended:
// ctx's error; or the table was closed: ErrNotLoaded). The table then follows the
// partition in the background until as many Release calls as successful LoadPartition calls
// let it go; a partition already held is not read again (the call waits until it is
// loaded). It fails with ErrNotCoPartitioned for a partition the topic does not have, with
// ErrNotLoaded before Load, and with ErrInvalidOption on a global table. Safe for concurrent
// use.
func (t *Table[K, V]) LoadPartition(ctx context.Context, partition int32) error {
	if !t.o.copart {
		return invalid("LoadPartition", "table of topic %q is global (made without WithCoPartitioned): it holds every partition", t.topic)
	}
	hp, err := t.acquire(ctx, partition)
	if err != nil {
		return err
	}
	select {
	case <-hp.loaded:
		return nil
	default:
	}
	start := time.Now()
	select {
	case <-hp.loaded:
		t.log.Debug("kafka: table partition loaded", "partition", partition, "took", time.Since(start))
		return nil
	case <-ctx.Done():
		t.Release(partition)
		return ctx.Err()
	case <-t.closing:
		t.Release(partition)
		return fmt.Errorf("%w: table of topic %q closed while partition %d loaded", ErrNotLoaded, t.topic, partition)
	case <-hp.part.failed:
		t.Release(partition)
		return hp.part.err
	}
}

// acquire counts a use of partition, starting to read it if it is not held. It waits
// (until ctx ends or the table closes) for the consumer of the partition released last to
// let go of it; the partition's own goroutine reads the offsets and starts the consumer.
func (t *Table[K, V]) acquire(ctx context.Context, partition int32) (*heldPart[K, V], error) {
	for {
		hp, stopped, err := t.acquireOrWait(partition)
		if stopped == nil {
			return hp, err
		}
		// sarama refuses a partition its consumer still holds ("already being consumed"):
		// a partition released a moment ago waits for its consumer to let go.
		select {
		case <-stopped:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.closing:
			return nil, fmt.Errorf("%w: table of topic %q is closed", ErrNotLoaded, t.topic)
		}
	}
}

// acquireOrWait is acquire without waiting: it returns the stopped channel of the
// partition's last consumer instead while that consumer holds the partition.
func (t *Table[K, V]) acquireOrWait(partition int32) (*heldPart[K, V], <-chan struct{}, error) {
	t.pmu.Lock()
	defer t.pmu.Unlock()
	select {
	case <-t.closing:
		return nil, nil, fmt.Errorf("%w: table of topic %q is closed", ErrNotLoaded, t.topic)
	default:
	}
	if !t.loaded.Load() {
		return nil, nil, fmt.Errorf("%w: LoadPartition(%d) before Load of table topic %q", ErrNotLoaded, partition, t.topic)
	}
	if partition < 0 || partition >= t.count {
		return nil, nil, t.notCoPartitioned(fmt.Sprintf("stream partition %d has no table partition", partition))
	}
	if hp := t.held[partition]; hp != nil {
		hp.refs++
		return hp, nil, nil
	}
	if stopped := t.released[partition]; stopped != nil {
		select {
		case <-stopped:
			delete(t.released, partition)
		default:
			return nil, stopped, nil
		}
	}
	hp := &heldPart[K, V]{part: newPart(partition), refs: 1, loaded: make(chan struct{}), stopped: make(chan struct{}),
		rows: newRows[K, V]()}
	t.mu.Lock()
	t.held[partition] = hp
	t.mu.Unlock()
	t.wg.Go(func() {
		defer close(hp.stopped)
		t.readHeld(hp)
	})
	return hp, nil, nil
}

// readHeld reads a held partition's offsets, starts its consumer and follows it until it is
// released or the table closed; a failure to start fails the partition (tablePart.failed).
func (t *Table[K, V]) readHeld(hp *heldPart[K, V]) {
	part := hp.part
	part.topicID, _, _ = topicID(t.client, t.topic) // zero if unknown: follow learns it
	oldest, newest, err := offsetRanges(t.client, t.topic, []int32{part.id})
	if err == nil {
		err = t.startPart(part, oldest[part.id], newest[part.id])
	} else {
		err = fmt.Errorf("kafka: table: %w", redact(&t.cfg, err))
	}
	if err != nil {
		part.fail(err)
		return
	}
	if part.consumer() == nil {
		return // released before it started
	}
	loaded := func() { close(hp.loaded) }
	if part.next.Load() >= part.end {
		loaded() // empty: follow does not call it
	}
	t.follow(part, &hp.rows, loaded)
}

// Release lets go of a partition that LoadPartition loaded: once every successful
// LoadPartition of it was released, the table stops following it and drops its contents.
// Releasing a partition not held does nothing.
func (t *Table[K, V]) Release(partition int32) {
	t.pmu.Lock()
	defer t.pmu.Unlock()
	hp := t.held[partition]
	if hp == nil {
		return
	}
	if hp.refs--; hp.refs > 0 {
		return
	}
	t.mu.Lock()
	delete(t.held, partition)
	t.mu.Unlock()
	if !hp.done {
		hp.done = true
		hp.part.stop() // ends follow
	}
	if t.released == nil {
		t.released = make(map[int32]<-chan struct{})
	}
	t.released[partition] = hp.stopped
}

// closeHeld stops following the held partitions (Close); they keep their contents.
func (t *Table[K, V]) closeHeld() {
	t.pmu.Lock()
	defer t.pmu.Unlock()
	for _, hp := range t.held {
		if !hp.done {
			hp.done = true
			hp.part.stop()
		}
	}
}

// LookupPartition is Lookup in one partition of a co-partitioned table: the partition of
// the table's topic that holds key. It finds nothing in a partition not held. On a global
// table it is Lookup.
func (t *Table[K, V]) LookupPartition(partition int32, key K, at time.Time) (V, bool) {
	return t.LookupPartitionNano(partition, key, unixNano(at))
}

// LookupPartitionNano is LookupPartition with the time in Unix nanoseconds
// (stream.Elem.Time).
func (t *Table[K, V]) LookupPartitionNano(partition int32, key K, at int64) (v V, ok bool) {
	t.mu.RLock() // no defer: a lookup per record
	if !t.o.copart {
		v, ok = t.all.lookup(key, at, t.o.fallback, true)
	} else if hp := t.held[partition]; hp != nil {
		v, ok = hp.rows.lookup(key, at, t.o.fallback, true)
	}
	t.mu.RUnlock()
	return v, ok
}

// KeyHash is the hash by which the Producer places a keyed message (sarama's default hash
// partitioner: 32-bit FNV-1a of the key's bytes): among n partitions, a key goes to KeyHash(key)
// % n. Give it to stream.RepartitionBy to repartition a stream like a topic the Producer
// wrote by the same key (a co-partitioned Table's topic). stream.Repartition routes by
// stream.HashKey, another hash.
func KeyHash[K ~string | ~[]byte](key K) uint64 {
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= prime32
	}
	// sarama: int32(h) % n, negated when negative, which is |int32(h)| % n.
	if s := int32(h); s < 0 {
		return uint64(-int64(s))
	}
	return uint64(h)
}

// Murmur2KeyHash is KeyHash for topics written by the Apache Kafka Java client's default
// partitioner (and sarama.NewMurmur2Partitioner): among n partitions, a key goes to
// Murmur2KeyHash(key) % n, which is (murmur2(key) & 0x7fffffff) % n.
func Murmur2KeyHash[K ~string | ~[]byte](key K) uint64 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(key)
	h := seed ^ uint32(n)
	i := 0
	for ; n-i >= 4; i += 4 {
		k := uint32(key[i]) | uint32(key[i+1])<<8 | uint32(key[i+2])<<16 | uint32(key[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch n - i {
	case 3:
		h ^= uint32(key[i+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(key[i+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(key[i])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return uint64(h & 0x7fffffff)
}
