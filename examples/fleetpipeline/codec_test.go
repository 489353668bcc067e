package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/examples/internal/feed"
	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/telemetry"
)

// TestEventCodecPerPartition: the codec a partition gets (interning ids) decodes the demo
// data, faults included, exactly as the shared one does: the same events and event times,
// and the same errors, with validation failures marked as such for the dead letters; and
// its DecodeInto (the Source decodes in place) as its Decode.
func TestEventCodecPerPartition(t *testing.T) {
	msgs, err := feed.Messages(feed.Options{Sources: "porto,sim", Porto: portoCSV(t), SimEvents: 20_000, SimCabs: 50, Seed: 4, Faults: true}, io.Discard)
	require.NoError(t, err)
	var shared eventCodec
	var pc kafka.PartitionCodec[telemetry.Event] = shared
	parts := []kafka.Codec[telemetry.Event]{pc.ForPartition("t", 0), pc.ForPartition("t", 1)}
	var invalid, malformed int
	for i, m := range msgs {
		msg := &kafka.Message{Topic: "t", Partition: int32(i % 2), Value: m.Value}
		want, wantTS, wantErr := shared.Decode(msg)
		got, gotTS, gotErr := parts[i%2].Decode(msg)
		var in telemetry.Event
		inTS, inErr := parts[i%2].(kafka.DecoderInto[telemetry.Event]).DecodeInto(msg, &in)
		require.Equal(t, gotErr, inErr, "message %d: DecodeInto's error", i)
		if inErr == nil {
			require.Equal(t, got, in, "message %d: DecodeInto", i)
			require.True(t, gotTS.Equal(inTS), "message %d: DecodeInto's event time", i)
		}
		if wantErr != nil {
			require.Error(t, gotErr, "message %d", i)
			require.Equal(t, wantErr.Error(), gotErr.Error(), "message %d", i)
			var inv interface{ InvalidRecord() bool } // what the Source reads for the reason "invalid"
			isInv := errors.As(wantErr, &inv) && inv.InvalidRecord()
			require.Equal(t, isInv, errors.As(gotErr, &inv) && inv.InvalidRecord(), "message %d: marked invalid", i)
			require.Equal(t, isInv, errors.Is(wantErr, telemetry.ErrInvalid), "message %d: invalid iff telemetry says so", i)
			if isInv {
				invalid++
			} else {
				malformed++
			}
			continue
		}
		require.NoError(t, gotErr, "message %d", i)
		require.Equal(t, want, got, "message %d", i)
		require.True(t, wantTS.Equal(gotTS) && wantTS.Equal(want.Time), "message %d: event time", i)
	}
	require.Positive(t, invalid, "the faults include invalid events")
	require.Positive(t, malformed, "the faults include malformed events")
}

// TestCheckIndexTag: an -index-tag no OpenSearch index name may hold (upper case, a space, a
// character OpenSearch forbids, a name past 255 bytes) is refused before the job starts,
// naming the flag and the rule; with "gC" every document went to the dead letters and the
// job exited 0 (helper-64). Tags of the test helpers and the README pass, and so does the
// longest tag whose longest index name (ride-pickups-<tag>-YYYY.MM.DD) fits 255 bytes.
func TestCheckIndexTag(t *testing.T) {
	longest := 255 - len("ride-pickups--2026.11.25")
	for _, ok := range []string{"", "test1", "b-drain-42", "e2e_run.3", "_x", strings.Repeat("x", longest)} {
		require.NoError(t, checkIndexTag(ok), ok)
	}
	for _, tc := range []struct{ tag, says string }{
		{"gC", "must be lower case"}, {"a b", "' '"}, {"x/y", "'/'"}, {"a*", "'*'"}, {"q?", "'?'"}, {`a"b`, `'"'`},
		{"a,b", "','"}, {"a#b", "'#'"}, {"a:b", "':'"}, {"a|b", "'|'"},
		{strings.Repeat("x", longest+1), "is 256 bytes long, more than 255"},
	} {
		err := checkIndexTag(tc.tag)
		require.Error(t, err, tc.tag)
		require.ErrorContains(t, err, fmt.Sprintf("-index-tag %q", tc.tag))
		require.ErrorContains(t, err, tc.says)
	}
	err := run(t.Context(), testConfig(t, offlineArgs(t, "-index-tag", "gC")...), io.Discard)
	require.ErrorContains(t, err, `-index-tag "gC"`, "run refuses it before connecting")
}
