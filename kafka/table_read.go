// Reading a Table's topic: Load, the connections, following each partition, and Close.

package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// Load connects, reads every partition of the topic up to the end offsets it had when Load
// started, and returns once they are all read; the Table then keeps following the topic in
// the background until Close. It fails if the topic does not exist (ErrTopicNotFound), the
// cluster cannot be reached or the ACLs refuse the topic (ErrNotAuthorized). When ctx ends
// before the table is loaded, Load closes the Table and returns ctx's error; when Close is
// called meanwhile, Load returns an error wrapping ErrNotLoaded. A Table loads once. A
// co-partitioned Table (WithCoPartitioned) reads nothing: Load connects, checks the topic
// and the partition counts of WithCoPartitioned's stream topics (ErrNotCoPartitioned), and
// returns; LoadPartition reads partitions.
func (t *Table[K, V]) Load(ctx context.Context) error {
	if !t.started.CompareAndSwap(false, true) {
		return ErrLoadTwice
	}
	done := make(chan error, 1)
	go func() { done <- t.connect() }()
	select {
	case <-ctx.Done():
		go func() { <-done; t.Close() }()
		return ctx.Err()
	case err := <-done:
		if err != nil {
			t.Close()
			return err
		}
	}
	if t.o.copart {
		t.loaded.Store(true)
		t.log.Info("kafka: co-partitioned table checked", "partitions", t.count)
		return nil
	}
	loaded := make(chan struct{})
	var pending atomic.Int64
	pending.Store(int64(len(t.parts)))
	finish := func() {
		if pending.Add(-1) == 0 {
			close(loaded)
		}
	}
	// Under conn, so that a Close waits for the goroutines it must wait for.
	t.conn.Lock()
	if t.isClosing() {
		t.conn.Unlock()
		return t.closedWhileLoading()
	}
	for _, p := range t.parts {
		if p.next.Load() >= p.end {
			finish()
		}
		t.wg.Go(func() { t.follow(p, &t.all, finish) })
	}
	t.conn.Unlock()
	if len(t.parts) == 0 {
		close(loaded)
	}
	select {
	case <-ctx.Done():
		t.Close()
		return ctx.Err()
	case <-t.closing:
		return t.closedWhileLoading()
	case <-t.refused:
		t.Close()
		return t.refusedErr
	case <-loaded:
	}
	t.loaded.Store(true)
	st := t.Stats()
	t.log.Info("kafka: table loaded", "keys", st.Keys, "records", st.Records, "decode_errors", st.DecodeErrors)
	return nil
}

// isClosing reports whether Close was called.
func (t *Table[K, V]) isClosing() bool {
	select {
	case <-t.closing:
		return true
	default:
		return false
	}
}

// closedWhileLoading is Load's error when Close was called before it returned.
func (t *Table[K, V]) closedWhileLoading() error {
	return fmt.Errorf("%w: table of topic %q closed while it loaded", ErrNotLoaded, t.topic)
}

// connect makes the client, checks the topic, reads the end offsets and starts a partition
// consumer per partition from its oldest offset.
func (t *Table[K, V]) connect() error {
	t.conn.Lock()
	defer t.conn.Unlock()
	if t.isClosing() { // Close took conn first: it would not close what this opens
		return t.closedWhileLoading()
	}
	sc, err := t.cfg.sarama(roleProducer)
	if err != nil {
		return err
	}
	sc.Consumer.Return.Errors = true
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Fetch.Default = cmp.Or(t.cfg.Fetch.MaxBytes, defaultFetchBytes)
	sc.Consumer.Fetch.MaxBytes = cmp.Or(t.cfg.Fetch.RequestMaxBytes, max(defaultRequestBytes, sc.Consumer.Fetch.Default))
	sc.Consumer.MaxWaitTime = cmp.Or(t.cfg.Fetch.MaxWait, 250*time.Millisecond)
	sc.ChannelBufferSize = channelBuffer
	sc.Metadata.AllowAutoTopicCreation = false
	if t.o.tune != nil {
		t.o.tune(sc)
	}
	warnInsecure(t.log, sc)
	client, err := sarama.NewClient(t.cfg.Brokers, sc)
	if err != nil {
		return connectError(&t.cfg, err)
	}
	t.client = client
	if err := client.RefreshMetadata(t.topic); err != nil {
		switch {
		case errors.Is(err, errTopicMissing):
			return fmt.Errorf("%w: table topic %q does not exist (a Table never creates its topic; create it with kafka.EnsureCompactedTopic): %w",
				ErrTopicNotFound, t.topic, err)
		case isNotAuthorized(err):
			return t.cfg.notAuthorized(err, access{topics: []string{t.topic}})
		}
		return fmt.Errorf("kafka: metadata of table topic %q: %w", t.topic, redact(&t.cfg, err))
	}
	t.checkCompacted(sc)
	ids, err := client.Partitions(t.topic)
	if err != nil {
		return fmt.Errorf("kafka: partitions of table topic %q: %w", t.topic, redact(&t.cfg, err))
	}
	t.count = int32(len(ids))
	if t.o.copart {
		if err := t.checkCoPartitioned(client); err != nil {
			return err
		}
	}
	fetch, err := sarama.NewClient(t.cfg.Brokers, sc)
	if err != nil {
		return connectError(&t.cfg, err)
	}
	t.fetch = fetch
	consumer, err := sarama.NewConsumerFromClient(fetch)
	if err != nil {
		return fmt.Errorf("kafka: table consumer: %w", err)
	}
	t.consumer = consumer
	if t.o.copart {
		return nil // LoadPartition reads the partitions
	}
	// The id before the offsets: a topic recreated between the two reads shows as a changed id.
	id0, _, err := topicID(client, t.topic) // zero if unknown: follow learns it
	if err != nil {
		t.log.Debug("kafka: table topic id", "err", redact(&t.cfg, err))
	}
	oldest, newest, err := offsetRanges(t.client, t.topic, ids)
	if err != nil {
		return fmt.Errorf("kafka: table: %w", redact(&t.cfg, err))
	}
	for _, id := range ids {
		p := newPart(id)
		p.topicID = id0
		if err := t.startPart(p, oldest[id], newest[id]); err != nil {
			return err
		}
		t.parts = append(t.parts, p)
	}
	parts := t.parts
	t.shown.Store(&parts)
	return nil
}

// startPart starts p's consumer, to read it from oldest to end (its start and end offsets,
// read by the caller), unless p was stopped meanwhile.
func (t *Table[K, V]) startPart(p *tablePart, oldest, end int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	p.end = end
	p.next.Store(oldest)
	// From the oldest offset at the time the consumer starts: the log's start may have
	// moved since (delete-records, compact,delete), and an offset out of range would stop
	// the partition consumer.
	pc, err := t.consumer.ConsumePartition(t.topic, p.id, sarama.OffsetOldest)
	if err != nil {
		return fmt.Errorf("kafka: consume %s/%d: %w", t.topic, p.id, t.cfg.notAuthorized(redact(&t.cfg, err), access{topics: []string{t.topic}}))
	}
	p.pc = pc
	return nil
}

// checkCompacted warns when the topic's cleanup policy is not compact: the Table still
// works, but keys whose records the retention deletes are lost at the next Load.
func (t *Table[K, V]) checkCompacted(sc *sarama.Config) {
	policy, err := cleanupPolicy(&t.cfg, sc, t.topic)
	if err != nil {
		t.log.Debug("kafka: cannot read the table topic's cleanup.policy", "err", redact(&t.cfg, err))
		return
	}
	if !strings.Contains(policy, "compact") {
		t.log.Warn("kafka: table topic is not compacted: keys whose records expire are lost at the next load",
			"cleanup.policy", policy)
	}
}

// refuseRead records that a fetch of partition p was refused by the ACLs: p fails
// (LoadPartition of it), and so does the table's Load.
func (t *Table[K, V]) refuseRead(p *tablePart, err error) {
	err = t.cfg.notAuthorized(err, access{topics: []string{t.topic}})
	p.fail(err)
	t.refuse.Do(func() {
		t.refusedErr = err
		close(t.refused)
	})
	t.log.Error("kafka: table partition no longer followed: reading it is not authorized", "partition", p.id, "err", err)
}

// follow applies a partition's records until Close, and calls loaded once the records before
// the partition's end offset at start were applied.
func (t *Table[K, V]) follow(p *tablePart, r *rows[K, V], loaded func()) {
	done := p.next.Load() >= p.end
	pc := p.consumer()
	msgs, errs := pc.Messages(), pc.Errors()
	// Until the partition is loaded, a tick without a record probes whether only
	// transaction markers or aborted records are left before the end offset: the consumer
	// never delivers those, so no record would ever reach it.
	probe := time.NewTicker(probeEvery)
	defer probe.Stop()
	ticks := probe.C
	if done {
		ticks = nil
	}
	check := time.NewTicker(recreatedEvery)
	defer check.Stop()
	got, outOfRange, refused := false, false, false
	// reread reads p again from its start if its topic was recreated: again says whether it
	// was, stop that p was stopped meanwhile.
	reread := func() (again, stop bool) {
		why, id := t.recreated(p, r)
		if why == "" {
			return false, false
		}
		pc := t.reread(p, r, id, why)
		if pc == nil {
			return true, true
		}
		msgs, errs, got = pc.Messages(), pc.Errors(), false
		if !done && p.next.Load() >= p.end {
			done, ticks = true, nil
			probe.Stop()
			loaded()
		}
		return true, false
	}
	for {
		if msgs == nil && errs == nil {
			if !outOfRange || refused {
				return
			}
			// sarama shut the consumer down: records were deleted ahead of it, or the topic
			// was recreated with a shorter log (which p.next, not moved yet, shows).
			outOfRange = false
			if again, stop := reread(); stop {
				return
			} else if again {
				continue
			}
			pc := t.resume(p, "kafka: table partition read again from its start: records were deleted ahead of the consumer")
			if pc == nil {
				return
			}
			msgs, errs = pc.Messages(), pc.Errors()
		}
		select {
		case m, ok := <-msgs:
			if !ok {
				msgs = nil
				continue
			}
			got = true
			if !t.applyFor(r, m, p.gen) {
				// Another partition found the topic recreated and dropped r.
				if _, stop := reread(); stop {
					return
				}
				continue
			}
			p.next.Store(m.Offset + 1)
			if !done && m.Offset+1 >= p.end {
				done, ticks = true, nil
				probe.Stop()
				loaded()
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			t.errs.Add(1)
			if errors.Is(err, sarama.ErrOffsetOutOfRange) {
				outOfRange = true
			}
			if isNotAuthorized(err) {
				// The ACLs let the user see the topic but not read it: no retry gets
				// through (sarama retries for ever). Load and LoadPartition fail; a loaded
				// table stops following the partition. Its consumer is closed and drained
				// until sarama closes its channels: left running, it would fetch for ever
				// and block, once its error channel is full, in a state Close cannot end.
				if !refused {
					refused = true
					t.refuseRead(p, err)
					p.stop()
				}
				continue
			}
			if ok, left := t.errLog.Allow(time.Now()); ok {
				t.log.Warn("kafka: table consumer error", "partition", p.id, "err", redact(&t.cfg, err), "not_logged_since_last", left)
			}
		case <-check.C:
			if _, stop := reread(); stop {
				return
			}
		case <-ticks:
			if got {
				got = false
				continue
			}
			if nothingLeft, err := t.nothingLeft(p); err != nil {
				t.log.Debug("kafka: table load probe", "partition", p.id, "err", redact(&t.cfg, err))
			} else if nothingLeft {
				done, ticks = true, nil
				probe.Stop()
				loaded()
			}
		}
	}
}

// resume starts p's consumer again from the log's start, after sarama shut it down on
// OFFSET_OUT_OF_RANGE (records deleted ahead of it by retention or delete-records) or reread
// closed it, logs msg and returns it; nil once p is stopped. It retries until one of the two.
func (t *Table[K, V]) resume(p *tablePart, msg string) sarama.PartitionConsumer {
	for {
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return nil
		}
		pc, err := t.consumer.ConsumePartition(t.topic, p.id, sarama.OffsetOldest)
		if err == nil {
			p.pc = pc
		}
		p.mu.Unlock()
		if err == nil {
			t.log.Info(msg, "partition", p.id)
			return pc
		}
		t.errs.Add(1)
		if ok, left := t.errLog.Allow(time.Now()); ok {
			t.log.Warn("kafka: table consumer restart", "partition", p.id, "err", redact(&t.cfg, err), "not_logged_since_last", left)
		}
		select {
		case <-time.After(probeEvery):
		case <-t.closing:
		}
	}
}

// Close stops following the topic and releases the connections; during a Load that is still
// connecting, it waits for the connection attempt first. The table keeps its contents:
// Lookup and Latest still answer, with what was read until then. Close is idempotent.
func (t *Table[K, V]) Close() error {
	var err error
	t.close.Do(func() {
		t.started.Store(true) // a closed Table never loads
		close(t.closing)
		t.conn.Lock()
		defer t.conn.Unlock()
		for _, p := range t.parts {
			p.stop() // closes Messages and Errors, which ends follow
		}
		t.closeHeld()
		t.wg.Wait()
		if t.consumer != nil {
			err = errors.Join(err, t.consumer.Close())
		}
		for _, c := range []sarama.Client{t.fetch, t.client} {
			if c == nil {
				continue
			}
			if cerr := c.Close(); cerr != nil && !errors.Is(cerr, sarama.ErrClosedClient) {
				err = errors.Join(err, cerr)
			}
		}
	})
	if err != nil {
		return fmt.Errorf("kafka: table close: %w", err)
	}
	return nil
}
