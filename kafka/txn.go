// The exactly-once transaction of a Source: the messages that bound Producers wrote during
// a batch are produced, and the batch's offsets (with the pipeline's checkpoint) committed,
// in one Kafka transaction when the pipeline commits (the read-back of committed output that
// drops what a replay emits again is in readback.go). See "Exactly once" in the package
// documentation.

package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/fleetstream/fleetstream/stream"
)

// ErrTransaction is wrapped by the errors that stop an exactly-once pipeline because its
// transaction cannot go on (the producer was fenced, the group moved on, a revocation found
// output that no commit covered). A restart replays from the committed checkpoints, which is
// exact.
var ErrTransaction = errors.New("kafka: exactly-once transaction failed")

// Transactional is implemented by Source: WithExactlyOnce binds a Producer to the Source's
// commit transaction.
type Transactional interface {
	transaction() *txn
}

// txnTimeout is the broker's limit on one transaction. A transaction lives only while the
// Source commits (produce, add offsets, commit), so a short limit only bounds how long a
// transaction of a killed process can hold back read_committed consumers.
const txnTimeout = 30 * time.Second

// eosMarker separates the pipeline's checkpoint from the Source's own part in the offset
// metadata it commits: where a read-back of the output topics must start.
const eosMarker = "~eos~"

// outputs is where committed output ended, by output topic-partition: an immutable
// snapshot once published.
type outputs map[topicPart]int64

// txn is a Source's transactional producer and its bookkeeping. Its methods are called from
// the pipeline's run loop (Producer.Write, Source.Commit, Close) and, for the snapshot and the
// read-back bounds, from the claims.
type txn struct {
	cfg        Config
	group      string
	instanceID string // the member's group.instance.id (static membership), or ""
	id         string
	log        *slog.Logger
	tune       func(*sarama.Config)

	// snap is the end of committed output as of the last transaction (or the connection):
	// any output made from a record pushed after it was published lies after it.
	snap atomic.Pointer[outputs]
	// first is the snapshot made when the producer first connected.
	first atomic.Pointer[outputs]

	mu      sync.Mutex
	client  sarama.Client
	prod    sarama.SyncProducer
	topics  []string
	users   int
	pending []pendingMsg
	bounds  outputs        // read-back still to do: from these offsets
	seen    map[digest]int // committed output that a replay may emit again
	err     error          // fatal: every later call returns it
	closed  bool

	dropped atomic.Int64

	maxMsg int // the producer's Producer.MaxMessageBytes; 0 until known
}

type pendingMsg struct {
	m    Message
	sent *atomic.Int64
}

type digest [16]byte

// txnOffset is one partition's offset, checkpoint and read-back bound for a transaction.
type txnOffset struct {
	sess  sarama.ConsumerGroupSession
	topic string
	part  int32
	off   int64
	meta  string // stored metadata: the pipeline's checkpoint and the bound
}

func newTxn(cfg Config, id string, log *slog.Logger, tune func(*sarama.Config)) *txn {
	return &txn{cfg: cfg, group: cfg.Group, instanceID: cfg.Rebalance.InstanceID, id: id, log: log, tune: tune, bounds: outputs{}, seen: map[digest]int{}}
}

// defaultTransactionalID is stable across restarts of an instance on one host, so that a
// restart fences its killed predecessor's open transaction at once.
func defaultTransactionalID(cfg *Config) string {
	host, _ := os.Hostname()
	client := cfg.ClientID
	if client == "" {
		client = "fleetstream"
	}
	return "fleetstream-" + cfg.Group + "-" + host + "-" + client
}

// bind registers a Producer writing to topic.
func (t *txn) bind(topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !slices.Contains(t.topics, topic) {
		t.topics = append(t.topics, topic)
	}
	t.users++
}

// connect starts the transactional producer (which aborts a transaction that a killed
// predecessor with the same id left open) and publishes the first snapshot. t.mu is held.
func (t *txn) connect(ctx context.Context) error {
	if t.closed {
		return ErrClosed
	}
	if t.prod != nil {
		return nil
	}
	sc, err := t.cfg.sarama(roleProducer)
	if err != nil {
		return err
	}
	if t.tune != nil {
		t.tune(sc)
	}
	if err := checkFlush(sc); err != nil {
		return err
	}
	sc.Producer.Transaction.ID = t.id
	sc.Producer.Transaction.Timeout = txnTimeout
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Net.MaxOpenRequests = 1
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	if err := sc.Validate(); err != nil { // the same at every try: refused for good
		return stream.Permanent(fmt.Errorf("kafka: transactional producer %q: sarama configuration (WithSaramaConfig): %w", t.id, err))
	}
	warnInsecure(t.log, sc)
	type result struct {
		c   sarama.Client
		p   sarama.SyncProducer
		err error
	}
	denied := access{topics: slices.Clone(t.topics), group: t.group, txnID: t.id, write: true}
	done := make(chan result, 1)
	go func() {
		c, err := sarama.NewClient(t.cfg.Brokers, sc)
		if err != nil {
			done <- result{err: connectError(&t.cfg, err)}
			return
		}
		p, err := sarama.NewSyncProducerFromClient(c)
		if err != nil {
			_ = c.Close()
			if isNotAuthorized(err) {
				err = t.cfg.notAuthorized(err, denied)
			}
			done <- result{err: fmt.Errorf("kafka: transactional producer %q: %w", t.id, err)}
			return
		}
		done <- result{c: c, p: p}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		go func() { // do not leak the client once it is made
			if r := <-done; r.err == nil {
				_ = r.p.Close()
				_ = r.c.Close()
			}
		}()
		return ctx.Err()
	}
	if r.err != nil {
		if errors.Is(r.err, ErrNotAuthorized) {
			// Kept: no retry gets past the ACLs, and the pipeline stops on it.
			t.err = stream.Permanent(r.err)
			return t.err
		}
		return r.err
	}
	ends := outputs{}
	for _, topic := range t.topics {
		parts, err := r.c.Partitions(topic)
		if err != nil {
			_ = r.p.Close()
			_ = r.c.Close()
			err = fmt.Errorf("kafka: partitions of %q: %w", topic, err)
			if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
				// Retried, a topic that nobody creates would hold every commit for ever.
				return missingOrRetry(ctx, &t.cfg, []string{topic}, sc.Metadata.AllowAutoTopicCreation, err)
			}
			return err
		}
		hwms, err := offsetsAt(r.c, topic, parts, sarama.OffsetNewest)
		if err != nil {
			_ = r.p.Close()
			_ = r.c.Close()
			return fmt.Errorf("kafka: end offsets: %w", err)
		}
		for p, hwm := range hwms {
			ends[topicPart{topic, p}] = hwm
		}
	}
	t.client, t.prod = r.c, r.p
	t.snap.Store(&ends)
	// The first connection's: output made by this Source before a reset lies after it.
	t.first.CompareAndSwap(nil, &ends)
	return nil
}

// fence starts the transactional producer unless it runs already. Its InitProducerId fences
// a killed predecessor with the same transactional id and aborts the transaction that one
// left open. A Source calls it before each group session, whose start fetches the group's
// offsets: a predecessor killed between its offsets and its commit left them pending, and the
// fetch (require_stable) would answer UNSTABLE_OFFSET_COMMIT until the broker timed the
// transaction out (txnTimeout, checked every 10 s), while the producer that aborts it at once
// was started only by the first output, after the fetch.
func (t *txn) fence(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return t.err
	}
	return t.connect(ctx)
}

// ready connects and does the read-back that newly claimed partitions asked for. t.mu is held.
func (t *txn) ready(ctx context.Context) error {
	if t.err != nil {
		return t.err
	}
	if err := t.connect(ctx); err != nil {
		return err
	}
	if len(t.bounds) == 0 {
		return nil
	}
	n, err := t.readBack(ctx, t.bounds)
	if err != nil {
		return fmt.Errorf("kafka: exactly-once read-back of committed output: %w", err)
	}
	t.log.Info("kafka: exactly-once read-back of committed output", "messages", n, "from", fmt.Sprint(t.bounds))
	t.bounds = outputs{}
	return nil
}

// resume asks for a read-back of committed output from the bound stored with a claimed
// partition's checkpoint, before the next output is written.
func (t *txn) resume(b outputs) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for tp, off := range b {
		if cur, ok := t.bounds[tp]; !ok || off < cur {
			t.bounds[tp] = off
		}
	}
}

// add takes a Producer's messages into the transaction of the next commit, dropping those
// that committed output already holds (a replay emitting again what it emitted before).
func (t *txn) add(ctx context.Context, msgs []Message, sent *atomic.Int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.ready(ctx); err != nil {
		return err
	}
	// A message the producer refuses for its size fails every transaction it is in: refused
	// here, for good, as the idempotent Producer's Write refuses it.
	limit := t.maxMessageBytes()
	for i := range msgs {
		if size := msgs[i].toSarama("").ByteSize(2); limit > 0 && size > limit {
			return stream.Permanent(fmt.Errorf("kafka: exactly-once producer: a message of %d bytes for %q exceeds the producer's MaxMessageBytes (%d)", size, msgs[i].Topic, limit))
		}
	}
	for _, m := range msgs {
		if len(t.seen) > 0 {
			d := digestOf(m.Topic, m.Key, m.Value, m.Headers)
			if n := t.seen[d]; n > 0 {
				if n == 1 {
					delete(t.seen, d)
				} else {
					t.seen[d] = n - 1
				}
				t.dropped.Add(1)
				continue
			}
		}
		t.pending = append(t.pending, pendingMsg{m: m, sent: sent})
	}
	return nil
}

// maxMessageBytes returns the producer's Producer.MaxMessageBytes (after the user's tune), or
// 0 if the configuration cannot be made. t.mu is held.
func (t *txn) maxMessageBytes() int {
	if t.maxMsg == 0 {
		if sc, err := t.cfg.sarama(roleProducer); err == nil {
			if t.tune != nil {
				t.tune(sc)
			}
			t.maxMsg = sc.Producer.MaxMessageBytes
		}
	}
	return t.maxMsg
}

// poison makes every later commit fail with err, kept as a permanent error, and drops the
// pending messages: none of them may be committed any more. A commit under way ends first.
func (t *txn) poison(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == nil {
		t.err = stream.Permanent(err)
	}
	clear(t.pending)
	t.pending = t.pending[:0]
}

// broken reports whether the transaction failed for good (poison, or a commit's permanent
// error): commits fail from then on.
func (t *txn) broken() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err != nil
}

// pendingCount returns how many messages wait for a commit.
func (t *txn) pendingCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// commit produces the pending messages and commits the offsets that build returns in one
// transaction. build runs with the transaction's lock held, after the producer connected:
// every pending message was added before it, so it was made from records pushed before it
// ran. On an error the transaction is aborted and the messages stay pending for the next
// commit; an error that leaves the producer unusable (fenced, a stale group generation) is
// returned wrapping ErrTransaction and kept.
//
// A transaction with messages always commits offsets (build(true): those of every owned
// partition, the same ones again if they did not move), since the coordinator checks the
// group generation only with the offsets: messages committed without them would pass for a
// member that the group left behind, after the partition's next owner read its output back,
// and the next owner's replay would write them again. Without an offset to send (no
// partition owned) the messages stay pending.
//
// committed, when not nil, runs after a successful transaction with the lock still held, so
// that the next commit sees what this one committed (the Source notes each partition's
// committed offset there: noted after the lock was released, a commit waiting for it sent
// the same offsets again, in a transaction of its own).
func (t *txn) commit(ctx context.Context, build func(fence bool) []txnOffset, committed func()) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return t.err
	}
	if err := t.ready(ctx); err != nil {
		return err
	}
	offs := build(len(t.pending) > 0)
	if len(offs) == 0 {
		return nil
	}
	msgs := make([]*sarama.ProducerMessage, len(t.pending))
	for i := range t.pending {
		msgs[i] = t.pending[i].m.toSarama("")
	}
	done := make(chan error, 1)
	go func() { done <- t.run(msgs, offs) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// The transaction goes on and its outcome is unknown: nothing later may commit
		// before it ended, so the producer is given up and the pipeline stops.
		t.err = stream.Permanent(fmt.Errorf("%w: stopped while committing: %w", ErrTransaction, ctx.Err()))
		return ctx.Err()
	}
	if err != nil {
		return t.failed(err)
	}
	ends := maps0(t.snap.Load())
	for i, m := range msgs {
		tp := topicPart{m.Topic, m.Partition}
		if m.Offset+1 > ends[tp] {
			ends[tp] = m.Offset + 1
		}
		t.pending[i].sent.Add(1)
	}
	t.snap.Store(&ends)
	clear(t.pending)
	t.pending = t.pending[:0]
	if committed != nil {
		committed()
	}
	return nil
}

func maps0(o *outputs) outputs {
	out := outputs{}
	if o != nil {
		for k, v := range *o {
			out[k] = v
		}
	}
	return out
}

// run is one transaction.
func (t *txn) run(msgs []*sarama.ProducerMessage, offs []txnOffset) error {
	if err := t.prod.BeginTxn(); err != nil {
		return t.cfg.notAuthorized(err, access{txnID: t.id})
	}
	if len(msgs) > 0 {
		if err := t.prod.SendMessages(msgs); err != nil {
			var perrs sarama.ProducerErrors
			if errors.As(err, &perrs) {
				first := t.cfg.notAuthorized(perrs[0].Err, access{topics: []string{perrs[0].Msg.Topic}, txnID: t.id, write: true})
				return fmt.Errorf("kafka: produce: %d of %d messages failed, first: %w", len(perrs), len(msgs), first)
			}
			return fmt.Errorf("kafka: produce: %w", err)
		}
	}
	// One set of offsets per group session: the coordinator checks each against its
	// generation, which fences a member that a rebalance left behind (KIP-447).
	bySess := map[sarama.ConsumerGroupSession]map[string][]*sarama.PartitionOffsetMetadata{}
	var order []sarama.ConsumerGroupSession
	for _, o := range offs {
		m := bySess[o.sess]
		if m == nil {
			m = map[string][]*sarama.PartitionOffsetMetadata{}
			bySess[o.sess] = m
			order = append(order, o.sess)
		}
		meta := o.meta
		m[o.topic] = append(m[o.topic], &sarama.PartitionOffsetMetadata{Partition: o.part, Offset: o.off, Metadata: &meta, LeaderEpoch: -1})
	}
	for _, sess := range order {
		gm := &sarama.ConsumerGroupMetadata{GroupID: t.group, GenerationID: sess.GenerationID(), MemberID: sess.MemberID()}
		if t.instanceID != "" {
			gm.GroupInstanceID = &t.instanceID
		}
		if err := t.prod.AddOffsetsToTxnWithGroupMetadata(bySess[sess], gm); err != nil {
			return fmt.Errorf("kafka: add offsets to transaction: %w", t.cfg.notAuthorized(err, access{group: t.group, txnID: t.id}))
		}
	}
	if err := t.prod.CommitTxn(); err != nil {
		return fmt.Errorf("kafka: commit transaction: %w", t.cfg.notAuthorized(err, access{txnID: t.id}))
	}
	return nil
}

// close drops a Producer's use; the last one closes the producer. Messages that wait for a
// commit are dropped: no checkpoint covers them, so a restart makes them again.
func (t *txn) close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.users--; t.users > 0 || t.closed {
		return nil
	}
	t.closed = true
	if n := len(t.pending); n > 0 {
		t.log.Info("kafka: exactly-once: output that no commit covers is dropped; a restart makes it again", "messages", n)
	}
	t.pending = nil
	if t.prod == nil {
		return nil
	}
	err := t.prod.Close()
	if cerr := t.client.Close(); cerr != nil && !errors.Is(cerr, sarama.ErrClosedClient) {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("kafka: transactional producer close: %w", err)
	}
	return nil
}
