package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
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

	records, bytes, deadLettered atomic.Int64
	// dlqLog lets the first dead letters be logged one by one, then one line per interval
	// with the count, so a flood of bad input does not drown the log (DeadLettered counts all).
	dlqLog *lograte.Limiter

	// cancel stops Run with a cause; fatal is the error that stopped it (see fail).
	cancel context.CancelCauseFunc
	fatal  atomic.Pointer[error]

	mu       sync.Mutex
	owned    map[int32]*partition
	ends     map[int32]int64 // bounded mode: end offset by partition id
	finished map[int32]bool  // bounded mode: partitions read to their end
	ended    bool            // bounded mode: the input was closed
	progress chan struct{}   // bounded mode: a partition finished
}

var (
	_ stream.Source[int]                      = (*Source[int])(nil)
	_ interface{ Stats() stream.SourceStats } = (*Source[int])(nil)
	_ sarama.ConsumerGroupHandler             = (*handler[int])(nil)
)

// partition is the state of one claimed partition.
type partition struct {
	topic string
	part  int32
	id    int32
	sess  sarama.ConsumerGroupSession
	claim sarama.ConsumerGroupClaim
	end   int64 // bounded mode: stop before this offset; -1 unbounded

	// pushedNext is the offset after the last record pushed into the input. Owned by the
	// claim's goroutine.
	pushedNext int64
	// read is the offset after the last record pushed into the input or dead-lettered, for
	// the caught-up monitor (WithEndWhenCaughtUp).
	read atomic.Int64

	mu sync.Mutex
	// committed is the offset last marked for commit (or where the claim started), and meta
	// the pipeline checkpoint marked with it (stream.Position.Meta).
	committed int64
	meta      string
	// A run of dead-lettered offsets right after pushedNext: the pipeline never sees them, so
	// a commit of runStart (everything pushed is done) may go on to runEnd.
	runActive        bool
	runStart, runEnd int64
}

// NewSource returns a Source that decodes with codec. cfg must name brokers, a group and
// topics. Nothing connects before Run.
func NewSource[T any](cfg Config, codec Codec[T], opts ...SourceOption) (*Source[T], error) {
	o := sourceOptions{common: common{logger: slog.New(slog.DiscardHandler)}}
	for _, opt := range opts {
		opt.applySource(&o)
	}
	errs := o.errs
	if err := cfg.validate(roleConsumer); err != nil {
		errs = append(errs, err)
	}
	if codec == nil {
		errs = append(errs, invalid("codec", "nil"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.Brokers = slices.Clone(cfg.Brokers)
	cfg.Topics = slices.Clone(cfg.Topics)
	s := &Source[T]{
		cfg:      cfg,
		codec:    codec,
		o:        o,
		log:      o.logger.With("component", "kafka.Source", "group", cfg.Group),
		topics:   make(map[string]int, len(cfg.Topics)),
		owned:    make(map[int32]*partition),
		ends:     make(map[int32]int64),
		finished: make(map[int32]bool),
		progress: make(chan struct{}, 1),
		dlqLog:   lograte.New(10, 10*time.Second),
	}
	for i, t := range cfg.Topics {
		s.topics[t] = i
	}
	return s, nil
}

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

// Origin maps the pipeline's partition id back to the Kafka topic and partition it stands
// for, so that records dead-lettered further down a pipeline (late records, say) can name
// their real origin. ok is false for an id that no topic of the Source maps to.
func (s *Source[T]) Origin(part int32) (topic string, partition int32, ok bool) {
	topic, partition = s.TopicPartition(part)
	return topic, partition, topic != ""
}

// DeadLettered returns how many records went to the dead-letter output.
func (s *Source[T]) DeadLettered() int64 { return s.deadLettered.Load() }

// Stats reports the records and bytes consumed and, for every partition this instance owns,
// its lag: the high-water mark minus the committed offset, by "topic/partition".
func (s *Source[T]) Stats() stream.SourceStats {
	st := stream.SourceStats{Records: s.records.Load(), Bytes: s.bytes.Load(), DeadLetters: s.deadLettered.Load()}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Lag = make(map[string]int64, len(s.owned))
	for _, p := range s.owned {
		hwm := p.claim.HighWaterMarkOffset()
		p.mu.Lock()
		c := p.committed
		p.mu.Unlock()
		if c < 0 || hwm < c {
			c = hwm // nothing committed yet and nothing known: no lag to report
		}
		st.Lag[p.topic+"/"+strconv.Itoa(int(p.part))] = hwm - c
	}
	return st
}

// Run joins the consumer group and feeds in until ctx ends, or, in bounded mode, until every
// partition was read to its end offset and the pipeline committed the final batch. It
// returns an error before anything is consumed if the cluster cannot be reached,
// authentication fails or a source topic does not exist; once running, it rides out broker
// outages and rebalances, and stops with an error only when a source topic is deleted or the
// dead-letter output fails for good.
func (s *Source[T]) Run(ctx context.Context, in *stream.Input[T]) error {
	if !s.ran.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	sc, err := s.cfg.sarama(roleConsumer)
	if err != nil {
		return err
	}
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

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s.cancel = cancel

	dlq := s.o.dlqSink
	if dlq == nil {
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
		if err := s.loadEnds(client); err != nil {
			return err
		}
	}
	group, err := sarama.NewConsumerGroupFromClient(s.cfg.Group, client)
	if err != nil {
		return fmt.Errorf("kafka: consumer group %q: %w", s.cfg.Group, err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() { _ = group.Close() }() // leaves the group and flushes commits; before wg.Wait
	defer cancel(nil)                    // stops the monitors; before wg.Wait
	wg.Go(func() {
		for err := range group.Errors() {
			s.log.Warn("kafka: consumer group error", "err", redact(&s.cfg, err))
		}
	})
	wg.Go(func() { s.monitorTopics(runCtx, client) })
	if s.o.bounded {
		wg.Go(func() { s.monitorBounded(runCtx, client, in) })
	}
	if s.o.caughtUp > 0 {
		wg.Go(func() { s.monitorCaughtUp(runCtx, client, in, s.o.caughtUp) })
	}

	h := &handler[T]{
		s:          s,
		client:     client,
		in:         in,
		runCtx:     runCtx,
		dlq:        dlq,
		revokeWait: s.cfg.rebalance().Timeout * 4 / 5,
		hold:       4 * sc.ChannelBufferSize,
		holdBytes:  holdBytes(sc),
	}
	attempt := 0
	for runCtx.Err() == nil {
		err := group.Consume(runCtx, s.cfg.Topics, h)
		if runCtx.Err() != nil {
			break
		}
		if err == nil {
			attempt = 0
			continue
		}
		if errors.Is(err, sarama.ErrClosedConsumerGroup) {
			return fmt.Errorf("kafka: consume: %w", err)
		}
		if errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
			return connectError(&s.cfg, err)
		}
		attempt++
		wait := backoff.Delay(250*time.Millisecond, 5*time.Second, attempt)
		s.log.Warn("kafka: consume failed, retrying", "err", redact(&s.cfg, err), "backoff", wait)
		t := time.NewTimer(wait)
		select {
		case <-runCtx.Done():
		case <-t.C:
		}
		t.Stop()
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

// fail stops Run with err (the first one wins).
func (s *Source[T]) fail(err error) {
	err = redact(&s.cfg, err)
	if s.fatal.CompareAndSwap(nil, &err) {
		s.log.Error("kafka: source stopped", "err", err)
		s.cancel(err)
	}
}

// errTopicMissing is wrapped by the errors of a missing or deleted source topic.
var errTopicMissing = sarama.ErrUnknownTopicOrPartition

// checkTopics fails unless every source topic exists, confirmed by the broker.
func (s *Source[T]) checkTopics(ctx context.Context, client sarama.Client) error {
	done := make(chan error, 1)
	go func() {
		for _, t := range s.cfg.Topics {
			if err := client.RefreshMetadata(t); err != nil {
				if errors.Is(err, errTopicMissing) {
					done <- fmt.Errorf("kafka: source topic %q does not exist (a Source never creates topics; create it first, e.g. with kafka.EnsureTopic): %w", t, err)
				} else {
					done <- fmt.Errorf("kafka: metadata of source topic %q: %w", t, redact(&s.cfg, err))
				}
				return
			}
		}
		done <- nil
	}()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-done:
		return err
	}
}

// topicCheckEvery is how often a running Source asks the broker whether its topics still
// exist.
const topicCheckEvery = 5 * time.Second

// monitorTopics stops the Source when the broker says, at two checks in a row, that a source
// topic no longer exists (one answer could be a broker still loading its metadata after a
// restart). A broker that cannot be reached says nothing: outages are ridden out.
func (s *Source[T]) monitorTopics(ctx context.Context, client sarama.Client) {
	t := time.NewTicker(topicCheckEvery)
	defer t.Stop()
	missing := make(map[string]bool)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, topic := range s.cfg.Topics {
			err := client.RefreshMetadata(topic)
			gone := errors.Is(err, errTopicMissing)
			if gone && missing[topic] && ctx.Err() == nil {
				s.fail(fmt.Errorf("kafka: source topic %q was deleted while the Source ran: %w", topic, err))
				return
			}
			missing[topic] = gone
		}
	}
}

// Commit marks the acknowledged positions for commit and commits them synchronously through
// the consumer group session. Positions of partitions this instance no longer owns are
// ignored: their new owner commits them.
func (s *Source[T]) Commit(_ context.Context, pos []stream.Position) error {
	var sessions []sarama.ConsumerGroupSession
	s.mu.Lock()
	for _, x := range pos {
		p := s.owned[x.Partition]
		if p == nil {
			continue
		}
		if p.mark(x.Offset, x.Meta) && !slices.Contains(sessions, p.sess) {
			sessions = append(sessions, p.sess)
		}
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		// Errors reach the group's error channel (logged); the offsets stay marked and the
		// next commit sends them again.
		sess.Commit()
	}
	return nil
}

// mark records off (the pipeline's next offset) and the pipeline's checkpoint for commit,
// the offset extended over a run of dead-lettered offsets that follows it. A new checkpoint
// at the same offset is marked too: it moves an operator's replay start. It reports whether
// anything was marked.
func (p *partition) mark(off int64, meta string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.runActive && off == p.runStart {
		off = p.runEnd
	}
	switch {
	case off > p.committed:
		p.sess.MarkOffset(p.topic, p.part, off, meta)
	case off == p.committed && meta != p.meta:
		// sarama's MarkOffset ignores an offset it has; ResetOffset takes the same offset
		// with new metadata.
		p.sess.ResetOffset(p.topic, p.part, off, meta)
	default:
		return false
	}
	p.committed, p.meta = off, meta
	return true
}

// loadEnds reads the end offset of every partition at start (bounded mode).
func (s *Source[T]) loadEnds(client sarama.Client) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ti, topic := range s.cfg.Topics {
		parts, err := client.Partitions(topic)
		if err != nil {
			return fmt.Errorf("kafka: partitions of %q: %w", topic, err)
		}
		for _, part := range parts {
			newest, err := client.GetOffset(topic, part, sarama.OffsetNewest)
			if err != nil {
				return fmt.Errorf("kafka: end offset of %s/%d: %w", topic, part, err)
			}
			oldest, err := client.GetOffset(topic, part, sarama.OffsetOldest)
			if err != nil {
				return fmt.Errorf("kafka: start offset of %s/%d: %w", topic, part, err)
			}
			id := int32(ti)<<partitionBits | part
			s.ends[id] = newest
			if newest <= oldest {
				s.finished[id] = true
			}
		}
	}
	return nil
}

func (s *Source[T]) finish(id int32) {
	s.mu.Lock()
	if _, ok := s.ends[id]; ok {
		s.finished[id] = true
	}
	s.mu.Unlock()
	select {
	case s.progress <- struct{}{}:
	default:
	}
}

// monitorBounded closes the input once every partition was read to its end offset, by this
// instance or (per the group's committed offsets) by another member.
func (s *Source[T]) monitorBounded(ctx context.Context, client sarama.Client, in *stream.Input[T]) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		s.mu.Lock()
		var open map[string][]int32
		for id := range s.ends {
			if s.finished[id] {
				continue
			}
			if _, mine := s.owned[id]; mine {
				open = nil
				break
			}
			if open == nil {
				open = make(map[string][]int32)
			}
			t, p := s.TopicPartition(id)
			open[t] = append(open[t], p)
		}
		done := len(s.finished) == len(s.ends)
		if done {
			s.ended = true
		}
		s.mu.Unlock()
		if done {
			s.log.Info("kafka: bounded input read to its end offsets")
			in.Close()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.progress:
			continue
		case <-tick.C:
		}
		if open != nil {
			// Partitions only other members own: done once the group committed their end.
			committed, err := groupOffsets(client, s.cfg.Group, open)
			if err != nil {
				s.log.Debug("kafka: fetching group offsets", "err", err)
				continue
			}
			s.mu.Lock()
			for id, off := range committed {
				if off >= s.ends[s.PartitionID(id.topic, id.part)] {
					s.finished[s.PartitionID(id.topic, id.part)] = true
				}
			}
			s.mu.Unlock()
		}
	}
}

// monitorCaughtUp closes the input once every partition this instance owns has been read to
// its high-water mark and stayed so for idle (WithEndWhenCaughtUp). The high-water marks are
// the broker's, fetched after the last record was read: during a broker outage the marks
// the consumer last saw are stale, and nothing counts as caught up until the broker answers.
func (s *Source[T]) monitorCaughtUp(ctx context.Context, client sarama.Client, in *stream.Input[T], idle time.Duration) {
	tick := time.NewTicker(min(idle/4, time.Second))
	defer tick.Stop()
	var since time.Time
	var lastRead int64 = -1
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		caught := len(s.owned) > 0
		var read int64
		owned := make([]*partition, 0, len(s.owned))
		for _, p := range s.owned {
			owned = append(owned, p)
			r := p.read.Load()
			read += r
			if r >= 0 && r < p.claim.HighWaterMarkOffset() {
				caught = false
			}
		}
		s.mu.Unlock()
		if read != lastRead {
			// New records since the last look: not idle, however fast they were read.
			caught, lastRead = false, read
		}
		if caught {
			// The consumer's marks say caught up; confirm with marks fetched now.
			caught = s.confirmCaughtUp(client, owned)
		}
		if !caught {
			since = time.Time{}
			continue
		}
		if since.IsZero() {
			since = time.Now()
			continue
		}
		if time.Since(since) < idle {
			continue
		}
		s.mu.Lock()
		if s.fatal.Load() != nil || ctx.Err() != nil {
			s.mu.Unlock()
			return
		}
		s.ended = true
		s.mu.Unlock()
		s.log.Info("kafka: every partition caught up (confirmed by the broker); ending the input", "idle", idle)
		in.Close()
		return
	}
}

// confirmCaughtUp fetches the high-water mark of every partition from its leader and reports
// whether each was read to it. Any failure (a broker outage) means not caught up.
func (s *Source[T]) confirmCaughtUp(client sarama.Client, parts []*partition) bool {
	for _, p := range parts {
		r := p.read.Load()
		if r < 0 {
			// Nothing read yet from a partition without a committed offset: caught up if
			// it holds no records.
			oldest, err := client.GetOffset(p.topic, p.part, sarama.OffsetOldest)
			if err != nil {
				return false
			}
			r = oldest
		}
		hwm, err := client.GetOffset(p.topic, p.part, sarama.OffsetNewest)
		if err != nil {
			s.log.Debug("kafka: high-water mark not confirmed", "topic", p.topic, "partition", p.part, "err", redact(&s.cfg, err))
			return false
		}
		if r < hwm {
			return false
		}
	}
	return true
}

type topicPart struct {
	topic string
	part  int32
}

// groupOffsets fetches a group's committed offsets.
func groupOffsets(client sarama.Client, group string, parts map[string][]int32) (map[topicPart]int64, error) {
	blocks, err := groupCommits(client, group, parts)
	if err != nil {
		return nil, err
	}
	out := make(map[topicPart]int64, len(blocks))
	for tp, b := range blocks {
		out[tp] = b.Offset
	}
	return out, nil
}

// groupCommits fetches a group's committed offsets with their metadata.
func groupCommits(client sarama.Client, group string, parts map[string][]int32) (map[topicPart]stream.Position, error) {
	coord, err := client.Coordinator(group)
	if err != nil {
		return nil, err
	}
	resp, err := coord.FetchOffset(sarama.NewOffsetFetchRequest(client.Config().Version, group, parts))
	if err != nil {
		return nil, err
	}
	out := make(map[topicPart]stream.Position)
	for t, ps := range parts {
		for _, p := range ps {
			if b := resp.GetBlock(t, p); b != nil && b.Err == sarama.ErrNoError && b.Offset >= 0 {
				out[topicPart{t, p}] = stream.Position{Partition: p, Offset: b.Offset, Meta: b.Metadata}
			}
		}
	}
	return out, nil
}

// handler runs the claims of consumer group sessions.
type handler[T any] struct {
	s          *Source[T]
	client     sarama.Client
	in         *stream.Input[T]
	runCtx     context.Context
	dlq        stream.DeadLetterSink
	revokeWait time.Duration
	hold       int   // most records a claim holds fetched but not pushed
	holdBytes  int64 // most bytes of such records
}

// Setup registers every claimed partition with the pipeline before any of them pushes a
// record, so that none can advance the watermark past another's backlog.
//
// Partitions with a committed offset resume with the pipeline checkpoint committed with it
// (stream.Input.Resume), so that every operator replays from its own start.
func (h *handler[T]) Setup(sess sarama.ConsumerGroupSession) error {
	commits, err := groupCommits(h.client, h.s.cfg.Group, sess.Claims())
	if err != nil {
		// Without the checkpoints the replay is still at-least-once, only less exact.
		h.s.log.Warn("kafka: fetching committed checkpoints failed", "err", redact(&h.s.cfg, err))
	}
	var ids []int32
	var resume []stream.Position
	for topic, parts := range sess.Claims() {
		for _, p := range parts {
			id := h.s.PartitionID(topic, p)
			if id < 0 {
				continue
			}
			if c, ok := commits[topicPart{topic, p}]; ok && c.Meta != "" {
				resume = append(resume, stream.Position{Partition: id, Offset: c.Offset, Meta: c.Meta})
				continue
			}
			ids = append(ids, id)
		}
	}
	h.in.Resume(resume...)
	h.in.Assign(ids...)
	return nil
}

func (h *handler[T]) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// ConsumeClaim feeds one partition into the input until the claim is revoked or the session
// ends, then hands the partition back (see release).
func (h *handler[T]) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	s := h.s
	p := s.own(sess, claim)
	if p == nil {
		return nil
	}
	c := &claimLoop[T]{h: h, p: p, sess: sess}
	defer h.release(p)
	h.in.Assign(p.id)
	if p.end >= 0 && (p.pushedNext >= p.end || s.isFinished(p.id)) {
		c.finished = true
		s.finish(p.id)
	}
	pauser, _ := claim.(interface {
		Pause()
		Resume()
	})
	paused := false
	msgs := claim.Messages()
	sessDone := sess.Context().Done()
	defer c.stopRetry()
	for {
		space := h.in.Space()
		blocked := !c.flush()
		if wantPause := blocked || c.finished; wantPause != paused && pauser != nil {
			if wantPause {
				pauser.Pause()
			} else {
				pauser.Resume()
			}
			paused = wantPause
		}
		var recv <-chan *sarama.ConsumerMessage
		if c.room() {
			recv = msgs
		}
		var wait <-chan struct{}
		if blocked {
			wait = space
		}
		var retry <-chan time.Time
		if c.retry != nil {
			retry = c.retry.C
		}
		select {
		case m, ok := <-recv:
			if !ok {
				return nil
			}
			c.receive(m)
			// Take what is already fetched without going round the loop for each record.
			for more := true; more && c.room(); {
				select {
				case m, ok := <-msgs:
					if !ok {
						return nil
					}
					c.receive(m)
				default:
					more = false
				}
			}
			if c.retry == nil && !c.writeDeadLetters() {
				return nil
			}
		case <-retry:
			c.retry = nil
			if !c.writeDeadLetters() {
				return nil
			}
		case <-wait:
		case <-sessDone:
			return nil
		}
	}
}

// own registers a claimed partition.
func (s *Source[T]) own(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) *partition {
	id := s.PartitionID(claim.Topic(), claim.Partition())
	if id < 0 {
		s.log.Error("kafka: claim of an unknown topic-partition", "topic", claim.Topic(), "partition", claim.Partition())
		return nil
	}
	start := claim.InitialOffset()
	if start < 0 {
		start = -1 // resolved from the first record
	}
	p := &partition{
		topic: claim.Topic(), part: claim.Partition(), id: id,
		sess: sess, claim: claim, end: -1,
		pushedNext: start, committed: start,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.o.bounded {
		end, ok := s.ends[id]
		if !ok {
			end = 0 // a partition created after the start is not part of the backfill
		}
		p.end = end
	}
	p.read.Store(start)
	s.owned[id] = p
	s.log.Debug("kafka: partition assigned", "topic", p.topic, "partition", p.part, "offset", start)
	return p
}

func (s *Source[T]) isFinished(id int32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.finished[id]
}

// release hands a partition back after its claim ended: it tells the pipeline (which drops
// the partition's buffered records and state once the batch in flight was acknowledged and
// committed), waits for that within the rebalance timeout, commits, and forgets the partition.
func (h *handler[T]) release(p *partition) {
	s := h.s
	s.mu.Lock()
	ended := s.ended
	s.mu.Unlock()
	if h.runCtx.Err() == nil && !ended {
		done := h.in.Revoke(p.id)
		t := time.NewTimer(h.revokeWait)
		select {
		case <-done:
		case <-t.C:
			s.log.Warn("kafka: pipeline did not release a revoked partition in time; its last batch will be replayed by the next owner",
				"topic", p.topic, "partition", p.part)
		case <-h.runCtx.Done():
		}
		t.Stop()
	}
	s.mu.Lock()
	if s.owned[p.id] == p {
		delete(s.owned, p.id)
	}
	s.mu.Unlock()
	p.sess.Commit()
	s.log.Debug("kafka: partition released", "topic", p.topic, "partition", p.part)
}

// holdBytes is the most bytes of fetched records a claim holds before it pushes them.
func holdBytes(sc *sarama.Config) int64 {
	return max(2*int64(sc.Consumer.Fetch.Default), 4<<20)
}

// claimLoop is the per-claim state owned by its goroutine.
type claimLoop[T any] struct {
	h        *handler[T]
	p        *partition
	sess     sarama.ConsumerGroupSession
	msg      Message
	queue    []stream.Record[T] // decoded, not yet in the input
	queued   int64              // bytes of queue and pending
	skips    []int64            // dead-lettered offsets among or after queue, ascending
	pending  []stream.DeadLetter
	retry    *time.Timer // set while a failed dead-letter write waits to be retried
	attempt  int         // failed attempts of the pending dead letters
	finished bool
}

// room reports whether the claim may take more fetched records.
func (c *claimLoop[T]) room() bool {
	return len(c.queue)+len(c.skips)+len(c.pending) < c.h.hold && c.queued < c.h.holdBytes
}

// receive decodes one fetched record into the queue, or, if it cannot be decoded or its event
// time is unusable (stream.Input.CheckEventTime), into the pending dead letters.
func (c *claimLoop[T]) receive(m *sarama.ConsumerMessage) {
	p, s := c.p, c.h.s
	if p.end >= 0 && m.Offset >= p.end {
		return // past the backfill's end
	}
	if p.pushedNext < 0 {
		// No committed offset: start counting from the first record.
		p.pushedNext = m.Offset
		p.mu.Lock()
		p.committed = m.Offset
		p.mu.Unlock()
	}
	size := len(m.Key) + len(m.Value)
	s.records.Add(1)
	s.bytes.Add(int64(size))
	c.queued += int64(size)
	c.msg.fromSarama(m)
	v, ts, err := s.codec.Decode(&c.msg)
	if err != nil {
		reason := stream.ReasonDecode
		var inv *InvalidError
		if errors.As(err, &inv) {
			reason = stream.ReasonInvalid
		}
		c.pending = append(c.pending, DeadLetterOf(&c.msg, reason, err))
		return
	}
	if ts.IsZero() {
		ts = m.Timestamp
	}
	if err := c.h.in.CheckEventTime(ts); err != nil {
		// A bad clock must never reach a watermark.
		c.pending = append(c.pending, DeadLetterOf(&c.msg, stream.ReasonEventTime, err))
		return
	}
	c.queue = append(c.queue, stream.Record[T]{Value: v, Partition: p.id, Offset: m.Offset, EventTime: ts, Size: size})
}

// writeDeadLetters writes the pending dead letters. On success their offsets join skips; a
// failure that is not permanent is retried after a backoff (c.retry), while the records
// before them are still pushed. It returns false if the claim must end: the session ended,
// or the dead-letter output failed for good, which stops the Source.
func (c *claimLoop[T]) writeDeadLetters() bool {
	if len(c.pending) == 0 {
		return true
	}
	s := c.h.s
	ctx := c.sess.Context()
	err := c.h.dlq.Write(ctx, c.pending)
	if err == nil {
		for i := range c.pending {
			dl := &c.pending[i]
			c.skips = append(c.skips, dl.Offset)
			c.queued -= int64(len(dl.Key) + len(dl.Value))
			n := s.deadLettered.Add(1)
			if ok, left := s.dlqLog.Allow(time.Now()); ok {
				s.log.Warn("kafka: record dead-lettered", "topic", dl.Topic, "partition", dl.Partition, "offset", dl.Offset,
					"reason", dl.Reason, "err", dl.Err, "not_logged_since_last", left, "dead_letters", n)
			}
		}
		clear(c.pending)
		c.pending = c.pending[:0]
		c.attempt = 0
		return true
	}
	if ctx.Err() != nil {
		return false
	}
	first := &c.pending[0]
	if stream.IsPermanent(err) {
		s.fail(fmt.Errorf("kafka: dead-letter output cannot store the record at %s/%d offset %d (%s): %w",
			first.Topic, first.Partition, first.Offset, first.Reason, err))
		return false
	}
	c.attempt++
	wait := backoff.Delay(100*time.Millisecond, 5*time.Second, c.attempt)
	s.log.Error("kafka: dead-letter write failed, retrying", "topic", first.Topic, "partition", first.Partition, "offset", first.Offset,
		"dead_letters", len(c.pending), "attempt", c.attempt, "backoff", wait, "err", redact(&s.cfg, err))
	c.retry = time.NewTimer(wait)
	return true
}

func (c *claimLoop[T]) stopRetry() {
	if c.retry != nil {
		c.retry.Stop()
		c.retry = nil
	}
}

// flush moves queued records into the input and settles dead-lettered offsets, in offset
// order, up to the first pending (not yet written) dead letter. It returns false if the
// input is full.
func (c *claimLoop[T]) flush() bool {
	stop := int64(math.MaxInt64)
	if len(c.pending) > 0 {
		stop = c.pending[0].Offset
	}
	for len(c.queue) > 0 && c.queue[0].Offset < stop || len(c.skips) > 0 && c.skips[0] < stop {
		bound := stop
		if len(c.skips) > 0 {
			bound = min(bound, c.skips[0])
		}
		lim, _ := slices.BinarySearchFunc(c.queue, bound, func(r stream.Record[T], off int64) int {
			return cmp.Compare(r.Offset, off)
		})
		if lim > 0 {
			// Push in small chunks and let the other partitions' goroutines in between, so
			// that one partition cannot fill the input alone and stall the watermark.
			lim = min(lim, pushChunk)
			n := c.h.in.TryPushBatch(c.queue[:lim])
			if n > 0 {
				c.pushed(c.queue[n-1].Offset + 1)
				for i := range n {
					c.queued -= int64(c.queue[i].Size)
				}
				clear(c.queue[:n])
				c.queue = c.queue[n:]
				if len(c.queue) == 0 {
					c.queue = c.queue[:0:0]
				}
			}
			if n < lim {
				return false
			}
		}
		if len(c.skips) > 0 && c.skips[0] < stop && (len(c.queue) == 0 || c.queue[0].Offset > c.skips[0]) {
			c.skipped(c.skips[0])
			c.skips = c.skips[1:]
		}
		if lim == pushChunk {
			runtime.Gosched()
		}
	}
	return true
}

// pushChunk is the most records a partition moves into the input at once.
const pushChunk = 128

func (c *claimLoop[T]) pushed(next int64) {
	p := c.p
	p.pushedNext = next
	p.read.Store(next)
	if p.runActive { // only this goroutine writes runActive
		p.mu.Lock()
		p.runActive = false
		p.mu.Unlock()
	}
	c.checkEnd(next)
}

// skipped settles a dead-lettered offset: it joins the run after the last pushed record, and
// if the pipeline already committed everything pushed, the run is committed right away.
func (c *claimLoop[T]) skipped(off int64) {
	p := c.p
	p.read.Store(off + 1)
	p.mu.Lock()
	if !p.runActive {
		p.runActive, p.runStart = true, p.pushedNext
	}
	p.runEnd = off + 1
	direct := p.committed >= p.runStart && p.runEnd > p.committed
	if direct {
		p.committed = p.runEnd
		p.sess.MarkOffset(p.topic, p.part, p.runEnd, p.meta)
	}
	p.mu.Unlock()
	if direct {
		p.sess.Commit()
	}
	c.checkEnd(off + 1)
}

func (c *claimLoop[T]) checkEnd(next int64) {
	if p := c.p; p.end >= 0 && !c.finished && next >= p.end {
		c.finished = true
		c.h.s.finish(p.id)
	}
}
