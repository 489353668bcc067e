package kafka_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/testenv"
)

// BenchmarkProducerExactlyOnce writes batches of 500 alert-sized messages (about 300 bytes)
// through the idempotent Producer (Write waits for the acks) and through an exactly-once one
// (Write, then the Source's commit: begin, produce, commit the transaction). The Source is not
// running, so the transaction carries no offsets: the TxnOffsetCommit round trip of a real
// commit comes on top.
func BenchmarkProducerExactlyOnce(b *testing.B) {
	brokers := testenv.KafkaBrokers(b)
	batch := make([]string, 500)
	for i := range batch {
		batch[i] = fmt.Sprintf(`{"alert_id":"CAB-%04d/speeding/2026-11-25T10:00:00.%09dZ","type":"speeding","cab_id":"CAB-%04d","@timestamp":"2026-11-25T10:00:00Z","location":{"lat":41.15,"lon":-8.61},"severity":"medium","details":{"value":131.5,"limit":120,"duration_s":42}}`, i, i, i)
	}
	enc := kafka.KeyValue(func(s string) []byte { return []byte(s[14:22]) }, func(s string) ([]byte, error) { return []byte(s), nil })
	ctx := context.Background()
	b.Run("idempotent", func(b *testing.B) {
		topic := newTopic(b, brokers, "bench-idem", 6)
		p, err := kafka.NewProducer(kafka.Config{Brokers: brokers}, topic, enc)
		require.NoError(b, err)
		defer func() { require.NoError(b, p.Close(ctx)) }()
		b.ReportAllocs()
		for b.Loop() {
			require.NoError(b, p.Write(ctx, batch))
		}
		b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("exactly-once", func(b *testing.B) {
		topic := newTopic(b, brokers, "bench-eos", 6)
		src, err := kafka.NewSource(consumerConfig(brokers, testenv.UniqueName(b, "g-bench-eos"), topic), kafka.JSON[event](),
			kafka.WithTransactionalID(testenv.UniqueName(b, "bench-eos")))
		require.NoError(b, err)
		p, err := kafka.NewProducer(kafka.Config{Brokers: brokers}, topic, enc, kafka.WithExactlyOnce(src))
		require.NoError(b, err)
		defer func() { require.NoError(b, p.Close(ctx)) }()
		b.ReportAllocs()
		for b.Loop() {
			require.NoError(b, p.Write(ctx, batch))
			require.NoError(b, src.Commit(ctx, nil))
		}
		require.EqualValues(b, b.N*len(batch), p.Sent())
		b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "msgs/s")
	})
}
