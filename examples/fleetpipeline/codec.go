// The telemetry topic's codec: how the job decodes an event from a Kafka message.

package main

import (
	"time"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/telemetry"
)

// eventCodec decodes the telemetry topic's events. It is a kafka.PartitionCodec: each
// partition gets a telemetry.Decoder of its own, which interns cab and trip ids, so that a
// fleet's steady stream decodes without allocating them. A decoder keeps at most
// internedIDs ids (a few hundred KiB), then starts over.
type eventCodec struct{}

const internedIDs = 8192

func (eventCodec) Decode(m *kafka.Message) (telemetry.Event, time.Time, error) {
	return decodeEvent(telemetry.Decode, m)
}

func (eventCodec) ForPartition(string, int32) kafka.Codec[telemetry.Event] {
	return partitionCodec{&telemetry.Decoder{MaxIDs: internedIDs}}
}

// partitionCodec is one partition's codec: a kafka.DecoderInto, the Source decodes each
// event in its place in the claim's queue.
type partitionCodec struct{ d *telemetry.Decoder }

func (c partitionCodec) Decode(m *kafka.Message) (telemetry.Event, time.Time, error) {
	return decodeEvent(c.d.Decode, m)
}

func (c partitionCodec) DecodeInto(m *kafka.Message, e *telemetry.Event) (time.Time, error) {
	err := c.d.DecodeInto(m.Value, e)
	return e.Time, err
}

func decodeEvent(decode func([]byte) (telemetry.Event, error), m *kafka.Message) (telemetry.Event, time.Time, error) {
	e, err := decode(m.Value) // a telemetry.DecodeError says whether the Source dead-letters it as "invalid" or "decode"
	return e, e.Time, err
}
