// The Source: construction, partition ids, stats, Run (joining the consumer group, riding
// out outages, watching for deleted topics) and Commit. The claim loop is in claim.go, the
// ways a Source ends its input in bounded.go and caughtup_monitor.go, its checks of topics,
// group and ACLs in source_checks.go.

package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/fleetstream/fleetstream/internal/backoff"
	"github.com/fleetstream/fleetstream/internal/lograte"
	"github.com/fleetstream/fleetstream/stream"
)

// Partition ids: the pipeline's partition id of (topic i of Config.Topics, partition p) is
// i<<16 | p, so a single-topic source uses Kafka's partition numbers unchanged and ids are the
// same on every instance and across restarts.
const (
	partitionBits = 16
	maxTopics     = 1<<(31-partitionBits) - 1
)

// ErrRunTwice is returned by Run when the Source already ran.
var ErrRunTwice = errors.New("kafka: Source.Run called twice")

// Source consumes Kafka topics as a member of a consumer group and feeds a pipeline. It is a
// stream.Source: see the package documentation for delivery, rebalancing, backpressure and
// dead letters. A Source runs once.
type Source[T any] struct {
	cfg    Config
	codec  Codec[T]
	o      sourceOptions
	log    *slog.Logger
	topics map[string]int
	ran    atomic.Bool
	// partitions is the number of partitions of the Source's topics, once Run looked them up.
	partitions atomic.Int64

	// records and bytes count what the claims received, a run of fetched records at a time
	// (claimLoop.count); readAny is set at the first record (logged at Debug).
	records, bytes, deadLettered atomic.Int64
	readAny                      atomic.Bool
	deadByReason                 sync.Map // reason -> *atomic.Int64
	// dlqLog lets the first dead letters be logged one by one, then one line per interval
	// with the count, so a flood of bad input does not drown the log (DeadLettered counts all).
	// groupLog does the same for the consumer group's errors (groupErrors).
	dlqLog, groupLog *lograte.Limiter

	// reach is whether the cluster answers: when the Source last found it unreachable.
	reach reachability

	// cancel stops Run with a cause; fatal is the error that stopped it (see fail).
	cancel context.CancelCauseFunc
	fatal  atomic.Pointer[error]

	// uncovered: the caught-up check found a partition of the topics that no member owns
	// (logged once until the group covers them again).
	uncovered atomic.Bool
	// members is the group's membership as the caught-up looks last saw it (groupCovers;
	// the monitor's goroutine only).
	members membership
	// member is the Source's member id in the group (string), set when a session begins.
	member atomic.Value
	// lost counts records deleted before they were read (WithAcceptDataLoss); endSession
	// ends the current group session (Run joins again).
	lost       atomic.Int64
	endSession atomic.Pointer[context.CancelFunc]
	// readAt is when a partition's read offset last moved (noteRead), as time since epoch,
	// for the caught-up monitor: its idle time counts from the last records read, not from
	// the look that saw them.
	readAt atomic.Int64
	epoch  time.Time

	// eos is the exactly-once transaction, made when a Producer binds to the Source
	// (WithExactlyOnce), before Run.
	eos     atomic.Pointer[txn]
	eosOnce sync.Once

	mu    sync.Mutex
	owned map[int32]*partition
	// announced are the partitions handed to the pipeline (handler.register) whose claim
	// has not registered them in owned yet, and early the positions the pipeline committed
	// for them meanwhile, marked once the claim starts (see Commit).
	announced map[int32]bool
	early     map[int32]stream.Position
	bases     map[int32]resumed   // exactly once: each claim's committed offset, checkpoint and read-back bound
	starts    map[int32]startNote // what the group had committed, for the claim's log line (start.go)
	ends      map[int32]int64     // bounded mode: end offset by partition id
	finished  map[int32]bool      // bounded mode: partitions read to their end
	ended     bool                // bounded mode, WithEndWhenCaughtUp: the input was closed
	caughtUp  *caughtUpMember     // WithEndWhenCaughtUp: the Source's part of the option
	progress  chan struct{}       // bounded mode: a partition finished

	// committing is the sessions whose commit runs in the background (see Commit).
	commitMu   sync.Mutex
	committing map[sarama.ConsumerGroupSession]*bgCommit
	commits    sync.WaitGroup // the background commits running
	// commitConn is the client the commits go over (commit_own.go), guarded by ownMu.
	ownMu      sync.Mutex
	commitConn commitConn
}

var (
	_ stream.Source[int]                      = (*Source[int])(nil)
	_ stream.InputIdentifier                  = (*Source[int])(nil)
	_ interface{ Stats() stream.SourceStats } = (*Source[int])(nil)
	_ sarama.ConsumerGroupHandler             = (*handler[int])(nil)
)

// NewSource returns a Source that decodes with codec. cfg must name brokers, a group and
// topics. Nothing connects before Run.
func NewSource[T any](cfg Config, codec Codec[T], opts ...SourceOption) (*Source[T], error) {
	o := sourceOptions{common: common{logger: slog.New(slog.DiscardHandler)}}
	nils := applyOpts(opts, func(opt SourceOption) { opt.applySource(&o) })
	errs := append(o.errs, nils...)
	if err := cfg.validate(roleConsumer); err != nil {
		errs = append(errs, err)
	}
	if codec == nil {
		errs = append(errs, invalid("codec", "nil"))
	}
	errs = append(errs, dlqNames(&cfg, &o)...)
	if err := boundedAndCaughtUp(&o); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.Brokers = slices.Clone(cfg.Brokers)
	cfg.Topics = slices.Clone(cfg.Topics)
	s := &Source[T]{
		cfg:       cfg,
		codec:     codec,
		o:         o,
		log:       o.logger.With("component", "kafka.Source", "group", cfg.Group),
		topics:    make(map[string]int, len(cfg.Topics)),
		owned:     make(map[int32]*partition),
		announced: make(map[int32]bool),
		early:     make(map[int32]stream.Position),
		ends:      make(map[int32]int64),
		finished:  make(map[int32]bool),
		bases:     make(map[int32]resumed),
		starts:    make(map[int32]startNote),
		progress:  make(chan struct{}, 1),
		epoch:     time.Now(),
		dlqLog:    lograte.New(10, 10*time.Second),
		groupLog:  lograte.New(groupLogFirst, groupLogEvery),
	}
	for i, t := range cfg.Topics {
		s.topics[t] = i
	}
	if o.caughtUp != nil {
		s.caughtUp = o.caughtUp.join()
	}
	return s, nil
}

// InputIdentity implements stream.InputIdentifier: the Source's topics, in the order of
// Config.Topics, which numbers their partitions' ids (PartitionID). A repartition's
// checkpoint records them, so that a pipeline started on another topic under the same name
// (consumer group) stops with stream.ErrInputChanged instead of dropping the new topic's
// records as copies of the old one's.
func (s *Source[T]) InputIdentity() []string { return slices.Clone(s.cfg.Topics) }

// PartitionID returns the pipeline partition id of a Kafka topic-partition, or -1 for a
// topic the Source does not read.
func (s *Source[T]) PartitionID(topic string, partition int32) int32 {
	i, ok := s.topics[topic]
	if !ok || partition < 0 || partition >= 1<<partitionBits {
		return -1
	}
	return int32(i)<<partitionBits | partition
}

// TopicPartition is the inverse of PartitionID.
func (s *Source[T]) TopicPartition(id int32) (topic string, partition int32) {
	i := int(id >> partitionBits)
	if id < 0 || i >= len(s.cfg.Topics) {
		return "", -1
	}
	return s.cfg.Topics[i], id & (1<<partitionBits - 1)
}

// Origin maps the Source's partition id (PartitionID) back to the Kafka topic and partition
// it stands for, so that records dead-lettered further down a pipeline (late records, say)
// can name their real origin. ok is false for an id that no topic of the Source maps to.
// The pipeline's partition ids (a window result's or late record's Partition) are the
// Source's own only when it is the pipeline's first source (the first stream.From);
// stream.Pipeline.Origin maps the pipeline's ids of every source.
func (s *Source[T]) Origin(part int32) (topic string, partition int32, ok bool) {
	topic, partition = s.TopicPartition(part)
	return topic, partition, topic != ""
}

// DeadLettered returns how many records went to the dead-letter output.
func (s *Source[T]) DeadLettered() int64 { return s.deadLettered.Load() }

// countDeadLetter counts a dead letter by its reason.
func (s *Source[T]) countDeadLetter(reason string) {
	c, ok := s.deadByReason.Load(reason)
	if !ok {
		c, _ = s.deadByReason.LoadOrStore(reason, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(1)
}

// Stats reports the records and bytes consumed and, for every partition this instance owns,
// by "topic/partition": its lag (the high-water mark minus the committed offset), the offset
// after the last record read (pushed into the pipeline's input or dead-lettered) and the
// high-water mark. The mark is the last fetch's, or, while the pipeline is blocked and the
// claim has stopped fetching, one listed from the broker every two seconds: the lag grows with
// the backlog during an output outage instead of freezing.
func (s *Source[T]) Stats() stream.SourceStats {
	st := stream.SourceStats{Records: s.records.Load(), Bytes: s.bytes.Load(), DeadLetters: s.deadLettered.Load()}
	st.FailingSince, st.LastError = s.reach.state()
	s.deadByReason.Range(func(k, v any) bool {
		if st.DeadLettersByReason == nil {
			st.DeadLettersByReason = make(map[string]int64)
		}
		st.DeadLettersByReason[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Lag = make(map[string]int64, len(s.owned))
	st.Read = make(map[string]int64, len(s.owned))
	st.End = make(map[string]int64, len(s.owned))
	for _, p := range s.owned {
		hwm := p.highWater()
		p.mu.Lock()
		c := p.marks.committed
		p.mu.Unlock()
		if c < 0 || hwm < c {
			c = hwm // nothing committed yet and nothing known: no lag to report
		}
		name := p.topic + "/" + strconv.Itoa(int(p.part))
		st.Lag[name] = hwm - c
		if read := p.read.Load(); read >= 0 { // -1: nothing read, from a start not resolved yet
			st.Read[name] = read
		}
		st.End[name] = hwm
	}
	return st
}

// readToEnd reports whether every partition this instance owns was read to its high-water
// mark as of its last fetch (see claimLoop.noteReadToEnd), and none handed to the pipeline
// waits for its claim to start (a rebalance in progress). A partition never written to (no
// committed offset, high-water mark 0) counts as read to its end. One not read yet whose
// records all expired (no committed offset, its start unknown until a record comes) or whose
// log ends with a transaction marker (sarama does not hand those over) keeps it false: the
// last batch of a catch-up then waits the tenth of the interval, as it did before.
func (s *Source[T]) readToEnd() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.announced) > 0 {
		return false
	}
	for _, p := range s.owned {
		read, hwm := p.read.Load(), p.claim.HighWaterMarkOffset()
		if read < 0 && hwm == 0 {
			continue // never written to
		}
		if read < 0 || read < hwm {
			return false
		}
	}
	return true
}

// Run joins the consumer group and feeds in until ctx ends, or, in bounded mode, until every
// partition was read to its end offset and the pipeline committed the final batch. It
// returns an error before anything is consumed if the cluster cannot be reached,
// authentication fails, a source topic does not exist, or the ACLs deny the topics, the group
// or the transactional id (ErrNotAuthorized); once running, it rides out broker outages and
// rebalances, and stops with an error only when a source topic is deleted, the ACLs refuse a
// fetch or a commit, the brokers refuse the group session's timeout
// (Rebalance.SessionTimeout), or the dead-letter output fails for good.
func (s *Source[T]) Run(ctx context.Context, in *stream.Input[T]) error {
	if !s.ran.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	sc, err := s.cfg.sarama(roleConsumer)
	if err != nil {
		return err
	}
	if id := s.cfg.Rebalance.InstanceID; id != "" {
		release, err := claimInstance(s.cfg.Group, id)
		if err != nil {
			return err
		}
		defer release()
	}
	s.consumerOptions(sc)
	if s.o.tune != nil {
		s.o.tune(sc)
	}
	// Consumers never create topics: a metadata request for a missing topic must fail, not
	// make the broker create an empty one that nobody produces to.
	sc.Metadata.AllowAutoTopicCreation = false
	warnInsecure(s.log, sc)
	client, err := sarama.NewClient(s.cfg.Brokers, sc)
	if err != nil {
		return connectError(&s.cfg, err)
	}
	defer func() { _ = client.Close() }()
	if err := s.checkTopics(ctx, client); err != nil {
		return err
	}
	if err := s.checkGroup(ctx, client); err != nil {
		return err
	}
	if err := s.startAtEnds(ctx, client); err != nil {
		return err
	}
	if t := s.eos.Load(); t != nil {
		if err := s.checkTransactionalID(ctx, client, t.id); err != nil {
			return err
		}
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s.cancel = cancel

	dlq := s.o.dlqSink
	if dlq == nil && !s.o.exchange {
		d, err := NewDeadLetterSink(s.cfg, s.o.dlqTopic, WithLogger(s.o.logger), WithSaramaConfig(s.o.tune))
		if err != nil {
			return err
		}
		defer func() { _ = d.Close(context.WithoutCancel(ctx)) }()
		dlq = d
	}
	if d, ok := dlq.(*DeadLetterSink); ok {
		// Size the producer to the dead-letter topics (or the broker) before anything runs.
		topics := make([]string, len(s.cfg.Topics))
		for i, t := range s.cfg.Topics {
			topics[i] = t + ".dlq"
		}
		if err := d.Prepare(ctx, topics...); err != nil {
			return err
		}
	}

	if s.o.bounded {
		if err := s.loadEnds(ctx, client); err != nil {
			return err
		}
	}
	purging := new(atomic.Bool)
	purging.Store(s.o.exchange && s.o.purge > 0)
	s.useOwnClient(sc)
	defer s.closeOwnClient() // after the commits are done
	defer func() {           // after the group's last commit (group.Close), before client.Close
		s.waitCommits(5 * time.Second)
		if purging.Load() {
			s.purge(client)
		}
	}()
	group, err := sarama.NewConsumerGroupFromClient(s.cfg.Group, client)
	if err != nil {
		return fmt.Errorf("kafka: consumer group %q: %w", s.cfg.Group, err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() { _ = group.Close() }() // leaves the group and flushes commits; before wg.Wait
	defer cancel(nil)                    // stops the monitors; before wg.Wait
	wg.Go(func() { s.groupErrors(group.Errors(), client) })
	wg.Go(func() { s.monitorTopics(runCtx, client) })
	wg.Go(func() { s.refreshEnds(runCtx, sc, client) })
	if purging.Load() {
		wg.Go(func() { s.purgeEvery(runCtx, client, purging) })
	}
	if s.o.bounded {
		wg.Go(func() { s.monitorBounded(runCtx, client, in) })
	}
	if s.o.caughtUp != nil {
		wg.Go(func() {
			looks, done := s.lookClient(sc, client)
			defer done()
			s.monitorCaughtUp(runCtx, looks, in)
		})
	}

	h := &handler[T]{
		s:          s,
		client:     client,
		in:         in,
		runCtx:     runCtx,
		dlq:        dlq,
		revokeWait: s.cfg.rebalance().Timeout * 4 / 5,
		// 4,096 records with the default channel: a partition's share of a batch or two,
		// so that its claim need not pause fetching while a batch runs (ConsumeClaim).
		hold:      32 * sc.ChannelBufferSize,
		holdBytes: holdBytes(sc),
	}
	s.joinLate(runCtx.Done())
	attempt := 0
	for runCtx.Err() == nil {
		if t := s.eos.Load(); t != nil {
			// Fence a killed predecessor before the session fetches the group's offsets:
			// the offsets of the transaction it left open would hold them until the broker
			// timed it out (txn.fence). Failing, the session waits as before.
			if err := t.fence(runCtx); err != nil {
				if stream.IsPermanent(err) {
					return err
				}
				s.log.Warn("kafka: starting the exactly-once producer failed", "err", redact(&s.cfg, err))
			}
		}
		sessCtx, endSession := context.WithCancel(runCtx)
		s.endSession.Store(&endSession)
		err := group.Consume(sessCtx, s.cfg.Topics, h)
		endSession()
		if runCtx.Err() != nil || s.fatal.Load() != nil {
			break
		}
		if err == nil {
			attempt = 0
			continue
		}
		var stop bool
		if err, stop = s.consumeError(err); stop {
			return err
		}
		attempt++
		wait := backoff.Delay(250*time.Millisecond, 5*time.Second, attempt)
		s.reach.failed(redact(&s.cfg, err))
		s.log.Warn("kafka: consume failed, retrying", "err", redact(&s.cfg, err), "backoff", wait)
		backoff.Sleep(runCtx.Done(), wait)
	}
	if err := s.fatal.Load(); err != nil {
		return *err
	}
	s.mu.Lock()
	ended := s.ended
	s.mu.Unlock()
	if ended {
		return nil
	}
	return ctx.Err()
}

// PartitionCount returns the number of partitions of the Source's topics, summed over its
// topics, as the brokers reported them when Run started (0 before), and grown as partitions
// are added while it runs, but for a bounded Source, which reads only those present at its
// start (WithBounded). It implements
// stream.PartitionCounter: a repartition sends it with its watermark marks, so that a
// downstream partition waits for every upstream partition, including those that other
// instances of the pipeline own.
func (s *Source[T]) PartitionCount() int { return int(s.partitions.Load()) }

// fail stops Run with err (the first one wins).
func (s *Source[T]) fail(err error) {
	err = redact(&s.cfg, err)
	if s.fatal.CompareAndSwap(nil, &err) {
		s.log.Error("kafka: source stopped", "err", err)
		s.cancel(err)
	}
}
