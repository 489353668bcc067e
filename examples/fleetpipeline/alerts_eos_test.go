package main

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
)

// committedAlerts reads an alerts topic with isolation level read_committed, as a
// downstream consumer does, up to a plain sentinel it first writes to every partition, and
// counts the messages of every alert id.
func committedAlerts(t *testing.T, brokers []string, topic string) map[string]int {
	t.Helper()
	c := sarama.NewConfig()
	c.Version = sarama.V2_8_0_0
	c.Consumer.IsolationLevel = sarama.ReadCommitted
	cons, err := sarama.NewConsumer(brokers, c)
	require.NoError(t, err)
	defer func() { require.NoError(t, cons.Close()) }()
	parts, err := cons.Partitions(topic)
	require.NoError(t, err)
	prod := syncProducer(t, brokers, sarama.NewManualPartitioner) // one sentinel in every partition
	for _, p := range parts {
		_, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: p, Value: sarama.StringEncoder("~end")})
		require.NoError(t, err)
	}
	var mu sync.Mutex
	count := map[string]int{}
	var wg sync.WaitGroup
	for _, p := range parts {
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		require.NoError(t, err)
		wg.Go(func() {
			defer func() { _ = pc.Close() }()
			deadline := time.After(time.Minute)
			for {
				select {
				case m := <-pc.Messages():
					if string(m.Value) == "~end" {
						return
					}
					var a struct {
						ID string `json:"alert_id"`
					}
					if err := json.Unmarshal(m.Value, &a); err != nil || a.ID == "" {
						t.Errorf("%s/%d offset %d: not an alert: %q", topic, p, m.Offset, m.Value)
						continue
					}
					mu.Lock()
					count[a.ID]++
					mu.Unlock()
				case <-deadline:
					t.Errorf("%s/%d: no sentinel within a minute", topic, p)
					return
				}
			}
		})
	}
	wg.Wait()
	return count
}

// requireAlertsExactlyOnce checks that the crashed run's alerts topic holds, read with
// read_committed, every alert of the uninterrupted run's topic exactly once, and no other.
func requireAlertsExactlyOnce(t *testing.T, brokers []string, crashedTopic, cleanTopic string) {
	t.Helper()
	got, want := committedAlerts(t, brokers, crashedTopic), committedAlerts(t, brokers, cleanTopic)
	require.NotEmpty(t, want, "alerts of the uninterrupted run")
	var twice, missing, extra []string
	n := 0
	for id, c := range got {
		n += c
		if c > 1 {
			twice = append(twice, id)
		}
		if want[id] == 0 {
			extra = append(extra, id)
		}
	}
	for id := range want {
		if got[id] == 0 {
			missing = append(missing, id)
		}
	}
	t.Logf("alerts topic after crashes: %d messages, %d distinct; uninterrupted: %d distinct", n, len(got), len(want))
	require.Empty(t, twice, "alerts read more than once with read_committed")
	require.Empty(t, missing, "alerts missing after the crashes")
	require.Empty(t, extra, "alerts the uninterrupted run does not raise")
}
