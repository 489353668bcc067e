// The record format of a repartition topic (see "Repartition" in the package documentation):
// encoding and decoding stream.Shuffled records.

package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/fleetstream/fleetstream/stream"
)

// The record format of a repartition topic: no key, no headers; a record is
//
//	flags byte: format version (1) << 4 | mark 1 | idle 2 | end 4 | run 8
//	From, Seq as zigzag varints
//	a value: Sub, Time as zigzag varints, then the codec's bytes
//	a mark:  Watermark, Upstreams as zigzag varints, then with flag run: Run as a uvarint
//
// about 15 bytes of header for a value (Time takes 9). Only an end mark carries a run (the
// run that sent it, stream.Shuffled.Run; flag run), so an unbounded run's records are those
// of releases before it. A release before it stops on such a mark (ErrCorruptRepartition,
// "unknown record format"): upgrade every instance together, and before rolling back let an
// unbounded run commit past the end marks (a bounded run commits before its own). This
// release reads an end mark without a run as an earlier release's (run 0).
//
// Flag idle is a mark's only (its upstream partition's state); on a value, flag end marks a
// value sent where its upstream partition's input ended, which the downstream keeps as
// provisional (stream.WithRevisions); flag run goes with a mark and flag end only. A record
// whose flags say anything else is refused (ErrCorruptRepartition), as is a From, Sub or
// Upstreams outside [0, 2^31), a mark with bytes after it, a mark of run 0, or an end mark
// whose Watermark is not stream.EndOfTime (the pipeline sends an end with EndOfTime only and
// takes an end mark for one whatever it carries); Send refuses to write such a record
// (checkShuffled).
//
// A Kafka message holds one record (version 1) or, packed, several records of one partition
// in their order (versions 2 and 3):
//
//	0x20 or 0x30, then per record: its length as a uvarint and its version-1 bytes
//
// The pipeline numbers a partition's positions by Kafka offset, so every record of a message
// has the message's offset, and it counts a mark from the next offset on (WatermarkAt in
// package stream): the marks of a message count together, from the message after it, and a
// value is judged against the marks of the messages before its own. In version 2 a mark was
// always the last record of its message (a run of them each a message of its own); an
// Exchange now writes version 3, in which marks may stand anywhere, and packs a Send's
// records of a partition into messages of up to packTarget bytes whatever they hold. That
// is sound because a Send holds one batch, in which each upstream partition's values come
// before its own mark: moving a message's marks to its end reorders them only past values
// of other upstream partitions, whose order against them is arbitrary anyway (another
// instance could have sent them), and the log, immutable, numbers them the same in every
// replay. A Send of the fleet job's batch thus writes one message per downstream partition
// instead of one per upstream partition's mark. The pipeline keeps a message's records in
// one batch (stream.Input.TryPushBatch), so a commit never falls inside a message. Packing
// saves the producer's and the consumer's work per Kafka message (about 2,500 zone samples
// share one). A release that reads only version 1 stops on a packed message, and one that
// reads only versions 1 and 2 on a version-3 message (ErrCorruptRepartition, "unknown record
// format"): upgrade every instance of a pipeline together, or let its repartitions drain
// first.
const (
	formatPacked      = 2 << 4 // marks only last in their message (earlier releases)
	formatPackedMarks = 3 << 4 // marks anywhere (this release writes it)
	packTarget        = 64 << 10
)

const (
	formatV1  = 1 << 4
	flagMark  = 1
	flagIdle  = 2
	flagEnd   = 4
	flagRun   = 8
	flagsMask = 0x0f
)

// shuffledFlags returns r's flags byte, whether or not its flags go together.
func shuffledFlags[T any](r *stream.Shuffled[T]) byte {
	flags := byte(formatV1)
	if r.Mark {
		flags |= flagMark
	}
	if r.Idle {
		flags |= flagIdle
	}
	if r.End {
		flags |= flagEnd
	}
	if r.Run != 0 {
		flags |= flagRun
	}
	return flags
}

// checkShuffled returns why the decoder would refuse r once encoded, or nil: what Send
// writes must read back whole.
func checkShuffled[T any](r *stream.Shuffled[T]) error {
	if err := checkFlags(shuffledFlags(r)); err != nil {
		return err
	}
	if err := checkCount("upstream partition", int64(r.From)); err != nil {
		return err
	}
	if r.Mark {
		if err := checkEndMark(shuffledFlags(r), r.Watermark); err != nil {
			return err
		}
		return checkCount("upstream count", int64(r.Upstreams))
	}
	return checkCount("rank", int64(r.Sub))
}

// checkEndMark refuses an end mark (flags) whose watermark is not stream.EndOfTime: the
// pipeline sends an end with EndOfTime only, and takes an end mark for one whatever its
// watermark, so another watermark on it is corruption.
func checkEndMark(flags byte, watermark int64) error {
	if flags&flagMark != 0 && flags&flagEnd != 0 && watermark != stream.EndOfTime {
		return fmt.Errorf("flags %#x: an end mark with watermark %d (an end's is EndOfTime, %d)", flags, watermark, stream.EndOfTime)
	}
	return nil
}

// checkCount refuses a number the format holds as an int32 that is not in [0, 2^31).
func checkCount(what string, v int64) error {
	if v < 0 || v > math.MaxInt32 {
		return fmt.Errorf("%s %d out of range", what, v)
	}
	return nil
}

// appendShuffled appends r's header, of a record that checkShuffled accepts.
func appendShuffled[T any](b []byte, r *stream.Shuffled[T]) []byte {
	flags := shuffledFlags(r)
	b = append(b, flags)
	b = binary.AppendVarint(b, int64(r.From))
	b = binary.AppendVarint(b, r.Seq)
	if r.Mark {
		b = binary.AppendVarint(b, r.Watermark)
		b = binary.AppendVarint(b, int64(r.Upstreams))
		if flags&flagRun != 0 {
			b = binary.AppendUvarint(b, r.Run)
		}
		return b
	}
	b = binary.AppendVarint(b, int64(r.Sub))
	return binary.AppendVarint(b, r.Time)
}

var errShortRecord = errors.New("header cut short")

// checkFlags refuses a record's flags byte unless it is version 1 with flags that go
// together: idle on a mark only, run on an end mark only.
func checkFlags(flags byte) error {
	switch mark := flags&flagMark != 0; {
	case flags&^flagsMask != formatV1:
		return fmt.Errorf("unknown record format %#x", flags)
	case !mark && flags&flagIdle != 0:
		return fmt.Errorf("flags %#x: flag idle on a value (idle is a mark's)", flags)
	case !mark && flags&flagRun != 0:
		return fmt.Errorf("flags %#x: flag run on a value (a run is an end mark's)", flags)
	case flags&flagRun != 0 && flags&flagEnd == 0:
		return fmt.Errorf("flags %#x: flag run on a mark that is not an end", flags)
	}
	return nil
}

// decodeShuffled reads a record's header into r and returns the value's bytes.
func decodeShuffled[T any](b []byte, r *stream.Shuffled[T]) ([]byte, error) {
	if len(b) == 0 {
		return nil, errShortRecord
	}
	flags := b[0]
	if err := checkFlags(flags); err != nil {
		return nil, err
	}
	b = b[1:]
	var nums [4]int64
	for i := range nums {
		v, n := binary.Varint(b)
		if n <= 0 {
			return nil, errShortRecord
		}
		nums[i], b = v, b[n:]
	}
	if err := checkCount("upstream partition", nums[0]); err != nil {
		return nil, err
	}
	r.From, r.Seq = int32(nums[0]), nums[1]
	r.Mark, r.Idle, r.End = flags&flagMark != 0, flags&flagIdle != 0, flags&flagEnd != 0
	if r.Mark {
		if flags&flagRun != 0 {
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, errShortRecord
			}
			if v == 0 {
				return nil, errors.New("a mark of run 0")
			}
			r.Run, b = v, b[n:]
		}
		if len(b) != 0 {
			return nil, fmt.Errorf("%d bytes after a mark", len(b))
		}
		if err := checkEndMark(flags, nums[2]); err != nil {
			return nil, err
		}
		if err := checkCount("upstream count", nums[3]); err != nil {
			return nil, err
		}
		r.Watermark, r.Upstreams = nums[2], int32(nums[3])
		return nil, nil
	}
	if err := checkCount("rank", nums[2]); err != nil {
		return nil, err
	}
	r.Sub, r.Time = int32(nums[2]), nums[3]
	return b, nil
}

// shuffleCodec decodes the repartition topic's records for the exchange's Source.
type shuffleCodec[T any] struct{ c stream.Codec[T] }

// Decode decodes a message of one record (version 1); decodeAppend reads packed ones too.
func (s shuffleCodec[T]) Decode(msg *Message) (stream.Shuffled[T], time.Time, error) {
	return s.decodeOne(msg.Value, msg.Partition)
}

func (s shuffleCodec[T]) decodeOne(b []byte, partition int32) (stream.Shuffled[T], time.Time, error) {
	var r stream.Shuffled[T]
	r.Partition = partition
	val, err := decodeShuffled(b, &r)
	if err != nil {
		return r, time.Time{}, err
	}
	if r.Mark {
		return r, time.Time{}, nil
	}
	if r.Value, err = s.c.Decode(val); err != nil {
		return r, time.Time{}, fmt.Errorf("value: %w", err)
	}
	return r, time.Unix(0, r.Time), nil
}

// multiDecoder is a Codec whose messages may hold several records: the claim loop has it
// append all of them (all under the message's offset) to its queue.
type multiDecoder[T any] interface {
	// decodeAppend appends every record of msg to dst, in order, with its Value and
	// EventTime set. When msg does not decode whole it returns dst as it was (what it
	// appended cleared) with the error.
	decodeAppend(dst []stream.Record[T], msg *Message) ([]stream.Record[T], error)
}

var _ multiDecoder[stream.Shuffled[int]] = shuffleCodec[int]{}

// decodeAppend appends the record of a version-1 message, or all of a packed one, to dst. It
// decodes straight into dst, so a message's records need no slice of their own.
func (s shuffleCodec[T]) decodeAppend(dst []stream.Record[stream.Shuffled[T]], msg *Message) ([]stream.Record[stream.Shuffled[T]], error) {
	b := msg.Value
	if len(b) == 0 || b[0] != formatPacked && b[0] != formatPackedMarks {
		r, ts, err := s.Decode(msg)
		if err != nil {
			return dst, err
		}
		return append(dst, stream.Record[stream.Shuffled[T]]{Value: r, EventTime: ts}), nil
	}
	n0 := len(dst)
	lastMark := b[0] == formatPacked
	var err error
	for b = b[1:]; len(b) > 0; {
		n, k := binary.Uvarint(b)
		if k <= 0 || n == 0 || n > uint64(len(b)-k) {
			err = fmt.Errorf("packed record %d: length cut short or out of range", len(dst)-n0)
			break
		}
		r, ts, derr := s.decodeOne(b[k:k+int(n)], msg.Partition)
		if derr != nil {
			err = fmt.Errorf("packed record %d: %w", len(dst)-n0, derr)
			break
		}
		if lastMark && r.Mark && len(b) > k+int(n) {
			err = fmt.Errorf("packed record %d: a mark before the end of its message", len(dst)-n0)
			break
		}
		dst = append(dst, stream.Record[stream.Shuffled[T]]{Value: r, EventTime: ts})
		b = b[k+int(n):]
	}
	if err == nil && len(dst) == n0 {
		err = errors.New("a packed message without records")
	}
	if err != nil {
		clear(dst[n0:])
		return dst[:n0], err
	}
	return dst, nil
}

// packer packs a Send's encoded records into messages (version 3), per partition and in
// order: a pack is closed when the next record would take it past limit.
type packer struct {
	limit int
	bufs  [][]byte // by partition: the bytes of this Send's packs, the open one at the end
	start []int    // by partition: where the open pack starts in bufs, -1 when none is open
	count []int    // by partition: records in the open pack
	out   []pack
}

// pack is a closed message: its partition, value and number of records.
type pack struct {
	partition int32
	value     []byte
	records   int
}

// reset readies p for a Send to n partitions with messages of at most limit bytes, reusing
// the buffers of the previous Send (whose messages were all acknowledged).
func (p *packer) reset(n, limit int) {
	p.limit = limit
	for len(p.bufs) < n {
		p.bufs = append(p.bufs, nil)
	}
	p.start, p.count = p.start[:0], p.count[:0]
	for i := range n {
		p.bufs[i] = p.bufs[i][:0]
		p.start = append(p.start, -1)
		p.count = append(p.count, 0)
	}
	clear(p.out)
	p.out = p.out[:0]
}

// add appends an encoded record (version 1) to its partition's open pack.
func (p *packer) add(part int32, rec []byte) {
	b := p.bufs[part]
	entry := binary.MaxVarintLen64 + len(rec)
	if p.start[part] >= 0 && len(b)-p.start[part]+entry > p.limit {
		p.close(part)
		b = p.bufs[part]
	}
	if p.start[part] < 0 {
		p.start[part] = len(b)
		b = append(b, formatPackedMarks)
	}
	b = binary.AppendUvarint(b, uint64(len(rec)))
	p.bufs[part] = append(b, rec...)
	p.count[part]++
}

// close ends part's open pack, if any.
func (p *packer) close(part int32) {
	if p.start[part] < 0 {
		return
	}
	b := p.bufs[part]
	p.out = append(p.out, pack{partition: part, value: b[p.start[part]:len(b):len(b)], records: p.count[part]})
	p.start[part], p.count[part] = -1, 0
}

// finish closes every open pack, in partition order, and returns the Send's messages.
func (p *packer) finish() []pack {
	for part := range p.start {
		p.close(int32(part))
	}
	return p.out
}
