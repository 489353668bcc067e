package kafka_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// bigMeta adds 5,000 bytes to every checkpoint it commits, as the repartition marks of a
// repartition reading about 180 upstream partitions would.
type bigMeta struct{ *kafka.Source[event] }

func (b bigMeta) Commit(ctx context.Context, pos []stream.Position) error {
	pos = append([]stream.Position(nil), pos...)
	for i := range pos {
		pos[i].Meta += strings.Repeat("z", 5000)
	}
	return b.Source.Commit(ctx, pos)
}

// TestCommitMetadataTooLarge: a checkpoint larger than the broker's offset.metadata.max.bytes
// (4096 bytes by default) stops the pipeline with ErrCommitMetadataTooLarge, which names the
// limit and the setting, and nothing is committed (a restart replays everything). Before, the
// at-least-once commits failed with a Warn line each, about 800 a second, and the job ran on
// and exited 0 without ever committing; the exactly-once ones were aborted and their
// messages kept pending, for ever, in memory.
func TestCommitMetadataTooLarge(t *testing.T) {
	t.Parallel()
	for _, eos := range []bool{false, true} {
		t.Run("exactly-once="+strconv.FormatBool(eos), func(t *testing.T) {
			t.Parallel()
			brokers := testenv.KafkaBrokers(t)
			const n, parts = 400, 2
			topic := newTopic(t, brokers, "meta-size", parts)
			produceEvents(t, brokers, topic, parts, 0, n)
			group := testenv.UniqueName(t, "g-meta-size")
			spec := pipelineSpec{cfg: consumerConfig(brokers, group, topic), ids: newIDSet()}
			spec.wrap = func(src *kafka.Source[event]) source { return bigMeta{src} }
			if eos {
				out := topic + "-out"
				createTopic(t, brokers, out, parts)
				spec.opts = []kafka.SourceOption{kafka.WithTransactionalID(group)}
				var prod *kafka.Producer[event]
				spec.wrap = func(src *kafka.Source[event]) source {
					prod = idProducer(t, brokers, out, src)
					return bigMeta{src}
				}
				spec.onBatch = func(ctx context.Context, batch []event) error { return prod.Write(ctx, batch) }
			}
			r := startPipeline(t, spec)
			select {
			case err := <-r.done:
				r.done <- err
				require.ErrorIs(t, err, kafka.ErrCommitMetadataTooLarge)
				require.ErrorContains(t, err, "offset.metadata.max.bytes")
				if !eos {
					require.ErrorContains(t, err, "partition "+topic+"/")
					require.ErrorContains(t, err, "a checkpoint of 50")
				}
			case <-time.After(waitFor):
				t.Fatal("the pipeline ran on while no commit could pass")
			}
			for p, off := range committedOffsets(t, brokers, group, topic, parts) {
				require.Equal(t, int64(-1), off, "partition %d: nothing committed", p)
			}
		})
	}
}
