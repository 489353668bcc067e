package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// binder hands the test the pipeline's Input of a source.
type binder struct{ in *stream.Input[int] }

func (b *binder) Bind(in *stream.Input[int])                          { b.in = in }
func (b *binder) Run(ctx context.Context, _ *stream.Input[int]) error { <-ctx.Done(); return nil }
func (b *binder) Commit(context.Context, []stream.Position) error     { return nil }

// TestReadBackBoundPrecedesPush: the read-back bound of pushed records is where committed
// output ended before the push. The pipeline may process the records and commit their output
// before the claim's goroutine notes the push (the hook stands for that commit); a bound taken
// after it would start the read-back past that output, and a replay would write it again (seen
// in TestExactlyOnceProducerAfterCrashes under -race: 4 alerts twice).
func TestReadBackBoundPrecedesPush(t *testing.T) {
	p, err := stream.New(time.Second)
	require.NoError(t, err)
	b := &binder{}
	stream.To(stream.From[int](p, b), stream.SinkFunc[int](func(context.Context, []int) error { return nil }))
	b.in.Assign(0)

	tx := newTxn(Config{}, "t", nil, nil)
	before := outputs{{"alerts", 0}: 10}
	tx.snap.Store(&before)
	part := &partition{topic: "in", part: 0, id: 0, end: -1, marks: newMarks(100), eos: tx, txnOff: 100}
	c := &claimLoop[int]{h: &handler[int]{s: &Source[int]{}, in: b.in}, p: part}
	for off := int64(100); off < 105; off++ {
		c.queue = append(c.queue, stream.Record[int]{Partition: 0, Offset: off, Value: int(off), EventTime: time.Unix(off, 0)})
	}
	after := outputs{{"alerts", 0}: 25} // the records' output, committed before pushed() ran
	testHookPushed = func(int) { tx.snap.Store(&after) }
	t.Cleanup(func() { testHookPushed = nil })

	require.True(t, c.flush())
	require.Empty(t, c.queue, "every record pushed")
	part.mu.Lock()
	got := part.boundFor(100, nil)
	part.mu.Unlock()
	require.Equal(t, before, got)
}

// TestReadBackBoundOfReplay: records that an earlier owner pushed too (before the pushed end
// stored with the claim's checkpoint) may have output in committed output from before this
// owner connected, so their bound is the claim's, however late this owner pushed them; past
// the pushed end it is the end of committed output when they were pushed. Taking the push's
// snapshot for a replayed record started a later read-back past the earlier owner's copy of
// its output, which the next replay then wrote again (TestExactlyOnceProducerAfterCrashes:
// 4 alerts twice after the third crash).
func TestReadBackBoundOfReplay(t *testing.T) {
	claim := outputs{{"alerts", 0}: 40}
	late := outputs{{"alerts", 0}: 90}
	p := &partition{base: claim, replayTo: 200, hist: []pushMark{{off: 150, out: &late}}}
	require.Equal(t, claim, p.boundFor(150, nil), "pushed by the earlier owner too")
	require.Equal(t, claim, p.boundFor(199, nil))
	require.Equal(t, late, p.boundFor(200, nil), "first pushed by this owner")

	// The first owner: no claim bound, so what was committed when it connected.
	connected := outputs{{"alerts", 0}: 7}
	first := &partition{replayTo: -1}
	require.Equal(t, connected, first.boundFor(0, &connected))
}

// TestBoundEncoding: the bound and the pushed end survive the offset metadata, a bound
// stored without the pushed end reads as unknown (-1), and metadata that is not ours stays
// the checkpoint.
func TestBoundEncoding(t *testing.T) {
	b := readBound{out: outputs{{"alerts.v1", 3}: 120, {"alerts.v1", 0}: 5}, pushed: 1983}
	meta, got := splitBound(encodeBound("ckpt|marks", b))
	require.Equal(t, "ckpt|marks", meta)
	require.Equal(t, b, got)

	meta, got = splitBound("ckpt" + eosMarker + "alerts/0=5")
	require.Equal(t, "ckpt", meta)
	require.Equal(t, readBound{out: outputs{{"alerts", 0}: 5}, pushed: -1}, got)

	for _, stored := range []string{"ckpt", "ckpt" + eosMarker + "x;alerts/0=5", "ckpt" + eosMarker + "alerts=5"} {
		meta, got = splitBound(stored)
		require.Equal(t, stored, meta)
		require.Equal(t, readBound{pushed: -1}, got)
	}
	require.Equal(t, "ckpt", encodeBound("ckpt", readBound{pushed: 9}), "no bound: nothing to store")

	// A small bound in the format every release reads (a rolling deploy or a rollback may
	// hand the partition to an earlier release); the grouped format, each topic named once,
	// reads too.
	b = readBound{out: outputs{{"cab-alerts", 0}: 10323, {"cab-alerts", 1}: 10909, {"zones", 2}: 7}, pushed: 13973}
	enc := encodeBound("ckpt", b)
	require.Equal(t, "ckpt"+eosMarker+"13973;cab-alerts/0=10323,cab-alerts/1=10909,zones/2=7", enc)
	meta, got = splitBound(enc)
	require.Equal(t, "ckpt", meta)
	require.Equal(t, b, got)
	meta, got = splitBound("ckpt" + eosMarker + "13973;cab-alerts:0=10323,1=10909|zones:2=7")
	require.Equal(t, "ckpt", meta)
	require.Equal(t, b, got, "grouped")
	for _, bad := range []string{"1;a:0=1|:1=2", "1;a:0=1|b", "1;a:0=x", "1;a:=1", "1;a:0=1,", "1;a/0=1,b:0=2"} {
		stored := "ckpt" + eosMarker + bad
		meta, got = splitBound(stored)
		require.Equal(t, stored, meta, bad)
		require.Equal(t, readBound{pushed: -1}, got, bad)
	}

	// 80 partitions of an output topic: past boundFlatMax, the name once, not 80 times (the
	// broker refuses a commit's metadata over 4096 bytes by default).
	many := readBound{out: outputs{}, pushed: 1 << 30}
	for p := range int32(80) {
		many.out[topicPart{"fleet-cab-alerts", p}] = 1<<32 + int64(p)
	}
	enc = encodeBound("", many)
	require.Contains(t, enc, "fleet-cab-alerts:0=")
	_, got = splitBound(enc)
	require.Equal(t, many, got)
	require.Less(t, len(enc), 80*16, "bytes for 80 partitions: %d (%d with the name in each entry)", len(enc), len(enc)+79*len("fleet-cab-alerts"))
}
