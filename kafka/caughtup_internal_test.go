package kafka

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCaughtUpEndsTogether: the inputs of a CaughtUp's Sources end only once every one of
// them runs, looked lately, and has been caught up for the idle time; then all of them end,
// once, whichever look completed the condition.
func TestCaughtUpEndsTogether(t *testing.T) {
	c := WithEndWhenCaughtUp(time.Second) // looks every 125ms
	a, b := c.join(), c.join()
	ended := map[string]int{}
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	c.start(a, func() { ended["a"]++ })
	require.False(t, c.report(a, at(0), at(2*time.Second)), "b has not started")
	c.start(b, func() { ended["b"]++ })
	require.False(t, c.report(b, time.Time{}, at(2*time.Second)), "b is not caught up")
	require.False(t, c.report(a, at(0), at(2100*time.Millisecond)), "b is not caught up")
	require.False(t, c.report(b, at(2*time.Second), at(2200*time.Millisecond)), "b is caught up for less than idle")
	require.False(t, c.report(a, at(0), at(3500*time.Millisecond)), "b's last look is older than two ticks")
	require.Empty(t, ended)
	require.True(t, c.report(b, at(2*time.Second), at(3600*time.Millisecond)), "both caught up for idle")
	require.Equal(t, map[string]int{"a": 1, "b": 1}, ended)
	require.True(t, c.report(a, time.Time{}, at(3700*time.Millisecond)), "ended for good")
	require.Equal(t, map[string]int{"a": 1, "b": 1}, ended, "each input ends once")

	_, err := NewSource(Config{Brokers: []string{"localhost:9092"}, Group: "g", Topics: []string{"in"}},
		CodecFunc[string](func(m *Message) (string, time.Time, error) { return string(m.Value), time.Time{}, nil }),
		WithEndWhenCaughtUp(0))
	require.ErrorContains(t, err, "WithEndWhenCaughtUp")

	// Given to a Source of another run, c would wait for a and b, which never look again.
	_, err = NewSource(Config{Brokers: []string{"localhost:9092"}, Group: "g", Topics: []string{"in"}},
		CodecFunc[string](func(m *Message) (string, time.Time, error) { return string(m.Value), time.Time{}, nil }), c)
	require.ErrorIs(t, err, ErrInvalidOption)
	require.ErrorContains(t, err, "already ended the inputs of an earlier run")
}

// TestReadToEnds: a look may count the idle time from the last records read, rather than
// from a second look at the topics' ends, only when every partition of the topics is one of
// the member's claims and was read up to the end fetched: a partition of another member (its
// records may have come later than ours), one behind its end, or one not read yet at all
// needs the second look.
func TestReadToEnds(t *testing.T) {
	part := func(topic string, p int32, read int64) *partition {
		x := &partition{topic: topic, part: p}
		x.read.Store(read)
		return x
	}
	ends := map[topicPart]int64{{"t", 0}: 10, {"t", 1}: 0, {"u", 0}: 5}
	mine := []*partition{part("t", 0, 10), part("t", 1, 0), part("u", 0, 5)}
	require.True(t, readToEnds(ends, mine))
	require.False(t, readToEnds(ends, mine[:2]), "u/0 belongs to another member")
	require.False(t, readToEnds(ends, []*partition{part("t", 0, 9), mine[1], mine[2]}), "t/0 is behind its end")
	require.False(t, readToEnds(ends, []*partition{mine[0], part("t", 1, -1), mine[2]}), "t/1 was not read yet")
	require.False(t, readToEnds(map[topicPart]int64{}, nil), "no partition")
}

// TestIdleWatch: the idle time of WithEndWhenCaughtUp counts from the last records read (when
// they were read, not the look that saw them) only while every look since answered; after a look that failed (a broker outage, as
// TestFaultSourceCaughtUpDuringOutage has), a partition behind its mark or a group that does
// not cover the topics, it counts from a look after it, so an outage never counts as idle.
func TestIdleWatch(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	type look struct {
		read    int64
		behind  bool
		answers bool // the broker answers (confirm, ends, group)
		mine    bool // every partition is the member's and read to its end
		covers  bool
		since   int // -1: not caught up
		readAt  int // when read last moved, in half-seconds; 0: never stamped
	}
	ok := func(read int64, since int) look { return look{read, false, true, true, true, since, 0} }
	down := func(read int64) look { return look{read, false, false, true, true, -1, 0} }
	// stamped: read last moved at half-second readAt (since in half-seconds too).
	stamped := func(read int64, since, readAt int) look { return look{read, false, true, true, true, since, readAt} }
	for name, looks := range map[string][]look{
		"drain: from the last records read": {
			ok(10, -1), ok(20, -1), ok(30, -1), ok(30, 2), ok(30, 2),
		},
		"another member's partition: from the second look": {
			{10, false, true, false, true, -1, 0}, {30, false, true, false, true, -1, 0}, {30, false, true, false, true, -1, 0},
			{30, false, true, false, true, 2, 0}, {30, false, true, false, true, 2, 0},
		},
		"an outage is not idle": {
			ok(10, -1), ok(30, -1), down(30), down(30), down(30), ok(30, -1), ok(30, 5), ok(30, 5),
		},
		"an outage after the marks were fetched": {
			{30, false, true, false, true, -1, 0}, {30, false, true, false, true, -1, 0}, {30, false, true, false, true, 1, 0},
			down(30), {30, false, true, false, true, -1, 0}, {30, false, true, false, true, 4, 0},
		},
		"behind its mark, then read to it": {
			ok(10, -1), {10, true, true, true, true, -1, 0}, ok(10, -1), ok(10, 2), ok(30, -1), ok(30, 4),
		},
		"the group not covering": {
			ok(30, -1), {30, false, true, true, false, -1, 0}, ok(30, -1), ok(30, 2),
		},
		// The same drain with its reads stamped: from when the last records were read,
		// between looks (at 1.5 s, not the look at 2 s that saw them).
		"drain: from when the last records were read": {
			ok(10, -1), stamped(20, -1, 1), stamped(30, -1, 3), stamped(30, 3, 3), stamped(30, 3, 3),
		},
		// Records read just after a failed look: their stamp does not count (the broker
		// may not be back for every partition); the idle time counts from the look that
		// saw them (at 2 s, not 1.5 s).
		"records read after a failed look": {
			ok(10, -1), down(10), stamped(20, -1, 3), stamped(20, 4, 3), stamped(20, 4, 3),
		},
		// A stamp from before the last look belongs to an older move: the one this look sees
		// stamped nothing (a partition revoked), so it counts from this look.
		"a move that stamped nothing": {
			ok(10, -1), stamped(20, -1, 1), stamped(25, -1, 1), stamped(25, 4, 1),
		},
	} {
		t.Run(name, func(t *testing.T) {
			w := idleWatch{lastRead: -1}
			for i, l := range looks {
				var readAt time.Time
				if l.readAt > 0 {
					readAt = t0.Add(time.Duration(l.readAt) * time.Second / 2)
				}
				got := w.look(at(i), l.read, readAt, l.behind, lookers{
					confirm: func() bool { return l.answers },
					ends: func() (map[topicPart]int64, bool) {
						if !l.answers {
							return nil, false
						}
						return map[topicPart]int64{{"t", 0}: l.read}, true // what was read: no records since
					},
					read:   func(map[topicPart]int64) bool { return l.mine },
					covers: func(map[topicPart]int64) bool { return l.answers && l.covers },
				})
				want := time.Time{}
				switch {
				case l.since >= 0 && l.readAt > 0:
					want = t0.Add(time.Duration(l.since) * time.Second / 2)
				case l.since >= 0:
					want = at(l.since)
				}
				require.Equal(t, want, got, "look %d", i)
			}
		})
	}
}

// TestMembershipSettled: the caught-up check counts partitions other members hold only once
// the group's members have been the same for the session timeout and half as much again (a
// member that died stays in the group until the coordinator expires it, on its own
// schedule); any other set starts the time over.
func TestMembershipSettled(t *testing.T) {
	const timeout = 10 * time.Second
	settle := timeout + timeout/2
	t0 := time.Date(2026, 12, 4, 7, 0, 0, 0, time.UTC)
	var m membership
	require.False(t, m.settled(t0, "a,b", timeout), "first seen")
	require.False(t, m.settled(t0.Add(timeout), "a,b", timeout), "the session timeout alone is too thin a margin")
	require.False(t, m.settled(t0.Add(settle-time.Millisecond), "a,b", timeout))
	require.True(t, m.settled(t0.Add(settle), "a,b", timeout))
	require.False(t, m.settled(t0.Add(settle+time.Second), "a", timeout), "the dead member left: a new set")
	require.False(t, m.settled(t0.Add(2*settle), "a", timeout))
	require.True(t, m.settled(t0.Add(2*settle+time.Second), "a", timeout))
}

// TestIdleDue: a Source caught up since a time looks again when its idle time is over, if
// that comes before its next tick, so that its input ends then rather than up to a tick later.
func TestIdleDue(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 5, 0, 0, 0, time.UTC)
	const idle, tick = 2 * time.Second, 250 * time.Millisecond
	require.Equal(t, 70*time.Millisecond, idleDue(t0, idle, tick, t0.Add(1930*time.Millisecond)))
	require.Zero(t, idleDue(t0, idle, tick, t0.Add(1500*time.Millisecond)), "the tick comes first")
	require.Zero(t, idleDue(t0, idle, tick, t0.Add(2*time.Second)), "over: this look reported it")
	require.Zero(t, idleDue(time.Time{}, idle, tick, t0), "not caught up")
}

// TestNoteReadKeepsLatest: claims stamp their reads concurrently; a stamp taken earlier but
// stored later must not move the time back (the idle time would count from before a read).
func TestNoteReadKeepsLatest(t *testing.T) {
	s := &Source[int]{epoch: time.Now()}
	later := int64(time.Hour)
	s.readAt.Store(later) // another claim's stamp, taken after this one's clock read
	s.noteRead()
	require.Equal(t, later, s.readAt.Load())
	s.readAt.Store(0)
	s.noteRead()
	require.Positive(t, s.readAt.Load())
}
