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

// The record format of a repartition topic: no key, no headers; the value is
//
//	flags byte: format version (1) << 4 | mark 1 | idle 2 | end 4
//	From, Seq as zigzag varints
//	a value: Sub, Time as zigzag varints, then the codec's bytes
//	a mark:  Watermark, Upstreams as zigzag varints
//
// about 15 bytes of header for a value (Time takes 9).
const (
	formatV1  = 1 << 4
	flagMark  = 1
	flagIdle  = 2
	flagEnd   = 4
	flagsMask = 0x0f
)

func appendShuffled[T any](b []byte, r *stream.Shuffled[T]) []byte {
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
	b = append(b, flags)
	b = binary.AppendVarint(b, int64(r.From))
	b = binary.AppendVarint(b, r.Seq)
	if r.Mark {
		b = binary.AppendVarint(b, r.Watermark)
		return binary.AppendVarint(b, int64(r.Upstreams))
	}
	b = binary.AppendVarint(b, int64(r.Sub))
	return binary.AppendVarint(b, r.Time)
}

var errShortRecord = errors.New("header cut short")

// decodeShuffled reads a record's header into r and returns the value's bytes.
func decodeShuffled[T any](b []byte, r *stream.Shuffled[T]) ([]byte, error) {
	if len(b) == 0 {
		return nil, errShortRecord
	}
	flags := b[0]
	if flags&^flagsMask != formatV1 || flags&^(formatV1|flagMark|flagIdle|flagEnd) != 0 {
		return nil, fmt.Errorf("unknown record format %#x", flags)
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
	if nums[0] < 0 || nums[0] > math.MaxInt32 {
		return nil, fmt.Errorf("upstream partition %d out of range", nums[0])
	}
	r.From, r.Seq = int32(nums[0]), nums[1]
	r.Mark, r.Idle, r.End = flags&flagMark != 0, flags&flagIdle != 0, flags&flagEnd != 0
	if r.Mark {
		if len(b) != 0 {
			return nil, fmt.Errorf("%d bytes after a mark", len(b))
		}
		if nums[3] < 0 || nums[3] > math.MaxInt32 {
			return nil, fmt.Errorf("upstream count %d out of range", nums[3])
		}
		r.Watermark, r.Upstreams = nums[2], int32(nums[3])
		return nil, nil
	}
	if nums[2] < 0 || nums[2] > math.MaxInt32 {
		return nil, fmt.Errorf("rank %d out of range", nums[2])
	}
	r.Sub, r.Time = int32(nums[2]), nums[3]
	return b, nil
}

// shuffleCodec decodes the repartition topic's records for the exchange's Source.
type shuffleCodec[T any] struct{ c stream.Codec[T] }

func (s shuffleCodec[T]) Decode(msg *Message) (stream.Shuffled[T], time.Time, error) {
	var r stream.Shuffled[T]
	r.Partition = msg.Partition
	val, err := decodeShuffled(msg.Value, &r)
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
