// ZoneSample, what zone demand needs of a tracked event, and its binary codec: the value
// the zone repartition carries (KeyByZone, ZoneDemandByZone).

package telemetry

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/fleetstream/fleetstream/stream"
)

// formatZoneSample1 is the format byte of a binary ZoneSample, layout 1.
const formatZoneSample1 = 0x41

// ZoneSample is what zone demand counts of a tracked event: the cab (for the distinct
// cabs), its speed (for the weighted average) and whether the event was a pickup. The event
// time travels beside it (the repartition record's time), and the zone is the key.
// [KeyByZone] projects each counted event to one, so that only these few bytes go through
// the repartition topic instead of the whole event.
type ZoneSample struct {
	CabID    string  `json:"cab_id"`
	SpeedKmh float64 `json:"speed_kmh,omitempty"` // valid when HasSpeed
	HasSpeed bool    `json:"has_speed"`
	Pickup   bool    `json:"pickup"`
}

// Sample returns what zone demand counts of t.
func (t Tracked) Sample() ZoneSample {
	return ZoneSample{CabID: t.CabID, SpeedKmh: t.SpeedKmh, HasSpeed: t.Has&HasSpeed != 0, Pickup: t.Pickup}
}

// Validate reports whether s holds what a tracked event can give: a cab id as [Event]
// requires it and, with HasSpeed, a speed in the range Decode accepts. The error is a
// [*DecodeError] wrapping [ErrInvalid].
func (s ZoneSample) Validate() error {
	fail := func(field, reason string) error {
		return &DecodeError{Field: field, Reason: reason, Offset: -1, Err: ErrInvalid}
	}
	if s.CabID == "" {
		return fail("cab_id", "missing or empty")
	}
	if r := checkString(s.CabID); r != "" {
		return fail("cab_id", r)
	}
	if s.HasSpeed {
		if r := checkFloat(fSpeed, s.SpeedKmh); r != "" {
			return fail("speed_kmh", r)
		}
	}
	return nil
}

// ZoneSampleCodec is the binary stream.Codec of [ZoneSample], the value of the zone
// repartition: the format byte 0x41, one byte of flags (1 speed, 2 pickup), the cab id
// (uvarint length and bytes) and, with a speed, its 8 bytes (float64 bits, little-endian):
// 11 bytes for an 8-byte cab id with a speed, where [TrackedCodec] takes about 70. The zero
// value is ready to use and safe for concurrent use.
type ZoneSampleCodec struct{}

var _ stream.Codec[ZoneSample] = ZoneSampleCodec{}

const (
	sampleSpeed = 1 << iota
	samplePickup
	sampleFlags = sampleSpeed | samplePickup
)

// Append appends the binary encoding of s to dst. A sample that Validate rejects is refused
// with an error wrapping [ErrEncode], and dst is returned as it was.
func (ZoneSampleCodec) Append(dst []byte, s ZoneSample) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return dst, fmt.Errorf("%w: binary zone sample: %w", ErrEncode, err)
	}
	var f byte
	if s.HasSpeed {
		f |= sampleSpeed
	}
	if s.Pickup {
		f |= samplePickup
	}
	dst = append(dst, formatZoneSample1, f)
	dst = binary.AppendUvarint(dst, uint64(len(s.CabID)))
	dst = append(dst, s.CabID...)
	if s.HasSpeed {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.SpeedKmh))
	}
	return dst, nil
}

// Decode decodes a sample from exactly the bytes Append wrote. It allocates once, for the
// cab id. Errors are [*DecodeError] values wrapping [ErrMalformed] (another format byte,
// unknown flags, bytes cut short or left over) or [ErrInvalid] (a sample Validate rejects).
func (ZoneSampleCodec) Decode(b []byte) (ZoneSample, error) {
	var s ZoneSample
	if len(b) == 0 || b[0] != formatZoneSample1 {
		if len(b) > 0 && (b[0] == formatEvent1 || b[0] == formatTracked1) {
			return s, malformedBinary(fmt.Sprintf("format byte %#02x is a binary event, not a ZoneSample", b[0]), 0)
		}
		if len(b) == 0 {
			return s, malformedBinary("empty input", 0)
		}
		return s, malformedBinary(fmt.Sprintf("unknown format byte %#02x (a ZoneSample is 0x41: written by another release?)", b[0]), 0)
	}
	if len(b) < 2 {
		return s, malformedBinary("cut short before the flags", len(b))
	}
	f := b[1]
	if f&^sampleFlags != 0 {
		return s, malformedBinary(fmt.Sprintf("unknown zone sample flags %#02x", f&^sampleFlags), 1)
	}
	n, i, err := uvarint(b, 2, "cab_id length")
	if err != nil {
		return s, err
	}
	if n > MaxIDLen {
		return s, &DecodeError{Field: "cab_id", Reason: idTooLong, Offset: i, Err: ErrInvalid}
	}
	want := int(n)
	if f&sampleSpeed != 0 {
		want += 8
	}
	if len(b)-i != want {
		if len(b)-i < want {
			return s, malformedBinary("cut short", len(b))
		}
		return s, malformedBinary(fmt.Sprintf("%d bytes left over", len(b)-i-want), i+want)
	}
	s.CabID = string(b[i : i+int(n)])
	i += int(n)
	if f&sampleSpeed != 0 {
		s.HasSpeed = true
		s.SpeedKmh = math.Float64frombits(binary.LittleEndian.Uint64(b[i:]))
	}
	s.Pickup = f&samplePickup != 0
	return s, s.Validate()
}
