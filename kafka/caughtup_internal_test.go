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
