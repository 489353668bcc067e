package kafka

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

func TestShuffledRecordRoundTrip(t *testing.T) {
	codec := shuffleCodec[stream.Pair[string, int64]]{stream.PairCodec[string, int64](stream.StringCodec{}, stream.JSONCodec[int64]())}
	for _, r := range []stream.Shuffled[stream.Pair[string, int64]]{
		{Value: stream.KV("cab-1", int64(42)), Partition: 3, From: 1<<26 | 5, Seq: 123456789, Sub: 2, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano()},
		{Value: stream.KV("", int64(-1)), Partition: 0, From: 0, Seq: 0, Sub: 0, Time: -5},
		{Partition: 7, From: 65539, Seq: 99, Mark: true, Watermark: stream.NoWatermark, Upstreams: 12},
		{Partition: 1, From: 2, Seq: math.MaxInt64, Mark: true, Idle: true, End: true, Watermark: stream.EndOfTime, Upstreams: 1},
		{Partition: 2, From: 3, Seq: 77, Mark: true, End: true, Watermark: stream.EndOfTime, Upstreams: 4, Run: math.MaxUint64},
	} {
		var b []byte
		b = appendShuffled(b, &r)
		if !r.Mark {
			var err error
			b, err = codec.c.Append(b, r.Value)
			require.NoError(t, err)
		}
		got, ts, err := codec.Decode(&Message{Partition: r.Partition, Value: b})
		require.NoError(t, err)
		require.Equal(t, r, got)
		if r.Mark {
			require.True(t, ts.IsZero(), "a mark has no event time")
		} else {
			require.Equal(t, r.Time, ts.UnixNano())
		}
		// Every truncation of a mark or of the header is an error, never a panic.
		for n := range len(b) {
			if _, _, err := codec.Decode(&Message{Value: b[:n]}); err == nil && r.Mark {
				t.Fatalf("a mark cut to %d of %d bytes decoded", n, len(b))
			}
		}
	}
	_, _, err := codec.Decode(&Message{Value: []byte{0x30, 0, 0, 0, 0}})
	require.ErrorContains(t, err, "unknown record format")
}

// TestShuffledEndMarkRun: an end mark carries the run that sent it (flag run, 8); the records
// of earlier releases, an end mark without a run among them, read as before (run 0), and
// records without a run are written byte for byte as before (an unbounded run's); a run on
// a value, or a run 0, is refused.
func TestShuffledEndMarkRun(t *testing.T) {
	codec := shuffleCodec[string]{stream.StringCodec{}}
	// An earlier release's end mark: version 1, mark and end; From 2, Seq 9, Watermark
	// EndOfTime, Upstreams 3, zigzag varints.
	old := []byte{formatV1 | flagMark | flagEnd, 4, 18}
	old = binary.AppendVarint(old, stream.EndOfTime)
	old = append(old, 6)
	got, _, err := codec.Decode(&Message{Partition: 1, Value: old})
	require.NoError(t, err)
	want := stream.Shuffled[string]{Partition: 1, From: 2, Seq: 9, Mark: true, End: true, Watermark: stream.EndOfTime, Upstreams: 3}
	require.Equal(t, want, got, "an earlier release's end mark")
	require.Equal(t, old, appendShuffled(nil, &want), "an end mark without a run is written as before")
	// The same end mark of run 300: flag run and the run after Upstreams.
	want.Run = 300
	b := appendShuffled(nil, &want)
	require.Equal(t, append([]byte{old[0] | flagRun}, append(old[1:], 0xac, 0x02)...), b)
	got, _, err = codec.Decode(&Message{Partition: 1, Value: b})
	require.NoError(t, err)
	require.Equal(t, want, got)
	// Not a mark, or run 0: refused.
	for _, bad := range [][]byte{
		{formatV1 | flagRun, 4, 18, 0, 0},
		append([]byte{formatV1 | flagMark | flagEnd | flagRun}, append(old[1:], 0)...),
	} {
		_, _, err := codec.Decode(&Message{Value: bad})
		require.Error(t, err, "%x", bad)
	}
}

// TestShuffledFlags: of the flags, idle is a mark's only (an upstream partition's state),
// run an end mark's only, and end on a value is RepartitionByTime's provisional value
// (stream.WithRevisions). Every record whose flags say otherwise is refused, alone and packed
// (versions 2 and 3), naming what is wrong; every valid combination decodes, and encodes
// back to the same bytes. An end mark carries EndOfTime, the watermark the pipeline sends
// with an end; one with another watermark is refused too. A value with flag idle (or idle
// and end) and a mark with flag run but not end were decoded as records (the value with its
// idle flag dropped), and so was an end mark of watermark 3, which the pipeline took for an
// end all the same.
func TestShuffledFlags(t *testing.T) {
	codec := shuffleCodec[string]{stream.StringCodec{}}
	// From 1, Seq 2, then for a value Sub 0, Time 3 and "v"; for a mark its watermark,
	// Upstreams 4 and, with flag run, Run 5 (zigzag varints, the run a uvarint).
	value := func(flags byte) []byte { return []byte{formatV1 | flags, 2, 4, 0, 6, 'v'} }
	markAt := func(flags byte, watermark int64) []byte {
		b := binary.AppendVarint([]byte{formatV1 | flagMark | flags, 2, 4}, watermark)
		b = append(b, 8)
		if flags&flagRun != 0 {
			b = append(b, 5)
		}
		return b
	}
	// mark is a mark of watermark 3, or EndOfTime for an end mark.
	mark := func(flags byte) []byte {
		if flags&flagEnd != 0 {
			return markAt(flags, stream.EndOfTime)
		}
		return markAt(flags, 3)
	}
	for name, ok := range map[string][]byte{
		"value":                    value(0),
		"provisional value":        value(flagEnd),
		"mark":                     mark(0),
		"idle mark":                mark(flagIdle),
		"end mark":                 mark(flagEnd),
		"idle end mark":            mark(flagIdle | flagEnd),
		"end mark with a run":      mark(flagEnd | flagRun),
		"idle end mark with a run": mark(flagIdle | flagEnd | flagRun),
	} {
		r, _, err := codec.Decode(&Message{Value: ok})
		require.NoError(t, err, name)
		b := appendShuffled(nil, &r)
		if !r.Mark {
			b = append(b, r.Value...)
		}
		require.Equal(t, ok, b, "%s: encoded back", name)
	}
	for name, tc := range map[string]struct {
		rec  []byte
		want string
	}{
		"idle value":             {value(flagIdle), "flag idle on a value"},
		"idle provisional value": {value(flagIdle | flagEnd), "flag idle on a value"},
		"value with a run":       {value(flagRun), "flag run on a value"},
		"mark with a run":        {mark(flagRun), "flag run on a mark that is not an end"},
		"idle mark with a run":   {mark(flagIdle | flagRun), "flag run on a mark that is not an end"},
		"idle value with a run":  {value(flagIdle | flagRun), "on a value"},
		"provisional value, run": {value(flagEnd | flagRun), "flag run on a value"},
		"all flags but mark":     {value(flagIdle | flagEnd | flagRun), "on a value"},
		"version 0":              {append([]byte{flagMark}, mark(0)[1:]...), "unknown record format 0x1"},
		"version 4":              {append([]byte{4<<4 | flagMark}, mark(0)[1:]...), "unknown record format 0x41"},
		"end mark of 3":          {markAt(flagEnd, 3), "an end mark with watermark 3 (an end's is EndOfTime"},
		"end mark of 0":          {markAt(flagEnd|flagRun, 0), "an end mark with watermark 0 "},
		"idle end mark, none":    {markAt(flagIdle|flagEnd, stream.NoWatermark), fmt.Sprintf("an end mark with watermark %d ", stream.NoWatermark)},
		"end mark, a ns short":   {markAt(flagEnd, stream.EndOfTime-1), fmt.Sprintf("an end mark with watermark %d ", stream.EndOfTime-1)},
	} {
		t.Run(name, func(t *testing.T) {
			for _, msg := range [][]byte{
				tc.rec,
				append([]byte{formatPacked, byte(len(tc.rec))}, tc.rec...),
				append(append([]byte{formatPackedMarks, 6}, value(0)...), append([]byte{byte(len(tc.rec))}, tc.rec...)...),
			} {
				queue := []stream.Record[stream.Shuffled[string]]{{Value: stream.Shuffled[string]{Value: "kept"}}}
				got, err := codec.decodeAppend(queue, &Message{Value: msg})
				require.ErrorContains(t, err, tc.want, "%x", msg)
				require.ErrorContains(t, err, fmt.Sprintf("%#x", tc.rec[0]), "the error names the flags")
				require.Equal(t, queue, got, "%x: records handed out of a refused message", msg)
			}
		})
	}
}

// TestPackedMessages: the packer puts a Send's records into messages per partition, in
// order, marks among them, closing one before the size limit only; decodeAppend gives back
// every record of a message in order, and refuses a message that does not decode whole,
// leaving what it appends to as it was.
func TestPackedMessages(t *testing.T) {
	codec := shuffleCodec[string]{stream.StringCodec{}}
	var recs []stream.Shuffled[string]
	for i := range 300 {
		part := int32(i % 3)
		recs = append(recs, stream.Shuffled[string]{Value: strings.Repeat("v", i%17), Partition: part, From: 1, Seq: int64(i), Time: int64(i)})
		if i%100 == 99 {
			for p := range int32(3) {
				recs = append(recs, stream.Shuffled[string]{Partition: p, From: 1, Seq: int64(i), Mark: true, Watermark: int64(i), Upstreams: 2})
			}
		}
	}
	var pk packer
	for _, limit := range []int{packTarget, 200} {
		pk.reset(3, limit)
		for i := range recs {
			b := appendShuffled(nil, &recs[i])
			if !recs[i].Mark {
				b, _ = codec.c.Append(b, recs[i].Value)
			}
			pk.add(recs[i].Partition, b)
		}
		packs := pk.finish()
		got := map[int32][]stream.Shuffled[string]{}
		total, inner := 0, 0
		for _, m := range packs {
			require.LessOrEqual(t, len(m.value), limit, "a pack past its limit")
			n := 0
			require.NoError(t, decodeEach(codec, &Message{Partition: m.partition, Value: m.value}, func(r stream.Shuffled[string], ts time.Time) {
				got[m.partition] = append(got[m.partition], r)
				n++
				if !r.Mark {
					require.Equal(t, r.Time, ts.UnixNano())
				}
			}))
			require.Equal(t, m.records, n)
			total += n
			require.Equal(t, byte(formatPackedMarks), m.value[0])
			for _, r := range got[m.partition][len(got[m.partition])-n : len(got[m.partition])-1] {
				if r.Mark {
					inner++
				}
			}
			// Every cut of the message is an error, never a panic or a partial read.
			for cut := 1; cut < len(m.value); cut += 1 + len(m.value)/50 {
				calls := 0
				err := decodeEach(codec, &Message{Value: m.value[:cut]}, func(stream.Shuffled[string], time.Time) { calls++ })
				if err != nil {
					require.Zero(t, calls, "records handed out of a message that did not decode")
				}
			}
		}
		require.Equal(t, len(recs), total)
		for p := range int32(3) {
			var want []stream.Shuffled[string]
			for _, r := range recs {
				if r.Partition == p {
					want = append(want, r)
				}
			}
			require.Equal(t, want, got[p], "partition %d in order (limit %d)", p, limit)
		}
		if limit == packTarget {
			require.Len(t, packs, 3, "a message per partition")
			require.Equal(t, 2*3, inner, "the marks before each partition's last records are inside its message")
		} else {
			require.Greater(t, len(packs), 20)
		}
	}
	good := append(appendShuffled(nil, &stream.Shuffled[string]{From: 1, Seq: 2, Time: 3}), "v"...)
	markThenValue := append([]byte{formatPacked, 5}, appendShuffled(nil, &stream.Shuffled[string]{Mark: true, Upstreams: 1})...)
	// Version 3 takes a mark anywhere; version 2 (an earlier release's) with its mark last
	// still decodes.
	for _, ok := range [][]byte{
		append(append([]byte{formatPackedMarks}, markThenValue[1:]...), append([]byte{byte(len(good))}, good...)...),
		append(append([]byte{formatPacked, byte(len(good))}, good...), markThenValue[1:]...),
	} {
		recs, err := codec.decodeAppend(nil, &Message{Value: ok})
		require.NoError(t, err, "%x", ok)
		require.Len(t, recs, 2)
		require.True(t, recs[0].Value.Mark != recs[1].Value.Mark, "a mark and a value")
	}
	for name, bad := range map[string][]byte{
		"good, then cut": append(append([]byte{formatPacked, byte(len(good))}, good...), 9, 0x10),
		"empty pack":     {formatPacked},
		"zero length":    {formatPacked, 0},
		"length too big": {formatPacked, 9, 0x10},
		"bad record":     {formatPacked, 1, 0x70},
		// An earlier release's (version 2) marks end their message: one inside is corrupt.
		"mark not last in version 2": append(slices.Clone(markThenValue), 3, 0x10, 0, 0),
	} {
		calls := 0
		err := decodeEach(codec, &Message{Value: bad}, func(stream.Shuffled[string], time.Time) { calls++ })
		require.Error(t, err, name)
		require.Zero(t, calls, name)
		// Appending to a queue that holds records (with room, and without), the queue is
		// given back as it was.
		for _, room := range []int{0, 8} {
			queue := make([]stream.Record[stream.Shuffled[string]], 1, 1+room)
			queue[0].Value.Value = "kept"
			got, err := codec.decodeAppend(queue, &Message{Value: bad})
			require.Error(t, err, name)
			require.Equal(t, []stream.Record[stream.Shuffled[string]]{{Value: stream.Shuffled[string]{Value: "kept"}}}, got, name)
			if room > 0 {
				require.Equal(t, stream.Record[stream.Shuffled[string]]{}, queue[:2][1], "%s: a record left behind the queue's end", name)
			}
		}
	}
}

// decodeEach calls each with every record decodeAppend gives for msg, or none if it fails.
func decodeEach[T any](c shuffleCodec[T], msg *Message, each func(stream.Shuffled[T], time.Time)) error {
	recs, err := c.decodeAppend(nil, msg)
	for _, r := range recs {
		each(r.Value, r.EventTime)
	}
	return err
}

func FuzzDecodeShuffled(f *testing.F) {
	codec := shuffleCodec[string]{stream.StringCodec{}}
	f.Add(appendShuffled(nil, &stream.Shuffled[string]{From: 3, Seq: 10, Time: 1e18}))
	f.Add(appendShuffled(nil, &stream.Shuffled[string]{From: 3, Seq: 10, Mark: true, Watermark: -1, Upstreams: 4}))
	packed := append([]byte{formatPacked, 0}, appendShuffled(nil, &stream.Shuffled[string]{From: 1, Seq: 2, Time: 3})...)
	packed[1] = byte(len(packed) - 2)
	f.Add(packed)
	mark := appendShuffled(nil, &stream.Shuffled[string]{From: 1, Seq: 2, Mark: true, Upstreams: 1})
	f.Add(append(append([]byte{formatPackedMarks, byte(len(mark))}, mark...), packed[1:]...))
	// Flags that do not go together (TestShuffledFlags): an idle value, a run on a mark
	// that is not an end; an end mark before the end of time.
	f.Add([]byte{formatV1 | flagIdle, 2, 4, 0, 6, 'v'})
	f.Add([]byte{formatV1 | flagMark | flagRun, 2, 4, 6, 8, 5})
	f.Add([]byte{formatV1 | flagMark | flagEnd | flagRun, 2, 4, 6, 8, 5})
	f.Add(appendShuffled(nil, &stream.Shuffled[string]{From: 1, Seq: 2, Mark: true, End: true, Watermark: stream.EndOfTime, Upstreams: 1, Run: 5}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 0 && (b[0] == formatPacked || b[0] == formatPackedMarks) {
			// A packed message decodes whole or not at all; what decodes packs back into
			// a message that decodes to the same records.
			var got []stream.Shuffled[string]
			err := decodeEach(codec, &Message{Value: b}, func(r stream.Shuffled[string], _ time.Time) { got = append(got, r) })
			if err != nil {
				require.Empty(t, got)
				return
			}
			for _, r := range got {
				requireFlagsGoTogether(t, r)
			}
			var pk packer
			pk.reset(1, len(b)+binary.MaxVarintLen64*len(got)+1)
			for i := range got {
				rec := appendShuffled(nil, &got[i])
				if !got[i].Mark {
					rec = append(rec, got[i].Value...)
				}
				pk.add(0, rec)
			}
			var again []stream.Shuffled[string]
			for _, m := range pk.finish() {
				require.NoError(t, decodeEach(codec, &Message{Value: m.value}, func(r stream.Shuffled[string], _ time.Time) { again = append(again, r) }))
			}
			require.Equal(t, got, again)
			return
		}
		r, _, err := codec.Decode(&Message{Value: b})
		if err != nil {
			return
		}
		requireFlagsGoTogether(t, r)
		// What decodes encodes back, with the same flags, to bytes that decode to the same
		// record (varints may have been written longer than needed).
		out := appendShuffled(nil, &r)
		require.Equal(t, b[0], out[0], "flags")
		if !r.Mark {
			out = append(out, r.Value...)
		}
		again, _, err := codec.Decode(&Message{Value: out})
		require.NoError(t, err)
		require.Equal(t, r, again)
	})
}

// requireFlagsGoTogether fails unless r's flags are those a record may have: idle on a mark
// only, a run on an end mark only, and an end mark at EndOfTime.
func requireFlagsGoTogether(t *testing.T, r stream.Shuffled[string]) {
	t.Helper()
	require.False(t, r.Idle && !r.Mark, "an idle value: %+v", r)
	require.False(t, r.Run != 0 && !(r.Mark && r.End), "a run on a record that is not an end mark: %+v", r)
	require.False(t, r.Mark && r.End && r.Watermark != stream.EndOfTime, "an end mark before the end of time: %+v", r)
}

// TestExchangeFetchWait: the exchange's consumer waits at most exchangeFetchWait for a fetch
// to fill unless the Config says otherwise.
func TestExchangeFetchWait(t *testing.T) {
	cfg := Config{Brokers: []string{"localhost:9092"}, Group: "g", Topics: []string{"in"}}
	ex, err := NewExchange(cfg, "p", "x", stream.StringCodec{})
	require.NoError(t, err)
	require.Equal(t, exchangeFetchWait, ex.src.cfg.Fetch.MaxWait)
	cfg.Fetch.MaxWait = 300 * time.Millisecond
	ex, err = NewExchange(cfg, "p", "x", stream.StringCodec{})
	require.NoError(t, err)
	require.Equal(t, 300*time.Millisecond, ex.src.cfg.Fetch.MaxWait)
}

// TestExchangeTransactionalID: WithTransactionalID names the transaction of the Producers
// bound to an Exchange, and without it the Exchange's default differs from its Source's, so
// that Producers bound to both in one process do not fence each other. Before the option,
// instances on one host with their own ids still shared the Exchange's default: scaling out
// a pipeline with -rekey-by-cab failed with PRODUCER_FENCED (fleetpipeline's scaleOut(t, true)).
func TestExchangeTransactionalID(t *testing.T) {
	cfg := Config{Brokers: []string{"localhost:9092"}, Group: "g", Topics: []string{"in"}}
	ex, err := NewExchange(cfg, "p", "cabs", stream.StringCodec{}, WithTransactionalID("instance-7"))
	require.NoError(t, err)
	require.Equal(t, "", ex.TransactionalID(), "no Producer bound yet")
	require.Equal(t, "instance-7", ex.transaction().id)
	require.Equal(t, "instance-7", ex.TransactionalID())

	src, err := NewSource(cfg, CodecFunc[string](func(m *Message) (string, time.Time, error) {
		return string(m.Value), time.Time{}, nil
	}))
	require.NoError(t, err)
	ex, err = NewExchange(cfg, "p", "cabs", stream.StringCodec{})
	require.NoError(t, err)
	require.Equal(t, src.transaction().id+"-cabs", ex.transaction().id)

	_, err = NewExchange(cfg, "p", "cabs", stream.StringCodec{}, WithTransactionalID(""))
	require.ErrorContains(t, err, "WithTransactionalID")
}

// faultyProducer is an AsyncProducer that writes every message it is handed, in the order
// handed, except those fail picks, which fail for good: as sarama does, which bumps the
// idempotent producer's epoch after a message failed for good and goes on with the next ones.
// While hold is open, the first message's result waits.
type faultyProducer struct {
	sarama.AsyncProducer
	in   chan *sarama.ProducerMessage
	succ chan *sarama.ProducerMessage
	errs chan *sarama.ProducerError
	hold chan struct{}
	// got is closed once the first message was handed over, done when Input was closed and
	// every result reported.
	got, done chan struct{}

	mu      sync.Mutex
	written [][]byte // the messages' values, as the partition holds them
}

func (p *faultyProducer) Input() chan<- *sarama.ProducerMessage     { return p.in }
func (p *faultyProducer) Successes() <-chan *sarama.ProducerMessage { return p.succ }
func (p *faultyProducer) Errors() <-chan *sarama.ProducerError      { return p.errs }

func newFaultyProducer(fail func(n int, m *sarama.ProducerMessage) bool) *faultyProducer {
	p := &faultyProducer{in: make(chan *sarama.ProducerMessage), succ: make(chan *sarama.ProducerMessage),
		errs: make(chan *sarama.ProducerError), got: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		n := 0
		for m := range p.in {
			if n == 0 {
				close(p.got)
				if p.hold != nil {
					<-p.hold
				}
			}
			if fail(n, m) {
				p.errs <- &sarama.ProducerError{Msg: m, Err: sarama.ErrOutOfBrokers}
			} else {
				b, _ := m.Value.Encode()
				p.mu.Lock()
				p.written = append(p.written, slices.Clone(b))
				p.mu.Unlock()
				p.succ <- m
			}
			n++
		}
	}()
	return p
}

// AsyncClose closes the producer as sarama's does: once every result was reported, the
// result channels close.
func (p *faultyProducer) AsyncClose() {
	close(p.in)
	go func() {
		<-p.done
		close(p.succ)
		close(p.errs)
	}()
}

// kept returns the values that the downstream keeps from the partition's messages: a value
// whose sequence number is above the highest of its upstream partition so far (the
// pipeline's dedup, see "Repartition" in package stream).
func (p *faultyProducer) kept(t *testing.T) []int {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	c := shuffleCodec[int]{stream.JSONCodec[int]()}
	highest := map[int32]int64{}
	var kept []int
	for _, b := range p.written {
		require.NoError(t, decodeEach(c, &Message{Value: b}, func(r stream.Shuffled[int], _ time.Time) {
			if h, ok := highest[r.From]; r.Mark || ok && r.Seq <= h {
				return
			}
			highest[r.From] = r.Seq
			kept = append(kept, r.Value)
		}))
	}
	return kept
}

// twoMessages are records of one upstream partition to one downstream partition, the mark
// ending the first message.
var twoMessages = []stream.Shuffled[int]{
	{Value: 1, Partition: 0, From: 0, Seq: 10},
	{Partition: 0, From: 0, Seq: 11, Mark: true},
	{Value: 2, Partition: 0, From: 0, Seq: 11},
}

// TestExchangeSendNothingAfterAFailedMessage: when a message of a partition fails for good
// (sarama's retries spent: an hour without the partition's leader), Send hands none of the
// partition's later messages to the producer, so the pipeline's retry (or the replay after a
// restart) writes the failed records before any later one, and the downstream keeps every
// record. Send handed every message over at once, and sarama wrote the later message after
// the earlier one failed: Send stopped the pipeline, and the restart's replay wrote the
// failed records after the later one's, whose higher sequence numbers made the downstream
// drop them as copies: lost.
func TestExchangeSendNothingAfterAFailedMessage(t *testing.T) {
	p := newFaultyProducer(func(n int, _ *sarama.ProducerMessage) bool { return n == 0 })
	defer close(p.in)
	e := &Exchange[int]{topic: "x", codec: stream.JSONCodec[int](), ap: p, parts: 1, maxMsg: 1 << 20, log: slog.New(slog.DiscardHandler)}
	err := e.Send(t.Context(), twoMessages)
	require.ErrorIs(t, err, sarama.ErrOutOfBrokers)
	// The pipeline sends the batch again (or, restarted, replays it).
	require.NoError(t, e.Send(t.Context(), twoMessages))
	require.Equal(t, []int{1, 2}, p.kept(t), "every record reaches the downstream")
	require.False(t, stream.IsPermanent(err), "nothing later was written: the records can be sent again: %v", err)
}

// TestExchangeSendRefusesUnreadableRecords: a record the downstream would refuse (an idle
// value, a run on a value or on a mark that is not an end, an end mark whose watermark is
// not EndOfTime, a negative upstream partition, rank or upstream count) fails Send for good,
// naming the record and what is wrong, before any message is handed over. Send wrote them:
// the idle value and the marks then stopped the downstream with ErrCorruptRepartition at a
// message the topic keeps, and a value's run was dropped without a word.
func TestExchangeSendRefusesUnreadableRecords(t *testing.T) {
	for name, tc := range map[string]struct {
		r    stream.Shuffled[int]
		want string
	}{
		"idle value":           {stream.Shuffled[int]{Value: 1, Seq: 10, Idle: true}, "flag idle on a value"},
		"value with a run":     {stream.Shuffled[int]{Value: 1, Seq: 10, End: true, Run: 7}, "flag run on a value"},
		"mark with a run":      {stream.Shuffled[int]{Seq: 11, Mark: true, Idle: true, Run: 7}, "flag run on a mark that is not an end"},
		"negative upstream":    {stream.Shuffled[int]{Value: 1, From: -1, Seq: 10}, "upstream partition -1 out of range"},
		"negative rank":        {stream.Shuffled[int]{Value: 1, Seq: 10, Sub: -2}, "rank -2 out of range"},
		"negative upstreams":   {stream.Shuffled[int]{Seq: 11, Mark: true, Upstreams: -3}, "upstream count -3 out of range"},
		"negative mark source": {stream.Shuffled[int]{From: math.MinInt32, Seq: 11, Mark: true}, "upstream partition -2147483648 out of range"},
		"end mark of 5":        {stream.Shuffled[int]{Seq: 11, Mark: true, End: true, Watermark: 5, Run: 7}, "flags 0x1d: an end mark with watermark 5"},
	} {
		t.Run(name, func(t *testing.T) {
			p := newFaultyProducer(func(int, *sarama.ProducerMessage) bool { return false })
			defer close(p.in)
			e := &Exchange[int]{topic: "x", codec: stream.JSONCodec[int](), ap: p, parts: 1, maxMsg: 1 << 20, log: slog.New(slog.DiscardHandler)}
			err := e.Send(t.Context(), append(slices.Clone(twoMessages), tc.r))
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, `exchange "x": record 4 of 4`)
			require.True(t, stream.IsPermanent(err), "%v", err)
			select {
			case <-p.got:
				t.Fatal("a message was handed to the producer")
			default:
			}
			// The good records alone go through, read back by the downstream.
			require.NoError(t, e.Send(t.Context(), twoMessages))
			require.Equal(t, []int{1, 2}, p.kept(t))
		})
	}
}

// TestExchangeSendAfterAnAbandonedFailure: a Send abandoned when its context ended, whose
// message then failed, holds none of the partition's later messages back in the producer;
// the next Send waits for that result before it hands anything over and returns the error,
// and the one after it writes the records in their order. The failure of an abandoned call's
// message used to fail every later Send for good (the order was not known to hold).
func TestExchangeSendAfterAnAbandonedFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newFaultyProducer(func(n int, _ *sarama.ProducerMessage) bool { return n == 0 })
		p.hold = make(chan struct{})
		defer close(p.in)
		e := &Exchange[int]{topic: "x", codec: stream.JSONCodec[int](), ap: p, parts: 1, maxMsg: 1 << 20, log: slog.New(slog.DiscardHandler)}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		require.ErrorIs(t, e.Send(ctx, twoMessages), context.DeadlineExceeded)
		close(p.hold)
		err := e.Send(t.Context(), twoMessages)
		require.ErrorIs(t, err, sarama.ErrOutOfBrokers)
		require.False(t, stream.IsPermanent(err), "%v", err)
		require.Empty(t, p.kept(t), "nothing written after the failed message")
		require.NoError(t, e.Send(t.Context(), twoMessages))
		require.Equal(t, []int{1, 2}, p.kept(t))
	})
}

// closingClient is a sarama.Client whose Close is noted.
type closingClient struct {
	sarama.Client
	closed chan struct{}
}

func (c closingClient) Close() error { close(c.closed); return nil }

// TestExchangeCloseReturnsWhenCtxEnds: Close returns ctx's error when ctx ends while a Send
// that is not cancelled waits for its records (a partition's leader away: sarama retries for
// an hour), and closes the producer and its client once that Send returned. Close waited for
// Send's lock whatever its ctx said.
func TestExchangeCloseReturnsWhenCtxEnds(t *testing.T) {
	p := newFaultyProducer(func(int, *sarama.ProducerMessage) bool { return false })
	p.hold = make(chan struct{})
	client := closingClient{closed: make(chan struct{})}
	e := &Exchange[int]{topic: "x", codec: stream.JSONCodec[int](), ap: p, client: client, parts: 1, maxMsg: 1 << 20, log: slog.New(slog.DiscardHandler)}
	sendCtx, stopSend := context.WithCancel(t.Context())
	defer stopSend()
	sent := make(chan error, 1)
	go func() { sent <- e.Send(sendCtx, twoMessages) }()
	<-p.got // the Send waits for its first message's result

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- e.Close(ctx) }()
	select {
	case err := <-closed:
		require.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited past its ctx for a Send")
	}
	select {
	case <-client.closed:
		t.Fatal("the client was closed under a running Send")
	default:
	}
	require.ErrorIs(t, e.Send(t.Context(), twoMessages), ErrClosed)

	stopSend()
	require.ErrorIs(t, <-sent, context.Canceled)
	<-client.closed // closed once the Send returned
	close(p.hold)
	<-p.done // the producer was closed
}

// TestExchangeProducerKeepsOrder: whatever WithSaramaConfig sets, the Exchange's producer is
// idempotent, waits for every replica and has one request in flight: the downstream dedup
// takes a partition's records in the order they were sent, and a retried request landing
// after the next one would make it drop records as copies. A tune that turned idempotence
// off (a common tweak for throughput) was kept (helper-103's note).
func TestExchangeProducerKeepsOrder(t *testing.T) {
	ex, err := NewExchange(Config{Brokers: []string{"127.0.0.1:9"}, Group: "g", Topics: []string{"in"}}, "p", "order", stream.StringCodec{},
		WithSaramaConfig(func(sc *sarama.Config) {
			sc.Producer.Idempotent = false
			sc.Producer.RequiredAcks = sarama.WaitForLocal
			sc.Net.MaxOpenRequests = 5
		}))
	require.NoError(t, err)
	sc, err := ex.producerConfig()
	require.NoError(t, err)
	require.True(t, sc.Producer.Idempotent)
	require.Equal(t, sarama.WaitForAll, sc.Producer.RequiredAcks)
	require.Equal(t, 1, sc.Net.MaxOpenRequests)
	require.NoError(t, sc.Validate())
}

// TestExchangeClaimCheckpointRefused: a partition that a cooperative rebalance adds to the
// exchange's consumer, whose committed checkpoint the ACLs refuse to fetch (the group, or the
// topic), stops the Source with ErrNotAuthorized naming what to grant, while a transient error
// of the coordinator is retried until it passes or the session ends. Every error was retried,
// for ever, with only a Warn.
func TestExchangeClaimCheckpointRefused(t *testing.T) {
	const topic = "p-x-repartition"
	for _, tc := range []struct {
		name   string
		fetch  *sarama.MockOffsetFetchResponse
		err    sarama.KError
		refuse string // what the error names; "" for a transient error
	}{
		{"group refused", sarama.NewMockOffsetFetchResponse(t).SetError(sarama.ErrGroupAuthorizationFailed),
			sarama.ErrGroupAuthorizationFailed, `consumer group "g"`},
		{"topic refused", sarama.NewMockOffsetFetchResponse(t).SetOffset("g", topic, 0, -1, "", sarama.ErrTopicAuthorizationFailed),
			sarama.ErrTopicAuthorizationFailed, `topic "` + topic + `"`},
		{"transient", sarama.NewMockOffsetFetchResponse(t).SetError(sarama.ErrOffsetsLoadInProgress), sarama.ErrOffsetsLoadInProgress, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, client := groupCoordinator(t, tc.fetch)
			ex, err := NewExchange(Config{Brokers: []string{b.Addr()}, Group: "g", Topics: []string{"in"}}, "p", "x", stream.JSONCodec[int]())
			require.NoError(t, err)
			require.Equal(t, topic, ex.Topic())
			ex.src.topics[topic] = 0
			runCtx, stop := context.WithCancelCause(t.Context())
			defer stop(nil)
			ex.src.cancel = stop
			h := &handler[stream.Shuffled[int]]{s: ex.src, client: client, registered: map[int32]bool{}}
			// The session lasts long enough for a few retries of a transient error.
			sessCtx, endSession := context.WithTimeout(t.Context(), 10*time.Second)
			defer endSession()
			claimed := make(chan bool, 1)
			go func() { claimed <- h.claimed(sessionCtx{memberSession{&recordingSession{}}, sessCtx}, topic, 0) }()

			if tc.refuse == "" {
				require.Eventually(t, func() bool { return offsetFetches(b) >= 2 }, 5*time.Second, 10*time.Millisecond, "retried")
				endSession()
				require.False(t, <-claimed)
				require.Nil(t, ex.src.fatal.Load(), "a transient error does not stop the Source")
				return
			}
			select {
			case ok := <-claimed:
				require.False(t, ok)
			case <-sessCtx.Done():
				t.Fatal("the refusal was retried for as long as the session lasted")
			}
			fatal := ex.src.fatal.Load()
			require.NotNil(t, fatal, "the Source stops")
			require.ErrorIs(t, *fatal, ErrNotAuthorized)
			require.ErrorIs(t, *fatal, tc.err)
			require.ErrorContains(t, *fatal, tc.refuse)
			require.ErrorIs(t, context.Cause(runCtx), ErrNotAuthorized)
			require.Equal(t, 1, offsetFetches(b), "not retried")
		})
	}
}

// groupCoordinator is a mock broker that coordinates group "g" and answers its offset
// fetches with fetch, and a client of it.
func groupCoordinator(t *testing.T, fetch sarama.MockResponse) (*sarama.MockBroker, sarama.Client) {
	t.Helper()
	b := sarama.NewMockBroker(t, 1)
	t.Cleanup(b.Close)
	b.SetHandlerByMap(map[string]sarama.MockResponse{
		"MetadataRequest":        sarama.NewMockMetadataResponse(t).SetBroker(b.Addr(), b.BrokerID()).SetController(b.BrokerID()),
		"FindCoordinatorRequest": sarama.NewMockFindCoordinatorResponse(t).SetCoordinator(sarama.CoordinatorGroup, "g", b),
		"OffsetFetchRequest":     fetch,
	})
	return b, mockClient(t, b, sarama.V3_0_0_0)
}

// mockClient is a client of mock broker b that speaks version and does not retry metadata.
func mockClient(t *testing.T, b *sarama.MockBroker, version sarama.KafkaVersion) sarama.Client {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = version
	cfg.Metadata.Retry.Max = 0
	cfg.ApiVersionsRequest = false // the mock answers only what the test sets
	client, err := sarama.NewClient([]string{b.Addr()}, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// offsetFetches counts the OffsetFetch requests a broker got.
func offsetFetches(b *sarama.MockBroker) int {
	n := 0
	for _, rr := range b.History() {
		if _, ok := rr.Request.(*sarama.OffsetFetchRequest); ok {
			n++
		}
	}
	return n
}
