// The caught-up monitor of WithEndWhenCaughtUp: the looks that tell when every partition of a
// Source's topics stayed read to its high-water mark for the idle time (the option shared by
// a pipeline's Sources is in caughtup.go).

package kafka

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/fleetstream/fleetstream/stream"
)

// readToEnds reports whether every partition in ends is one of parts and was read up to its
// end offset there.
func readToEnds(ends map[topicPart]int64, parts []*partition) bool {
	if len(ends) == 0 || len(ends) != len(parts) {
		return false
	}
	read := make(map[topicPart]int64, len(parts))
	for _, p := range parts {
		read[topicPart{p.topic, p.part}] = p.read.Load()
	}
	for tp, end := range ends {
		if r, ok := read[tp]; !ok || r < 0 || r < end {
			return false
		}
	}
	return true
}

// lookClient returns a client of its own for the caught-up looks, and a function that closes
// it. A broker answers the requests of one connection in order, and once the consumer is
// caught up its fetches wait there up to Fetch.MaxWait for records: on the consumer's client,
// every offset request of a look queued behind one (a look took 0.5 to 1.5 s, and the input
// ended that much after the idle time); on connections of its own a look takes milliseconds.
// If the client cannot be made, the looks use the consumer's.
func (s *Source[T]) lookClient(sc *sarama.Config, consumer sarama.Client) (sarama.Client, func()) {
	c, err := sarama.NewClient(s.cfg.Brokers, sc)
	if err != nil {
		s.log.Warn("kafka: no client of its own for the caught-up looks; using the consumer's (each look may wait for a fetch)", "err", redact(&s.cfg, err))
		return consumer, func() {}
	}
	return c, func() { _ = c.Close() }
}

// monitorCaughtUp ends the input once every partition this instance owns has been read to
// its high-water mark, and no partition of the Source's topics (owned by any instance) got a
// record, for the option's idle time, and the same holds for every other Source given the
// same option (WithEndWhenCaughtUp, CaughtUp). The high-water marks are
// the broker's, fetched after the last record was read: during a broker outage the marks
// the consumer last saw are stale, and nothing counts as caught up until the broker answers.
//
// The idle time counts from the first look that found the Source caught up and fetched the
// topics' marks that stayed the same since: the topics got no record from then on. (Counting
// from the look after it, as this once did, ended a drain a tick later than it needed.) The
// looks come every eighth of idle, at most a second apart, and one more when the idle time
// is over (idleDue), so that the input ends then, not at the next tick. When the member owns
// every partition of the topics and read them to the marks fetched, it counts from when its
// last records were read (readToEnds; a partition's read offset moving stamps the time,
// noteRead: counting from the look that saw them ended a drain up to a tick late), unless a
// look since then failed or found it behind: a broker that did not answer (an outage) may
// have kept producers from writing, so that time is not idle. The idle time then counts from
// a look after the failure, as it does when some partition is another member's.
func (s *Source[T]) monitorCaughtUp(ctx context.Context, client sarama.Client, in *stream.Input[T]) {
	c, m := s.o.caughtUp, s.caughtUp
	c.start(m, func() { s.endCaughtUp(ctx, in) })
	tick := time.NewTicker(c.tick())
	defer tick.Stop()
	// due is the look at the end of the idle time, when that comes before the next tick:
	// the idle time counts from the last records read, in between ticks.
	due := time.NewTimer(time.Hour)
	due.Stop()
	defer due.Stop()
	w := idleWatch{lastRead: -1}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-due.C:
		}
		s.mu.Lock()
		// A Source that owns no partition is caught up with what it owns once it has joined
		// the group: whether the topics' partitions are read is for their owners to say, and
		// groupCovers waits for them (and for a settled membership). Counting it behind made
		// two instances whose pipelines have two Sources, each instance owning nothing of one
		// of the topics, wait for each other for ever.
		_, joined := s.member.Load().(string)
		behind := len(s.owned) == 0 && !joined
		var read int64
		owned := make([]*partition, 0, len(s.owned))
		for _, p := range s.owned {
			owned = append(owned, p)
			r := p.read.Load()
			read += r
			if r >= 0 && r < p.claim.HighWaterMarkOffset() {
				behind = true
			}
		}
		s.mu.Unlock()
		// Loaded after the offsets: a push that moved one stamped its time before (noteRead).
		readAt := s.epoch.Add(time.Duration(s.readAt.Load()))
		since := w.look(time.Now(), read, readAt, behind, lookers{
			confirm: func() bool { return s.confirmCaughtUp(client, owned) },
			ends:    func() (map[topicPart]int64, bool) { return s.topicEnds(client) },
			read:    func(ends map[topicPart]int64) bool { return readToEnds(ends, owned) },
			covers:  func(ends map[topicPart]int64) bool { return s.groupCovers(client, ends, owned) },
		})
		if c.report(m, since, time.Now()) {
			return // every Source of the option ended its input
		}
		due.Stop()
		if d := idleDue(since, c.idle, c.tick(), time.Now()); d > 0 {
			due.Reset(d)
		}
	}
}

// idleDue returns how long after now to look again, before the next tick, so that a Source
// caught up since then ends its input when the idle time is over rather than at the tick
// after it; 0 when the tick comes first, or the Source is not caught up.
func idleDue(since time.Time, idle, tick time.Duration, now time.Time) time.Duration {
	if since.IsZero() {
		return 0
	}
	if d := since.Add(idle).Sub(now); d > 0 && d < tick {
		return d
	}
	return 0
}

// noteRead stamps the time a partition's read offset moves, before it moves (see
// monitorCaughtUp).
func (s *Source[T]) noteRead() {
	// The latest stamp wins: claims stamp concurrently, and one that read the clock first
	// must not store an earlier time over another's (helper-78).
	t := int64(time.Since(s.epoch))
	for {
		old := s.readAt.Load()
		if t <= old || s.readAt.CompareAndSwap(old, t) {
			return
		}
	}
}

// lookers are the broker requests of a caught-up look (monitorCaughtUp), for idleWatch.
type lookers struct {
	confirm func() bool                         // every owned partition read to its mark, fetched now
	ends    func() (map[topicPart]int64, bool)  // the marks of every partition of the topics
	read    func(ends map[topicPart]int64) bool // readToEnds: all of them owned and read to ends
	covers  func(ends map[topicPart]int64) bool // the group assigned every one of them
}

// idleWatch is what the caught-up looks of a Source carry from one to the next.
type idleWatch struct {
	lastRead int64               // records read at the last look (-1 before the first)
	readAt   time.Time           // when lastRead was read (see look); zero once a look since failed
	lookedAt time.Time           // the last look
	failed   bool                // the last look failed
	lastEnds map[topicPart]int64 // every partition's high-water mark at the last look
	endsAt   time.Time           // when lastEnds was fetched, or readAt (see look)
	since    time.Time           // caught up since then; zero if not caught up
}

// look is one look at now, given the records read in all (read), when a partition's read
// offset last moved (readAt, stamped before it moved), and whether a partition is behind the
// consumer's own marks (or none is owned). It returns since: when the Source was first found
// caught up with the topics' marks unchanged since, zero if it is not.
func (w *idleWatch) look(now time.Time, read int64, readAt time.Time, behind bool, l lookers) time.Time {
	last, lastFailed := w.lookedAt, w.failed
	w.lookedAt = now
	caught := !behind
	// A look fails when the broker did not answer (an outage), a partition is behind its
	// mark, or the group does not cover the topics. The time before it is then not known to
	// be idle (producers may not have been able to write), so the next looks start over: a
	// fresh fetch of the topics' marks, and no idle time counted from the last records read.
	failed := behind
	if read != w.lastRead {
		// New records since the last look: not idle, however fast they were read. They were
		// read at readAt, if that is since the last look (a move that stamped no time, such
		// as a partition revoked, counts from now), and that look answered: records read
		// just after a failed look do not show that the broker was back for every partition,
		// so the idle time counts from a look after the failure (helper-78).
		caught, failed, w.lastRead, w.readAt = false, false, read, now
		if !lastFailed && readAt.After(last) && readAt.Before(now) {
			w.readAt = readAt
		}
	}
	if caught {
		// The consumer's marks say caught up; confirm with marks fetched now.
		caught = l.confirm()
		failed = !caught
	}
	if caught {
		// And the topics as a whole are idle: with several instances in the group, this
		// one's partitions may get nothing for a while as others still receive records;
		// ending here would end its partitions for good (a repartition's end marks), and
		// what reached them later, read by the instance that takes them over, would be late.
		ends, ok := l.ends()
		if !ok || !maps.Equal(ends, w.lastEnds) {
			caught, failed, w.lastEnds, w.endsAt = false, !ok, ends, now
			if ok && !w.readAt.IsZero() && l.read(ends) {
				// Every partition of the topics is this member's and was read to the end
				// fetched now: nothing was written to them since the last record read,
				// before readAt, and every look since answered. No second look needed to
				// know they are idle since then (it took a tick, and counted the idle time
				// from this look).
				caught, w.endsAt = true, w.readAt
			}
		}
	}
	if caught {
		// And every partition of the topics has an owner in the group: a partition added to
		// a topic is read only once the rebalance that the group's leader starts when it
		// sees it (Config.MetadataRefresh) has assigned it.
		caught = l.covers(w.lastEnds)
		failed = !caught
	}
	if failed {
		w.readAt, w.lastEnds = time.Time{}, nil
	}
	w.failed = failed
	if !caught {
		w.since = time.Time{}
	} else if w.since.IsZero() {
		w.since = w.endsAt // caught up then already, and the marks have not moved since
	}
	return w.since
}

// endCaughtUp ends the input of a caught-up Source (monitorCaughtUp), unless Run is already
// over.
func (s *Source[T]) endCaughtUp(ctx context.Context, in *stream.Input[T]) {
	s.mu.Lock()
	if s.fatal.Load() != nil || ctx.Err() != nil || s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	s.mu.Unlock()
	s.log.Info("kafka: every partition caught up (confirmed by the broker); ending the input", "topics", s.cfg.Topics, "idle", s.o.caughtUp.idle)
	in.Close()
}

// topicEnds fetches the high-water mark of every partition of the Source's topics, owned or
// not; ok is false if any fetch failed.
func (s *Source[T]) topicEnds(client sarama.Client) (ends map[topicPart]int64, ok bool) {
	ends = make(map[topicPart]int64)
	for topic := range s.topics {
		// Fresh metadata: a partition added since the last refresh must count.
		if err := client.RefreshMetadata(topic); err != nil {
			return nil, false
		}
		parts, err := client.Partitions(topic)
		if err != nil {
			return nil, false
		}
		hwms, err := offsetsAt(client, topic, parts, sarama.OffsetNewest)
		if err != nil {
			return nil, false
		}
		for p, hwm := range hwms {
			ends[topicPart{topic, p}] = hwm
		}
	}
	return ends, true
}

// confirmCaughtUp fetches the high-water mark of every partition from its leader and reports
// whether each was read to it. Any failure (a broker outage) means not caught up.
func (s *Source[T]) confirmCaughtUp(client sarama.Client, parts []*partition) bool {
	var topics []string
	byTopic := make(map[string][]*partition)
	for _, p := range parts {
		if _, ok := byTopic[p.topic]; !ok {
			topics = append(topics, p.topic)
		}
		byTopic[p.topic] = append(byTopic[p.topic], p)
	}
	for _, topic := range topics {
		ps := byTopic[topic]
		ids, unread := make([]int32, len(ps)), []int32(nil)
		read := make([]int64, len(ps))
		for i, p := range ps {
			ids[i], read[i] = p.part, p.read.Load()
			if read[i] < 0 {
				unread = append(unread, p.part)
			}
		}
		var oldest map[int32]int64
		if len(unread) > 0 {
			// Nothing read yet from a partition without a committed offset: caught up if
			// it holds no records.
			var err error
			if oldest, err = offsetsAt(client, topic, unread, sarama.OffsetOldest); err != nil {
				return false
			}
		}
		hwms, err := offsetsAt(client, topic, ids, sarama.OffsetNewest)
		if err != nil {
			s.log.Debug("kafka: high-water marks not confirmed", "topic", topic, "err", redact(&s.cfg, err))
			return false
		}
		for i, p := range ps {
			r := read[i]
			if r < 0 {
				r = oldest[p.part]
			}
			if r < hwms[p.part] {
				return false
			}
		}
	}
	return true
}

// groupCovers reports whether every partition in parts is assigned to a member of the
// Source's group, by the group's coordinator (DescribeGroups), and those assigned to this
// Source's member are among the claims the look checked (looked). A group in a
// rebalance, or a failed request, does not cover.
func (s *Source[T]) groupCovers(client sarama.Client, parts map[topicPart]int64, looked []*partition) bool {
	coord, err := client.Coordinator(s.cfg.Group)
	if err != nil {
		return false
	}
	resp, err := coord.DescribeGroups(&sarama.DescribeGroupsRequest{Groups: []string{s.cfg.Group}})
	if err != nil || len(resp.Groups) != 1 {
		return false
	}
	g := resp.Groups[0]
	if g.Err != sarama.ErrNoError || g.State != "Stable" {
		return false
	}
	me, _ := s.member.Load().(string)
	claimed := make(map[topicPart]bool, len(looked))
	for _, p := range looked {
		claimed[topicPart{p.topic, p.part}] = true
	}
	owned := make(map[topicPart]bool)
	for id, m := range g.Members {
		a, err := m.GetMemberAssignment()
		if err != nil || a == nil {
			continue
		}
		for topic, ps := range a.Topics {
			for _, p := range ps {
				if _, ours := s.topics[topic]; ours && id == me && !claimed[topicPart{topic, p}] {
					// Assigned to this member, but not among the claims the look checked
					// (its claim had not started): its records were not counted.
					continue
				}
				owned[topicPart{topic, p}] = true
			}
		}
	}
	others := false
	for tp := range parts {
		if !owned[tp] {
			if !s.uncovered.Swap(true) {
				s.log.Info("kafka: waiting for the group to assign a partition of the topics before ending the input (a partition added while running?)", "topic", tp.topic, "partition", tp.part)
			}
			return false
		}
		others = others || !claimed[tp]
	}
	s.uncovered.Store(false)
	if !others {
		return true
	}
	// Other members hold partitions of the topics. One that died stays in the group, with
	// its partitions, until the session timeout after its last heartbeat: an instance
	// restarted at once after a crash would otherwise find its predecessor's partitions
	// covered and end with them unread (helper-60's review: 2,661 of 6,000 records, exit 0).
	ids := slices.Sorted(maps.Keys(g.Members))
	timeout := client.Config().Consumer.Group.Session.Timeout
	if !s.members.settled(time.Now(), strings.Join(ids, ","), timeout) {
		s.log.Debug("kafka: other members hold partitions of the topics; waiting for the group's membership to hold for the session timeout before ending the input", "members", len(ids), "session_timeout", timeout)
		return false
	}
	return true
}

// membership is the members of a group as a caught-up look saw them, and since when.
type membership struct {
	key   string // the member ids, sorted and joined
	since time.Time
}

// settled reports whether the members (key) have been the same for at least settleFor(timeout)
// at now, each look with another set starting the time over: a member that died leaves the
// group within the session timeout after its last heartbeat, so a set that held that long
// since this Source first saw it holds no member that was dead when it appeared.
func (m *membership) settled(now time.Time, key string, timeout time.Duration) bool {
	if key != m.key || m.since.IsZero() {
		m.key, m.since = key, now
	}
	return now.Sub(m.since) >= settleFor(timeout)
}

// settleFor is how long a group's members must hold before the caught-up check trusts them:
// the session timeout and half as much again. A member that died just before this Source's
// first look expires one session timeout after its last heartbeat by the coordinator's
// clock, which checks expiries on its own schedule, not at the instant (h63's review: with
// the timeout alone, only the time between the death and the first look separated the two);
// the half also covers a dead member whose own session timeout was somewhat longer.
func settleFor(timeout time.Duration) time.Duration { return timeout + timeout/2 }
